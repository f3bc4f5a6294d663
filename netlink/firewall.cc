#include "netlink/firewall.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "base/backoff.h"
#include "base/dl.h"
#include "base/process.h"
#include "netlink/socket.h"
#include "netlink/sysctl.h"

namespace plumb::netlink {
namespace {

// How long a firewall change waits for another plumb's (the store waits as long).
constexpr long kLockTimeoutMs = 30000;

// libnftables' rule comments live in the rule's user data as a TLV of this type
// (NFTNL_UDATA_RULE_COMMENT in libnftnl's udata.h).
constexpr uint8_t kUdataRuleComment = 0;

// ---- Reading rules: plain nfnetlink dumps, cheap enough for every ADD. ----

uint16_t nftType(int msg) { return static_cast<uint16_t>((NFNL_SUBSYS_NFTABLES << 8) | msg); }

void putNfgen(Message& m, uint8_t family) {
  auto* g = m.putHeader<nfgenmsg>();
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(0);
}

using TaggedRule = RuleRead;

std::string commentOf(const nlattr* udata) {
  const auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(udata));
  size_t len = mnl_attr_get_payload_len(udata);
  for (size_t i = 0; i + 2 <= len;) {
    uint8_t type = p[i], vlen = p[i + 1];
    if (i + 2 + vlen > len) break;
    if (type == kUdataRuleComment && vlen > 0) {
      return std::string(reinterpret_cast<const char*>(p + i + 2),
                         strnlen(reinterpret_cast<const char*>(p + i + 2), vlen));
    }
    i += 2 + vlen;
  }
  return {};
}

}  // namespace

std::optional<RuleRead> readRule(const nlmsghdr* nlh) {
  if (!familyHeader<nfgenmsg>(nlh)) return std::nullopt;
  RuleRead r;
  forEachAttr(nlh, sizeof(nfgenmsg), [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == NFTA_RULE_USERDATA) r.comment = commentOf(a);
    if (mnl_attr_get_type(a) == NFTA_RULE_HANDLE && mnl_attr_get_payload_len(a) == 8) {
      uint64_t be;
      std::memcpy(&be, mnl_attr_get_payload(a), 8);
      r.handle = be64toh(be);
    }
  });
  return r;
}

namespace {

// The rules of family/table/chain with their comments; a missing table or chain has none.
Result<std::vector<TaggedRule>> listRules(NlSocket& nf, uint8_t family, const std::string& table,
                                          const std::string& chain) {
  Message m(nftType(NFT_MSG_GETRULE), 0);
  putNfgen(m, family);
  m.putStr(NFTA_RULE_TABLE, table);
  m.putStr(NFTA_RULE_CHAIN, chain);
  std::vector<TaggedRule> out;
  auto st = nf.dump(
      m,
      [&](const nlmsghdr* nlh) -> Status {
        auto r = readRule(nlh);
        if (r && !r->comment.empty()) out.push_back(std::move(*r));
        return {};
      },
      [&] { out.clear(); });
  if (!st.ok()) {
    if (st.error().code == Errc::kNotFound) return out;
    return std::move(st).error().wrap("failed to list nftables rules of " + table + " " + chain);
  }
  return out;
}

Result<bool> chainExists(NlSocket& nf, uint8_t family, const std::string& table,
                         const std::string& chain) {
  Message m(nftType(NFT_MSG_GETCHAIN), 0);
  putNfgen(m, family);
  m.putStr(NFTA_CHAIN_TABLE, table);
  m.putStr(NFTA_CHAIN_NAME, chain);
  auto st = nf.request(m, [](const nlmsghdr*) -> Status { return {}; });
  if (st.ok()) return true;
  if (st.error().code == Errc::kNotFound) return false;
  return std::move(st).error().wrap("failed to look up nftables chain " + table + " " + chain);
}

// ---- Writing rules: libnftables, loaded only when something must change. ----

// The few libnftables entry points plumb uses, resolved at first use: most invocations (every
// VERSION, DEL, and ADDs on a network whose rules are in place) never load it.
struct NftLib {
  decltype(&nft_ctx_new) ctx_new = nullptr;
  decltype(&nft_ctx_free) ctx_free = nullptr;
  decltype(&nft_ctx_buffer_output) buffer_output = nullptr;
  decltype(&nft_ctx_buffer_error) buffer_error = nullptr;
  decltype(&nft_ctx_get_error_buffer) get_error = nullptr;
  decltype(&nft_run_cmd_from_buffer) run = nullptr;

