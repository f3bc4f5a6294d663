// Interface addresses, IPv4 and IPv6, several per link.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <optional>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/socket.h"

namespace plumb::netlink {

struct AddrInfo {
  int index = 0;
  IpPrefix prefix;
  uint32_t flags = 0;  // IFA_F_*
  uint8_t scope = 0;
};

struct AddrOptions {
  // No duplicate address detection (IFA_F_NODAD): the address is usable at once; plumb's
  // allocator already guarantees uniqueness on the network.
  bool nodad = true;
  bool replace = false;
};

Status addAddress(NlSocket& s, int index, const IpPrefix& prefix, const AddrOptions& opts = {});
Status deleteAddress(NlSocket& s, int index, const IpPrefix& prefix);
// family: AF_UNSPEC for both; index 0: every link.
Result<std::vector<AddrInfo>> listAddresses(NlSocket& s, int family, int index);
// One RTM_NEWADDR message; nothing for any other, or one without an address.
std::optional<AddrInfo> parseAddr(const nlmsghdr* nlh);

void buildAddAddress(Message& m, int index, const IpPrefix& prefix, const AddrOptions& opts);

}  // namespace plumb::netlink
