#include "netlink/sysctl.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>

#include "base/fd.h"

namespace plumb::netlink {
namespace {

std::string sysctlPath(std::string key) {
  // Interface names may hold dots ("eth0.100"): only turn dots into slashes before them when
  // the key is dotted throughout.
  if (key.find('/') == std::string::npos) std::replace(key.begin(), key.end(), '.', '/');
  return "/proc/sys/" + key;
}

Status writeHere(const std::string& key, const std::string& value) {
  std::string path = sysctlPath(key);
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CLOEXEC));
  if (!fd.valid()) return failErrno(errno, "failed to set sysctl " + key);
  if (::write(fd.get(), value.data(), value.size()) != static_cast<ssize_t>(value.size())) {
    return failErrno(errno, "failed to set sysctl " + key);
  }
  return {};
}

Result<std::string> readHere(const std::string& key) {
  std::string path = sysctlPath(key);
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return failErrno(errno, "failed to read sysctl " + key);
  char buf[256];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n < 0) return failErrno(errno, "failed to read sysctl " + key);
  std::string v(buf, static_cast<size_t>(n));
  while (!v.empty() && (v.back() == '\n' || v.back() == ' ')) v.pop_back();
  return v;
}

}  // namespace

Status writeSysctl(const Netns* ns, const std::string& key, const std::string& value) {
  if (!ns) return writeHere(key, value);
  return runIn(*ns, [&] { return writeHere(key, value); });
}

Result<std::string> readSysctl(const Netns* ns, const std::string& key) {
  if (!ns) return readHere(key);
  std::string out;
  PLUMB_TRY(runIn(*ns, [&]() -> Status {
    PLUMB_ASSIGN(out, readHere(key));
    return {};
  }));
  return out;
}

}  // namespace plumb::netlink
