// The resident CNI service: one long-lived plumb per state directory that plugin processes
// hand their call to over a unix socket (STATE/cni.sock), so that a call pays neither the
// store's cold open nor loading what only a warm process keeps (libcurl for etcd), and the
// work runs in a process whose code is already paged in.
//
// It is an optimisation, never a dependency: a plugin process that finds no service, or one
// that will not serve it, does the call itself, as it always did. The service serves only
// calls it would carry out exactly as the caller would: the same plumb binary, the same
// namespaces (network, mount, PID, user), root, working directory, user and environment (the
// CNI_ variables aside, which travel with the call), the same state directory, and no log of
// the call's own. The first plugin process that finds none starts it after answering; it
// exits when idle (PLUMB_RESIDENT_IDLE_S, default 300), when its socket is removed or
// replaced (the state directory deleted), on SIGTERM, or when a call shows a newer binary.
// PLUMB_RESIDENT=off in the environment (or any failpoint) keeps every call in its process.
#pragma once

#include <optional>
#include <string>

#include "plugin/cni/cni.h"

namespace plumb::cni::resident {

struct Handover {
  std::optional<Output> out;  // the service's answer; none: carry the call out here
  std::string start_in;       // a state directory with no service: start one after the call
};

// In a plugin process, before anything else: the call handed to the service, when one serves.
Handover handOver(const Invocation& in);

// Starts the service for dir, detached (its own session, /dev/null for stdio); not waited for.
void start(const std::string& dir);

// `plumb cni-resident serve|status|stop DIR`: serve runs the service in this process; status
// prints it ("pid N, served N, declined N") or exits 1 when none runs; stop ends it, waiting
// for the calls under way.
int main(int argc, char** argv);

}  // namespace plumb::cni::resident
