#include "plugin/cli/forward.h"

#include <pthread.h>
#include <signal.h>

#include <cstdio>

#include "base/log.h"
#include "base/standard_streams.h"
#include "plugin/cli/guest.h"
#include "plugin/core/forwarder.h"

namespace plumb::cli {

int runProxy(const ProxyCommand& cmd) {
  core::Forward fwd;
  fwd.udp = cmd.udp;
  fwd.listen = cmd.listen;
  fwd.backends = cmd.backends;
  fwd.health_port = static_cast<uint16_t>(cmd.health_port);
  if (!cmd.netns.empty()) {
    auto guest = resolveGuest(cmd.netns);
    if (!guest.ok()) {
      std::cerr << "plumb: failed to find the netns of " << cmd.netns << ": "
                << guest.error().message << "\n";
      return 1;
    }
    fwd.netns = guest->netns;
  }
  // The loops' threads inherit this mask: the signals reach the sigwait below only.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  (void)::signal(SIGPIPE, SIG_IGN);

  core::raiseOpenFileLimit();
  core::ForwarderOptions options;
  options.threads = cmd.threads;
  options.health_interval_ms = cmd.health_interval_ms;
  options.idle_timeout_ms = cmd.idle_timeout_s * 1000;
  options.drain_timeout_ms = cmd.drain_timeout_s * 1000;
  auto forwarder = core::Forwarder::start(options);
  if (!forwarder.ok()) {
    std::cerr << "plumb: failed to start the forwarder: " << forwarder.error().message << "\n";
    return 1;
  }
  auto bound = (*forwarder)->add(fwd);
  if (!bound.ok()) {
    std::cerr << "plumb: " << bound.error().message << "\n";
    (*forwarder)->drain();
    return 1;
  }
  std::printf("listening on %s\n", bound->address.c_str());
  (void)std::fflush(stdout);  // a reader gone changes nothing here
  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  log::get("proxy")->info("signal {}: draining", sig);
  // A second SIGTERM or Ctrl-C ends the drain at once (the default action, on this thread).
  pthread_sigmask(SIG_UNBLOCK, &stop_signals, nullptr);
  (*forwarder)->drain();
  return 0;
}

}  // namespace plumb::cli
