// SR-IOV: a PF's virtual functions as sysfs lays them out, and their settings as the PF's
// driver keeps them (RTM_SETLINK / RTM_GETLINK on the PF with IFLA_VFINFO_LIST). sysfs is a
// parameter so that tests can lay out a tree of the kernel's shape with veth ends as netdevs.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/message.h"
#include "netlink/socket.h"

namespace plumb::netlink {

// One VF as sysfs has it.
struct PciVf {
  int index = 0;       // N of the PF's virtfnN
  std::string pci;     // its own PCI address
  std::string driver;  // "iavf", "mlx5_core", "vfio-pci", ...; "" when unbound
  std::string netdev;  // its network device on the host; "" when it has none (vfio-pci)
};

struct SriovPf {
  std::string name;  // its netdev
  std::string pci;
  int total_vfs = 0;
  std::vector<PciVf> vfs;  // the enabled ones (sriov_numvfs), by index
};

struct VfLocation {
  PciVf vf;
  std::string pf_pci;
  std::string pf_name;  // the PF's netdev on the host
};

// The PF netdev pf_ifname with its VFs: an error naming the PF when it is not a PCI device,
// has no SR-IOV capability or has no VF enabled.
Result<SriovPf> sriovPf(const std::string& sysfs, const std::string& pf_ifname);
// The VF at vf_pci and its PF: an error when the address is not in sysfs or is not a VF.
Result<VfLocation> sriovVf(const std::string& sysfs, const std::string& vf_pci);
// Whether a driver leaves a VF to userspace (no netdev to move): vfio-pci, uio_pci_generic,
// igb_uio.
bool userspaceDriver(const std::string& driver);

enum class VfLinkState : uint32_t { kAuto = 0, kEnable = 1, kDisable = 2 };
constexpr uint16_t kVlanProto8021Q = 0x8100;
constexpr uint16_t kVlanProto8021AD = 0x88a8;

struct VfVlan {
  int vlan = 0;
  int qos = 0;
  uint16_t proto = kVlanProto8021Q;
  bool operator==(const VfVlan&) const = default;
};

struct VfRate {
  uint32_t min_mbps = 0;
  uint32_t max_mbps = 0;  // 0: no limit
  bool operator==(const VfRate&) const = default;
};

// Settings of one VF through its PF; what is absent is left alone.
struct VfConfig {
  std::optional<MacAddr> mac;
  std::optional<VfVlan> vlan;
  std::optional<bool> spoofchk;
  std::optional<bool> trust;
  std::optional<VfLinkState> link_state;
  std::optional<VfRate> rate;
  bool empty() const { return !mac && !vlan && !spoofchk && !trust && !link_state && !rate; }
  bool operator==(const VfConfig&) const = default;
};

// One VF's settings as the PF reports them. A setting the driver does not report stays
// absent (spoofchk and trust report ~0 when unsupported).
struct VfInfo {
  int vf = 0;
  VfConfig config;
};

// RTM_SETLINK on the PF carrying the settings of config for VF vf: a VLAN with its protocol
// other than 802.1Q goes in IFLA_VF_VLAN_LIST (as iproute2 sends it), else IFLA_VF_VLAN.
void buildSetVf(Message& m, int pf_index, int vf, const VfConfig& config);
// RTM_GETLINK of the PF with its VF settings and without statistics.
void buildGetVfs(Message& m, int pf_index);
// The VF settings in an RTM_NEWLINK reply (empty when the device reports none).
Result<std::vector<VfInfo>> parseVfs(const nlmsghdr* nlh);

Status setVf(NlSocket& s, int pf_index, int vf, const VfConfig& config);
Result<std::vector<VfInfo>> getVfs(NlSocket& s, int pf_index);

}  // namespace plumb::netlink
