// DHCP for an attachment (the command line's `dhcp[:<options>]` address): a real client (udhcpc,
// dhcpcd or dhclient) runs inside the guest's netns and keeps renewing the lease after plumb
// returns (pipework let the client exit with its first lease). plumb itself is the client's event
// script: for udhcpc and dhclient it configures the lease through netlink (dhcpcd configures
// its own), and no client's hooks write the host's /etc/resolv.conf or hostname.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <sys/types.h>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/netns.h"  // internal to plugin/core: front ends ask Engine::attach

namespace plumb::core {

struct DhcpClient {
  std::string name;                // udhcpc, dhcpcd, dhclient
  std::vector<std::string> argv;   // how to start it, options included
  netlink::ChildSetup setup;       // its environment and private state directories
  std::vector<std::string> files;  // what it writes (pid, lease files, state): removed by del
};

// Where clients' logs and state live: /run/plumb/dhcp, made when missing.
std::string dhcpRunDir();

// The client for `which` ("dhcp": the first found of udhcpc, dhcpcd, dhclient, as pipework),
// with its arguments for ifname in a guest called guest_name; options are split on blanks.
// Its files go under run_dir.
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

// Runs the client in ns in the foreground (`-f`): returns when it ends, with its exit status.
Result<int> runDhcpForeground(const netlink::Netns& ns, const DhcpClient& client);

// Whether pid is a DHCP client of that name (udhcpc, dhcpcd, dhclient), not a reused pid.
bool isDhcpClient(pid_t pid, const std::string& name);
// In a client's environment: the attachment it serves (AttachmentKey::str()), and the store
// that records it (Store::path(): one host may run several, a CNI dataDir each).
constexpr const char* kDhcpKeyVar = "PLUMB_DHCP_KEY";
constexpr const char* kDhcpStoreVar = "PLUMB_DHCP_STORE";
// The DHCP clients plumb started that are running, whichever attachment they serve: those with
// the hook's marker (PLUMB_DHCP_HOOK) in their environment (plumb doctor). A client's own
// children (dhcpcd's privilege separation) carry the same marker and key.
struct RunningClient {
  pid_t pid = 0;
  std::string name;
  std::string key;    // kDhcpKeyVar's value; "" for a client started before it was set
  std::string store;  // kDhcpStoreVar's value, likewise
};
std::vector<RunningClient> runningDhcpClients();

// Stops the client that renews a lease, if pid is still that client, and waits (up to 3 s)
// for it to exit, so that it has released the lease before its interface goes.
void stopDhcp(pid_t pid, const std::string& name);

// `plumb` run by a client as its event script (PLUMB_DHCP_HOOK names the client). udhcpc
// gives the event as argv[1] (deconfig, bound, renew, leasefail, nak) and the lease in ip,
// subnet and router; dhclient gives reason (PREINIT, BOUND, RENEW, REBIND, REBOOT, EXPIRE,
// FAIL, RELEASE, STOP, TIMEOUT) and new_ip_address, new_subnet_mask, new_routers.
int dhcpHook(int argc, char** argv);

}  // namespace plumb::core
