#include "plugin/core/doctor.h"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <optional>
#include <set>

#include "netlink/firewall.h"
#include "plugin/core/dhcp.h"
#include "plugin/core/engine.h"
#include "plugin/core/ipam.h"
#include "plugin/core/kernel.h"
#include "plugin/core/modes/mode.h"
#include "plugin/core/vf_claims.h"

namespace plumb::core {

namespace {

// The attachment a link's stamp (Engine::ownerStamp) names; nullopt for any other alias, a
// bridge's stamp included.
std::optional<AttachmentKey> stampedKey(const std::string& alias) {
  constexpr std::string_view kHead = "plumb:";
  if (alias.rfind(kHead, 0) != 0 || alias.rfind("plumb:bridge:", 0) == 0) return std::nullopt;
  std::string rest = alias.substr(kHead.size());
  auto a = rest.find('/');
  auto b = a == std::string::npos ? a : rest.find('/', a + 1);
  if (b == std::string::npos || rest.find('/', b + 1) != std::string::npos) return std::nullopt;
  AttachmentKey key{rest.substr(0, a), rest.substr(a + 1, b - a - 1), rest.substr(b + 1)};
  if (key.network.empty() || key.container_id.empty() || key.ifname.empty()) return std::nullopt;
  return key;
}

bool pathExists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

class Doctor {
 public:
  Doctor(Store& store, const DoctorOptions& options)
      : store_(store), options_(options), kernel_(realKernel()), engine_(store, *kernel_) {}

  Result<std::vector<Finding>> run() {
    // The kernel first, then the store: an attach records itself before it makes anything,
    // so what is seen here and recorded by then is never taken for a leak.
    PLUMB_ASSIGN(host_links_, kernel_->listLinks(Kernel::kHost));
    PLUMB_ASSIGN(auto records, store_.listAttachments());
    PLUMB_TRY(checkRecords(records));
    if (options_.fix) {
      // What the fixes removed no longer accounts for anything.
      PLUMB_ASSIGN(host_links_, kernel_->listLinks(Kernel::kHost));
      PLUMB_ASSIGN(records, store_.listAttachments());
      live_ = records;
    }
    for (const auto& r : records) keys_.insert(r.key.str());
    // A VF or a switch port is given back with its link: their lines cover it (a VF's
    // netdev back on the host is restored, not deleted).
    PLUMB_TRY(checkVfClaims());
    checkOvs(records);
    if (options_.fix) PLUMB_ASSIGN(host_links_, kernel_->listLinks(Kernel::kHost));
    PLUMB_TRY(checkLinks());
    PLUMB_TRY(checkAddresses());
    checkDhcpClients(records);
    PLUMB_TRY(checkRules());
    return std::move(findings_);
  }

 private:
  void report(Finding f, const std::function<Status()>& fix = {}) {
    f.fixable = static_cast<bool>(fix);
    if (options_.fix && fix) {
      auto st = fix();
      f.fixed = st.ok();
      if (!st.ok()) f.fix_error = st.error().message;
    }
    findings_.push_back(std::move(f));
  }

  Status detach(const AttachmentKey& key) { return engine_.detach({key, "", {}, {}}); }

  // Why a complete record is no longer backed by the kernel; nullopt when it is.
  std::optional<std::string> staleness(const AttachmentRecord& r) {
    const std::string stamp = Engine::ownerStamp(r.key);
    auto stampedOnHost = [&] {
      return std::any_of(host_links_.begin(), host_links_.end(),
                         [&](const nl::LinkInfo& l) { return l.alias == stamp; });
    };
    if (r.netns.empty()) {
      if (stampedOnHost()) return std::nullopt;
      return "no interface of it is left on the host";
    }
    auto ns = kernel_->openNetns(r.netns);
    if (!ns.ok()) {
      if (ns.error().code == Errc::kNoNetns) return "its netns " + r.netns + " is gone";
      if (ns.error().code == Errc::kInvalid) return ns.error().message;
      return std::nullopt;  // unreadable now (a busy kernel) is not taken for gone
    }
    struct Close {
      Kernel& k;
      Kernel::Ns ns;
      ~Close() { k.closeNetns(ns); }
    } close{*kernel_, *ns};
    // A VF under a userspace driver has no interface to look for.
    if (r.mode == "sriov" && !r.pci.empty() &&
        !pathExists(sysfsRoot() + "/bus/pci/devices/" + r.pci + "/net"))
      return std::nullopt;
    auto link = kernel_->getLink(*ns, r.key.ifname);
    if (link.ok() && link->alias == stamp) return std::nullopt;
    // Docker names the interface itself (and moves it only after Join): look for the stamp.
    auto links = kernel_->listLinks(*ns);
    if (!links.ok()) return std::nullopt;
    for (const auto& l : *links) {
      if (l.alias == stamp) return std::nullopt;
    }
    if (stampedOnHost() && r.frontend == "docker") return std::nullopt;
    if (link.ok())
      return "interface " + r.key.ifname + " in " + r.netns +
             " is not the one plumb made (its netns was made anew?)";
    return "interface " + r.key.ifname + " is missing from its netns " + r.netns;
  }

