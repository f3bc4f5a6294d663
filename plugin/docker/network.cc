#include "plugin/docker/network.h"

#include "base/json.h"
#include "base/names.h"

namespace plumb::docker {

namespace jr = plumb::json_read;

namespace {
constexpr NetworkOption kOptionTable[] = {
    {"plumb.mode", "bridge (default), macvlan, ovs, passthrough or sriov"},
    {"plumb.bridge",
     "bridge mode: the bridge to use, created when missing; ovs mode: an existing Open vSwitch "
     "bridge"},
    {"plumb.vlan",
     "ovs mode: the access tag of the containers' ports; sriov mode: the VFs' VLAN (0-4095)"},
    {"plumb.pf", "sriov mode: the PF whose free VFs the endpoints get"},
    {"plumb.vlan_qos", "sriov mode: the VLAN's priority (0-7)"},
    {"plumb.vlan_proto", "sriov mode: 802.1q (default) or 802.1ad"},
    {"plumb.spoofchk", "sriov mode: the VFs' spoof check, on or off"},
    {"plumb.trust", "sriov mode: whether the VFs are trusted, on or off"},
    {"plumb.link_state", "sriov mode: auto, enable or disable"},
    {"plumb.min_tx_rate", "sriov mode: the VFs' minimum rate, Mbps"},
    {"plumb.max_tx_rate", "sriov mode: the VFs' maximum rate, Mbps (0: no limit)"},
    {"plumb.ovsdb",
     "ovs mode: ovsdb-server's socket, unix:PATH (default "
     "/var/run/openvswitch/db.sock, or $PLUMB_OVSDB)"},
    {"plumb.parent", "macvlan mode: the parent interface"},
    {"plumb.macvlan_mode", "macvlan mode: bridge (default), private, vepa, passthru or source"},
    {"plumb.device", "passthrough mode: the device to move into the container"},
    {"plumb.hwaddr", "passthrough mode: the device, by its MAC"},
    {"plumb.pci", "passthrough mode: the device, by its PCI address"},
    {"plumb.mtu", "MTU of the bridge and the container interfaces"},
    {"plumb.masquerade", "bridge mode: true (default) or false"},
    {"plumb.ipv6_forwarding",
     "bridge mode: true (default) turns on the host's IPv6 forwarding for an IPv6 network; "
     "false leaves it as it is (a host that takes its route from router advertisements)"},
    {"plumb.routes", "comma-separated subnets the containers reach through the gateway"},
};
}  // namespace

const std::span<const NetworkOption> kNetworkOptions = kOptionTable;

namespace {

// dockerd sends option values as strings (-o k=v); a JSON client may send numbers or booleans.
Result<std::string> optionText(const json& v, const std::string& key) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return std::string(v.get<bool>() ? "true" : "false");
  if (v.is_number_integer()) return std::to_string(v.get<long long>());
  return fail(Errc::kInvalid, "option " + key + " must be a string");
}

Result<bool> parseBool(const std::string& key, const std::string& v) {
  if (v == "true" || v == "1" || v == "yes") return true;
  if (v == "false" || v == "0" || v == "no") return false;
  return fail(Errc::kInvalid, "option " + key + " must be true or false, not '" + v + "'");
}

// A whole number from min to max; what names it in the error ("an MTU", "a VLAN").
Result<int> parseNumber(const std::string& key, const std::string& v, int min, int max,
                        const char* what) {
  int n = 0;
  size_t used = 0;
  try {
    n = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used != v.size() || v.empty() || n < min || n > max) {
    return fail(Errc::kInvalid, "option " + key + " must be " + what + " from " +
                                    std::to_string(min) + " to " + std::to_string(max) + ", not '" +
                                    v + "'");
  }
  return n;
}

Result<std::vector<Subnet>> parseIpData(const json& req, const char* key, bool v6) {
  std::vector<Subnet> out;
  PLUMB_ASSIGN(const json* list, jr::array(req, key));
  if (!list) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& d = (*list)[i];
    std::string path = std::string(key) + "[" + std::to_string(i) + "]";
    if (!d.is_object()) return fail(Errc::kInvalid, "field '" + path + "' must be an object");
    std::string pool, gateway;
    PLUMB_TRY(jr::str(d, "Pool", pool, path));
    PLUMB_TRY(jr::str(d, "Gateway", gateway, path));
    auto p = IpPrefix::parse(pool);
    if (!p.ok()) return fail(Errc::kInvalid, path + ".Pool: " + p.error().message);
    if (p->isV4() == v6)
      return fail(Errc::kInvalid,
                  path + ".Pool " + pool + " is not an IPv" + (v6 ? "6" : "4") + " subnet");
    Subnet s{p->network(), std::nullopt};
    if (!gateway.empty()) {
      // "a.b.c.d/len" from dockerd; a bare address is taken too.
      auto gw = IpPrefix::parse(gateway, true);
      if (!gw.ok()) return fail(Errc::kInvalid, path + ".Gateway: " + gw.error().message);
      if (!s.pool.contains(gw->addr()))
        return fail(Errc::kInvalid, path + ".Gateway " + gateway + " is outside " + pool);
      s.gateway = gw->addr();
    }
    out.push_back(s);
  }
  return out;
}

