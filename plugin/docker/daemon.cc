#include "plugin/docker/daemon.h"

// Before CLI11, which includes <iostream>: the streams are built only when used.
#include "base/standard_streams.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <optional>

#include "base/endpoint.h"
#include "base/log.h"
#include "base/process.h"
#include "plugin/core/ambassadors.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/control.h"
#include "plugin/core/runtime_api.h"
#include "plugin/docker/driver.h"
#include "plugin/docker/http.h"
#include "plugin/docker/labels.h"

namespace plumb::docker {
namespace {

Result<std::pair<IpPrefix, int>> parsePoolFlag(const std::string& text) {
  // base=CIDR,size=N as dockerd's --default-address-pool; "CIDR/N" is not ambiguous either.
  std::string base, size;
  for (size_t start = 0; start <= text.size();) {
    size_t comma = text.find(',', start);
    std::string part =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    if (part.rfind("base=", 0) == 0) {
      base = part.substr(5);
    } else if (part.rfind("size=", 0) == 0) {
      size = part.substr(5);
    } else {
      return fail(Errc::kInvalid, "--default-pool '" + text + "': expected base=CIDR,size=N");
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  auto prefix = IpPrefix::parse(base);
  if (!prefix.ok()) return fail(Errc::kInvalid, "--default-pool: " + prefix.error().message);
  int n = 0;
  try {
    n = std::stoi(size);
  } catch (const std::exception&) {
    n = -1;
  }
  int max = prefix->isV4() ? 32 : 128;
  if (n < prefix->len() || n > max) {
    return fail(Errc::kInvalid, "--default-pool '" + text + "': size must be from " +
                                    std::to_string(prefix->len()) + " to " + std::to_string(max));
  }
  return std::make_pair(prefix->network(), n);
}

Result<std::unique_ptr<HttpServer>> serveMetrics(const std::string& at,
                                                 const std::function<std::string()>& text) {
  auto ep = Endpoint::parse(at);
  if (!ep.ok()) return fail(Errc::kInvalid, "--metrics " + ep.error().message);
  sockaddr_storage sa;
  socklen_t len = ep->toSockaddr(&sa);
  UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failErrno(errno, "failed to serve metrics on " + at);
  int one = 1;
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0 || ::listen(fd.get(), 16) != 0)
    return failErrno(errno, "failed to serve metrics on " + at);
  return HttpServer::start(std::move(fd), [text](const std::string& method, const std::string& path,
                                                 const std::string&) {
    HttpReply r;
    r.content_type = "text/plain; version=0.0.4; charset=utf-8";
    if (method != "GET" || path != "/metrics") {
      r.status = 404;
      r.body = "GET /metrics\n";
      return r;
    }
    r.body = text();
    return r;
  });
}

}  // namespace

int daemonMain(int argc, char** argv) {
  standardStreams();
  markLongLived();
  CLI::App app{"plumb daemon: Docker's remote network driver and remote IPAM driver",
               "plumb daemon"};
  std::string socket_path = "/run/docker/plugins/plumb.sock";
  const char* env = std::getenv("PLUMB_STATE_DIR");
  std::string state_dir = env && *env ? env : "/var/lib/plumb";
  std::vector<std::string> pools;
  std::string level = "info";
  app.add_option("--socket", socket_path, "unix socket to serve on")->capture_default_str();
  app.add_option("--state-dir", state_dir, "where plumb keeps its state")->capture_default_str();
  app.add_option("--default-pool", pools,
                 "base=CIDR,size=N: where pools come from when a network names no subnet "
                 "(default base=10.200.0.0/16,size=24 and base=fd70:6c75:6d62::/48,size=64)");
  app.add_option("--log-level", level, "trace, debug, info, warn, error")->capture_default_str();
  std::string metrics;
  app.add_option("--metrics", metrics,
                 "ADDR:PORT to serve Prometheus metrics on (GET /metrics); off by default");
  int drain_s = 5;
  app.add_option("--drain-timeout", drain_s,
                 "seconds the links' open connections get to finish when the daemon stops")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  std::string ovsdb;
  app.add_option("--ovsdb", ovsdb,
                 "ovsdb-server's socket (unix:PATH) for OVS networks that name none "
                 "(default $PLUMB_OVSDB, else /var/run/openvswitch/db.sock)");
  std::string docker_socket = core::dockerSocket();
  app.add_option("--docker-socket", docker_socket,
                 "dockerd's API socket, whose container start events bring containers' "
                 "plumb.link and plumb.expose labels (\"off\": none)")
      ->capture_default_str();
  const char* etcd_env = std::getenv("PLUMB_ETCD_ENDPOINTS");
  std::string etcd_endpoints = etcd_env ? etcd_env : "";
  app.add_option("--etcd-endpoints", etcd_endpoints,
                 "etcd v3 members (http://HOST:PORT,...) to share exposed services with other "
                 "hosts through (default $PLUMB_ETCD_ENDPOINTS; none: this host only)");
  core::ClusterServicesConfig cluster;
  app.add_option("--etcd-prefix", cluster.prefix, "where plumb's keys live in etcd")
      ->capture_default_str();
  cluster.host = core::clusterHostName();
  app.add_option("--host", cluster.host,
                 "this host's name in the cluster (default $PLUMB_HOST, "
                 "else the hostname)");
  app.add_option("--advertise-address", cluster.advertise,
                 "the address of this host's other hosts reach its exposed services on "
                 "(without it, with --etcd-endpoints, only address pools are shared)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  std::optional<core::ClusterServicesConfig> cluster_services;
  std::optional<core::ClusterIpamConfig> cluster_ipam;
  if (!etcd_endpoints.empty()) {
    auto eps = core::parseEtcdEndpoints(etcd_endpoints);
    if (!eps.ok()) {
      std::cerr << "plumb daemon: --etcd-endpoints: " << eps.error().message << "\n";
      return 2;
    }
    cluster.endpoints = *eps;
    // Pools created with a subnet are shared through etcd (--ipam-driver plumb).
    core::ClusterIpamConfig ipam;
    ipam.endpoints = cluster.endpoints;
    ipam.prefix = cluster.prefix;
    ipam.host = cluster.host;
    auto valid = core::validateClusterIpam(ipam);
    if (!valid.ok()) {
      std::cerr << "plumb daemon: " << valid.error().message << "\n";
      return 2;
    }
    cluster_ipam = ipam;
    // Services are shared too where other hosts have an address to reach this one on.
    if (!cluster.advertise.empty()) {
      valid = core::validateClusterServices(cluster);
      if (!valid.ok()) {
        std::cerr << "plumb daemon: " << valid.error().message << "\n";
        return 2;
      }
      cluster_services = cluster;
    }
  }
  // The engine takes a network's plumb.ovsdb, else $PLUMB_OVSDB: this sets the latter.
  if (!ovsdb.empty()) ::setenv("PLUMB_OVSDB", ovsdb.c_str(), 1);
  log::configure("", level);
  DriverConfig cfg;
  cfg.state_dir = state_dir;
  cfg.cluster = cluster_ipam;
  if (pools.empty()) pools = {"base=10.200.0.0/16,size=24", "base=fd70:6c75:6d62::/48,size=64"};
  for (const auto& p : pools) {
    auto pool = parsePoolFlag(p);
    if (!pool.ok()) {
      std::cerr << "plumb daemon: " << pool.error().message << "\n";
      return 2;
    }
    cfg.default_pools.push_back(*pool);
  }
  // Open the store once before serving: a state dir that cannot be used fails now, not on
  // dockerd's first call.
  {
    auto store = core::Store::open(state_dir);
    if (!store.ok()) {
      std::cerr << "plumb daemon: " << store.error().message << "\n";
      return 1;
    }
  }
  // Blocked in every thread the server starts: only sigwait below sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);
  (void)::signal(SIGPIPE, SIG_IGN);

  // The ambassadors: every link recorded in the store listens again, and the command line
  // reaches them on the control socket in the state dir (docs/proxy.md).
  core::ForwarderOptions fwd_options;
  fwd_options.drain_timeout_ms = drain_s * 1000;
  auto ambassadors = core::Ambassadors::start(state_dir, fwd_options, cluster_services);
  if (!ambassadors.ok()) {
    std::cerr << "plumb daemon: failed to start the ambassadors: " << ambassadors.error().message
              << "\n";
    return 1;
  }
  auto control = core::ControlServer::start(
      core::controlSocketPath(state_dir),
      [a = ambassadors->get()](const std::string& request) { return a->handle(request); });
  if (!control.ok()) {
    std::cerr << "plumb daemon: " << control.error().message << "\n";
    return 1;
  }

  // Containers started with plumb.link / plumb.expose labels (docs/docker.md).
  std::unique_ptr<ContainerLabels> labels;
  if (docker_socket != "off") {
    labels = ContainerLabels::start(
        docker_socket, state_dir,
        [a = ambassadors->get()](const std::string& request) { return a->handle(request); });
  }

  // Socket activation (packaging/plumb-docker.socket): systemd made the socket before
  // dockerd started; otherwise plumb makes it.
  Result<UniqueFd> fd = fail(Errc::kNotFound, "");
  const char* listen_pid = std::getenv("LISTEN_PID");
  const char* listen_fds = std::getenv("LISTEN_FDS");
  if (listen_pid && listen_fds && std::atoi(listen_pid) == ::getpid() &&
      std::atoi(listen_fds) >= 1) {
    constexpr int kFirstPassedFd = 3;  // SD_LISTEN_FDS_START
    fd = UniqueFd(kFirstPassedFd);
    socket_path = "(socket from systemd)";
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
  } else {
    fd = listenUnix(socket_path);
  }
  if (!fd.ok()) {
    std::cerr << "plumb daemon: " << fd.error().message << "\n";
    return 1;
  }
  Driver driver(cfg);
  // Metrics: the links' counters and the driver's call durations, over plain HTTP (GET
  // /metrics), on an address of the operator's choosing; nothing listens without the flag.
  std::unique_ptr<HttpServer> metrics_server;
  if (!metrics.empty()) {
    auto server = serveMetrics(
        metrics, [&driver, a = ambassadors->get()] { return a->metrics() + driver.metrics(); });
    if (!server.ok()) {
      std::cerr << "plumb daemon: " << server.error().message << "\n";
      ::unlink(socket_path.c_str());
      return 1;
    }
    metrics_server = std::move(*server);
  }
  auto server = HttpServer::start(
      std::move(fd).value(),
      [&driver](const std::string& method, const std::string& path, const std::string& body) {
        return driver.handle(method, path, body);
      });
  if (!server.ok()) {
    ::unlink(socket_path.c_str());
    std::cerr << "plumb daemon: " << server.error().message << "\n";
    return 1;
  }
  log::get("docker")->info("serving on {} (state in {})", socket_path, state_dir);
  int sig = 0;
  sigwait(&stop, &sig);
  log::get("docker")->info("stopping on signal {}", sig);
  server->reset();
  metrics_server.reset();
  control->reset();
  labels.reset();
  ambassadors->reset();
  core::ClusterAddresses::waitForClaims();  // blocks claimed ahead, on threads of this process
  // systemd's socket stays for the next start; one plumb made goes with it (if what is there
  // now is still a socket).
  struct stat st {};
  if (socket_path[0] == '/' && ::lstat(socket_path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode))
    ::unlink(socket_path.c_str());
  return 0;
}

}  // namespace plumb::docker
