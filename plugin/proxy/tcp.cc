#include "plugin/proxy/tcp.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "plugin/proxy/service.h"
#include "plugin/proxy/worker.h"

namespace plumb::proxy {
namespace {

constexpr uint32_t kSocketEvents = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;

void setNoDelay(int fd) {
  int one = 1;
  (void)::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

// Closing with SO_LINGER 0 sends RST: the peer learns at once that the connection is gone.
void resetAndClose(UniqueFd& fd) {
  if (!fd.valid()) return;
  linger l{1, 0};
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  fd.reset();
}

}  // namespace

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
  // The client's socket inherited TCP_NODELAY from the listener (Proxy::add).
  if (!worker_.loop().add(client_.fd.get(), kSocketEvents, &client_).ok()) {
    close(true);
    return;
  }
  tryConnect();
}

// Connects to the next backend not yet tried; a refusal known at once moves on to the next.
void TcpConn::tryConnect() {
  for (;;) {
    backend_ = service_.backends.pick(tried_, worker_.loop().nowMs());
    if (!backend_) {
      // Every backend is down or refused: the client must not be left waiting.
      close(true);
      return;
    }
    tried_ |= BackendSet::bit(service_.backends.indexOf(backend_));
    sockaddr_storage sa;
    socklen_t len = backend_->endpoint().toSockaddr(&sa);
    UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) {
      close(true);
      return;
    }
    setNoDelay(fd.get());
    int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len);
    if (rc != 0 && errno != EINPROGRESS) {
      service_.backends.connectFailed(backend_, std::strerror(errno), worker_.loop().nowMs());
      backend_ = nullptr;
      continue;
    }
    backend_side_.fd = std::move(fd);
    if (!worker_.loop().add(backend_side_.fd.get(), kSocketEvents, &backend_side_).ok()) {
      close(true);
      return;
    }
    service_.backends.opened(backend_);
    state_ = State::kConnecting;
    last_ms_ = worker_.loop().nowMs();
    worker_.connecting(this);
    if (rc == 0) connected(0);
    return;
  }
}

void TcpConn::connectFailed(const std::string& why) {
  service_.backends.connectFailed(backend_, why, worker_.loop().nowMs());
  service_.backends.closed(backend_);
  backend_ = nullptr;
  backend_side_.fd.reset();  // also leaves the epoll set
  tryConnect();
}

void TcpConn::connected(uint32_t events) {
  service_.backends.connectSucceeded(backend_);
  state_ = State::kOpen;
  worker_.opened(this);
  touch();
  // The client may have sent already; the backend, if it speaks first, has said so in events
  // (edge-triggered: nothing is lost by not reading it before then).
  // A FIN the client sent while the backend was connecting was reported then: it is read now.
  FlowOutcome r = pump(up_, client_, backend_side_, true, !(client_events_ & EPOLLRDHUP));
  if (r != FlowOutcome::kReset && (events & (EPOLLIN | EPOLLRDHUP)))
    r = pump(down_, backend_side_, client_, false, !(events & EPOLLRDHUP));
  if (r == FlowOutcome::kReset) {
    close(true);
  } else if (up_.shut && down_.shut) {
    close(false);
  }
}

void TcpConn::timedOut() {
  if (state_ == State::kConnecting) {
    connectFailed("connect timed out");
  } else {
    close(false);
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
  FlowOutcome r = FlowOutcome::kBlocked;
  // A short read ends this side's reading only when this very event reported the bytes (a
  // FIN it reported must still be read; reading resumed by the other side's room must go on
  // until EAGAIN to re-arm the edge).
  if (events & (EPOLLIN | EPOLLRDHUP))
    r = pump(out_flow, side, other, client_side, !(events & EPOLLRDHUP));
  if (r != FlowOutcome::kReset && state_ != State::kClosed && (events & EPOLLOUT))
    r = pump(in_flow, other, side, !client_side, false);
  if (r == FlowOutcome::kReset) {
    close(true);
  } else if (up_.shut && down_.shut) {
    close(false);
  }
}

void TcpConn::pumpBoth() {
  FlowOutcome a = pump(up_, client_, backend_side_, true, false);
  FlowOutcome b = a == FlowOutcome::kReset ? a : pump(down_, backend_side_, client_, false, false);
  if (a == FlowOutcome::kReset || b == FlowOutcome::kReset) {
    close(true);
  } else if (up_.shut && down_.shut) {
    close(false);
  }
}

// Small transfers are copied once through the loop's buffer (recv and send: as many calls as
// two splices, and a short recv proves the socket drained, which saves the read that would
// return EAGAIN); a flow that fills the buffer is bulk and splices from then on, zero-copy,
// the way HAProxy's splice-auto decides.
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
    if (!flow.bulk && flow.held == 0) {
      auto& buf = worker_.copyBuffer();
      ssize_t n = ::recv(from.fd.get(), buf.data(), buf.size(), MSG_DONTWAIT);
      if (n == 0) {
        flow.eof = true;
        progress = true;
      } else if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) return FlowOutcome::kReset;
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
        if (len == buf.size()) flow.bulk = true;
        drained = short_read_drains && len < buf.size();
        progress = true;
      }
      continue;
    }
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
      flow.eof = true;
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
  if (reset) {
    resetAndClose(client_.fd);
    resetAndClose(backend_side_.fd);
  } else {
    client_.fd.reset();
    backend_side_.fd.reset();
  }
  if (backend_) service_.backends.closed(backend_);
  backend_ = nullptr;
  worker_.closed(this);
}

}  // namespace plumb::proxy
