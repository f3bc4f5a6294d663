// The forwarder: one process, one event loop per core, every service it is given. TCP bytes
// move by splice(2) through pipes lent only while in flight; UDP flows get one connected
// upstream socket each. Depends on base/ only: sockets arrive bound (and, for TCP, listening),
// so whoever opens them decides the network namespace they live in.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/forwarder.h"
#endif

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/endpoint.h"
#include "base/fd.h"
#include "base/result.h"

namespace plumb::proxy {

enum class Protocol { kTcp, kUdp };

struct ServiceSpec {
  std::string name;  // for logs and metrics
  Protocol protocol = Protocol::kTcp;
  UniqueFd socket;  // bound, non-blocking (TCP: listening); the proxy owns it from here
  Endpoint listen;  // where it is bound, for logs
  std::vector<Endpoint> backends;
  // UDP: a TCP port checked on each backend's address (active health); 0: passive only.
  uint16_t health_port = 0;
};

struct Options {
  int threads = 0;                      // 0: one loop per core
  int health_interval_ms = 1000;        // 0: passive health only
  int connect_timeout_ms = 2000;        // a backend that does not answer is down
  int idle_timeout_ms = 3600 * 1000;    // a TCP connection with no bytes either way is closed
  int udp_idle_timeout_ms = 60 * 1000;  // a UDP flow's session ends
  int drain_timeout_ms = 10 * 1000;     // on drain(), open connections get this long
  // Bytes per splice pipe (F_SETPIPE_SZ; the kernel default, 64 KiB, where it refuses): a
  // bulk flow moves up to this much per splice. 256 KiB carried one stream about 25% faster
  // than 64 KiB here (bench/proxy_bench.sh); 1 MiB no faster, with 4x the bytes in flight.
  int pipe_size = 256 * 1024;
};

struct BackendStats {
  Endpoint endpoint;
  bool up = true;
  uint64_t open = 0, total = 0, bytes_to = 0, bytes_from = 0, connect_errors = 0;
};

struct ServiceStats {
  uint64_t id = 0;
  std::string name;
  Protocol protocol = Protocol::kTcp;
  Endpoint listen;
  std::vector<BackendStats> backends;
};

class Worker;

class Proxy {
 public:
  static Result<std::unique_ptr<Proxy>> start(const Options& options);
  // Drains if drain() was not called.
  ~Proxy();
  Proxy(const Proxy&) = delete;
  Proxy& operator=(const Proxy&) = delete;

  // Serves spec from now on; returns its id. No backends is allowed (every connection is
  // reset until some are set); more than 64 is invalid.
  Result<uint64_t> add(ServiceSpec spec);
  // New connections go to these from now on; open ones stay where they are. A backend listed
  // before and now keeps its health state and counters.
  Status setBackends(uint64_t id, const std::vector<Endpoint>& backends);
  // Stops listening and closes the service's connections and sessions.
  void remove(uint64_t id);

  std::vector<ServiceStats> stats() const;

  // Stops accepting, lets open TCP connections finish for up to drain_timeout_ms, closes the
  // rest; returns once every loop has stopped. Idempotent.
  void drain();

 private:
  struct Impl;
  explicit Proxy(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace plumb::proxy