json subnetsJson(const std::vector<Subnet>& subnets) {
  json out = json::array();
  for (const auto& s : subnets)
    out.push_back({{"pool", s.pool.str()}, {"gateway", s.gateway ? s.gateway->str() : ""}});
  return out;
}

Result<std::vector<Subnet>> subnetsFrom(const json& j, const char* key) {
  std::vector<Subnet> out;
  PLUMB_ASSIGN(const json* list, jr::array(j, key));
  if (!list) return out;
  for (const auto& s : *list) {
    std::string pool, gw;
    PLUMB_TRY(jr::str(s, "pool", pool));
    PLUMB_TRY(jr::str(s, "gateway", gw));
    PLUMB_ASSIGN(auto p, IpPrefix::parse(pool));
    Subnet sub{p, std::nullopt};
    if (!gw.empty()) {
      PLUMB_ASSIGN(auto g, IpAddr::parse(gw));
      sub.gateway = g;
    }
    out.push_back(sub);
  }
  return out;
}

const char* protoName(int proto) {
  switch (proto) {
    case 6:
      return "tcp";
    case 17:
      return "udp";
    case 132:
      return "sctp";
    default:
      return nullptr;
  }
}

int protoNumber(const std::string& name) {
  if (name == "tcp") return 6;
  if (name == "udp") return 17;
  return 132;
}

json portJson(const core::PortMapping& p) {
  return {{"proto", p.proto},
          {"host_ip", p.host_ip ? p.host_ip->str() : ""},
          {"host_port", p.host_port},
          {"container_ip", p.container_ip.str()},
          {"container_port", p.container_port}};
}

Result<std::vector<core::PortMapping>> portsFrom(const json& j, const char* key) {
  std::vector<core::PortMapping> out;
  PLUMB_ASSIGN(const json* list, jr::array(j, key));
  if (!list) return out;
  for (const auto& e : *list) {
    core::PortMapping p;
    std::string host_ip, cip;
    int hp = 0, cp = 0;
    PLUMB_TRY(jr::str(e, "proto", p.proto));
    PLUMB_TRY(jr::str(e, "host_ip", host_ip));
    PLUMB_TRY(jr::str(e, "container_ip", cip));
    PLUMB_TRY(jr::integer(e, "host_port", hp));
    PLUMB_TRY(jr::integer(e, "container_port", cp));
    if (!host_ip.empty()) {
      PLUMB_ASSIGN(auto a, IpAddr::parse(host_ip));
      p.host_ip = a;
    }
    PLUMB_ASSIGN(p.container_ip, IpAddr::parse(cip));
    p.host_port = static_cast<uint16_t>(hp);
    p.container_port = static_cast<uint16_t>(cp);
    out.push_back(p);
  }
  return out;
}

}  // namespace

