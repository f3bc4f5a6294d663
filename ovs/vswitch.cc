#include "ovs/vswitch.h"
#include "base/json.h"

#include <cstdint>

namespace plumb::ovs {

namespace {

json cond(const char* column, const char* fn, json value) {
  return json::array({json::array({column, fn, std::move(value)})});
}

// The second, server-side bound of a wait: the call's own timeout leaves it room to answer.
constexpr std::chrono::milliseconds kReplyMargin{1000};

}  // namespace

// A select's result: its rows, an array (none when the answer has no "rows").
Result<json> rowsOf(const json& result) {
  json rows = json_read::valueOr(result, "rows", json::array());
  if (!rows.is_array()) return fail(Errc::kDecode, "OVSDB returned rows that are not an array");
  return rows;
}

Result<PortRow> portRow(const json& row) {
  PortRow p;
  PLUMB_ASSIGN(p.uuid, uuidOf(json_read::valueOr(row, "_uuid", json())));
  p.name = json_read::valueOr(row, "name", std::string());
  PLUMB_ASSIGN(auto tag,
               optionalInt(json_read::valueOr(row, "tag", json::array({"set", json::array()}))));
  if (tag) p.tag = static_cast<int>(*tag);
  PLUMB_ASSIGN(auto trunks,
               setAtoms(json_read::valueOr(row, "trunks", json::array({"set", json::array()}))));
  for (const auto& t : trunks) {
    if (!t.is_number_integer()) return fail(Errc::kDecode, "Port trunks hold a non-integer");
    p.trunks.push_back(t.get<int>());
  }
  PLUMB_ASSIGN(p.external_ids, stringMap(json_read::valueOr(row, "external_ids",
                                                            json::array({"map", json::array()}))));
  return p;
}

// An Interface row as selected: the columns asked for are read, the others left empty.
Result<InterfaceRow> interfaceRow(const json& row) {
  InterfaceRow r;
  r.name = json_read::valueOr(row, "name", std::string());
  r.type = json_read::valueOr(row, "type", std::string());
  PLUMB_ASSIGN(r.ofport,
               optionalInt(json_read::valueOr(row, "ofport", json::array({"set", json::array()}))));
  PLUMB_ASSIGN(auto err,
               setAtoms(json_read::valueOr(row, "error", json::array({"set", json::array()}))));
  if (!err.empty() && err[0].is_string()) r.error = err[0].get<std::string>();
  return r;
}

Result<Switch> Switch::open(const std::string& where_to, std::chrono::milliseconds timeout) {
  PLUMB_ASSIGN(auto conn, Connection::open(where_to, timeout));
  return Switch(std::move(conn), timeout);
}

Result<std::vector<json>> Switch::run(const json& ops, size_t* failed_op) {
  return transact(conn_, kDatabase, ops, timeout_ + kReplyMargin, failed_op);
}

Result<json> Switch::select(const char* table, json where, json columns) {
  json ops = json::array({{{"op", "select"},
                           {"table", table},
                           {"where", std::move(where)},
                           {"columns", std::move(columns)}}});
  PLUMB_ASSIGN(auto res, run(ops));
  return rowsOf(res[0]);
}

Result<json> Switch::applied(const json& select_next_cfg, const std::string& iface_uuid,
                             const std::string& what) {
  PLUMB_ASSIGN(const json rows, rowsOf(select_next_cfg));
  json next = rows.empty() ? json() : json_read::valueOr(rows[0], "next_cfg", json());
  if (!next.is_number_integer()) return fail(Errc::kDecode, "OVSDB returned no next_cfg");
  long long next_cfg = next.get<long long>();
  size_t failed = SIZE_MAX;
  auto done = run(appliedOps(next_cfg, iface_uuid, timeout_.count()), &failed);
  if (!done.ok() && failed == 0) {
    return fail(Errc::kTryAgain, "ovs-vswitchd did not apply " + what + " within " +
                                     std::to_string(timeout_.count()) +
                                     " ms (is ovs-vswitchd running?)");
  }
  PLUMB_TRY(done);
  return rowsOf((*done)[1]);
}

json Switch::addPortOps(const PortSpec& spec) {
  json ids = map(spec.external_ids);
  json iface = {{"name", spec.name}, {"external_ids", ids}};
  if (!spec.interface_type.empty()) iface["type"] = spec.interface_type;
  if (spec.ofport_request) iface["ofport_request"] = *spec.ofport_request;
  json port = {{"name", spec.name}, {"interfaces", namedUuid("iface")}, {"external_ids", ids}};
  if (spec.tag) port["tag"] = *spec.tag;
  if (!spec.trunks.empty()) {
    std::vector<json> t(spec.trunks.begin(), spec.trunks.end());
    port["trunks"] = set(std::move(t));
  }
  return json::array({
      // Fails the whole transaction at once when the bridge is not there.
      {{"op", "wait"},
       {"table", "Bridge"},
       {"where", cond("name", "==", spec.bridge)},
       {"columns", {"name"}},
       {"until", "=="},
       {"rows", json::array({{{"name", spec.bridge}}})},
       {"timeout", 0}},
      {{"op", "insert"}, {"table", "Interface"}, {"row", iface}, {"uuid-name", "iface"}},
      {{"op", "insert"}, {"table", "Port"}, {"row", port}, {"uuid-name", "port"}},
      {{"op", "mutate"},
       {"table", "Bridge"},
       {"where", cond("name", "==", spec.bridge)},
       {"mutations", json::array({json::array({"ports", "insert", namedUuid("port")})})}},
      {{"op", "mutate"},
       {"table", "Open_vSwitch"},
       {"where", json::array()},
       {"mutations", json::array({json::array({"next_cfg", "+=", 1})})}},
      {{"op", "select"},
       {"table", "Open_vSwitch"},
       {"where", json::array()},
       {"columns", {"next_cfg"}}},
  });
}

json Switch::appliedOps(long long next_cfg, const std::string& iface_uuid, long long wait_ms) {
  return json::array({
      // Until some row has cur_cfg >= next_cfg: others' changes may have moved it past ours.
      {{"op", "wait"},
       {"table", "Open_vSwitch"},
       {"where", cond("cur_cfg", ">=", next_cfg)},
       {"columns", {"cur_cfg"}},
       {"until", "!="},
       {"rows", json::array()},
       {"timeout", wait_ms}},
      {{"op", "select"},
       {"table", "Interface"},
       {"where", cond("_uuid", "==", uuid(iface_uuid))},
       {"columns", {"ofport", "error"}}},
  });
}

json Switch::removePortsOps(const std::vector<std::string>& port_uuids) {
  json ops = json::array();
  for (const auto& u : port_uuids) {
    // The Port and its Interface are not root rows: once no bridge refers to them the
    // database deletes them.
    ops.push_back({{"op", "mutate"},
                   {"table", "Bridge"},
                   {"where", cond("ports", "includes", uuid(u))},
                   {"mutations", json::array({json::array({"ports", "delete", uuid(u)})})}});
  }
  return ops;
}

Result<long long> Switch::addPort(const PortSpec& spec) {
  size_t failed = SIZE_MAX;
  auto added = run(addPortOps(spec), &failed);
  if (!added.ok()) {
    if (failed == 0) return fail(Errc::kNotFound, "no Open vSwitch bridge " + spec.bridge);
    return std::move(added).error().wrap("cannot add port " + spec.name + " to " + spec.bridge);
  }
  auto& res = *added;
  PLUMB_ASSIGN(auto iface_uuid, uuidOf(json_read::valueOr(res[1], "uuid", json())));
  PLUMB_ASSIGN(auto port_uuid, uuidOf(json_read::valueOr(res[2], "uuid", json())));
  auto undo = [&](Error e) -> Result<long long> {
    (void)removePorts({port_uuid});
    return fail(std::move(e));
  };
  auto rows = applied(res[5], iface_uuid, "port " + spec.name + " on " + spec.bridge);
  if (!rows.ok()) return undo(std::move(rows).error());
  if (rows->empty()) return fail(Errc::kNotFound, "port " + spec.name + " vanished from OVSDB");
  auto iface = interfaceRow((*rows)[0]);
  if (!iface.ok() || !iface->error.empty() || !iface->ofport || *iface->ofport < 0) {
    std::string why =
        iface.ok() && !iface->error.empty() ? iface->error : "no OpenFlow port number";
    return undo(makeError(Errc::kKernel, "Open vSwitch refused port " + spec.name + " on " +
                                             spec.bridge + ": " + why));
  }
  return *iface->ofport;
}

Status Switch::removePorts(const std::vector<std::string>& port_uuids) {
  if (port_uuids.empty()) return {};
  PLUMB_TRY(run(removePortsOps(port_uuids)));
  return {};
}

Result<std::vector<PortRow>> Switch::findPorts(const std::map<std::string, std::string>& ids) {
  PLUMB_ASSIGN(auto rows, select("Port", cond("external_ids", "includes", map(ids)),
                                 {"_uuid", "name", "tag", "trunks", "external_ids"}));
  std::vector<PortRow> out;
  for (const auto& row : rows) {
    PLUMB_ASSIGN(auto p, portRow(row));
    out.push_back(std::move(p));
  }
  return out;
}

Result<std::string> Switch::bridgeOf(const std::string& port_uuid) {
  PLUMB_ASSIGN(auto rows, select("Bridge", cond("ports", "includes", uuid(port_uuid)), {"name"}));
  if (rows.empty()) return std::string();
  return json_read::valueOr(rows[0], "name", std::string());
}

Result<std::optional<InterfaceRow>> Switch::findInterface(const std::string& name) {
  PLUMB_ASSIGN(auto rows,
               select("Interface", cond("name", "==", name), {"name", "ofport", "error", "type"}));
  if (rows.empty()) return std::optional<InterfaceRow>();
  PLUMB_ASSIGN(auto r, interfaceRow(rows[0]));
  return std::optional<InterfaceRow>(std::move(r));
}

Result<bool> Switch::bridgeExists(const std::string& name) {
  PLUMB_ASSIGN(auto rows, select("Bridge", cond("name", "==", name), {"name"}));
  return !rows.empty();
}

Status Switch::createBridge(const std::string& name, const std::string& datapath_type,
                            const std::map<std::string, std::string>& external_ids) {
  json bridge = {{"name", name}, {"ports", namedUuid("port")}, {"external_ids", map(external_ids)}};
  if (!datapath_type.empty()) bridge["datapath_type"] = datapath_type;
  json ops = json::array({
      {{"op", "insert"},
       {"table", "Interface"},
       {"row", {{"name", name}, {"type", "internal"}}},
       {"uuid-name", "iface"}},
      {{"op", "insert"},
       {"table", "Port"},
       {"row", {{"name", name}, {"interfaces", namedUuid("iface")}}},
       {"uuid-name", "port"}},
      {{"op", "insert"}, {"table", "Bridge"}, {"row", bridge}, {"uuid-name", "bridge"}},
      {{"op", "mutate"},
       {"table", "Open_vSwitch"},
       {"where", json::array()},
       {"mutations", json::array({json::array({"bridges", "insert", namedUuid("bridge")}),
                                  json::array({"next_cfg", "+=", 1})})}},
      {{"op", "select"},
       {"table", "Open_vSwitch"},
       {"where", json::array()},
       {"columns", {"next_cfg"}}},
  });
  PLUMB_ASSIGN(auto res, run(ops));
  PLUMB_ASSIGN(auto iface_uuid, uuidOf(json_read::valueOr(res[0], "uuid", json())));
  PLUMB_TRY(applied(res[4], iface_uuid, "bridge " + name));
  return {};
}

Status Switch::deleteBridge(const std::string& name) {
  PLUMB_ASSIGN(auto rows, select("Bridge", cond("name", "==", name), {"_uuid"}));
  if (rows.empty()) return {};
  PLUMB_ASSIGN(auto id, uuidOf(json_read::valueOr(rows[0], "_uuid", json())));
  json ops = json::array({{{"op", "mutate"},
                           {"table", "Open_vSwitch"},
                           {"where", json::array()},
                           {"mutations", json::array({json::array({"bridges", "delete", uuid(id)}),
                                                      json::array({"next_cfg", "+=", 1})})}}});
  PLUMB_TRY(run(ops));
  return {};
}

}  // namespace plumb::ovs
