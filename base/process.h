// Running another program and reading what it prints: the CNI front end's delegated IPAM
// plugins and the command line's podman lookup. argv is an argv (never a shell string).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace plumb {

struct ProcessRun {
  int exit_code = 0;  // 128 + the signal when it was killed
  std::string out;    // its stdout
  std::string err;    // its stderr, when captured
};

struct ProcessSpec {
  std::vector<std::string> argv;  // argv[0] holding no '/' is looked up in PATH
  // The whole environment it runs with; none given: this process's.
  std::vector<std::string> env;
  bool own_env = false;
  std::string_view input;                      // written to its stdin, which is then closed
  bool capture_err = true;                     // false: its stderr is this process's
  std::chrono::milliseconds deadline{120000};  // then it is killed (SIGKILL)
};

// A null-terminated array of the strings, for exec (they must outlive it). Built before fork:
// after it, a child of a threaded process makes only async-signal-safe calls.
std::vector<char*> execArray(const std::vector<std::string>& strings);

// When process pid started (/proc/PID/stat's starttime, in clock ticks since boot), or 0
// when there is no such process. A pid and its start time name one process: a pid alone may
// have been reused.
long long processStartTime(pid_t pid);

// Runs spec to its end. Failing to start it, or its running past the deadline (kTryAgain),
// is an error; a non-zero exit is not (see exit_code).
Result<ProcessRun> runProcess(const ProcessSpec& spec);

// Starts the program at path to outlive this process (a helper of plumb's own, the resident
// CNI service): its stdio on /dev/null, none of this process's other descriptors, its signals
// unblocked and at their defaults (a long-lived process blocks SIGTERM and ignores SIGPIPE),
// in a session of its own when asked. Disowned (see below); false when it could not start.
bool spawnDetached(const char* path, char* const argv[], char* const envp[],
                   bool own_session = false);

// This program's path (what /proc/self/exe links to), or "" when it cannot be read. A child
// plumb starts of itself is exec'd by it, so that ps names it plumb rather than "exe".
std::string selfPath();

// spawnDetached of plumb itself, by selfPath(); false when that cannot be read either.
bool spawnSelf(char* const argv[], char* const envp[], bool own_session = false);

// A child this process started and will not wait for (a helper, an announcer, a DHCP client).
// A plugin process exits first and init reaps it; a long-lived process (the Docker daemon, the
// resident CNI service) must reap it, or it stays a zombie, which still looks alive to a
// kill(pid, 0). Each call reaps the disowned children that have ended.
void disown(pid_t pid);
void reapDisowned();

// Marks this process as long-lived (the Docker daemon, the resident CNI service): work that a
// plugin process leaves to a child of its own, because it exits first, a long-lived one may
// leave to a thread (cheaper than forking a large, threaded process).
void markLongLived();
bool isLongLived();

}  // namespace plumb
