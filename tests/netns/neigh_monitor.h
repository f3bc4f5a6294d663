// Neighbour tests' watcher: the kernel's neighbour notifications in a namespace, as
// `ip monitor neigh` prints them.
#pragma once

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <functional>
#include <string>

extern char** environ;

namespace plumb::testing {

// `ip monitor neigh` in a namespace, read line by line: waits on the kernel's neighbour
// notifications, not on a clock (every wait is bounded).
class NeighMonitor {
 public:
  explicit NeighMonitor(const std::string& ns) {
    int fds[2];
    if (pipe(fds) != 0) return;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], 1);
    posix_spawn_file_actions_addclose(&fa, fds[0]);
    std::string n = ns;
    char* argv[] = {const_cast<char*>("ip"),      const_cast<char*>("-n"),    n.data(),
                    const_cast<char*>("monitor"), const_cast<char*>("neigh"), nullptr};
    if (posix_spawnp(&pid_, "ip", &fa, nullptr, argv, environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    fd_ = fds[0];
  }
  ~NeighMonitor() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    if (fd_ >= 0) close(fd_);
  }
  // `ip monitor` subscribes some time after it starts (long under load): an entry is planted
  // under a new MAC each round until the monitor reports one. plant is given the command
  // "ip neigh replace lladdr MAC" and adds an address and a device to it.
  bool listening(const std::function<bool(const std::string& plant)>& plant) {
    for (int round = 0; round < 100; ++round) {
      char mac[32];
      std::snprintf(mac, sizeof(mac), "02:00:00:00:%02x:fe", round);
      if (!plant("ip neigh replace lladdr " + std::string(mac))) return false;
      if (waitFor(mac, 1, std::chrono::milliseconds(100))) return true;
    }
    return false;
  }
  // Reads until `want` lines containing `text` have come, or `wait` has passed.
  bool waitFor(const std::string& text, int want = 1,
               std::chrono::milliseconds wait = std::chrono::seconds(5)) {
    auto deadline = std::chrono::steady_clock::now() + wait;
    int seen = 0;
    while (seen < want) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      deadline - std::chrono::steady_clock::now())
                      .count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) return false;
      char buf[4096];
      ssize_t n = read(fd_, buf, sizeof(buf));
      if (n <= 0) return false;
      buffer_.append(buf, static_cast<size_t>(n));
      for (size_t nl; (nl = buffer_.find('\n')) != std::string::npos; buffer_.erase(0, nl + 1)) {
        if (buffer_.substr(0, nl).find(text) != std::string::npos) ++seen;
      }
    }
    return true;
  }

 private:
  pid_t pid_ = -1;
  int fd_ = -1;
  std::string buffer_;
};

}  // namespace plumb::testing
