// The ambassadors' commands: `plumb expose`, `unexpose`, `link`, `unlink` (carried out by the
// running `plumb daemon`, reached on its control socket) and `plumb ls --links` (read from the
// store).
#pragma once

#include <string>

#include "plugin/cli/execute.h"

namespace plumb::cli {

struct LinkCommand {
  std::string verb;   // expose, unexpose, link, unlink
  std::string guest;  // as every command takes one
  std::string name;   // the service
  std::string port;   // PORT[/udp|/tcp]; empty where the verb allows it
};

int runLinkCommand(const LinkCommand& cmd, const Options& opts);
int listLinks(const Options& opts);

}  // namespace plumb::cli