  bool resolve(const DynamicLibrary& lib) {
    return lib.resolve("nft_ctx_new", ctx_new) && lib.resolve("nft_ctx_free", ctx_free) &&
           lib.resolve("nft_ctx_buffer_output", buffer_output) &&
           lib.resolve("nft_ctx_buffer_error", buffer_error) &&
           lib.resolve("nft_ctx_get_error_buffer", get_error) &&
           lib.resolve("nft_run_cmd_from_buffer", run);
  }
};

// Runs nft commands as one atomic batch; on failure, nftables' own first line.
Status runNft(const std::string& cmd) {
  PLUMB_ASSIGN(const NftLib* loaded, loadOnce<NftLib>("libnftables.so.1", "libnftables1"));
  const NftLib& lib = *loaded;
  nft_ctx* ctx = lib.ctx_new(NFT_CTX_DEFAULT);
  if (!ctx) return fail(Errc::kUnsupported, "libnftables could not start");
  lib.buffer_output(ctx);
  lib.buffer_error(ctx);
  int rc = lib.run(ctx, cmd.c_str());
  std::string err = lib.get_error(ctx);
  lib.ctx_free(ctx);
  if (rc != 0) {
    auto nl = err.find('\n');
    if (nl != std::string::npos) err = err.substr(0, nl);
    return fail(Errc::kKernel, err.empty() ? "nftables refused the rules" : err);
  }
  return {};
}

struct ChainRef {
  uint8_t family;
  const char* family_name;
  const char* table;
  const char* chain;
};

// iptables-nft's FORWARD chains, where dockerd's DROP policy lives.
constexpr ChainRef kIptablesForward[] = {{NFPROTO_IPV4, "ip", "filter", "FORWARD"},
                                         {NFPROTO_IPV6, "ip6", "filter", "FORWARD"}};
constexpr ChainRef kPlumbForward = {NFPROTO_INET, "inet", "plumb", "forward"};
constexpr ChainRef kPlumbPostrouting = {NFPROTO_INET, "inet", "plumb", "postrouting"};
constexpr ChainRef kPlumbPrerouting = {NFPROTO_INET, "inet", "plumb", "prerouting"};
constexpr ChainRef kPlumbOutput = {NFPROTO_INET, "inet", "plumb", "output"};

// nft takes rule comments of up to 128 characters. A tag that would be longer (a network
// name of 100 characters) keeps the owner's start and a hash of the whole, the same for the
// rule's addition and its removal.
constexpr size_t kMaxComment = 128;
std::string fitted(const std::string& kind, const std::string& owner, const std::string& tail) {
  std::string tag = kind + owner + tail;
  if (tag.size() <= kMaxComment) return tag;
  size_t keep = kMaxComment - kind.size() - tail.size() - 9;
  return kind + owner.substr(0, keep) + "~" + stableHex8(owner) + tail;
}

std::string bridgeTag(const std::string& bridge) { return fitted("plumb:fwd:", bridge, ""); }
std::string portTag(const std::string& owner) { return fitted("plumb:port:", owner, ""); }
std::string masqTag(const std::string& owner, const IpPrefix& subnet) {
  return fitted("plumb:masq:", owner, ":" + subnet.network().str());
}

const char* kPlumbTable =
    "add table inet plumb\n"
    "add chain inet plumb forward { type filter hook forward priority filter; policy accept; }\n"
    "add chain inet plumb postrouting { type nat hook postrouting priority srcnat; policy accept; "
    "}\n"
    "add chain inet plumb prerouting { type nat hook prerouting priority dstnat; policy accept; }\n"
    "add chain inet plumb output { type nat hook output priority -100; policy accept; }\n";

Result<bool> hasTag(NlSocket& nf, const ChainRef& c, const std::string& tag) {
  PLUMB_ASSIGN(auto rules, listRules(nf, c.family, c.table, c.chain));
  for (const auto& r : rules) {
    if (r.comment == tag) return true;
  }
  return false;
}

// The nft commands that add whatever of rules is missing; empty when all is in place.
Result<std::string> missingRules(NlSocket& nf, const BridgeRules& rules) {
  PLUMB_TRY(Firewall::canQuote("bridge name", rules.bridge));
  PLUMB_TRY(Firewall::canQuote("network name", rules.owner));
  std::string tag = bridgeTag(rules.bridge);
  std::string quoted = "\"" + rules.bridge + "\"";
  std::string cmd;
  // Our own chain documents intent and serves rulesets that accept by default elsewhere.
  PLUMB_ASSIGN(bool own, hasTag(nf, kPlumbForward, tag));
  if (!own) {
    if (rules.internal) {
      // At the head of the chain, ahead of every bridge's accepts (an accept ends the chain
      // for the packet); a drop is final across the hook's chains.
      cmd += "insert rule inet plumb forward iifname " + quoted + " oifname != " + quoted +
             " drop comment \"" + tag + "\"\n";
      cmd += "insert rule inet plumb forward oifname " + quoted + " iifname != " + quoted +
             " drop comment \"" + tag + "\"\n";
    }
    cmd += "add rule inet plumb forward iifname " + quoted + " accept comment \"" + tag + "\"\n";
    cmd += "add rule inet plumb forward oifname " + quoted + " accept comment \"" + tag + "\"\n";
  }
  for (const auto& c : kIptablesForward) {
    PLUMB_ASSIGN(bool exists, chainExists(nf, c.family, c.table, c.chain));
    if (!exists) continue;
    PLUMB_ASSIGN(bool there, hasTag(nf, c, tag));
    if (there) continue;
    // insert: ahead of the chain's own rules, as Docker places DOCKER-USER.
    std::string at = std::string("insert rule ") + c.family_name + " " + c.table + " " + c.chain;
    cmd += at + " oifname " + quoted + " accept comment \"" + tag + "\"\n";
    cmd += at + " iifname " + quoted + " accept comment \"" + tag + "\"\n";
  }
  for (const auto& subnet : rules.masquerade) {
    std::string mtag = masqTag(rules.owner, subnet);
    PLUMB_ASSIGN(bool there, hasTag(nf, kPlumbPostrouting, mtag));
    if (there) continue;
    std::string net = subnet.network().str();
    std::string fam = subnet.isV4() ? "ip" : "ip6";
    cmd += "add rule inet plumb postrouting " + fam + " saddr " + net + " " + fam +
           " daddr != " + net + " masquerade comment \"" + mtag + "\"\n";
  }
  return cmd;
}

Status removeTagged(NlSocket& nf, const std::vector<ChainRef>& chains, const std::string& tag) {
  std::string cmd;
  for (const auto& c : chains) {
    PLUMB_ASSIGN(auto rules, listRules(nf, c.family, c.table, c.chain));
    for (const auto& r : rules) {
      if (r.comment != tag) continue;
      cmd += std::string("delete rule ") + c.family_name + " " + c.table + " " + c.chain +
             " handle " + std::to_string(r.handle) + "\n";
    }
  }
  if (cmd.empty()) return {};
  return runNft(cmd);
}

}  // namespace

