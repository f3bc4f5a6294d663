// A plugin invocation as a runtime makes it: the environment (CNI_COMMAND, CNI_CONTAINERID,
// CNI_NETNS, CNI_IFNAME, CNI_ARGS, CNI_PATH, ...) and the configuration on stdin, through
// every check plumb makes before it looks at the host (cni::check). The input is NAME=VALUE
// lines, then a line "--", then stdin. Whatever the answer, it is one JSON object a runtime
// can read.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/json.h"
#include "plugin/cni/cni.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  cni::Invocation in;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line == "--") break;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    in.env[line.substr(0, eq)] = line.substr(eq + 1);
  }
  if (pos < text.size()) in.input = text.substr(pos);
  auto out = cni::check(in);
  if (out.text.empty()) return 0;
  auto j = json_read::parse(out.text);
  if (!j.ok() || !j->is_object()) std::abort();
  // A refusal carries the spec's fields; the exit code says it failed.
  if (out.exit_code != 0 && (!j->contains("code") || !j->contains("msg"))) std::abort();
  return 0;
}
