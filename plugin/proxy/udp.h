// UDP: one session per client address, each with a connected socket to its backend and an
// idle timer; datagrams move in batches (recvmmsg/sendmmsg), no thread or process per flow.
// Internal to the proxy.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <unordered_map>

#include "base/fd.h"
#include "plugin/proxy/list.h"
#include "plugin/proxy/loop.h"

namespace plumb::proxy {

struct Service;
class Backend;
class BackendSet;
class Worker;
class UdpListener;

// A client's address, compact: the session table's key.
struct PeerKey {
  std::array<uint8_t, 16> addr{};
  uint32_t scope = 0;
  uint16_t port = 0;
  uint8_t family = 0;

  static PeerKey from(const sockaddr_storage& sa);
  socklen_t toSockaddr(sockaddr_storage* sa) const;
  bool operator==(const PeerKey& o) const {
    return family == o.family && port == o.port && scope == o.scope && addr == o.addr;
  }
};

struct PeerKeyHash {
  size_t operator()(const PeerKey& k) const;
};

// One client's flow. Owns its upstream socket.
class UdpSession final : public ListHook, public Handler {
 public:
  UdpSession(UdpListener* listener, const PeerKey& peer) : listener_(listener), peer_(peer) {}
  void onEvents(uint32_t events) override;

  const PeerKey& peer() const { return peer_; }
  UniqueFd& upstream() { return upstream_; }
  Backend* backend = nullptr;
  uint64_t tried = 0;
  int64_t last_ms = 0;
  std::array<uint8_t, 16> local{};  // the address the client sent to (wildcard listeners)

 private:
  UdpListener* listener_;
  PeerKey peer_;
  UniqueFd upstream_;
};

// Sessions by client address, least recently active first.
class UdpSessionTable {
 public:
  UdpSession* find(const PeerKey& peer);
  // A new session for peer (which must not have one), active at now_ms.
  UdpSession& insert(UdpListener* listener, const PeerKey& peer, int64_t now_ms);
  void touch(UdpSession& s, int64_t now_ms);
  // Ends the sessions idle for idle_ms or more, oldest first: fn sees each before it goes.
  size_t expire(int64_t now_ms, int idle_ms, const std::function<void(UdpSession&)>& fn);
  void erase(UdpSession& s);
  // Every session, then none.
  void clear(const std::function<void(UdpSession&)>& fn);
  // The sessions pred picks: fn sees each before it goes.
  size_t removeIf(const std::function<bool(UdpSession&)>& pred,
                  const std::function<void(UdpSession&)>& fn);
  size_t size() const { return map_.size(); }

 private:
  std::unordered_map<PeerKey, UdpSession, PeerKeyHash> map_;
  HookList lru_;
};

// Sessions a listener keeps at most: a flood of source addresses cannot take every descriptor.
constexpr size_t kMaxUdpSessions = 1 << 18;

// A service's UDP socket, served by one loop (one session table, so a client's datagrams
// always find its session).
class UdpListener final : public Handler {
 public:
  UdpListener(Worker& worker, Service& service);
  ~UdpListener();
  Status start();
  // New backends: sessions on a backend the set no longer lists end (the client's next
  // datagram starts a new one).
  void setBackends(std::shared_ptr<BackendSet> set);
  void onEvents(uint32_t events) override;
  void sessionEvents(UdpSession& s, uint32_t events);
  void expire();
  void closeAll();
  const Service& service() const { return service_; }

 private:
  bool attach(UdpSession& s);  // picks a backend and connects the upstream socket
  void endSession(UdpSession& s);
  void dropUpstream(UdpSession& s);
  void upstreamRefused(UdpSession& s, int64_t now);

  Worker& worker_;
  Service& service_;
  std::shared_ptr<BackendSet> set_;  // every session's backend is one of these
  UdpSessionTable table_;
  bool pktinfo_ = false;  // bound to a wildcard address: replies name their source
};

}  // namespace plumb::proxy
