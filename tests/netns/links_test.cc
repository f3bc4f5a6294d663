// `plumb expose` / `plumb link` with a real `plumb daemon`: guests are namespaces attached to a
// bridge by the command line in the test's host namespace, where the daemon runs too.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <set>
#include <thread>

#include "harness.h"
#include "netlink/netns.h"
#include "repliers.h"

extern char** environ;

namespace plumb::testing {
namespace {

using Clock = std::chrono::steady_clock;

class LinksTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    svc_ = makeNetns("svc");
    svc2_ = makeNetns("svc2");
    cli_ = makeNetns("cli");
    for (auto [g, ip] :
         {std::pair{"svc", "198.18.9.2"}, {"svc2", "198.18.9.4"}, {"cli", "198.18.9.3"}})
      ASSERT_EQ(plumb(std::string("br-lnk ") + nsName(g) + " " + ip + "/24").rc, 0);
    // The host reaches its guests through the bridge.
    ASSERT_EQ(inHost("ip addr add 198.18.9.1/24 dev br-lnk").rc, 0);
  }
  void TearDown() override {
    stopDaemon(SIGKILL);
    for (auto g : {"svc", "svc2", "cli"}) plumb(std::string("del ") + nsName(g));
    inHost("ip link del br-lnk 2>/dev/null");
    NetnsTest::TearDown();
  }
  // The command line in the host namespace, with this test's state.
  Cmd plumb(const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + " " + args);
  }
  std::string control() const { return state_.path() + "/control.sock"; }
  void startDaemon() {
    std::vector<std::string> args{
        "ip", "netns", "exec", host(), PLUMB_BIN, "daemon", "--state-dir", state_.path(),
        "--socket", state_.path() + "/docker.sock",
        // Serves in the test's host namespace: no port of the machine's is taken.
        "--metrics", "127.0.0.1:9109"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ASSERT_EQ(posix_spawnp(&daemon_, "ip", nullptr, nullptr, argv.data(), environ), 0);
    // Ready once its control socket answers (a killed daemon leaves the file behind).
    auto deadline = Clock::now() + std::chrono::seconds(10);
    bool answers = false;
    while (!answers && Clock::now() < deadline) {
      answers = plumb("--json ls --links").rc == 0 && controlAnswers();
      if (!answers) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(answers) << "the daemon's control socket does not answer";
    struct stat st {};
    ASSERT_EQ(::stat(control().c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << "the control socket is its user's only";
  }
  bool controlAnswers() {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", control().c_str());
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) == 0;
    ::close(fd);
    return ok;
  }
  int stopDaemon(int sig) {
    if (daemon_ <= 0) return -1;
    ::kill(daemon_, sig);
    int status = 0;
    ::waitpid(daemon_, &status, 0);
    daemon_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }

  std::string svc_, svc2_, cli_;
  pid_t daemon_ = -1;
};

TEST_F(LinksTest, ALinkReachesEveryExposedEndpointAndComesBackAfterTheDaemonDies) {
  Replier one(svc_, 7000, "svc");
  Replier two(svc2_, 7000, "svc2");

  // Without a daemon: one line saying how to start one, nothing recorded.
  auto r = plumb("link " + nsName("cli") + " web 7000");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no plumb daemon answers on " + control()), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("plumb daemon --state-dir"), std::string::npos) << r.out;

  startDaemon();
  r = plumb("link " + nsName("cli") + " web");
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("no guest exposes it yet"), std::string::npos) << r.out;

  r = plumb("expose " + nsName("svc") + " web 7000");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("198.18.9.2:7000"), std::string::npos) << r.out;
  r = plumb("link " + nsName("cli") + " web");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(r.out.find("127.0.0.1:7000"), std::string::npos) << r.out;
  EXPECT_EQ(plumb("link " + nsName("cli") + " web").rc, 0) << "a re-run changes nothing";
  EXPECT_EQ(askIn(cli_, 7000), "svc");
  EXPECT_EQ(askIn(svc2_, 7000), "svc2") << "the control: svc2's own server answers in svc2";

  // A second endpoint: the link follows at once, least connections alternating.
  ASSERT_EQ(plumb("expose " + nsName("svc2") + " web 7000").rc, 0);
  std::set<std::string> seen;
  for (int i = 0; i < 10; ++i) seen.insert(askIn(cli_, 7000));
  EXPECT_EQ(seen, (std::set<std::string>{"svc", "svc2"}));

  // Metrics (in the host namespace, where the daemon serves them): both backends counted.
  auto metrics = inHost("curl -sf http://127.0.0.1:9109/metrics");
  ASSERT_EQ(metrics.rc, 0) << metrics.out;
  for (const char* b : {"198.18.9.2:7000", "198.18.9.4:7000"}) {
    std::string labels =
        "{guest=\"" + nsName("cli") + "\",service=\"web\",proto=\"tcp\",backend=\"" + b + "\"}";
    EXPECT_NE(metrics.out.find("plumb_link_backend_up" + labels + " 1"), std::string::npos)
        << metrics.out;
    EXPECT_NE(metrics.out.find("plumb_link_connections_open" + labels + " 0"), std::string::npos)
        << metrics.out;
  }
  EXPECT_NE(metrics.out.find("plumb_link_connections_total"), std::string::npos);

  auto ls = plumb("--json ls --links");
  ASSERT_EQ(ls.rc, 0) << ls.out;
  auto listed = json::parse(ls.out);
  EXPECT_EQ(listed["services"].size(), 2u) << ls.out;
  ASSERT_EQ(listed["links"].size(), 1u) << ls.out;
  EXPECT_EQ(listed["links"][0]["listen"], "127.0.0.1:7000");

  // kill -9: the listener dies with the daemon; a new daemon listens again from the store.
  EXPECT_EQ(stopDaemon(SIGKILL), 128 + SIGKILL);
  EXPECT_EQ(askIn(cli_, 7000), "");
  startDaemon();
  seen.clear();
  for (int i = 0; i < 10; ++i) seen.insert(askIn(cli_, 7000));
  EXPECT_EQ(seen, (std::set<std::string>{"svc", "svc2"}));

  // An endpoint withdrawn: new connections go to the other only.
  ASSERT_EQ(plumb("unexpose " + nsName("svc") + " web").rc, 0);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(askIn(cli_, 7000), "svc2");
  ASSERT_EQ(plumb("unlink " + nsName("cli") + " web").rc, 0);
  EXPECT_EQ(askIn(cli_, 7000), "") << "unlinked: nothing listens in the guest";
  EXPECT_EQ(plumb("unlink " + nsName("cli") + " web").rc, 1) << "a second unlink has nothing to do";

  // SIGTERM: exit 0, the control socket goes.
  EXPECT_EQ(stopDaemon(SIGTERM), 0);
  struct stat st {};
  EXPECT_NE(::stat(control().c_str(), &st), 0);
}

