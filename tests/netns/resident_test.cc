// The resident CNI service (plugin/cni/resident.h): plugin processes of one caller hand their
// calls to it; callers it would not serve exactly as themselves (another mount namespace,
// another environment) are not served by it; a service killed under a call leaves that call to
// its caller; the service goes when its state directory does.
//
// The plugin runs here through nsenter --net (the test's own mount namespace, as a runtime
// runs it: every call from one long-lived process); `ip netns exec` gives each command a mount
// namespace of its own.
#include <poll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "base/fd.h"
#include "harness.h"

namespace plumb::testing {
namespace {

class Resident : public NetnsTest {
 protected:
  std::string dir() const { return state_.path() + "/state"; }

  // The CNI plugin in the host netns, in this process's mount namespace.
  Cmd call(const std::string& command, const json& conf, const std::string& cid,
           const std::string& netns_path, const std::string& extra_env = "") {
    std::string file = state_.path() + "/conf-" + cid + "-" + command + ".json";
    std::ofstream(file) << conf.dump();
    return sh("nsenter --net=/run/netns/" + host() + " env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin " +
              extra_env + " CNI_COMMAND=" + command + " CNI_CONTAINERID=" + cid + " CNI_NETNS=" +
              netns_path + " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni " + PLUMB_BIN + " < " + file);
  }

  // The services of the state directory, one line each ("SOCKET: pid N, served N (...)").
  std::vector<std::string> services() {
    auto r = sh(std::string(PLUMB_BIN) + " cni-resident status " + dir() + " 2>/dev/null");
    std::vector<std::string> out;
    std::istringstream lines(r.out);
    for (std::string l; std::getline(lines, l);) out.push_back(l);
    return out;
  }
  static long field(const std::string& line, const std::string& name) {
    auto at = line.find(name + " ");
    return at == std::string::npos ? -1 : std::stol(line.substr(at + name.size() + 1));
  }
  // Waits (bounded) for the first call's service to listen; returns its status line.
  std::string waitForService() {
    for (int i = 0; i < 500; ++i) {
      auto s = services();
      if (!s.empty()) return s[0];
      ::usleep(10000);
    }
    return "";
  }
  std::string addressOf(const Cmd& r) {
    auto j = json::parse(r.out, nullptr, false);
    if (j.is_discarded() || !j.contains("ips")) return "";
    return j["ips"][0]["address"].get<std::string>();
  }

