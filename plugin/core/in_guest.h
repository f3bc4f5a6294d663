// What the command line does inside a guest's netns besides attaching: routes and rules
// through netlink, tc as a program run there (an argv, never a shell string), and waiting for
// an interface's carrier. Re-running a command is a no-op, as pipework's users expect.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"

namespace plumb::core {

// `route <guest> add|del|replace <prefix>|default [via <gw>] [dev <if>] [metric <n>]
//  [table <n>]`
struct RouteChange {
  std::string action;  // add, del, replace
  IpPrefix dst;
  std::optional<IpAddr> via;
  std::string dev;
  int metric = 0;
  uint32_t table = 254;  // main
};

// `rule <guest> [-4|-6] add|del [from <prefix>] [to <prefix>] [iif <if>] [oif <if>]
//  [fwmark <n>] [priority <n>] table <n>`
struct RuleChange {
  std::string action;  // add, del
  int family = 4;
  std::optional<IpPrefix> from, to;
  std::string iif, oif;
  std::optional<uint32_t> fwmark, priority;
  uint32_t table = 0;
};

// Each returns the route or rule as `ip` would print it. Adding what is there already is
// success; deleting what is not there is Errc::kNotFound.
Result<std::string> changeRoute(const std::string& netns, const RouteChange& change);
Result<std::string> changeRule(const std::string& netns, const RuleChange& change);
// Runs `tc args...` in the netns; returns its exit status.
Result<int> runTc(const std::string& netns, const std::vector<std::string>& args);
// Blocks until the calling process's interface ifname exists with carrier, woken by link
// notifications (pipework's --wait, run inside a container).
Status waitForCarrier(const std::string& ifname);

}  // namespace plumb::core
