// An attachment is carried out as a list of steps. Each step that succeeds pushes its inverse;
// when a later step fails, the inverses run newest first, so a failure half-way leaves nothing
// behind. The same list, unexecuted, is what `--dry-run` prints.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "base/result.h"

namespace plumb::core {

class Rollback {
 public:
  Rollback() = default;
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;
  ~Rollback() { run(); }

  void push(std::string what, std::function<void()> undo) {
    undo_.push_back({std::move(what), std::move(undo)});
  }
  void disarm() { undo_.clear(); }
  // Runs the inverses, newest first.
  void run();

 private:
  struct Entry {
    std::string what;
    std::function<void()> undo;
  };
  std::vector<Entry> undo_;
};

struct Step {
  Step(std::string w, std::function<Status()> a, std::function<void()> u = {})
      : what(std::move(w)), apply(std::move(a)), undo(std::move(u)) {}
  std::string what;  // "create veth plm1a2b3c4d", for logs and --dry-run
  std::function<Status()> apply;
  std::function<void()> undo;  // may be empty: nothing to undo
};

// Applies steps in order. On the first failure, undoes the applied ones (newest first) and
// returns the error. On success, the undos are dropped.
Status runSteps(const std::vector<Step>& steps);

}  // namespace plumb::core