Firewall::Lock::Lock(bool exclusive) {
  constexpr const char* kPath = "/run/plumb/firewall.lock";
  if (::mkdir("/run/plumb", 0700) != 0 && errno != EEXIST) {
    status_ = failErrno(errno, "failed to create /run/plumb");
    return;
  }
  fd_.reset(::open(kPath, O_RDWR | O_CREAT | O_CLOEXEC, 0600));
  if (!fd_.valid()) {
    status_ = failErrno(errno, std::string("failed to open ") + kPath);
    return;
  }
  // Bounded, as the store's own wait is: a holder that hangs makes this fail with kTryAgain
  // (CNI's "try again later") instead of hanging every ADD behind it. Tries again after 50 us,
  // doubling up to 5 ms. PLUMB_LOCK_TIMEOUT_MS shortens the wait (for tests).
  long timeout_ms = kLockTimeoutMs;
  if (const char* t = std::getenv("PLUMB_LOCK_TIMEOUT_MS"); t && *t) timeout_ms = std::atol(t);
  Backoff wait(std::chrono::milliseconds(timeout_ms), std::chrono::microseconds(5000));
  int op = (exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd_.get(), op) != 0) {
    if (errno != EWOULDBLOCK && errno != EINTR) {
      status_ = failErrno(errno, std::string("failed to lock ") + kPath);
      return;
    }
    if (!wait.pause()) {
      status_ = fail(Errc::kTryAgain, std::string("timed out after ") + std::to_string(timeout_ms) +
                                          " ms waiting for " + kPath +
                                          ": another plumb is changing the firewall");
      return;
    }
  }
}

