// `plumb proxy`: one forwarder in the foreground, for scripts, tests and benchmarks.
#pragma once

#include <string>
#include <vector>

namespace plumb::cli {

struct ProxyCommand {
  bool udp = false;
  std::string listen;
  std::vector<std::string> backends;
  std::string netns;  // a guest, as the other commands take one; empty: plumb's own netns
  int health_interval_ms = 1000;
  int health_port = 0;
  int threads = 0;
  int idle_timeout_s = 3600;
  int drain_timeout_s = 10;
};

// Prints "listening on ADDR:PORT" once it listens; SIGTERM or SIGINT drains and returns 0.
int runProxy(const ProxyCommand& cmd);

}  // namespace plumb::cli
