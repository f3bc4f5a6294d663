// The CNI front end: one entry point taking the environment and stdin, returning what goes to
// stdout and the exit code. Everything CNI-specific (env rules, error codes, result versions,
// IPAM delegation) lives here; the engine below never sees CNI JSON.
#pragma once

#include <map>
#include <string>

namespace plumb::core {
class StorePool;
}  // namespace plumb::core

namespace plumb::cni {

// The spec's error codes, and plumb's own above 100.
enum Code : int {
  kIncompatibleVersion = 1,
  kUnsupportedField = 2,
  kUnknownContainer = 3,
  kInvalidEnvironment = 4,
  kIoFailure = 5,
  kDecodeFailure = 6,
  kInvalidConfig = 7,
  kTryAgainLater = 11,
  kPluginNotAvailable = 50,
  kFailed = 100,            // the kernel or the engine refused
  kAddressExhausted = 101,  // no free address in the configured ranges
  kAlreadyExists = 102,     // the container already has this interface on this network
};

struct Invocation {
  std::map<std::string, std::string> env;
  std::string input;  // stdin
};

struct Output {
  int exit_code = 0;
  std::string text;  // stdout: a result, version info, or an error object
};

// With `stores` (the resident service's, plugin/cni/resident.h), a call whose dataDir is the
// pool's takes a connection from it rather than opening the store cold.
Output run(const Invocation& in, core::StorePool* stores = nullptr);

// What run() checks before it looks at the host (the command, the configuration, the
// environment, ADD's request as a whole), and nothing else: run()'s refusal when it would
// refuse, else exit code 0 and no text. The CNI fuzzer's entry point.
Output check(const Invocation& in);

}  // namespace plumb::cni
