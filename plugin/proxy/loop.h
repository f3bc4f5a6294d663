// One event loop, run by one thread: an epoll set, the time read once per wakeup, periodic
// callbacks, and work posted from other threads. Handlers are borrowed: whoever registers an
// fd keeps its Handler alive until the fd is closed and the current batch of events is over
// (later() runs after it, so an object closed mid-batch is freed there).
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/forwarder.h"
#endif

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::proxy {

class Handler {
 public:
  virtual void onEvents(uint32_t events) = 0;

 protected:
  ~Handler() = default;
};

class Loop {
 public:
  static Result<std::unique_ptr<Loop>> create();
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  Status add(int fd, uint32_t events, Handler* handler);
  void remove(int fd);
  // Out of the epoll set, then closed: while another process shares the socket (a child
  // between fork and exec), a close alone would leave the registration, and its events would
  // name a freed handler.
  void close(UniqueFd& fd);

  // Until stop(); on the loop's own thread.
  void run();
  // Both thread-safe. Posted work runs on the loop's thread, in order.
  void post(std::function<void()> fn);
  void stop();

  // On the loop's thread only.
  void every(int period_ms, std::function<void()> fn);
  void after(int delay_ms, std::function<void()> fn);  // once
  void later(std::function<void()> fn);
  // Runs what later() queued, now: for an owner tearing down a loop that no longer runs.
  void runLater();
  int64_t nowMs() const { return now_ms_; }

 private:
  Loop() = default;
  class Wakeup;
  struct Periodic {
    int64_t due_ms;
    int period_ms;
    std::function<void()> fn;
  };
  void runPosted();
  void runDue();
  int timeoutMs() const;
  static int64_t clockMs();

  UniqueFd epoll_;
  UniqueFd wake_;  // eventfd
  std::unique_ptr<Wakeup> wake_handler_;
  std::mutex mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> later_;
  std::vector<Periodic> periodic_;
  bool stopping_ = false;  // guarded by mu_
  int64_t now_ms_ = 0;
};

}  // namespace plumb::proxy
