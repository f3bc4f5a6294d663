// The command line's DHCP against a real server: dnsmasq serving a bridge in the test's host
// namespace, udhcpc (busybox) in the guest, the lease renewed while plumb is long gone.
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "harness.h"

namespace plumb::testing {
namespace {

class Dhcp : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    if (sh("command -v dnsmasq >/dev/null").rc != 0) GTEST_SKIP() << "dnsmasq is not installed";
    inHost(
        "ip link add brdhcp type bridge && ip addr add 198.18.60.1/24 dev brdhcp && ip link "
        "set brdhcp up");
    // The shortest lease dnsmasq grants (2 minutes): the client renews after one.
    auto pid = sh("ip netns exec " + host() +
                  " dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=brdhcp "
                  "--bind-interfaces --dhcp-range=198.18.60.100,198.18.60.150,255.255.255.0,2m "
                  "--dhcp-option=3,198.18.60.1 --dhcp-option=6,198.18.60.1 "
                  "--dhcp-option=15,plumb.test --dhcp-leasefile=" +
                  state_.path() + "/leases --log-dhcp >" + log() + " 2>&1 & echo $!");
    dnsmasq_ = std::stoi(pid.out);
    for (int i = 0; i < 100 && sh("grep -q 'DHCP, IP range' " + log()).rc != 0; ++i) usleep(20000);
    host_files_ = hostFiles();
  }
  void TearDown() override {
    if (dnsmasq_ > 0) ::kill(dnsmasq_, SIGTERM);
    // The server hands out a DNS server and a domain: no client may write them into the host's
    // resolv.conf (they are the guest's), nor rename the host.
    EXPECT_EQ(hostFiles(), host_files_) << "the host's resolv.conf or hostname changed";
    NetnsTest::TearDown();
  }
  static std::string hostFiles() {
    return sh("ls -l --time-style=full-iso /etc/resolv.conf; cat /etc/resolv.conf; hostname").out;
  }
  std::string log() const { return state_.path() + "/dnsmasq.log"; }
  int acks() { return std::stoi(sh("grep -c DHCPACK " + log() + " || true").out); }
  Cmd plumb(const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " + args);
  }
  int dnsmasq_ = 0;
  std::string host_files_;
};

TEST_F(Dhcp, LeaseFromDnsmasqIsRenewedAndReleased) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  auto r = plumb("brdhcp " + g1 + " dhcp");
  ASSERT_EQ(r.rc, 0) << r.out << sh("cat " + log()).out;
  EXPECT_NE(r.out.find("198.18.60."), std::string::npos) << r.out;
  auto addr = in(g1, "ip -4 -o addr show eth1").out;
  EXPECT_NE(addr.find("inet 198.18.60."), std::string::npos) << addr;
  EXPECT_NE(in(g1, "ip route show default").out.find("via 198.18.60.1 dev eth1"),
            std::string::npos);
  EXPECT_TRUE(ping(g1, "198.18.60.1"));
  EXPECT_NE(sh("grep DHCPACK " + log()).out.find(g1), std::string::npos)
      << "the guest's name is sent as its hostname";
  auto ls = json::parse(plumb("ls --json").out, nullptr, false);
  ASSERT_TRUE(ls.is_array() && ls.size() == 1u);
  EXPECT_NE(ls[0]["addresses"].dump().find("198.18.60."), std::string::npos) << ls.dump();
  auto again = plumb("brdhcp " + g1 + " dhcp");
  EXPECT_EQ(again.rc, 0) << again.out;
  EXPECT_NE(again.out.find("already attached"), std::string::npos) << again.out;
  auto other = plumb("brdhcp " + g1 + " 198.18.60.9/24");
  EXPECT_NE(other.out.find("addressing DHCP (asked static)"), std::string::npos) << other.out;

  // Renewal at half the lease (60 s), by the client plumb left running.
  int before = acks();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(80);
  while (acks() == before && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
  EXPECT_GT(acks(), before) << "the lease was not renewed\n" << sh("cat " + log()).out;
  EXPECT_EQ(in(g1, "ip -4 -o addr show eth1").out, addr) << "the same address after renewal";

  ASSERT_EQ(plumb("del " + g1).rc, 0);
  // The release is on the wire before del returns; dnsmasq logs it when it is next scheduled,
  // which on a loaded machine (CI runs two sanitizer builds' tests at once) takes a while.
  for (int i = 0; i < 500 && sh("grep -q DHCPRELEASE " + log()).rc != 0; ++i) usleep(20000);
  EXPECT_EQ(sh("grep -c DHCPRELEASE " + log()).out, "1\n")
      << "del stops the client, which releases the lease\n"
      << sh("cat " + log()).out;
  // It releases, runs its deconfig event (plumb again), then exits.
  std::string left;
  for (int i = 0; i < 250; ++i) {
    left = sh("pgrep -f '[u]dhcpc.*hostname:" + g1 + "' || true").out;
    if (left.empty()) break;
    usleep(20000);
  }
  EXPECT_EQ(left, "") << "udhcpc is still running";
}

