#include "plugin/core/dhcp.h"

#include <linux/rtnetlink.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "base/fd.h"
#include "base/process.h"
#include "netlink/addr.h"
#include "netlink/link.h"
#include "netlink/route.h"
#include "netlink/socket.h"

namespace plumb::core {
namespace {

// A program on PATH, as execvp would find it; empty when there is none.
std::string onPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(
      path && *path ? path : "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string p = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(p.c_str(), X_OK) == 0) return p;
  }
  return "";
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string word;
  while (in >> word) out.push_back(word);
  return out;
}

std::string selfExe() {
  std::string self = selfPath();
  return self.empty() ? "plumb" : self;
}

std::string lastLine(const std::string& file) {
  std::ifstream in(file);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

Status prepareDirs(const DhcpClient& client) {
  for (const auto& [source, target] : client.setup.binds) {
    std::error_code ec;
    std::filesystem::create_directories(source, ec);
    if (!ec) std::filesystem::create_directories(target, ec);
    if (ec)
      return fail(Errc::kIo,
                  "failed to make " + source + " for " + client.name + ": " + ec.message());
  }
  return {};
}

}  // namespace

std::string dhcpRunDir() {
  ::mkdir("/run/plumb", 0700);
  ::mkdir("/run/plumb/dhcp", 0700);
  return "/run/plumb/dhcp";
}

Result<DhcpClient> dhcpClient(const std::string& which, const std::string& options,
                              const std::string& ifname, const std::string& guest_name,
                              const std::string& run_dir) {
  std::vector<std::string> candidates =
      which == "dhcp" ? std::vector<std::string>{"udhcpc", "dhcpcd", "dhclient"}
                      : std::vector<std::string>{which};
  DhcpClient c;
  for (const auto& name : candidates) {
    std::string path = onPath(name);
    if (path.empty() && name == "udhcpc") {
      // busybox (busybox-static on Debian) carries udhcpc as an applet.
      std::string bb = onPath("busybox");
      if (!bb.empty()) {
        c.argv = {bb, "udhcpc"};
        c.name = name;
        break;
      }
    }
    if (!path.empty()) {
      c.argv = {path};
      c.name = name;
      break;
    }
  }
  if (c.name.empty()) {
    std::string list;
    for (const auto& n : candidates) list += (list.empty() ? "" : ", ") + n;
    return fail(Errc::kNotFound, "no DHCP client found (looked for " + list + ")");
  }
  std::string tag = guest_name + "." + ifname;
  std::string hook = selfExe();
  // plumb is every client's event script: the distribution's scripts would write the host's
  // /etc/resolv.conf and hostname, which are not the guest's. udhcpc hands its environment
  // on to the script; dhcpcd and dhclient make the script's anew, with what -e adds.
  std::string marker = "PLUMB_DHCP_HOOK=" + c.name;
  c.setup.env.push_back(marker);
  if (c.name == "udhcpc") {
    // -f: stay attached to the process plumb started (plumb detaches it); -R: release the
    // lease when stopped; discovers every second, a few at a time.
    c.argv.insert(c.argv.end(), {"-f", "-R", "-t", "5", "-T", "1", "-A", "2", "-i", ifname, "-s",
                                 hook, "-x", "hostname:" + guest_name});
  } else if (c.name == "dhcpcd") {
    // dhcpcd keeps its PID and lease files under fixed paths named by the interface alone:
    // each guest's dhcpcd gets directories of its own mounted there.
    std::string dir = run_dir + "/dhcpcd." + tag;
    c.files = {dir};
    c.setup.binds = {{dir + "/run", "/run/dhcpcd"}, {dir + "/lib", "/var/lib/dhcpcd"}};
    c.argv.insert(c.argv.end(), {"-B", "-4", "-c", hook, "-e", marker, "-h", guest_name, ifname});
  } else {
    c.files = {run_dir + "/dhclient." + tag + ".pid", run_dir + "/dhclient." + tag + ".leases"};
    c.argv.insert(c.argv.end(), {"-d", "-4", "-sf", hook, "-e", marker, "-pf", c.files[0], "-lf",
                                 c.files[1], ifname});
  }
  auto extra = split(options);
  // Options go before the interface for dhcpcd and dhclient, which end with it.
  auto at = c.name == "udhcpc" ? c.argv.end() : c.argv.end() - 1;
  c.argv.insert(at, extra.begin(), extra.end());
  return c;
}

Result<Lease> startDhcp(const netlink::Netns& ns, const DhcpClient& client,
                        const std::string& ifname, const std::string& log, int timeout_ms) {
  // Subscribed before the client starts, so its first address is not missed.
  PLUMB_ASSIGN(auto events, netlink::NlSocket::subscribeIn(ns, RTMGRP_IPV4_IFADDR));
  PLUMB_ASSIGN(auto query, netlink::NlSocket::openIn(ns));
  PLUMB_ASSIGN(auto link, netlink::getLink(query, ifname));
  PLUMB_TRY(prepareDirs(client));
  PLUMB_ASSIGN(pid_t pid, netlink::spawnIn(ns, client.argv, log, client.setup));
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto giveUp = [&](const std::string& why) -> Error {
    ::kill(pid, SIGTERM);
    (void)::waitpid(pid, nullptr, 0);
    std::string last = lastLine(log);
    return makeError(Errc::kTryAgain,
                     "no DHCP lease for " + ifname + ": " + why +
                         (last.empty() ? "" : " (" + client.name + ": " + last + ")"));
  };
  for (;;) {
    PLUMB_ASSIGN(auto addrs, netlink::listAddresses(query, AF_INET, link.index));
    for (const auto& a : addrs) {
      if (!a.prefix.addr().isLinkLocal()) {
        disown(pid);  // it runs on, beyond this call
        return Lease{a.prefix, pid};
      }
    }
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid) {
      std::string last = lastLine(log);
      return fail(Errc::kNotFound, "no DHCP lease for " + ifname + ": " + client.name + " exited" +
                                       (last.empty() ? "" : " (" + last + ")"));
    }
    if (std::chrono::steady_clock::now() >= deadline)
      return giveUp("none within " + std::to_string(timeout_ms / 1000) + " s");
    // Woken by the address notification, or by the socket's receive timeout.
    (void)events.next([](const nlmsghdr*) -> Status { return {}; });
  }
}

