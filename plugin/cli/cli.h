// The command line front end (pipework's grammar and plumb's own commands).
#pragma once

namespace plumb::cli {

int run(int argc, char** argv);

}  // namespace plumb::cli
