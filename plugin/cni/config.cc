#include "plugin/cni/config.h"

namespace plumb::cni {

namespace jr = plumb::json_read;

Status fromJson(const json& j, core::IpRange& out) {
  if (!j.is_object()) return fail(Errc::kInvalid, "each range must be an object");
  std::string subnet, start, end, gateway;
  PLUMB_TRY(jr::str(j, "subnet", subnet, "range"));
  PLUMB_TRY(jr::str(j, "rangeStart", start, "range"));
  PLUMB_TRY(jr::str(j, "rangeEnd", end, "range"));
  PLUMB_TRY(jr::str(j, "gateway", gateway, "range"));
  if (subnet.empty()) return fail(Errc::kInvalid, "a range needs a subnet");
  auto p = IpPrefix::parse(subnet);
  if (!p.ok()) return std::move(p).error().wrap("bad subnet");
  out.subnet = *p;
  auto addr = [](const std::string& text, const char* what, std::optional<IpAddr>& into) -> Status {
    if (text.empty()) return {};
    auto a = IpAddr::parse(text);
    if (!a.ok()) return std::move(a).error().wrap(std::string("bad ") + what);
    into = *a;
    return {};
  };
  PLUMB_TRY(addr(start, "rangeStart", out.start));
  PLUMB_TRY(addr(end, "rangeEnd", out.end));
  PLUMB_TRY(addr(gateway, "gateway", out.gateway));
  PLUMB_TRY(out.normalise());
  // host-local's default: the subnet's first address is the gateway (and never handed out).
  if (!out.gateway) out.gateway = out.firstUsable();
  return {};
}

namespace {

Result<std::vector<core::RangeSet>> rangeSets(const json& list, const char* what) {
  std::vector<core::RangeSet> out;
  if (!list.is_array())
    return fail(Errc::kInvalid, std::string("field '") + what + "' must be a list of lists");
  for (const auto& set : list) {
    if (!set.is_array() || set.empty()) {
      return fail(Errc::kInvalid,
                  std::string("field '") + what + "' must be a list of non-empty lists");
    }
    core::RangeSet rs;
    for (const auto& r : set) {
      core::IpRange range;
      PLUMB_TRY(fromJson(r, range));
      if (!rs.empty() && rs.front().subnet.isV4() != range.subnet.isV4()) {
        return fail(Errc::kInvalid, "a range set mixes IPv4 and IPv6 subnets");
      }
      rs.push_back(range);
    }
    out.push_back(std::move(rs));
  }
  return out;
}

Status parseIpam(const json& j, IpamConf& out) {
  PLUMB_TRY(jr::str(j, "type", out.type, "ipam"));
  PLUMB_TRY(jr::str(j, "dataDir", out.data_dir, "ipam"));
  PLUMB_ASSIGN(const json* ranges, jr::array(j, "ranges", "ipam"));
  if (ranges) PLUMB_ASSIGN(out.ranges, rangeSets(*ranges, "ipam.ranges"));
  std::string subnet;
  PLUMB_TRY(jr::str(j, "subnet", subnet, "ipam"));
  if (!subnet.empty()) {
    // host-local's older single-range form.
    core::IpRange range;
    PLUMB_TRY(fromJson(j, range));
    out.ranges.insert(out.ranges.begin(), core::RangeSet{range});
  }
  PLUMB_ASSIGN(const json* etcd, jr::object(j, "etcd", "ipam"));
  if (etcd) {
    core::ClusterIpamConfig c;
    PLUMB_TRY(jr::strList(*etcd, "endpoints", c.endpoints, "ipam.etcd"));
    PLUMB_TRY(jr::str(*etcd, "prefix", c.prefix, "ipam.etcd"));
    PLUMB_TRY(jr::integer(*etcd, "blockSize", c.block_size, "ipam.etcd"));
    PLUMB_TRY(jr::integer(*etcd, "blockSizeV6", c.block_size_v6, "ipam.etcd"));
    PLUMB_TRY(jr::str(*etcd, "host", c.host, "ipam.etcd"));
    int timeout = static_cast<int>(c.timeout_ms);
    PLUMB_TRY(jr::integer(*etcd, "timeoutMs", timeout, "ipam.etcd"));
    c.timeout_ms = timeout;
    out.etcd = c;
  }
  PLUMB_ASSIGN(const json* routes, jr::array(j, "routes", "ipam"));
  if (routes) {
    for (const auto& r : *routes) {
      RouteConfig rc;
      PLUMB_TRY(fromJson(r, rc));
      out.routes.push_back(rc);
    }
  }
  return {};
}

}  // namespace

namespace {

Status optionalInt(const json& j, const char* key, std::optional<int>& out) {
  if (!j.contains(key) || j[key].is_null()) return {};
  int v = 0;
  PLUMB_TRY(jr::integer(j, key, v));
  out = v;
  return {};
}

// ovs-cni's fields: "vlan", "trunk" ([{"id": N} | {"minID": A, "maxID": B}]),
// "ofport_request", "interface_type", "socket_file".
Status parseOvsFields(const json& j, NetConf& c) {
  c.bridge_given = j.contains("bridge") && !j["bridge"].is_null();
  PLUMB_TRY(optionalInt(j, "vlan", c.vlan));
  PLUMB_TRY(optionalInt(j, "ofport_request", c.ofport_request));
  PLUMB_TRY(jr::str(j, "interface_type", c.interface_type));
  PLUMB_TRY(jr::str(j, "socket_file", c.socket_file));
  PLUMB_ASSIGN(const json* trunk, jr::array(j, "trunk"));
  if (!trunk) return {};
  for (size_t i = 0; i < trunk->size(); ++i) {
    const json& t = (*trunk)[i];
    std::string path = "trunk[" + std::to_string(i) + "]";
    if (!t.is_object()) return fail(Errc::kInvalid, path + " must be an object");
    std::optional<int> id, min, max;
    PLUMB_TRY(optionalInt(t, "id", id));
    PLUMB_TRY(optionalInt(t, "minID", min));
    PLUMB_TRY(optionalInt(t, "maxID", max));
    if (id && !min && !max) {
      c.trunks.push_back({*id, *id});
    } else if (!id && min && max) {
      c.trunks.push_back({*min, *max});
    } else {
      return fail(Errc::kInvalid, path + " needs \"id\", or \"minID\" and \"maxID\"");
    }
  }
  return {};
}

// "on" / "off", as sriov-cni spells its switches.
Status onOff(const json& j, const char* key, std::optional<bool>& out) {
  std::string v;
  PLUMB_TRY(jr::str(j, key, v));
  if (v.empty()) return {};
  if (v != "on" && v != "off")
    return fail(Errc::kInvalid,
                std::string("\"") + key + "\" must be \"on\" or \"off\", not \"" + v + "\"");
  out = v == "on";
  return {};
}

// sriov-cni's fields: "deviceID", "vlanQoS", "vlanProto", "spoofchk", "trust", "link_state",
// "min_tx_rate", "max_tx_rate"; and plumb's "pf".
Status parseSriovFields(const json& j, NetConf& c) {
  PLUMB_TRY(jr::str(j, "deviceID", c.device_id));
  PLUMB_TRY(jr::str(j, "pf", c.pf));
  PLUMB_TRY(optionalInt(j, "vlanQoS", c.vf.vlan_qos));
  PLUMB_TRY(jr::str(j, "vlanProto", c.vf.vlan_proto));
  PLUMB_TRY(onOff(j, "spoofchk", c.vf.spoofchk));
  PLUMB_TRY(onOff(j, "trust", c.vf.trust));
  PLUMB_TRY(jr::str(j, "link_state", c.vf.link_state));
  PLUMB_TRY(optionalInt(j, "min_tx_rate", c.vf.min_tx_rate));
  PLUMB_TRY(optionalInt(j, "max_tx_rate", c.vf.max_tx_rate));
  return {};
}

// plumb's state goes where "dataDir" says; with the built-in IPAM, host-local's habit of
// ipam.dataDir is honoured too. A delegated plugin's ipam.dataDir is that plugin's alone.
std::string stateDir(const std::string& data_dir, const IpamConf* ipam, const std::string& dflt) {
  if (!data_dir.empty()) return data_dir;
  bool builtin = ipam && (ipam->type.empty() || ipam->type == "plumb");
  if (builtin && !ipam->data_dir.empty()) return ipam->data_dir;
  return dflt;
}

}  // namespace

Result<Placement> placementOf(std::string_view bytes) {
  PLUMB_ASSIGN(json j, json_read::parse(bytes));
  if (!j.is_object()) return fail(Errc::kDecode, "the network configuration is not an object");
  Placement out;
  std::string data_dir;
  IpamConf ipam;
  PLUMB_TRY(jr::str(j, "dataDir", data_dir));
  PLUMB_TRY(jr::str(j, "logFile", out.log_file));
  PLUMB_TRY(jr::str(j, "logLevel", out.log_level));
  PLUMB_ASSIGN(const json* ipam_j, jr::object(j, "ipam"));
  bool has_ipam = ipam_j && !ipam_j->empty();
  if (has_ipam) {
    PLUMB_TRY(jr::str(*ipam_j, "type", ipam.type, "ipam"));
    PLUMB_TRY(jr::str(*ipam_j, "dataDir", ipam.data_dir, "ipam"));
  }
  out.data_dir = stateDir(data_dir, has_ipam ? &ipam : nullptr, NetConf().data_dir);
  out.delegated_ipam = has_ipam && !ipam.type.empty() && ipam.type != "plumb";
  return out;
}

Result<NetConf> parseNetConf(std::string_view bytes) {
  PLUMB_ASSIGN(json j, jr::parse(bytes));
  if (!j.is_object()) return fail(Errc::kDecode, "the network configuration must be a JSON object");
  NetConf c;
  PLUMB_TRY(jr::str(j, "cniVersion", c.cni_version));
  if (c.cni_version.empty()) {
    // A conflist's cniVersions (1.1): the highest this plugin supports.
    std::vector<std::string> versions;
    PLUMB_TRY(jr::strList(j, "cniVersions", versions));
    for (const auto& v : versions) {
      if (isSupported(v) && (c.cni_version.empty() || compareVersions(v, c.cni_version) > 0))
        c.cni_version = v;
    }
  }
  PLUMB_TRY(jr::str(j, "name", c.name));
  PLUMB_TRY(jr::str(j, "type", c.type));
  PLUMB_TRY(jr::str(j, "bridge", c.bridge));
  PLUMB_TRY(jr::boolean(j, "isGateway", c.is_gateway));
  PLUMB_TRY(jr::boolean(j, "isDefaultGateway", c.is_default_gateway));
  PLUMB_TRY(jr::boolean(j, "ipMasq", c.ip_masq));
  PLUMB_TRY(jr::boolean(j, "ipv6Forwarding", c.ipv6_forwarding));
  PLUMB_TRY(jr::boolean(j, "hairpinMode", c.hairpin_mode));
  PLUMB_TRY(jr::boolean(j, "promiscMode", c.promisc_mode));
  PLUMB_TRY(jr::integer(j, "mtu", c.mtu));
  PLUMB_TRY(jr::str(j, "mac", c.mac));
  PLUMB_TRY(jr::str(j, "master", c.master));
  PLUMB_TRY(jr::str(j, "device", c.device));
  PLUMB_TRY(jr::str(j, "hwaddr", c.hwaddr));
  PLUMB_TRY(jr::str(j, "pciBusID", c.pci_bus_id));
  PLUMB_TRY(jr::boolean(j, "force", c.force));
  PLUMB_TRY(parseOvsFields(j, c));
  PLUMB_TRY(parseSriovFields(j, c));
  std::string data_dir;
  PLUMB_TRY(jr::str(j, "dataDir", data_dir));
  PLUMB_TRY(jr::str(j, "logFile", c.log_file));
  PLUMB_TRY(jr::str(j, "logLevel", c.log_level));
  if (c.is_default_gateway) c.is_gateway = true;

  // "mode" is the attachment mode, except where the reference macvlan plugin's config is used
  // as is: with "master" set, "mode" is the macvlan mode (bridge, private, vepa, ...).
  std::string mode;
  PLUMB_TRY(jr::str(j, "mode", mode));
  PLUMB_TRY(jr::str(j, "macvlanMode", c.macvlan_mode));
  if (mode == "macvlan" || mode == "ovs" || mode == "sriov" || mode == "passthrough") {
    c.mode = mode;
  } else if (!c.master.empty()) {
    c.mode = "macvlan";
    if (!mode.empty()) c.macvlan_mode = mode;
  } else if (mode.empty() || mode == "bridge") {
    c.mode = (!c.device.empty() || !c.hwaddr.empty() || !c.pci_bus_id.empty()) ? "passthrough"
                                                                               : "bridge";
  } else {
    return fail(Errc::kInvalid,
                "unknown mode '" + mode + "' (bridge, macvlan, ovs, sriov, passthrough)");
  }

  PLUMB_ASSIGN(const json* ipam, jr::object(j, "ipam"));
  if (ipam && !ipam->empty()) {
    c.has_ipam = true;
    PLUMB_TRY(parseIpam(*ipam, c.ipam));
  }
  // plumb's state goes where "dataDir" says; with the built-in IPAM, host-local's habit of
  // ipam.dataDir is honoured too. A delegated plugin's ipam.dataDir is that plugin's alone.
  c.data_dir = stateDir(data_dir, c.has_ipam ? &c.ipam : nullptr, c.data_dir);
  PLUMB_ASSIGN(const json* dns, jr::object(j, "dns"));
  if (dns) PLUMB_TRY(fromJson(*dns, c.dns));

  PLUMB_ASSIGN(const json* rc, jr::object(j, "runtimeConfig"));
  if (rc) {
    PLUMB_TRY(jr::strList(*rc, "ips", c.runtime_ips, "runtimeConfig"));
    PLUMB_TRY(jr::str(*rc, "mac", c.runtime_mac, "runtimeConfig"));
    std::string device_id;
    PLUMB_TRY(jr::str(*rc, "deviceID", device_id, "runtimeConfig"));
    if (!device_id.empty()) c.device_id = device_id;
    PLUMB_ASSIGN(const json* ranges, jr::array(*rc, "ipRanges", "runtimeConfig"));
    if (ranges && !ranges->empty())
      PLUMB_ASSIGN(c.runtime_ip_ranges, rangeSets(*ranges, "runtimeConfig.ipRanges"));
  }
  PLUMB_ASSIGN(const json* args, jr::object(j, "args"));
  if (args) {
    PLUMB_ASSIGN(const json* cni_args, jr::object(*args, "cni", "args"));
    if (cni_args) PLUMB_TRY(jr::strList(*cni_args, "ips", c.args_ips, "args.cni"));
  }
  PLUMB_ASSIGN(const json* prev, jr::object(j, "prevResult"));
  if (prev) {
    CniResult r;
    PLUMB_TRY(fromJson(*prev, r));
    c.prev_result = std::move(r);
  }
  for (const char* key : {"cni.dev/valid-attachments", "cni.dev/attachments"}) {
    PLUMB_ASSIGN(const json* list, jr::array(j, key));
    if (!list || c.valid_attachments) continue;
    std::vector<Attachment> atts;
    for (const auto& a : *list) {
      if (!a.is_object())
        return fail(Errc::kInvalid, std::string("entries of '") + key + "' must be objects");
      Attachment att;
      PLUMB_TRY(jr::str(a, "containerID", att.container_id, key));
      PLUMB_TRY(jr::str(a, "ifname", att.ifname, key));
      atts.push_back(att);
    }
    c.valid_attachments = std::move(atts);
  }
  c.raw = std::move(j);
  return c;
}

}  // namespace plumb::cni