Result<int> runDhcpForeground(const netlink::Netns& ns, const DhcpClient& client) {
  PLUMB_TRY(prepareDirs(client));
  return netlink::execIn(ns, client.argv, client.setup);
}

bool isDhcpClient(pid_t pid, const std::string& name) {
  if (pid <= 0 || name.empty()) return false;
  std::ifstream cmd("/proc/" + std::to_string(pid) + "/cmdline");
  std::string line;
  std::getline(cmd, line, '\0');
  std::string rest;
  std::getline(cmd, rest, '\0');
  // busybox's udhcpc is "busybox udhcpc ...".
  return line.find(name) != std::string::npos || rest == name;
}

std::vector<RunningClient> runningDhcpClients() {
  std::vector<RunningClient> out;
  std::error_code ec;
  std::string self = selfExe();
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string pid_text = entry.path().filename();
    if (pid_text.find_first_not_of("0123456789") != std::string::npos) continue;
    std::ifstream env(entry.path() / "environ");
    std::string var;
    std::string client;
    std::string key;
    std::string store;
    const std::string key_head = std::string(kDhcpKeyVar) + "=";
    const std::string store_head = std::string(kDhcpStoreVar) + "=";
    while (std::getline(env, var, '\0')) {
      if (var.rfind("PLUMB_DHCP_HOOK=", 0) == 0) client = var.substr(16);
      if (var.rfind(key_head, 0) == 0) key = var.substr(key_head.size());
      if (var.rfind(store_head, 0) == 0) store = var.substr(store_head.size());
    }
    if (client.empty()) continue;
    // plumb itself run as the client's event script carries the marker too.
    std::error_code exe_ec;
    if (std::filesystem::read_symlink(entry.path() / "exe", exe_ec).string() == self) continue;
    pid_t pid = static_cast<pid_t>(std::stol(pid_text));
    if (isDhcpClient(pid, client)) out.push_back({pid, client, key, store});
  }
  return out;
}

void stopDhcp(pid_t pid, const std::string& name) {
  // Only the client plumb started: a PID reused by another program is left alone.
  if (!isDhcpClient(pid, name)) return;
  // Held before the signal, so the exit cannot be missed; the client releases its lease on the
  // way out, which needs the interface: detach deletes it only after this returns.
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  if (::kill(pid, SIGTERM) != 0 || !pidfd.valid()) return;
  pollfd p{pidfd.get(), POLLIN, 0};
  (void)::poll(&p, 1, 3000);  // readable when it has exited; a stuck client is not waited for
}

