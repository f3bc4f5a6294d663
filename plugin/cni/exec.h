// Running another CNI plugin (delegated IPAM): found in CNI_PATH, given the same environment
// with CNI_COMMAND set, the configuration on stdin; its stdout comes back.
#pragma once

#include <map>
#include <string>
#include <string_view>

#include "base/result.h"

namespace plumb::cni {

struct PluginRun {
  int exit_code = 0;
  std::string out;
};

// env: the variables to run with (the whole environment). The plugin name may not hold '/'.
Result<PluginRun> execPlugin(const std::string& cni_path, const std::string& name,
                             const std::map<std::string, std::string>& env, std::string_view input);

}  // namespace plumb::cni
