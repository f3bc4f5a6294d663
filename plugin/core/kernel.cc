#include "plugin/core/kernel.h"

#include <cstdlib>

#include "base/log.h"
#include "netlink/announce.h"
#include "netlink/socket.h"
#include "netlink/sysctl.h"

namespace plumb::core {

namespace {

class RealKernel : public Kernel {
 public:
  Result<Ns> openNetns(const std::string& path) override {
    PLUMB_ASSIGN(auto ns, openContainerNetns(path));
    return add(std::move(ns));
  }
  Result<Ns> temporaryNetns() override {
    PLUMB_ASSIGN(auto ns, nl::Netns::createTemporary());
    return add(std::move(ns));
  }
  void closeNetns(Ns ns) override {
    if (ns > 0 && static_cast<size_t>(ns) < spaces_.size()) spaces_[ns].reset();
  }
  const nl::Netns* netns(Ns ns) override {
    if (ns == kHost) return nullptr;
    auto* s = space(ns);
    return s ? &s->ns : nullptr;
  }

  Result<nl::LinkInfo> getLink(Ns ns, const std::string& name) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::getLink(*s, name);
  }
  Result<nl::LinkInfo> getLink(Ns ns, int index) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::getLink(*s, index);
  }
  Result<std::vector<nl::LinkInfo>> listLinks(Ns ns) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::listLinks(*s);
  }
  Status createVeth(Ns ns, const nl::VethSpec& spec, Ns peer_ns) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    nl::VethSpec v = spec;
    v.peer_netns = peer_ns == ns ? nullptr : netns(peer_ns);
    return nl::createVeth(*s, v);
  }
  Status createBridge(Ns ns, const nl::BridgeSpec& spec) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::createBridge(*s, spec);
  }
  Status createMacvlan(Ns ns, const nl::MacvlanSpec& spec, Ns in_ns) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    nl::MacvlanSpec m = spec;
    m.netns = in_ns == ns ? nullptr : netns(in_ns);
    return nl::createMacvlan(*s, m);
  }
  Status changeLink(Ns ns, int index, const nl::LinkChange& change) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    nl::LinkChange c = change;
    c.netns = nullptr;
    return nl::changeLink(*s, index, c);
  }
  Status moveLink(Ns ns, int index, Ns to, const nl::LinkChange& change) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    PLUMB_ASSIGN(auto* target, netnsOrHost(to));
    nl::LinkChange c = change;
    c.netns = target;
    return nl::changeLink(*s, index, c);
  }
  Status setBridgePortHairpin(Ns ns, int index, bool on) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::setBridgePortHairpin(*s, index, on);
  }
  Status deleteLink(Ns ns, int index) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::deleteLinkPromptly(*s, netns(ns), index);
  }
  Status addAddress(Ns ns, int index, const IpPrefix& prefix) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::addAddress(*s, index, prefix);
  }
  Result<std::vector<nl::AddrInfo>> listAddresses(Ns ns, int family, int index) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::listAddresses(*s, family, index);
  }
  Status addRoute(Ns ns, const nl::Route& route, bool replace) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::addRoute(*s, route, replace);
  }
  Result<std::vector<nl::Route>> listRoutes(Ns ns, int family, uint32_t table) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::listRoutes(*s, family, table);
  }
  Result<std::string> readSysctl(Ns ns, const std::string& key) override {
    return nl::readSysctl(netns(ns), key);
  }
  Status writeSysctl(Ns ns, const std::string& key, const std::string& value) override {
    return nl::writeSysctl(netns(ns), key, value);
  }
  Status ensureBridgeRules(const nl::BridgeRules& rules) override {
    return nl::Firewall::ensure(rules);
  }
  Status revokeBridgeRules(const std::string& bridge) override {
    return nl::Firewall::revokeBridge(bridge);
  }
  Status tidyRules() override { return nl::Firewall::tidy(); }
  Status unmasquerade(const std::string& owner, const std::vector<IpPrefix>& subnets,
                      const std::function<Result<bool>()>& unused) override {
    nl::Firewall::Lock lock(true);
    PLUMB_TRY(lock.status());
    PLUMB_ASSIGN(bool gone, unused());
    if (!gone) return {};
    for (const auto& subnet : subnets) PLUMB_TRY(nl::Firewall::unmasquerade(owner, subnet));
    return {};
  }
  Result<nl::LinkInfo> findDevice(const nl::DeviceRef& ref) override {
    PLUMB_ASSIGN(auto* s, sock(kHost));
    return nl::findDevice(*s, ref, sysfs_);
  }
  std::optional<nl::LinkInfo> pickDevice(const std::vector<nl::LinkInfo>& links,
                                         const nl::DeviceRef& ref) override {
    return nl::pickDevice(links, ref, sysfs_);
  }
  std::string pciAddressOf(const std::string& ifname) override {
    return nl::pciAddressOf(sysfs_, ifname);
  }
  Status addAltnames(Ns ns, int index, const std::vector<std::string>& names) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::addAltnames(*s, index, names);
  }
  Status deleteAltnames(Ns ns, int index, const std::vector<std::string>& names) override {
    PLUMB_ASSIGN(auto* s, sock(ns));
    return nl::deleteAltnames(*s, index, names);
  }
  Result<nl::SriovPf> sriovPf(const std::string& pf_ifname) override {
    return nl::sriovPf(sysfs_, pf_ifname);
  }
  Result<nl::VfLocation> sriovVf(const std::string& vf_pci) override {
    return nl::sriovVf(sysfs_, vf_pci);
  }
  Result<std::vector<nl::VfInfo>> vfSettings(int pf_index) override {
    PLUMB_ASSIGN(auto* s, sock(kHost));
    return nl::getVfs(*s, pf_index);
  }
  Status setVf(int pf_index, int vf, const nl::VfConfig& config) override {
    PLUMB_ASSIGN(auto* s, sock(kHost));
    return nl::setVf(*s, pf_index, vf, config);
  }
  void announce(Ns ns, int ifindex, const MacAddr& mac, const std::vector<IpAddr>& addrs,
                int port_index) override {
    const nl::Netns* where = netns(ns);
    if (!where) return;
    if (port_index) {
      auto st = nl::announceWhenForwarding(port_index, *where, ifindex, mac, addrs);
      if (!st.ok()) log::get("core")->info("{}", st.error().message);
      return;
    }
    for (const auto& a : addrs) {
      if (a.isV4()) continue;
      auto st = nl::announceAddress(*where, ifindex, mac, a);
      if (!st.ok()) log::get("core")->info("{}", st.error().message);
    }
  }

 private:
  struct Space {
    nl::Netns ns;
    nl::NlSocket sock;
  };

  const std::string sysfs_ = sysfsRoot();

  Result<Ns> add(nl::Netns ns) {
    PLUMB_ASSIGN(auto s, nl::NlSocket::openIn(ns));
    if (spaces_.empty()) spaces_.emplace_back();  // kHost's slot
    spaces_.push_back(Space{std::move(ns), std::move(s)});
    return static_cast<Ns>(spaces_.size() - 1);
  }
  Space* space(Ns ns) {
    if (ns <= 0 || static_cast<size_t>(ns) >= spaces_.size() || !spaces_[ns]) return nullptr;
    return &*spaces_[ns];
  }
  Result<nl::NlSocket*> sock(Ns ns) {
    if (ns == kHost) {
      if (!host_) PLUMB_ASSIGN(host_, nl::NlSocket::open());
      return &*host_;
    }
    auto* s = space(ns);
    if (!s) return fail(Errc::kInternal, "netns handle " + std::to_string(ns) + " is closed");
    return &s->sock;
  }
  Result<const nl::Netns*> netnsOrHost(Ns ns) {
    if (ns == kHost) {
      if (!host_ns_) PLUMB_ASSIGN(host_ns_, nl::Netns::current());
      return &*host_ns_;
    }
    auto* s = space(ns);
    if (!s) return fail(Errc::kInternal, "netns handle " + std::to_string(ns) + " is closed");
    return &s->ns;
  }

  std::optional<nl::NlSocket> host_;
  std::optional<nl::Netns> host_ns_;
  std::vector<std::optional<Space>> spaces_;
};

}  // namespace

Result<nl::Netns> openContainerNetns(const std::string& path) {
  auto ns = nl::Netns::fromPath(path);
  if (!ns.ok() && ns.error().code == Errc::kNotFound)
    return fail(Errc::kNoNetns, ns.error().message);
  if (ns.ok() && ns->isCurrent())
    return fail(Errc::kInvalid,
                "netns " + path + " is the namespace plumb runs in, not a container's");
  return ns;
}

std::string sysfsRoot() {
  const char* root = std::getenv("PLUMB_SYSFS_ROOT");
  return root && *root ? root : "/sys";
}

std::unique_ptr<Kernel> realKernel() { return std::make_unique<RealKernel>(); }

}  // namespace plumb::core
