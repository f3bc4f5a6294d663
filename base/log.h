// One named spdlog logger per module, all writing to stderr (or a file): stdout belongs to the
// CNI result and the CLI's output.
#pragma once

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace plumb::log {

// Sets where every module logs. path empty: stderr. level: spdlog level name ("warn", "debug").
void configure(const std::string& path, const std::string& level);

// The module's logger ("netlink", "core", "cni", ...); created on first use.
std::shared_ptr<spdlog::logger> get(const std::string& module);

}  // namespace plumb::log
