// DHCP for the command line's `dhcp[:<options>]` address: a real client (udhcpc, dhcpcd or
// dhclient) runs inside the guest's netns and keeps renewing the lease after plumb returns
// (pipework let the client exit with its first lease). With udhcpc, plumb itself is the
// client's event script and configures the lease through netlink.
#pragma once

#include <sys/types.h>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/netns.h"

namespace plumb::cli {

struct DhcpClient {
  std::string name;                // udhcpc, dhcpcd, dhclient
  std::vector<std::string> argv;   // how to start it, options included
  std::vector<std::string> env;    // added to its environment
  std::vector<std::string> files;  // what it writes (pid, lease files): removed by del
};

// The client for `which` ("dhcp": the first found of udhcpc, dhcpcd, dhclient, as pipework),
// with its arguments for ifname in a guest called guest_name; options are split on blanks.
Result<DhcpClient> dhcpClient(const std::string& which, const std::string& options,
                              const std::string& ifname, const std::string& guest_name,
                              const std::string& run_dir);

struct Lease {
  IpPrefix address;
  pid_t pid = 0;
};

// Starts the client in ns and waits (up to timeout_ms) for the lease's IPv4 address on
// ifname. On failure the client is stopped again; its last words are in the error.
Result<Lease> startDhcp(const netlink::Netns& ns, const DhcpClient& client,
                        const std::string& ifname, const std::string& log, int timeout_ms);

// Stops the client that renews a lease, if pid is still that client.
void stopDhcp(pid_t pid, const std::string& name);

// `plumb` run by udhcpc as its event script (PLUMB_DHCP_HOOK set): event is argv[1]
// (deconfig, bound, renew, leasefail, nak); the lease comes in the environment.
int dhcpHook(int argc, char** argv);

}  // namespace plumb::cli
