#include "ovs/ovsdb.h"
#include "base/json.h"

namespace plumb::ovs {

json uuid(const std::string& id) { return json::array({"uuid", id}); }
json namedUuid(const std::string& name) { return json::array({"named-uuid", name}); }
json set(std::vector<json> atoms) { return json::array({"set", json(std::move(atoms))}); }

json map(const std::map<std::string, std::string>& pairs) {
  json items = json::array();
  for (const auto& [k, v] : pairs) items.push_back(json::array({k, v}));
  return json::array({"map", std::move(items)});
}

Result<std::vector<json>> setAtoms(const json& value) {
  if (value.is_array() && value.size() == 2 && value[0] == "set") {
    if (!value[1].is_array())
      return fail(Errc::kDecode, "OVSDB set without a list: " + value.dump());
    return value[1].get<std::vector<json>>();
  }
  if (value.is_array() && value.size() == 2 && value[0] == "map")
    return fail(Errc::kDecode, "OVSDB value is a map where a set was expected");
  return std::vector<json>{value};  // one atom, bare (a uuid is ["uuid", id])
}

Result<std::map<std::string, std::string>> stringMap(const json& value) {
  if (!value.is_array() || value.size() != 2 || value[0] != "map" || !value[1].is_array())
    return fail(Errc::kDecode, "OVSDB value is not a map: " + value.dump());
  std::map<std::string, std::string> out;
  for (const auto& pair : value[1]) {
    if (!pair.is_array() || pair.size() != 2 || !pair[0].is_string() || !pair[1].is_string())
      return fail(Errc::kDecode, "OVSDB map entry is not a pair of strings: " + pair.dump());
    out[pair[0].get<std::string>()] = pair[1].get<std::string>();
  }
  return out;
}

Result<std::string> uuidOf(const json& value) {
  if (value.is_array() && value.size() == 2 && value[0] == "uuid" && value[1].is_string())
    return value[1].get<std::string>();
  return fail(Errc::kDecode, "OVSDB value is not a uuid: " + value.dump());
}

Result<std::optional<long long>> optionalInt(const json& value) {
  PLUMB_ASSIGN(auto atoms, setAtoms(value));
  if (atoms.empty()) return std::optional<long long>();
  if (atoms.size() > 1 || !atoms[0].is_number_integer())
    return fail(Errc::kDecode, "OVSDB value is not an optional integer: " + value.dump());
  return std::optional<long long>(atoms[0].get<long long>());
}

Result<std::vector<json>> transact(Connection& conn, const std::string& db, const json& ops,
                                   std::chrono::milliseconds timeout, size_t* failed_op) {
  json params = json::array({db});
  for (const auto& op : ops) params.push_back(op);
  PLUMB_ASSIGN(auto reply, conn.call("transact", params, timeout));
  if (!reply.is_array())
    return fail(Errc::kDecode, "OVSDB at " + conn.where() + " answered transact with a non-list");
  for (size_t i = 0; i < reply.size(); ++i) {
    const json& r = reply[i];
    if (!r.is_object()) continue;  // null: not run, after an earlier failure
    auto err = r.find("error");
    if (err == r.end() || err->is_null()) continue;
    std::string text = err->is_string() ? err->get<std::string>() : err->dump();
    auto details = r.find("details");
    if (details != r.end() && details->is_string())
      text += " (" + details->get<std::string>() + ")";
    std::string which = i < ops.size()
                            ? "operation " + std::to_string(i + 1) + " (" +
                                  json_read::valueOr(ops[i], "op", std::string("?")) + ")"
                            : std::string("the commit");
    if (failed_op) *failed_op = i;
    // "timed out" is what a "wait" operation gives when its condition did not come true.
    Errc code = text.rfind("timed out", 0) == 0 ? Errc::kTryAgain : Errc::kInvalid;
    return fail(code, "OVSDB transaction failed at " + which + ": " + text);
  }
  if (reply.size() < ops.size())
    return fail(Errc::kDecode, "OVSDB answered a transaction of " + std::to_string(ops.size()) +
                                   " operations with " + std::to_string(reply.size()) + " results");
  std::vector<json> out(reply.begin(), reply.begin() + static_cast<long>(ops.size()));
  return out;
}

}  // namespace plumb::ovs
