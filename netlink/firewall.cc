#include "netlink/firewall.h"

#include <fcntl.h>
#include <nftables/libnftables.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "base/fd.h"

namespace plumb::netlink {
namespace {

using json = nlohmann::json;

struct NftDeleter {
  void operator()(nft_ctx* c) const { nft_ctx_free(c); }
};

class Nft {
 public:
  Nft() : ctx_(nft_ctx_new(NFT_CTX_DEFAULT)) {
    if (ctx_) {
      nft_ctx_buffer_output(ctx_.get());
      nft_ctx_buffer_error(ctx_.get());
    }
  }
  bool ok() const { return ctx_ != nullptr; }

  // Runs commands; on failure returns nftables' own message.
  Result<std::string> run(const std::string& cmd, bool json_out = false) {
    if (!ctx_) return fail(Errc::kUnsupported, "libnftables could not start");
    nft_ctx_output_set_flags(ctx_.get(),
                             json_out ? (NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE) : 0);
    int rc = nft_run_cmd_from_buffer(ctx_.get(), cmd.c_str());
    std::string out = nft_ctx_get_output_buffer(ctx_.get());
    std::string err = nft_ctx_get_error_buffer(ctx_.get());
    if (rc != 0) {
      auto nl = err.find('\n');
      if (nl != std::string::npos) err = err.substr(0, nl);
      return fail(Errc::kKernel, err.empty() ? "nftables refused the rules" : err);
    }
    return out;
  }

