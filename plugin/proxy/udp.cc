#include "plugin/proxy/udp.h"

#include <sys/epoll.h>

#include <cerrno>
#include <cstring>

#include "base/endpoint.h"
#include "base/log.h"
#include "plugin/proxy/backends.h"
#include "plugin/proxy/service.h"
#include "plugin/proxy/worker.h"

namespace plumb::proxy {

PeerKey PeerKey::from(const sockaddr_storage& sa) {
  PeerKey k;
  k.family = static_cast<uint8_t>(sa.ss_family);
  if (sa.ss_family == AF_INET6) {
    const auto& s6 = reinterpret_cast<const sockaddr_in6&>(sa);
    std::memcpy(k.addr.data(), &s6.sin6_addr, 16);
    k.port = s6.sin6_port;
    k.scope = s6.sin6_scope_id;
  } else {
    const auto& s4 = reinterpret_cast<const sockaddr_in&>(sa);
    std::memcpy(k.addr.data(), &s4.sin_addr, 4);
    k.port = s4.sin_port;
  }
  return k;
}

socklen_t PeerKey::toSockaddr(sockaddr_storage* sa) const {
  std::memset(sa, 0, sizeof(*sa));
  if (family == AF_INET6) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(sa);
    s6->sin6_family = AF_INET6;
    std::memcpy(&s6->sin6_addr, addr.data(), 16);
    s6->sin6_port = port;
    s6->sin6_scope_id = scope;
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(sa);
  s4->sin_family = AF_INET;
  std::memcpy(&s4->sin_addr, addr.data(), 4);
  s4->sin_port = port;
  return sizeof(sockaddr_in);
}

size_t PeerKeyHash::operator()(const PeerKey& k) const {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ULL;
  };
  mix(k.addr.data(), k.family == AF_INET6 ? 16 : 4);
  mix(&k.port, sizeof(k.port));
  mix(&k.scope, sizeof(k.scope));
  return static_cast<size_t>(h);
}

UdpSession* UdpSessionTable::find(const PeerKey& peer) {
  auto it = map_.find(peer);
  return it == map_.end() ? nullptr : &it->second;
}

UdpSession& UdpSessionTable::insert(UdpListener* listener, const PeerKey& peer, int64_t now_ms) {
  auto [it, inserted] = map_.try_emplace(peer, listener, peer);
  (void)inserted;
  touch(it->second, now_ms);
  return it->second;
}

void UdpSessionTable::touch(UdpSession& s, int64_t now_ms) {
  s.last_ms = now_ms;
  lru_.pushBack(&s);
}

void UdpSessionTable::erase(UdpSession& s) {
  lru_.remove(&s);
  map_.erase(s.peer());
}

size_t UdpSessionTable::expire(int64_t now_ms, int idle_ms,
                               const std::function<void(UdpSession&)>& fn) {
  size_t n = 0;
  while (ListHook* h = lru_.front()) {
    auto& s = static_cast<UdpSession&>(*h);
    if (now_ms - s.last_ms < idle_ms) break;
    fn(s);
    erase(s);
    ++n;
  }
  return n;
}

void UdpSessionTable::clear(const std::function<void(UdpSession&)>& fn) {
  while (ListHook* h = lru_.front()) {
    auto& s = static_cast<UdpSession&>(*h);
    fn(s);
    erase(s);
  }
}

size_t UdpSessionTable::removeIf(const std::function<bool(UdpSession&)>& pred,
                                 const std::function<void(UdpSession&)>& fn) {
  size_t n = 0;
  ListHook* h = lru_.front();
  while (h) {
    ListHook* next = lru_.next(h);
    auto& s = static_cast<UdpSession&>(*h);
    if (pred(s)) {
      fn(s);
      erase(s);
      ++n;
    }
    h = next;
  }
  return n;
}

void UdpSession::onEvents(uint32_t events) { listener_->sessionEvents(*this, events); }

UdpListener::UdpListener(Worker& worker, Service& service)
    : worker_(worker), service_(service), set_(service.backends()) {}

void UdpListener::setBackends(std::shared_ptr<BackendSet> set) {
  table_.removeIf([&](UdpSession& s) { return !set->contains(s.backend); },
                  [this](UdpSession& s) { endSession(s); });
  // Sessions that stay keep their backend (the new set holds the same object); what they
  // tried was counted in the old set's order.
  table_.removeIf(
      [](UdpSession& s) {
        s.tried = 0;
        return false;
      },
      [](UdpSession&) {});
  set_ = std::move(set);
}

UdpListener::~UdpListener() { closeAll(); }

