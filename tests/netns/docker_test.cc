// The whole session a real dockerd had with a remote driver (tests/fixtures/docker-remote/
// run-latest), replayed over HTTP against `plumb daemon` running in a test namespace: every
// call answered, the kernel changed as Docker needs, and nothing left at the end.
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "../fixtures/fixtures.h"
#include "harness.h"

namespace plumb::testing {
namespace {

namespace fs = std::filesystem;

std::vector<Fixture> session() { return dockerFixtures("run-latest"); }

class DockerDaemonTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    socket_ = state_.path() + "/plumb.sock";
    startDaemon();
  }
  void TearDown() override {
    stopDaemon();
    EXPECT_FALSE(fs::exists(socket_)) << "the daemon removes its socket when stopped";
    NetnsTest::TearDown();
  }
  // env: more of its environment (a failpoint).
  void startDaemon(const std::string& env = "") {
    // The pool the recorded session's IPAM handed out, so addresses match the recording.
    std::string cmd = "ip netns exec " + host() + " env " + env + " " + PLUMB_BIN +
                      " daemon --socket " + socket_ + " --state-dir " + state_.path() +
                      "/state --log-level warn" +
                      " --default-pool base=198.18.6.0/24,size=24 >/dev/null 2>>" + state_.path() +
                      "/daemon.log & echo $!";
    pid_ = std::stoi(sh(cmd).out);
    // Its socket answers (one left by a daemon that was killed is there before it listens).
    for (int i = 0; i < 250; ++i) {
      if (sh("curl -s --unix-socket " + socket_ + " -X POST http://plugin/Plugin.Activate").rc == 0)
        return;
      usleep(20000);
    }
    FAIL() << sh("cat " + state_.path() + "/daemon.log").out;
  }
  void stopDaemon() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 250 && running(pid_); ++i) usleep(20000);
    pid_ = 0;
  }
  // One call over the socket: HTTP status and body.
  std::pair<int, json> call(const std::string& method, const json& body) {
    std::string file = state_.path() + "/req.json";
    {
      std::ofstream f(file);
      f << (body.is_null() ? "" : body.dump());
    }
    auto r = sh("curl -s --unix-socket " + socket_ + " -X POST http://plugin/" + method +
                " --data-binary @" + file + " -w '\\n%{http_code}'");
    auto nl = r.out.rfind('\n');
    if (nl == std::string::npos) return {0, json()};
    return {std::stoi(r.out.substr(nl + 1)), json::parse(r.out.substr(0, nl), nullptr, false)};
  }
  bool hostLink(const std::string& name) { return inHost("ip link show dev " + name).rc == 0; }

  std::string socket_;
  int pid_ = 0;
};

TEST_F(DockerDaemonTest, RecordedSessionReplaysAndLeavesNothing) {
  std::map<std::string, std::string> pool_ids;
  std::map<std::string, std::string> src_names;  // endpoint -> interface for Docker to move
  int calls = 0;
  for (const auto& f : session()) {
    json req = f.request;
    if (req.is_object() && req.contains("PoolID")) req["PoolID"] = pool_ids[req["PoolID"]];
    auto [status, body] = call(f.method, req);
    ASSERT_EQ(status, 200) << f.file << ": " << body.dump();
    ASSERT_FALSE(body.contains("Error")) << f.file << ": " << body.dump();
    ++calls;
    const std::string ep = req.is_object() ? req.value("EndpointID", "") : "";
    if (f.method == "IpamDriver.RequestPool") {
      pool_ids[f.response["PoolID"]] = body["PoolID"];
      EXPECT_EQ(body["Pool"], f.response["Pool"]);
    } else if (f.method == "IpamDriver.RequestAddress") {
      EXPECT_EQ(body["Address"], f.response["Address"]) << f.file;
    } else if (f.method == "NetworkDriver.CreateNetwork") {
      std::string bridge = "pbr-" + req["NetworkID"].get<std::string>().substr(0, 11);
      std::string gw = req["IPv4Data"][0]["Gateway"];
      EXPECT_EQ(inHost("ip -o addr show dev " + bridge + " | grep -c 'inet " + gw + "'").out, "1\n")
          << f.file << ": the bridge carries the gateway";
    } else if (f.method == "NetworkDriver.Join") {
      std::string src = body["InterfaceName"]["SrcName"];
      EXPECT_EQ(body["InterfaceName"]["DstPrefix"], "eth");
      // The recorded driver left the gateway out on its "ha.disablegw" network; plumb has no
      // such option and always gives a network with a gateway its gateway.
      if (f.response.contains("Gateway")) {
        EXPECT_EQ(body["Gateway"], f.response["Gateway"]) << f.file;
      }
      EXPECT_FALSE(body.contains("DisableGatewayService")) << f.file;
      EXPECT_TRUE(hostLink(src)) << f.file << ": " << src << " is there for Docker to move";
      src_names[ep] = src;
    } else if (f.method == "NetworkDriver.ProgramExternalConnectivity") {
      for (const auto& p : req["Options"]["com.docker.network.portmap"]) {
        EXPECT_EQ(inHost("nft list chain inet plumb prerouting | grep -c 'dport " +
                         std::to_string(p["HostPort"].get<int>()) + " dnat'")
                      .out,
                  "1\n")
            << f.file;
      }
    } else if (f.method == "NetworkDriver.RevokeExternalConnectivity") {
      EXPECT_EQ(inHost("nft list table inet plumb | grep -c 'plumb:port:" + ep + "'").out, "0\n")
          << f.file;
    } else if (f.method == "NetworkDriver.DeleteEndpoint") {
      if (src_names.count(ep)) {
        EXPECT_FALSE(hostLink(src_names[ep])) << f.file << ": the endpoint's link is gone";
      }
    }
  }
  EXPECT_EQ(calls, 56);
  // Everything dockerd created, it removed: so must plumb have.
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -v ': lo:' || true").out, "");
  EXPECT_NE(inHost("nft list table inet plumb").rc, 0) << "the empty plumb table is removed";
  EXPECT_EQ(sh("sqlite3 " + state_.path() +
               "/state/plumb.db 'SELECT count(*) FROM networks; SELECT count(*) FROM endpoints; "
               "SELECT count(*) FROM attachments; SELECT count(*) FROM ip_pools; SELECT count(*) "
               "FROM ip_allocs;'")
                .out,
            "0\n0\n0\n0\n0\n");
}

