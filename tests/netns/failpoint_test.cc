// The failpoint walks (failpoint_walk.h) of the modes that need no fixture of their own, and
// of the command line. Open vSwitch's and SR-IOV's are beside their fixtures (ovs_test.cc,
// sriov_test.cc).
#include "failpoint_walk.h"

namespace plumb::testing {
namespace {

class Failpoint : public FailpointWalk<NetnsTest> {};

TEST_F(Failpoint, CniBridgeAddCheckAndDelAtEveryStep) {
  auto conf = bridgeConf("netfp", "br-fp", "198.18.76.0/24");
  conf["ipMasq"] = true;
  walkCni(conf, "198.18.76.1");
}

TEST_F(Failpoint, CniMacvlanAddCheckAndDelAtEveryStep) {
  ASSERT_EQ(inHost("ip link add fp0 type bridge && ip addr add 198.18.77.1/24 dev fp0 && "
                   "ip link add fp0m type veth peer name fp0p && ip link set fp0p master fp0 && "
                   "ip link set fp0 up && ip link set fp0p up && ip link set fp0m up")
                .rc,
            0);
  json conf = {{"name", "netfpm"},
               {"type", "plumb"},
               {"mode", "macvlan"},
               {"master", "fp0m"},
               {"dataDir", state_.path() + "/state"},
               {"ipam", {{"type", "plumb"}, {"subnet", "198.18.77.0/24"}}}};
  walkCni(conf, "198.18.77.1");
}

// A veth end in the host namespace stands in for a NIC (its peer in a "lan" namespace); one
// device, so no first container.
TEST_F(Failpoint, CniPassthroughAddCheckAndDelAtEveryStep) {
  auto lan = nsName("lan");
  makeNetns("lan");
  ASSERT_EQ(inHost("ip link add nic0 mtu 1400 address 02:aa:00:00:00:01 type veth peer name nicp "
                   "&& ip link set nicp netns " +
                   lan + " && ip link set nic0 alias 'uplink to lan'")
                .rc,
            0);
  ASSERT_EQ(in(lan, "ip addr add 198.18.79.1/24 dev nicp && ip link set nicp up").rc, 0);
  json conf = {{"name", "netfpp"},
               {"type", "plumb"},
               {"mode", "passthrough"},
               {"device", "nic0"},
               {"dataDir", state_.path() + "/state"},
               {"ipam", {{"type", "plumb"}, {"subnet", "198.18.79.0/24"}}}};
  walkCni(conf, "198.18.79.1", false);
}

// The command line: `plumb <how> g1 <addr>` killed or failed before each step, then `plumb del`,
// `plumb doctor --fix` or the same command again; then `plumb del` killed before each of its
// parts, and run again. how: pipework's host interface and flags ("br-fpc", "--direct-phys
// nic0"); peer: an address g1 reaches once attached.
class CliFailpoint : public Failpoint {
 protected:
  void walkCli(const std::string& how, const std::string& addr, const std::string& peer) {
    auto g1 = nsName("g1");
    makeNetns("g1");
    const std::string attach = how + " " + g1 + " " + addr;
    const std::string before = snapshot(g1);
    int steps = 0;
    for (int n = 1; n <= 40; ++n) {
      SCOPED_TRACE("attach killed before step " + std::to_string(n));
      auto r = plumb(attach, at("add", n, "kill"));
      if (r.rc == 0) {
        steps = n - 1;
        break;
      }
      EXPECT_EQ(r.rc, 137) << r.out;
      if (n % 3 == 1) {
        auto d = plumb("del " + g1);
        ASSERT_EQ(d.rc, 0) << d.out;
      } else if (n % 3 == 2) {
        auto fixed = plumb("doctor --fix");
        ASSERT_EQ(fixed.rc, 0) << fixed.out;
        EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
      } else {
        auto again = plumb(attach);
        ASSERT_EQ(again.rc, 0) << again.out;
        EXPECT_TRUE(ping(g1, peer));
        ASSERT_EQ(plumb("del " + g1).rc, 0);
      }
      EXPECT_EQ(snapshot(g1), before);
      auto f = plumb(attach, at("add", n, "error"));
      EXPECT_EQ(f.rc, 1) << f.out;
      EXPECT_NE(f.out.find("failpoint add:" + std::to_string(n)), std::string::npos) << f.out;
      EXPECT_EQ(snapshot(g1), before) << "the rollback left nothing";
    }
    EXPECT_GT(steps, 3);
    EXPECT_TRUE(ping(g1, peer));
    ASSERT_EQ(plumb("del " + g1).rc, 0);
    EXPECT_EQ(snapshot(g1), before);

    int parts = 0;
    for (int n = 1; n <= 20; ++n) {
      SCOPED_TRACE("del killed before part " + std::to_string(n));
      ASSERT_EQ(plumb(attach).rc, 0);
      auto d = plumb("del " + g1, at("del", n, "kill"));
      if (d.rc == 0) {
        parts = n - 1;
        break;
      }
      EXPECT_EQ(d.rc, 137) << d.out;
      ASSERT_EQ(plumb("del " + g1).rc, 0);
      EXPECT_EQ(snapshot(g1), before);
    }
    EXPECT_GE(parts, 2);
    RecordProperty("add_steps", steps);
    RecordProperty("del_parts", parts);
  }
};

TEST_F(CliFailpoint, BridgeAttachAndDelAtEveryStep) {
  makeNetns("g0");
  ASSERT_EQ(plumb("br-fpc " + nsName("g0") + " 198.18.78.2/24").rc, 0);
  walkCli("br-fpc", "198.18.78.3/24", "198.18.78.2");
  ASSERT_EQ(plumb("del " + nsName("g0")).rc, 0);
}

// A macvlan child of an existing interface (pipework's form for anything but a bridge).
TEST_F(CliFailpoint, MacvlanAttachAndDelAtEveryStep) {
  ASSERT_EQ(inHost("ip link add fpc0 type bridge && ip addr add 198.18.74.1/24 dev fpc0 && "
                   "ip link add fpc0m type veth peer name fpc0p && ip link set fpc0p master fpc0 "
                   "&& ip link set fpc0 up && ip link set fpc0p up && ip link set fpc0m up")
                .rc,
            0);
  walkCli("fpc0m", "198.18.74.3/24", "198.18.74.1");
}

// --direct-phys: a veth end in the host namespace stands in for the NIC.
TEST_F(CliFailpoint, DirectPhysAttachAndDelAtEveryStep) {
  auto lan = nsName("lan");
  makeNetns("lan");
  ASSERT_EQ(inHost("ip link add nic1 mtu 1400 address 02:aa:00:00:00:02 type veth peer name nicq "
                   "&& ip link set nicq netns " +
                   lan + " && ip link set nic1 alias 'uplink to lan'")
                .rc,
            0);
  ASSERT_EQ(in(lan, "ip addr add 198.18.73.1/24 dev nicq && ip link set nicq up").rc, 0);
  walkCli("--direct-phys nic1", "198.18.73.3/24", "198.18.73.1");
}

}  // namespace
}  // namespace plumb::testing
