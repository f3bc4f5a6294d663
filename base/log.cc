#include "base/log.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>

#include <mutex>

namespace plumb::log {
namespace {

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::warn;

spdlog::sink_ptr sinkLocked() {
  if (!g_sink) g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  return g_sink;
}

}  // namespace

void configure(const std::string& path, const std::string& level) {
  std::lock_guard lock(g_mu);
  if (!path.empty()) {
    try {
      g_sink = std::make_shared<spdlog::sinks::basic_file_sink_mt>(path);
    } catch (const spdlog::spdlog_ex&) {
      g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    }
  }
  if (!level.empty()) g_level = spdlog::level::from_str(level);
  spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) {
    l->sinks().assign(1, g_sink ? g_sink : sinkLocked());
    l->set_level(g_level);
  });
}

std::shared_ptr<spdlog::logger> get(const std::string& module) {
  std::lock_guard lock(g_mu);
  if (auto l = spdlog::get(module)) return l;
  auto l = std::make_shared<spdlog::logger>(module, sinkLocked());
  l->set_level(g_level);
  l->set_pattern("%Y-%m-%dT%H:%M:%S.%f %l plumb/%n: %v");
  spdlog::register_logger(l);
  return l;
}

}  // namespace plumb::log
