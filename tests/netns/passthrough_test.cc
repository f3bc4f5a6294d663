// The passthrough mode (pipework's --direct-phys, CNI "mode": "passthrough"): a veth end in the
// test's host namespace stands in for a NIC; its peer sits in a "lan" namespace.
#include "harness.h"

namespace plumb::testing {
namespace {

class Passthrough : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    lan_ = nsName("lan");
    makeNetns("lan");
    inHost("ip link add nic0 mtu 1400 address 02:aa:00:00:00:01 type veth peer name nicp");
    inHost("ip link set nicp netns " + lan_ + " && ip link set nic0 alias 'uplink to lan'");
    in(lan_, "ip addr add 198.18.80.1/24 dev nicp && ip link set nicp up");
  }
  Cmd plumb(const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " + args);
  }
  std::string nic() {
    return inHost("ip -o link show nic0 2>/dev/null | sed 's/ state [A-Z]*//'").out;
  }
  std::string lan_;
};

TEST_F(Passthrough, DirectPhysMovesTheDeviceAndDelGivesItBack) {
  auto g1 = nsName("g1");
  auto g1_path = makeNetns("g1");
  std::string before = nic();
  ASSERT_NE(before.find("mtu 1400"), std::string::npos) << before;
  auto r = plumb("--direct-phys nic0 " + g1 + " 198.18.80.5/24@198.18.80.1 02:00:00:00:00:55");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(inHost("ip link show nic0").rc, 0) << "the device left the host";
  auto link = in(g1, "ip -o link show eth1").out;
  EXPECT_NE(link.find("02:00:00:00:00:55"), std::string::npos) << link;
  EXPECT_NE(in(g1, "ip -o addr show eth1").out.find("198.18.80.5/24"), std::string::npos);
  EXPECT_TRUE(ping(g1, "198.18.80.1"));
  EXPECT_EQ(plumb("--direct-phys nic0 " + g1 + " 198.18.80.5/24@198.18.80.1 02:00:00:00:00:55").rc,
            0)
      << "a re-run";
  auto ls = json::parse(plumb("ls --json").out, nullptr, false);
  ASSERT_TRUE(ls.is_array() && ls.size() == 1u) << ls.dump();
  EXPECT_EQ(ls[0]["mode"], "passthrough");

  ASSERT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_EQ(nic(), before) << "name, MTU, MAC and alias as they were";
  EXPECT_NE(in(g1, "ip link show eth1").rc, 0);
}

// A NIC that carries the host's addresses or routes is refused (moving it would cut the host
// off); with --force it moves, and they come back with it.
TEST_F(Passthrough, TheHostsAddressesAndRoutesStayUnlessForcedAndComeBack) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  ASSERT_EQ(inHost("ip link set nic0 up && ip addr add 198.18.80.9/24 dev nic0 && ip route add "
                   "198.18.81.0/24 via 198.18.80.1 dev nic0 metric 50")
                .rc,
            0);
  auto host_before = hostSnapshot();
  auto r = plumb("--direct-phys nic0 " + g1 + " 198.18.80.5/24");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("nic0 carries the host's 198.18.80.9/24, route to 198.18.81.0/24"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  EXPECT_EQ(hostSnapshot(), host_before) << "refused: nothing changed";
  EXPECT_EQ(plumb("ls --json").out, "[]\n");

  r = plumb("--direct-phys --force nic0 " + g1 + " 198.18.80.5/24");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(inHost("ip link show nic0").rc, 0) << "the device left the host";
  ASSERT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_NE(inHost("ip -o addr show dev nic0").out.find("198.18.80.9/24"), std::string::npos)
      << inHost("ip -o addr show dev nic0").out;
  EXPECT_NE(inHost("ip route show 198.18.81.0/24").out.find("via 198.18.80.1 dev nic0 metric 50"),
            std::string::npos)
      << inHost("ip route").out;
  EXPECT_EQ(plumb("--force br0 " + g1 + " 198.18.80.5/24").rc, 1)
      << "--force is for --direct-phys only";
}

TEST_F(Passthrough, DelAfterTheContainerDiedSucceeds) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  ASSERT_EQ(plumb("--direct-phys nic0 " + g1 + " 198.18.80.5/24").rc, 0);
  sh("ip netns del " + g1);  // a veth stand-in dies with it; a real NIC comes back (unit tier)
  auto r = plumb("del " + g1);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(plumb("ls --json").out, "[]\n");
}

TEST_F(Passthrough, CniByDeviceAndByHardwareAddress) {
  auto g1_path = makeNetns("g1");
  json conf = {{"cniVersion", "1.0.0"},
               {"name", "pt"},
               {"type", "plumb"},
               {"mode", "passthrough"},
               {"hwaddr", "02:aa:00:00:00:01"},
               {"dataDir", state_.path() + "/state"},
               {"ipam", {{"type", "plumb"}, {"subnet", "198.18.80.0/24"}}}};
  std::string before = nic();
  auto r = add(conf, "c1", g1_path, "net1");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto result = json::parse(r.out, nullptr, false);
  EXPECT_EQ(result["interfaces"][0]["name"], "net1") << r.out;
  EXPECT_TRUE(ping(nsName("g1"), "198.18.80.1"));
  json check = conf;
  check["prevResult"] = result;
  auto checked = cni("CHECK", check, "c1", g1_path, "net1");
  EXPECT_EQ(checked.rc, 0) << checked.out;
  ASSERT_EQ(del(conf, "c1", g1_path, "net1").rc, 0);
  EXPECT_EQ(nic(), before);
  conf.erase("hwaddr");
  conf["device"] = "nic0";
  ASSERT_EQ(add(conf, "c2", g1_path).rc, 0);
  ASSERT_EQ(del(conf, "c2", g1_path).rc, 0);
  EXPECT_EQ(nic(), before);
  conf["device"] = "nosuch0";
  auto missing = add(conf, "c3", g1_path);
  EXPECT_NE(missing.rc, 0);
  EXPECT_NE(missing.out.find("no network device nosuch0 on the host"), std::string::npos)
      << missing.out;
}

TEST_F(Passthrough, RefusesWhatCannotMove) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  inHost("ip link add brx type bridge");
  std::string before = hostSnapshot();
  auto bridge = plumb("--direct-phys brx " + g1 + " 198.18.80.5/24");
  EXPECT_NE(bridge.out.find("brx is a bridge"), std::string::npos) << bridge.out;
  auto lo = plumb("--direct-phys lo " + g1 + " 198.18.80.5/24");
  EXPECT_EQ(lo.rc, 1);
  EXPECT_EQ(hostSnapshot(), before);
}

}  // namespace
}  // namespace plumb::testing
