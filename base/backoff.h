// A bounded wait for what another process holds (the store's write lock, the firewall lock):
// try again after a pause that starts at 50 us and doubles up to a cap, until a deadline. The
// holders keep such locks for well under a millisecond, so the first tries are close together;
// a holder that hangs makes the caller give up (kTryAgain) instead of hanging behind it.
#pragma once

#include <unistd.h>

#include <algorithm>
#include <chrono>

namespace plumb {

class Backoff {
 public:
  Backoff(std::chrono::milliseconds limit, std::chrono::microseconds cap)
      : deadline_(std::chrono::steady_clock::now() + limit), cap_(cap) {}

  // Pauses before the next try; false, without pausing, once the limit has passed.
  bool pause() {
    if (std::chrono::steady_clock::now() >= deadline_) return false;
    ::usleep(static_cast<useconds_t>(next_.count()));
    next_ = std::min(2 * next_, cap_);
    return true;
  }

 private:
  std::chrono::steady_clock::time_point deadline_;
  std::chrono::microseconds next_{50};
  std::chrono::microseconds cap_;
};

}  // namespace plumb
