#include "plugin/core/netns_watch.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdlib>
#include <vector>

namespace plumb::core {
namespace {

// "/proc/1234/ns/net" -> 1234; 0 for any other path.
pid_t procPid(const std::string& path) {
  const std::string prefix = "/proc/", suffix = "/ns/net";
  if (path.rfind(prefix, 0) != 0 || path.size() <= prefix.size() + suffix.size() ||
      path.compare(path.size() - suffix.size(), suffix.size(), suffix) != 0)
    return 0;
  std::string digits = path.substr(prefix.size(), path.size() - prefix.size() - suffix.size());
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos) return 0;
  return static_cast<pid_t>(std::atol(digits.c_str()));
}

}  // namespace

NetnsWatch::NetnsWatch(Gone gone) : gone_(std::move(gone)) {}

Result<std::unique_ptr<NetnsWatch>> NetnsWatch::start(Gone gone) {
  std::unique_ptr<NetnsWatch> w(new NetnsWatch(std::move(gone)));
  w->inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
  if (!w->inotify_.valid()) return failErrno(errno, "failed to watch netns paths (inotify)");
  w->wake_.reset(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  if (!w->wake_.valid()) return failErrno(errno, "failed to watch netns paths (eventfd)");
  w->thread_ = std::thread([p = w.get()] { p->run(); });
  return w;
}

NetnsWatch::~NetnsWatch() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
}

void NetnsWatch::wake() {
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof(one));
}

Status NetnsWatch::watch(const std::string& path) {
  std::lock_guard lock(mu_);
  if (paths_.count(path)) return {};
  Watched w;
  if (pid_t pid = procPid(path)) {
    w.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
    if (!w.pidfd.valid() && errno != ESRCH)
      return failErrno(errno, "failed to watch netns " + path);
    w.gone = !w.pidfd.valid();  // its process had exited
  } else {
    size_t slash = path.rfind('/');
    std::string dir =
        slash == 0 || slash == std::string::npos ? std::string(1, '/') : path.substr(0, slash);
    w.wd = ::inotify_add_watch(inotify_.get(), dir.c_str(),
                               IN_DELETE | IN_MOVED_FROM | IN_DELETE_SELF | IN_UNMOUNT);
    if (w.wd < 0) return failErrno(errno, "failed to watch netns " + path);
    dirs_[w.wd] = dir;
    // Removed before the watch began: inotify will not tell.
    struct stat st {};
    w.gone = ::stat(path.c_str(), &st) != 0;
  }
  paths_.emplace(path, std::move(w));
  wake();
  return {};
}

void NetnsWatch::unwatch(const std::string& path) {
  std::lock_guard lock(mu_);
  auto it = paths_.find(path);
  if (it == paths_.end()) return;
  int wd = it->second.wd;
  paths_.erase(it);
  // A directory's watch stays while another path in it is watched (inotify gives one wd per
  // directory).
  bool shared = false;
  for (const auto& [p, w] : paths_) shared = shared || (wd >= 0 && w.wd == wd);
  if (wd >= 0 && !shared) {
    (void)::inotify_rm_watch(inotify_.get(), wd);
    dirs_.erase(wd);
  }
  wake();
}

void NetnsWatch::report(const std::string& path) {
  unwatch(path);
  gone_(path);
}

void NetnsWatch::run() {
  for (;;) {
    std::vector<pollfd> fds{{wake_.get(), POLLIN, 0}, {inotify_.get(), POLLIN, 0}};
    std::vector<std::string> pid_paths;
    std::vector<std::string> already_gone;
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      for (const auto& [path, w] : paths_) {
        if (w.gone) {
          already_gone.push_back(path);
        } else if (w.pidfd.valid()) {
          fds.push_back({w.pidfd.get(), POLLIN, 0});
          pid_paths.push_back(path);
        }
      }
    }
    for (const auto& p : already_gone) report(p);
    if (!already_gone.empty()) continue;
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents) {
      uint64_t n;
      while (::read(wake_.get(), &n, sizeof(n)) > 0) {
      }
    }
    if (fds[1].revents) {
      alignas(inotify_event) char buf[4096];
      ssize_t len;
      std::vector<std::string> gone;
      while ((len = ::read(inotify_.get(), buf, sizeof(buf))) > 0) {
        std::lock_guard lock(mu_);
        for (char* p = buf; p < buf + len;) {
          auto* ev = reinterpret_cast<inotify_event*>(p);
          p += sizeof(inotify_event) + ev->len;
          auto dir = dirs_.find(ev->wd);
          if (dir == dirs_.end()) continue;
          std::string full = dir->second;
          full.push_back('/');
          if (ev->len > 0) full.append(ev->name);
          for (const auto& [path, w] : paths_) {
            if (w.wd != ev->wd) continue;
            bool named = ev->len > 0 && path == full;
            if (named || (ev->mask & (IN_DELETE_SELF | IN_UNMOUNT | IN_IGNORED)))
              gone.push_back(path);
          }
        }
      }
      for (const auto& p : gone) report(p);
    }
    for (size_t i = 2; i < fds.size(); ++i)
      if (fds[i].revents) report(pid_paths[i - 2]);
  }
}

}  // namespace plumb::core
