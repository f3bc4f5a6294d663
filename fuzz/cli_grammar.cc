// The command line in pipework's grammar and plumb's own (route and rule arguments included):
// the input is the argument vector, arguments separated by NUL bytes.
#include <cstdint>
#include <string>
#include <vector>

#include "plugin/cli/grammar.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<std::string> args;
  std::string arg;
  for (size_t i = 0; i < size; ++i) {
    if (data[i] == '\0') {
      args.push_back(arg);
      arg.clear();
    } else {
      arg.push_back(static_cast<char>(data[i]));
    }
  }
  if (!arg.empty() || args.empty()) args.push_back(arg);
  (void)cli::isPipeworkForm(args);
  (void)cli::parseCommand(args);
  (void)cli::parseRouteArgs(args);
  (void)cli::parseRuleArgs(args);
  return 0;
}