namespace {

// The ruleset's generation: every change to any table, chain or rule of this netns (by plumb,
// nft, iptables-nft, dockerd) makes a new one.
Result<uint32_t> generation(NlSocket& nf) {
  Message m(nftType(NFT_MSG_GETGEN), 0);
  putNfgen(m, AF_UNSPEC);
  std::optional<uint32_t> gen;
  PLUMB_TRY(nf.request(m, [&](const nlmsghdr* nlh) -> Status {
    forEachAttr(nlh, sizeof(nfgenmsg), [&](const nlattr* a) {
      if (mnl_attr_get_type(a) == NFTA_GEN_ID && mnl_attr_get_payload_len(a) == 4)
        gen = ntohl(mnl_attr_get_u32(a));
    });
    return {};
  }));
  if (!gen) return fail(Errc::kIo, "nftables answered no ruleset generation");
  return *gen;
}

// In a long-lived process (the daemon, the resident CNI service): the generation at which each
// bridge's rules were last found complete. While the ruleset has not changed since, they are
// still there, and one request says so instead of a listing per chain.
class Verified {
 public:
  static std::string key(const BridgeRules& r) {
    // Generations are per network namespace: the one this thread is in.
    struct stat ns {};
    (void)::stat("/proc/thread-self/ns/net", &ns);
    std::string k = std::to_string(ns.st_ino) + '\n' + r.bridge + '\n' + r.owner + '\n' +
                    (r.internal ? "internal" : "") + '\n';
    for (const auto& m : r.masquerade) k += m.str() + ' ';
    return k;
  }
  bool at(const std::string& key, uint32_t gen) {
    std::lock_guard lock(mu_);
    auto it = gens_.find(key);
    return it != gens_.end() && it->second == gen;
  }
  void remember(const std::string& key, uint32_t gen) {
    std::lock_guard lock(mu_);
    if (gens_.size() > 4096) gens_.clear();
    gens_[key] = gen;
  }

 private:
  std::mutex mu_;
  std::map<std::string, uint32_t> gens_;
};

Verified& verified() {
  static Verified v;
  return v;
}

}  // namespace

Status Firewall::ensure(const BridgeRules& rules) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  {
    // Shared: ADDs check in parallel, while a last DEL removing rules (exclusive) is excluded.
    Lock shared(false);
    PLUMB_TRY(shared.status());
    // Read before the rules are: a change made while they are listed makes another generation.
    std::optional<uint32_t> gen;
    std::string key;
    if (isLongLived()) {
      key = Verified::key(rules);
      if (auto g = generation(nf); g.ok()) {
        if (verified().at(key, *g)) return {};
        gen = *g;
      }
    }
    PLUMB_ASSIGN(std::string missing, missingRules(nf, rules));
    if (missing.empty()) {
      if (gen) verified().remember(key, *gen);
      return {};
    }
  }
  Lock lock(true);
  PLUMB_TRY(lock.status());
  // Again under the lock: a concurrent ADD may have added them meanwhile.
  PLUMB_ASSIGN(std::string cmd, missingRules(nf, rules));
  if (cmd.empty()) return {};
  auto done = runNft(kPlumbTable + cmd);
  if (!done.ok()) {
    return std::move(done).error().wrap("failed to install forwarding rules for bridge " +
                                        rules.bridge);
  }
  return {};
}

