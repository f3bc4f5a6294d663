// Failpoints, for tests that walk a crash or a failure over every step of an attach or a
// detach. Built in only with -DPLUMB_FAILPOINTS=ON (the sanitizer build; never a release):
// PLUMB_FAILPOINT="VERB:N:ACTION" in the environment makes the Nth failpoint of VERB (add:
// before each of attach's steps; del: before each part of detach; check: before each of
// CHECK's reads) kill the process with
// SIGKILL (ACTION kill) or fail with "failpoint VERB:N" (ACTION error). Without the option, or
// the variable, a failpoint is nothing.
#pragma once

#include "base/result.h"

namespace plumb::core {

#ifdef PLUMB_FAILPOINTS
Status failpoint(const char* verb);
#else
inline Status failpoint(const char*) { return {}; }
#endif

}  // namespace plumb::core
