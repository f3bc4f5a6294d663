// The cluster IPAM across hosts, against a real three-member etcd 3.4: the test's namespace is
// the wire (a bridge, the etcd members on 198.18.250.254), two host namespaces are joined to it
// by veths and each runs its own plumb (its own state dir, PLUMB_HOST); containers on each
// host are namespaces attached by macvlan to the host's wire interface, all in one subnet.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <thread>

#include "../unit/store_dump.h"
#include "etcd_members.h"
#include "harness.h"
#include "repliers.h"

extern char** environ;

namespace plumb::testing {
namespace {

using Clock = std::chrono::steady_clock;

// args[0] started as this test process's child (so that waitpid reaps it), found in PATH; -1
// when it could not be.
pid_t spawn(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawnp(&pid, argv[0], nullptr, nullptr, argv.data(), environ) != 0) return -1;
  return pid;
}

class Cluster : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    ASSERT_EQ(inHost("ip link add wire type bridge && ip link set wire up && ip addr add "
                     "198.18.250.254/24 dev wire")
                  .rc,
              0);
    members_ = std::make_unique<EtcdMembers>(host(), "198.18.250.254", state_.path(), prefix_);
    for (int i = 0; i < EtcdMembers::kMembers; ++i) ASSERT_TRUE(members_->start(i));
    joinHost("ha", 1);
    joinHost("hb", 2);
    // The cluster is up once a write goes through.
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (etcdctl("put /up 1").rc != 0) {
      ASSERT_LT(Clock::now(), deadline) << members_->logs();
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void TearDown() override {
    for (auto& [h, pid] : dockerds_) {
      if (pid <= 0) continue;
      // Its containers first (dockerd stops them on the way out), then it.
      in(nsName(h), docker(h) + "rm -f $(" + docker(h) + "ps -aq) >/dev/null 2>&1");
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
    }
    // A dockerd leaves its data root bind-mounted on itself.
    sh("grep -o ' " + state_.path() + "[^ ]*' /proc/mounts | sort -r | xargs -r umount -l");
    for (auto& [h, pid] : daemons_) stopDaemon(h, SIGKILL);
    for (const auto& path : sockets_) ::unlink(path.c_str());  // a killed daemon's
    members_.reset();
    NetnsTest::TearDown();
  }

  // The command line on host h, with its state.
  Cmd plumbOn(const std::string& h, const std::string& args) {
    return in(nsName(h), std::string(PLUMB_BIN) + " --state-dir " + stateOf(h) + " " + args);
  }
  // plumb daemon on host h (n: its wire address's last byte), sharing services through etcd.
  // socket: where it serves Docker's remote driver calls (default: in its state dir).
  void startDaemon(const std::string& h, int n, const std::string& socket = "") {
    ::mkdir(stateOf(h).c_str(), 0700);
    std::vector<std::string> args{"ip",
                                  "netns",
                                  "exec",
                                  nsName(h),
                                  PLUMB_BIN,
                                  "daemon",
                                  "--state-dir",
                                  stateOf(h),
                                  "--socket",
                                  socket.empty() ? stateOf(h) + "/docker.sock" : socket,
                                  "--docker-socket",
                                  "off",
                                  "--etcd-endpoints",
                                  members_->endpointList(),
                                  "--advertise-address",
                                  "198.18.250." + std::to_string(n),
                                  "--host",
                                  h};
    pid_t pid = spawn(args);
    ASSERT_GT(pid, 0);
    daemons_[h] = pid;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (plumbOn(h, "--json ls --links").rc != 0 ||
           ::access((stateOf(h) + "/control.sock").c_str(), F_OK) != 0) {
      ASSERT_LT(Clock::now(), deadline) << "the daemon on " << h << " does not answer";
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  int stopDaemon(const std::string& h, int sig) {
    pid_t pid = daemons_[h];
    if (pid <= 0) return -1;
    ::kill(pid, sig);
    int status = 0;
    ::waitpid(pid, &status, 0);
    daemons_[h] = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  // A guest on host h, on a bridge of that host's at 198.18.<net>.2 (the host at .1).
  std::string guestOn(const std::string& h, const std::string& g, int net) {
    std::string path = makeNetns(g);
    std::string sub = "198.18." + std::to_string(net) + ".";
    EXPECT_EQ(plumbOn(h, "br-" + g + " " + nsName(g) + " " + sub + "2/24").rc, 0);
    EXPECT_EQ(in(nsName(h), "ip addr add " + sub + "1/24 dev br-" + g).rc, 0);
    return path;
  }
  // The hosts registered for a service in etcd.
  std::string registered(const std::string& name) {
    return etcdctl("get --prefix --keys-only /plumb/services/" + name + "/").out;
  }

  // A host: a namespace with its wire interface (wire0, 198.18.250.<n>) on the bridge.
  void joinHost(const std::string& name, int n) {
    makeNetns(name);
    std::string peer = "w" + name;
    ASSERT_EQ(inHost("ip link add " + peer + " type veth peer name wire0 netns " + nsName(name) +
                     " && ip link set " + peer + " master wire up")
                  .rc,
              0);
    ASSERT_EQ(in(nsName(name), "ip link set wire0 up && ip addr add 198.18.250." +
                                   std::to_string(n) + "/24 dev wire0")
                  .rc,
              0);
  }

  Cmd etcdctl(const std::string& args) {
    return inHost("ETCDCTL_API=3 etcdctl --dial-timeout=2s --command-timeout=3s --endpoints=" +
                  members_->endpointList() + " " + args);
  }
  // The block keys etcd holds, each with its host.
  std::map<std::string, std::string> blocks() {
    auto r = etcdctl("get --prefix /plumb/ipam/ --print-value-only=false");
    std::map<std::string, std::string> out;
    std::istringstream lines(r.out);
    std::string key, value;
    while (std::getline(lines, key) && std::getline(lines, value))
      out[key.substr(key.rfind('/') + 1)] = json::parse(value)["host"];
    return out;
  }

  json conf(int block_size = 28) {
    return {{"cniVersion", "1.0.0"},
            {"name", "wide"},
            {"type", "plumb"},
            {"master", "wire0"},
            {"ipam",
             {{"type", "plumb"},
              {"subnet", "198.18.96.0/24"},
              {"etcd", {{"endpoints", members_->endpoints()}, {"blockSize", block_size}}}}}};
  }
  // Once every address is given back, no block is left in etcd (a helper claiming a block
  // ahead of need when the last address went gives its block back itself: waited for).
  bool noBlocksLeft() {
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (!blocks().empty() && Clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return blocks().empty();
  }
  std::string stateOf(const std::string& h) const { return state_.path() + "/" + h; }

  // command for each container concurrently, on host h (its own state dir and PLUMB_HOST);
  // with kill_after_ms, the plugins still running then are killed with SIGKILL.
  std::map<std::string, Cmd> cniOn(const std::string& h, const std::string& command, json c,
                                   const std::vector<std::string>& ids, int kill_after_ms = 0) {
    c["dataDir"] = stateOf(h);
    std::string dir = state_.path() + "/run-" + h + "-" + command;
    ::mkdir(dir.c_str(), 0700);
    std::ofstream(dir + "/conf.json") << c.dump();
    // (The shell's "Killed" notices go nowhere.)
    std::string script = kill_after_ms > 0 ? "exec 2>/dev/null; pids=''; " : "pids=''; ";
    for (const auto& id : ids) {
      script += "ip netns exec " + nsName(h) + " env CNI_COMMAND=" + command +
                " CNI_CONTAINERID=" + id + " CNI_NETNS=/run/netns/" + nsName(id) +
                " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni PLUMB_HOST=" + h + " " + PLUMB_BIN + " < " +
                dir + "/conf.json > " + dir + "/" + id + ".out 2>&1 & pids=\"$pids $!\"; ";
    }
    if (kill_after_ms > 0) {
      script += "sleep " + std::to_string(kill_after_ms / 1000.0) + "; kill -9 $pids 2>/dev/null; ";
    }
    script += "for p in $pids; do wait $p; echo $?; done";
    auto r = sh(script);
    std::map<std::string, Cmd> out;
    std::istringstream rcs(r.out);
    for (const auto& id : ids) {
      Cmd one;
      rcs >> one.rc;
      std::ifstream f(dir + "/" + id + ".out");
      std::stringstream ss;
      ss << f.rdbuf();
      one.out = ss.str();
      out[id] = one;
    }
    return out;
  }

  std::vector<std::string> containers(const std::string& tag, int n) {
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      ids.push_back(tag + std::to_string(i));
      makeNetns(ids.back());
    }
    return ids;
  }

  // The addresses host h's store holds, and its attachments.
  std::string allocations(const std::string& h) {
    return storeDumpOf(stateOf(h) + "/plumb.db",
                       {"ip_cursor", "ip_released", "sqlite_sequence", "cluster_leases"});
  }

  // A dockerd of host h's own (data, exec root and socket in the test's dir; no bridge and no
  // iptables of its own), in h's network namespace through nsenter, which leaves /sys and its
  // cgroups as they are (`ip netns exec` mounts a /sys without them).
  std::string dockerDir(const std::string& h) const { return state_.path() + "/docker-" + h; }
  std::string docker(const std::string& h) const {
    return "docker -H unix://" + dockerDir(h) + "/sock ";
  }
  void startDockerd(const std::string& h) {
    std::string d = dockerDir(h);
    ::mkdir(d.c_str(), 0700);
    std::vector<std::string> args{"nsenter", "--net=/run/netns/" + nsName(h), "sh", "-c",
                                  "exec dockerd --data-root " + d + "/data --exec-root " + d +
                                      "/exec --pidfile " + d + "/pid -H unix://" + d +
                                      "/sock --bridge none --iptables=false --ip6tables=false "
                                      ">" +
                                      d + "/log 2>&1"};
    pid_t pid = spawn(args);
    ASSERT_GT(pid, 0);
    dockerds_[h] = pid;
    auto deadline = Clock::now() + std::chrono::seconds(60);
    while (sh(docker(h) + "info >/dev/null 2>&1").rc != 0) {
      ASSERT_LT(Clock::now(), deadline) << sh("tail -5 " + d + "/log").out;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    // busybox-static as an image (no registry here).
    std::string root = d + "/image";
    ASSERT_EQ(sh("mkdir -p " + root + "/bin && cp \"$(readlink -f \"$(command -v busybox)\")\" " +
                 root + "/bin/busybox && for a in sh ping sleep ip; do ln -s busybox " + root +
                 "/bin/$a; done && tar -C " + root + " -c . | " + docker(h) +
                 "import - plumb-cluster-bb >/dev/null")
                  .rc,
              0);
  }

  std::unique_ptr<EtcdMembers> members_;
  std::map<std::string, pid_t> daemons_;
  std::map<std::string, pid_t> dockerds_;
  std::vector<std::string> sockets_;  // plugin sockets under /run/docker/plugins
};

// Whether a store dump has rows in table.
bool hasRows(const std::string& dump, const std::string& table) {
  auto at = dump.find(table + ":\n");
  if (at == std::string::npos) return false;
  return dump.compare(at + table.size() + 2, 3, "  |") == 0;
}

std::string addressOf(const Cmd& r) {
  auto j = json::parse(r.out);
  std::string a = j["ips"][0]["address"];
  return a;
}

TEST_F(Cluster, TwoHostsShareASubnetAndTheirContainersTalk) {
  auto a = containers("a", 64), b = containers("b", 64);
  std::map<std::string, Cmd> on_a, on_b;
  std::thread ta([&] { on_a = cniOn("ha", "ADD", conf(), a); });
  std::thread tb([&] { on_b = cniOn("hb", "ADD", conf(), b); });
  ta.join();
  tb.join();
  std::set<std::string> addrs;
  std::map<std::string, std::string> addr_of;
  for (auto* results : {&on_a, &on_b}) {
    for (const auto& [id, r] : *results) {
      ASSERT_EQ(r.rc, 0) << id << ": " << r.out;
      std::string addr = addressOf(r);
      EXPECT_EQ(addr.substr(addr.find('/')), "/24") << addr;
      addrs.insert(addr);
      addr_of[id] = addr.substr(0, addr.find('/'));
    }
  }
  EXPECT_EQ(addrs.size(), 128u) << "no address given twice across the hosts";
  // Each host's addresses lie in blocks etcd holds for it.
  auto held = blocks();
  for (const auto& [id, addr] : addr_of) {
    unsigned last = std::stoul(addr.substr(addr.rfind('.') + 1));
    std::string block = "198.18.96." + std::to_string(last / 16 * 16) + "-28";
    EXPECT_EQ(held[block], id[0] == 'a' ? "ha" : "hb") << addr << " in " << block;
  }
  // Each host's view of what it holds: every block in etcd and in its store, 64 addresses.
  for (const std::string h : {"ha", "hb"}) {
    auto ls = plumbOn(
        h, "ls --cluster --json --host " + h + " --etcd-endpoints " + members_->endpointList());
    ASSERT_EQ(ls.rc, 0) << ls.out;
    auto view = json::parse(ls.out);
    EXPECT_EQ(view["host"], h);
    // (Whether etcd still binds it depends on time: a host that only runs the CNI plugin
    // renews its lease when it allocates, so an idle one's lapses after the TTL.)
    EXPECT_NE(view["lease"].get<int64_t>(), 0) << ls.out;
    long long in_blocks = 0;
    for (const auto& block : view["blocks"]) {
      // (A block a helper is claiming ahead of need may be in etcd and not yet in the store.)
      if (block["addresses"].get<long long>() > 0) {
        EXPECT_TRUE(block["inEtcd"].get<bool>() && block["inStore"].get<bool>()) << block.dump();
      }
      in_blocks += block["addresses"].get<long long>();
    }
    EXPECT_EQ(in_blocks, 64) << ls.out;
  }
  // Containers on both hosts reach each other over the wire.
  EXPECT_TRUE(ping(nsName("a0"), addr_of["b0"]));
  EXPECT_TRUE(ping(nsName("b63"), addr_of["a17"]));
  // Everything goes: no address is left in etcd or in either store.
  std::map<std::string, Cmd> del_a, del_b;
  std::thread da([&] { del_a = cniOn("ha", "DEL", conf(), a); });
  std::thread db([&] { del_b = cniOn("hb", "DEL", conf(), b); });
  da.join();
  db.join();
  for (auto* results : {&del_a, &del_b}) {
    for (const auto& [id, r] : *results) EXPECT_EQ(r.rc, 0) << id << ": " << r.out;
  }
  EXPECT_TRUE(noBlocksLeft()) << etcdctl("get --prefix /plumb/ipam/").out;
  for (const std::string h : {"ha", "hb"}) {
    auto dump = allocations(h);
    EXPECT_FALSE(hasRows(dump, "ip_allocs")) << h << ":\n" << dump;
    EXPECT_FALSE(hasRows(dump, "cluster_blocks")) << h << ":\n" << dump;
    EXPECT_FALSE(hasRows(dump, "attachments")) << h << ":\n" << dump;
  }
}

// Called as a runtime calls plugins (every call from one long-lived process, through nsenter:
// `ip netns exec` makes a mount namespace per command), host ha's calls go to its resident
// CNI service, which claims the next block ahead of need on a thread of its own (plumb and
// libcurl are loaded there already) rather than starting a helper process.
TEST_F(Cluster, AResidentServiceClaimsAheadOnAThreadOfItsOwn) {
  auto ids = containers("r", 24);
  json c = conf();
  c["dataDir"] = stateOf("ha");
  std::string file = state_.path() + "/resident-conf.json";
  std::ofstream(file) << c.dump();
  auto call = [&](const std::string& command, const std::string& id) {
    return sh("nsenter --net=/run/netns/" + nsName("ha") +
              " env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin PLUMB_HOST=ha CNI_COMMAND=" + command +
              " CNI_CONTAINERID=" + id + " CNI_NETNS=/run/netns/" + nsName(id) +
              " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni " + PLUMB_BIN + " < " + file);
  };
  // Blocks of 16 with a quarter kept free: the 12th address leaves 4, and the next block is
  // claimed ahead then, before any ADD needs it.
  std::set<std::string> addrs;
  auto add = [&](size_t from, size_t to) {
    for (size_t i = from; i < to; ++i) {
      auto r = call("ADD", ids[i]);
      ASSERT_EQ(r.rc, 0) << ids[i] << ": " << r.out;
      addrs.insert(addressOf(r));
    }
  };
  add(0, 13);
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (blocks().size() < 2 && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(blocks().size(), 2u) << "the second block, claimed ahead of need";
  add(13, ids.size());
  EXPECT_EQ(addrs.size(), ids.size());
  auto status = sh(std::string(PLUMB_BIN) + " cni-resident status " + stateOf("ha"));
  ASSERT_EQ(status.rc, 0) << status.out;
  EXPECT_NE(status.out.find("served 23 "), std::string::npos) << status.out;
  auto held = blocks();
  EXPECT_EQ(held.size(), 2u) << "24 addresses: two blocks, no third";
  for (const auto& [block, host] : held) EXPECT_EQ(host, "ha") << block;
  for (const auto& id : ids) EXPECT_EQ(call("DEL", id).rc, 0) << id;
  EXPECT_TRUE(noBlocksLeft());
  // It stops once its claims are done, and leaves nothing of its own.
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + stateOf("ha")).rc, 0);
  EXPECT_EQ(sh("ls " + stateOf("ha") + " | grep -c '^cni-' || true").out, "0\n");
}

// A claim ahead of need must not outlast its process: while the host's lock stays taken past
// the etcd timeout, the claim gives its block back and ends; with the lock free, the same claim
// goes through (the positive control).
TEST_F(Cluster, AClaimAheadGivesUpWhenTheHostsLockStaysTaken) {
  // /30 blocks: .2 and .3 in the first (its .0 is the subnet's, .1 the gateway), .4 to .7 in
  // the second. The first ADD leaves one free and its helper claims the second block; the
  // ADD of .6 leaves one free again, with the claim lock held here so that it starts none.
  auto ids = containers("k", 5);
  std::string dir = stateOf("ha");
  auto hold = [&](const char* name, int how) {
    int fd = ::open((dir + "/" + name).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0) << name;
    if (::flock(fd, how) == 0) return fd;
    ::close(fd);
    return -1;
  };
  auto add = [&](size_t i) {
    auto r = cniOn("ha", "ADD", conf(30), {ids[i]})[ids[i]];
    EXPECT_EQ(r.rc, 0) << r.out;
    return r.rc == 0 ? addressOf(r) : r.out;
  };
  EXPECT_EQ(add(0), "198.18.96.2/24");
  auto deadline = Clock::now() + std::chrono::seconds(10);
  int claiming = -1;
  while ((blocks().size() < 2 || (claiming = hold("cluster-claim.lock", LOCK_EX | LOCK_NB)) < 0) &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(claiming, 0) << "the first ADD's helper did not finish its claim";
  ASSERT_EQ(blocks().size(), 2u);
  ::close(claiming);
  for (size_t i = 1; i < 4; ++i) EXPECT_EQ(add(i), "198.18.96." + std::to_string(i + 2) + "/24");
  claiming = hold("cluster-claim.lock", LOCK_EX);
  EXPECT_EQ(add(4), "198.18.96.6/24");
  EXPECT_EQ(blocks().size(), 2u);
  ::close(claiming);
  json spec = {{"dir", dir},
               {"endpoints", members_->endpoints()},
               {"prefix", "/plumb"},
               {"blockSize", 30},
               {"blockSizeV6", 0},
               {"host", "ha"},
               {"timeoutMs", 500},
               {"leaseTtl", 10},
               {"ranges",
                {{{"subnet", "198.18.96.0/24"},
                  {"start", "198.18.96.1"},
                  {"end", "198.18.96.254"},
                  {"gateway", "198.18.96.1"}}}}};
  std::ofstream(state_.path() + "/claim.json") << spec.dump();
  auto claim = [&] {
    // (Killed after 10 s: a claim that waits for ever fails here rather than hangs.)
    return in(nsName("ha"), "timeout -s KILL 10 env -i PLUMB_CLUSTER_CLAIM=\"$(cat " +
                                state_.path() + "/claim.json)\" " + PLUMB_BIN);
  };
  int host_lock = hold("cluster.lock", LOCK_EX);
  auto start = Clock::now();
  auto stuck = claim();
  auto took = Clock::now() - start;
  ::close(host_lock);
  EXPECT_EQ(stuck.rc, 1) << stuck.out;
  EXPECT_LT(took, std::chrono::seconds(5)) << "the etcd timeout (500 ms) bounds the wait";
  EXPECT_EQ(blocks().size(), 2u) << "the block claimed meanwhile went back to etcd";
  auto done = claim();
  EXPECT_EQ(done.rc, 0) << done.out;
  EXPECT_EQ(blocks().size(), 3u) << "the same claim, the lock free";
  for (const auto& [id, del] : cniOn("ha", "DEL", conf(30), ids)) EXPECT_EQ(del.rc, 0) << id;
  EXPECT_TRUE(noBlocksLeft());
}

TEST_F(Cluster, WithoutQuorumANewBlockFailsCleanlyAndComesBack) {
  auto c = containers("c", 4);
  auto one = [&](const std::string& id, const std::string& cmd = "ADD", int block = 30) {
    return cniOn("ha", cmd, conf(block), {id})[id];
  };
  // /30 blocks: two addresses in the first (.0 is the subnet's, .1 its gateway), four after.
  ASSERT_EQ(one("c0").rc, 0);
  ASSERT_EQ(one("c1").rc, 0);
  members_->kill(0);
  auto r = one("c2");
  ASSERT_EQ(r.rc, 0) << "one member down changes nothing: " << r.out;
  EXPECT_EQ(addressOf(r), "198.18.96.4/24")
      << "the next block (claimed ahead of need, or now with two members)";
  members_->kill(1);
  // Without quorum, an ADD whose address lies in a block the host does not hold (asked for:
  // no block claimed ahead of need can serve it) fails within the etcd timeout, in one line,
  // leaving nothing.
  auto wanting = [&](const std::string& id) {
    auto cfg = conf(30);
    cfg["runtimeConfig"] = {{"ips", {"198.18.96.201"}}};
    return cniOn("ha", "ADD", cfg, {id})[id];
  };
  auto before = allocations("ha");
  auto start = Clock::now();
  auto add = wanting("c3");
  auto took = Clock::now() - start;
  ASSERT_NE(add.rc, 0) << "an ADD needing etcd without quorum: " << add.out;
  EXPECT_LT(took, std::chrono::seconds(12)) << "the etcd timeout bounds the failure";
  auto j = json::parse(add.out);
  std::string msg = j["msg"];
  EXPECT_NE(msg.find("etcd"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_EQ(allocations("ha"), before) << "nothing half-done in the store";
  EXPECT_NE(in(nsName("c3"), "ip link show eth0").rc, 0) << "no interface left";
  // A member back: the same ADD goes through (once the members have elected a leader).
  ASSERT_TRUE(members_->start(1));
  auto deadline = Clock::now() + std::chrono::seconds(30);
  Cmd again = wanting("c3");
  while (again.rc != 0 && Clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    again = wanting("c3");
  }
  ASSERT_EQ(again.rc, 0) << again.out;
  EXPECT_EQ(addressOf(again), "198.18.96.201/24");
  std::vector<std::string> added(c.begin(), c.begin() + 4);
  for (const auto& [cid, d] : cniOn("ha", "DEL", conf(30), added)) EXPECT_EQ(d.rc, 0) << cid;
  EXPECT_TRUE(noBlocksLeft()) << etcdctl("get --prefix /plumb/ipam/").out;
}

TEST_F(Cluster, Kill9MidAddsThenDelOfEverythingLeaksNothing) {
  auto k = containers("k", 32);
  // Killed 50 ms in: some have finished, some are in etcd or the kernel, some not begun.
  auto killed = cniOn("ha", "ADD", conf(29), k, 50);
  int finished = 0;
  for (const auto& [id, r] : killed) finished += r.rc == 0;
  // The runtime retries nothing and DELs everything (a restart of the host's pods).
  for (const auto& [id, r] : cniOn("ha", "DEL", conf(29), k))
    EXPECT_EQ(r.rc, 0) << id << ": " << r.out;
  EXPECT_TRUE(noBlocksLeft()) << finished << " had finished; etcd holds "
                              << etcdctl("get --prefix /plumb/ipam/").out;
  auto dump = allocations("ha");
  EXPECT_FALSE(hasRows(dump, "ip_allocs")) << dump;
  EXPECT_FALSE(hasRows(dump, "cluster_blocks")) << dump;
  EXPECT_FALSE(hasRows(dump, "attachments")) << dump;
  for (const auto& id : k) EXPECT_NE(in(nsName(id), "ip link show eth0").rc, 0) << id;
  // And the host goes on: a full round again.
  auto again = cniOn("ha", "ADD", conf(29), k);
  for (const auto& [id, r] : again) EXPECT_EQ(r.rc, 0) << id << ": " << r.out;
  for (const auto& [id, r] : cniOn("ha", "DEL", conf(29), k)) EXPECT_EQ(r.rc, 0) << id;
  EXPECT_TRUE(noBlocksLeft());
}

TEST_F(Cluster, BadInputIsOneLineAndChangesNothing) {
  auto c = containers("x", 1);
  // A server on the wire that answers every request with garbage, as a broken proxy might.
  std::string garbage = state_.path() + "/garbage.py";
  std::ofstream(garbage)
      << "import http.server\n"
         "class H(http.server.BaseHTTPRequestHandler):\n"
         "    def do_POST(self):\n"
         "        self.send_response(200)\n"
         "        self.send_header('Content-Length', '9')\n"
         "        self.end_headers()\n"
         "        self.wfile.write(b'not json!')\n"
         "    def log_message(self, *a): pass\n"
         "http.server.HTTPServer(('198.18.250.254', 24999), H).serve_forever()\n";
  pid_t server = spawn({"ip", "netns", "exec", host(), "python3", garbage});
  ASSERT_GT(server, 0);
  auto stop = [&] {
    ::kill(server, SIGKILL);
    ::waitpid(server, nullptr, 0);
  };
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (inHost("curl -s -X POST http://198.18.250.254:24999/").out != "not json!" &&
         Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto before = allocations("ha");
  struct Case {
    json etcd;
    std::string want;
  };
  std::vector<Case> cases = {
      {{{"endpoints", {"http://198.18.250.254:1"}}, {"timeoutMs", 1000}}, "198.18.250.254:1"},
      {{{"endpoints", {"http//198.18.250.254:22379"}}}, "http//198.18.250.254:22379"},
      {{{"endpoints", members_->endpoints()}, {"prefix", "/plumb/../x"}}, "'..'"},
      {{{"endpoints", members_->endpoints()}, {"blockSize", 8}}, "blockSize 8"},
      {{{"endpoints", {"http://198.18.250.254:24999"}}, {"timeoutMs", 1000}}, "24999"},
      {{{"endpoints", members_->endpoints()}, {"host", "a/b"}}, "host name 'a/b'"},
  };
  for (const auto& k : cases) {
    auto cfg = conf();
    cfg["ipam"]["etcd"] = k.etcd;
    auto r = cniOn("ha", "ADD", cfg, c)["x0"];
    EXPECT_NE(r.rc, 0) << k.etcd.dump();
    auto j = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(j.is_object()) << r.out;
    std::string msg = j.value("msg", std::string());
    EXPECT_NE(msg.find(k.want), std::string::npos) << k.etcd.dump() << ": " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_EQ(allocations("ha"), before) << k.etcd.dump();
    EXPECT_NE(in(nsName("x0"), "ip link show eth0").rc, 0) << k.etcd.dump();
  }
  stop();
  EXPECT_TRUE(blocks().empty());
}

// Whether pred came true within seconds (asked every 20 ms). How soon a change reaches the
// other hosts is bench/cluster_bench.sh's figure, not a test's: under the sanitizers and the
// parallel tiers a 1 s bound here failed on a correct build.
template <class Pred>
bool until(Pred pred, int seconds = 10) {
  auto start = Clock::now();
  while (!pred()) {
    if (Clock::now() - start >= std::chrono::seconds(seconds)) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return true;
}

TEST_F(Cluster, ALinkFollowsAServiceAcrossHosts) {
  joinHost("hc", 3);
  auto sb = guestOn("hb", "sb", 71), sc = guestOn("hc", "sc", 72), ca = guestOn("ha", "ca", 73);
  Replier on_b(sb, 8080, "from-b"), on_c(sc, 8080, "from-c");
  startDaemon("ha", 1);
  startDaemon("hb", 2);
  // Exposed on host B; linked by name on host A (the port comes from B's registration).
  auto r = plumbOn("hb", "expose " + nsName("sb") + " web 8080");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(registered("web").find("/plumb/services/web/tcp/hb/" + nsName("sb")), std::string::npos)
      << registered("web");
  EXPECT_TRUE(until([&] { return plumbOn("ha", "link " + nsName("ca") + " web").rc == 0; }))
      << "host A never learnt of B's endpoint";
  EXPECT_EQ(askIn(ca, 8080), "from-b");
  // A second instance on host C: used once its registration reaches host A.
  startDaemon("hc", 3);
  ASSERT_EQ(plumbOn("hc", "expose " + nsName("sc") + " web 8080").rc, 0);
  auto view =
      plumbOn("hc", "ls --cluster --json --host hc --etcd-endpoints " + members_->endpointList());
  ASSERT_EQ(view.rc, 0) << view.out;
  EXPECT_EQ(json::parse(view.out)["services"].size(), 1u) << view.out;
  EXPECT_TRUE(until([&] { return askIn(ca, 8080) == "from-c"; })) << "C's endpoint never used";
  // Both instances serve (new connections alternate between the two least busy).
  std::set<std::string> seen;
  until([&] {
    seen.insert(askIn(ca, 8080));
    return seen.size() == 2;
  });
  EXPECT_EQ(seen, (std::set<std::string>{"from-b", "from-c"}));
  // Host B's daemon dies: its registration goes with its lease (TTL 10 s), and every new
  // connection goes to C.
  EXPECT_EQ(stopDaemon("hb", SIGKILL), 128 + SIGKILL);
  EXPECT_TRUE(until([&] { return registered("web").find("/tcp/hb/") == std::string::npos; }, 12))
      << "B's endpoint not gone within the lease's TTL (10 s)";
  for (int i = 0; i < 10; ++i) EXPECT_EQ(askIn(ca, 8080), "from-c");
  // Without quorum a new registration fails in one line, and changes nothing.
  members_->kill(0);
  members_->kill(1);
  auto start = Clock::now();
  r = plumbOn("hc", "expose " + nsName("sc") + " api 9090");
  EXPECT_NE(r.rc, 0);
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(12));
  EXPECT_NE(r.out.find("failed to register api/tcp"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find('\n'), r.out.size() - 1) << r.out;
  auto ls = plumbOn("hc", "--json ls --links");
  EXPECT_EQ(ls.out.find("\"api\""), std::string::npos) << ls.out;
  // The existing link keeps working.
  EXPECT_EQ(askIn(ca, 8080), "from-c");
  ASSERT_TRUE(members_->start(0));
  // A clean stop takes the host's registrations away at once.
  EXPECT_EQ(stopDaemon("hc", SIGTERM), 0);
  EXPECT_EQ(stopDaemon("ha", SIGTERM), 0);
  EXPECT_TRUE(until([&] { return registered("web").empty(); }, 15)) << registered("web");
}

TEST_F(Cluster, DockerPoolsWithASubnetAreSharedAcrossHosts) {
  startDaemon("ha", 1);
  startDaemon("hb", 2);
  auto call = [&](const std::string& h, const std::string& what, const json& body) {
    auto r = in(nsName(h), "curl -s --unix-socket " + stateOf(h) + "/docker.sock -X POST -d " +
                               shq(body.dump()) + " http://plugin/IpamDriver." + what);
    EXPECT_EQ(r.rc, 0) << r.out;
    return json::parse(r.out.empty() ? "{}" : r.out);
  };
  // The same `docker network create --subnet` on both hosts.
  std::map<std::string, std::string> pool;
  for (const std::string h : {"ha", "hb"}) {
    auto p = call(h, "RequestPool", {{"AddressSpace", "plumb-local"}, {"Pool", "198.18.99.0/24"}});
    ASSERT_TRUE(p.contains("PoolID")) << p.dump();
    pool[h] = p["PoolID"];
    auto gw = call(
        h, "RequestAddress",
        {{"PoolID", pool[h]}, {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}});
    EXPECT_EQ(gw["Address"], "198.18.99.1/24") << gw.dump();
  }
  // 20 containers on each host at once: no address twice, never the gateway.
  std::set<std::string> given;
  std::map<std::string, std::vector<std::string>> by_host;
  std::mutex mu;
  auto run = [&](const std::string& h) {
    for (int i = 0; i < 20; ++i) {
      auto a = call(h, "RequestAddress", {{"PoolID", pool[h]}, {"Options", json::object()}});
      std::lock_guard lock(mu);
      ASSERT_TRUE(a.contains("Address")) << a.dump();
      given.insert(a["Address"]);
      by_host[h].push_back(a["Address"]);
    }
  };
  std::thread ta(run, "ha"), tb(run, "hb");
  ta.join();
  tb.join();
  EXPECT_EQ(given.size(), 40u);
  EXPECT_EQ(given.count("198.18.99.1/24"), 0u);
  auto held = blocks();
  EXPECT_EQ(held.size(), 2u) << "20 addresses fit one /26 block on each host";
  std::set<std::string> holders;
  for (const auto& [block, host] : held) holders.insert(host);
  EXPECT_EQ(holders, (std::set<std::string>{"ha", "hb"}));
  // A pool that names no subnet stays on its host.
  auto local = call("ha", "RequestPool", {{"AddressSpace", "plumb-local"}, {"Pool", ""}});
  ASSERT_TRUE(local.contains("PoolID")) << local.dump();
  auto one =
      call("ha", "RequestAddress", {{"PoolID", local["PoolID"]}, {"Options", json::object()}});
  EXPECT_TRUE(one.contains("Address")) << one.dump();
  EXPECT_EQ(blocks().size(), 2u) << "a local pool claims nothing in etcd";
  call("ha", "ReleaseAddress",
       {{"PoolID", local["PoolID"]},
        {"Address", one.value("Address", std::string())
                        .substr(0, one.value("Address", std::string()).find('/'))}});
  call("ha", "ReleasePool", {{"PoolID", local["PoolID"]}});
  // Everything given back (the containers, then the gateway at `docker network rm`): no
  // block is left in etcd.
  for (const std::string h : {"ha", "hb"}) {
    for (const auto& a : by_host[h]) {
      auto r =
          call(h, "ReleaseAddress", {{"PoolID", pool[h]}, {"Address", a.substr(0, a.find('/'))}});
      EXPECT_FALSE(r.contains("Err")) << r.dump();
    }
    call(h, "ReleaseAddress", {{"PoolID", pool[h]}, {"Address", "198.18.99.1"}});
    call(h, "ReleasePool", {{"PoolID", pool[h]}});
  }
  EXPECT_TRUE(noBlocksLeft()) << etcdctl("get --prefix /plumb/ipam/").out;
}

// Docker across two hosts: each host's dockerd uses its own plumb daemon as network and IPAM
// driver, both daemons sharing the pool through etcd; `docker network create --subnet` on each
// host gives one network whose containers (macvlan on each host's wire) get addresses from
// their own host's blocks and reach each other across hosts.
TEST_F(Cluster, TwoDockerdsShareAPoolAndTheirContainersTalk) {
  std::map<std::string, std::string> driver;
  for (const auto& [h, n] : std::map<std::string, int>{{"ha", 1}, {"hb", 2}}) {
    driver[h] = "plmc" + std::to_string(::getpid()) + h;
    sockets_.push_back("/run/docker/plugins/" + driver[h] + ".sock");
    startDaemon(h, n, sockets_.back());
    startDockerd(h);
    auto net =
        in(nsName(h), docker(h) + "network create -d " + driver[h] + " --ipam-driver " + driver[h] +
                          " --subnet 198.18.98.0/24 -o plumb.mode=macvlan "
                          "-o plumb.parent=wire0 wide");
    ASSERT_EQ(net.rc, 0) << net.out << sh("tail -5 " + dockerDir(h) + "/log").out;
  }
  std::map<std::string, std::string> ip;
  for (const std::string h : {"ha", "hb"}) {
    for (const std::string c : {"c1", "c2"}) {
      auto run = in(nsName(h), docker(h) + "run -d --name " + c + " --network wide " +
                                   "plumb-cluster-bb sleep 600");
      ASSERT_EQ(run.rc, 0) << run.out << sh("tail -5 " + dockerDir(h) + "/log").out;
      auto addr = in(nsName(h), docker(h) +
                                    "inspect -f "
                                    "'{{.NetworkSettings.Networks.wide.IPAddress}}' " +
                                    c);
      ip[h + c] = addr.out.substr(0, addr.out.find('\n'));
    }
  }
  std::set<std::string> distinct;
  for (const auto& [k, a] : ip) {
    EXPECT_EQ(a.rfind("198.18.98.", 0), 0u) << k << ": " << a;
    EXPECT_NE(a, "198.18.98.1") << "the gateway is every host's, never a container's";
    distinct.insert(a);
  }
  EXPECT_EQ(distinct.size(), 4u) << "no address given twice across the hosts";
  std::set<std::string> holders;
  for (const auto& [block, host] : blocks()) holders.insert(host);
  EXPECT_EQ(holders, (std::set<std::string>{"ha", "hb"})) << "each host its own block";
  // Across the wire: a container on one host reaches both on the other.
  auto pingFrom = [&](const std::string& h, const std::string& c, const std::string& addr) {
    return in(nsName(h), docker(h) + "exec " + c + " ping -c 1 -W 2 " + addr).rc == 0;
  };
  EXPECT_TRUE(pingFrom("ha", "c1", ip["hbc1"]));
  EXPECT_TRUE(pingFrom("ha", "c2", ip["hbc2"]));
  EXPECT_TRUE(pingFrom("hb", "c1", ip["hac2"]));
  // Everything goes: the containers, the networks (their gateways), and with them every block.
  for (const std::string h : {"ha", "hb"}) {
    EXPECT_EQ(in(nsName(h), docker(h) + "rm -f c1 c2").rc, 0);
    EXPECT_EQ(in(nsName(h), docker(h) + "network rm wide").rc, 0);
  }
  EXPECT_TRUE(noBlocksLeft()) << etcdctl("get --prefix /plumb/ipam/").out;
  for (const std::string h : {"ha", "hb"}) {
    auto dump = allocations(h);
    EXPECT_FALSE(hasRows(dump, "ip_allocs")) << h << ":\n" << dump;
    EXPECT_FALSE(hasRows(dump, "attachments")) << h << ":\n" << dump;
    EXPECT_EQ(stopDaemon(h, SIGTERM), 0);
  }
  for (const auto& path : sockets_)
    EXPECT_NE(::access(path.c_str(), F_OK), 0) << path << ": a daemon removes its socket";
}

}  // namespace
}  // namespace plumb::testing
