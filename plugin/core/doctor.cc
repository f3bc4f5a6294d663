#include "plugin/core/doctor.h"

#include <sys/stat.h>

#include <algorithm>
#include <functional>
#include <map>
#include <memory>
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

// An attachment key as AttachmentKey::str() writes it ("network/container/ifname"; no part
// holds a '/'); nullopt for anything else.
std::optional<AttachmentKey> parseKey(const std::string& text) {
  auto a = text.find('/');
  auto b = a == std::string::npos ? a : text.find('/', a + 1);
  if (b == std::string::npos || text.find('/', b + 1) != std::string::npos) return std::nullopt;
  AttachmentKey key{text.substr(0, a), text.substr(a + 1, b - a - 1), text.substr(b + 1)};
  if (key.network.empty() || key.container_id.empty() || key.ifname.empty()) return std::nullopt;
  return key;
}

// The attachment a link's stamp (Engine::ownerStamp) names; nullopt for any other alias, a
// bridge's stamp included.
std::optional<AttachmentKey> stampedKey(const std::string& alias) {
  constexpr std::string_view kHead = "plumb:";
  if (alias.rfind(kHead, 0) != 0 || alias.rfind("plumb:bridge:", 0) == 0) return std::nullopt;
  return parseKey(alias.substr(kHead.size()));
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
    // so what is seen here and recorded by then is never taken for a leak. Every fix checks
    // again, just before it acts, that what it removes still belongs to no record.
    std::vector<AttachmentRecord> records;
    PLUMB_TRY(refresh(&records));
    checkRecords(records);
    // What is left of plumb's, against the records as they are now (fixes took some).
    if (options_.fix) PLUMB_TRY(refresh(&records));
    PLUMB_TRY(knowNetworks(records));
    // A VF or a switch port is given back with its link: their lines cover it (a VF's netdev
    // back on the host is restored, not deleted).
    guarded("VF claims", [&] { return checkVfClaims(); });
    checkOvs(records);
    if (options_.fix) PLUMB_TRY(refresh(&records));
    guarded("links", [&] { return checkLinks(); });
    guarded("addresses", [&] { return checkAddresses(); });
    checkDhcpClients(records);
    guarded("nftables rules", [&] { return checkRules(); });
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
  // A check that cannot be made is a finding of its own, after what was found and fixed.
  void guarded(const std::string& what, const std::function<Status()>& check) {
    auto st = check();
    if (!st.ok()) report({"check-failed", what, st.error().message});
  }
  // The kernel, then the store, again.
  Status refresh(std::vector<AttachmentRecord>* records) {
    PLUMB_ASSIGN(host_links_, kernel_->listLinks(Kernel::kHost));
    PLUMB_ASSIGN(*records, store_.listAttachments());
    keys_.clear();
    for (const auto& r : *records) keys_.insert(r.key.str());
    return {};
  }
  // The networks this store knows (its records, its definitions, its addresses and VF
  // claims). Another store (a CNI dataDir of its own) stamps and tags what it makes the same
  // way: what names a network unknown here is reported, never removed.
  Status knowNetworks(const std::vector<AttachmentRecord>& records) {
    for (const auto& r : records) known_.insert(r.key.network);
    PLUMB_ASSIGN(auto defined, store_.listNetworks(""));
    for (const auto& n : defined) known_.insert(n.name);
    PLUMB_ASSIGN(auto held, Ipam(store_).held());
    for (const auto& h : held) known_.insert(h.first.network);
    PLUMB_ASSIGN(auto claims, VfClaims(store_).list());
    for (const auto& c : claims) known_.insert(c.owner.network);
    return {};
  }
  bool known(const std::string& network) const { return known_.count(network) != 0; }
  static std::string notHere(const std::string& network) {
    return "; no network " + network +
           " is in this store (another state dir's or dataDir's?): not removed";
  }

  // Whether key has no record now (read again: an attach records itself before it makes
  // anything, so what it made is seen here with its record).
  Result<bool> unrecorded(const AttachmentKey& key) {
    PLUMB_ASSIGN(auto r, store_.findAttachment(key));
    return !r.has_value();
  }

  // Removes a record's attachment, if the record is still the one judged (an ADD may have
  // replaced it meanwhile).
  Status detachIfUnchanged(const AttachmentRecord& seen) {
    PLUMB_ASSIGN(auto now, store_.findAttachment(seen.key));
    if (!now) return {};  // gone meanwhile: nothing left to do
    if (now->state != seen.state || now->created != seen.created ||
        now->owner_pid != seen.owner_pid || now->owner_start != seen.owner_start)
      return fail(Errc::kTryAgain, "it changed meanwhile: left as it is");
    return engine_.detach({seen.key, "", {}, {}});
  }

  // Why a complete record is no longer backed by the kernel; nullopt when it is, or when that
  // cannot be told now.
  std::optional<std::string> staleness(const AttachmentRecord& r) {
    const std::string stamp = Engine::ownerStamp(r.key);
    auto stampedOnHost = [&] {
      // Listed now: a Join that finished after the first listing has its link here.
      auto links = kernel_->listLinks(Kernel::kHost);
      if (!links.ok()) return true;
      return std::any_of(links->begin(), links->end(),
                         [&](const nl::LinkInfo& l) { return l.alias == stamp; });
    };
    if (r.netns.empty()) {
      if (stampedOnHost()) return std::nullopt;
      return "no interface of it is left on the host";
    }
    auto ns = kernel_->openNetns(r.netns);
    if (!ns.ok()) {
      if (ns.error().code != Errc::kNoNetns) return std::nullopt;  // not readable: not judged
      // Docker names its sandboxes under its own exec root: the link is what tells.
      if (r.frontend == "docker" && stampedOnHost()) return std::nullopt;
      return "its netns " + r.netns + " is gone";
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
    if (stampedOnHost()) return std::nullopt;
    if (link.ok())
      return "interface " + r.key.ifname + " in " + r.netns +
             " is not the one plumb made (its netns was made anew?)";
    return "interface " + r.key.ifname + " is missing from its netns " + r.netns;
  }

  void checkRecords(const std::vector<AttachmentRecord>& records) {
    for (const auto& r : records) {
      if (r.state != "ready") {
        if (!Engine::abandoned(r)) continue;  // an attach under way
        report({"abandoned-attach", r.key.str(),
                "its attach (pid " + std::to_string(r.owner_pid) +
                    ") ended before it finished; what it made is half-made"},
               [&]() -> Status {
                 PLUMB_ASSIGN(auto now, store_.findAttachment(r.key));
                 if (now && !Engine::abandoned(*now))
                   return fail(Errc::kTryAgain, "an attach of it is under way: left as it is");
                 return detachIfUnchanged(r);
               });
        continue;
      }
      if (auto why = staleness(r)) {
        report({"stale-record", r.key.str(), *why}, [&] { return detachIfUnchanged(r); });
        continue;
      }
      for (const auto& h : r.helpers) {
        if (h.kind != "dhcp" || isDhcpClient(h.pid, h.program)) continue;
        report({"dhcp-stopped", r.key.str(),
                "its DHCP client (" + h.program + ", pid " + std::to_string(h.pid) +
                    ") is not running: the lease is not renewed (attach it again)"});
      }
    }
  }

  bool recorded(const AttachmentKey& key) const { return keys_.count(key.str()) != 0; }

  Status checkLinks() {
    for (const auto& l : host_links_) {
      auto key = stampedKey(l.alias);
      if (!key || recorded(*key) || covered_.count(key->str())) continue;
      bool removable = l.kind == "veth" || l.kind == "macvlan";
      std::string what = removable ? "a " + l.kind + " plumb made for " + key->str()
                                   : "a device plumb took for " + key->str();
      if (!known(key->network)) {
        report({removable ? "orphan-link" : "orphan-device", l.name,
                what + ", which has no record" + notHere(key->network)});
      } else if (removable) {
        report({"orphan-link", l.name, what + ", which has no record"}, [&]() -> Status {
          // Still that link, with that stamp, and still no record.
          auto now = kernel_->getLink(Kernel::kHost, l.name);
          if (!now.ok() || now->index != l.index || now->alias != l.alias) return {};
          PLUMB_ASSIGN(bool orphan, unrecorded(*key));
          if (!orphan) return fail(Errc::kTryAgain, "an attach of it began: left as it is");
          return kernel_->deleteLink(Kernel::kHost, now->index);
        });
      } else {
        report({"orphan-device", l.name,
                what + ", which has no record; plumb cannot tell how to give it back"});
      }
    }
    return {};
  }

  void checkOvs(const std::vector<AttachmentRecord>& records) {
    // One name per socket, however it was written.
    auto canonical = [](const std::string& where) {
      return where.rfind("unix:", 0) == 0 ? where.substr(5) : where;
    };
    std::set<std::string> sockets;
    std::set<std::string> used;
    for (const auto& w : options_.ovsdb) sockets.insert(canonical(w));
    for (const auto& r : records) {
      if (r.mode == "ovs") used.insert(canonical(modes::ovsdbSocket(r.ovsdb)));
    }
    sockets.insert(used.begin(), used.end());
    if (options_.ovsdb.empty()) {
      std::string fallback = canonical(modes::ovsdbSocket(""));
      if (pathExists(fallback)) sockets.insert(fallback);
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
      std::set<std::string> seen;
      for (const auto& key : *owners) {
        if (recorded(key) || !seen.insert(key.str()).second) continue;
        covered_.insert(key.str());
        std::string what = "an Open vSwitch port plumb made (" + where + ")";
        if (!known(key.network)) {
          report({"orphan-port", key.str(), what + notHere(key.network)});
          continue;
        }
        report({"orphan-port", key.str(), what + ", whose attachment has no record"},
               [&, key]() -> Status {
                 PLUMB_ASSIGN(bool orphan, unrecorded(key));
                 if (!orphan) return fail(Errc::kTryAgain, "an attach of it began: left as it is");
                 return modes::removeOvsPortsOf(where, key, *kernel_);
               });
      }
    }
  }

  Status checkVfClaims() {
    PLUMB_ASSIGN(auto claims, VfClaims(store_).list());
    for (const auto& c : claims) {
      if (recorded(c.owner)) continue;
      covered_.insert(c.owner.str());
      // sweep gives back only the VFs of claims without a record (it reads them again).
      report({"orphan-vf", c.pci,
              "VF " + std::to_string(c.vf) + " of " + c.pf + " is held for " + c.owner.str() +
                  ", which has no record"},
             [&] { return engine_.sweep(c.owner.network, SriovPlan{}, {}); });
    }
    return {};
  }

  Status checkAddresses() {
    PLUMB_ASSIGN(auto held, Ipam(store_).held());
    std::map<std::string, Status> released;  // by owner: one release takes all its addresses
    for (const auto& one : held) {
      const AttachmentKey& owner = one.first;
      const std::string& addr = one.second;
      // dockerd owns its IPAM driver's addresses (plugin/docker/ipam_driver.cc) and releases
      // them itself, one by one: they belong to no attachment of plumb's.
      if (owner.network == "docker-ipam" || recorded(owner)) continue;
      report({"orphan-address", addr,
              "held for " + owner.str() + ", which has no record (or a DEL is under way)"},
             [&]() -> Status {
               auto done = released.find(owner.str());
               if (done != released.end()) return done->second;
               // Checked and released in one transaction: an ADD of that key in between
               // would hold the same addresses under its record.
               Status st = store_.write([&](Db&) -> Status {
                 PLUMB_ASSIGN(bool orphan, unrecorded(owner));
                 if (!orphan) return fail(Errc::kTryAgain, "an attach of it began: left as it is");
                 return Ipam(store_).release(owner);
               });
               released.emplace(owner.str(), st);
               return st;
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
      std::string subject = c.name + " pid " + std::to_string(c.pid);
      // Another store's client (a CNI dataDir of its own, another --state-dir): not ours to
      // judge, even under a network name this store knows too.
      if (!c.store.empty() && c.store != store_.path()) continue;
      if (c.key.empty() || c.store.empty()) {
        // Started before clients carried their key: known by pid only, so not removed.
        if (!owned.count(c.pid))
          report({"orphan-dhcp-client", subject,
                  "a DHCP client plumb started, whose attachment cannot be told"});
        continue;
      }
      auto key = parseKey(c.key);
      // Any record of its key, whatever its state (an attach under way, a foreground client).
      if (!key || keys_.count(c.key) != 0 || owned.count(c.pid)) continue;
      if (!known(key->network)) {
        report({"orphan-dhcp-client", subject,
                "a DHCP client plumb started for " + c.key + notHere(key->network)});
        continue;
      }
      report({"orphan-dhcp-client", subject,
              "a DHCP client plumb started for " + c.key + ", which has no record"},
             [&, key]() -> Status {
               PLUMB_ASSIGN(bool orphan, unrecorded(*key));
               if (!orphan) return fail(Errc::kTryAgain, "an attach of it began: left as it is");
               stopDhcp(c.pid, c.name);
               if (isDhcpClient(c.pid, c.name))
                 return fail(Errc::kTryAgain, "it did not stop within 3 s of SIGTERM");
               return {};
             });
    }
  }

  // Rules go with the networks and endpoints that own them: a network's masquerade while it
  // has a live attachment or a definition (Docker's), a bridge's accepts while the bridge is
  // there, an endpoint's published ports while the endpoint is. With fix, all of it is read
  // and removed under the firewall's exclusive lock, as a last DEL removes a network's rules:
  // an ADD recorded before it keeps its rules, one after adds them again.
  Status checkRules() {
    std::optional<nl::Firewall::Lock> lock;
    std::vector<AttachmentRecord> records;
    std::vector<nl::LinkInfo> links = host_links_;
    if (options_.fix) {
      lock.emplace(true);
      PLUMB_TRY(lock->status());
      PLUMB_ASSIGN(links, kernel_->listLinks(Kernel::kHost));
    }
    PLUMB_ASSIGN(auto tags, nl::Firewall::tags());
    if (tags.empty()) return {};
    PLUMB_ASSIGN(records, store_.listAttachments());
    std::set<std::string> networks;
    for (const auto& r : records) {
      bool live = r.state == "ready" || !Engine::abandoned(r);
      if (live) networks.insert(r.key.network);
    }
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
    const nl::Firewall::Lock* held = lock ? &*lock : nullptr;
    bool removed = false;
    for (const auto& tag : tags) {
      auto t = nl::Firewall::parseTag(tag);
      if (!t) continue;
      std::string why;
      if (t->kind == "fwd") {
        bool there = std::any_of(links.begin(), links.end(),
                                 [&](const nl::LinkInfo& l) { return l.name == t->owner; });
        if (there) continue;
        why = "forwarding accepts for bridge " + t->owner + ", which is gone";
      } else if (t->kind == "masq") {
        if (anyOwns(*t, networks)) continue;
        if (!anyOwns(*t, known_)) {
          report({"orphan-rule", tag,
                  "masquerade for network " + t->owner + ", which has no attachment here" +
                      notHere(t->owner)});
          continue;
        }
        why = "masquerade for network " + t->owner + ", which has no attachment or definition";
      } else {
        if (anyOwns(*t, endpoints)) continue;
        why = "published ports of endpoint " + t->owner + ", which is gone";
      }
      report({"orphan-rule", tag, why}, [&]() -> Status {
        removed = true;
        return nl::Firewall::removeTag(tag, held);
      });
    }
    if (removed) {
      auto st = nl::Firewall::tidy(held);
      if (!st.ok()) report({"firewall-table", "inet plumb", "left behind: " + st.error().message});
    }
    return {};
  }

  Store& store_;
  const DoctorOptions& options_;
  std::unique_ptr<Kernel> kernel_;
  Engine engine_;
  std::vector<nl::LinkInfo> host_links_;
  std::set<std::string> keys_;     // every record's key, stale ones included until fixed
  std::set<std::string> known_;    // networks this store knows
  std::set<std::string> covered_;  // keys whose VF or port finding takes their links too
  std::vector<Finding> findings_;
};

}  // namespace

Result<std::vector<Finding>> doctor(Store& store, const DoctorOptions& options) {
  return Doctor(store, options).run();
}

}  // namespace plumb::core
