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

// The command line: pipework's bridge form, killed or failed before each step, then `plumb
// del`, `plumb doctor --fix` or the same command again.
TEST_F(Failpoint, CliBridgeAttachAtEveryStep) {
  makeNetns("g0");
  makeNetns("g1");
  auto g0 = nsName("g0"), g1 = nsName("g1");
  ASSERT_EQ(plumb("br-fpc " + g0 + " 198.18.78.2/24").rc, 0);
  const std::string before = snapshot(g1);
  int steps = 0;
  for (int n = 1; n <= 40; ++n) {
    SCOPED_TRACE("attach killed before step " + std::to_string(n));
    auto r = plumb("br-fpc " + g1 + " 198.18.78.3/24", at("add", n, "kill"));
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
      auto again = plumb("br-fpc " + g1 + " 198.18.78.3/24");
      ASSERT_EQ(again.rc, 0) << again.out;
      EXPECT_TRUE(ping(g1, "198.18.78.2"));
      ASSERT_EQ(plumb("del " + g1).rc, 0);
    }
    EXPECT_EQ(snapshot(g1), before);
    auto f = plumb("br-fpc " + g1 + " 198.18.78.3/24", at("add", n, "error"));
    EXPECT_EQ(f.rc, 1) << f.out;
    EXPECT_NE(f.out.find("failpoint add:" + std::to_string(n)), std::string::npos) << f.out;
    EXPECT_EQ(snapshot(g1), before) << "the rollback left nothing";
  }
  EXPECT_GT(steps, 3);
  ASSERT_EQ(plumb("del " + g1).rc, 0);
  ASSERT_EQ(plumb("del " + g0).rc, 0);
  RecordProperty("add_steps", steps);
}

}  // namespace
}  // namespace plumb::testing
