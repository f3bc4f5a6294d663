// SR-IOV mode on a fake sysfs tree of the kernel's shape (PLUMB_SYSFS_ROOT): a PF with four
// VFs whose netdevs are veth ends in the test's host namespace, their peers in a "lan"
// namespace. This kernel's veths refuse every PF-side VF setting (EOPNOTSUPP): the unit tier
// covers those with a recording fake; here they must fail cleanly.
#include <filesystem>
#include <fstream>
#include <set>

#include "failpoint_walk.h"
#include "harness.h"

namespace plumb::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kPf = "0000:03:00.0";
constexpr int kVfs = 4;

std::string vfPci(int n) { return "0000:03:02." + std::to_string(n); }
std::string vfName(int n) { return "ens3f0v" + std::to_string(n); }

class Sriov : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    lan_ = nsName("lan");
    makeNetns("lan");
    sys_ = state_.path() + "/sys";
    inHost("ip link add pf0 type veth peer name pf0p && ip link set pf0 up");
    tree("pf0", kPf);
    write(pci(kPf) + "/sriov_totalvfs", std::to_string(kVfs));
    write(pci(kPf) + "/sriov_numvfs", std::to_string(kVfs));
    fs::create_directories(sys_ + "/bus/pci/drivers/iavf");
    for (int n = 0; n < kVfs; ++n) {
      std::string name = vfName(n);
      inHost("ip link add " + name + " type veth peer name vfp" + std::to_string(n) +
             " && ip link set vfp" + std::to_string(n) + " netns " + lan_ + " && ip link set " +
             name + " up");
      in(lan_, "ip link set vfp" + std::to_string(n) + " up");
      tree(name, vfPci(n));
      fs::create_symlink("../" + vfPci(n), pci(kPf) + "/virtfn" + std::to_string(n));
      fs::create_symlink("../" + std::string(kPf), pci(vfPci(n)) + "/physfn");
      fs::create_symlink("../../drivers/iavf", pci(vfPci(n)) + "/driver");
    }
    // The first VF as udev leaves one: an altname, an MTU and a MAC of its own.
    inHost("ip link set " + vfName(0) + " mtu 1400 address 02:aa:00:00:03:20 && ip link property " +
           "add dev " + vfName(0) + " altname enp3s2f0");
    in(lan_, "ip addr add 198.18.90.1/24 dev vfp0 && ip link set vfp0 up");
    plumb("ls");  // the store, as after any earlier attachment: snapshots compare its rows
  }
  std::string pci(const std::string& bdf) { return sys_ + "/bus/pci/devices/" + bdf; }
  void write(const std::string& path, const std::string& text) { std::ofstream(path) << text; }
  // A PCI function with its netdev, as sysfs shows it.
  void tree(const std::string& ifname, const std::string& bdf) {
    fs::create_directories(pci(bdf) + "/net/" + ifname);
    fs::create_directories(sys_ + "/class/net/" + ifname);
    fs::create_symlink("../../../bus/pci/devices/" + bdf,
                       sys_ + "/class/net/" + ifname + "/device");
  }
  std::string env() { return "PLUMB_SYSFS_ROOT=" + sys_; }
  Cmd plumb(const std::string& args) {
    return inHost(env() + " " + PLUMB_BIN + " --state-dir " + state_.path() + "/state " + args);
  }
  Cmd cniRun(const std::string& command, const json& conf, const std::string& cid,
             const std::string& netns, const std::string& ifname = "net1") {
    return cni(command, conf, cid, netns, ifname, env());
  }
  json conf(const json& extra) {
    json c = {{"cniVersion", "1.1.0"},
              {"name", "vfnet"},
              {"type", "plumb"},
              {"mode", "sriov"},
              {"dataDir", state_.path() + "/state"},
              {"ipam", {{"type", "plumb"}, {"subnet", "198.18.90.0/24"}}}};
    c.update(extra);
    return c;
  }
  std::string vf(int n) {
    return inHost("ip -o link show " + vfName(n) + " 2>/dev/null | sed 's/ state [A-Z]*//'").out;
  }
  std::string lan_;
  std::string sys_;
};