// plumb doctor knows a running client for its attachment's, and says so when it stopped: the
// lease is no longer renewed.
TEST_F(Dhcp, DoctorSeesTheClientAndWhenItStopped) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  auto r = plumb("brdhcp " + g1 + " dhcp");
  ASSERT_EQ(r.rc, 0) << r.out << sh("cat " + log()).out;
  auto healthy = plumb("doctor");
  EXPECT_EQ(healthy.rc, 0) << healthy.out;
  EXPECT_EQ(healthy.out, "no differences: the store and the kernel agree\n");
  auto client = sh("pgrep -f '[u]dhcpc.*hostname:" + g1 + "'").out;
  ASSERT_FALSE(client.empty());
  client = client.substr(0, client.find('\n'));
  sh("kill -9 " + client);
  std::string out;
  for (int i = 0; i < 250; ++i) {
    out = plumb("doctor").out;
    if (out.find("dhcp-stopped") != std::string::npos) break;
    usleep(20000);
  }
  EXPECT_NE(out.find("dhcp-stopped brdhcp/"), std::string::npos) << out;
  EXPECT_NE(out.find("(udhcpc, pid " + client + ") is not running"), std::string::npos) << out;
  auto fixed = plumb("doctor --fix");
  EXPECT_EQ(fixed.rc, 1) << "a stopped client is reported, not fixed: " << fixed.out;
  ASSERT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_EQ(plumb("doctor").out, "no differences: the store and the kernel agree\n");
}

// dhcpcd and dhclient, where installed, each for two guests at once whose interfaces have the
// same name (dhcpcd's PID and lease files are named by the interface alone).
TEST_F(Dhcp, DhcpcdAndDhclientServeTwoGuestsAtOnce) {
  int tried = 0;
  for (const std::string client : {"dhcpcd", "dhclient"}) {
    if (sh("command -v " + client + " >/dev/null").rc != 0) continue;
    ++tried;
    std::vector<std::string> guests;
    for (const std::string n : {"1", "2"}) {
      makeNetns(client + n);
      guests.push_back(nsName(client + n));
    }
    std::vector<std::string> addrs;
    for (const auto& g : guests) {
      auto r = plumb("brdhcp " + g + " " + client);
      ASSERT_EQ(r.rc, 0) << client << ": " << r.out;
      auto addr = in(g, "ip -4 -o addr show eth1").out;
      EXPECT_NE(addr.find("inet 198.18.60."), std::string::npos) << client;
      EXPECT_NE(in(g, "ip route show default").out.find("via 198.18.60.1 dev eth1"),
                std::string::npos)
          << client;
      EXPECT_TRUE(ping(g, "198.18.60.1")) << client;
      addrs.push_back(addr.substr(addr.find("inet ")));
    }
    EXPECT_NE(addrs[0], addrs[1]) << client << ": two leases";
    // This test's clients only, found by their guest's netns: other tests may run clients on
    // an eth1 of their own, and dhcpcd rewrites its command line.
    auto running = [&] {
      std::string names;
      for (const auto& g : guests) {
        names += sh("for p in $(ip netns pids " + g +
                    "); do cat /proc/$p/comm; done 2>/dev/null | "
                    "grep -x " +
                    client + " || true")
                     .out;
      }
      return names;
    };
    EXPECT_NE(running(), "") << client << " runs";
    for (const auto& g : guests) ASSERT_EQ(plumb("del " + g).rc, 0) << client;
    std::string left;
    for (int i = 0; i < 250; ++i) {
      left = running();
      if (left.empty()) break;
      usleep(20000);
    }
    EXPECT_EQ(left, "") << client << " was stopped";
  }
  if (tried == 0) GTEST_SKIP() << "neither dhcpcd nor dhclient is installed";
  EXPECT_EQ(sh("ls /run/plumb/dhcp | grep -c " + nsName("") + " || true").out, "0\n")
      << "files removed";
}

