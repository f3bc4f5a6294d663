// The kernel as the engine and its modes see it: every query and change they make, on network
// namespaces named by handle. RealKernel forwards to netlink/ (rtnetlink, sysctls, nftables,
// announcements); the unit tests' FakeKernel keeps links, addresses, routes, sysctls and rules
// in memory, so each mode's steps and their inverses are checked without root, with a failure
// injected at any change. Internal to plugin/core.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "netlink/addr.h"
#include "netlink/device.h"
#include "netlink/firewall.h"
#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/vf.h"

namespace plumb::core {

namespace nl = plumb::netlink;

class Kernel {
 public:
  // A network namespace: kHost (the caller's), or a handle from openNetns/temporaryNetns,
  // valid until closeNetns or the Kernel's end.
  using Ns = int;
  static constexpr Ns kHost = 0;

  virtual ~Kernel() = default;

  // A netns by path; Errc::kNoNetns when it is gone.
  virtual Result<Ns> openNetns(const std::string& path) = 0;
  // A new, empty netns (a place to rename a device where no name collides).
  virtual Result<Ns> temporaryNetns() = 0;
  virtual void closeNetns(Ns ns) = 0;
  // The netns itself, for a program started in it (a DHCP client); nullptr in a fake.
  virtual const nl::Netns* netns(Ns ns) = 0;

  virtual Result<nl::LinkInfo> getLink(Ns ns, const std::string& name) = 0;
  virtual Result<nl::LinkInfo> getLink(Ns ns, int index) = 0;
  virtual Result<std::vector<nl::LinkInfo>> listLinks(Ns ns) = 0;
  // spec.peer_netns is ignored: the peer is born in peer_ns.
  virtual Status createVeth(Ns ns, const nl::VethSpec& spec, Ns peer_ns) = 0;
  virtual Status createBridge(Ns ns, const nl::BridgeSpec& spec) = 0;
  // spec.netns is ignored: the link is born in in_ns, its parent looked up in ns.
  virtual Status createMacvlan(Ns ns, const nl::MacvlanSpec& spec, Ns in_ns) = 0;
  // change.netns is ignored: moveLink moves links.
  virtual Status changeLink(Ns ns, int index, const nl::LinkChange& change) = 0;
  // Moves the link to netns to and applies change there (its name, MTU, MAC, alias), in one
  // request: the kernel moves it first, so a change it then refuses leaves it moved.
  virtual Status moveLink(Ns ns, int index, Ns to, const nl::LinkChange& change) = 0;
  Status moveLink(Ns ns, int index, Ns to) { return moveLink(ns, index, to, nl::LinkChange{}); }
  virtual Status setBridgePortHairpin(Ns ns, int index, bool on) = 0;
  // Returns once the link (a veth: with its peer) and its addresses are out of the namespace,
  // not once the kernel has freed it (netlink/link.h: deleteLinkPromptly).
  virtual Status deleteLink(Ns ns, int index) = 0;

  virtual Status addAddress(Ns ns, int index, const IpPrefix& prefix) = 0;
  virtual Result<std::vector<nl::AddrInfo>> listAddresses(Ns ns, int family, int index) = 0;
  virtual Status addRoute(Ns ns, const nl::Route& route, bool replace) = 0;
  virtual Result<std::vector<nl::Route>> listRoutes(Ns ns, int family, uint32_t table) = 0;
  virtual Result<std::string> readSysctl(Ns ns, const std::string& key) = 0;
  virtual Status writeSysctl(Ns ns, const std::string& key, const std::string& value) = 0;

  // plumb's forwarding and masquerade rules (netlink/firewall.h).
  virtual Status ensureBridgeRules(const nl::BridgeRules& rules) = 0;
  virtual Status revokeBridgeRules(const std::string& bridge) = 0;
  virtual Status tidyRules() = 0;
  // owner's masquerade of subnets goes if unused() still says so under the rules' exclusive
  // lock (so an ADD recorded before the check keeps its rules and one after re-adds them).
  virtual Status unmasquerade(const std::string& owner, const std::vector<IpPrefix>& subnets,
                              const std::function<Result<bool>()>& unused) = 0;

  // A device on the host by name, MAC or PCI address (sysfs); the PCI address of a netdev.
  virtual Result<nl::LinkInfo> findDevice(const nl::DeviceRef& ref) = 0;
  virtual std::optional<nl::LinkInfo> pickDevice(const std::vector<nl::LinkInfo>& links,
                                                 const nl::DeviceRef& ref) = 0;
  virtual std::string pciAddressOf(const std::string& ifname) = 0;

  // Alternative names of a link (a device's altnames go before it is renamed or moved).
  virtual Status addAltnames(Ns ns, int index, const std::vector<std::string>& names) = 0;
  virtual Status deleteAltnames(Ns ns, int index, const std::vector<std::string>& names) = 0;

  // SR-IOV: VFs as sysfs lays them out (netlink/vf.h), and the settings of a host PF's VFs
  // through its driver. The real kernel's sysfs is sysfsRoot().
  virtual Result<nl::SriovPf> sriovPf(const std::string& pf_ifname) = 0;
  virtual Result<nl::VfLocation> sriovVf(const std::string& vf_pci) = 0;
  virtual Result<std::vector<nl::VfInfo>> vfSettings(int pf_index) = 0;
  virtual Status setVf(int pf_index, int vf, const nl::VfConfig& config) = 0;

  // Neighbours told of addrs on ifindex in ns (netlink/announce.h): once the bridge port
  // port_index forwards, or at once (IPv6 only: the kernel sends IPv4's) when it is 0.
  virtual void announce(Ns ns, int ifindex, const MacAddr& mac, const std::vector<IpAddr>& addrs,
                        int port_index) = 0;
};

// A container's netns by path: Errc::kNoNetns when it is gone, kInvalid when it is not a netns
// or is the one plumb runs in (configuring the host as a container would put the container's
// address and default route on the host).
Result<nl::Netns> openContainerNetns(const std::string& path);

// Where the real kernel's sysfs is read: $PLUMB_SYSFS_ROOT (a test's tree of the kernel's
// shape), else /sys.
std::string sysfsRoot();

// The real kernel, on this process's namespaces. Opens its host socket on first use.
std::unique_ptr<Kernel> realKernel();

}  // namespace plumb::core
