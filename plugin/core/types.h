// What a front end asks the engine for. Plans are data: one type per attachment mode, chosen by
// the front end from its own input (CNI config, Docker options, pipework's grammar).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/ip.h"
#include "base/result.h"

namespace plumb::core {

struct VethBridgePlan {
  static constexpr const char* kMode = "bridge";
  std::string bridge;
  bool create_bridge = true;  // create the bridge when it is missing
  bool hairpin = false;
  bool promisc = false;
  // Put these gateway addresses on the bridge (CNI isGateway) and turn on IP forwarding.
  std::vector<IpPrefix> gateway_addresses;
  // Subnets to masquerade when they leave through anything but the bridge (ipMasq).
  std::vector<IpPrefix> masquerade;
  // Nothing is forwarded between the bridge and other interfaces (Docker's --internal).
  bool internal = false;
  // Turn on net.ipv6.conf.all.forwarding for IPv6 gateways. Off for a host that takes its own
  // IPv6 route from router advertisements (forwarding makes the kernel ignore RAs where
  // accept_ra=1); the containers then reach only the bridge's subnet over IPv6 unless the
  // host forwards by other means.
  bool ipv6_forwarding = true;
};

// The macvlan modes, one list for every front end.
enum class MacvlanMode { kBridge, kPrivate, kVepa, kPassthru, kSource };
Result<MacvlanMode> parseMacvlanMode(const std::string& name);  // "" is bridge
const char* macvlanModeName(MacvlanMode mode);

struct MacvlanPlan {
  static constexpr const char* kMode = "macvlan";
  std::string master;
  MacvlanMode mode = MacvlanMode::kBridge;
};

// A VLAN range a trunk port carries (ovs-cni's {"id": N} is min == max).
struct VlanRange {
  int min = 0;
  int max = 0;
};

struct OvsPlan {
  static constexpr const char* kMode = "ovs";
  std::string bridge;             // an existing Open vSwitch bridge
  std::optional<int> vlan;        // access tag, 0-4095
  std::vector<VlanRange> trunks;  // VLANs the port trunks
  std::optional<int> ofport_request;
  std::string interface_type;  // the Interface's type; "" is a system interface
  // ovsdb-server's socket, "unix:PATH" or PATH; empty: $PLUMB_OVSDB, else
  // /var/run/openvswitch/db.sock.
  std::string ovsdb;
  // Create the bridge when OVSDB has none by that name (pipework's ovs* names), with this
  // datapath_type ("" is the switch's default, the kernel's "system"; "netdev" without the
  // openvswitch module). It stays after its last port goes, as pipework's do.
  bool create_bridge = false;
  std::string datapath_type;
};

// The VF's settings through its PF, in sriov-cni's terms; absent ones are left as they are.
// The VF's MAC is the request's (AttachRequest::mac): set through the PF and on its netdev.
struct VfSettings {
  std::optional<int> vlan;      // 0-4095
  std::optional<int> vlan_qos;  // 0-7, with a VLAN
  std::string vlan_proto;       // "802.1q" or "802.1ad", with a VLAN; "" is 802.1q
  std::optional<bool> spoofchk;
  std::optional<bool> trust;
  std::string link_state;          // "auto", "enable" or "disable"; "" leaves it
  std::optional<int> min_tx_rate;  // Mbps
  std::optional<int> max_tx_rate;  // Mbps; 0 is no limit
};

struct SriovPlan {
  static constexpr const char* kMode = "sriov";
  std::string pf;           // a free VF of this PF, chosen by plumb
  std::string pci_address;  // this VF (a device plugin's deviceID)
  VfSettings settings;
};

struct PassthroughPlan {
  static constexpr const char* kMode = "passthrough";
  std::string device;
  std::optional<MacAddr> hwaddr;
  std::string pci_address;
  // Move a device that carries the host's addresses or routes all the same (they come back
  // with it); without it, such a device is refused.
  bool force = false;
};

using Plan = std::variant<VethBridgePlan, MacvlanPlan, OvsPlan, SriovPlan, PassthroughPlan>;

struct AddressSpec {
  IpPrefix address;  // the container's address with its subnet's prefix length
  std::optional<IpAddr> gateway;
  // Never held before (IPAM knows): no neighbour can have it cached with another MAC, so it
  // needs no announcement. Anything else is announced.
  bool fresh = false;
};

struct RouteSpec {
  IpPrefix dst;
  std::optional<IpAddr> gateway;
  int mtu = 0;
  int metric = 0;
  std::optional<IpAddr> src;
  bool link_scope = false;  // no gateway: on-link route
  bool replace = false;     // replace a route to the same destination (pipework's default route)
};

enum class Placement {
  kContainer,  // moved into the netns and configured there (CNI, CLI)
  kHostSide,   // left on the host for the runtime to move (Docker moves SrcName itself)
};

// Where a plan's attachment goes: its mode name.
inline std::string modeName(const Plan& plan) {
  return std::visit([](const auto& p) -> std::string { return p.kMode; }, plan);
}

// (network, container id, ifname) is the key of an attachment everywhere in plumb.
struct AttachmentKey {
  std::string network;
  std::string container_id;
  std::string ifname;
  std::string str() const { return network + "/" + container_id + "/" + ifname; }
};

// What an address source handed out.
struct Addressing {
  std::vector<AddressSpec> addresses;
  std::vector<RouteSpec> routes;  // a route without a gateway goes through its family's
};

// Where an attachment's addresses come from when attach allocates them: the engine's IPAM
// (IpamAddresses, plugin/core/ipam.h) or one a front end provides (CNI's delegated IPAM
// plugin). Allocation is a step of attach and release its inverse, so a failure anywhere after
// it gives the addresses back through the same rollback as every other step.
class AddressSource {
 public:
  virtual ~AddressSource() = default;
  virtual std::string describe() const = 0;
  virtual Result<Addressing> allocate() = 0;
  virtual Status release() = 0;
  // Allocates in plumb's own store: then allocating joins the transaction that records the
  // attachment (one commit). A source that runs anything else (a delegated plugin) must not.
  virtual bool inStore() const { return false; }
};

// What the engine derives from allocated addresses (CNI's isGateway, ipMasq,
// isDefaultGateway).
struct AddressUse {
  bool gateway_on_bridge = false;  // each address's gateway goes on the bridge
  bool masquerade = false;         // each address's subnet is masqueraded
  bool default_route = false;      // a default route per family through its gateway
};

// An address from a DHCP server instead of static ones: a real client runs in the container's
// netns and keeps renewing the lease; the attachment owns it (detach stops it).
struct DhcpRequest {
  std::string client = "dhcp";  // dhcp (the first found of udhcpc, dhcpcd, dhclient), or one
  std::string options;          // extra client arguments, split on blanks
  std::string hostname;         // what the client sends as the guest's name
  bool foreground = false;      // run the client until it ends, then undo (pipework's -f)
};

struct AttachRequest {
  AttachmentKey key;
  std::string netns;  // path to the container's netns
  Plan plan;
  std::optional<MacAddr> mac;
  int mtu = 0;              // 0: inherit (bridge or master)
  std::string host_ifname;  // the veth's host end; empty: derived from the key (plm<hash>)
  std::vector<AddressSpec> addresses;
  std::vector<RouteSpec> routes;
  std::optional<DhcpRequest> dhcp;  // with no static addresses
  // Allocated as a step of attach, after the record (so a duplicate never allocates), into
  // addresses and routes, which are then empty in the request. Not owned.
  AddressSource* address_source = nullptr;
  AddressUse address_use;
  Placement placement = Placement::kContainer;
  std::string frontend;  // "cni", "docker", "cli": recorded for `plumb ls`
};

struct InterfaceInfo {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path; empty on the host
  int mtu = 0;
  std::string pci;  // a VF's PCI address (CNI's pciID): the device of a VF with no netdev
};

struct AttachResult {
  std::optional<InterfaceInfo> host;  // veth host end, when there is one
  InterfaceInfo container;
  std::vector<AddressSpec> addresses;
  std::vector<RouteSpec> routes;
};

// What the engine keeps of a device it moved into a container (passthrough; an SR-IOV VF
// next) to give it back as it was.
struct DeviceRestore {
  std::string name;
  int mtu = 0;
  std::optional<MacAddr> mac;
  std::optional<MacAddr> perm_mac;
  std::string pci;    // its PCI address: how it is found once its netns is gone
  std::string alias;  // its own IFLA_IFALIAS (plumb's stamp replaces it while attached)
  bool up = false;
  std::vector<std::string> altnames;  // dropped while plumb has it, put back after
  // The host's addresses and routes it carried (moved with "force"): put back with it.
  struct HostRoute {
    IpPrefix dst;
    std::optional<IpAddr> gateway;
    uint32_t metric = 0;
  };
  std::vector<IpPrefix> addresses;
  std::vector<HostRoute> routes;