// -f: the client stays in the foreground; when it ends, so does plumb, and the attachment goes.
TEST_F(Dhcp, ForegroundClientHoldsTheAttachment) {
  auto g1 = nsName("fg");
  makeNetns("fg");
  auto started =
      inHost("(" + std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state -f brdhcp " +
             g1 + " udhcpc >" + state_.path() + "/fg.out 2>&1; echo \"rc=$?\" >>" + state_.path() +
             "/fg.out) >/dev/null 2>&1 & echo $!");
  ASSERT_EQ(started.rc, 0);
  std::string addr;
  for (int i = 0; i < 250 && addr.find("inet 198.18.60.") == std::string::npos; ++i) {
    usleep(20000);
    addr = in(g1, "ip -4 -o addr show eth1 2>/dev/null || true").out;
  }
  EXPECT_NE(addr.find("inet 198.18.60."), std::string::npos)
      << sh("cat " + state_.path() + "/fg.out").out;
  EXPECT_TRUE(ping(g1, "198.18.60.1"));
  EXPECT_NE(plumb("ls").out.find(g1), std::string::npos);
  auto client = sh("pgrep -f '[u]dhcpc.*hostname:" + g1 + "'").out;
  ASSERT_FALSE(client.empty()) << "udhcpc runs";
  sh("kill " + client);
  std::string out;
  for (int i = 0; i < 250 && out.find("rc=") == std::string::npos; ++i) {
    usleep(20000);
    out = sh("cat " + state_.path() + "/fg.out").out;
  }
  EXPECT_NE(out.find("udhcpc ended in the foreground"), std::string::npos) << out;
  EXPECT_NE(out.find("rc=1"), std::string::npos) << out;
  EXPECT_NE(in(g1, "ip link show eth1").rc, 0) << "the attachment went with the client";
  EXPECT_EQ(plumb("ls --json").out, "[]\n");
}

TEST_F(Dhcp, NoLeaseUndoesTheAttachmentAndNoClientChangesNothing) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  // A bridge no server serves; -n: udhcpc gives up after its discovers instead of waiting on.
  auto r = plumb("brnone " + g1 + " udhcpc:-n");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no DHCP lease for eth1: udhcpc exited"), std::string::npos) << r.out;
  EXPECT_NE(in(g1, "ip link show eth1").rc, 0) << "the attachment was undone";
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -c ': plm' || true").out, "0\n");
  EXPECT_EQ(plumb("ls --json").out, "[]\n");
  // A client that is not there (a PATH without it, whatever this machine has installed) is
  // found out before anything changes.
  std::string before = hostSnapshot();
  auto missing = inHost("env PATH=" + state_.path() + "/empty-path " + PLUMB_BIN + " --state-dir " +
                        state_.path() + "/state brdhcp " + g1 + " dhcpcd");
  EXPECT_EQ(missing.rc, 1);
  EXPECT_NE(missing.out.find("no DHCP client found (looked for dhcpcd)"), std::string::npos)
      << missing.out;
  EXPECT_EQ(hostSnapshot(), before) << "a missing client is found out before anything changes";
}

}  // namespace
}  // namespace plumb::testing
