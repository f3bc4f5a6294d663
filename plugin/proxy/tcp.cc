#include "plugin/proxy/tcp.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "plugin/proxy/backends.h"
#include "plugin/proxy/service.h"
#include "plugin/proxy/worker.h"

namespace plumb::proxy {
namespace {

// EPOLLPRI: urgent data (MSG_OOB) arrived.
constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;

// What the listener gives accepted sockets (Proxy::add), for the backend's socket.
void setSocketOptions(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  (void)::setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
}

// Whether a connect's error says the backend is down (as opposed to this host running out of
// ports, buffers or descriptors, which says nothing about the backend).
bool backendAtFault(int err) {
  switch (err) {
    case ECONNREFUSED:
    case ETIMEDOUT:
    case EHOSTUNREACH:
    case ENETUNREACH:
    case EHOSTDOWN:
    case ECONNRESET:
      return true;
    default:
      return false;
  }
}

}  // namespace

// With reset, SO_LINGER 0 sends RST: the peer learns at once that the connection is gone.
void TcpConn::closeSide(Side& side, bool reset) {
  if (reset && side.fd.valid()) {
    linger l{1, 0};
    (void)::setsockopt(side.fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  }
  worker_.loop().close(side.fd);
}

TcpConn::TcpConn(Worker& worker, Service& service, UniqueFd client)
    : worker_(worker), service_(service) {
  client_.conn = this;
  client_.fd = std::move(client);
  backend_side_.conn = this;
  last_ms_ = worker_.loop().nowMs();
}

TcpConn::~TcpConn() = default;

void TcpConn::touch() {
  last_ms_ = worker_.loop().nowMs();
  worker_.touched(this);
}

void TcpConn::start() {
  // The client's socket inherited TCP_NODELAY and SO_OOBINLINE from the listener
  // (Proxy::add).
  if (!worker_.loop().add(client_.fd.get(), kSocketEvents, &client_).ok()) {
    close(true);
    return;
  }
  tryConnect();
}

// Connects to the next backend not yet tried; a refusal known at once moves on to the next.
void TcpConn::tryConnect() {
  for (;;) {
    // A retry takes the service's backends as they are now: those it had may have gone.
    auto current = service_.backends();
    if (current != set_) {
      set_ = std::move(current);
      tried_ = 0;
    }
    backend_ = set_->pick(tried_, worker_.loop().nowMs());
    if (!backend_) {
      // Every backend is down or refused: the client must not be left waiting.
      close(true);
      return;
    }
    tried_ |= BackendSet::bit(set_->indexOf(backend_));
    sockaddr_storage sa;
    socklen_t len = backend_->endpoint().toSockaddr(&sa);
    UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      backend_ = nullptr;  // not opened on it: nothing to count back
      close(true);
      return;
    }
    setSocketOptions(fd.get());
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len);
    if (rc != 0 && errno != EINPROGRESS) {
      int err = errno;
      if (!backendAtFault(err)) {
        backend_ = nullptr;  // this host's shortage (ports, buffers): no backend is to blame
        close(true);
        return;
      }
      set_->connectFailed(backend_, std::strerror(err), worker_.loop().nowMs());
      backend_ = nullptr;
      continue;
    }
    backend_side_.fd = std::move(fd);
    if (!worker_.loop().add(backend_side_.fd.get(), kSocketEvents, &backend_side_).ok()) {
      backend_ = nullptr;
      close(true);
      return;
    }
    set_->opened(backend_);
    state_ = State::kConnecting;
    last_ms_ = worker_.loop().nowMs();
    worker_.connecting(this);
    if (rc == 0) connected(0);
    return;
  }
}

void TcpConn::connectFailed(const std::string& why) {
  set_->connectFailed(backend_, why, worker_.loop().nowMs());
  set_->closed(backend_);
  backend_ = nullptr;
  closeSide(backend_side_, false);
  tryConnect();
}

