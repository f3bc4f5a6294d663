#include "plugin/cni/result_codec.h"

#include <algorithm>
#include <array>
#include <charconv>

namespace plumb::cni {

namespace jr = plumb::json_read;

bool isSupported(const std::string& version) {
  const auto& v = supportedVersions();
  return std::find(v.begin(), v.end(), version) != v.end();
}

namespace {

// "1.0.0" -> {1, 0, 0}; missing or unparsable parts are -1.
std::array<int, 3> versionParts(const std::string& v) {
  std::array<int, 3> out = {-1, -1, -1};
  const char* p = v.data();
  const char* end = v.data() + v.size();
  for (int& part : out) {
    auto [next, ec] = std::from_chars(p, end, part);
    if (ec != std::errc()) break;
    p = next;
    if (p == end || *p != '.') break;
    ++p;
  }
  return out;
}

}  // namespace

int compareVersions(const std::string& a, const std::string& b) {
  auto x = versionParts(a), y = versionParts(b);
  for (size_t i = 0; i < 3; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

Status fromJson(const json& j, Dns& out) {
  if (!j.is_object()) return fail(Errc::kInvalid, "field 'dns' must be an object");
  PLUMB_TRY(jr::strList(j, "nameservers", out.nameservers, "dns"));
  PLUMB_TRY(jr::str(j, "domain", out.domain, "dns"));
  PLUMB_TRY(jr::strList(j, "search", out.search, "dns"));
  PLUMB_TRY(jr::strList(j, "options", out.options, "dns"));
  return {};
}

Status fromJson(const json& j, RouteConfig& out) {
  if (!j.is_object()) return fail(Errc::kInvalid, "each route must be an object");
  std::string dst, gw;
  PLUMB_TRY(jr::str(j, "dst", dst, "route"));
  PLUMB_TRY(jr::str(j, "gw", gw, "route"));
  auto p = IpPrefix::parse(dst);
  if (!p.ok()) return std::move(p).error().wrap("bad route dst");
  out.dst = *p;
  if (!gw.empty()) {
    auto g = IpAddr::parse(gw);
    if (!g.ok()) return std::move(g).error().wrap("bad route gw");
    out.gw = *g;
  }
  PLUMB_TRY(jr::integer(j, "mtu", out.mtu, "route"));
  PLUMB_TRY(jr::integer(j, "priority", out.priority, "route"));
  return {};
}

Status fromJson(const json& j, CniResult& out) {
  if (!j.is_object()) return fail(Errc::kDecode, "a result must be a JSON object");
  PLUMB_ASSIGN(const json* ifaces, jr::array(j, "interfaces"));
  if (ifaces) {
    for (const auto& i : *ifaces) {
      if (!i.is_object()) return fail(Errc::kInvalid, "each interface must be an object");
      Interface f;
      PLUMB_TRY(jr::str(i, "name", f.name, "interfaces"));
      PLUMB_TRY(jr::str(i, "mac", f.mac, "interfaces"));
      PLUMB_TRY(jr::str(i, "sandbox", f.sandbox, "interfaces"));
      PLUMB_TRY(jr::integer(i, "mtu", f.mtu, "interfaces"));
      PLUMB_TRY(jr::str(i, "pciID", f.pci_id, "interfaces"));
      out.interfaces.push_back(f);
    }
  }
  PLUMB_ASSIGN(const json* ips, jr::array(j, "ips"));
  if (ips) {
    for (const auto& i : *ips) {
      if (!i.is_object()) return fail(Errc::kInvalid, "each ip must be an object");
      std::string address, gateway;
      int iface = -1;
      PLUMB_TRY(jr::str(i, "address", address, "ips"));
      PLUMB_TRY(jr::str(i, "gateway", gateway, "ips"));
      PLUMB_TRY(jr::integer(i, "interface", iface, "ips"));
      IpConfig c;
      auto p = IpPrefix::parse(address);
      if (!p.ok()) return std::move(p).error().wrap("bad ips.address");
      c.address = *p;
      if (!gateway.empty()) {
        auto g = IpAddr::parse(gateway);
        if (!g.ok()) return std::move(g).error().wrap("bad ips.gateway");
        c.gateway = *g;
      }
      if (iface >= 0) c.interface = iface;
      out.ips.push_back(c);
    }
  }
  PLUMB_ASSIGN(const json* routes, jr::array(j, "routes"));
  if (routes) {
    for (const auto& r : *routes) {
      RouteConfig rc;
      PLUMB_TRY(fromJson(r, rc));
      out.routes.push_back(rc);
    }
  }
  PLUMB_ASSIGN(const json* dns, jr::object(j, "dns"));
  if (dns) PLUMB_TRY(fromJson(*dns, out.dns));
  return {};
}

json toJson(const Dns& dns) {
  json d = json::object();
  if (!dns.nameservers.empty()) d["nameservers"] = dns.nameservers;
  if (!dns.domain.empty()) d["domain"] = dns.domain;
  if (!dns.search.empty()) d["search"] = dns.search;
  if (!dns.options.empty()) d["options"] = dns.options;
  return d;
}

json toJson(const CniResult& r, const std::string& version) {
  bool legacy = compareVersions(version, "1.0.0") < 0;
  bool v11 = compareVersions(version, "1.1.0") >= 0;
  json out = json::object();
  out["cniVersion"] = version;
  if (!r.interfaces.empty()) {
    json ifs = json::array();
    for (const auto& i : r.interfaces) {
      json f = {{"name", i.name}};
      if (!i.mac.empty()) f["mac"] = i.mac;
      if (v11 && i.mtu > 0) f["mtu"] = i.mtu;
      if (!i.sandbox.empty()) f["sandbox"] = i.sandbox;
      if (v11 && !i.pci_id.empty()) f["pciID"] = i.pci_id;
      ifs.push_back(f);
    }
    out["interfaces"] = ifs;
  }
  json ips = json::array();
  for (const auto& ip : r.ips) {
    json e = json::object();
    if (legacy) e["version"] = ip.address.isV4() ? "4" : "6";
    e["address"] = ip.address.str();
    if (ip.gateway) e["gateway"] = ip.gateway->str();
    if (ip.interface) e["interface"] = *ip.interface;
    ips.push_back(e);
  }
  if (!ips.empty()) out["ips"] = ips;
  if (!r.routes.empty()) {
    json routes = json::array();
    for (const auto& rt : r.routes) {
      json e = {{"dst", rt.dst.str()}};
      if (rt.gw) e["gw"] = rt.gw->str();
      if (v11 && rt.mtu > 0) e["mtu"] = rt.mtu;
      if (v11 && rt.priority > 0) e["priority"] = rt.priority;
      routes.push_back(e);
    }
    out["routes"] = routes;
  }
  out["dns"] = toJson(r.dns);
  return out;
}

}  // namespace plumb::cni
