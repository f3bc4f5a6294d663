// Container runtimes as guests: a Docker or podman container is asked for through the Engine
// API on its unix socket (libcurl, loaded only then), a containerd task through the state its
// shim keeps. Each answers with the PID whose network namespace plumb works in.
#pragma once

#include <string>

#include "base/result.h"

namespace plumb::cli {

struct RuntimeGuest {
  std::string id;  // the runtime's full id
  int pid = 0;
};

// Where each runtime answers; PLUMB_DOCKER_SOCK, PLUMB_PODMAN_SOCK and PLUMB_CONTAINERD_STATE
// override them (tests, rootless set-ups).
std::string dockerSocket();
std::string podmanSocket();

// A container by name, id or unique id prefix, through the Engine API at socket (Docker's, or
// podman's compatible one). A container that is starting is waited for (pipework did the
// same) up to wait_ms; one that is not running is a clear error, unless running=false (then
// pid is 0: `del` of a container that has stopped).
Result<RuntimeGuest> engineContainer(const std::string& runtime, const std::string& socket,
                                     const std::string& name, bool running = true,
                                     int wait_ms = 10000);

// A containerd task: "[namespace/]id" (namespace "default" when none is given).
Result<RuntimeGuest> containerdTask(const std::string& ref);

}  // namespace plumb::cli
