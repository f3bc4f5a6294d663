// Pipes for splice(2), lent to a TCP connection only while it has bytes in flight: an idle
// connection holds none, so it costs its two sockets and nothing else (a pipe per connection
// would add two fds to each). One pool per loop; not thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::proxy {

struct Pipe {
  UniqueFd read_end;
  UniqueFd write_end;
  size_t capacity = 65536;  // bytes it holds when full: the high watermark of a flow through it
};

class PipePool {
 public:
  // size_bytes 0: the kernel's default pipe size. At most max_idle empty pipes are kept.
  PipePool(size_t max_idle, int size_bytes);
  ~PipePool();
  PipePool(const PipePool&) = delete;
  PipePool& operator=(const PipePool&) = delete;

  // An empty pipe, from the idle ones or new.
  Result<std::unique_ptr<Pipe>> acquire();
  // empty: the pipe holds no bytes and may be lent again; otherwise it is closed (the bytes in
  // it belong to a connection that is gone).
  void release(std::unique_ptr<Pipe> pipe, bool empty);

  // The least a pipe of this pool has held when full (the kernel may give less than asked).
  size_t smallestCapacity() const { return smallest_; }
  size_t inUse() const { return in_use_; }
  size_t idle() const { return idle_.size(); }
  size_t created() const { return created_; }

 private:
  size_t max_idle_;
  int size_bytes_;
  std::vector<std::unique_ptr<Pipe>> idle_;
  size_t smallest_ = 65536;
  size_t in_use_ = 0;
  size_t created_ = 0;
};

// When a flow reads: until the bytes it holds (read, not yet written) reach high; then it
// pauses until the writer brings them down to low.
struct Watermark {
  size_t high;
  size_t low;
  // Whether reading is paused with `held` bytes in flight, given whether it was.
  bool paused(bool was_paused, size_t held) const { return was_paused ? held > low : held >= high; }
};

}  // namespace plumb::proxy