  json conf() {
    json c = bridgeConf("resnet", "rsbr0", "198.18.40.0/24");
    c["dataDir"] = dir();
    return c;
  }
};

TEST_F(Resident, ServesTheLaterCallsOfTheSameCaller) {
  std::vector<std::string> ns;
  for (int i = 0; i < 4; ++i) ns.push_back(makeNetns("c" + std::to_string(i)));
  // The first call finds no service: made in its own process, which then starts one.
  auto first = call("ADD", conf(), "c0", ns[0]);
  ASSERT_EQ(first.rc, 0) << first.out;
  std::string line = waitForService();
  ASSERT_NE(line, "") << "no service started";
  EXPECT_EQ(field(line, "served"), 0) << line;

  std::set<std::string> addrs = {addressOf(first)};
  json checked = conf();
  for (int i = 1; i < 4; ++i) {
    auto r = call("ADD", conf(), "c" + std::to_string(i), ns[i]);
    ASSERT_EQ(r.rc, 0) << r.out;
    if (i == 1) checked["prevResult"] = json::parse(r.out);
    addrs.insert(addressOf(r));
    EXPECT_EQ(in(nsName("c" + std::to_string(i)), "ip -o -4 addr show eth0 | wc -l").out, "1\n");
  }
  EXPECT_EQ(addrs.size(), 4u) << "four distinct addresses";
  auto after_adds = services();
  ASSERT_EQ(after_adds.size(), 1u);
  EXPECT_EQ(field(after_adds[0], "served"), 3) << after_adds[0];

  // CHECK and DEL through it too; what the service did is what a plugin process would do.
  auto check = call("CHECK", checked, "c1", ns[1]);
  EXPECT_EQ(check.rc, 0) << check.out;
  for (int i = 0; i < 4; ++i) EXPECT_EQ(call("DEL", conf(), "c" + std::to_string(i), ns[i]).rc, 0);
  auto after_dels = services();
  ASSERT_EQ(after_dels.size(), 1u);
  EXPECT_EQ(field(after_dels[0], "served"), 8) << after_dels[0];
  EXPECT_EQ(in(nsName("c1"), "ip -o link show eth0 2>/dev/null | wc -l").out, "0\n");

  // Stopped, it leaves nothing of its own in the state directory.
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
  EXPECT_TRUE(services().empty());
  EXPECT_EQ(sh("ls " + dir() + " | grep -c '^cni-' || true").out, "0\n");
}

TEST_F(Resident, PutsBackForwardingRulesRemovedBetweenItsCalls) {
  // The service remembers the ruleset generation at which a bridge's rules were complete; a
  // change by anyone (here nft itself) makes a new one, and the next ADD looks and repairs.
  std::vector<std::string> ns;
  for (int i = 0; i < 4; ++i) ns.push_back(makeNetns("f" + std::to_string(i)));
  auto rules = [&] {
    return inHost(
               "nft list chain inet plumb forward 2>/dev/null | grep -c 'plumb:fwd:rsbr0' || true")
        .out;
  };
  ASSERT_EQ(call("ADD", conf(), "f0", ns[0]).rc, 0);
  ASSERT_NE(waitForService(), "");
  ASSERT_EQ(call("ADD", conf(), "f1", ns[1]).rc, 0);  // served: finds them, remembers
  EXPECT_EQ(rules(), "2\n");
  ASSERT_EQ(inHost("nft flush chain inet plumb forward").rc, 0);
  EXPECT_EQ(rules(), "0\n");
  auto r = call("ADD", conf(), "f2", ns[2]);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(rules(), "2\n") << "the served ADD put the bridge's rules back";
  ASSERT_EQ(call("ADD", conf(), "f3", ns[3]).rc, 0);
  EXPECT_EQ(rules(), "2\n") << "and added none twice";
  auto s = services();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(field(s[0], "served"), 3) << s[0];
  for (int i = 0; i < 4; ++i) EXPECT_EQ(call("DEL", conf(), "f" + std::to_string(i), ns[i]).rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
}

TEST_F(Resident, ServesACallWithALargeConfig) {
  // A runtime's config may carry megabytes (a large prevResult, args): read in one growth
  // of the buffer, served, and answered as a plugin process would.
  auto c0 = makeNetns("l0"), c1 = makeNetns("l1");
  ASSERT_EQ(call("ADD", conf(), "l0", c0).rc, 0);
  ASSERT_NE(waitForService(), "");
  json big = conf();
  big["args"] = {{"padding", std::string(8u << 20, 'x')}};
  auto r = call("ADD", big, "l1", c1);
  ASSERT_EQ(r.rc, 0) << r.out.substr(0, 300);
  EXPECT_NE(addressOf(r), "");
  auto s = services();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(field(s[0], "served"), 1) << s[0];
  for (const auto& [id, ns] : {std::pair{"l0", c0}, {"l1", c1}})
    EXPECT_EQ(call("DEL", conf(), id, ns).rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
}

TEST_F(Resident, DoesNotServeACallerWithAnotherNamespaceOrEnvironment) {
  auto c0 = makeNetns("c0"), c1 = makeNetns("c1"), c2 = makeNetns("c2");
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  std::string line = waitForService();
  ASSERT_NE(line, "");
  std::string sock = line.substr(0, line.find(':'));

  // Another mount namespace (ip netns exec makes one, and remounts /sys): works, not served
  // by the first caller's service.
  auto other_ns = cni("ADD", conf(), "c1", c1);
  EXPECT_EQ(other_ns.rc, 0) << other_ns.out;
  // Nor does it start a service: no later call can share a namespace made for one command.
  EXPECT_EQ(services().size(), 1u);
  // Another environment: the same.
  auto other_env = call("ADD", conf(), "c2", c2, "PLUMB_HOST=elsewhere");
  EXPECT_EQ(other_env.rc, 0) << other_env.out;
  for (const auto& s : services()) {
    if (s.rfind(sock + ":", 0) == 0) {
      EXPECT_EQ(field(s, "served"), 0) << s;
    }
  }
  EXPECT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  EXPECT_EQ(cni("DEL", conf(), "c1", c1).rc, 0);
  EXPECT_EQ(call("DEL", conf(), "c2", c2, "PLUMB_HOST=elsewhere").rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
}

TEST_F(Resident, AServiceKilledUnderACallLeavesTheCallToItsCaller) {
  auto c0 = makeNetns("c0"), c1 = makeNetns("c1");
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  std::string line = waitForService();
  ASSERT_NE(line, "");
  pid_t pid = static_cast<pid_t>(field(line, "pid"));
  ASSERT_GT(pid, 0);
  // Stopped, it cannot answer: the call waits on it, and gets no answer when it is killed.
  ASSERT_EQ(::kill(pid, SIGSTOP), 0);
  std::string out = state_.path() + "/killed.out";
  std::string file = state_.path() + "/killed.json";
  std::ofstream(file) << conf().dump();
  auto bg = sh("(nsenter --net=/run/netns/" + host() +
               " env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD CNI_CONTAINERID=c1"
               " CNI_NETNS=" +
               c1 + " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni " + PLUMB_BIN + " < " + file + " > " +
               out + "; echo $? >> " + out + ") >/dev/null 2>&1 & echo $!");
  // Until the caller waits for the answer (its connection is in the service's queue).
  bool queued = false;
  for (int i = 0; i < 500 && !queued; ++i) {
    // (A unix socket is listed in the netns it was made in: the host's.)
    auto q = inHost("ss -xlH | grep -F " + dir() + "/cni- | awk '{print $3}'");
    queued = q.out.find_first_of("123456789") == 0;
    if (!queued) ::usleep(10000);
  }
  EXPECT_TRUE(queued) << "the call never reached the service";
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  pollfd p{pidfd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&p, 1, 10000), 1);
  // The caller made the call itself.
  std::string got;
  for (int i = 0; i < 1000 && got.find('\n', got.find('}')) == std::string::npos; ++i) {
    std::ifstream f(out);
    std::stringstream ss;
    ss << f.rdbuf();
    got = ss.str();
    ::usleep(10000);
  }
  EXPECT_NE(got.find("\"ips\""), std::string::npos) << got;
  EXPECT_NE(got.find("}0\n"), std::string::npos) << got;
  EXPECT_EQ(in(nsName("c1"), "ip -o -4 addr show eth0 | wc -l").out, "1\n");
  (void)bg;
  EXPECT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  EXPECT_EQ(call("DEL", conf(), "c1", c1).rc, 0);
  (void)sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir());
}

TEST_F(Resident, ConcurrentCallsGetDistinctAddresses) {
  auto c0 = makeNetns("c0");
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  ASSERT_NE(waitForService(), "");
  constexpr int kN = 16;
  std::string file = state_.path() + "/conc.json";
  std::ofstream(file) << conf().dump();
  std::string script;
  for (int i = 1; i <= kN; ++i) {
    std::string n = "k" + std::to_string(i);
    std::string path = makeNetns(n);
    script += "nsenter --net=/run/netns/" + host() +
              " env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin CNI_COMMAND=ADD CNI_CONTAINERID=" + n +
              " CNI_NETNS=" + path + " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni " + PLUMB_BIN + " < " +
              file + " > " + state_.path() + "/" + n + ".out & ";
  }
  sh(script + "wait");
  std::set<std::string> addrs;
  for (int i = 1; i <= kN; ++i) {
    std::ifstream f(state_.path() + "/k" + std::to_string(i) + ".out");
    std::stringstream ss;
    ss << f.rdbuf();
    auto a = addressOf({0, ss.str()});
    EXPECT_NE(a, "") << ss.str();
    addrs.insert(a);
  }
  EXPECT_EQ(addrs.size(), static_cast<size_t>(kN));
  auto s = services();
  ASSERT_EQ(s.size(), 1u);
  EXPECT_EQ(field(s[0], "served"), kN) << s[0];
  for (int i = 1; i <= kN; ++i) {
    std::string n = "k" + std::to_string(i);
    EXPECT_EQ(call("DEL", conf(), n, "/run/netns/" + nsName(n)).rc, 0);
  }
  EXPECT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  (void)sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir());
}

TEST_F(Resident, LeavesWhenItsStateDirectoryIsRemoved) {
  auto c0 = makeNetns("c0");
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  std::string line = waitForService();
  ASSERT_NE(line, "");
  pid_t pid = static_cast<pid_t>(field(line, "pid"));
  ASSERT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  UniqueFd pidfd(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)));
  ASSERT_TRUE(pidfd.valid());
  ASSERT_EQ(sh("rm -rf " + dir()).rc, 0);
  pollfd p{pidfd.get(), POLLIN, 0};
  EXPECT_EQ(::poll(&p, 1, 10000), 1) << "the service outlived its state directory";
}