Status Firewall::revokeBridge(const std::string& bridge) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  Lock lock(true);
  PLUMB_TRY(lock.status());
  std::vector<ChainRef> chains = {kPlumbForward};
  chains.insert(chains.end(), std::begin(kIptablesForward), std::end(kIptablesForward));
  auto st = removeTagged(nf, chains, bridgeTag(bridge));
  if (!st.ok())
    return std::move(st).error().wrap("failed to remove forwarding rules of bridge " + bridge);
  return {};
}

Status Firewall::unmasquerade(const std::string& owner, const IpPrefix& subnet) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  auto st = removeTagged(nf, {kPlumbPostrouting}, masqTag(owner, subnet));
  if (!st.ok()) return std::move(st).error().wrap("failed to remove masquerade of " + subnet.str());
  return {};
}

Status Firewall::canQuote(const std::string& what, const std::string& name) {
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\' || u < 0x20 || u >= 0x7f)
      return fail(Errc::kInvalid,
                  what + " '" + name + "' holds a character nftables rules cannot quote");
  }
  return {};
}

Status Firewall::publish(const std::string& owner, const std::string& bridge,
                         const std::vector<PortMapping>& ports) {
  if (ports.empty()) return {};
  PLUMB_TRY(canQuote("bridge name", bridge));
  PLUMB_TRY(canQuote("owner", owner));
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  Lock lock(true);
  PLUMB_TRY(lock.status());
  std::string tag = portTag(owner);
  // Re-publishing replaces: the same endpoint may be programmed again after a daemon restart.
  PLUMB_TRY(removeTagged(nf, {kPlumbPrerouting, kPlumbOutput, kPlumbPostrouting}, tag));
  std::string cmd = kPlumbTable;
  std::string quoted = "\"" + bridge + "\"";
  bool loopback = false;
  for (const auto& p : ports) {
    if (p.proto != "tcp" && p.proto != "udp" && p.proto != "sctp")
      return fail(Errc::kInvalid, "protocol " + p.proto + " cannot be published");
    bool v4 = p.container_ip.isV4();
    std::string fam = v4 ? "ip" : "ip6";
    std::string match = std::string("meta nfproto ") + (v4 ? "ipv4" : "ipv6");
    if (p.host_ip && !p.host_ip->isUnspecified()) {
      if (p.host_ip->isV4() != v4) continue;
      match += " " + fam + " daddr " + p.host_ip->str();
      loopback |= v4 && (p.host_ip->str().rfind("127.", 0) == 0);
    } else {
      loopback |= v4;
    }
    std::string to = v4 ? p.container_ip.str() : "[" + p.container_ip.str() + "]";
    std::string rule = match + " fib daddr type local " + p.proto + " dport " +
                       std::to_string(p.host_port) + " dnat " + fam + " to " + to + ":" +
                       std::to_string(p.container_port) + " comment \"" + tag + "\"\n";
    cmd += "add rule inet plumb prerouting " + rule;
    cmd += "add rule inet plumb output " + rule;
  }
  if (loopback) {
    // 127.0.0.1 rewritten towards the bridge: the kernel routes it only with route_localnet,
    // and the container must see a source it can answer.
    PLUMB_TRY(writeSysctl(nullptr, "net.ipv4.conf." + bridge + ".route_localnet", "1"));
    cmd += "add rule inet plumb postrouting oifname " + quoted +
           " ip saddr 127.0.0.0/8 masquerade comment \"" + tag + "\"\n";
  }
  auto st = runNft(cmd);
  if (!st.ok()) return std::move(st).error().wrap("failed to publish ports on bridge " + bridge);
  return {};
}