std::vector<IpPrefix> NetworkConfig::subnets() const {
  std::vector<IpPrefix> out;
  for (const auto& s : v4) out.push_back(s.pool);
  for (const auto& s : v6) out.push_back(s.pool);
  return out;
}

json NetworkConfig::toJson() const {
  return {{"id", id},
          {"mode", mode},
          {"bridge", bridge},
          {"vlan", vlan ? json(*vlan) : json(nullptr)},
          {"ovsdb", ovsdb},
          {"parent", parent},
          {"macvlan_mode", macvlan_mode},
          {"device", device},
          {"hwaddr", hwaddr},
          {"pci", pci},
          {"pf", pf},
          {"vf",
           {{"vlan_qos", vf.vlan_qos ? json(*vf.vlan_qos) : json(nullptr)},
            {"vlan_proto", vf.vlan_proto},
            {"spoofchk", vf.spoofchk ? json(*vf.spoofchk) : json(nullptr)},
            {"trust", vf.trust ? json(*vf.trust) : json(nullptr)},
            {"link_state", vf.link_state},
            {"min_tx_rate", vf.min_tx_rate ? json(*vf.min_tx_rate) : json(nullptr)},
            {"max_tx_rate", vf.max_tx_rate ? json(*vf.max_tx_rate) : json(nullptr)}}},
          {"mtu", mtu},
          {"masquerade", masquerade},
          {"internal", internal},
          {"ipv6", ipv6},
          {"ipv6_forwarding", ipv6_forwarding},
          {"v4", subnetsJson(v4)},
          {"v6", subnetsJson(v6)},
          {"routes", [this] {
             json r = json::array();
             for (const auto& p : routes) r.push_back(p.str());
             return r;
           }()}};
}

Result<NetworkConfig> NetworkConfig::fromJson(const json& j) {
  NetworkConfig n;
  PLUMB_TRY(jr::str(j, "id", n.id));
  PLUMB_TRY(jr::str(j, "mode", n.mode));
  PLUMB_TRY(jr::str(j, "bridge", n.bridge));
  PLUMB_TRY(jr::str(j, "parent", n.parent));
  if (j.contains("vlan") && j["vlan"].is_number_integer()) n.vlan = j["vlan"].get<int>();
  PLUMB_TRY(jr::str(j, "ovsdb", n.ovsdb));
  PLUMB_TRY(jr::str(j, "macvlan_mode", n.macvlan_mode));
  PLUMB_TRY(jr::str(j, "device", n.device));
  PLUMB_TRY(jr::str(j, "hwaddr", n.hwaddr));
  PLUMB_TRY(jr::str(j, "pci", n.pci));
  PLUMB_TRY(jr::str(j, "pf", n.pf));
  if (j.contains("vf") && j["vf"].is_object()) {
    const json& v = j["vf"];
    auto num = [&](const char* k, std::optional<int>& out) {
      if (v.contains(k) && v[k].is_number_integer()) out = v[k].get<int>();
    };
    auto flag = [&](const char* k, std::optional<bool>& out) {
      if (v.contains(k) && v[k].is_boolean()) out = v[k].get<bool>();
    };
    num("vlan_qos", n.vf.vlan_qos);
    num("min_tx_rate", n.vf.min_tx_rate);
    num("max_tx_rate", n.vf.max_tx_rate);
    flag("spoofchk", n.vf.spoofchk);
    flag("trust", n.vf.trust);
    PLUMB_TRY(jr::str(v, "vlan_proto", n.vf.vlan_proto));
    PLUMB_TRY(jr::str(v, "link_state", n.vf.link_state));
  }
  PLUMB_TRY(jr::integer(j, "mtu", n.mtu));
  PLUMB_TRY(jr::boolean(j, "masquerade", n.masquerade));
  PLUMB_TRY(jr::boolean(j, "internal", n.internal));
  PLUMB_TRY(jr::boolean(j, "ipv6", n.ipv6));
  PLUMB_TRY(jr::boolean(j, "ipv6_forwarding", n.ipv6_forwarding));
  PLUMB_ASSIGN(n.v4, subnetsFrom(j, "v4"));
  PLUMB_ASSIGN(n.v6, subnetsFrom(j, "v6"));
  std::vector<std::string> routes;
  PLUMB_TRY(jr::strList(j, "routes", routes));
  for (const auto& r : routes) {
    PLUMB_ASSIGN(auto p, IpPrefix::parse(r));
    n.routes.push_back(p);
  }
  return n;
}

