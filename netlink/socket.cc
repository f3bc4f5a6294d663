#include "netlink/socket.h"

#include <linux/netlink.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cstring>
#include <ctime>
#include <string>

namespace plumb::netlink {
namespace {

constexpr int kReceiveTimeoutSeconds = 5;
constexpr int kDumpAttempts = 5;
constexpr size_t kNotificationBuffer = 32768;

}  // namespace

// The text the kernel attached to an error (NLMSGERR_ATTR_MSG), if any.
std::string extAckMessage(const nlmsghdr* nlh) {
  if (!(nlh->nlmsg_flags & NLM_F_ACK_TLVS)) return {};
  const auto* err = familyHeader<nlmsgerr>(nlh);
  if (!err) return {};
  size_t offset = sizeof(*err);
  // With NETLINK_CAP_ACK the original request is cut to its header.
  if (!(nlh->nlmsg_flags & NLM_F_CAPPED)) {
    if (err->msg.nlmsg_len < sizeof(nlmsghdr)) return {};
    offset += err->msg.nlmsg_len - sizeof(nlmsghdr);
  }
  size_t payload = mnl_nlmsg_get_payload_len(nlh);
  if (offset >= payload) return {};
  const char* base = static_cast<const char*>(mnl_nlmsg_get_payload(nlh));
  std::string out;
  forEachAttr(base + offset, base + payload, [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) == NLMSGERR_ATTR_MSG &&
        mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) {
      out = mnl_attr_get_str(attr);
    }
  });
  return out;
}

// The receive buffer grows to what replies need (receive peeks at each one's size first): a
// plugin process opens a few sockets per call, and 32 KB zero-filled each was eight page
// faults per socket for replies of a few hundred bytes.
NlSocket::NlSocket(mnl_socket* nl) : nl_(nl) {}

NlSocket::NlSocket(NlSocket&& o) noexcept
    : nl_(std::exchange(o.nl_, nullptr)),
      portid_(o.portid_),
      seq_(o.seq_),
      buf_(std::move(o.buf_)) {}

NlSocket& NlSocket::operator=(NlSocket&& o) noexcept {
  if (this != &o) {
    if (nl_) mnl_socket_close(nl_);
    nl_ = std::exchange(o.nl_, nullptr);
    portid_ = o.portid_;
    seq_ = o.seq_;
    buf_ = std::move(o.buf_);
  }
  return *this;
}

NlSocket::~NlSocket() {
  if (nl_) mnl_socket_close(nl_);
}

Result<NlSocket> NlSocket::setUp(mnl_socket* nl, unsigned groups) {
  NlSocket s(nl);
  if (mnl_socket_bind(nl, groups, MNL_SOCKET_AUTOPID) < 0) {
    return failErrno(errno, "failed to bind a netlink socket");
  }
  int one = 1;
  // Best effort: older kernels lack these, and the answers are still correct without them.
  (void)mnl_socket_setsockopt(nl, NETLINK_EXT_ACK, &one, sizeof(one));
  (void)mnl_socket_setsockopt(nl, NETLINK_CAP_ACK, &one, sizeof(one));
  (void)mnl_socket_setsockopt(nl, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
  timeval tv{kReceiveTimeoutSeconds, 0};
  if (::setsockopt(mnl_socket_get_fd(nl), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0) {
    return failErrno(errno, "failed to set a netlink receive timeout");
  }
  s.portid_ = mnl_socket_get_portid(nl);
  s.seq_ = static_cast<uint32_t>(::time(nullptr));
  return s;
}

Result<NlSocket> NlSocket::open(int protocol) {
  mnl_socket* nl = mnl_socket_open2(protocol, SOCK_CLOEXEC);
  if (!nl) return failErrno(errno, "failed to open a netlink socket");
  return setUp(nl);
}

Result<NlSocket> NlSocket::subscribe(unsigned groups) {
  mnl_socket* nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (!nl) return failErrno(errno, "failed to open a netlink socket");
  return setUp(nl, groups);
}

Status NlSocket::next(const ReplyFn& on_msg) {
  // Notifications are read without a peek: room for the largest the kernel sends in one go.
  if (buf_.size() < kNotificationBuffer) buf_.resize(kNotificationBuffer);
  ssize_t n = ::recv(mnl_socket_get_fd(nl_), buf_.data(), buf_.size(), 0);
  if (n < 0) {
    if (errno == EAGAIN || errno == EINTR) return fail(Errc::kTryAgain, "no notification yet");
    // ENOBUFS: notifications were dropped; the caller re-reads the state it cares about.
    if (errno == ENOBUFS) return fail(Errc::kTryAgain, "notifications overran");
    return failErrno(errno, "netlink receive");
  }
  int len = static_cast<int>(n);
  for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data()); messageOk(nlh, len);
       nlh = mnl_nlmsg_next(nlh, &len)) {
    PLUMB_TRY(on_msg(nlh));
  }
  return {};
}