TEST_F(LinksTest, AGuestWhoseNetnsGoesLosesItsLinks) {
  Replier one(svc_, 7100, "svc");
  startDaemon();
  ASSERT_EQ(plumb("expose " + nsName("svc") + " db 7100").rc, 0);
  ASSERT_EQ(plumb("link " + nsName("cli") + " db 7101").rc, 0);
  EXPECT_EQ(askIn(cli_, 7101), "svc");
  // `plumb del` of the guest's last attachment takes its links with it.
  ASSERT_EQ(plumb("del " + nsName("cli")).rc, 0);
  EXPECT_EQ(askIn(cli_, 7101), "");
  auto ls = json::parse(plumb("--json ls --links").out);
  EXPECT_EQ(ls["links"].size(), 0u);

  // The exposing guest's netns removed under the daemon (ip netns del): its service goes.
  ASSERT_EQ(plumb("link " + nsName("svc2") + " db 7102").rc, 0);
  EXPECT_EQ(askIn(svc2_, 7102), "svc");
  ASSERT_EQ(sh("ip netns del " + nsName("svc")).rc, 0);
  auto deadline = Clock::now() + std::chrono::seconds(5);
  size_t services = 1;
  while (services > 0 && Clock::now() < deadline) {
    services = json::parse(plumb("--json ls --links").out)["services"].size();
    if (services > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(services, 0u) << "the daemon noticed the netns go";
  EXPECT_EQ(askIn(svc2_, 7102), "") << "no endpoint left: the link resets at once";
  // And the linking guest's netns removed: its listener closes.
  ASSERT_EQ(sh("ip netns del " + nsName("svc2")).rc, 0);
  deadline = Clock::now() + std::chrono::seconds(5);
  size_t links = 1;
  while (links > 0 && Clock::now() < deadline) {
    links = json::parse(plumb("--json ls --links").out)["links"].size();
    if (links > 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_EQ(links, 0u);
  EXPECT_EQ(stopDaemon(SIGTERM), 0);
}

TEST_F(LinksTest, BadInputIsOneLineAndChangesNothing) {
  startDaemon();
  auto before = plumb("--json ls --links").out;
  struct Case {
    std::string args, says;
  };
  for (const auto& c : std::vector<Case>{
           {"link " + nsName("cli") + " we/b 80", "is not a service name"},
           {"expose " + nsName("svc") + " web 70000", "out of range"},
           {"expose " + nsName("svc") + " web 80/sctp", "tcp or udp"},
           {"expose " + nsName("svc") + " web", "port"},
           {"link plumb-no-such-guest web 80", "plumb-no-such-guest"},
           {"link " + nsName("cli") + " web! 80", "not a service name"},
       }) {
    auto r = plumb(c.args);
    EXPECT_NE(r.rc, 0) << c.args;
    EXPECT_NE(r.out.find(c.says), std::string::npos) << c.args << ": " << r.out;
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1) << r.out;
  }
  EXPECT_EQ(plumb("--json ls --links").out, before);
  EXPECT_EQ(stopDaemon(SIGTERM), 0);
}

}  // namespace
}  // namespace plumb::testing
