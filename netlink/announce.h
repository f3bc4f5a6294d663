// Tells the segment about a new address at once instead of waiting for carrier or DAD:
// a gratuitous ARP for IPv4, an unsolicited neighbour advertisement for IPv6.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/netns.h"

namespace plumb::netlink {

// The link must be up; ns is where it lives.
Status announceAddress(const Netns& ns, int ifindex, const MacAddr& mac, const IpAddr& addr);

// The same for a veth end whose peer is the bridge port port_index in the caller's netns, once
// that port forwards and the veth end sends. The kernel enables a port, and starts a link's
// queue, in the background after the veth gets carrier; the bridge drops what comes before
// the first, the link what comes before the second. So a child process (forked: the caller
// must have no other threads) waits for both, up to a few seconds, and announces; the caller
// returns at once. The child's output goes nowhere. It opens its own sockets, and closes
// them (a packet socket's release waits for an RCU grace period), instead of the caller.
Status announceWhenForwarding(int port_index, const Netns& ns, int ifindex, const MacAddr& mac,
                              const std::vector<IpAddr>& addrs);

}  // namespace plumb::netlink
