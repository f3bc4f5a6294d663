// Network namespace handles. This file's .cc is the only place in plumb that calls setns(2):
// runIn enters a namespace on the calling thread and returns to the thread's own before it
// returns (sockets opened inside stay bound to that namespace wherever they are used), and a
// forked child may enter one for good.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <sys/types.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::netlink {

class Netns {
 public:
  Netns() = default;
  // "/run/netns/x" or "/proc/PID/ns/net" or any bind mount of a netns.
  static Result<Netns> fromPath(const std::string& path);
  static Result<Netns> fromPid(pid_t pid);
  // A name under /run/netns.
  static Result<Netns> fromName(const std::string& name);
  // The calling thread's namespace.
  static Result<Netns> current();
  // A new, empty namespace that lives as long as the handle (a place to rename a device where
  // no other name can collide).
  static Result<Netns> createTemporary();

  int fd() const { return fd_.get(); }
  bool valid() const { return fd_.valid(); }
  const std::string& path() const { return path_; }
  // Whether this is the calling thread's own namespace (the host's, for plumb).
  bool isCurrent() const;

 private:
  UniqueFd fd_;
  std::string path_;
};

// Runs fn on the calling thread inside ns and comes back; returns fn's status. Coming back
// cannot fail short of the kernel refusing a thread its own namespace: plumb aborts then
// rather than go on in the wrong one.
Status runIn(const Netns& ns, const std::function<Status()>& fn);

// Moves the calling thread into ns for good. Only for a forked child, single-threaded, that
// stays there until it exits; false when the kernel refuses (errno says why).
bool enterForGood(const Netns& ns);

// How a program started inside a netns is set up besides the netns.
struct ChildSetup {
  std::vector<std::string> env;  // added to plumb's environment
  // source -> target bind mounts. With any, the program runs in a mount namespace of its own
  // (and a UTS namespace, so it cannot rename the host) where each source covers its target:
  // a DHCP client's state there is its own, not every other guest's.
  std::vector<std::pair<std::string, std::string>> binds;
};

// Runs a program inside ns (argv, never a shell string), inheriting stdin/stdout/stderr, and
// returns its exit status. The child enters ns before exec; plumb itself never leaves its own.
Result<int> execIn(const Netns& ns, const std::vector<std::string>& argv,
                   const ChildSetup& setup = {});

// Starts a program inside ns that outlives plumb: its own session, stdin from /dev/null,
// stdout and stderr appended to log. Returns its PID.
Result<pid_t> spawnIn(const Netns& ns, const std::vector<std::string>& argv, const std::string& log,
                      const ChildSetup& setup = {});

// socket(2) created inside ns; usable from any thread afterwards.
Result<UniqueFd> socketIn(const Netns& ns, int domain, int type, int protocol);

}  // namespace plumb::netlink
