#include "plugin/proxy/pipe_pool.h"

#include <fcntl.h>

#include <algorithm>

namespace plumb::proxy {

PipePool::PipePool(size_t max_idle, int size_bytes)
    : max_idle_(max_idle), size_bytes_(size_bytes) {}

PipePool::~PipePool() = default;

Result<std::unique_ptr<Pipe>> PipePool::acquire() {
  if (!idle_.empty()) {
    auto p = std::move(idle_.back());
    idle_.pop_back();
    ++in_use_;
    return p;
  }
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return failErrno(errno, "failed to create a pipe");
  auto p = std::make_unique<Pipe>();
  p->read_end.reset(fds[0]);
  p->write_end.reset(fds[1]);
  // A larger pipe moves more per splice; where the per-user pipe budget refuses it the default
  // size still works.
  if (size_bytes_ > 0) (void)::fcntl(fds[1], F_SETPIPE_SZ, size_bytes_);
  int cap = ::fcntl(fds[1], F_GETPIPE_SZ);
  if (cap > 0) p->capacity = static_cast<size_t>(cap);
  smallest_ = std::min(smallest_, p->capacity);
  ++created_;
  ++in_use_;
  return p;
}

void PipePool::release(std::unique_ptr<Pipe> pipe, bool empty) {
  if (!pipe) return;
  --in_use_;
  if (empty && idle_.size() < max_idle_) idle_.push_back(std::move(pipe));
}

}  // namespace plumb::proxy
