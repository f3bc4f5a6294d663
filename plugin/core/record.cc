// The attachment record's typed fields as one JSON text in the store: written and read here
// only. Records written before the fields were typed (a "dhcp" object, routes' "gw") still read.
#include <nlohmann/json.hpp>

#include "plugin/core/types.h"

namespace plumb::core {

using json = nlohmann::json;

namespace {

std::string textOf(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_string() ? j[key].get<std::string>() : "";
}

std::optional<IpAddr> addrOf(const json& j, const char* key) {
  auto a = IpAddr::parse(textOf(j, key));
  return a.ok() ? std::optional<IpAddr>(*a) : std::nullopt;
}

std::optional<MacAddr> macOf(const json& j, const char* key) {
  auto m = MacAddr::parse(textOf(j, key));
  return m.ok() ? std::optional<MacAddr>(*m) : std::nullopt;
}

long long numberOf(const json& j, const char* key) {
  return j.is_object() && j.contains(key) && j[key].is_number_integer() ? j[key].get<long long>()
                                                                        : 0;
}

std::vector<std::string> textsOf(const json& j, const char* key) {
  std::vector<std::string> out;
  if (!j.is_object() || !j.contains(key) || !j[key].is_array()) return out;
  for (const auto& f : j[key]) {
    if (f.is_string()) out.push_back(f.get<std::string>());
  }
  return out;
}

const json& arrayOf(const json& j, const char* key) {
  static const json empty = json::array();
  return j.is_object() && j.contains(key) && j[key].is_array() ? j[key] : empty;
}

Helper helperOf(const json& h, const std::string& kind) {
  Helper out;
  out.kind = kind.empty() ? textOf(h, "kind") : kind;
  out.program = textOf(h, kind.empty() ? "program" : "client");
  out.pid = static_cast<pid_t>(numberOf(h, "pid"));
  out.files = textsOf(h, "files");
  return out;
}

DeviceRestore restoreOf(const json& r) {
  DeviceRestore dr;
  dr.name = textOf(r, "name");
  dr.mtu = static_cast<int>(numberOf(r, "mtu"));
  dr.mac = macOf(r, "mac");
  dr.perm_mac = macOf(r, "perm_mac");
  dr.pci = textOf(r, "pci");
  dr.alias = textOf(r, "alias");
  dr.up = r.contains("up") && r["up"].is_boolean() && r["up"].get<bool>();
  dr.altnames = textsOf(r, "altnames");
  for (const auto& a : textsOf(r, "addresses")) {
    auto p = IpPrefix::parse(a);
    if (p.ok()) dr.addresses.push_back(*p);
  }
  if (r.contains("routes") && r["routes"].is_array()) {
    for (const auto& x : r["routes"]) {
      if (!x.is_object()) continue;
      auto dst = IpPrefix::parse(textOf(x, "dst"));
      if (!dst.ok()) continue;
      DeviceRestore::HostRoute hr{*dst, std::nullopt, static_cast<uint32_t>(numberOf(x, "metric"))};
      auto gw = IpAddr::parse(textOf(x, "gateway"));
      if (gw.ok()) hr.gateway = *gw;
      dr.routes.push_back(hr);
    }
  }
  return dr;
}

}  // namespace

std::string DeviceRestore::json() const {
  nlohmann::json r = {{"name", name},
                      {"mtu", mtu},
                      {"mac", mac ? mac->str() : ""},
                      {"perm_mac", perm_mac ? perm_mac->str() : ""},
                      {"pci", pci},
                      {"alias", alias},
                      {"up", up}};
  if (!altnames.empty()) r["altnames"] = altnames;
  if (!addresses.empty()) {
    r["addresses"] = nlohmann::json::array();
    for (const auto& a : addresses) r["addresses"].push_back(a.str());
  }
  if (!routes.empty()) {
    r["routes"] = nlohmann::json::array();
    for (const auto& x : routes)
      r["routes"].push_back({{"dst", x.dst.str()},
                             {"gateway", x.gateway ? x.gateway->str() : ""},
                             {"metric", x.metric}});
  }
  return r.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

Result<DeviceRestore> DeviceRestore::fromJson(const std::string& text) {
  auto r = nlohmann::json::parse(text, nullptr, false);
  if (!r.is_object()) return fail(Errc::kIo, "a device's saved state is damaged");
  return restoreOf(r);
}

std::string AttachmentRecord::detailJson() const {
  json d = json::object();
  d["addresses"] = json::array();
  for (const auto& a : addresses) {
    d["addresses"].push_back(
        {{"address", a.address.str()}, {"gateway", a.gateway ? a.gateway->str() : ""}});
  }
  d["routes"] = json::array();
  for (const auto& r : routes) {
    d["routes"].push_back({{"dst", r.dst.str()}, {"gateway", r.gateway ? r.gateway->str() : ""}});
  }
  if (restore) d["restore"] = json::parse(restore->json());
  if (!helpers.empty()) {
    d["helpers"] = json::array();
    for (const auto& h : helpers) {
      d["helpers"].push_back(
          {{"kind", h.kind}, {"program", h.program}, {"pid", h.pid}, {"files", h.files}});
    }
  }
  if (!ovsdb.empty()) d["ovsdb"] = ovsdb;
  if (vlan) d["vlan"] = *vlan;
  if (!pci.empty()) d["pci"] = pci;
  if (claim) d["claim"] = claim;
  if (state == "adding" && owner_pid > 0) d["owner"] = {{"pid", owner_pid}, {"start", owner_start}};
  // Names reach here from the kernel and the user: a byte that is not UTF-8 is replaced
  // rather than thrown over, since the kernel has been changed by the time a record is made.
  return d.dump(-1, ' ', false, json::error_handler_t::replace);
}

Status AttachmentRecord::readDetail(const std::string& text) {
  auto d = json::parse(text, nullptr, false);
  if (!d.is_object()) return fail(Errc::kIo, "attachment " + key.str() + " has a damaged record");
  addresses.clear();
  for (const auto& a : arrayOf(d, "addresses")) {
    auto prefix = IpPrefix::parse(textOf(a, "address"));
    if (prefix.ok()) addresses.push_back({*prefix, addrOf(a, "gateway")});
  }
  routes.clear();
  for (const auto& r : arrayOf(d, "routes")) {
    auto dst = IpPrefix::parse(textOf(r, "dst"));
    if (!dst.ok()) continue;
    RouteSpec spec;
    spec.dst = *dst;
    spec.gateway = r.contains("gw") ? addrOf(r, "gw") : addrOf(r, "gateway");
    routes.push_back(spec);
  }
  restore.reset();
  if (d.contains("restore") && d["restore"].is_object()) restore = restoreOf(d["restore"]);
  ovsdb = textOf(d, "ovsdb");
  vlan.reset();
  if (d.contains("vlan") && d["vlan"].is_number_integer()) vlan = d["vlan"].get<int>();
  pci = textOf(d, "pci");
  claim = numberOf(d, "claim");
  owner_pid = 0;
  owner_start = 0;
  if (d.contains("owner") && d["owner"].is_object()) {
    owner_pid = static_cast<pid_t>(numberOf(d["owner"], "pid"));
    owner_start = numberOf(d["owner"], "start");
  }
  helpers.clear();
  for (const auto& h : arrayOf(d, "helpers")) helpers.push_back(helperOf(h, ""));
  if (d.contains("dhcp") && d["dhcp"].is_object()) helpers.push_back(helperOf(d["dhcp"], "dhcp"));
  return {};
}

}  // namespace plumb::core
