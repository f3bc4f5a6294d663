// Macvlan mode against the real kernel. A veth end stands in for the physical NIC.
#include "harness.h"

namespace plumb::testing {
namespace {

class Macvlan : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    ASSERT_EQ(inHost("ip link add phys0 type veth peer name phys0p && ip link set phys0 up && ip "
                     "link set phys0p up")
                  .rc,
              0);
  }
  json conf(const std::string& mode, const std::string& subnet) {
    json c = {{"cniVersion", "1.0.0"},
              {"name", "mv-" + mode},
              {"type", "plumb"},
              {"master", "phys0"},
              {"mode", mode},
              {"dataDir", state_.path() + "/state"},
              {"ipam", {{"type", "plumb"}, {"subnet", subnet}}}};
    return c;
  }
};

TEST_F(Macvlan, BridgeModeContainersTalk) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto c = conf("bridge", "198.18.20.0/24");
  c["mtu"] = 1400;
  auto r = add(c, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  ASSERT_EQ(add(c, "c2", c2).rc, 0);
  auto res = json::parse(r.out);
  ASSERT_EQ(res["interfaces"].size(), 1u) << "no host-side interface in macvlan mode";
  EXPECT_EQ(res["ips"][0]["interface"], 0);
  auto detail = in(nsName("c1"), "ip -d -o link show eth0").out;
  EXPECT_NE(detail.find("macvlan mode bridge"), std::string::npos) << detail;
  EXPECT_NE(detail.find("mtu 1400"), std::string::npos) << detail;
  EXPECT_TRUE(ping(nsName("c1"), "198.18.20.3"));
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
  EXPECT_EQ(del(c, "c2", c2).rc, 0);
  EXPECT_EQ(in(nsName("c2"), "ip -o link show eth0").rc, 1);
}

TEST_F(Macvlan, PrivateModeIsolates) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto c = conf("private", "198.18.21.0/24");
  ASSERT_EQ(add(c, "c1", c1).rc, 0);
  ASSERT_EQ(add(c, "c2", c2).rc, 0);
  EXPECT_NE(in(nsName("c1"), "ip -d -o link show eth0").out.find("macvlan mode private"),
            std::string::npos);
  // The control: both reach the far side of the parent (the "LAN"), so a failed ping between
  // them is private mode, not a dead link.
  ASSERT_EQ(inHost("ip addr add 198.18.21.254/24 dev phys0p").rc, 0);
  EXPECT_TRUE(ping(nsName("c1"), "198.18.21.254"));
  EXPECT_TRUE(ping(nsName("c2"), "198.18.21.254"));
  // And it fails for that reason: no answer (not "unreachable", not a missing interface).
  auto blocked = in(nsName("c1"), "busybox ping -c 1 -W 2 198.18.21.3");
  EXPECT_NE(blocked.rc, 0);
  EXPECT_NE(blocked.out.find("100% packet loss"), std::string::npos) << blocked.out;
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
  EXPECT_EQ(del(c, "c2", c2).rc, 0);
}

TEST_F(Macvlan, EveryModeIsCreatedAsAsked) {
  for (const std::string mode : {"vepa", "passthru", "source"}) {
    auto ns = makeNetns("m-" + mode);
    auto c = conf(mode, "198.18.22.0/24");
    auto r = add(c, "c-" + mode, ns);
    ASSERT_EQ(r.rc, 0) << mode << ": " << r.out;
    EXPECT_NE(in(nsName("m-" + mode), "ip -d -o link show eth0").out.find("macvlan mode " + mode),
              std::string::npos)
        << mode;
    EXPECT_EQ(del(c, "c-" + mode, ns).rc, 0);
  }
}

TEST_F(Macvlan, MissingMasterIsAClearErrorAndChangesNothing) {
  auto c1 = makeNetns("c1");
  auto c = conf("bridge", "198.18.23.0/24");
  c["master"] = "nosuch0";
  auto before = hostSnapshot();
  auto r = add(c, "c1", c1);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("master link nosuch0 does not exist"), std::string::npos) << r.out;
  EXPECT_EQ(hostSnapshot(), before);
  EXPECT_EQ(in(nsName("c1"), "ip -o link 2>/dev/null | wc -l").out, "1\n");
}

}  // namespace
}  // namespace plumb::testing
