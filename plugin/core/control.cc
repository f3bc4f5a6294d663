#include "plugin/core/control.h"

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "base/fd.h"
#include "base/log.h"

namespace plumb::core {
namespace {

constexpr size_t kMaxRequest = size_t{64} * 1024;

Result<sockaddr_un> unixAddress(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return fail(Errc::kInvalid, "control socket path " + path + " is too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  return addr;
}

void setTimeouts(int fd, int ms) {
  timeval tv{ms / 1000, static_cast<suseconds_t>(ms % 1000) * 1000};
  (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  (void)::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

// Reads until the peer's FIN (the request) or kMaxRequest; false on error or overflow.
bool readToEnd(int fd, std::string& out) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return true;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > kMaxRequest) return false;
  }
}

}  // namespace

std::string controlSocketPath(const std::string& state_dir) { return state_dir + "/control.sock"; }

ControlServer::ControlServer(std::string path, UniqueFd fd, Handler handler)
    : path_(std::move(path)), fd_(std::move(fd)), handler_(std::move(handler)) {
  thread_ = std::thread([this] { serve(); });
}

Result<std::unique_ptr<ControlServer>> ControlServer::start(const std::string& path,
                                                            Handler handler) {
  PLUMB_ASSIGN(sockaddr_un addr, unixAddress(path));
  {
    UniqueFd probe(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (probe.valid() &&
        ::connect(probe.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0)
      return fail(Errc::kExists, "another plumb daemon answers on " + path);
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode))
      return fail(Errc::kExists, "failed to listen on " + path + ": something else is there");
    ::unlink(path.c_str());  // left by a daemon that was killed
  }
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failErrno(errno, "failed to listen on " + path);
  // Made 0600 from the start: no moment where another user could connect.
  mode_t old = ::umask(0177);
  int rc = ::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  int bind_errno = errno;
  ::umask(old);
  if (rc != 0) return failErrno(bind_errno, "failed to listen on " + path);
  if (::listen(fd.get(), 64) != 0) return failErrno(errno, "failed to listen on " + path);
  return std::unique_ptr<ControlServer>(new ControlServer(path, std::move(fd), std::move(handler)));
}

ControlServer::~ControlServer() {
  stopping_ = true;
  ::shutdown(fd_.get(), SHUT_RDWR);  // wakes the accept below
  if (thread_.joinable()) thread_.join();
  struct stat st {};
  if (::lstat(path_.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path_.c_str());
}

void ControlServer::serve() {
  for (;;) {
    UniqueFd c(::accept4(fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!c.valid()) {
      if (stopping_) return;  // shut down
      // Out of descriptors or memory for a moment: the caller waits in the backlog, and this
      // thread tries again in 10 ms (it is the only one serving the command line).
      if (errno != EINTR && errno != ECONNABORTED) ::usleep(10000);
      continue;
    }
    ucred cred{};
    socklen_t len = sizeof(cred);
    if (::getsockopt(c.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        cred.uid != ::geteuid()) {
      log::get("control")->warn("control request from uid {} refused", cred.uid);
      continue;
    }
    setTimeouts(c.get(), 5000);  // a stuck client cannot hold the daemon
    std::string request;
    if (!readToEnd(c.get(), request)) continue;
    (void)sendAll(c.get(), handler_(request));
  }
}

Result<std::string> controlCall(const std::string& path, const std::string& request,
                                int timeout_ms) {
  PLUMB_ASSIGN(sockaddr_un addr, unixAddress(path));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failErrno(errno, "failed to reach the plumb daemon on " + path);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    int e = errno;
    if (e == ENOENT || e == ECONNREFUSED)
      return fail(Errc::kNotFound, "no plumb daemon answers on " + path);
    return failErrno(e, "failed to reach the plumb daemon on " + path);
  }
  setTimeouts(fd.get(), timeout_ms);
  if (!sendAll(fd.get(), request) || ::shutdown(fd.get(), SHUT_WR) != 0)
    return failErrno(errno, "failed to send to the plumb daemon on " + path);
  std::string answer;
  if (!readToEnd(fd.get(), answer))
    return fail(Errc::kIo, "the plumb daemon on " + path + " did not answer");
  return answer;
}

}  // namespace plumb::core
