// Open vSwitch mode against a real ovsdb-server and ovs-vswitchd, started by each test in its
// host namespace on private paths (the netdev datapath: this kernel has no openvswitch
// module), and stopped by pid after. ovs-vsctl only reads back what plumb did.
#include <signal.h>

#include <fstream>
#include <thread>

#include "failpoint_walk.h"
#include "harness.h"
#include "neigh_monitor.h"

namespace plumb::testing {
namespace {

class Ovs : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    dir_ = state_.path() + "/ovs";
    env_ = "OVS_RUNDIR=" + dir_ + " OVS_LOGDIR=" + dir_ + " OVS_DBDIR=" + dir_ +
           " OVS_SYSCONFDIR=" + dir_;
    ASSERT_EQ(sh("mkdir -p " + dir_ + " && ovsdb-tool create " + dir_ +
                 "/conf.db /usr/share/openvswitch/vswitch.ovsschema")
                  .rc,
              0);
    startDb();
    ASSERT_EQ(vsctl("--no-wait init").rc, 0);
    startVswitchd();
    auto br = vsctl("add-br br-a -- set bridge br-a datapath_type=netdev");
    ASSERT_EQ(br.rc, 0) << br.out;
  }

  void TearDown() override {
    stop("vswitchd");
    stop("ovsdb");
    NetnsTest::TearDown();
  }

  // ovsdb-server on this test's database (what it holds survives a restart).
  void startDb() {
    auto db =
        inHost("env " + env_ + " ovsdb-server " + dir_ + "/conf.db --remote=punix:" + socket() +
               " --unixctl=" + dir_ + "/ovsdb.ctl --pidfile=" + dir_ +
               "/ovsdb.pid --log-file=" + dir_ + "/ovsdb.log --detach --no-chdir");
    ASSERT_EQ(db.rc, 0) << db.out;
  }
  void startVswitchd() {
    auto r = inHost("env " + env_ + " ovs-vswitchd unix:" + socket() + " --unixctl=" + dir_ +
                    "/vswitchd.ctl --pidfile=" + dir_ + "/vswitchd.pid --log-file=" + dir_ +
                    "/vswitchd.log --detach --no-chdir");
    ASSERT_EQ(r.rc, 0) << r.out;
  }

  // Stops a daemon by its pidfile and waits until it has exited (a detached daemon is init's
  // child: it may stay a zombie for a while, which counts as gone).
  void stop(const std::string& which) {
    std::ifstream f(dir_ + "/" + which + ".pid");
    pid_t pid = 0;
    if (!(f >> pid) || pid <= 0) return;
    ::kill(pid, SIGTERM);
    for (int i = 0; i < 1000 && running(pid); ++i) ::usleep(5000);
    EXPECT_FALSE(running(pid)) << which << " did not stop";
    ::unlink((dir_ + "/" + which + ".pid").c_str());
  }

  std::string socket() const { return dir_ + "/db.sock"; }
  // A container's record lost (as after a store restored from backup): only its port names it.
  Cmd forgetRecord(const std::string& cid) {
    return sh("sqlite3 " + state_.path() + "/state/plumb.db \"delete from attachments where " +
              "container_id='" + cid + "'\"");
  }
  // The command line, with state of its own and this test's OVSDB, ready for arguments.
  std::string cli() const {
    return std::string(PLUMB_BIN) + " --state-dir " + state_.path() +
           "/cli --ovsdb unix:" + socket() + " ";
  }
  Cmd vsctl(const std::string& args) {
    return sh("ovs-vsctl --db=unix:" + socket() + " --timeout=10 " + args + " 2>&1");
  }
  std::string ports(const std::string& bridge = "br-a") {
    return vsctl("--no-wait list-ports " + bridge).out;
  }

