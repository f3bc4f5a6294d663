#include "netlink/announce.h"

#include <arpa/inet.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <net/if_arp.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <linux/if.h>
#include <linux/rtnetlink.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "base/process.h"
#include "netlink/link.h"
#include "netlink/socket.h"

namespace plumb::netlink {
namespace {

// The sockets announcements go out on: {domain, type, protocol}.
struct SocketKind {
  int domain, type, protocol;
};
const SocketKind kArp{AF_PACKET, SOCK_DGRAM, htons(ETH_P_ARP)};
const SocketKind kNa{AF_INET6, SOCK_RAW, IPPROTO_ICMPV6};

Result<UniqueFd> socketHere(const SocketKind& k) {
  UniqueFd fd(::socket(k.domain, k.type | SOCK_CLOEXEC, k.protocol));
  if (!fd.valid()) return failErrno(errno, "failed to open a socket to announce on");
  return fd;
}

Result<UniqueFd> socketThere(const Netns& ns, const SocketKind& k) {
  return socketIn(ns, k.domain, k.type, k.protocol);
}

Status sendGratuitousArp(const UniqueFd& fd, int ifindex, const MacAddr& mac, const IpAddr& addr) {
  struct __attribute__((packed)) {
    arphdr hdr;
    uint8_t sha[6];
    uint8_t spa[4];
    uint8_t tha[6];
    uint8_t tpa[4];
  } pkt{};
  pkt.hdr.ar_hrd = htons(ARPHRD_ETHER);
  pkt.hdr.ar_pro = htons(ETH_P_IP);
  pkt.hdr.ar_hln = 6;
  pkt.hdr.ar_pln = 4;
  pkt.hdr.ar_op = htons(ARPOP_REQUEST);
  std::memcpy(pkt.sha, mac.data(), 6);
  std::memcpy(pkt.spa, addr.data(), 4);
  std::memcpy(pkt.tpa, addr.data(), 4);
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  std::memset(to.sll_addr, 0xff, 6);
  if (::sendto(fd.get(), &pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    return failErrno(errno, "failed to send gratuitous ARP for " + addr.str());
  }
  return {};
}

Status gratuitousArp(const Netns& ns, int ifindex, const MacAddr& mac, const IpAddr& addr) {
  PLUMB_ASSIGN(auto fd, socketThere(ns, kArp));
  return sendGratuitousArp(fd, ifindex, mac, addr);
}

Status sendUnsolicitedNa(const UniqueFd& fd, int ifindex, const MacAddr& mac, const IpAddr& addr) {
  int hops = 255;
  if (::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof(hops)) != 0 ||
      ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_MULTICAST_IF, &ifindex, sizeof(ifindex)) != 0) {
    return failErrno(errno, "failed to prepare neighbour advertisement for " + addr.str());
  }
  sockaddr_in6 src{};
  src.sin6_family = AF_INET6;
  std::memcpy(&src.sin6_addr, addr.data(), 16);
  if (addr.isLinkLocal()) src.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
    return failErrno(errno, "failed to bind neighbour advertisement to " + addr.str());
  }
  struct __attribute__((packed)) {
    nd_neighbor_advert na;
    nd_opt_hdr opt;
    uint8_t lladdr[6];
  } pkt{};
  pkt.na.nd_na_type = ND_NEIGHBOR_ADVERT;
  pkt.na.nd_na_flags_reserved = ND_NA_FLAG_OVERRIDE;
  std::memcpy(&pkt.na.nd_na_target, addr.data(), 16);
  pkt.opt.nd_opt_type = ND_OPT_TARGET_LINKADDR;
  pkt.opt.nd_opt_len = 1;
  std::memcpy(pkt.lladdr, mac.data(), 6);
  sockaddr_in6 to{};
  to.sin6_family = AF_INET6;
  inet_pton(AF_INET6, "ff02::1", &to.sin6_addr);
  to.sin6_scope_id = static_cast<uint32_t>(ifindex);
  if (::sendto(fd.get(), &pkt, sizeof(pkt), 0, reinterpret_cast<sockaddr*>(&to), sizeof(to)) < 0) {
    return failErrno(errno, "failed to send neighbour advertisement for " + addr.str());
  }
  return {};
}

Status unsolicitedNa(const Netns& ns, int ifindex, const MacAddr& mac, const IpAddr& addr) {
  PLUMB_ASSIGN(auto fd, socketThere(ns, kNa));
  return sendUnsolicitedNa(fd, ifindex, mac, addr);
}

