// The ambassadors' forwarder as front ends see it: listeners opened in plumb's namespace or a
// guest's, each forwarding to its backends (plugin/proxy does the forwarding). Front ends
// never see the proxy's types.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace plumb::proxy {
class Proxy;
}

namespace plumb::core {

struct ForwarderOptions {
  int threads = 0;                // 0: one loop per core
  int health_interval_ms = 1000;  // 0: passive health only
  int connect_timeout_ms = 2000;
  int idle_timeout_ms = 3600 * 1000;
  int udp_idle_timeout_ms = 60 * 1000;
  int drain_timeout_ms = 10 * 1000;
};

struct Forward {
  std::string name;  // for logs and metrics
  bool udp = false;
  std::string listen;                 // ADDR:PORT; port 0: any free port
  std::vector<std::string> backends;  // ADDR:PORT each
  std::string netns;                  // a netns path to listen in; empty: plumb's own
  uint16_t health_port = 0;           // UDP: a companion TCP port on each backend
};

struct ForwardBackendStats {
  std::string endpoint;  // ADDR:PORT
  bool up = true;
  uint64_t open = 0, total = 0, bytes_to = 0, bytes_from = 0, connect_errors = 0;
};

struct ForwardStats {
  uint64_t id = 0;
  std::string listen;
  bool udp = false;
  std::vector<ForwardBackendStats> backends;
};

class Forwarder {
 public:
  static Result<std::unique_ptr<Forwarder>> start(const ForwarderOptions& options);
  ~Forwarder();
  Forwarder(const Forwarder&) = delete;
  Forwarder& operator=(const Forwarder&) = delete;

  struct Listening {
    uint64_t id = 0;
    std::string address;  // ADDR:PORT with the real port
  };
  // Checks every address before anything is opened; opens and binds the listener where fwd
  // says and serves it. No backends is allowed: connections are reset until some are set.
  Result<Listening> add(const Forward& fwd);
  // New connections of listener id go to backends (ADDR:PORT each) from now on.
  Status setBackends(uint64_t id, const std::vector<std::string>& backends);
  // Stops listener id and closes its connections.
  void remove(uint64_t id);
  // Every listener's backends with their counters.
  std::vector<ForwardStats> stats() const;
  // Stops accepting, lets open connections finish (drain_timeout_ms at most), closes the rest.
  void drain();

 private:
  explicit Forwarder(std::unique_ptr<proxy::Proxy> proxy);
  std::unique_ptr<proxy::Proxy> proxy_;
};

// A forwarder holds two descriptors per connection: the soft open-file limit goes up to the
// hard one.
void raiseOpenFileLimit();

}  // namespace plumb::core
