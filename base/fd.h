// UniqueFd: sole owner of a file descriptor; closes it once. writeAll, sendAll: all of a
// buffer, or false.
#pragma once

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <string_view>
#include <utility>

namespace plumb {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  UniqueFd(UniqueFd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  ~UniqueFd() { reset(); }

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  int release() { return std::exchange(fd_, -1); }
  void reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

namespace detail {
// Calls put with what is left until all of data is taken; false on an error or when nothing
// more is taken (the reader is gone). An interrupted call is made again.
template <class Put>
bool putAll(std::string_view data, Put put) {
  while (!data.empty()) {
    ssize_t n = put(data);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}
}  // namespace detail

// All of data to fd (a pipe, a file, a terminal) with write(2).
inline bool writeAll(int fd, std::string_view data) {
  return detail::putAll(data, [fd](std::string_view d) { return ::write(fd, d.data(), d.size()); });
}

// All of data to a socket, without SIGPIPE when the peer has gone (MSG_NOSIGNAL).
inline bool sendAll(int fd, std::string_view data) {
  return detail::putAll(
      data, [fd](std::string_view d) { return ::send(fd, d.data(), d.size(), MSG_NOSIGNAL); });
}

}  // namespace plumb
