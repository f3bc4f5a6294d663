// The one plumb binary. CNI_COMMAND in the environment makes it the CNI plugin (installed as
// /opt/cni/bin/plumb); `plumb daemon` serves Docker's remote drivers; otherwise argv picks the
// command line (also called as `pipework`).
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <string>

#include "base/fd.h"
#include "plugin/cli/cli.h"
#include "plugin/cni/cni.h"
#include "plugin/cni/resident.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/dhcp.h"
#include "plugin/core/store.h"
#include "plugin/docker/daemon.h"

extern char** environ;

namespace {

int runCni() {
  // A delegated plugin that exits before reading all of stdin must not kill plumb before it
  // can answer: EPIPE is handled where the write fails.
  (void)::signal(SIGPIPE, SIG_IGN);  // cannot fail for SIGPIPE
  plumb::cni::Invocation in;
  for (char** e = environ; *e; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq) in.env.emplace(std::string(*e, static_cast<size_t>(eq - *e)), std::string(eq + 1));
  }
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(0, buf, sizeof(buf));
    if (n > 0) {
      in.input.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  // The state directory's resident service, when one serves the call; else the call is made
  // here, and a service started for the next ones (plugin/cni/resident.h).
  auto handed = plumb::cni::resident::handOver(in);
  auto out = handed.out ? std::move(*handed.out) : plumb::cni::run(in);
  // A runtime that cannot read the answer must not take silence for success. Written with
  // write(2): nothing else goes to stdout, and stdio would first fstat it and allocate a buffer.
  if (!plumb::writeAll(1, out.text)) return 1;
  if (!handed.start_in.empty()) plumb::cni::resident::start(handed.start_in);
  return out.exit_code;
}

}  // namespace

int main(int argc, char** argv) {
  plumb::core::Store::helperIsThisProgram();
  plumb::core::ClusterAddresses::helperIsThisProgram();
  const char* command = std::getenv("CNI_COMMAND");
  if (command && *command) return runCni();
  // udhcpc runs plumb as its event script (see plugin/core/dhcp.h).
  if (std::getenv("PLUMB_DHCP_HOOK")) return plumb::core::dhcpHook(argc, argv);
  // A store's WAL checkpoint, left by a plugin process (plugin/core/store.h).
  if (const char* dir = std::getenv("PLUMB_CHECKPOINT"))
    return plumb::core::Store::checkpointMain(dir);
  // A block claimed ahead of need, for a cluster IPAM (plugin/core/cluster_ipam.h).
  if (const char* spec = std::getenv("PLUMB_CLUSTER_CLAIM"))
    return plumb::core::ClusterAddresses::claimMain(spec);
  if (argc > 1 && std::strcmp(argv[1], "cni-resident") == 0)
    return plumb::cni::resident::main(argc - 1, argv + 1);
  if (argc > 1 && std::strcmp(argv[1], "daemon") == 0)
    return plumb::docker::daemonMain(argc - 1, argv + 1);
  return plumb::cli::run(argc, argv);
}