  Status checkRecords(const std::vector<AttachmentRecord>& records) {
    for (const auto& r : records) {
      if (r.state != "ready") {
        if (!Engine::abandoned(r)) {
          live_.push_back(r);  // an attach under way
          continue;
        }
        report({"abandoned-attach", r.key.str(),
                "its attach (pid " + std::to_string(r.owner_pid) +
                    ") ended before it finished; what it made is half-made"},
               [&] { return detach(r.key); });
        continue;
      }
      if (auto why = staleness(r)) {
        report({"stale-record", r.key.str(), *why}, [&] { return detach(r.key); });
        continue;
      }
      live_.push_back(r);
      for (const auto& h : r.helpers) {
        if (h.kind != "dhcp" || isDhcpClient(h.pid, h.program)) continue;
        report({"dhcp-stopped", r.key.str(),
                "its DHCP client (" + h.program + ", pid " + std::to_string(h.pid) +
                    ") is not running: the lease is not renewed (attach it again)"});
      }
    }
    return {};
  }

  bool recorded(const AttachmentKey& key) const { return keys_.count(key.str()) != 0; }

  Status checkLinks() {
    for (const auto& l : host_links_) {
      auto key = stampedKey(l.alias);
      if (!key || recorded(*key) || covered_.count(key->str())) continue;
      if (l.kind == "veth" || l.kind == "macvlan") {
        report({"orphan-link", l.name,
                "a " + l.kind + " plumb made for " + key->str() + ", which has no record"},
               [&]() -> Status {
                 // Still that link, with that stamp: a name can be taken again meanwhile.
                 auto now = kernel_->getLink(Kernel::kHost, l.name);
                 if (!now.ok() || now->alias != l.alias) return {};
                 return kernel_->deleteLink(Kernel::kHost, now->index);
               });
      } else {
        report({"orphan-device", l.name,
                "a device plumb took for " + key->str() +
                    ", which has no record; plumb cannot tell how to give it back"});
      }
    }
    return {};
  }

  void checkOvs(const std::vector<AttachmentRecord>& records) {
    std::set<std::string> sockets(options_.ovsdb.begin(), options_.ovsdb.end());
    std::set<std::string> used;
    for (const auto& r : records) {
      if (r.mode != "ovs") continue;
      used.insert(modes::ovsdbSocket(r.ovsdb));
    }
    sockets.insert(used.begin(), used.end());
    if (options_.ovsdb.empty()) {
      std::string fallback = modes::ovsdbSocket("");
      std::string path = fallback.rfind("unix:", 0) == 0 ? fallback.substr(5) : fallback;
      if (pathExists(path)) sockets.insert(fallback);
    }
    for (const auto& where : sockets) {
      auto owners = modes::ovsPortOwners(where);
      if (!owners.ok()) {
        // Only worth a line when an attachment depends on that switch.
        if (used.count(where))
          report({"ovsdb-unreachable", where,
                  "plumb's ports there cannot be checked: " + owners.error().message});
        continue;
      }
      for (const auto& key : *owners) {
        if (recorded(key)) continue;
        covered_.insert(key.str());
        std::vector<AttachmentKey> keep;
        for (const auto& r : records) {
          if (r.key.network == key.network) keep.push_back(r.key);
        }
        OvsPlan plan;
        plan.ovsdb = where;
        report({"orphan-port", key.str(),
                "an Open vSwitch port plumb made (" + where + "), whose attachment has no record"},
               [&] { return engine_.sweep(key.network, plan, keep); });
      }
    }
  }