Status UdpListener::start() {
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  if (::getsockname(service_.socket.get(), reinterpret_cast<sockaddr*>(&bound), &len) == 0 &&
      Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&bound)).addr.isUnspecified()) {
    int one = 1;
    pktinfo_ = bound.ss_family == AF_INET6 ? ::setsockopt(service_.socket.get(), IPPROTO_IPV6,
                                                          IPV6_RECVPKTINFO, &one, sizeof(one)) == 0
                                           : ::setsockopt(service_.socket.get(), IPPROTO_IP,
                                                          IP_PKTINFO, &one, sizeof(one)) == 0;
  }
  // Many flows share this one socket: its receive buffer absorbs their bursts while the loop
  // is busy elsewhere (root may exceed net.core.rmem_max; otherwise the kernel caps it).
  int size = 4 << 20;
  if (::setsockopt(service_.socket.get(), SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) != 0)
    (void)::setsockopt(service_.socket.get(), SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  return worker_.loop().add(service_.socket.get(), EPOLLIN, this);
}

bool UdpListener::attach(UdpSession& s) {
  auto now = worker_.loop().nowMs();
  for (;;) {
    if (s.backend) {
      set_->closed(s.backend);
      s.backend = nullptr;
    }
    dropUpstream(s);
    Backend* b = set_->pick(s.tried, now);
    if (!b) return false;
    s.tried |= BackendSet::bit(set_->indexOf(b));
    sockaddr_storage sa;
    socklen_t len = b->endpoint().toSockaddr(&sa);
    UniqueFd fd(::socket(sa.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return false;
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0) {
      set_->connectFailed(b, std::strerror(errno), now);
      continue;
    }
    if (!worker_.loop().add(fd.get(), EPOLLIN, &s).ok()) return false;
    s.upstream() = std::move(fd);
    s.backend = b;
    set_->opened(b);
    return true;
  }
}

void UdpListener::dropUpstream(UdpSession& s) { worker_.loop().close(s.upstream()); }

void UdpListener::endSession(UdpSession& s) {
  if (s.backend) set_->closed(s.backend);
  s.backend = nullptr;
  dropUpstream(s);
}

// The backend's port is closed (ICMP port unreachable, reported on a send or a receive): it
// is down, and this flow moves to another.
void UdpListener::upstreamRefused(UdpSession& s, int64_t now) {
  set_->connectFailed(s.backend, "port unreachable", now);
  if (!attach(s)) {
    endSession(s);
    table_.erase(s);
  }
}

void UdpListener::onEvents(uint32_t /*events*/) {
  DatagramBatch& b = worker_.batch();
  auto now = worker_.loop().nowMs();
  // Level-triggered: a bounded number of batches per wakeup keeps the loop fair to the rest.
  for (int round = 0; round < 8; ++round) {
    for (int i = 0; i < DatagramBatch::kSize; ++i) {
      b.in_iov[i] = {b.data.get() + i * DatagramBatch::kMaxDatagram, DatagramBatch::kMaxDatagram};
      b.in[i].msg_hdr = {};
      b.in[i].msg_hdr.msg_name = &b.addrs[i];
      b.in[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      b.in[i].msg_hdr.msg_iov = &b.in_iov[i];
      b.in[i].msg_hdr.msg_iovlen = 1;
      if (pktinfo_) {
        b.in[i].msg_hdr.msg_control = b.in_control[i];
        b.in[i].msg_hdr.msg_controllen = sizeof(b.in_control[i]);
      }
    }
    int n = ::recvmmsg(service_.socket.get(), b.in, DatagramBatch::kSize, MSG_DONTWAIT, nullptr);
    if (n <= 0) return;
    // Consecutive datagrams of one client go upstream in one sendmmsg.
    int i = 0;
    while (i < n) {
      PeerKey peer = PeerKey::from(b.addrs[i]);
      UdpSession* s = table_.find(peer);
      if (!s && table_.size() < kMaxUdpSessions) {
        s = &table_.insert(this, peer, now);
        if (!attach(*s)) {
          table_.erase(*s);
          s = nullptr;
        }
      } else if (s) {
        table_.touch(*s, now);
      }
      if (s && pktinfo_) {
        for (cmsghdr* c = CMSG_FIRSTHDR(&b.in[i].msg_hdr); c;
             c = CMSG_NXTHDR(&b.in[i].msg_hdr, c)) {
          if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
            in_pktinfo pi;
            std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            std::memcpy(s->local.data(), &pi.ipi_addr, 4);
          } else if (c->cmsg_level == IPPROTO_IPV6 && c->cmsg_type == IPV6_PKTINFO) {
            in6_pktinfo pi;
            std::memcpy(&pi, CMSG_DATA(c), sizeof(pi));
            std::memcpy(s->local.data(), &pi.ipi6_addr, 16);
          }
        }
      }
      int j = i;
      int count = 0;
      while (j < n && PeerKey::from(b.addrs[j]) == peer) {
        b.out_iov[count] = {b.in_iov[j].iov_base, b.in[j].msg_len};
        b.out[count].msg_hdr = {};
        b.out[count].msg_hdr.msg_iov = &b.out_iov[count];
        b.out[count].msg_hdr.msg_iovlen = 1;
        if (s)
          s->backend->counters().bytes_to.fetch_add(b.in[j].msg_len, std::memory_order_relaxed);
        ++count;
        ++j;
      }
      if (s) {
        int sent =
            ::sendmmsg(s->upstream().get(), b.out, static_cast<unsigned>(count), MSG_DONTWAIT);
        // A port-unreachable pending on the socket comes back on the next send.
        if (sent < 0 && errno == ECONNREFUSED) upstreamRefused(*s, now);
      }  // no session (no backend up): the datagrams are dropped, UDP has no RST to send
      i = j;
    }
    if (n < DatagramBatch::kSize) return;
  }
}

// The reply leaves from the address the client sent to (a host with several addresses would
// otherwise pick one by route, and a client such as a DNS resolver drops the answer).
static void setSource(msghdr& m, char* control, const UdpSession& s) {
  bool v6 = s.peer().family == AF_INET6;
  m.msg_control = control;
  m.msg_controllen = v6 ? CMSG_SPACE(sizeof(in6_pktinfo)) : CMSG_SPACE(sizeof(in_pktinfo));
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  if (v6) {
    c->cmsg_level = IPPROTO_IPV6;
    c->cmsg_type = IPV6_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in6_pktinfo));
    in6_pktinfo pi{};
    std::memcpy(&pi.ipi6_addr, s.local.data(), 16);
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
  } else {
    c->cmsg_level = IPPROTO_IP;
    c->cmsg_type = IP_PKTINFO;
    c->cmsg_len = CMSG_LEN(sizeof(in_pktinfo));
    in_pktinfo pi{};
    std::memcpy(&pi.ipi_spec_dst, s.local.data(), 4);
    std::memcpy(CMSG_DATA(c), &pi, sizeof(pi));
  }
}

