// Tells when a guest's network namespace goes away, without polling: a netns file unlinked
// (`ip netns del`, a runtime removing /var/run/docker/netns/ID: inotify on its directory) or
// the process of a /proc/PID/ns/net path exiting (a pidfd). A link's listener keeps the netns
// itself alive in the kernel (its socket holds it), so the path is what says the guest is gone.
// One thread; `gone` runs on it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::core {

class NetnsWatch {
 public:
  using Gone = std::function<void(const std::string& path)>;
  static Result<std::unique_ptr<NetnsWatch>> start(Gone gone);
  ~NetnsWatch();
  NetnsWatch(const NetnsWatch&) = delete;
  NetnsWatch& operator=(const NetnsWatch&) = delete;

  // Thread-safe. A path already gone is reported at once.
  Status watch(const std::string& path);
  void unwatch(const std::string& path);

 private:
  struct Watched {
    int wd = -1;        // inotify watch on its directory
    UniqueFd pidfd;     // or the process it names
    bool gone = false;  // already when the watch began: reported at once
  };
  explicit NetnsWatch(Gone gone);
  void run();
  void wake();
  void report(const std::string& path);

  Gone gone_;
  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: the set changed, or stop
  std::mutex mu_;
  std::map<std::string, Watched> paths_;
  std::map<int, std::string> dirs_;  // wd -> directory
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace plumb::core