Status Firewall::unpublish(const std::string& owner) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  Lock lock(true);
  PLUMB_TRY(lock.status());
  auto st = removeTagged(nf, {kPlumbPrerouting, kPlumbOutput, kPlumbPostrouting}, portTag(owner));
  if (!st.ok()) return std::move(st).error().wrap("failed to unpublish ports of " + owner);
  return {};
}

namespace {

// Where plumb's tags may be: its chains, and iptables' FORWARD chains.
std::vector<ChainRef> taggedChains() {
  return {kPlumbForward, kPlumbPostrouting,   kPlumbPrerouting,
          kPlumbOutput,  kIptablesForward[0], kIptablesForward[1]};
}

}  // namespace

Result<std::vector<std::string>> Firewall::tags() {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  std::vector<std::string> out;
  for (const auto& c : taggedChains()) {
    PLUMB_ASSIGN(auto rules, listRules(nf, c.family, c.table, c.chain));
    for (const auto& r : rules) {
      if (r.comment.rfind("plumb:", 0) != 0) continue;
      if (std::find(out.begin(), out.end(), r.comment) == out.end()) out.push_back(r.comment);
    }
  }
  return out;
}

Status Firewall::removeTag(const std::string& tag, const Lock* held) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  std::optional<Lock> lock;
  if (!held) {
    lock.emplace(true);
    PLUMB_TRY(lock->status());
  }
  auto st = removeTagged(nf, taggedChains(), tag);
  if (!st.ok()) return std::move(st).error().wrap("failed to remove the rules tagged " + tag);
  return {};
}

std::optional<Firewall::Tag> Firewall::parseTag(const std::string& tag) {
  for (const char* kind : {"fwd", "masq", "port"}) {
    std::string head = std::string("plumb:") + kind + ":";
    if (tag.rfind(head, 0) != 0) continue;
    std::string owner = tag.substr(head.size());
    // A masquerade's tag ends with ":" and its subnet; owners (network names) hold no ':'.
    if (std::string(kind) == "masq") owner = owner.substr(0, owner.find(':'));
    return Tag{kind, owner};
  }
  return std::nullopt;
}

bool Firewall::ownedBy(const Tag& tag, const std::string& owner) {
  if (tag.owner == owner) return true;
  auto cut = tag.owner.rfind('~');
  if (cut == std::string::npos) return false;
  return tag.owner.substr(cut + 1) == stableHex8(owner) &&
         owner.rfind(tag.owner.substr(0, cut), 0) == 0;
}

Status Firewall::tidy(const Lock* held) {
  PLUMB_ASSIGN(auto nf, NlSocket::open(NETLINK_NETFILTER));
  std::optional<Lock> lock;
  if (!held) {
    lock.emplace(true);
    PLUMB_TRY(lock->status());
  }
  for (const auto& c : {kPlumbForward, kPlumbPostrouting, kPlumbPrerouting, kPlumbOutput}) {
    PLUMB_ASSIGN(bool exists, chainExists(nf, c.family, c.table, c.chain));
    if (!exists) continue;
    // Any rule, tagged or not: a rule someone added by hand keeps the table.
    Message m(nftType(NFT_MSG_GETRULE), 0);
    putNfgen(m, c.family);
    m.putStr(NFTA_RULE_TABLE, c.table);
    m.putStr(NFTA_RULE_CHAIN, c.chain);
    bool any = false;
    PLUMB_TRY(nf.dump(
        m,
        [&](const nlmsghdr*) -> Status {
          any = true;
          return {};
        },
        [&] { any = false; }));
    if (any) return {};
  }
  PLUMB_ASSIGN(bool table, chainExists(nf, NFPROTO_INET, "plumb", "forward"));
  if (!table) return {};
  auto st = runNft("delete table inet plumb\n");
  if (!st.ok()) return std::move(st).error().wrap("failed to remove nftables table inet plumb");
  return {};
}

}  // namespace plumb::netlink