TEST_F(Sriov, ByDeviceIdTheVfMovesInRenamedAndDelGivesItBackAsItWas) {
  auto g1 = makeNetns("g1");
  std::string before = vf(0);
  ASSERT_NE(before.find("altname enp3s2f0"), std::string::npos) << before;
  auto c = conf({{"deviceID", vfPci(0)}});
  auto r = cniRun("ADD", c, "c1", g1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto result = json::parse(r.out, nullptr, false);
  EXPECT_EQ(result["interfaces"][0]["name"], "net1") << r.out;
  EXPECT_EQ(vf(0), "") << "the VF left the host";
  auto link = in(nsName("g1"), "ip -o link show net1").out;
  EXPECT_NE(link.find("mtu 1400"), std::string::npos) << link;
  EXPECT_EQ(link.find("altname"), std::string::npos) << "its altnames stay off while it is away";
  EXPECT_TRUE(ping(nsName("g1"), "198.18.90.1"));
  json check = c;
  check["prevResult"] = result;
  auto checked = cniRun("CHECK", check, "c1", g1);
  EXPECT_EQ(checked.rc, 0) << checked.out;
  auto ls = json::parse(plumb("ls --json").out, nullptr, false);
  ASSERT_TRUE(ls.is_array() && ls.size() == 1u) << ls.dump();
  EXPECT_EQ(ls[0]["pci"], vfPci(0));
  EXPECT_EQ(ls[0]["via"], "pf0");

  ASSERT_EQ(cniRun("DEL", c, "c1", g1).rc, 0);
  EXPECT_EQ(vf(0), before) << "name, MTU, MAC and altname as they were";
  EXPECT_NE(in(nsName("g1"), "ip link show net1").rc, 0);
  auto again = cniRun("DEL", c, "c1", g1);
  EXPECT_EQ(again.rc, 0) << "a second DEL: " << again.out;
  EXPECT_EQ(vf(0), before);
}

TEST_F(Sriov, FourAddsAtOnceTakeFourVfsAndAFifthFindsNoneFree) {
  std::string before = hostSnapshot();
  auto c = conf({{"pf", "pf0"}});
  std::string file = state_.path() + "/pf.json";
  std::ofstream(file) << c.dump();
  // Four plugin processes at once: the store, not the order they read sysfs in, decides.
  std::string all;
  for (int i = 1; i <= 4; ++i) {
    std::string ns = makeNetns("g" + std::to_string(i));
    all += "(ip netns exec " + host() + " env " + env() + " CNI_COMMAND=ADD CNI_CONTAINERID=c" +
           std::to_string(i) + " CNI_NETNS=" + ns + " CNI_IFNAME=net1 CNI_PATH=/usr/lib/cni " +
           PLUMB_BIN + " < " + file + " > " + state_.path() + "/out" + std::to_string(i) + ") & ";
  }
  sh(all + "wait");
  auto ls = json::parse(plumb("ls --json").out, nullptr, false);
  ASSERT_TRUE(ls.is_array()) << ls.dump();
  std::set<std::string> vfs;
  for (const auto& e : ls) vfs.insert(e["pci"].get<std::string>());
  EXPECT_EQ(vfs.size(), 4u) << ls.dump();
  for (int n = 0; n < kVfs; ++n) EXPECT_EQ(vf(n), "") << vfName(n) << " is in a container";
  auto g5 = makeNetns("g5");
  auto fifth = cniRun("ADD", c, "c5", g5);
  EXPECT_NE(fifth.rc, 0);
  EXPECT_NE(fifth.out.find("no free VF on PF pf0"), std::string::npos) << fifth.out;
  auto status = cniRun("STATUS", c, "", "");
  EXPECT_EQ(cniCode(status), 50) << status.out;
  for (int i = 1; i <= 4; ++i) {
    auto d =
        cniRun("DEL", c, "c" + std::to_string(i), "/run/netns/" + nsName("g" + std::to_string(i)));
    EXPECT_EQ(d.rc, 0) << d.out;
  }
  EXPECT_EQ(cniRun("STATUS", c, "", "").rc, 0);
  EXPECT_EQ(hostSnapshot(), before);
}

TEST_F(Sriov, AVlanThisKernelRefusesFailsCleanlyAndChangesNothing) {
  auto g1 = makeNetns("g1");
  std::string before = hostSnapshot();
  auto r = cniRun("ADD", conf({{"deviceID", vfPci(0)}, {"vlan", 100}}), "c1", g1);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("PF pf0 refused vlan 100 (qos 0, 802.1q) for VF 0 (0000:03:02.0)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("not supported"), std::string::npos) << r.out;
  EXPECT_EQ(hostSnapshot(), before) << "the VF is on the host as before, nothing recorded";
  auto spoof = cniRun("ADD", conf({{"pf", "pf0"}, {"spoofchk", "off"}}), "c1", g1);
  EXPECT_NE(spoof.out.find("refused spoofchk off"), std::string::npos) << spoof.out;
  EXPECT_EQ(hostSnapshot(), before);
}

TEST_F(Sriov, DeviceIdsThatAreNoVfChangeNothing) {
  auto g1 = makeNetns("g1");
  std::string before = hostSnapshot();
  struct Case {
    std::string device_id;
    std::string message;
  };
  for (const auto& [id, message] : {
           Case{kPf, "PCI device 0000:03:00.0 is not an SR-IOV VF (no physfn)"},
           Case{"0000:09:00.0", "no PCI device 0000:09:00.0"},
           Case{"0000:03:02", "PCI address '0000:03:02' is not valid"},
       }) {
    auto r = cniRun("ADD", conf({{"deviceID", id}}), "c1", g1);
    EXPECT_NE(r.rc, 0);
    EXPECT_NE(r.out.find(message), std::string::npos) << message << ": " << r.out;
  }
  auto missing_pf = cniRun("ADD", conf({{"pf", "pf9"}}), "c1", g1);
  EXPECT_NE(missing_pf.out.find("PF pf9 does not exist"), std::string::npos) << missing_pf.out;
  auto status = cniRun("STATUS", conf({{"pf", "pf9"}}), "", "");
  EXPECT_EQ(cniCode(status), 50) << status.out;
  EXPECT_EQ(hostSnapshot(), before);
}

TEST_F(Sriov, CliVfFormAndDel) {
  auto g1 = nsName("g1");
  makeNetns("g1");
  std::string before = hostSnapshot();
  auto r = plumb("--vf pf0 " + g1 + " 198.18.90.5/24@198.18.90.1");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(in(g1, "ip -o addr show eth1").out.find("198.18.90.5/24"), std::string::npos);
  EXPECT_EQ(plumb("--vf pf0 " + g1 + " 198.18.90.5/24@198.18.90.1").rc, 0) << "a re-run";
  auto ls = plumb("ls").out;
  EXPECT_NE(ls.find(vfPci(0) + " on pf0"), std::string::npos) << ls;
  auto vlan = plumb("--vf pf0 " + g1 + " 198.18.90.6/24 @7 -i eth2");
  EXPECT_NE(vlan.rc, 0);
  ASSERT_EQ(plumb("del " + g1).rc, 0);
  EXPECT_EQ(hostSnapshot(), before);
}

// plumb doctor finds a VF held for an attachment whose record is gone, and --fix gives it back
// as it was (name, MTU, MAC, altname), with the address the record held.
TEST_F(Sriov, DoctorGivesBackAVfNoRecordAccountsFor) {
  auto g1 = makeNetns("g1");
  const std::string before = vf(0);
  const std::string host_before = hostSnapshot();
  auto c = conf({{"deviceID", vfPci(0)}});
  ASSERT_EQ(cniRun("ADD", c, "c1", g1).rc, 0);
  ASSERT_EQ(sh("sqlite3 " + state_.path() +
               "/state/plumb.db \"delete from attachments where container_id='c1'\"")
                .rc,
            0);
  auto r = plumb("doctor");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("orphan-vf " + vfPci(0) + ": VF 0 of pf0 is held for vfnet/c1/net1"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("orphan-address 198.18.90."), std::string::npos) << r.out;
  // In the container, its netdev is not in the host's sysfs (the tree says so as the kernel
  // would): the claim stays until the VF is back.
  const std::string net_dir = pci(vfPci(0)) + "/net";
  ASSERT_EQ(sh("mv " + net_dir + " " + net_dir + ".away").rc, 0);
  auto early = plumb("doctor --fix");
  EXPECT_EQ(early.rc, 1) << early.out;
  EXPECT_NE(early.out.find("[not fixed: VF " + vfPci(0) + " is not back on the host yet"),
            std::string::npos)
      << early.out;
  // The container gone, the kernel hands the VF back (under whatever name is free).
  ASSERT_EQ(in(nsName("g1"), "ip link set net1 netns " + host()).rc, 0);
  ASSERT_EQ(sh("mv " + net_dir + ".away " + net_dir).rc, 0);
  auto r2 = plumb("doctor");
  EXPECT_EQ(r2.out.find("orphan-link"), std::string::npos) << r2.out;
  EXPECT_EQ(r2.out.find("orphan-device"), std::string::npos) << r2.out;
  auto fixed = plumb("doctor --fix");
  EXPECT_EQ(fixed.rc, 0) << fixed.out;
  EXPECT_EQ(plumb("doctor").out, "no differences: the store and the kernel agree\n");
  EXPECT_EQ(vf(0), before) << "name, MTU, MAC and altname as they were";
  EXPECT_EQ(hostSnapshot(), host_before);
}

#ifdef PLUMB_WITH_FAILPOINTS
// The failpoint walk (failpoint_walk.h) in sriov mode: a free VF of the PF, given back as it
// was (its name, MTU, MAC, altname) whatever step the ADD died at.
class SriovFailpoint : public FailpointWalk<Sriov> {
 protected:
  void SetUp() override {
    FailpointWalk<Sriov>::SetUp();
    walk_env_ = env();
  }
};

TEST_F(SriovFailpoint, CniAddCheckAndDelAtEveryStep) {
  walkCni(conf({{"pf", "pf0"}}), "198.18.90.1", false);
}
#endif

}  // namespace
}  // namespace plumb::testing