  Status checkVfClaims() {
    PLUMB_ASSIGN(auto claims, VfClaims(store_).list());
    for (const auto& c : claims) {
      if (recorded(c.owner)) continue;
      covered_.insert(c.owner.str());
      report({"orphan-vf", c.pci,
              "VF " + std::to_string(c.vf) + " of " + c.pf + " is held for " + c.owner.str() +
                  ", which has no record"},
             [&] { return engine_.sweep(c.owner.network, SriovPlan{}, {}); });
    }
    return {};
  }

  Status checkAddresses() {
    PLUMB_ASSIGN(auto held, Ipam(store_).held());
    std::set<std::string> done;
    for (const auto& one : held) {
      const AttachmentKey& owner = one.first;
      const std::string& addr = one.second;
      // dockerd owns its IPAM driver's addresses (plugin/docker/ipam_driver.cc) and releases
      // them itself, one by one: they belong to no attachment of plumb's.
      if (owner.network == "docker-ipam" || recorded(owner)) continue;
      bool first = done.insert(owner.str()).second;
      report({"orphan-address", addr, "held for " + owner.str() + ", which has no record"},
             [&, first]() -> Status {
               if (!first) return {};  // released with the owner's first address
               return Ipam(store_).release(owner);
             });
    }
    return {};
  }

  void checkDhcpClients(const std::vector<AttachmentRecord>& records) {
    std::set<pid_t> owned;
    for (const auto& r : records) {
      for (const auto& h : r.helpers) owned.insert(h.pid);
    }
    for (const auto& c : runningDhcpClients()) {
      if (owned.count(c.pid)) continue;
      report({"orphan-dhcp-client", c.name + " pid " + std::to_string(c.pid),
              "a DHCP client plumb started, for an attachment that has no record"},
             [&]() -> Status {
               stopDhcp(c.pid, c.name);
               return {};
             });
    }
  }

  // Rules go with the networks and endpoints that own them: a network's masquerade while it
  // has a live attachment or a definition (Docker's), a bridge's accepts while the bridge is
  // there, an endpoint's published ports while the endpoint is.
  Status checkRules() {
    PLUMB_ASSIGN(auto tags, nl::Firewall::tags());
    if (tags.empty()) return {};
    std::set<std::string> networks;
    for (const auto& r : live_) networks.insert(r.key.network);
    PLUMB_ASSIGN(auto defined, store_.listNetworks(""));
    std::set<std::string> endpoints;
    for (const auto& n : defined) {
      networks.insert(n.name);
      PLUMB_ASSIGN(auto eps, store_.listEndpoints(n.name));
      for (const auto& e : eps) endpoints.insert(e.id);
    }
    auto anyOwns = [](const nl::Firewall::Tag& t, const std::set<std::string>& owners) {
      return std::any_of(owners.begin(), owners.end(),
                         [&](const std::string& o) { return nl::Firewall::ownedBy(t, o); });
    };
    bool removed = false;
    for (const auto& tag : tags) {
      auto t = nl::Firewall::parseTag(tag);
      if (!t) continue;
      std::string why;
      if (t->kind == "fwd") {
        bool there = std::any_of(host_links_.begin(), host_links_.end(),
                                 [&](const nl::LinkInfo& l) { return l.name == t->owner; });
        if (there) continue;
        why = "forwarding accepts for bridge " + t->owner + ", which is gone";
      } else if (t->kind == "masq") {
        if (anyOwns(*t, networks)) continue;
        why = "masquerade for network " + t->owner + ", which has no attachment or definition";
      } else {
        if (anyOwns(*t, endpoints)) continue;
        why = "published ports of endpoint " + t->owner + ", which is gone";
      }
      report({"orphan-rule", tag, why}, [&]() -> Status {
        removed = true;
        return nl::Firewall::removeTag(tag);
      });
    }
    if (removed) {
      auto st = nl::Firewall::tidy();
      if (!st.ok()) report({"firewall-table", "inet plumb", "left behind: " + st.error().message});
    }
    return {};
  }

  Store& store_;
  const DoctorOptions& options_;
  std::unique_ptr<Kernel> kernel_;
  Engine engine_;
  std::vector<nl::LinkInfo> host_links_;
  std::vector<AttachmentRecord> live_;  // records the kernel backs, or attaches under way
  std::set<std::string> keys_;          // every record's key, stale ones included until fixed
  std::set<std::string> covered_;       // keys whose VF or port finding takes their links too
  std::vector<Finding> findings_;
};

}  // namespace

Result<std::vector<Finding>> doctor(Store& store, const DoctorOptions& options) {
  return Doctor(store, options).run();
}

}  // namespace plumb::core
