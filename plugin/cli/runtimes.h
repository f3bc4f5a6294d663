// Container runtimes as guests: a Docker or podman container is asked for through the Engine
// API on its unix socket (plugin/core/runtime_api.h) or, for podman without its service,
// through `podman container inspect`; a containerd task through the state its shim keeps. Each
// answers with the PID whose network namespace plumb works in.
#pragma once

#include <string>

#include "base/result.h"

namespace plumb::cli {

struct RuntimeGuest {
  std::string id;  // the runtime's full id
  int pid = 0;
  std::string hosts_path;  // the container's /etc/hosts on the host (Docker's HostsPath), if any
};

// A container by name, id or unique id prefix. A container that is starting is waited for
// (pipework did the same) up to wait_ms; one that is not running is a clear error, unless
// running=false (then pid is 0: `del` of a container that has stopped).
//
// Docker is asked through its Engine API. podman through its compatible API when its socket
// is there (/run/podman/podman.sock, or PLUMB_PODMAN_SOCK), else through `podman container
// inspect` (PLUMB_PODMAN names the program).
Result<RuntimeGuest> dockerContainer(const std::string& name, bool running = true,
                                     int wait_ms = 10000);
Result<RuntimeGuest> podmanContainer(const std::string& name, bool running = true,
                                     int wait_ms = 10000);

// A containerd task: "[namespace/]id" (namespace "default" when none is given), found by the
// PID its shim records under a standalone containerd's state or dockerd's own containerd (or
// PLUMB_CONTAINERD_STATE).
Result<RuntimeGuest> containerdTask(const std::string& ref);

}  // namespace plumb::cli
