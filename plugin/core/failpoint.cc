#include "plugin/core/failpoint.h"

#ifdef PLUMB_FAILPOINTS
#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

namespace plumb::core {

Status failpoint(const char* verb) {
  const char* spec = std::getenv("PLUMB_FAILPOINT");
  if (!spec) return {};
  std::string s(spec);
  auto c1 = s.find(':');
  auto c2 = c1 == std::string::npos ? std::string::npos : s.find(':', c1 + 1);
  if (c2 == std::string::npos || s.compare(0, c1, verb) != 0) return {};
  static std::mutex mu;
  static std::map<std::string, int> counts;
  int n = 0;
  {
    std::lock_guard<std::mutex> lock(mu);
    n = ++counts[verb];
  }
  if (std::to_string(n) != s.substr(c1 + 1, c2 - c1 - 1)) return {};
  std::string action = s.substr(c2 + 1);
  if (action == "kill") ::kill(::getpid(), SIGKILL);
  return fail(Errc::kIo, "failpoint " + std::string(verb) + ":" + std::to_string(n));
}

}  // namespace plumb::core
#endif
