// `plumb daemon`: the Docker front end's process, serving the remote network and IPAM drivers
// on /run/docker/plugins/plumb.sock until SIGTERM or SIGINT.
#pragma once

namespace plumb::docker {

int daemonMain(int argc, char** argv);

}  // namespace plumb::docker
