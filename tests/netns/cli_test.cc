// The pipework-style command line against real namespaces (guests given as netns names,
// paths and PIDs), run in the test's host namespace.
#include <algorithm>

#include "base/ip.h"
#include "harness.h"

namespace plumb::testing {
namespace {

class Cli : public NetnsTest {
 protected:
  Cmd plumb(const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " + args);
  }
};

// Issue 15: a guest's netns deleted without `plumb del` and made again under the same name;
// the same command must attach it again, not answer "already attached" from the record.
TEST_F(Cli, ARerunAfterTheGuestsNetnsWasMadeAnewAttachesAgain) {
  makeNetns("g1");
  auto g1 = nsName("g1");
  ASSERT_EQ(plumb("br-stale " + g1 + " 198.18.45.5/24").rc, 0);
  auto again = plumb("br-stale " + g1 + " 198.18.45.5/24");
  EXPECT_NE(again.out.find("already attached"), std::string::npos) << again.out;
  ASSERT_EQ(sh("ip netns del " + g1 + " && ip netns add " + g1).rc, 0);
  auto rerun = plumb("br-stale " + g1 + " 198.18.45.5/24");
  ASSERT_EQ(rerun.rc, 0) << rerun.out;
  EXPECT_NE(rerun.out.find("attached eth1 of " + g1), std::string::npos) << rerun.out;
  EXPECT_NE(in(g1, "ip -o addr show eth1").out.find("198.18.45.5/24"), std::string::npos);
  EXPECT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_EQ(inHost("ip -o link show | grep -c 'master br-stale' || true").out, "0\n");
}

TEST_F(Cli, BridgeAttachRerunAndDel) {
  makeNetns("g1");
  makeNetns("g2");
  auto g1 = nsName("g1"), g2 = nsName("g2");
  auto r = plumb("br-cli " + g1 + " 198.18.40.5/24@198.18.40.1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("attached eth1 of " + g1 + " to br-cli (bridge): 198.18.40.5/24"),
            std::string::npos)
      << r.out;
  EXPECT_NE(in(g1, "ip -o addr show eth1").out.find("198.18.40.5/24"), std::string::npos);
  EXPECT_NE(in(g1, "ip route show default").out.find("via 198.18.40.1 dev eth1"),
            std::string::npos);
  ASSERT_EQ(plumb("br-cli " + g2 + " 198.18.40.6/24").rc, 0);
  EXPECT_TRUE(ping(g1, "198.18.40.6"));

  auto again = plumb("br-cli " + g1 + " 198.18.40.5/24@198.18.40.1");
  EXPECT_EQ(again.rc, 0) << again.out;
  EXPECT_NE(again.out.find("already attached"), std::string::npos) << again.out;
  auto other = plumb("br-cli " + g1 + " 198.18.40.9/24");
  EXPECT_EQ(other.rc, 1);
  EXPECT_NE(
      other.out.find(
          "already attached to br-cli with other settings: address 198.18.40.5/24@198.18.40.1 "
          "(asked 198.18.40.9/24)"),
      std::string::npos)
      << other.out;

  auto ls = plumb("ls --json");
  auto list = json::parse(ls.out, nullptr, false);
  ASSERT_TRUE(list.is_array()) << ls.out;
  EXPECT_EQ(list.size(), 2u);
  EXPECT_EQ(list[0]["frontend"], "cli");
  // Global flags stand anywhere, before the subcommand too.
  auto before_ls = plumb("--json ls");
  EXPECT_EQ(before_ls.out, ls.out);

  EXPECT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_EQ(in(g1, "ip -o link show eth1").rc, 1);
  auto twice = plumb("del " + g1);
  EXPECT_EQ(twice.rc, 0);
  EXPECT_NE(twice.out.find("nothing to remove"), std::string::npos);
  EXPECT_EQ(plumb("del " + g2).rc, 0);
}

TEST_F(Cli, AGatewayOutsideTheSubnetGetsAHostRouteAsPipeworkGivesIt) {
  makeNetns("g1");
  auto g1 = nsName("g1");
  auto r = plumb("br-cli " + g1 + " 198.18.41.5/24@198.18.99.1");
  ASSERT_EQ(r.rc, 0) << r.out;
  // pipework: ip route add 198.18.99.1 dev eth1; ip route add default via 198.18.99.1.
  auto routes = in(g1, "ip route show").out;
  EXPECT_NE(routes.find("default via 198.18.99.1 dev eth1"), std::string::npos) << routes;
  EXPECT_EQ(routes.find("onlink"), std::string::npos) << routes;
  EXPECT_NE(routes.find("198.18.99.1 dev eth1 scope link"), std::string::npos) << routes;
  EXPECT_EQ(plumb("del " + g1).rc, 0);
}

TEST_F(Cli, LocalNameNamesTheHostEnd) {
  makeNetns("g1");
  auto g1 = nsName("g1");
  auto r = plumb("br-cli -l vethweb " + g1 + " 198.18.42.5/24");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(inHost("ip -o link show master br-cli").out.find("vethweb@"), std::string::npos);
  EXPECT_EQ(plumb("br-cli -l vethweb " + g1 + " 198.18.42.5/24").rc, 0) << "a re-run";
  auto other = plumb("br-cli -l vethother " + g1 + " 198.18.42.5/24");
  EXPECT_NE(other.out.find("host interface vethweb (asked vethother)"), std::string::npos)
      << other.out;
  // A name another interface has is refused, and nothing is left half-made.
  std::string before = hostSnapshot();
  auto taken = plumb("br-cli -i eth2 -l vethweb " + g1 + " 198.18.42.6/24");
  EXPECT_EQ(taken.rc, 1);
  EXPECT_NE(taken.out.find("host interface vethweb already exists"), std::string::npos)
      << taken.out;
  EXPECT_EQ(hostSnapshot(), before);
  inHost("ip link add notbr type veth peer name notbr2");
  auto macvlan = plumb("notbr -l vethx " + g1 + " 198.18.43.5/24");
  EXPECT_NE(macvlan.out.find("is for a veth; mode macvlan has no host end"), std::string::npos)
      << macvlan.out;
  EXPECT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_NE(inHost("ip link show vethweb").rc, 0);
}

TEST_F(Cli, MacvlanOnAnInterfaceThatIsNoBridgeWithMacAndMode) {
  ASSERT_EQ(inHost("ip link add phys0 type veth peer name phys0p && ip link set phys0 up").rc, 0);
  makeNetns("g1");
  auto g1 = nsName("g1");
  auto r = plumb("phys0 -i eth2 -m private " + g1 + " 198.18.41.5/24 U:web1");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto detail = in(g1, "ip -d -o link show eth2").out;
  EXPECT_NE(detail.find("macvlan mode private"), std::string::npos) << detail;
  // pipework's MAC for U:web1 (echo web1 | md5sum: 66ee606d50...).
  EXPECT_EQ(in(g1, "cat /sys/class/net/eth2/address").out, "02:66:ee:60:6d:50\n");
  EXPECT_EQ(plumb("del " + g1 + " -i eth2").rc, 0);
  EXPECT_EQ(in(g1, "ip -o link show eth2").rc, 1);
}

TEST_F(Cli, GuestsByPathAndPid) {
  auto path = makeNetns("g1");
  auto g1 = nsName("g1");
  ASSERT_EQ(plumb("br-cli " + path + " 198.18.42.5/24 --json").rc, 0);
  EXPECT_NE(in(g1, "ip -o addr show eth1").out.find("198.18.42.5/24"), std::string::npos);
  // A process in the guest's netns stands for a container's PID.
  auto pid = sh("ip netns exec " + g1 + " sh -c 'sleep 30 >/dev/null 2>&1 & echo $!'").out;
  pid.erase(pid.find_last_not_of("\n") + 1);
  auto r = plumb("br-cli -i eth3 " + pid + " 198.18.42.6/24");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(in(g1, "ip -o addr show eth3").out.find("198.18.42.6/24"), std::string::npos);
  EXPECT_EQ(plumb("del " + pid + " -i eth3").rc, 0);
  sh("kill " + pid);
  EXPECT_EQ(plumb("del " + path).rc, 0);
}

TEST_F(Cli, WaitReturnsOnceTheInterfaceHasCarrier) {
  makeNetns("g1");
  auto g1 = nsName("g1");
  std::string fifo = state_.path() + "/waited";
  ASSERT_EQ(sh("mkfifo " + shq(fifo)).rc, 0);
  // Inside the guest, as a container's entrypoint would run it (bounded, so a bug cannot hang).
  // When --wait returns, the guest reports eth1's carrier at that moment: a wait that returned
  // before the interface existed reports none. No clock is involved.
  sh("ip netns exec " + g1 + " sh -c " +
     shq("timeout 20 " PLUMB_BIN " --wait -i eth1; echo rc=$? carrier=$(cat "
         "/sys/class/net/eth1/carrier 2>/dev/null) > " +
         fifo) +
     " >/dev/null 2>&1 &");
  ASSERT_EQ(plumb("br-wait " + g1 + " 198.18.45.5/24").rc, 0);
  EXPECT_EQ(sh("timeout 25 cat " + shq(fifo)).out, "rc=0 carrier=1\n")
      << "--wait must return once eth1 is there with carrier, not before";
  EXPECT_EQ(plumb("del " + g1).rc, 0);
}

TEST_F(Cli, RouteAndTcInsideTheGuest) {
  makeNetns("g1");
  auto g1 = nsName("g1");
  ASSERT_EQ(plumb("br-rt " + g1 + " 198.18.46.5/24").rc, 0);
  auto add = plumb("route " + g1 + " add 198.19.46.0/24 via 198.18.46.1 metric 7");
  ASSERT_EQ(add.rc, 0) << add.out;
  EXPECT_NE(in(g1, "ip route show 198.19.46.0/24").out.find("via 198.18.46.1 dev eth1 metric 7"),
            std::string::npos);
  ASSERT_EQ(plumb("route " + g1 + " replace default via 198.18.46.1 dev eth1").rc, 0);
  EXPECT_NE(in(g1, "ip route show default").out.find("via 198.18.46.1 dev eth1"),
            std::string::npos);
  ASSERT_EQ(plumb("route " + g1 + " del 198.19.46.0/24 via 198.18.46.1").rc, 0);
  EXPECT_EQ(in(g1, "ip route show 198.19.46.0/24").out, "");
  // tc runs inside the guest with the arguments as given (an argv, never a shell line).
  ASSERT_EQ(
      plumb("tc " + g1 + " qdisc add dev eth1 root tbf rate 1mbit burst 32kbit latency 400ms").rc,
      0);
  EXPECT_NE(in(g1, "tc qdisc show dev eth1").out.find("tbf"), std::string::npos);
  EXPECT_EQ(inHost("tc qdisc show | grep -c tbf || true").out, "0\n") << "not in the host";
  ASSERT_EQ(plumb("route " + g1 + " add 198.19.47.0/24 via 198.18.46.1").rc, 0);
  EXPECT_EQ(plumb("route " + g1 + " add 198.19.47.0/24 via 198.18.46.1").rc, 0)
      << "the same route again is a no-op";
  auto other = plumb("route " + g1 + " add 198.19.47.0/24 via 198.18.46.2");
  EXPECT_EQ(other.rc, 1) << "another route to the same prefix is refused";
  EXPECT_NE(other.out.find("File exists"), std::string::npos) << other.out;
  EXPECT_EQ(plumb("del " + g1).rc, 0);
}

TEST_F(Cli, RuleInsideTheGuest) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  auto r = plumb("rule " + g1 + " add from 198.18.50.0/24 table 100 priority 1000");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(in(g1, "ip rule").out.find("1000:\tfrom 198.18.50.0/24 lookup 100"), std::string::npos)
      << in(g1, "ip rule").out;
  EXPECT_EQ(plumb("rule " + g1 + " add from 198.18.50.0/24 table 100 priority 1000").rc, 0)
      << "a re-run is a no-op";
  ASSERT_EQ(plumb("rule " + g1 + " -6 add from fd00:50::/64 to fd00:51::/64 lookup 101").rc, 0);
  EXPECT_NE(in(g1, "ip -6 rule").out.find("from fd00:50::/64 to fd00:51::/64 lookup 101"),
            std::string::npos);
  ASSERT_EQ(plumb("rule " + g1 + " add fwmark 0x10 iif lo table main pref 900").rc, 0);
  EXPECT_NE(in(g1, "ip rule").out.find("900:\tfrom all fwmark 0x10 iif lo lookup main"),
            std::string::npos)
      << in(g1, "ip rule").out;
  EXPECT_EQ(plumb("rule " + g1 + " del from 198.18.50.0/24 table 100 priority 1000").rc, 0);
  auto gone = plumb("rule " + g1 + " del from 198.18.50.0/24 table 100 priority 1000");
  EXPECT_EQ(gone.rc, 1);
  EXPECT_NE(gone.out.find("does not exist"), std::string::npos) << gone.out;
  std::string before = in(g1, "ip rule; ip -6 rule").out;
  auto bad = plumb("rule " + g1 + " add from 198.18.50.0/24");
  EXPECT_NE(bad.out.find("a rule needs table <n>"), std::string::npos) << bad.out;
  EXPECT_EQ(in(g1, "ip rule; ip -6 rule").out, before);
}

TEST_F(Cli, DryRunPrintsThePlanAndChangesNothing) {
  makeNetns("g1");
  auto before = hostSnapshot();
  auto r = plumb("--dry-run br-dry " + nsName("g1") + " 198.18.43.5/24");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("ensure bridge br-dry"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("add address 198.18.43.5/24 to eth1"), std::string::npos) << r.out;
  EXPECT_EQ(hostSnapshot(), before);
}

TEST_F(Cli, BadInputIsOneLineAndChangesNothing) {
  makeNetns("g1");
  auto before = hostSnapshot();
  for (const auto& [args, want] : std::vector<std::pair<std::string, std::string>>{
           {"br-cli no-such-guest 198.18.44.5/24", "neither a netns name"},
           {"br-cli " + nsName("g1") + " 198.18.44.5", "did you mean 198.18.44.5/24?"},
           {"lo " + nsName("g1") + " 198.18.44.5/24", "lo cannot be the host interface"},
           {"nosuch0 " + nsName("g1") + " 198.18.44.5/24", "host interface nosuch0 does not exist"},
           {"br-cli " + nsName("g1") + " 198.18.44.5/24 01:00:5e:00:00:01", "multicast"},
           {"br-cli -i abcdefghijklmnop " + nsName("g1") + " 198.18.44.5/24", "longer than 15"},
           // Not a container name: it would have been an Engine API path of its own.
           {"br-cli docker:.. 198.18.44.5/24", "is not a valid container name"},
           {"br-cli docker:. 198.18.44.5/24", "is not a valid container name"},
       }) {
    auto r = plumb(args + " 2>&1");
    EXPECT_EQ(r.rc, 1) << args;
    EXPECT_NE(r.out.find(want), std::string::npos) << args << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << "one line: " << r.out;
    EXPECT_EQ(hostSnapshot(), before) << args;
  }
}

}  // namespace
}  // namespace plumb::testing