// Whether a link's operstate is up. Read under the RTNL lock, which linkwatch holds while it
// sets the operstate, enables a bridge port and starts the link's queue, so an "up" read here
// comes after all three.
bool linkUp(NlSocket& query, int index) {
  auto link = getLink(query, index);
  return link.ok() && link->oper_state == IF_OPER_UP;
}

// Waits until the link index (in the namespace of events and query) is up. linkwatch sends the
// notification of its operstate going up only after that link's bridge port is enabled and its
// queue started. One look first, in case that happened before the subscription; then the
// notifications alone, asking the kernel nothing more (each request would queue behind the
// RTNL lock).
bool waitUp(NlSocket& events, NlSocket& query, int index,
            std::chrono::steady_clock::time_point deadline) {
  bool up = linkUp(query, index);
  while (!up) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    auto st = events.next([&](const nlmsghdr* nlh) -> Status {
      auto link = parseLink(nlh);
      if (link.ok() && link->index == index && link->oper_state == IF_OPER_UP) up = true;
      return {};
    });
    // Notifications were lost (a full receive buffer), or none came for a while: look again.
    if (!st.ok()) up = linkUp(query, index);
  }
  return true;
}

// The child's part of announceWhenForwarding: it opens what it needs (in the caller's netns
// for the port, then in ns for the rest), waits, sends and returns whether all went out.
bool announceOnceForwarding(int port_index, const Netns& ns, int ifindex, const MacAddr& mac,
                            const std::vector<IpAddr>& addrs) {
  auto port_events = NlSocket::subscribe(RTMGRP_LINK);
  auto port_query = NlSocket::open();
  if (!port_events.ok() || !port_query.ok() || !enterForGood(ns)) return false;
  auto iface_events = NlSocket::subscribe(RTMGRP_LINK);
  auto iface_query = NlSocket::open();
  if (!iface_events.ok() || !iface_query.ok()) return false;
  UniqueFd arp, na;
  for (const auto& a : addrs) {
    auto& fd = a.isV4() ? arp : na;
    if (fd.valid()) continue;
    auto opened = socketHere(a.isV4() ? kArp : kNa);
    if (!opened.ok()) return false;
    fd = std::move(*opened);
  }
  // Both veth ends get carrier together and linkwatch handles them one after the other: the
  // bridge port (host end) is enabled with the first, and the container end's queue, until
  // which whatever is sent on it is dropped, is started with the second. So the child waits
  // for both.
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  if (!waitUp(*port_events, *port_query, port_index, deadline) ||
      !waitUp(*iface_events, *iface_query, ifindex, deadline)) {
    return false;
  }
  bool sent = true;
  for (const auto& a : addrs) {
    auto st =
        a.isV4() ? sendGratuitousArp(arp, ifindex, mac, a) : sendUnsolicitedNa(na, ifindex, mac, a);
    if (!st.ok()) sent = false;
  }
  return sent;
}

}  // namespace

Status announceAddress(const Netns& ns, int ifindex, const MacAddr& mac, const IpAddr& addr) {
  return addr.isV4() ? gratuitousArp(ns, ifindex, mac, addr)
                     : unsolicitedNa(ns, ifindex, mac, addr);
}

Status announceWhenForwarding(int port_index, const Netns& ns, int ifindex, const MacAddr& mac,
                              const std::vector<IpAddr>& addrs) {
  if (addrs.empty()) return {};
  UniqueFd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  if (!null.valid()) return failErrno(errno, "failed to open /dev/null");
  int handshake[2];
  if (::pipe2(handshake, O_CLOEXEC) != 0) return failErrno(errno, "failed to announce");
  UniqueFd ready_r(handshake[0]), ready_w(handshake[1]);
  pid_t pid = ::fork();
  if (pid < 0) return failErrno(errno, "failed to start announcing " + addrs[0].str());
  if (pid > 0) {
    // Back once the child has let go of stdout: a CNI runtime reads it to its end, which
    // must come with this process's exit, not the child's.
    ready_w.reset();
    char c;
    while (::read(ready_r.get(), &c, 1) < 0 && errno == EINTR) {
    }
    disown(pid);  // a plugin process exits first (init reaps it); a long-lived one reaps it
    return {};
  }
  ::setsid();
  for (int fd = 0; fd < 3; ++fd) ::dup2(null.get(), fd);
  ready_w.reset();
  ::_exit(announceOnceForwarding(port_index, ns, ifindex, mac, addrs) ? 0 : 1);
}

}  // namespace plumb::netlink
