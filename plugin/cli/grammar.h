// pipework's command grammar, parsed into typed commands. CLI11 serves plumb's own
// subcommands; pipework's forms are positional with tokens of their own shape
// (ip/len@gateway, mac@vlan, mac:<nic mac>, dhcp:<options>), so they are parsed here.
//
//   <hostif> [-i ctif] [-l localif] [-a 4|6] [-m mode] <guest> <ip>/<len>[@<gw>] [<mac>][@<vlan>]
//   <hostif> [-i ctif] [-l localif] [-f] <guest> dhcp[:<client options>] [<mac>][@<vlan>]
//   mac:<host NIC mac> ...        --direct-phys <hostif> <guest> ...
//   --vf <PF> <guest> <ip>/<len>[@<gw>] [<mac>][@<vlan>]      (a free SR-IOV VF of PF)
//   route|rule|tc <guest> <args...>          --wait [-i ctif]
//   del <guest> [-i ctif]
#pragma once

#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "plugin/core/in_guest.h"

namespace plumb::cli {

struct AddressSpec {
  enum class Kind { kStatic, kDhcp, kNone };  // kNone: pipework's 0/0
  Kind kind = Kind::kNone;
  std::optional<IpPrefix> address;
  std::optional<IpAddr> gateway;
  std::string dhcp_client;   // dhcp (first found), udhcpc, dhclient, dhcpcd
  std::string dhcp_options;  // after the ':'
};

struct AttachCommand {
  std::string host_if;              // empty when chosen by MAC
  std::optional<MacAddr> host_mac;  // mac:<host NIC mac>
  bool direct_phys = false;         // move the NIC itself into the guest
  bool force = false;  // --direct-phys of a NIC carrying the host's addresses or routes
  bool vf = false;     // --vf: host_if is an SR-IOV PF; a VF of it goes in
  std::string container_if = "eth1";
  std::string local_if;           // -l: the host-side name
  int family = 0;                 // -a: 4, 6, or 0 (from the address)
  std::string macvlan_mode;       // -m
  bool keep_dhcp_client = false;  // -f
  std::string guest;
  AddressSpec address;
  std::optional<MacAddr> mac;
  std::string mac_name;  // U:<name>: the MAC derived from it
  std::optional<int> vlan;
};

struct PassCommand {  // route, rule, tc: run inside the guest's netns
  std::string what;
  std::string guest;
  std::vector<std::string> args;
};

struct WaitCommand {
  std::string container_if = "eth1";
};

struct DelCommand {
  std::string guest;
  std::string container_if = "eth1";
};

using Command = std::variant<AttachCommand, PassCommand, WaitCommand, DelCommand>;

// `plumb route <guest> ...` and `plumb rule <guest> ...`: what core::changeRoute and
// core::changeRule carry out.
using RouteArgs = core::RouteChange;
Result<RouteArgs> parseRouteArgs(const std::vector<std::string>& args);
using RuleArgs = core::RuleChange;
Result<RuleArgs> parseRuleArgs(const std::vector<std::string>& args);

// Parses argv without the program name. Errors are one line, in pipework's spirit ("did you
// mean 198.18.0.5/24?").
Result<Command> parseCommand(const std::vector<std::string>& args);

// Whether args are one of pipework's forms (rather than a plumb subcommand such as `ls`).
bool isPipeworkForm(const std::vector<std::string>& args);

}  // namespace plumb::cli
