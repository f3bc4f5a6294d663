#include "plugin/core/steps.h"

#include "base/log.h"

namespace plumb::core {

std::vector<std::string> Rollback::run() {
  std::vector<std::string> done;
  while (!undo_.empty()) {
    Entry e = std::move(undo_.back());
    undo_.pop_back();
    log::get("core")->debug("undo: {}", e.what);
    e.undo();
    done.push_back(std::move(e.what));
  }
  return done;
}

Status runSteps(const std::vector<Step>& steps) {
  Rollback rollback;
  for (const auto& step : steps) {
    log::get("core")->debug("step: {}", step.what);
    auto st = step.apply();
    if (!st.ok()) {
      log::get("core")->info("step failed, rolling back: {}: {}", step.what, st.error().message);
      return st;  // rollback runs as it goes out of scope
    }
    if (step.undo) rollback.push(step.what, step.undo);
  }
  rollback.disarm();
  return {};
}

}  // namespace plumb::core