  json conf(const std::string& subnet = "198.18.30.0/24", const std::string& bridge = "br-a") {
    return {{"cniVersion", "1.1.0"},
            {"name", "ovsnet"},
            {"type", "plumb"},
            {"mode", "ovs"},
            {"bridge", bridge},
            {"socket_file", "unix:" + socket()},
            {"dataDir", state_.path() + "/state"},
            {"ipam", {{"type", "plumb"}, {"subnet", subnet}}}};
  }
  // The veth's host end, as the ADD result names it.
  static std::string hostEnd(const Cmd& added) {
    auto j = json::parse(added.out, nullptr, false);
    if (!j.is_object() || !j.contains("interfaces")) return "";
    return j["interfaces"][0]["name"].get<std::string>();
  }

  std::string dir_;
  std::string env_;
};

TEST_F(Ovs, TagsAndTrunksAreSetAndVlansIsolate) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2"), c3 = makeNetns("c3"), c4 = makeNetns("c4");
  auto v10 = conf();
  v10["vlan"] = 10;
  auto v20 = conf();
  v20["vlan"] = 20;
  auto r1 = add(v10, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  auto r2 = add(v10, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  auto r3 = add(v20, "c3", c3);
  ASSERT_EQ(r3.rc, 0) << r3.out;
  EXPECT_EQ(vsctl("--no-wait get port " + hostEnd(r1) + " tag").out, "10\n");
  EXPECT_EQ(vsctl("--no-wait get port " + hostEnd(r3) + " tag").out, "20\n");
  auto owner = vsctl("--no-wait get port " + hostEnd(r1) + " external_ids:owner").out;
  EXPECT_EQ(owner, "plumb\n");
  auto ids = vsctl("--no-wait get interface " + hostEnd(r1) + " external_ids").out;
  EXPECT_NE(ids.find("plumb_container_id=c1"), std::string::npos) << ids;
  // Same VLAN: they talk (the control); another VLAN on the same bridge and subnet: no.
  EXPECT_TRUE(ping(nsName("c1"), "198.18.30.3"));
  EXPECT_FALSE(ping(nsName("c1"), "198.18.30.4"));

  auto trunk = conf();
  trunk["trunk"] = json::array({{{"id", 42}}, {{"minID", 1000}, {"maxID", 1002}}});
  auto r4 = add(trunk, "c4", c4);
  ASSERT_EQ(r4.rc, 0) << r4.out;
  EXPECT_EQ(vsctl("--no-wait get port " + hostEnd(r4) + " trunks").out, "[42, 1000, 1001, 1002]\n");
  EXPECT_EQ(vsctl("--no-wait get port " + hostEnd(r4) + " tag").out, "[]\n");

  for (auto [cfg, cid, ns] : {std::tuple{v10, "c1", c1}, std::tuple{v10, "c2", c2},
                              std::tuple{v20, "c3", c3}, std::tuple{trunk, "c4", c4}}) {
    auto d = del(cfg, cid, ns);
    EXPECT_EQ(d.rc, 0) << d.out;
  }
  EXPECT_EQ(ports(), "");
}

// An address that changed hands is announced through the switch: the container side is set
// up while ovs-vswitchd applies the port, so what the kernel announced as the interface came
// up went nowhere, and plumb announces again once the port forwards. A neighbour on the switch
// holding the old MAC takes the new one without any traffic from it (gratuitous ARP, NA).
TEST_F(Ovs, AnAddressThatChangedHandsIsAnnouncedThroughTheSwitch) {
  auto keeper = makeNetns("c2"), c0 = makeNetns("c0"), c1 = makeNetns("c1");
  auto cfg = conf();
  cfg["ipam"] = {
      {"type", "plumb"},
      {"ranges", {{{{"subnet", "198.18.30.0/24"}}}, {{{"subnet", "2001:db8:30::/64"}}}}}};
  auto kept = add(cfg, "c2", keeper);
  ASSERT_EQ(kept.rc, 0) << kept.out;
  auto first = add(cfg, "c0", c0);
  ASSERT_EQ(first.rc, 0) << first.out;
  std::string v4 = json::parse(first.out)["ips"][0]["address"];
  std::string v6 = json::parse(first.out)["ips"][1]["address"];
  ASSERT_EQ(v4, "198.18.30.3/24");
  ASSERT_EQ(v6, "2001:db8:30::3/64");
  ASSERT_EQ(del(cfg, "c0", c0).rc, 0);
  // The neighbour still has c0's MAC for both (planted: what one that talked to c0 keeps).
  for (const std::string a : {"198.18.30.3", "2001:db8:30::3"}) {
    ASSERT_EQ(
        in(nsName("c2"), "ip neigh replace " + a + " lladdr 02:00:00:00:00:99 dev eth0 nud stale")
            .rc,
        0);
  }
  NeighMonitor other(nsName("c2"));
  ASSERT_TRUE(other.listening([&](const std::string& plant) {
    return in(nsName("c2"), plant + " 198.18.30.250 dev eth0").rc == 0;
  }));
  // c1 gets c0's addresses (asked for), under a MAC of its own.
  cfg["mac"] = "02:11:22:33:44:66";
  cfg["runtimeConfig"] = {{"ips", {v4, v6}}};
  auto r = add(cfg, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  other.waitFor("lladdr 02:11:22:33:44:66", 2);
  for (const std::string addr : {"198.18.30.3", "2001:db8:30::3"}) {
    auto neigh = in(nsName("c2"), "ip neigh show " + addr + " dev eth0").out;
    EXPECT_NE(neigh.find("lladdr 02:11:22:33:44:66"), std::string::npos) << addr << ": " << neigh;
  }
  EXPECT_EQ(del(cfg, "c1", c1).rc, 0);
  EXPECT_EQ(del(cfg, "c2", keeper).rc, 0);
  EXPECT_EQ(ports(), "");
}

TEST_F(Ovs, CheckPassesThenFailsWhenSomeoneChangesTheTag) {
  auto c1 = makeNetns("c1");
  auto c = conf();
  c["vlan"] = 7;
  auto r = add(c, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  c["prevResult"] = json::parse(r.out);
  auto ok = cni("CHECK", c, "c1", c1);
  EXPECT_EQ(ok.rc, 0) << ok.out;
  ASSERT_EQ(vsctl("--no-wait set port " + hostEnd(r) + " tag=8").rc, 0);
  auto bad = cni("CHECK", c, "c1", c1);
  EXPECT_EQ(bad.rc, 1);
  EXPECT_NE(bad.out.find("has tag 8, configured 7"), std::string::npos) << bad.out;
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
}

TEST_F(Ovs, DelRemovesPortInterfaceAndVethAfterTheNetnsIsGone) {
  auto c1 = makeNetns("c1");
  auto c = conf();
  auto r = add(c, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  std::string host = hostEnd(r);
  ASSERT_EQ(ports(), host + "\n");
  ASSERT_EQ(sh("ip netns del " + nsName("c1")).rc, 0);
  for (int i = 0; i < 2; ++i) {
    auto d = del(c, "c1", c1);
    EXPECT_EQ(d.rc, 0) << "DEL " << i + 1 << ": " << d.out;
  }
  EXPECT_EQ(ports(), "");
  EXPECT_EQ(vsctl("--no-wait --columns=name find interface name=" + host).out, "");
  EXPECT_EQ(inHost("ip link show " + host).rc, 1) << "the veth's host end is gone";
}

TEST_F(Ovs, StoppedVswitchdFailsWithinItsTimeoutAndLeavesNothing) {
  auto c1 = makeNetns("c1");
  auto c = conf();
  stop("vswitchd");
  auto before = hostSnapshot();
  auto r = cni("ADD", c, "c1", c1, "eth0", "PLUMB_OVSDB_TIMEOUT_MS=500");
  EXPECT_EQ(r.rc, 1);
  EXPECT_EQ(cniCode(r), 11) << r.out;
  EXPECT_NE(r.out.find("ovs-vswitchd did not apply port"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("within 500 ms"), std::string::npos) << r.out;
  EXPECT_EQ(ports(), "") << "no Port row is left";
  EXPECT_EQ(vsctl("--no-wait --columns=name list interface").out.find("plm"), std::string::npos);
  EXPECT_EQ(hostSnapshot(), before) << "no veth, no address";
  EXPECT_EQ(in(nsName("c1"), "ip -o link show eth0").rc, 1);
}

TEST_F(Ovs, BadInputIsAClearErrorAndChangesNothing) {
  auto c1 = makeNetns("c1");
  struct Case {
    json conf;
    std::string message;
  };
  auto missing = conf("198.18.30.0/24", "nosuch");
  auto tag = conf();
  tag["vlan"] = 4096;
  auto upside = conf();
  upside["trunk"] = json::array({{{"minID", 20}, {"maxID", 10}}});
  auto nobridge = conf();
  nobridge.erase("bridge");
  auto socket = conf();
  socket["socket_file"] = "tcp:127.0.0.1:6640";
  auto before = hostSnapshot();
  auto ports_before = ports();
  for (const auto& [cfg, message] :
       {Case{missing, "no Open vSwitch bridge nosuch"}, Case{tag, "vlan 4096 is out of range"},
        Case{upside, "trunk range 20-10 is upside down"}, Case{nobridge, "ovs mode needs"},
        Case{socket, "is not a unix socket"}}) {
    auto r = add(cfg, "c1", c1);
    EXPECT_EQ(r.rc, 1) << message;
    EXPECT_NE(r.out.find(message), std::string::npos) << r.out;
    EXPECT_EQ(hostSnapshot(), before) << message;
    EXPECT_EQ(ports(), ports_before) << message;
    EXPECT_EQ(in(nsName("c1"), "ip -o link show eth0").rc, 1) << message;
  }
}

TEST_F(Ovs, StatusSaysWhetherTheSwitchCanBeUsed) {
  auto c = conf();
  auto ok = cni("STATUS", c, "", "");
  EXPECT_EQ(ok.rc, 0) << ok.out;
  auto missing = conf("198.18.30.0/24", "nosuch");
  auto r = cni("STATUS", missing, "", "");
  EXPECT_EQ(cniCode(r), 50) << r.out;
  EXPECT_NE(r.out.find("no Open vSwitch bridge nosuch"), std::string::npos) << r.out;
  stop("ovsdb");
  auto down = cni("STATUS", c, "", "");
  EXPECT_EQ(cniCode(down), 50) << down.out;
  EXPECT_NE(down.out.find("cannot connect to OVSDB"), std::string::npos) << down.out;
}

TEST_F(Ovs, GcRemovesOnlyPlumbsPortsNotListed) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  ASSERT_EQ(inHost("ip link add other type veth peer name otherp").rc, 0);
  ASSERT_EQ(vsctl("add-port br-a other").rc, 0);
  auto c = conf();
  auto r1 = add(c, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  auto r2 = add(c, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  ASSERT_EQ(forgetRecord("c2").rc, 0);
  auto gc = c;
  gc["cni.dev/valid-attachments"] = json::array({{{"containerID", "c1"}, {"ifname", "eth0"}}});
  auto g = cni("GC", gc, "", "");
  EXPECT_EQ(g.rc, 0) << g.out;
  auto left = ports();
  EXPECT_NE(left.find(hostEnd(r1)), std::string::npos) << left;
  EXPECT_EQ(left.find(hostEnd(r2)), std::string::npos) << left;
  EXPECT_NE(left.find("other"), std::string::npos) << "someone else's port stays: " << left;
  EXPECT_EQ(inHost("ip link show " + hostEnd(r2)).rc, 1) << "its veth went with it";
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
  EXPECT_EQ(ports(), "other\n");
}

// plumb doctor finds a port plumb made whose record is gone, and --fix removes it with its veth
// (and the address the record held); someone else's port and a live attachment stay.
TEST_F(Ovs, DoctorRemovesOnlyAPortNoRecordAccountsFor) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  ASSERT_EQ(inHost("ip link add other type veth peer name otherp").rc, 0);
  ASSERT_EQ(vsctl("add-port br-a other").rc, 0);
  auto c = conf();
  auto r1 = add(c, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  auto r2 = add(c, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  ASSERT_EQ(forgetRecord("c2").rc, 0);
  auto doctor = [&](const std::string& args) {
    return inHost("PLUMB_OVSDB=unix:" + socket() + " " + PLUMB_BIN + " --state-dir " +
                  state_.path() + "/state doctor " + args);
  };
  auto r = doctor("");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("orphan-port ovsnet/c2/eth0: an Open vSwitch port plumb made"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("orphan-link"), std::string::npos) << "the port's line covers its veth";
  EXPECT_EQ(r.out.find("c1"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("other"), std::string::npos) << r.out;
  auto fixed = doctor("--fix");
  EXPECT_EQ(fixed.rc, 0) << fixed.out;
  EXPECT_EQ(doctor("").out, "no differences: the store and the kernel agree\n");
  auto left = ports();
  EXPECT_NE(left.find(hostEnd(r1)), std::string::npos) << left;
  EXPECT_EQ(left.find(hostEnd(r2)), std::string::npos) << left;
  EXPECT_NE(left.find("other"), std::string::npos) << "someone else's port stays: " << left;
  EXPECT_NE(inHost("ip link show " + hostEnd(r2)).rc, 0) << "its veth went with it";
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
  EXPECT_EQ(ports(), "other\n");
  // ovsdb-server gone: an attachment that depends on it is one line, not a failure to run.
  ASSERT_EQ(add(c, "c1", c1).rc, 0);
  stop("vswitchd");
  stop("ovsdb");
  auto down = doctor("");
  EXPECT_NE(down.out.find("ovsdb-unreachable " + socket() + ": "), std::string::npos) << down.out;
  startDb();
  startVswitchd();
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
}

TEST_F(Ovs, ConcurrentAddsOnOneBridgeLoseNoPort) {
  constexpr int kN = 32;
  std::vector<std::string> netns;
  for (int i = 0; i < kN; ++i) netns.push_back(makeNetns("p" + std::to_string(i)));
  auto c = conf("198.18.32.0/24");
  std::vector<Cmd> results(kN);
  std::vector<std::thread> threads;
  for (int i = 0; i < kN; ++i)
    threads.emplace_back([&, i] { results[i] = add(c, "p" + std::to_string(i), netns[i]); });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kN; ++i) EXPECT_EQ(results[i].rc, 0) << i << ": " << results[i].out;
  auto listed = ports();
  EXPECT_EQ(std::count(listed.begin(), listed.end(), '\n'), kN) << listed;
  for (int i = 0; i < kN; ++i) EXPECT_EQ(del(c, "p" + std::to_string(i), netns[i]).rc, 0);
  EXPECT_EQ(ports(), "");
}

TEST_F(Ovs, AddExecsNothing) {
  auto c1 = makeNetns("c1");
  auto c = conf();
  std::string trace = state_.path() + "/trace";
  // LeakSanitizer cannot run under ptrace (the ASan tier): leaks are checked everywhere else.
  // The plugin process itself does the work (no resident CNI service takes the call, nor is
  // one started under the trace, which would follow it).
  auto r = cni(
      "ADD", c, "c1", c1, "eth0",
      "PLUMB_RESIDENT=off ASAN_OPTIONS=detect_leaks=0 strace -f -qq -e trace=execve -o " + trace);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto execs = sh("grep -c 'execve(' " + trace).out;
  auto others = sh("grep 'execve(' " + trace + " | grep -v '" + PLUMB_BIN + "' || true").out;
  EXPECT_EQ(execs, "1\n") << sh("cat " + trace).out;
  EXPECT_EQ(others, "");
  EXPECT_EQ(del(c, "c1", c1).rc, 0);
}

TEST_F(Ovs, CommandLineAsksOvsdbAndCreatesOvsNamesAsPipeworkDoes) {
  makeNetns("g1");
  makeNetns("g2");
  std::string plumb = cli();
  // An existing OVS bridge whose name says nothing: OVSDB is asked.
  auto first = inHost(plumb + "br-a " + nsName("g1") + " 198.18.34.2/24 @5");
  ASSERT_EQ(first.rc, 0) << first.out;
  EXPECT_NE(first.out.find("to br-a (ovs)"), std::string::npos) << first.out;
  // A missing ovs* name: made in Open vSwitch, with the datapath asked for.
  auto made = inHost(plumb + "--ovs-datapath netdev ovsnew " + nsName("g2") + " 198.18.35.3/24");
  ASSERT_EQ(made.rc, 0) << made.out;
  EXPECT_EQ(vsctl("--no-wait get bridge ovsnew datapath_type").out, "netdev\n");
  EXPECT_EQ(vsctl("--no-wait get bridge ovsnew external_ids:owner").out, "plumb\n");
  auto again = inHost(plumb + "br-a " + nsName("g1") + " 198.18.34.2/24 @5");
  EXPECT_EQ(again.rc, 0) << "the same command again is a no-op: " << again.out;
  auto other = inHost(plumb + "br-a " + nsName("g1") + " 198.18.34.2/24 @6");
  EXPECT_EQ(other.rc, 1);
  EXPECT_NE(other.out.find("VLAN 5 (asked 6)"), std::string::npos) << other.out;
  auto ls = inHost(plumb + "ls");
  EXPECT_NE(ls.out.find("br-a@5"), std::string::npos) << ls.out;
  auto ports_a = ports();
  EXPECT_EQ(std::count(ports_a.begin(), ports_a.end(), '\n'), 1) << ports_a;
  auto datapath = inHost(plumb + "--ovs-datapath netdev br-a " + nsName("g2") + " 198.18.34.3/24");
  EXPECT_EQ(datapath.rc, 1);
  EXPECT_NE(datapath.out.find("--ovs-datapath is for an Open vSwitch bridge plumb creates"),
            std::string::npos)
      << datapath.out;
  EXPECT_EQ(inHost(plumb + "del " + nsName("g1")).rc, 0);
  EXPECT_EQ(inHost(plumb + "del " + nsName("g2")).rc, 0);
  EXPECT_EQ(ports(), "");
  EXPECT_EQ(ports("ovsnew"), "") << "the bridge plumb made stays, as pipework's do";
  EXPECT_EQ(vsctl("--no-wait br-exists ovsnew").rc, 0);
}

TEST_F(Ovs, ABridgeMadeForAFailedAttachGoesAgain) {
  makeNetns("g1");
  std::string plumb = cli();
  // The guest already has eth1: the attach fails after the bridge was made.
  ASSERT_EQ(in(nsName("g1"), "ip link add eth1 type veth peer name x1").rc, 0);
  auto r = inHost(plumb + "--ovs-datapath netdev ovsgone " + nsName("g1") + " 198.18.36.2/24");
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_EQ(vsctl("--no-wait br-exists ovsgone").rc, 2) << "the bridge it made is gone";
}

#ifdef PLUMB_WITH_FAILPOINTS
// The failpoint walk (failpoint_walk.h) in ovs mode: the switch's ports and interfaces are
// compared too, and `plumb doctor --fix` finds this test's switch through PLUMB_OVSDB.
class OvsFailpoint : public FailpointWalk<Ovs> {
 protected:
  void SetUp() override {
    FailpointWalk<Ovs>::SetUp();
    walk_env_ = "PLUMB_OVSDB=unix:" + socket();
  }
  std::string moreState() override {
    return ports() + vsctl("--no-wait --columns=name,external_ids list interface").out;
  }
};

TEST_F(OvsFailpoint, CniAddCheckAndDelAtEveryStep) { walkCni(conf(), "198.18.30.2"); }
#endif

}  // namespace
}  // namespace plumb::testing
