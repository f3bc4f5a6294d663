#include "plugin/core/steps.h"

#include <chrono>

#include "base/log.h"
#include "plugin/core/failpoint.h"

namespace plumb::core {

void Rollback::run() {
  while (!undo_.empty()) {
    Entry e = std::move(undo_.back());
    undo_.pop_back();
    log::get("core")->debug("undo: {}", e.what);
    e.undo();
  }
}

Status runSteps(const std::vector<Step>& steps) {
  Rollback rollback;
  auto logger = log::get("core");
  for (const auto& step : steps) {
    auto t0 = std::chrono::steady_clock::now();
    auto st = failpoint("add");
    if (st.ok()) st = step.apply();
    if (logger->should_log(spdlog::level::debug)) {
      auto us = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - t0)
                    .count();
      logger->debug("step: {} ({} us)", step.what, us);
    }
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