TEST_F(DockerDaemonTest, IdleAndSlowClientsDoNotShutDockerdOut) {
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  constexpr int kIdle = 1500;  // past libmicrohttpd's default limit of 1,020
  constexpr int kSlow = 100;   // each sends half of a 1 MiB body, then nothing
  ASSERT_GE(rl.rlim_cur, static_cast<rlim_t>(kIdle + kSlow + 100));
  auto connectOne = [&] {
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    std::snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", socket_.c_str());
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      ::close(fd);
      return -1;
    }
    return fd;
  };
  long rss_before = rssKiB(pid_);
  std::vector<int> held;
  for (int i = 0; i < kIdle; ++i) {
    int fd = connectOne();
    ASSERT_GE(fd, 0) << "connection " << i;
    held.push_back(fd);
  }
  const std::string head =
      "POST /NetworkDriver.CreateNetwork HTTP/1.1\r\nHost: plugin\r\n"
      "Content-Length: 1048576\r\n\r\n";
  const std::string half(512 << 10, ' ');
  for (int i = 0; i < kSlow; ++i) {
    int fd = connectOne();
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, head.data(), head.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(head.size()));
    size_t sent = 0;
    while (sent < half.size()) {
      ssize_t n = ::send(fd, half.data() + sent, half.size() - sent, MSG_NOSIGNAL);
      ASSERT_GT(n, 0);
      sent += static_cast<size_t>(n);
    }
    held.push_back(fd);
  }
  // dockerd's calls are still answered, on a connection of their own, bodies and all.
  auto [status, body] = call("Plugin.Activate", json());
  EXPECT_EQ(status, 200) << body;
  auto [spaces, body1] = call("IpamDriver.GetDefaultAddressSpaces", json::object());
  EXPECT_EQ(spaces, 200) << body1;
  long rss_after = rssKiB(pid_);
  std::printf("daemon with %d idle and %d half-sent 1 MiB bodies: RSS %ld KiB (%ld before)\n",
              kIdle, kSlow, rss_after, rss_before);
  // Bodies in flight are capped at 32 MiB; each connection's thread costs a few pages. (Under
  // AddressSanitizer each thread carries the sanitizer's own memory: the figure is only
  // printed there; the release build's run holds the bound.)
#if !defined(PLUMB_SANITIZED)
  EXPECT_LT(rss_after - rss_before, 96 * 1024) << "KiB";
#endif
  for (int fd : held) ::close(fd);
  auto [again, body2] = call("IpamDriver.GetDefaultAddressSpaces", json::object());
  EXPECT_EQ(again, 200) << body2;
}

