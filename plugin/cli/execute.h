// Carries out a parsed pipework-style command on the engine, printing a line (or JSON).
#pragma once

#include <string>

#include "plugin/cli/grammar.h"

namespace plumb::cli {

struct Options {
  bool json = false;
  bool dry_run = false;
  std::string state_dir;
  std::string ovsdb;         // --ovsdb: ovsdb-server's socket (else $PLUMB_OVSDB, the default)
  std::string ovs_datapath;  // --ovs-datapath: for an ovs* bridge plumb creates
};

// Returns the process exit code; errors are one line on stderr.
int execute(const Command& cmd, const Options& opts);

// An error for the user: one line on stderr ("plumb: ..."), or {"error": ...} on stdout with
// --json. Returns the exit status, 1.
int failWith(const std::string& message, const Options& opts);

}  // namespace plumb::cli
