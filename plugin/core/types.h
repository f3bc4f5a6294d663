// What a front end asks the engine for. Plans are data: one type per attachment mode, chosen by
// the front end from its own input (CNI config, Docker options, pipework's grammar).
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/ip.h"

namespace plumb::core {

struct VethBridgePlan {
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
};

struct MacvlanPlan {
  std::string master;
  std::string mode = "bridge";  // bridge, private, vepa, passthru, source
};

struct OvsPlan {
  std::string bridge;
  std::optional<int> vlan;
};

struct SriovPlan {
  std::string pf;
  std::optional<int> vf;
  std::string pci_address;
};

struct PassthroughPlan {
  std::string device;
  std::optional<MacAddr> hwaddr;
  std::string pci_address;
};

using Plan = std::variant<VethBridgePlan, MacvlanPlan, OvsPlan, SriovPlan, PassthroughPlan>;
std::string modeName(const Plan& plan);

struct AddressSpec {
  IpPrefix address;  // the container's address with its subnet's prefix length
  std::optional<IpAddr> gateway;
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

// (network, container id, ifname) is the key of an attachment everywhere in plumb.
struct AttachmentKey {
  std::string network;
  std::string container_id;
  std::string ifname;
  std::string str() const { return network + "/" + container_id + "/" + ifname; }
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
  Placement placement = Placement::kContainer;
  std::string frontend;  // "cni", "docker", "cli": recorded for `plumb ls`
};

struct InterfaceInfo {
  std::string name;
  std::string mac;
  std::string sandbox;  // netns path; empty on the host
  int mtu = 0;
};

struct AttachResult {
  std::optional<InterfaceInfo> host;  // veth host end, when there is one
  InterfaceInfo container;
  std::vector<AddressSpec> addresses;
  std::vector<RouteSpec> routes;
};

// A stored attachment, as the engine recorded it.
struct AttachmentRecord {
  AttachmentKey key;
  std::string netns;
  std::string mode;
  std::string host_ifname;
  std::string bridge;
  std::string mac;
  std::string frontend;
  std::string state;   // "adding" while the kernel work runs, "ready" after
  std::string detail;  // JSON the engine keeps: addresses, routes
  long long created = 0;
};

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