int dhcpHook(int argc, char** argv) {
  // The client's output goes to its log; nothing here may kill it.
  (void)::signal(SIGPIPE, SIG_IGN);
  auto env = [](const char* k) -> std::string {
    const char* v = std::getenv(k);
    return v ? v : "";
  };
  std::string client = env("PLUMB_DHCP_HOOK");
  // dhcpcd configures the lease itself; plumb stands in for its hooks only to keep them off
  // the host's resolv.conf and hostname.
  if (client == "dhcpcd") return 0;
  // The event, as udhcpc names it: up, deconfig or bound; the lease in udhcpc's variables.
  std::string event, ip, mask, subnet, routers;
  if (client == "dhclient") {
    std::string reason = env("reason");
    if (reason == "PREINIT") {
      event = "up";
    } else if (reason == "BOUND" || reason == "RENEW" || reason == "REBIND" || reason == "REBOOT") {
      event = "bound";
    } else if (reason == "EXPIRE" || reason == "FAIL" || reason == "RELEASE" || reason == "STOP") {
      event = "deconfig";
    } else if (reason == "TIMEOUT") {
      return 1;  // no server answered: an old lease is not taken on trust
    } else {
      return 0;
    }
    ip = env("new_ip_address");
    subnet = env("new_subnet_mask");
    routers = env("new_routers");
  } else {
    event = argc > 1 ? argv[1] : "";
    if (event == "renew") event = "bound";
    ip = env("ip");
    mask = env("mask");
    subnet = env("subnet");
    routers = env("router");
  }
  std::string ifname = env("interface");
  auto sock = netlink::NlSocket::open();  // udhcpc runs in the guest's netns: so does this
  if (!sock.ok() || ifname.empty()) return 1;
  auto link = netlink::getLink(*sock, ifname);
  if (!link.ok()) {
    (void)std::fprintf(stderr, "plumb dhcp: %s\n", link.error().message.c_str());
    return 1;
  }
  netlink::LinkChange up;
  up.up = true;
  if (event == "up") return netlink::changeLink(*sock, link->index, up).ok() ? 0 : 1;
  auto current = netlink::listAddresses(*sock, AF_INET, link->index);
  if (event == "deconfig") {
    if (current.ok()) {
      for (const auto& a : *current) (void)netlink::deleteAddress(*sock, link->index, a.prefix);
    }
    (void)netlink::changeLink(*sock, link->index, up);
    return 0;
  }
  if (event != "bound") return 0;  // leasefail, nak: udhcpc retries
  auto addr = IpAddr::parse(ip);
  if (!addr.ok()) return 1;
  int len = 32;
  if (!mask.empty()) {
    len = std::atoi(mask.c_str());
  } else if (auto m = IpAddr::parse(subnet); m.ok()) {
    len = 0;
    for (unsigned __int128 n = m->number(); n & 0x80000000; n <<= 1) ++len;
  }
  IpPrefix lease(*addr, len);
  if (current.ok()) {
    for (const auto& a : *current) {
      if (!(a.prefix == lease)) (void)netlink::deleteAddress(*sock, link->index, a.prefix);
    }
  }
  auto st = netlink::addAddress(*sock, link->index, lease);
  if (!st.ok() && st.error().code != Errc::kExists) {
    (void)std::fprintf(stderr, "plumb dhcp: %s\n", st.error().message.c_str());
    return 1;
  }
  if (!routers.empty()) {
    auto gw = IpAddr::parse(routers.substr(0, routers.find(' ')));
    if (gw.ok()) {
      netlink::Route def;
      def.dst = IpPrefix(IpAddr::fromNumber(false, 0), 0);
      def.gateway = *gw;
      def.oif = link->index;
      def.onlink = !lease.network().contains(*gw);
      (void)netlink::addRoute(*sock, def, /*replace=*/true);
    }
  }
  (void)std::fprintf(stderr, "plumb dhcp: %s %s on %s\n", event.c_str(), lease.str().c_str(),
                     ifname.c_str());
  return 0;
}

}  // namespace plumb::core