int NlSocket::fd() const { return mnl_socket_get_fd(nl_); }

Result<NlSocket> NlSocket::openIn(const Netns& ns) { return subscribeIn(ns, 0); }

Result<NlSocket> NlSocket::subscribeIn(const Netns& ns, unsigned groups) {
  auto fd = socketIn(ns, AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
  if (!fd.ok()) return std::move(fd).error();
  mnl_socket* nl = mnl_socket_fdopen(fd->get());
  if (!nl) return failErrno(errno, "failed to open a netlink socket in netns " + ns.path());
  fd->release();
  return setUp(nl, groups);
}

Status NlSocket::send(Message& m) {
  m.hdr()->nlmsg_seq = ++seq_;
  m.hdr()->nlmsg_pid = 0;
  if (mnl_socket_sendto(nl_, m.hdr(), m.size()) < 0) return failErrno(errno, "netlink send");
  return {};
}

Status NlSocket::receive(uint32_t seq, const ReplyFn& on_reply, bool* interrupted) {
  int fd = mnl_socket_get_fd(nl_);
  Status failure;
  bool have_failure = false;
  for (;;) {
    // Peek the size first so a large dump entry never truncates (as iproute2's rtnl_recvmsg).
    ssize_t want = ::recv(fd, nullptr, 0, MSG_PEEK | MSG_TRUNC);
    if (want < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) return fail(Errc::kTryAgain, "netlink reply timed out");
      return failErrno(errno, "netlink receive");
    }
    if (static_cast<size_t>(want) > buf_.size()) buf_.resize(static_cast<size_t>(want));
    ssize_t n = ::recv(fd, buf_.data(), buf_.size(), 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failErrno(errno, "netlink receive");
    }
    int len = static_cast<int>(n);
    for (auto* nlh = reinterpret_cast<const nlmsghdr*>(buf_.data()); messageOk(nlh, len);
         nlh = mnl_nlmsg_next(nlh, &len)) {
      // Replies to an earlier request that timed out, or stray messages: not ours.
      if (nlh->nlmsg_seq != seq || (nlh->nlmsg_pid != 0 && nlh->nlmsg_pid != portid_)) continue;
      if (nlh->nlmsg_flags & NLM_F_DUMP_INTR) *interrupted = true;
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        const auto* err = familyHeader<nlmsgerr>(nlh);
        if (!err) return fail(Errc::kDecode, "netlink error message too short");
        if (err->error == 0) return have_failure ? failure : Status{};
        int e = -err->error;
        std::string msg = std::strerror(e);
        std::string ext = extAckMessage(nlh);
        if (!ext.empty()) msg += " (" + ext + ")";
        return Error{errcFromErrno(e), e, msg};
      }
      if (nlh->nlmsg_type == NLMSG_DONE) {
        // A dump may end with an error code in NLMSG_DONE's payload.
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof(int)) {
          int code = *static_cast<const int*>(mnl_nlmsg_get_payload(nlh));
          if (code < 0) return failErrno(-code, "netlink dump");
        }
        return have_failure ? failure : Status{};
      }
      if (nlh->nlmsg_type == NLMSG_NOOP || nlh->nlmsg_type == NLMSG_OVERRUN) continue;
      if (on_reply && !have_failure) {
        // Keep reading to the end of this reply so the socket stays in step.
        auto st = on_reply(nlh);
        if (!st.ok()) {
          failure = std::move(st);
          have_failure = true;
        }
      }
    }
  }
}

Status NlSocket::request(Message& m, const ReplyFn& on_reply) {
  m.hdr()->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
  PLUMB_TRY(send(m));
  bool interrupted = false;
  return receive(seq_, on_reply, &interrupted);
}

Status NlSocket::dump(Message& m, const ReplyFn& on_entry, const std::function<void()>& on_reset) {
  m.hdr()->nlmsg_flags |= NLM_F_REQUEST | NLM_F_DUMP;
  for (int attempt = 0; attempt < kDumpAttempts; ++attempt) {
    if (attempt > 0 && on_reset) on_reset();
    PLUMB_TRY(send(m));
    bool interrupted = false;
    PLUMB_TRY(receive(seq_, on_entry, &interrupted));
    if (!interrupted) return {};
  }
  return fail(Errc::kTryAgain, "netlink dump kept being interrupted by concurrent changes");
}

}  // namespace plumb::netlink
