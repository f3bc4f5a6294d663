#include "plugin/proxy/loop.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>

#include <algorithm>
#include <climits>

namespace plumb::proxy {

class Loop::Wakeup final : public Handler {
 public:
  explicit Wakeup(Loop& loop) : loop_(loop) {}
  void onEvents(uint32_t /*events*/) override {
    uint64_t n;
    while (::read(loop_.wake_.get(), &n, sizeof(n)) > 0) {
    }
    loop_.runPosted();
  }

 private:
  Loop& loop_;
};

Result<std::unique_ptr<Loop>> Loop::create() {
  std::unique_ptr<Loop> loop(new Loop());
  loop->epoll_.reset(::epoll_create1(EPOLL_CLOEXEC));
  if (!loop->epoll_.valid()) return failErrno(errno, "failed to create an epoll set");
  loop->wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!loop->wake_.valid()) return failErrno(errno, "failed to create an eventfd");
  loop->wake_handler_ = std::make_unique<Wakeup>(*loop);
  PLUMB_TRY(loop->add(loop->wake_.get(), EPOLLIN, loop->wake_handler_.get()));
  loop->now_ms_ = clockMs();
  return loop;
}

Loop::~Loop() = default;

Status Loop::add(int fd, uint32_t events, Handler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
    return failErrno(errno, "failed to watch a socket");
  return {};
}

void Loop::remove(int fd) { (void)::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

void Loop::close(UniqueFd& fd) {
  if (!fd.valid()) return;
  remove(fd.get());
  fd.reset();
}

int64_t Loop::clockMs() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    posted_.push_back(std::move(fn));
  }
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof(one));  // a full counter still wakes the loop
}

void Loop::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  uint64_t one = 1;
  (void)::write(wake_.get(), &one, sizeof(one));
}

void Loop::every(int period_ms, std::function<void()> fn) {
  periodic_.push_back({now_ms_ + period_ms, period_ms, std::move(fn)});
}

void Loop::after(int delay_ms, std::function<void()> fn) {
  periodic_.push_back({now_ms_ + delay_ms, 0, std::move(fn)});
}

void Loop::later(std::function<void()> fn) { later_.push_back(std::move(fn)); }

void Loop::runLater() {
  while (!later_.empty()) {
    auto batch = std::move(later_);
    later_.clear();
    for (auto& fn : batch) fn();
  }
}

void Loop::runPosted() {
  std::vector<std::function<void()>> work;
  {
    std::lock_guard lock(mu_);
    work.swap(posted_);
  }
  for (auto& fn : work) fn();
}

void Loop::runDue() {
  for (size_t i = 0; i < periodic_.size();) {
    if (periodic_[i].due_ms > now_ms_) {
      ++i;
      continue;
    }
    auto fn = periodic_[i].fn;  // fn may add timed work (and so move the vector)
    if (periodic_[i].period_ms == 0) {
      periodic_.erase(periodic_.begin() + static_cast<long>(i));
    } else {
      periodic_[i].due_ms = now_ms_ + periodic_[i].period_ms;
      ++i;
    }
    fn();
  }
}

int Loop::timeoutMs() const {
  int64_t next = INT64_MAX;
  for (const auto& p : periodic_) next = std::min(next, p.due_ms);
  if (next == INT64_MAX) return -1;
  return static_cast<int>(std::clamp<int64_t>(next - now_ms_, 0, INT_MAX));
}

void Loop::run() {
  epoll_event events[256];
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
    }
    int n = ::epoll_wait(epoll_.get(), events, 256, timeoutMs());
    now_ms_ = clockMs();
    for (int i = 0; i < n; ++i)
      static_cast<Handler*>(events[i].data.ptr)->onEvents(events[i].events);
    runDue();
    runLater();
  }
  runPosted();  // work posted before stop() still runs (it may release what it carries)
}

}  // namespace plumb::proxy
