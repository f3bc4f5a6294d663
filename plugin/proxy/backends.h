// The backends of one service: which are up, how many connections each carries, and the
// health state machine. Shared by every loop (atomics); the active checks' counters are
// touched only by the loop that runs them. A set never changes: new endpoints make a new set
// (Proxy::setBackends), and whoever uses one holds it.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/endpoint.h"

namespace plumb::proxy {

// Prometheus-style counters, per backend.
struct BackendCounters {
  std::atomic<uint64_t> open{0};            // connections (UDP: sessions) now
  std::atomic<uint64_t> total{0};           // ever
  std::atomic<uint64_t> bytes_to{0};        // client -> backend
  std::atomic<uint64_t> bytes_from{0};      // backend -> client
  std::atomic<uint64_t> connect_errors{0};  // refused, unreachable or timed out
};

struct HealthPolicy {
  bool active = true;  // periodic checks run (a TCP connect)
  int rise = 2;        // consecutive good checks that bring a down backend back
  int fall = 2;        // consecutive failed checks that take an up backend down
  // Without active checks, how long a backend that refused stays out before it is tried again.
  int retry_after_ms = 2000;
};

class Backend {
 public:
  explicit Backend(Endpoint endpoint) : endpoint_(endpoint) {}
  const Endpoint& endpoint() const { return endpoint_; }
  bool up() const { return up_.load(std::memory_order_relaxed); }
  int active() const { return active_.load(std::memory_order_relaxed); }
  BackendCounters& counters() { return counters_; }
  const BackendCounters& counters() const { return counters_; }

 private:
  friend class BackendSet;
  Endpoint endpoint_;
  std::atomic<bool> up_{true};
  std::atomic<int> active_{0};
  std::atomic<int64_t> retry_at_ms_{0};
  int good_checks_ = 0;  // the checking loop's only
  int bad_checks_ = 0;
  BackendCounters counters_;
};

class BackendSet {
 public:
  static constexpr size_t kMaxBackends = 64;  // one bit each in a connection's "tried" mask

  // previous: the set this one replaces; its backends that are still listed carry over with
  // their state and counters (connections open on them keep counting there).
  BackendSet(std::string service, const std::vector<Endpoint>& endpoints, HealthPolicy policy,
             const BackendSet* previous = nullptr);

  // The up backend with the fewest active connections that tried (bit i: backend i) leaves
  // out, ties taken in turn; nullptr when none is left. A down backend past its retry time
  // counts as up when no active checks run.
  Backend* pick(uint64_t tried, int64_t now_ms);
  static uint64_t bit(size_t index) { return uint64_t{1} << index; }
  size_t indexOf(const Backend* b) const;  // size() when b is not in this set
  bool contains(const Backend* b) const { return indexOf(b) < size(); }

  // A connection (or UDP session) starts or ends on b.
  void opened(Backend* b);
  void closed(Backend* b);

  // Passive health: a connect refused or timed out takes b down at once.
  void connectFailed(Backend* b, const std::string& why, int64_t now_ms);
  // A connect that succeeded brings back a backend that was down (only reachable without
  // active checks, or a race with one).
  void connectSucceeded(Backend* b);
  // Active health: one check's outcome.
  void checkResult(Backend* b, bool ok, const std::string& why);

  const std::string& service() const { return service_; }
  const HealthPolicy& policy() const { return policy_; }
  size_t size() const { return backends_.size(); }
  Backend& at(size_t i) { return *backends_[i]; }
  const Backend& at(size_t i) const { return *backends_[i]; }

 private:
  void setUp(Backend* b, bool up, const std::string& why);

  std::string service_;
  HealthPolicy policy_;
  std::vector<std::shared_ptr<Backend>> backends_;
  std::atomic<uint64_t> turn_{0};
};

}  // namespace plumb::proxy