void TcpConn::connected(uint32_t events) {
  set_->connectSucceeded(backend_);
  state_ = State::kOpen;
  worker_.opened(this);
  touch();
  // The client may have sent already; the backend, if it speaks first, has said so in events
  // (edge-triggered: nothing is lost by not reading it before then).
  // A FIN the client sent while the backend was connecting was reported then: it is read now.
  if (client_events_ & EPOLLPRI) up_.urgent = true;
  FlowOutcome r = pump(up_, client_, backend_side_, true, !(client_events_ & EPOLLRDHUP));
  if (r != FlowOutcome::kReset && (events & (EPOLLIN | EPOLLRDHUP)))
    r = pump(down_, backend_side_, client_, false, !(events & EPOLLRDHUP));
  settle(r);
}

void TcpConn::timedOut() {
  if (state_ == State::kConnecting) {
    connectFailed("connect timed out");
  } else {
    // Idle: nothing in flight, a FIN each way. Bytes still held (a peer that stopped reading)
    // are lost: a RST says so.
    close(up_.held > 0 || down_.held > 0);
  }
}

void TcpConn::onEvents(Side& side, uint32_t events) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    if (&side != &backend_side_) {
      client_events_ |= events;  // the client's bytes wait in its socket
      return;
    }
    if (events & (EPOLLERR | EPOLLHUP)) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (::getsockopt(backend_side_.fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      connectFailed(std::strerror(err != 0 ? err : ECONNREFUSED));
    } else if (events & EPOLLOUT) {
      connected(events);
    }
    return;
  }
  touch();
  if (events & (EPOLLERR | EPOLLHUP)) {
    pumpBoth();
    return;
  }
  bool client_side = &side == &client_;
  Flow& out_flow = client_side ? up_ : down_;  // bytes this side sends
  Flow& in_flow = client_side ? down_ : up_;   // bytes this side receives
  Side& other = client_side ? backend_side_ : client_;
  if (events & EPOLLPRI) out_flow.urgent = true;
  FlowOutcome r = FlowOutcome::kBlocked;
  // A short read ends this side's reading only when this very event reported the bytes (a
  // FIN it reported must still be read; reading resumed by the other side's room must go on
  // until EAGAIN to re-arm the edge).
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI))
    r = pump(out_flow, side, other, client_side, !(events & EPOLLRDHUP));
  // Room on this side matters only to a flow that holds bytes for it (a paused one included):
  // most EPOLLIN events report EPOLLOUT too, and reading the other side then would only
  // return EAGAIN.
  if (r != FlowOutcome::kReset && (events & EPOLLOUT) && (in_flow.held > 0 || in_flow.paused))
    r = pump(in_flow, other, side, !client_side, false);
  settle(r);
}

void TcpConn::pumpBoth() {
  FlowOutcome r = pump(up_, client_, backend_side_, true, false);
  if (r != FlowOutcome::kReset) r = pump(down_, backend_side_, client_, false, false);
  settle(r);
}

// After the pumps: a reset ends the connection with RST, both flows done with FIN.
void TcpConn::settle(FlowOutcome last) {
  if (last == FlowOutcome::kReset) {
    close(true);
  } else if (up_.shut && down_.shut) {
    close(false);
  }
}

