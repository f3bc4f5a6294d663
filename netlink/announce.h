// Tells the segment about a new address at once instead of waiting for carrier or DAD:
// a gratuitous ARP for IPv4, an unsolicited neighbour advertisement for IPv6.
#pragma once

#include "base/ip.h"
#include "base/result.h"
#include "netlink/netns.h"

namespace plumb::netlink {

// The link must be up; ns is where it lives.
Status announceAddress(const Netns& ns, int ifindex, const MacAddr& mac, const IpAddr& addr);

}  // namespace plumb::netlink
