// What the kernel answers on a NETLINK_ROUTE socket, as plumb reads it: a buffer of messages
// walked as the socket walks a receive, each given to every reader (links, VFs, addresses,
// routes, rules, an error's extended ack), and to the nftables rule reader (NETLINK_NETFILTER,
// read the same way). The kernel is trusted to frame its messages; plumb
// must still never read past one.
#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <cstdint>
#include <cstring>

#include "netlink/addr.h"
#include "netlink/firewall.h"
#include "netlink/link.h"
#include "netlink/route.h"
#include "netlink/rule.h"
#include "netlink/socket.h"
#include "netlink/vf.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A receive buffer is aligned (new[] is); it holds exactly the input, so any read past the
  // end is caught.
  auto* bytes = new uint8_t[size ? size : 1];
  std::memcpy(bytes, data, size);
  int len = static_cast<int>(size);
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(bytes); netlink::messageOk(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    (void)netlink::parseLink(nlh);
    (void)netlink::parseVfs(nlh);
    (void)netlink::parseAddr(nlh);
    (void)netlink::parseRoute(nlh);
    (void)netlink::parseRule(nlh);
    (void)netlink::readRule(nlh);  // an nftables rule dump (NETLINK_NETFILTER)
    if (nlh->nlmsg_type == NLMSG_ERROR) (void)netlink::extAckMessage(nlh);
  }
  delete[] bytes;
  return 0;
}