TEST_F(DockerDaemonTest, JoinFailureAndBadInputChangeNothing) {
  auto s = session();
  json create = s[0].request;  // 198.18.5.0/24
  ASSERT_EQ(call("NetworkDriver.CreateNetwork", create).first, 200);
  ASSERT_EQ(call("NetworkDriver.CreateEndpoint", s[1].request).first, 200);
  std::string before = hostSnapshot();
  // A bridge name that is taken by something else: refused before anything is made.
  inHost("ip link add notabridge type veth peer name notabridge2");
  before = hostSnapshot();
  json clash = create;
  clash["NetworkID"] = "ffff" + create["NetworkID"].get<std::string>().substr(4);
  clash["IPv4Data"][0]["Pool"] = "198.18.9.0/24";
  clash["IPv4Data"][0]["Gateway"] = "198.18.9.1/24";
  clash["Options"]["com.docker.network.generic"] = {{"plumb.bridge", "notabridge"}};
  auto [st1, b1] = call("NetworkDriver.CreateNetwork", clash);
  EXPECT_EQ(st1, 500);
  EXPECT_NE(b1["Err"].get<std::string>().find("notabridge exists and is not a bridge"),
            std::string::npos)
      << b1;
  json overlap = clash;
  overlap["IPv4Data"][0]["Pool"] = "198.18.5.128/25";
  overlap["IPv4Data"][0]["Gateway"] = "198.18.5.129/25";
  overlap["Options"]["com.docker.network.generic"] = json::object();
  auto [st2, b2] = call("NetworkDriver.CreateNetwork", overlap);
  EXPECT_NE(b2["Err"].get<std::string>().find("overlaps 198.18.5.0/24 of network 0d9630aa90b3"),
            std::string::npos)
      << b2;
  EXPECT_EQ(hostSnapshot(), before);
  inHost("ip link del notabridge");

  // Join twice (dockerd lost the first answer): one interface, the same name.
  auto [j1, r1] = call("NetworkDriver.Join", s[2].request);
  auto [j2, r2] = call("NetworkDriver.Join", s[2].request);
  ASSERT_EQ(j1, 200) << r1;
  ASSERT_EQ(j2, 200) << r2;
  EXPECT_EQ(r1["InterfaceName"]["SrcName"], r2["InterfaceName"]["SrcName"]);
  EXPECT_EQ(inHost("ip -o link | grep -c ': plc'").out, "1\n");
  EXPECT_EQ(call("NetworkDriver.Leave", s[7].request).first, 200);
  EXPECT_EQ(call("NetworkDriver.DeleteEndpoint", s[8].request).first, 200);
  EXPECT_EQ(call("NetworkDriver.DeleteNetwork", s[53].request).first, 500)
      << "another network's id is unknown";
  json del = {{"NetworkID", create["NetworkID"]}};
  EXPECT_EQ(call("NetworkDriver.DeleteNetwork", del).first, 200);
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -v ': lo:' || true").out, "");
}

#ifdef PLUMB_WITH_FAILPOINTS
// The Docker front end's failpoint walk: the daemon killed (SIGKILL) before each step of a
// Join in turn, then started again and recovered as dockerd does after a failed Join (Leave
// and DeleteEndpoint), or by the Join dockerd sends again, or by `plumb doctor --fix`: the
// host and the store are as they were before the endpoint, whatever step the daemon died at.
TEST_F(DockerDaemonTest, JoinKilledAtEveryStepIsRecovered) {
  auto s = session();
  ASSERT_EQ(call("NetworkDriver.CreateNetwork", s[0].request).first, 200);
  const std::string before = hostSnapshot();
  auto plumbCli = [&](const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " + args);
  };
  int steps = 0;
  for (int n = 1; n <= 40; ++n) {
    SCOPED_TRACE("Join killed before step " + std::to_string(n));
    ASSERT_EQ(call("NetworkDriver.CreateEndpoint", s[1].request).first, 200);
    stopDaemon();
    startDaemon("ASAN_OPTIONS=detect_leaks=0 PLUMB_FAILPOINT=add:" + std::to_string(n) + ":kill");
    auto [status, body] = call("NetworkDriver.Join", s[2].request);
    if (status == 200) {
      steps = n - 1;
      EXPECT_EQ(call("NetworkDriver.Leave", s[7].request).first, 200);
      EXPECT_EQ(call("NetworkDriver.DeleteEndpoint", s[8].request).first, 200);
      break;
    }
    EXPECT_EQ(status, 0) << "the daemon died, it did not answer: " << body;
    for (int i = 0; i < 250 && running(pid_); ++i) usleep(20000);
    EXPECT_FALSE(running(pid_));
    startDaemon();
    if (n % 3 == 1) {
      auto again = call("NetworkDriver.Join", s[2].request);
      EXPECT_EQ(again.first, 200) << again.second;
      EXPECT_EQ(inHost("ip -o link | grep -c ': plc'").out, "1\n");
    } else if (n % 3 == 2) {
      auto fixed = plumbCli("doctor --fix");
      EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
    }
    EXPECT_EQ(call("NetworkDriver.Leave", s[7].request).first, 200);
    EXPECT_EQ(call("NetworkDriver.DeleteEndpoint", s[8].request).first, 200);
    EXPECT_EQ(hostSnapshot(), before);
  }
  EXPECT_GT(steps, 3) << "the walk reached past the last step";
  EXPECT_EQ(hostSnapshot(), before);
  json del = {{"NetworkID", s[0].request["NetworkID"]}};
  EXPECT_EQ(call("NetworkDriver.DeleteNetwork", del).first, 200);
  RecordProperty("join_steps", steps);
}
#endif

}  // namespace
}  // namespace plumb::testing
