#include "plugin/cni/exec.h"

#include <cstdlib>

#include <sys/stat.h>

#include <sstream>

#include "base/process.h"

namespace plumb::cni {
namespace {

Result<std::string> findPlugin(const std::string& cni_path, const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return fail(Errc::kInvalid, "plugin type '" + name + "' is not a plugin name");
  }
  std::stringstream dirs(cni_path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    std::string path = dir + "/" + name;
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0111)) return path;
  }
  return fail(Errc::kNotFound, "failed to find plugin \"" + name + "\" in path [" + cni_path + "]");
}

}  // namespace

Result<PluginRun> execPlugin(const std::string& cni_path, const std::string& name,
                             const std::map<std::string, std::string>& env,
                             std::string_view input) {
  PLUMB_ASSIGN(std::string path, findPlugin(cni_path, name));
  ProcessSpec spec;
  spec.argv = {path};
  for (const auto& [k, v] : env) spec.env.push_back(k + "=" + v);
  spec.own_env = true;
  spec.input = input;
  // The plugin's stderr is its log: it goes where plumb's goes.
  spec.capture_err = false;
  // A plugin that hangs must not hang plumb (and the runtime behind it) for ever: 2 minutes, or
  // $PLUMB_DELEGATE_TIMEOUT_MS.
  spec.deadline = std::chrono::minutes(2);
  if (const char* v = std::getenv("PLUMB_DELEGATE_TIMEOUT_MS"); v && *v) {
    char* end = nullptr;
    long ms = std::strtol(v, &end, 10);
    if (*end == '\0' && ms > 0) spec.deadline = std::chrono::milliseconds(ms);
  }
  auto run = runProcess(spec);
  if (!run.ok()) return fail(run.error().code, "plugin " + name + ": " + run.error().message);
  return PluginRun{run->exit_code, std::move(run->out)};
}

}  // namespace plumb::cni
