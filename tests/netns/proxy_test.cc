// `plumb proxy` as a user runs it: the real binary, real sockets, backends in this process.
// Listeners and backends bind 127.0.0.1 port 0 (or a netns the test made).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "harness.h"
#include "netlink/netns.h"

extern char** environ;

namespace plumb::testing {
namespace {

using Clock = std::chrono::steady_clock;

// The proxy process: started with its stdout on a pipe, its "listening on" line read back.
class ProxyProcess {
 public:
  explicit ProxyProcess(const std::vector<std::string>& args) {
    int out[2], err[2];
    EXPECT_EQ(::pipe2(out, O_CLOEXEC), 0);
    EXPECT_EQ(::pipe2(err, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_adddup2(&fa, err[1], 2);
    std::vector<std::string> full{PLUMB_BIN, "proxy"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (auto& a : full) argv.push_back(a.data());
    argv.push_back(nullptr);
    EXPECT_EQ(posix_spawn(&pid_, PLUMB_BIN, &fa, nullptr, argv.data(), environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(err[1]);
    out_ = out[0];
    err_ = err[0];
    // The line comes once it listens; a failure closes stdout instead.
    std::string line;
    auto deadline = Clock::now() + std::chrono::seconds(10);
    while (line.find('\n') == std::string::npos && Clock::now() < deadline) {
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[256];
      ssize_t n = ::read(out_, buf, sizeof(buf));
      if (n <= 0) break;
      line.append(buf, static_cast<size_t>(n));
    }
    const std::string prefix = "listening on ";
    if (line.rfind(prefix, 0) == 0) {
      listening_ = line.substr(prefix.size(), line.find('\n') - prefix.size());
      port_ = static_cast<uint16_t>(std::stoi(listening_.substr(listening_.rfind(':') + 1)));
    }
  }
  ~ProxyProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    ::close(out_);
    ::close(err_);
  }
  const std::string& listening() const { return listening_; }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  // Exit status after the process ended by itself (or -1 after timeout_ms).
  int wait(int timeout_ms) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    while (Clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return -1;
  }
  int terminate(int timeout_ms = 15000) {
    ::kill(pid_, SIGTERM);
    return wait(timeout_ms);
  }
  std::string stderrText() {
    std::string s;
    char buf[4096];
    int fl = ::fcntl(err_, F_GETFL);
    ::fcntl(err_, F_SETFL, fl | O_NONBLOCK);
    ssize_t n;
    while ((n = ::read(err_, buf, sizeof(buf))) > 0) s.append(buf, static_cast<size_t>(n));
    return s;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, err_ = -1;
  std::string listening_;
  uint16_t port_ = 0;
};

sockaddr_in loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

int connectTo(uint16_t port, int fd = -1) {
  if (fd < 0) fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  auto sa = loopback(port);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

bool writeAll(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w <= 0) return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

uint64_t fnv(uint64_t h, const char* p, size_t n) {
  for (size_t i = 0; i < n; ++i) h = (h ^ static_cast<uint8_t>(p[i])) * 1099511628211ULL;
  return h;
}
constexpr uint64_t kFnvSeed = 1469598103934665603ULL;

std::string randomBytes(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// A TCP backend in this process: a thread accepts, and each connection gets handler on a
// thread of its own (or, for the idle test, is only held). stop() closes the listener and
// every connection it holds: connects to it are refused from then on.
class TcpBackend {
 public:
  using Handler = std::function<void(int fd)>;
  explicit TcpBackend(Handler h, bool hold_only = false)
      : handler_(std::move(h)), hold_only_(hold_only) {
    listen_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(listen_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    auto sa = loopback(0);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(listen_, 4096), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(listen_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    acceptor_ = std::thread([this] { acceptLoop(); });
  }
  ~TcpBackend() { stop(); }
  uint16_t port() const { return port_; }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port_); }
  size_t accepted() const { return accepted_; }
  void stop() {
    if (stopped_.exchange(true)) return;
    ::shutdown(listen_, SHUT_RDWR);
    acceptor_.join();
    ::close(listen_);
    std::lock_guard lock(mu_);
    for (int fd : fds_) ::shutdown(fd, SHUT_RDWR);
    for (auto& t : threads_) t.join();
    for (int fd : fds_) ::close(fd);
    fds_.clear();
  }

 private:
  void acceptLoop() {
    for (;;) {
      int fd = ::accept4(listen_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) {
        if (stopped_) return;
        continue;
      }
      std::lock_guard lock(mu_);
      fds_.push_back(fd);
      ++accepted_;
      if (!hold_only_) threads_.emplace_back([this, fd] { handler_(fd); });
    }
  }
  Handler handler_;
  bool hold_only_;
  int listen_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stopped_{false};
  std::atomic<size_t> accepted_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<int> fds_;
  std::vector<std::thread> threads_;
};

// Reads until EOF; returns what came, or "" on an error.
std::string readAll(int fd) {
  std::string s;
  char buf[65536];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return s;
    if (n < 0) return s;
    s.append(buf, static_cast<size_t>(n));
  }
}

std::string askName(uint16_t port) {
  int fd = connectTo(port);
  if (fd < 0) return "";
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string s = readAll(fd);
  ::close(fd);
  return s;
}

int fdCount(pid_t pid) {
  int n = 0;
  for (auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    (void)e;
    ++n;
  }
  return n;
}

TEST(ProxyTest, OneMebibyteEachWayWithHalfClose) {
  std::atomic<uint64_t> backend_got{0};
  std::atomic<size_t> backend_len{0};
  const std::string to_backend = randomBytes(1 << 20, 1);
  const std::string to_client = randomBytes(1 << 20, 2);
  // The backend reads to EOF first, then answers: the client's FIN must reach it while the
  // client can still receive.
  TcpBackend backend([&](int fd) {
    std::string got = readAll(fd);
    backend_len = got.size();
    backend_got = fnv(kFnvSeed, got.data(), got.size());
    writeAll(fd, to_client.data(), to_client.size());
    ::shutdown(fd, SHUT_WR);
  });
  ProxyProcess proxy({"--listen", "127.0.0.1:0", "--backend", backend.endpoint()});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  EXPECT_EQ(proxy.listening().rfind("127.0.0.1:", 0), 0u);

  int fd = connectTo(proxy.port());
  ASSERT_GE(fd, 0);
  std::thread writer([&] {
    EXPECT_TRUE(writeAll(fd, to_backend.data(), to_backend.size()));
    ::shutdown(fd, SHUT_WR);
  });
  std::string got = readAll(fd);
  writer.join();
  ::close(fd);
  EXPECT_EQ(backend_len.load(), to_backend.size());
  EXPECT_EQ(backend_got.load(), fnv(kFnvSeed, to_backend.data(), to_backend.size()));
  ASSERT_EQ(got.size(), to_client.size());
  EXPECT_EQ(fnv(kFnvSeed, got.data(), got.size()),
            fnv(kFnvSeed, to_client.data(), to_client.size()));
  EXPECT_EQ(proxy.terminate(), 0) << proxy.stderrText();
}

TEST(ProxyTest, UrgentDataPassesInlineAndTheFlowGoesOn) {
  // splice never reads past an urgent mark: a bulk flow that meets one must not stall there.
  // Each side sends 256 KiB (bulk by then), an urgent byte, 256 KiB, another, and 1 KiB; the
  // proxy passes the urgent bytes on inline, in their place.
  auto stream = [](unsigned seed, std::string* plain) {
    std::string a = randomBytes(256 << 10, seed), b = randomBytes(256 << 10, seed + 1),
                c = randomBytes(1 << 10, seed + 2);
    *plain = a + "!" + b + "?" + c;
    return std::vector<std::string>{a, "!", b, "?", c};
  };
  auto sendStream = [](int fd, const std::vector<std::string>& parts) {
    for (size_t i = 0; i < parts.size(); ++i) {
      if (i % 2 == 1) {
        if (::send(fd, parts[i].data(), 1, MSG_OOB) != 1) return false;
      } else if (!writeAll(fd, parts[i].data(), parts[i].size())) {
        return false;
      }
    }
    return ::shutdown(fd, SHUT_WR) == 0;
  };
  auto inline_and_bounded = [](int fd) {
    int one = 1;
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  };
  std::string up_plain, down_plain;
  auto up = stream(10, &up_plain), down = stream(20, &down_plain);
  std::string backend_got;
  std::atomic<bool> backend_done{false};
  TcpBackend backend([&](int fd) {
    inline_and_bounded(fd);
    std::thread reader([&] { backend_got = readAll(fd); });
    EXPECT_TRUE(sendStream(fd, down));
    reader.join();
    backend_done = true;
  });
  ProxyProcess proxy({"--listen", "127.0.0.1:0", "--backend", backend.endpoint()});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  int fd = connectTo(proxy.port());
  ASSERT_GE(fd, 0);
  inline_and_bounded(fd);
  std::thread writer([&] { EXPECT_TRUE(sendStream(fd, up)); });
  std::string got = readAll(fd);
  writer.join();
  // The backend may still be reading what the proxy carries: stop() would cut it short.
  auto deadline = Clock::now() + std::chrono::seconds(10);
  while (!backend_done && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ::close(fd);
  backend.stop();
  EXPECT_TRUE(backend_done.load());
  ASSERT_EQ(got.size(), down_plain.size());
  EXPECT_TRUE(got == down_plain) << "the backend's bytes arrived out of order";
  ASSERT_EQ(backend_got.size(), up_plain.size());
  EXPECT_TRUE(backend_got == up_plain) << "the client's bytes arrived out of order";
  EXPECT_EQ(proxy.terminate(), 0) << proxy.stderrText();
}

TEST(ProxyTest, TwoHundredUdpFlowsEachGetTheirOwnReplies) {
  // An echo backend that says whom it answers, as it sees them (the proxy's session socket).
  int srv = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto sa = loopback(0);
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&sa), &len);
  uint16_t srv_port = ntohs(sa.sin_port);
  std::atomic<bool> done{false};
  std::mutex peers_mu;
  std::set<uint16_t> peers;
  std::thread echo([&] {
    char buf[2048];
    while (!done) {
      pollfd p{srv, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0) continue;
      sockaddr_in from{};
      socklen_t flen = sizeof(from);
      ssize_t n = ::recvfrom(srv, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
      if (n <= 0) continue;
      {
        std::lock_guard lock(peers_mu);
        peers.insert(ntohs(from.sin_port));
      }
      std::string reply = "echo:" + std::string(buf, static_cast<size_t>(n));
      ::sendto(srv, reply.data(), reply.size(), 0, reinterpret_cast<sockaddr*>(&from), flen);
    }
  });
  ProxyProcess proxy(
      {"--udp", "--listen", "127.0.0.1:0", "--backend", "127.0.0.1:" + std::to_string(srv_port)});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();

  constexpr int kFlows = 200, kEach = 5;
  std::vector<int> clients;
  auto to = loopback(proxy.port());
  for (int i = 0; i < kFlows; ++i) {
    int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ASSERT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
    clients.push_back(c);
  }
  // Round by round (a burst of a thousand datagrams would overflow loopback's socket buffers,
  // proxy or not): every flow sends one, then every flow reads its reply.
  int wrong = 0, missing = 0;
  auto deadline = Clock::now() + std::chrono::seconds(20);
  for (int j = 0; j < kEach; ++j) {
    for (int i = 0; i < kFlows; ++i) {
      std::string m = "flow " + std::to_string(i) + " msg " + std::to_string(j);
      ASSERT_EQ(::send(clients[i], m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    }
    for (int i = 0; i < kFlows; ++i) {
      std::string want = "echo:flow " + std::to_string(i) + " msg " + std::to_string(j);
      pollfd p{clients[i], POLLIN, 0};
      int left = static_cast<int>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
      if (::poll(&p, 1, std::max(left, 0)) <= 0) {
        ++missing;
        continue;
      }
      char buf[2048];
      ssize_t n = ::recv(clients[i], buf, sizeof(buf), 0);
      if (n <= 0 || std::string(buf, static_cast<size_t>(n)) != want) ++wrong;
    }
  }
  EXPECT_EQ(wrong, 0) << "a flow got another flow's reply";
  EXPECT_EQ(missing, 0) << "replies lost on loopback";
  {
    std::lock_guard lock(peers_mu);
    EXPECT_EQ(peers.size(), static_cast<size_t>(kFlows)) << "one upstream socket per flow";
  }
  for (int c : clients) ::close(c);
  EXPECT_EQ(proxy.terminate(), 0) << proxy.stderrText();
  done = true;
  echo.join();
  ::close(srv);
}

TEST(ProxyTest, UdpRepliesLeaveFromTheAddressTheClientSentTo) {
  // A wildcard listener on a host with several addresses (loopback has all of 127/8): a
  // client connected to 127.0.0.2 takes replies from 127.0.0.2 only.
  int srv = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  auto sa = loopback(0);
  ASSERT_EQ(::bind(srv, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
  socklen_t len = sizeof(sa);
  ::getsockname(srv, reinterpret_cast<sockaddr*>(&sa), &len);
  std::thread echo([&] {
    pollfd p{srv, POLLIN, 0};
    if (::poll(&p, 1, 5000) != 1) return;
    char buf[512];
    sockaddr_in from{};
    socklen_t flen = sizeof(from);
    ssize_t n = ::recvfrom(srv, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &flen);
    if (n > 0)
      ::sendto(srv, buf, static_cast<size_t>(n), 0, reinterpret_cast<sockaddr*>(&from), flen);
  });
  ProxyProcess proxy({"--udp", "--listen", "0.0.0.0:0", "--backend",
                      "127.0.0.1:" + std::to_string(ntohs(sa.sin_port))});
  EXPECT_NE(proxy.port(), 0) << proxy.stderrText();
  int c = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(proxy.port());
  to.sin_addr.s_addr = htonl(0x7f000002);
  EXPECT_EQ(::connect(c, reinterpret_cast<sockaddr*>(&to), sizeof(to)), 0);
  EXPECT_EQ(::send(c, "ping", 4, 0), 4);
  pollfd p{c, POLLIN, 0};
  bool answered = ::poll(&p, 1, 5000) == 1;
  EXPECT_TRUE(answered) << "the reply came from another address and was dropped";
  char buf[16];
  if (answered) {
    EXPECT_EQ(::recv(c, buf, sizeof(buf), 0), 4);
  }
  echo.join();
  ::close(c);
  ::close(srv);
  EXPECT_EQ(proxy.terminate(), 0);
}

TEST(ProxyTest, ABackendKilledMidTestIsPassedOverAtOnce) {
  auto a = std::make_unique<TcpBackend>([](int fd) {
    writeAll(fd, "A", 1);
    ::shutdown(fd, SHUT_WR);
  });
  TcpBackend b([](int fd) {
    writeAll(fd, "B", 1);
    ::shutdown(fd, SHUT_WR);
  });
  // Passive checks only: nothing but a refused connection can tell the proxy that a is gone.
  ProxyProcess proxy({"--listen", "127.0.0.1:0", "--backend", a->endpoint(), "--backend",
                      b.endpoint(), "--health-interval", "0"});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  std::map<std::string, int> seen;
  for (int i = 0; i < 20; ++i) ++seen[askName(proxy.port())];
  EXPECT_GT(seen["A"], 0);
  EXPECT_GT(seen["B"], 0);
  EXPECT_EQ(seen[""], 0);

  a->stop();  // its port refuses from now on
  int failed = 0, to_b = 0;
  for (int i = 0; i < 50; ++i) {
    std::string who = askName(proxy.port());
    if (who == "B") {
      ++to_b;
    } else {
      ++failed;
    }
  }
  // Every ask answered by b: whichever asks a refused went on to b.
  EXPECT_EQ(failed, 0) << "a connection the dead backend refused must be retried on another";
  EXPECT_EQ(to_b, 50);
  std::string log = proxy.stderrText();
  EXPECT_NE(log.find("backend " + a->endpoint() + " is down"), std::string::npos) << log;
  EXPECT_EQ(proxy.terminate(), 0);
}

TEST(ProxyTest, EveryBackendDownClosesTheClientAtOnce) {
  TcpBackend only([](int fd) {
    writeAll(fd, "X", 1);
    ::shutdown(fd, SHUT_WR);
  });
  ProxyProcess proxy({"--listen", "127.0.0.1:0", "--backend", only.endpoint()});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  EXPECT_EQ(askName(proxy.port()), "X");  // the control: it forwards while the backend lives
  only.stop();
  for (int round = 0; round < 3; ++round) {
    int fd = connectTo(proxy.port());
    ASSERT_GE(fd, 0) << "the proxy's own listener accepts";
    // Closed on the refusal, not after a timeout of the proxy's (2 s for a connect, an hour
    // for an idle client): the wait here is half the shorter.
    pollfd p{fd, POLLIN, 0};
    ASSERT_EQ(::poll(&p, 1, 1000), 1) << "the client was left hanging";
    char c;
    ssize_t n = ::recv(fd, &c, 1, 0);
    EXPECT_LE(n, 0) << "no byte can come from a dead backend";
    ::close(fd);
  }
  EXPECT_EQ(proxy.terminate(), 0);
}

TEST(ProxyTest, SigtermStopsAcceptingAndDrainsOpenConnections) {
  TcpBackend echo([](int fd) {
    char buf[4096];
    ssize_t n;
    while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) writeAll(fd, buf, static_cast<size_t>(n));
    ::shutdown(fd, SHUT_WR);
  });
  ProxyProcess proxy({"--listen", "127.0.0.1:0", "--backend", echo.endpoint()});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  int open = connectTo(proxy.port());
  ASSERT_GE(open, 0);
  ASSERT_TRUE(writeAll(open, "one", 3));
  char buf[16];
  ASSERT_EQ(::recv(open, buf, sizeof(buf), 0), 3);
  ::kill(proxy.pid(), SIGTERM);
  // Accepting stops: the listener goes (refused), the open connection still carries bytes.
  bool refused = false;
  for (int i = 0; i < 100 && !refused; ++i) {
    int fd = connectTo(proxy.port());
    if (fd < 0) {
      refused = true;
    } else {
      ::close(fd);
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  }
  EXPECT_TRUE(refused) << "the listener must close on SIGTERM";
  ASSERT_TRUE(writeAll(open, "two", 3));
  ASSERT_EQ(::recv(open, buf, sizeof(buf), 0), 3) << "an open connection is drained, not cut";
  EXPECT_EQ(std::string(buf, 3), "two");
  EXPECT_EQ(proxy.wait(300), -1) << "it waits for the open connection";
  ::shutdown(open, SHUT_WR);
  EXPECT_EQ(::recv(open, buf, sizeof(buf), 0), 0);
  ::close(open);
  EXPECT_EQ(proxy.wait(5000), 0);
}

TEST(ProxyTest, NineThousandIdleConnectionsCostTwoDescriptorsEach) {
  constexpr int kConns = 9000;
  rlimit rl{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &rl), 0);
  rl.rlim_cur = rl.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &rl), 0);
  ASSERT_GE(rl.rlim_cur, 2 * kConns + 200u) << "this test holds both ends of every connection";
  TcpBackend holder([](int) {}, /*hold_only=*/true);
  // No active health checks: each would be one more connection the holder counts.
  ProxyProcess proxy(
      {"--listen", "127.0.0.1:0", "--backend", holder.endpoint(), "--health-interval", "0"});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  int fds_before = fdCount(proxy.pid());
  long rss_before = rssKiB(proxy.pid());
  std::vector<int> clients;
  clients.reserve(kConns);
  for (int i = 0; i < kConns; ++i) {
    int fd = connectTo(proxy.port());
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    clients.push_back(fd);
  }
  auto deadline = Clock::now() + std::chrono::seconds(30);
  while (holder.accepted() < static_cast<size_t>(kConns) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(holder.accepted(), static_cast<size_t>(kConns));
  int fds_after = fdCount(proxy.pid());
  long rss_after = rssKiB(proxy.pid());
  double per_conn_bytes = (rss_after - rss_before) * 1024.0 / kConns;
  std::printf(
      "proxy with %d idle connections: %d fds (%d before), RSS %ld KiB (%ld before): "
      "%.0f bytes per connection\n",
      kConns, fds_after, fds_before, rss_after, rss_before, per_conn_bytes);
  EXPECT_EQ(fds_after - fds_before, 2 * kConns) << "two sockets per idle connection, no pipe";
  // Every held connection still works: a byte from a sample of clients reaches the backend
  // side (read there would need the holder's fds; the client sees no reset instead).
  for (int i = 0; i < kConns; i += 997) {
    EXPECT_EQ(::send(clients[i], "x", 1, MSG_NOSIGNAL), 1);
  }
  for (int fd : clients) ::close(fd);
  holder.stop();
  EXPECT_EQ(proxy.terminate(), 0);
}

TEST(ProxyTest, BadInputIsOneLineAndNothingListens) {
  struct Case {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<Case> cases = {
      {{"--listen", "127.0.0.1:70000", "--backend", "127.0.0.1:1"}, "out of range"},
      {{"--listen", "127.0.0.1", "--backend", "127.0.0.1:1"}, "is not ADDR:PORT"},
      {{"--listen", "localhost:80", "--backend", "127.0.0.1:1"}, "is not an IP address"},
      {{"--listen", "127.0.0.1:0", "--backend", "127.0.0.1:65536"}, "out of range"},
      {{"--listen", "127.0.0.1:0", "--backend", "[::1:80"}, "is not ADDR:PORT"},
      {{"--listen", "127.0.0.1:0", "--backend", "127.0.0.1:0"}, "port 0"},
      {{"--listen", "127.0.0.1:0"}, "--backend is required"},
      {{"--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1", "--frobnicate"}, "--frobnicate"},
      {{"--listen", "127.0.0.1:0", "--backend", "127.0.0.1:1", "--netns", "plumb-no-such-guest"},
       "plumb-no-such-guest"},
  };
  for (const auto& c : cases) {
    ProxyProcess proxy(c.args);
    EXPECT_EQ(proxy.port(), 0);
    int rc = proxy.wait(5000);
    EXPECT_NE(rc, 0);
    EXPECT_NE(rc, -1);
    std::string err = proxy.stderrText();
    EXPECT_NE(err.find(c.says), std::string::npos) << err;
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  }
  // A port in use.
  TcpBackend busy([](int) {});
  ProxyProcess proxy({"--listen", busy.endpoint(), "--backend", "127.0.0.1:1"});
  EXPECT_EQ(proxy.port(), 0);
  EXPECT_EQ(proxy.wait(5000), 1);
  std::string err = proxy.stderrText();
  EXPECT_EQ(err, "plumb: failed to listen on " + busy.endpoint() + ": Address already in use\n");
}

class ProxyNetnsTest : public NetnsTest {};

TEST_F(ProxyNetnsTest, AListenerInsideAGuestsNetnsForwardsToTheHost) {
  std::string guest = makeNetns("guest");
  TcpBackend backend([](int fd) {
    writeAll(fd, "from the host", 13);
    ::shutdown(fd, SHUT_WR);
  });
  ProxyProcess proxy(
      {"--listen", "127.0.0.1:0", "--backend", backend.endpoint(), "--netns", nsName("guest")});
  ASSERT_NE(proxy.port(), 0) << proxy.stderrText();
  // Not on the host's loopback: in the guest's.
  auto ns = netlink::Netns::fromPath(guest);
  ASSERT_TRUE(ns.ok());
  auto sock = netlink::socketIn(*ns, AF_INET, SOCK_STREAM, 0);
  ASSERT_TRUE(sock.ok()) << sock.error().message;
  int fd = connectTo(proxy.port(), sock->release());
  ASSERT_GE(fd, 0) << "the guest reaches the listener on its own 127.0.0.1";
  EXPECT_EQ(readAll(fd), "from the host");
  ::close(fd);
  EXPECT_EQ(in(nsName("guest"), "ss -Hltn | grep -c :" + std::to_string(proxy.port())).out, "1\n");
  EXPECT_EQ(proxy.terminate(), 0);
  EXPECT_EQ(in(nsName("guest"), "ss -Hltn | wc -l").out, "0\n") << "the listener went with it";
}

}  // namespace
}  // namespace plumb::testing