// The service keeps nothing of the plugin process that started it (the runtime's pipes), and
// what it made itself survives that: its signalfd and the eventfd that wakes its main loop
// when it is told to stop (closing the inherited descriptors once closed that eventfd too).
TEST_F(Resident, HoldsItsOwnDescriptorsAndNoneOfItsStarters) {
  auto c0 = makeNetns("c0");
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  std::string line = waitForService();
  ASSERT_NE(line, "");
  std::string fds = "/proc/" + std::to_string(field(line, "pid")) + "/fd";
  auto kinds = sh("for f in " + fds + "/*; do readlink $f; done | sed 's/:\\[[0-9]*\\]$//' | sort");
  ASSERT_EQ(kinds.rc, 0);
  EXPECT_NE(kinds.out.find("anon_inode:[eventfd]\n"), std::string::npos) << kinds.out;
  EXPECT_NE(kinds.out.find("anon_inode:[signalfd]\n"), std::string::npos) << kinds.out;
  EXPECT_EQ(kinds.out.find("pipe"), std::string::npos) << kinds.out;
  EXPECT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
  EXPECT_TRUE(services().empty());
}

// A plugin process whose call the service serves sends no netlink message, and so loads no
// netlink library: libmnl is loaded on the first message (netlink/mnl.cc), by the process
// that makes the call itself and by the service. Seen with the dynamic loader's own trace;
// LD_DEBUG and LD_DEBUG_OUTPUT are the same for both calls, so the second is served. Nor does
// any plumb process of the release build load libm, whose only callers are SQL functions
// plumb never calls (base/libm.cc).
TEST_F(Resident, AServedCallsProcessLoadsNoNetlinkLibrary) {
  auto c0 = makeNetns("c0"), c1 = makeNetns("c1");
  std::string trace = state_.path() + "/ld";
  std::string env = "LD_DEBUG=libs LD_DEBUG_OUTPUT=" + trace;
  auto traces = [&] {
    std::set<std::string> out;
    for (const auto& e : std::filesystem::directory_iterator(state_.path())) {
      if (e.path().filename().string().rfind("ld.", 0) == 0) out.insert(e.path().string());
    }
    return out;
  };
  auto loads = [](const std::string& file, const char* soname) {
    std::ifstream in(file);
    std::stringstream text;
    text << in.rdbuf();
    return text.str().find(soname) != std::string::npos;
  };
  auto loadsMnl = [&](const std::string& file) { return loads(file, "libmnl.so"); };
  ASSERT_EQ(call("ADD", conf(), "c0", c0, env).rc, 0);
  ASSERT_NE(waitForService(), "");
  auto before = traces();
  bool made_here_loads = false;  // the first call, made in its own process
  for (const auto& f : before) made_here_loads |= loadsMnl(f);
  EXPECT_TRUE(made_here_loads) << "no trace shows libmnl: the check below would prove nothing";
  auto served = call("ADD", conf(), "c1", c1, env);
  ASSERT_EQ(served.rc, 0) << served.out;
  EXPECT_EQ(field(services()[0], "served"), 1) << "the second call was not served";
  std::vector<std::string> fresh;
  for (const auto& f : traces()) {
    if (!before.count(f)) fresh.push_back(f);
  }
  ASSERT_FALSE(fresh.empty()) << "no trace of the served call's process";
  for (const auto& f : fresh) EXPECT_FALSE(loadsMnl(f)) << f << " loaded libmnl";
#ifdef PLUMB_LIBM_ON_DEMAND
  for (const auto& f : before) EXPECT_FALSE(loads(f, "libm.so")) << f << " loaded libm";
  for (const auto& f : fresh) EXPECT_FALSE(loads(f, "libm.so")) << f << " loaded libm";
#endif
  EXPECT_EQ(call("DEL", conf(), "c0", c0, env).rc, 0);
  EXPECT_EQ(call("DEL", conf(), "c1", c1, env).rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
}

// The answer is the plugin's whole output: one its runtime cannot read (stdout closed) is a
// failure, never silence taken for success, whether the plugin's process answers itself
// (VERSION) or passes on the service's answer. (A redirection may stand among a command's
// words: extra_env carries it.)
TEST_F(Resident, AnAnswerThatCannotBeWrittenIsAFailure) {
  auto c0 = makeNetns("c0"), c1 = makeNetns("c1");
  EXPECT_EQ(sh("CNI_COMMAND=VERSION " + std::string(PLUMB_BIN) + " </dev/null").rc, 0);
  EXPECT_NE(sh("CNI_COMMAND=VERSION " + std::string(PLUMB_BIN) + " </dev/null >&-").rc, 0);
  ASSERT_EQ(call("ADD", conf(), "c0", c0).rc, 0);
  ASSERT_NE(waitForService(), "");
  auto blind = call("ADD", conf(), "c1", c1, ">&-");
  EXPECT_NE(blind.rc, 0);
  auto running = services();
  ASSERT_EQ(running.size(), 1u);
  EXPECT_EQ(field(running[0], "served"), 1) << "the call was not served";
  EXPECT_EQ(call("DEL", conf(), "c1", c1).rc, 0);
  EXPECT_EQ(call("DEL", conf(), "c0", c0).rc, 0);
  EXPECT_EQ(sh(std::string(PLUMB_BIN) + " cni-resident stop " + dir()).rc, 0);
}

TEST_F(Resident, IsNotUsedWhenSwitchedOff) {
  auto c0 = makeNetns("c0"), c1 = makeNetns("c1");
  ASSERT_EQ(call("ADD", conf(), "c0", c0, "PLUMB_RESIDENT=off").rc, 0);
  ASSERT_EQ(call("ADD", conf(), "c1", c1, "PLUMB_RESIDENT=off").rc, 0);
  EXPECT_TRUE(services().empty()) << "a service was started";
  EXPECT_EQ(call("DEL", conf(), "c0", c0, "PLUMB_RESIDENT=off").rc, 0);
  EXPECT_EQ(call("DEL", conf(), "c1", c1, "PLUMB_RESIDENT=off").rc, 0);
  EXPECT_TRUE(services().empty());
}

}  // namespace
}  // namespace plumb::testing