Result<NetworkConfig> parseCreateNetwork(const json& req) {
  if (!req.is_object()) return fail(Errc::kInvalid, "the request must be a JSON object");
  NetworkConfig n;
  PLUMB_TRY(jr::str(req, "NetworkID", n.id));
  PLUMB_TRY(validateId("NetworkID", n.id));
  PLUMB_ASSIGN(const json* options, jr::object(req, "Options"));
  const json empty = json::object();
  if (!options) options = &empty;
  PLUMB_TRY(jr::boolean(*options, "com.docker.network.enable_ipv6", n.ipv6, "Options"));
  PLUMB_TRY(jr::boolean(*options, "com.docker.network.internal", n.internal, "Options"));
  PLUMB_ASSIGN(const json* generic, jr::object(*options, "com.docker.network.generic", "Options"));
  bool masquerade_set = false;
  if (generic) {
    for (const auto& [key, value] : generic->items()) {
      bool ours = key.rfind("plumb.", 0) == 0;
      if (!ours && key != "com.docker.network.driver.mtu") continue;  // other drivers' options
      PLUMB_ASSIGN(std::string v, optionText(value, key));
      if (key == "plumb.mode") {
        if (v != "bridge" && v != "macvlan" && v != "ovs" && v != "passthrough" && v != "sriov") {
          return fail(
              Errc::kInvalid,
              "option plumb.mode must be bridge, macvlan, ovs, passthrough or sriov, not '" + v +
                  "'");
        }
        n.mode = v;
      } else if (key == "plumb.bridge") {
        PLUMB_TRY(validateIfname(v));
        n.bridge = v;
      } else if (key == "plumb.vlan") {
        PLUMB_ASSIGN(n.vlan, parseNumber(key, v, 0, 4095, "a VLAN"));
      } else if (key == "plumb.ovsdb") {
        n.ovsdb = v;
      } else if (key == "plumb.parent") {
        PLUMB_TRY(validateIfname(v));
        n.parent = v;
      } else if (key == "plumb.macvlan_mode") {
        auto mode = core::parseMacvlanMode(v);
        if (!mode.ok()) return std::move(mode).error().wrap("option plumb.macvlan_mode");
        n.macvlan_mode = core::macvlanModeName(*mode);
      } else if (key == "plumb.mtu" || key == "com.docker.network.driver.mtu") {
        PLUMB_ASSIGN(n.mtu, parseNumber(key, v, 68, 65535, "an MTU"));
      } else if (key == "plumb.device") {
        PLUMB_TRY(validateIfname(v));
        n.device = v;
      } else if (key == "plumb.hwaddr") {
        auto m = MacAddr::parse(v);
        if (!m.ok()) return fail(Errc::kInvalid, "option plumb.hwaddr: " + m.error().message);
        n.hwaddr = m->str();
      } else if (key == "plumb.pci") {
        n.pci = v;
      } else if (key == "plumb.pf") {
        PLUMB_TRY(validateIfname(v));
        n.pf = v;
      } else if (key == "plumb.vlan_qos") {
        PLUMB_ASSIGN(n.vf.vlan_qos, parseNumber(key, v, 0, 7, "a priority"));
      } else if (key == "plumb.vlan_proto") {
        n.vf.vlan_proto = v;
      } else if (key == "plumb.spoofchk" || key == "plumb.trust") {
        bool on = v == "on";
        if (!on && v != "off") PLUMB_ASSIGN(on, parseBool(key, v));
        (key == "plumb.spoofchk" ? n.vf.spoofchk : n.vf.trust) = on;
      } else if (key == "plumb.link_state") {
        n.vf.link_state = v;
      } else if (key == "plumb.min_tx_rate" || key == "plumb.max_tx_rate") {
        PLUMB_ASSIGN(int rate, parseNumber(key, v, 0, 1000000000, "a rate in Mbps"));
        (key == "plumb.min_tx_rate" ? n.vf.min_tx_rate : n.vf.max_tx_rate) = rate;
      } else if (key == "plumb.routes") {
        for (size_t start = 0; start <= v.size();) {
          size_t comma = v.find(',', start);
          std::string part = v.substr(start, comma == std::string::npos ? comma : comma - start);
          auto p = IpPrefix::parse(part);
          if (!p.ok()) return fail(Errc::kInvalid, "option plumb.routes: " + p.error().message);
          n.routes.push_back(p->network());
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      } else if (key == "plumb.ipv6_forwarding") {
        PLUMB_ASSIGN(n.ipv6_forwarding, parseBool(key, v));
      } else if (key == "plumb.masquerade") {
        PLUMB_ASSIGN(n.masquerade, parseBool(key, v));
        masquerade_set = true;
      } else {
        std::string known;
        for (const auto& option : kNetworkOptions) {
          if (!known.empty()) known += ", ";
          known += option.name;
        }
        return fail(Errc::kInvalid, "unknown option " + key + " (plumb knows " + known + ")");
      }
    }
  }
  if (n.mode != "ovs" && !n.ovsdb.empty())
    return fail(Errc::kInvalid, "option plumb.ovsdb needs plumb.mode=ovs");
  if (n.mode != "ovs" && n.mode != "sriov" && n.vlan)
    return fail(Errc::kInvalid, "option plumb.vlan needs plumb.mode=ovs or plumb.mode=sriov");
  bool vf_options = !n.pf.empty() || n.vf.vlan_qos || !n.vf.vlan_proto.empty() || n.vf.spoofchk ||
                    n.vf.trust || !n.vf.link_state.empty() || n.vf.min_tx_rate || n.vf.max_tx_rate;
  if (n.mode != "sriov" && vf_options)
    return fail(Errc::kInvalid,
                "options plumb.pf, plumb.vlan_qos, plumb.vlan_proto, "
                "plumb.spoofchk, plumb.trust, plumb.link_state and the rates "
                "need plumb.mode=sriov");
  if (n.mode == "sriov") {
    if (n.pf.empty()) return fail(Errc::kInvalid, "plumb.mode=sriov needs plumb.pf");
    if (!n.bridge.empty() || !n.parent.empty() || !n.device.empty() || !n.pci.empty())
      return fail(
          Errc::kInvalid,
          "plumb.mode=sriov takes no plumb.bridge, plumb.parent, plumb.device or plumb.pci");
    if (masquerade_set && n.masquerade)
      return fail(Errc::kInvalid, "option plumb.masquerade needs plumb.mode=bridge");
    n.masquerade = false;
  } else if (n.mode == "ovs") {
    if (n.bridge.empty())
      return fail(Errc::kInvalid, "plumb.mode=ovs needs plumb.bridge (an Open vSwitch bridge)");
    if (!n.parent.empty())
      return fail(Errc::kInvalid, "option plumb.parent needs plumb.mode=macvlan");
    if (masquerade_set && n.masquerade)
      return fail(Errc::kInvalid, "option plumb.masquerade needs plumb.mode=bridge");
    n.masquerade = false;
  } else if (n.mode == "bridge") {
    if (!n.parent.empty())
      return fail(Errc::kInvalid, "option plumb.parent needs plumb.mode=macvlan");
    // Docker's own bridges are br-<12 hex>; plumb's stand apart from them.
    if (n.bridge.empty()) n.bridge = "pbr-" + n.id.substr(0, 11);
  } else if (n.mode == "passthrough") {
    if (n.device.empty() && n.hwaddr.empty() && n.pci.empty()) {
      return fail(Errc::kInvalid,
                  "plumb.mode=passthrough needs plumb.device, plumb.hwaddr or plumb.pci");
    }
    if (!n.bridge.empty() || !n.parent.empty())
      return fail(Errc::kInvalid, "plumb.mode=passthrough takes no plumb.bridge or plumb.parent");
    n.masquerade = false;
  } else {
    if (n.parent.empty()) return fail(Errc::kInvalid, "plumb.mode=macvlan needs plumb.parent");
    if (!n.bridge.empty())
      return fail(Errc::kInvalid, "option plumb.bridge needs plumb.mode=bridge");
    if (masquerade_set && n.masquerade)
      return fail(Errc::kInvalid, "option plumb.masquerade needs plumb.mode=bridge");
    n.masquerade = false;
  }
  if (n.internal) {
    if (masquerade_set && n.masquerade)
      return fail(Errc::kInvalid, "an --internal network cannot masquerade");
    n.masquerade = false;
  }
  PLUMB_ASSIGN(n.v4, parseIpData(req, "IPv4Data", false));
  PLUMB_ASSIGN(n.v6, parseIpData(req, "IPv6Data", true));
  if (!n.ipv6 && !n.v6.empty()) n.ipv6 = true;
  return n;
}

json EndpointConfig::toJson() const {
  json ports_j = json::array(), pub = json::array();
  for (const auto& p : ports) ports_j.push_back(portJson(p));
  for (const auto& p : published) pub.push_back(portJson(p));
  return {{"network", network},
          {"id", id},
          {"address", address ? address->str() : ""},
          {"address6", address6 ? address6->str() : ""},
          {"mac", mac},
          {"ports", ports_j},
          {"published", pub}};
}

Result<EndpointConfig> EndpointConfig::fromJson(const json& j) {
  EndpointConfig e;
  std::string a4, a6;
  PLUMB_TRY(jr::str(j, "network", e.network));
  PLUMB_TRY(jr::str(j, "id", e.id));
  PLUMB_TRY(jr::str(j, "address", a4));
  PLUMB_TRY(jr::str(j, "address6", a6));
  PLUMB_TRY(jr::str(j, "mac", e.mac));
  if (!a4.empty()) {
    PLUMB_ASSIGN(auto p, IpPrefix::parse(a4));
    e.address = p;
  }
  if (!a6.empty()) {
    PLUMB_ASSIGN(auto p, IpPrefix::parse(a6));
    e.address6 = p;
  }
  PLUMB_ASSIGN(e.ports, portsFrom(j, "ports"));
  PLUMB_ASSIGN(e.published, portsFrom(j, "published"));
  return e;
}

Result<EndpointConfig> parseCreateEndpoint(const json& req) {
  if (!req.is_object()) return fail(Errc::kInvalid, "the request must be a JSON object");
  EndpointConfig e;
  PLUMB_TRY(jr::str(req, "NetworkID", e.network));
  PLUMB_TRY(validateId("NetworkID", e.network));
  PLUMB_TRY(jr::str(req, "EndpointID", e.id));
  PLUMB_TRY(validateId("EndpointID", e.id));
  PLUMB_ASSIGN(const json* iface, jr::object(req, "Interface"));
  if (iface) {
    std::string a4, a6;
    PLUMB_TRY(jr::str(*iface, "Address", a4, "Interface"));
    PLUMB_TRY(jr::str(*iface, "AddressIPv6", a6, "Interface"));
    PLUMB_TRY(jr::str(*iface, "MacAddress", e.mac, "Interface"));
    if (!a4.empty()) {
      auto p = IpPrefix::parse(a4);
      if (!p.ok() || !p->isV4())
        return fail(Errc::kInvalid, "Interface.Address '" + a4 + "' is not an IPv4 address/prefix");
      e.address = *p;
    }
    if (!a6.empty()) {
      auto p = IpPrefix::parse(a6);
      if (!p.ok() || p->isV4()) {
        return fail(Errc::kInvalid,
                    "Interface.AddressIPv6 '" + a6 + "' is not an IPv6 address/prefix");
      }
      e.address6 = *p;
    }
    if (!e.mac.empty()) {
      auto mac = MacAddr::parse(e.mac);
      if (!mac.ok()) return std::move(mac).error().wrap("Interface.MacAddress");
      if (auto st = checkUnicast(*mac); !st.ok())
        return std::move(st).error().wrap("Interface.MacAddress");
      e.mac = mac->str();
    }
  }
  PLUMB_ASSIGN(const json* options, jr::object(req, "Options"));
  if (options) PLUMB_ASSIGN(e.ports, parsePortmap(*options, e));
  return e;
}

Result<std::vector<core::PortMapping>> parsePortmap(const json& options, const EndpointConfig& ep) {
  std::vector<core::PortMapping> out;
  PLUMB_ASSIGN(const json* list, jr::array(options, "com.docker.network.portmap", "Options"));
  if (!list) return out;
  for (size_t i = 0; i < list->size(); ++i) {
    const json& e = (*list)[i];
    std::string path = "Options.com.docker.network.portmap[" + std::to_string(i) + "]";
    if (!e.is_object()) return fail(Errc::kInvalid, "field '" + path + "' must be an object");
    int proto = 0, port = 0, host_port = 0;
    std::string host_ip;
    PLUMB_TRY(jr::integer(e, "Proto", proto, path));
    PLUMB_TRY(jr::integer(e, "Port", port, path));
    PLUMB_TRY(jr::integer(e, "HostPort", host_port, path));
    PLUMB_TRY(jr::str(e, "HostIP", host_ip, path));
    const char* name = protoName(proto);
    if (!name)
      return fail(Errc::kInvalid,
                  path + ": protocol " + std::to_string(proto) + " cannot be published");
    if (port < 1 || port > 65535 || host_port < 0 || host_port > 65535)
      return fail(Errc::kInvalid, path + ": port out of range");
    core::PortMapping base;
    base.proto = name;
    base.host_port = static_cast<uint16_t>(host_port);
    base.container_port = static_cast<uint16_t>(port);
    if (!host_ip.empty()) {
      auto a = IpAddr::parse(host_ip);
      if (!a.ok()) return fail(Errc::kInvalid, path + ".HostIP: " + a.error().message);
      if (!a->isUnspecified()) base.host_ip = *a;
    }
    for (const auto& addr : {ep.address, ep.address6}) {
      if (!addr) continue;
      if (base.host_ip && base.host_ip->isV4() != addr->isV4()) continue;
      core::PortMapping p = base;
      p.container_ip = addr->addr();
      out.push_back(p);
    }
  }
  return out;
}

json portmapJson(const std::vector<core::PortMapping>& ports) {
  json out = json::array();
  for (const auto& p : ports) {
    out.push_back({{"Proto", protoNumber(p.proto)},
                   {"IP", p.container_ip.str()},
                   {"Port", p.container_port},
                   {"HostIP", p.host_ip ? p.host_ip->str() : ""},
                   {"HostPort", p.host_port},
                   {"HostPortEnd", p.host_port}});
  }
  return out;
}

}  // namespace plumb::docker
