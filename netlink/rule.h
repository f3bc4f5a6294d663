// Policy routing rules (ip rule): RTM_NEWRULE / RTM_DELRULE.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/socket.h"

namespace plumb::netlink {

struct Rule {
  int family = 0;  // AF_INET or AF_INET6
  std::optional<IpPrefix> from;
  std::optional<IpPrefix> to;
  std::string iif;
  std::string oif;
  std::optional<uint32_t> fwmark;
  std::optional<uint32_t> priority;
  uint32_t table = 0;  // RT_TABLE_MAIN and friends, or any table id
};

Status addRule(NlSocket& s, const Rule& r);
Status deleteRule(NlSocket& s, const Rule& r);  // kNotFound when no such rule
Result<std::vector<Rule>> listRules(NlSocket& s, int family);
// One RTM_NEWRULE message; nothing for any other message.
std::optional<Rule> parseRule(const nlmsghdr* nlh);
std::string describe(const Rule& r);

}  // namespace plumb::netlink