// Small transfers are copied once through the loop's buffer (recv and send: as many calls as
// two splices, and a short recv proves the socket drained, which saves the read that would
// return EAGAIN); a flow that fills the buffer is bulk and splices from then on, zero-copy,
// the way HAProxy's splice-auto decides.
//
// Urgent data (MSG_OOB) arrives inline (SO_OOBINLINE) and is passed on as an ordinary byte:
// the urgent mark does not cross the proxy. splice stops short of the mark for good (the
// kernel's tcp_read_sock never reads past it, inline or not; it says EAGAIN there, or 0 once
// the peer's FIN is in), so an urgent flow reads with recv, which does, until the socket is
// drained; a short read there proves nothing (recv also stops at the mark).
FlowOutcome TcpConn::pump(Flow& flow, Side& from, Side& to, bool to_backend,
                          bool short_read_drains) {
  if (flow.shut) return FlowOutcome::kDone;
  auto& moved = to_backend ? backend_->counters().bytes_to : backend_->counters().bytes_from;
  bool drained = false;
  bool progress = true;
  while (progress) {
    progress = false;
    if (flow.held > 0) {
      ssize_t n = ::splice(flow.pipe->read_end.get(), nullptr, to.fd.get(), nullptr, flow.held,
                           SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        flow.held -= static_cast<size_t>(n);
        moved.fetch_add(static_cast<uint64_t>(n), std::memory_order_relaxed);
        progress = true;
      } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
        return FlowOutcome::kReset;
      }
    }
    // Reading pauses while the pipe is full and resumes once the writer emptied half of it.
    flow.paused = flow.pipe && Watermark{flow.pipe->capacity, flow.pipe->capacity / 2}.paused(
                                   flow.paused, flow.held);
    if (flow.eof || flow.paused || drained) continue;
    if ((!flow.bulk || flow.urgent) && flow.held == 0) {
      auto& buf = worker_.copyBuffer();
      // What send does not take must fit in a pipe: never read more than the smallest holds.
      size_t want = std::min(buf.size(), worker_.pipes().smallestCapacity());
      ssize_t n = ::recv(from.fd.get(), buf.data(), want, MSG_DONTWAIT);
      if (n == 0) {
        flow.eof = true;
        progress = true;
      } else if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) return FlowOutcome::kReset;
        if (errno == EAGAIN) flow.urgent = false;  // read past the mark: splices may go on
      } else {
        auto len = static_cast<size_t>(n);
        ssize_t sent = ::send(to.fd.get(), buf.data(), len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (sent < 0) {
          if (errno != EAGAIN && errno != EINTR) return FlowOutcome::kReset;
          sent = 0;
        }
        moved.fetch_add(static_cast<uint64_t>(sent), std::memory_order_relaxed);
        if (static_cast<size_t>(sent) < len) {
          // What the destination did not take waits in a pipe, copied there (the buffer is
          // the next connection's in a moment).
          if (!flow.pipe) {
            auto p = worker_.pipes().acquire();
            if (!p.ok()) return FlowOutcome::kReset;
            flow.pipe = std::move(*p);
          }
          ssize_t w = ::write(flow.pipe->write_end.get(), buf.data() + sent, len - sent);
          if (w != static_cast<ssize_t>(len - sent)) return FlowOutcome::kReset;
          flow.held = len - sent;
        }
        if (len == want) flow.bulk = true;
        drained = short_read_drains && !flow.urgent && len < want;
        progress = true;
      }
      continue;
    }
    if (flow.urgent) continue;  // recv reads on once the pipe is empty
    if (!flow.pipe) {
      auto p = worker_.pipes().acquire();
      if (!p.ok()) return FlowOutcome::kReset;
      flow.pipe = std::move(*p);
    }
    size_t room = flow.pipe->capacity - flow.held;
    ssize_t n = ::splice(from.fd.get(), nullptr, flow.pipe->write_end.get(), nullptr, room,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
    if (n > 0) {
      flow.held += static_cast<size_t>(n);
      progress = true;
    } else if (n == 0) {
      // The end, or an urgent mark after which the peer's FIN came (splice says 0 there too):
      // a byte left to read says which.
      char c;
      if (::recv(from.fd.get(), &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0) {
        flow.urgent = true;
      } else {
        flow.eof = true;
      }
      progress = true;
    } else if (errno != EAGAIN && errno != EINTR) {
      return FlowOutcome::kReset;
    }
  }
  if (flow.held == 0 && flow.pipe) worker_.pipes().release(std::move(flow.pipe), true);
  if (flow.eof && flow.held == 0) {
    // Half-close passes through: the other side may still send. When it is done too, the
    // close that follows sends the FIN.
    const Flow& other = &flow == &up_ ? down_ : up_;
    if (!other.shut) (void)::shutdown(to.fd.get(), SHUT_WR);
    flow.shut = true;
    return FlowOutcome::kDone;
  }
  return FlowOutcome::kBlocked;
}

void TcpConn::close(bool reset) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  for (Flow* f : {&up_, &down_}) {
    if (f->pipe) worker_.pipes().release(std::move(f->pipe), f->held == 0);
    f->held = 0;
  }
  closeSide(client_, reset);
  closeSide(backend_side_, reset);
  if (backend_) set_->closed(backend_);
  backend_ = nullptr;
  worker_.closed(this);
}

}  // namespace plumb::proxy
