// Routes: gateway, scope, table, MTU, metric.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <linux/rtnetlink.h>

#include <optional>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/socket.h"

namespace plumb::netlink {

struct Route {
  IpPrefix dst;
  std::optional<IpAddr> gateway;
  std::optional<IpAddr> src;
  int oif = 0;
  uint8_t scope = RT_SCOPE_UNIVERSE;
  uint32_t table = RT_TABLE_MAIN;
  uint32_t mtu = 0;
  uint32_t metric = 0;
  uint8_t protocol = RTPROT_BOOT;
  uint8_t type = RTN_UNICAST;
  bool onlink = false;  // the gateway is on the link even outside the link's subnets
};

Status addRoute(NlSocket& s, const Route& r, bool replace = false);
Status deleteRoute(NlSocket& s, const Route& r);
Result<std::vector<Route>> listRoutes(NlSocket& s, int family, uint32_t table = RT_TABLE_MAIN);
// One RTM_NEWROUTE message, any table; nothing for any other message.
std::optional<Route> parseRoute(const nlmsghdr* nlh);
std::string describe(const Route& r);

void buildRoute(Message& m, const Route& r);

}  // namespace plumb::netlink
