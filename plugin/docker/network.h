// What the Docker front end keeps per network and per endpoint, read from dockerd's requests
// and persisted in the store as JSON (dockerd never replays CreateNetwork or CreateEndpoint).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "plugin/core/types.h"

namespace plumb::docker {

using json = nlohmann::json;

// How the store tells the Docker front end's networks, endpoints and pools from others'.
constexpr const char* kFrontend = "docker";

struct Subnet {
  IpPrefix pool;
  std::optional<IpAddr> gateway;
};

struct NetworkConfig {
  std::string id;
  std::string mode = "bridge";  // bridge, macvlan, ovs, passthrough, sriov
  std::string bridge;           // bridge and ovs modes
  std::optional<int> vlan;      // ovs: the ports' access tag; sriov: the VFs' VLAN
  std::string ovsdb;            // ovs: ovsdb-server's socket; empty: the default
  std::string parent;           // macvlan mode
  std::string macvlan_mode = "bridge";
  std::string device;  // passthrough: the device, by name, MAC (hwaddr) or PCI address
  std::string hwaddr;
  std::string pci;
  std::string pf;       // sriov: a free VF of this PF per endpoint
  core::VfSettings vf;  // sriov: set through the PF (its vlan is the one above)
  int mtu = 0;
  bool masquerade = true;
  bool internal = false;
  bool ipv6 = false;
  bool ipv6_forwarding = true;  // plumb.ipv6_forwarding
  std::vector<Subnet> v4, v6;
  std::vector<IpPrefix> routes;  // plumb.routes: sent to containers as static routes

  json toJson() const;
  static Result<NetworkConfig> fromJson(const json& j);
  std::vector<IpPrefix> subnets() const;
};

// The plumb.* options, each with what it means; anything else named plumb.* is refused. A
// constant table (no initialiser runs at start-up: every CNI exec would pay for it).
struct NetworkOption {
  std::string_view name, meaning;
};
extern const std::span<const NetworkOption> kNetworkOptions;

// CreateNetwork's request, options checked; nothing is looked up in the kernel or the store.
Result<NetworkConfig> parseCreateNetwork(const json& req);

struct EndpointConfig {
  std::string network;
  std::string id;
  std::optional<IpPrefix> address;
  std::optional<IpPrefix> address6;
  std::string mac;
  std::vector<core::PortMapping> ports;      // as requested; host_port 0: pick one
  std::vector<core::PortMapping> published;  // as programmed

  json toJson() const;
  static Result<EndpointConfig> fromJson(const json& j);
};

// CreateEndpoint's request.
Result<EndpointConfig> parseCreateEndpoint(const json& req);
// com.docker.network.portmap from a request's Options, for an endpoint's addresses.
Result<std::vector<core::PortMapping>> parsePortmap(const json& options, const EndpointConfig& ep);
json portmapJson(const std::vector<core::PortMapping>& ports);

}  // namespace plumb::docker