 private:
  std::unique_ptr<nft_ctx, NftDeleter> ctx_;
};

}  // namespace

Firewall::Lock::Lock(bool exclusive) {
  ::mkdir("/run/plumb", 0700);
  fd_.reset(::open("/run/plumb/firewall.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (fd_.valid()) ::flock(fd_.get(), exclusive ? LOCK_EX : LOCK_SH);
}

namespace {

struct RuleRef {
  std::string family, table, chain;
  long long handle;
};

// Rules in family/table/chain whose comment is tag; a missing table or chain has none.
std::vector<RuleRef> findTagged(Nft& nft, const std::string& family, const std::string& table,
                                const std::string& chain, const std::string& tag) {
  std::vector<RuleRef> out;
  auto listed = nft.run("list chain " + family + " " + table + " " + chain, true);
  if (!listed.ok()) return out;
  json doc = json::parse(*listed, nullptr, false);
  if (!doc.is_object() || !doc.contains("nftables") || !doc["nftables"].is_array()) return out;
  for (const auto& item : doc["nftables"]) {
    if (!item.is_object() || !item.contains("rule")) continue;
    const auto& rule = item["rule"];
    if (!rule.is_object()) continue;
    auto comment = rule.find("comment");
    auto handle = rule.find("handle");
    if (comment == rule.end() || !comment->is_string() || handle == rule.end() ||
        !handle->is_number_integer()) {
      continue;
    }
    if (comment->get<std::string>() == tag)
      out.push_back({family, table, chain, handle->get<long long>()});
  }
  return out;
}

Status removeTagged(Nft& nft, const std::vector<RuleRef>& rules) {
  std::string cmd;
  for (const auto& r : rules) {
    cmd += "delete rule " + r.family + " " + r.table + " " + r.chain + " handle " +
           std::to_string(r.handle) + "\n";
  }
  if (cmd.empty()) return {};
  auto done = nft.run(cmd);
  if (!done.ok()) return std::move(done).error();
  return {};
}

bool chainExists(Nft& nft, const std::string& family, const std::string& table,
                 const std::string& chain) {
  return nft.run("list chain " + family + " " + table + " " + chain, true).ok();
}

// iptables-nft's FORWARD chains, where dockerd's DROP policy lives.
const std::vector<std::pair<std::string, std::string>> kIptablesForward = {{"ip", "filter"},
                                                                           {"ip6", "filter"}};

std::string bridgeTag(const std::string& bridge) { return "plumb:fwd:" + bridge; }
std::string masqTag(const std::string& owner, const IpPrefix& subnet) {
  return "plumb:masq:" + owner + ":" + subnet.network().str();
}

const char* kPlumbTable =
    "add table inet plumb\n"
    "add chain inet plumb forward { type filter hook forward priority filter; policy accept; }\n"
    "add chain inet plumb postrouting { type nat hook postrouting priority srcnat; policy accept; "
    "}\n";

}  // namespace

namespace {

// The commands that add whatever of rules is missing; empty when all is in place.
std::string missingRules(Nft& nft, const BridgeRules& rules) {
  std::string tag = bridgeTag(rules.bridge);
  std::string cmd;
  // Our own chain documents intent and serves rulesets that accept by default elsewhere.
  if (findTagged(nft, "inet", "plumb", "forward", tag).empty()) {
    cmd += "add rule inet plumb forward iifname \"" + rules.bridge + "\" accept comment \"" + tag +
           "\"\n";
    cmd += "add rule inet plumb forward oifname \"" + rules.bridge + "\" accept comment \"" + tag +
           "\"\n";
  }
  for (const auto& [family, table] : kIptablesForward) {
    if (!chainExists(nft, family, table, "FORWARD")) continue;
    if (!findTagged(nft, family, table, "FORWARD", tag).empty()) continue;
    // insert: ahead of the chain's own rules, as Docker places DOCKER-USER.
    cmd += "insert rule " + family + " " + table + " FORWARD oifname \"" + rules.bridge +
           "\" accept comment \"" + tag + "\"\n";
    cmd += "insert rule " + family + " " + table + " FORWARD iifname \"" + rules.bridge +
           "\" accept comment \"" + tag + "\"\n";
  }
  for (const auto& subnet : rules.masquerade) {
    std::string mtag = masqTag(rules.owner, subnet);
    if (!findTagged(nft, "inet", "plumb", "postrouting", mtag).empty()) continue;
    std::string net = subnet.network().str();
    std::string fam = subnet.isV4() ? "ip" : "ip6";
    cmd += "add rule inet plumb postrouting " + fam + " saddr " + net + " " + fam +
           " daddr != " + net + " masquerade comment \"" + mtag + "\"\n";
  }
  return cmd;
}

}  // namespace

Status Firewall::ensure(const BridgeRules& rules) {
  Nft nft;
  {
    // Shared: ADDs check in parallel, while a last DEL removing rules (exclusive) is excluded.
    Lock shared(false);
    if (missingRules(nft, rules).empty()) return {};
  }
  Lock lock(true);
  // Again under the lock: a concurrent ADD may have added them meanwhile.
  std::string cmd = missingRules(nft, rules);
  if (cmd.empty()) return {};
  auto done = nft.run(kPlumbTable + cmd);
  if (!done.ok())
    return std::move(done).error().wrap("failed to install forwarding rules for bridge " +
                                        rules.bridge);
  return {};
}

Status Firewall::revokeBridge(const std::string& bridge) {
  Nft nft;
  Lock lock(true);
  std::string tag = bridgeTag(bridge);
  auto rules = findTagged(nft, "inet", "plumb", "forward", tag);
  for (const auto& [family, table] : kIptablesForward) {
    auto more = findTagged(nft, family, table, "FORWARD", tag);
    rules.insert(rules.end(), more.begin(), more.end());
  }
  auto st = removeTagged(nft, rules);
  if (!st.ok())
    return std::move(st).error().wrap("failed to remove forwarding rules of bridge " + bridge);
  return {};
}

Status Firewall::unmasquerade(const std::string& owner, const IpPrefix& subnet) {
  Nft nft;
  auto st =
      removeTagged(nft, findTagged(nft, "inet", "plumb", "postrouting", masqTag(owner, subnet)));
  if (!st.ok()) return std::move(st).error().wrap("failed to remove masquerade of " + subnet.str());
  return {};
}

Result<bool> Firewall::hasBridgeRules(const std::string& bridge) {
  Nft nft;
  return !findTagged(nft, "inet", "plumb", "forward", bridgeTag(bridge)).empty();
}

Result<bool> Firewall::hasMasquerade(const std::string& owner, const IpPrefix& subnet) {
  Nft nft;
  return !findTagged(nft, "inet", "plumb", "postrouting", masqTag(owner, subnet)).empty();
}

}  // namespace plumb::netlink