  // As the store keeps it (one JSON object), and back.
  std::string json() const;
  static Result<DeviceRestore> fromJson(const std::string& text);
};

// A process an attachment owns (a DHCP client now, a proxy later). Engine::detach stops it,
// whichever front end made the attachment.
struct Helper {
  std::string kind;     // "dhcp"
  std::string program;  // udhcpc, dhcpcd, dhclient
  pid_t pid = 0;
  std::vector<std::string> files;  // what it writes: removed with it
};

// A stored attachment, as the engine recorded it.
struct AttachmentRecord {
  AttachmentKey key;
  std::string netns;
  std::string mode;  // a plan's kMode
  std::string host_ifname;
  std::string via;  // the bridge, the macvlan master or the device it goes through
  std::string mac;
  std::string frontend;
  std::string state;  // "adding" while the kernel work runs, "ready" after
  std::vector<AddressSpec> addresses;
  std::vector<RouteSpec> routes;
  std::optional<DeviceRestore> restore;
  std::vector<Helper> helpers;
  std::string ovsdb;        // the OVSDB socket its switch port was made through (mode ovs)
  std::optional<int> vlan;  // its switch port's access tag (mode ovs)
  std::string pci;          // the VF it holds (mode sriov; via is its PF)
  long long claim = 0;      // the generation of its hold on that VF (plugin/core/vf_claims.h)
  long long created = 0;
  // While "adding": the process making it, by pid and start time (base/process.h), so that
  // an attach whose process died (killed, or the machine's OOM killer) is told from one
  // under way.
  pid_t owner_pid = 0;
  long long owner_start = 0;

  // The typed fields past the key and the columns, as the store keeps them (one JSON text).
  std::string detailJson() const;
  // Reads detailJson's text back; fields it does not hold are left empty.
  Status readDetail(const std::string& text);
};

// One published port (Docker's -p), as base/ip.h has it: plain data every layer shares.
using PortMapping = plumb::PortMapping;

struct NetworkRecord {
  std::string name;
  std::string frontend;
  std::string config;
  long long created = 0;
};

struct EndpointRecord {
  std::string network;
  std::string id;
  std::string config;
  long long created = 0;
};

}  // namespace plumb::core
