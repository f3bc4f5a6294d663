// The network configuration a runtime hands plumb on stdin, read into one struct.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/json.h"
#include "plugin/cni/result_codec.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/ipam.h"

namespace plumb::cni {

struct IpamConf {
  std::string type;  // "" or "plumb": built in; anything else: a plugin in CNI_PATH
  std::vector<core::RangeSet> ranges;
  std::vector<RouteConfig> routes;
  std::string data_dir;
  // "etcd": {"endpoints": [...], "prefix", "blockSize", "blockSizeV6", "host", "timeoutMs"}:
  // the subnets are shared with other hosts (plugin/core/cluster_ipam.h). host: else
  // PLUMB_HOST, else the hostname (filled by the caller, which has the environment).
  std::optional<core::ClusterIpamConfig> etcd;
};

struct Attachment {
  std::string container_id;
  std::string ifname;
};

struct NetConf {
  std::string cni_version;
  std::string name;
  std::string type;
  json raw;  // the whole document, for delegation and re-encoding

  // What to attach: "bridge" (veth into a bridge), "macvlan", "ovs", "sriov", "passthrough".
  std::string mode = "bridge";
  // Bridge (the reference bridge plugin's fields).
  std::string bridge = "plumb0";
  bool is_gateway = false;
  bool is_default_gateway = false;
  bool ip_masq = false;
  bool ipv6_forwarding = true;  // "ipv6Forwarding": false keeps the host's IPv6 forwarding off
  bool hairpin_mode = false;
  bool promisc_mode = false;
  int mtu = 0;
  std::string mac;
  // Macvlan (the reference macvlan plugin's fields).
  std::string master;
  std::string macvlan_mode = "bridge";
  // Passthrough (host-device's fields), kept for the passthrough mode.
  std::string device, hwaddr, pci_bus_id;
  bool force = false;  // a device carrying the host's addresses or routes moves all the same
  // Open vSwitch (ovs-cni's fields; "bridge" and "mtu" above).
  bool bridge_given = false;  // ovs mode has no default bridge
  std::optional<int> vlan;
  std::vector<core::VlanRange> trunks;
  std::optional<int> ofport_request;
  std::string interface_type;
  std::string socket_file;  // ovsdb-server's socket, PATH or unix:PATH
  // SR-IOV (sriov-cni's fields, "vlan" above, "mac" below): the VF by "deviceID" (or
  // runtimeConfig.deviceID, a device plugin's) or a free one of plumb's "pf".
  std::string device_id;
  std::string pf;
  core::VfSettings vf;

  bool has_ipam = false;
  IpamConf ipam;
  Dns dns;

  // Runtime-supplied (capabilities and args).
  std::vector<std::string> runtime_ips;
  std::string runtime_mac;
  std::optional<std::vector<core::RangeSet>> runtime_ip_ranges;
  std::vector<std::string> args_ips;  // args.cni.ips

  std::optional<CniResult> prev_result;
  std::optional<std::vector<Attachment>> valid_attachments;  // GC

  std::string data_dir = "/var/lib/plumb";
  std::string log_file;
  std::string log_level;
};

// What the resident service's client reads of a configuration before handing the call over
// (plugin/cni/resident.h): where the state is, whether the call asks for a log of its own, and
// whether it execs an IPAM plugin (whose stderr is the caller's).
struct Placement {
  std::string data_dir;
  std::string log_file;
  std::string log_level;
  bool delegated_ipam = false;
};
Result<Placement> placementOf(std::string_view bytes);

// Parses and validates the configuration; kDecode for malformed JSON, kInvalid for a bad field.
Result<NetConf> parseNetConf(std::string_view bytes);
Status fromJson(const json& j, core::IpRange& out);

}  // namespace plumb::cni
