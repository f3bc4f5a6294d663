#include "plugin/core/runtime_api.h"

#include <cstdio>
#include <cstdlib>

namespace plumb::core {

std::string dockerSocket() {
  const char* v = std::getenv("PLUMB_DOCKER_SOCK");
  return v && *v ? v : "/var/run/docker.sock";
}

std::string apiSince(std::chrono::system_clock::time_point t) {
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  char out[32];
  (void)std::snprintf(out, sizeof(out), "%lld.%09lld", static_cast<long long>(ns / 1000000000),
                      static_cast<long long>(ns % 1000000000));
  return out;
}

Result<ApiReply> apiGet(const std::string& socket, const std::string& path, long timeout_ms) {
  auto r = httpRequest(HttpTarget{"http://localhost", socket}, path, "", timeout_ms);
  if (!r.ok()) return fail(Errc::kNotFound, r.error().message);  // callers: nothing answers
  return r;
}

Result<bool> apiFirstBytes(const std::string& socket, const std::string& path, long timeout_ms) {
  return httpFirstBytes(HttpTarget{"http://localhost", socket}, path, timeout_ms);
}

}  // namespace plumb::core
