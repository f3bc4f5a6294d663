// An in-memory kernel for the engine's unit tests: namespaces with links (veth pairs, bridges
// and their ports, macvlans, plain devices), addresses, routes, sysctls and plumb's firewall
// rules, with the kernel's answers for names taken or missing. Every change is counted, and
// the fail_at-th one is refused, so a test can fail an attach at each of its changes in turn
// and compare the whole state before and after (snapshot()).
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "plugin/core/kernel.h"

namespace plumb::core::testing {

class FakeKernel : public Kernel {
 public:
  FakeKernel();

  // Setting up a test: a container netns reachable by path; a device on the host.
  void addNetns(const std::string& path);
  // The container's netns dies: its virtual links with it, devices back to the host (devN
  // when their name is taken there), as the kernel does.
  void removeNetns(const std::string& path);
  // Its path goes (ip netns del) while something still holds it: it lives on, unreachable.
  // Returns its handle, for killNetns when that last holder lets go.
  Ns unlinkNetns(const std::string& path);
  void killNetns(Ns ns) { dies(ns); }
  int addDevice(const std::string& name, const MacAddr& mac, const std::string& pci = "");
  int addVethPair(const std::string& name, const std::string& peer);  // both on the host
  void setSysctl(Ns ns, const std::string& key, const std::string& value);
  // An SR-IOV PF on the host with a VF per entry of vf_pcis (netdevs pf_name + "v" + N, or
  // none for a VF bound to vfio-pci). The PF reports every VF's settings, its driver's
  // defaults first, unless reports_vfs is false (a veth stand-in's answer).
  struct FakeVf {
    std::string pci;
    std::string driver = "iavf";
  };
  int addSriovPf(const std::string& pf_name, const std::string& pf_pci,
                 const std::vector<FakeVf>& vfs, bool reports_vfs = true);
  // The PF's driver refuses these settings ("vlan", "mac", "spoofchk", "trust", "link_state",
  // "rate") with EOPNOTSUPP.
  std::set<std::string> refused_vf_settings;
  std::vector<std::string> vf_calls;  // "pf0 vf 1 vlan=100/0/802.1Q", ... in order

  // Everything a test compares: each live netns's links, addresses and routes, sysctls,
  // rules, and the temporary namespaces left open.
  std::string snapshot() const;

  int changes = 0;  // changes made so far
  int fail_at = 0;  // the change with this number is refused (0: none)
  std::vector<std::string> announced;

  Result<Ns> openNetns(const std::string& path) override;
  Result<Ns> temporaryNetns() override;
  void closeNetns(Ns ns) override;
  const nl::Netns* netns(Ns) override { return nullptr; }
  Result<nl::LinkInfo> getLink(Ns ns, const std::string& name) override;
  Result<nl::LinkInfo> getLink(Ns ns, int index) override;
  Result<std::vector<nl::LinkInfo>> listLinks(Ns ns) override;
  Status createVeth(Ns ns, const nl::VethSpec& spec, Ns peer_ns) override;
  Status createBridge(Ns ns, const nl::BridgeSpec& spec) override;
  Status createMacvlan(Ns ns, const nl::MacvlanSpec& spec, Ns in_ns) override;
  Status changeLink(Ns ns, int index, const nl::LinkChange& change) override;
  Status moveLink(Ns ns, int index, Ns to, const nl::LinkChange& change) override;
  using Kernel::moveLink;
  int moves = 0;  // links moved between namespaces (each costs the kernel a grace period)
  Status setBridgePortHairpin(Ns ns, int index, bool on) override;
  Status deleteLink(Ns ns, int index) override;
  Status addAddress(Ns ns, int index, const IpPrefix& prefix) override;
  Result<std::vector<nl::AddrInfo>> listAddresses(Ns ns, int family, int index) override;
  Status addRoute(Ns ns, const nl::Route& route, bool replace) override;
  Result<std::vector<nl::Route>> listRoutes(Ns ns, int family, uint32_t table) override;
  Result<std::string> readSysctl(Ns ns, const std::string& key) override;
  Status writeSysctl(Ns ns, const std::string& key, const std::string& value) override;
  Status ensureBridgeRules(const nl::BridgeRules& rules) override;
  Status revokeBridgeRules(const std::string& bridge) override;
  Status tidyRules() override;
  Status unmasquerade(const std::string& owner, const std::vector<IpPrefix>& subnets,
                      const std::function<Result<bool>()>& unused) override;
  Result<nl::LinkInfo> findDevice(const nl::DeviceRef& ref) override;
  std::optional<nl::LinkInfo> pickDevice(const std::vector<nl::LinkInfo>& links,
                                         const nl::DeviceRef& ref) override;
  std::string pciAddressOf(const std::string& ifname) override;
  Status addAltnames(Ns ns, int index, const std::vector<std::string>& names) override;
  Status deleteAltnames(Ns ns, int index, const std::vector<std::string>& names) override;
  Result<nl::SriovPf> sriovPf(const std::string& pf_ifname) override;
  Result<nl::VfLocation> sriovVf(const std::string& vf_pci) override;
  Result<std::vector<nl::VfInfo>> vfSettings(int pf_index) override;
  Status setVf(int pf_index, int vf, const nl::VfConfig& config) override;
  void announce(Ns ns, int ifindex, const MacAddr& mac, const std::vector<IpAddr>& addrs,
                int port_index) override;

 private:
  struct Link {
    nl::LinkInfo info;
    std::vector<IpPrefix> addresses;
    Ns peer_ns = -1;  // a veth's other end
    int peer = 0;
    bool hairpin = false;
  };
  struct Space {
    std::string path;  // "" for the host and temporary namespaces
    bool temporary = false;
    bool live = true;
    std::map<int, Link> links;
    std::vector<nl::Route> routes;
    std::map<std::string, std::string> sysctls;
  };

  void dies(Ns ns);
  Status change(const std::string& what);  // counts a change; refuses the fail_at-th
  Result<Space*> space(Ns ns);
  Link* find(Ns ns, const std::string& name);
  Link* find(Ns ns, int index);
  int addLink(Ns ns, nl::LinkInfo info);
  void removeLink(Ns ns, int index);  // with a veth's peer, addresses, routes and ports

  std::vector<Space> spaces_;
  std::set<std::string> rules_;
  bool table_ = false;
  std::map<int, std::string> pci_;  // by ifindex, which a move or rename keeps
  struct FakePf {
    std::string name;
    std::string pci;
    int index = 0;
    bool reports = true;
    std::vector<FakeVf> vfs;
    std::vector<int> vf_index;  // each VF netdev's ifindex (0: none)
    std::vector<nl::VfConfig> settings;
  };
  std::vector<FakePf> pfs_;
  std::optional<std::string> nameOf(int index) const;  // in whichever netns
  int next_index_ = 10;
};

}  // namespace plumb::core::testing
