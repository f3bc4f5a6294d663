// What plumb does in Open vSwitch's database (the Open_vSwitch schema): a port with one
// interface on a bridge, found again by the external_ids plumb writes on both, and removed.
// Each change is one transaction, as ovs-vsctl makes it: the bridge's port set is mutated
// ("insert", "delete"), never rewritten, so the cost does not grow with the bridge's ports.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "ovs/ovsdb.h"

namespace plumb::ovs {

inline constexpr const char* kDefaultSocket = "/var/run/openvswitch/db.sock";
inline constexpr const char* kDatabase = "Open_vSwitch";

struct PortSpec {
  std::string bridge;
  std::string name;  // the port and its one interface (the veth's host end)
  std::optional<int> tag;
  std::vector<int> trunks;  // VLAN ids, each once
  std::optional<int> ofport_request;
  std::string interface_type;  // "" is a system interface, as ovs-vsctl's default
  std::map<std::string, std::string> external_ids;  // on the Port and the Interface
};

struct PortRow {
  std::string uuid;
  std::string name;
  std::optional<int> tag;
  std::vector<int> trunks;
  std::map<std::string, std::string> external_ids;
};

struct InterfaceRow {
  std::string name;
  std::optional<long long> ofport;  // -1: the switch could not add it
  std::string error;
  std::string type;
};

// Readers of what ovsdb-server answers (the OVSDB fuzzer's too): a select's rows (an
// array), a Port row and an Interface row with the columns selected; a malformed answer is
// Errc::kDecode, never an exception.
Result<json> rowsOf(const json& select_result);
Result<PortRow> portRow(const json& row);
Result<InterfaceRow> interfaceRow(const json& row);

class Switch {
 public:
  // Connects to ovsdb-server ("unix:PATH" or PATH). timeout bounds every call, the wait for
  // ovs-vswitchd included.
  static Result<Switch> open(const std::string& where, std::chrono::milliseconds timeout);

  // The transactions, as sent (the unit tests compare them with golden JSON).
  // Inserts Interface and Port, mutates the bridge's ports, bumps next_cfg and reads it back;
  // the first operation makes the whole fail when the bridge does not exist.
  static json addPortOps(const PortSpec& spec);
  // Waits (server side, up to wait_ms) until ovs-vswitchd has applied next_cfg, then reads
  // the interface's ofport and error.
  static json appliedOps(long long next_cfg, const std::string& iface_uuid, long long wait_ms);
  static json removePortsOps(const std::vector<std::string>& port_uuids);

  // Adds the port and waits until ovs-vswitchd has applied it; returns its ofport. A port the
  // switch refused (ofport -1 or an error), or not applied in time, is removed again and the
  // error says why.
  Result<long long> addPort(const PortSpec& spec);
  // Removes ports by uuid from whichever bridge holds them (absent ones are no error).
  Status removePorts(const std::vector<std::string>& port_uuids);
  // Ports whose external_ids include every pair given.
  Result<std::vector<PortRow>> findPorts(const std::map<std::string, std::string>& external_ids);
  // The bridge holding a port, or "" when none does.
  Result<std::string> bridgeOf(const std::string& port_uuid);
  Result<std::optional<InterfaceRow>> findInterface(const std::string& name);
  Result<bool> bridgeExists(const std::string& name);
  // A bridge with its internal port, as ovs-vsctl add-br makes it (pipework's ovs* bridges),
  // external_ids on the Bridge row; waits until ovs-vswitchd has applied it.
  Status createBridge(const std::string& name, const std::string& datapath_type,
                      const std::map<std::string, std::string>& external_ids);
  // Removes a bridge (its ports go with it); none by that name is success.
  Status deleteBridge(const std::string& name);

  const std::string& where() const { return conn_.where(); }
  std::chrono::milliseconds timeout() const { return timeout_; }

 private:
  Switch(Connection c, std::chrono::milliseconds t) : conn_(std::move(c)), timeout_(t) {}
  Result<std::vector<json>> run(const json& ops, size_t* failed_op = nullptr);
  // One "select": the rows of table matching where, with columns.
  Result<json> select(const char* table, json where, json columns);
  // After a change whose last result (select_next_cfg) read next_cfg back: waits until
  // ovs-vswitchd has applied it and returns the Interface iface_uuid's rows (ofport, error).
  // Not applied in time is Errc::kTryAgain, naming what (as "port X on BR").
  Result<json> applied(const json& select_next_cfg, const std::string& iface_uuid,
                       const std::string& what);

  Connection conn_;
  std::chrono::milliseconds timeout_;
};

}  // namespace plumb::ovs
