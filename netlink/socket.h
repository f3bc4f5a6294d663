// A NETLINK_ROUTE socket: every change is acked (NLM_F_ACK), every reply's sequence and port id
// are checked, the kernel's extended ack message reaches the error, interrupted dumps are
// retried, and every receive has a timeout.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <libmnl/libmnl.h>
#include <linux/netlink.h>

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "netlink/message.h"
#include "netlink/netns.h"

namespace plumb::netlink {

using ReplyFn = std::function<Status(const nlmsghdr*)>;

// The text the kernel attached to an error reply (NLMSGERR_ATTR_MSG), if any; read only as
// far as the message goes.
std::string extAckMessage(const nlmsghdr* nlh);

class NlSocket {
 public:
  // A socket in the caller's namespace (NETLINK_ROUTE, or NETLINK_NETFILTER for nftables).
  static Result<NlSocket> open(int protocol = NETLINK_ROUTE);
  // A socket created inside ns; all its requests act there, whatever thread sends them.
  static Result<NlSocket> openIn(const Netns& ns);

  NlSocket(NlSocket&& o) noexcept;
  NlSocket& operator=(NlSocket&& o) noexcept;
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;
  ~NlSocket();

  // A socket in the caller's namespace that receives the kernel's notifications for groups
  // (RTMGRP_LINK, ...), read with next().
  static Result<NlSocket> subscribe(unsigned groups);
  // The same for the notifications of namespace ns.
  static Result<NlSocket> subscribeIn(const Netns& ns, unsigned groups);
  // Blocks until notifications arrive and hands each to on_msg (kTryAgain on the receive
  // timeout, so a caller can loop).
  Status next(const ReplyFn& on_msg);
  // For poll(2) alongside other descriptors.
  int fd() const;

  // Sends m with NLM_F_ACK and waits for the ack; replies before it (RTM_GET*) go to on_reply.
  Status request(Message& m, const ReplyFn& on_reply = {});
  // Sends m as a dump and hands each entry to on_entry; restarts when the kernel says the dump
  // was interrupted (NLM_F_DUMP_INTR), up to a few times. on_reset runs before each restart.
  Status dump(Message& m, const ReplyFn& on_entry, const std::function<void()>& on_reset = {});

 private:
  explicit NlSocket(mnl_socket* nl);
  static Result<NlSocket> setUp(mnl_socket* nl, unsigned groups = 0);
  Status send(Message& m);
  // Reads replies to seq until the ack or NLMSG_DONE. *interrupted set if any had DUMP_INTR.
  Status receive(uint32_t seq, const ReplyFn& on_reply, bool* interrupted);

  mnl_socket* nl_ = nullptr;
  uint32_t portid_ = 0;
  uint32_t seq_ = 0;
  std::vector<char> buf_;
};

}  // namespace plumb::netlink
