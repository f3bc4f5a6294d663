// Finding a guest's network namespace: a netns name (/run/netns/NAME), a netns path, a PID, a
// Docker container (name, id or short id; or docker:NAME), podman:NAME or containerd:[NS/]ID.
#pragma once

#include <string>

#include "base/result.h"

namespace plumb::cli {

struct Guest {
  std::string netns;       // path to the guest's network namespace
  std::string id;          // how plumb's records name it: no '/' (the store key's container id)
  std::string hosts_path;  // a container's /etc/hosts as the host sees it; "" for a netns
};

// must_exist=false resolves a name whose netns is gone (for `del`).
Result<Guest> resolveGuest(const std::string& guest, bool must_exist = true);

}  // namespace plumb::cli