void UdpListener::sessionEvents(UdpSession& s, uint32_t /*events*/) {
  DatagramBatch& b = worker_.batch();
  auto now = worker_.loop().nowMs();
  sockaddr_storage client;
  socklen_t client_len = s.peer().toSockaddr(&client);
  for (int round = 0; round < 8; ++round) {
    for (int i = 0; i < DatagramBatch::kSize; ++i) {
      b.in_iov[i] = {b.data.get() + i * DatagramBatch::kMaxDatagram, DatagramBatch::kMaxDatagram};
      b.in[i].msg_hdr = {};
      b.in[i].msg_hdr.msg_iov = &b.in_iov[i];
      b.in[i].msg_hdr.msg_iovlen = 1;
    }
    int n = ::recvmmsg(s.upstream().get(), b.in, DatagramBatch::kSize, MSG_DONTWAIT, nullptr);
    if (n < 0) {
      if (errno == ECONNREFUSED) upstreamRefused(s, now);
      return;
    }
    if (n == 0) return;
    table_.touch(s, now);
    for (int i = 0; i < n; ++i) {
      b.out_iov[i] = {b.in_iov[i].iov_base, b.in[i].msg_len};
      b.out[i].msg_hdr = {};
      b.out[i].msg_hdr.msg_name = &client;
      b.out[i].msg_hdr.msg_namelen = client_len;
      b.out[i].msg_hdr.msg_iov = &b.out_iov[i];
      b.out[i].msg_hdr.msg_iovlen = 1;
      if (pktinfo_) setSource(b.out[i].msg_hdr, b.out_control[i], s);
      s.backend->counters().bytes_from.fetch_add(b.in[i].msg_len, std::memory_order_relaxed);
    }
    (void)::sendmmsg(service_.socket.get(), b.out, static_cast<unsigned>(n), MSG_DONTWAIT);
    if (n < DatagramBatch::kSize) return;
  }
}

void UdpListener::expire() {
  table_.expire(worker_.loop().nowMs(), worker_.options().udp_idle_timeout_ms,
                [this](UdpSession& s) { endSession(s); });
}

void UdpListener::closeAll() {
  table_.clear([this](UdpSession& s) { endSession(s); });
}

}  // namespace plumb::proxy
