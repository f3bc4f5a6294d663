#include "plugin/core/forwarder.h"

#include <sys/resource.h>
#include <sys/socket.h>

#include "base/endpoint.h"
#include "netlink/netns.h"
#include "plugin/proxy/proxy.h"

namespace plumb::core {
namespace {

Result<UniqueFd> openListener(const Endpoint& at, bool udp, const std::string& netns) {
  std::string where = at.str() + (netns.empty() ? "" : " in netns " + netns);
  int family = at.addr.isV6() ? AF_INET6 : AF_INET;
  int type = (udp ? SOCK_DGRAM : SOCK_STREAM) | SOCK_NONBLOCK;
  UniqueFd fd;
  if (netns.empty()) {
    fd.reset(::socket(family, type | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return failErrno(errno, "failed to listen on " + where);
  } else {
    PLUMB_ASSIGN(auto ns, netlink::Netns::fromPath(netns));
    PLUMB_ASSIGN(fd, netlink::socketIn(ns, family, type, 0));
  }
  int one = 1;
  // A restarted forwarder takes its port back while old connections linger in TIME_WAIT.
  if (!udp) (void)::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (family == AF_INET6)
    (void)::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  sockaddr_storage sa;
  socklen_t len = at.toSockaddr(&sa);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), len) != 0)
    return failErrno(errno, "failed to listen on " + where);
  if (!udp && ::listen(fd.get(), SOMAXCONN) != 0)
    return failErrno(errno, "failed to listen on " + where);
  return fd;
}

}  // namespace

void raiseOpenFileLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    (void)::setrlimit(RLIMIT_NOFILE, &rl);
  }
}

Forwarder::Forwarder(std::unique_ptr<proxy::Proxy> proxy) : proxy_(std::move(proxy)) {}

Forwarder::~Forwarder() = default;

Result<std::unique_ptr<Forwarder>> Forwarder::start(const ForwarderOptions& o) {
  proxy::Options po;
  po.threads = o.threads;
  po.health_interval_ms = o.health_interval_ms;
  po.connect_timeout_ms = o.connect_timeout_ms;
  po.idle_timeout_ms = o.idle_timeout_ms;
  po.udp_idle_timeout_ms = o.udp_idle_timeout_ms;
  po.drain_timeout_ms = o.drain_timeout_ms;
  PLUMB_ASSIGN(auto p, proxy::Proxy::start(po));
  return std::unique_ptr<Forwarder>(new Forwarder(std::move(p)));
}

static Result<std::vector<Endpoint>> parseBackends(const std::vector<std::string>& backends) {
  std::vector<Endpoint> out;
  for (const auto& b : backends) {
    auto e = Endpoint::parse(b);
    if (!e.ok()) return fail(Errc::kInvalid, "invalid backend " + e.error().message);
    if (e->port == 0) return fail(Errc::kInvalid, "invalid backend '" + b + "': port 0");
    if (e->addr.isUnspecified())
      return fail(Errc::kInvalid, "invalid backend '" + b + "': an unspecified address");
    out.push_back(*e);
  }
  return out;
}

Result<Forwarder::Listening> Forwarder::add(const Forward& fwd) {
  auto listen = Endpoint::parse(fwd.listen);
  if (!listen.ok()) return fail(Errc::kInvalid, "invalid listen address " + listen.error().message);
  proxy::ServiceSpec spec;
  spec.name = fwd.name.empty() ? fwd.listen : fwd.name;
  spec.protocol = fwd.udp ? proxy::Protocol::kUdp : proxy::Protocol::kTcp;
  spec.health_port = fwd.health_port;
  PLUMB_ASSIGN(spec.backends, parseBackends(fwd.backends));
  PLUMB_ASSIGN(spec.socket, openListener(*listen, fwd.udp, fwd.netns));
  sockaddr_storage sa;
  socklen_t len = sizeof(sa);
  if (::getsockname(spec.socket.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0)
    return failErrno(errno, "failed to read the address of listener " + fwd.listen);
  spec.listen = Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&sa));
  std::string bound = spec.listen.str();
  PLUMB_ASSIGN(uint64_t id, proxy_->add(std::move(spec)));
  return Listening{id, bound};
}

Status Forwarder::setBackends(uint64_t id, const std::vector<std::string>& backends) {
  PLUMB_ASSIGN(auto endpoints, parseBackends(backends));
  return proxy_->setBackends(id, endpoints);
}

void Forwarder::remove(uint64_t id) { proxy_->remove(id); }

std::vector<ForwardStats> Forwarder::stats() const {
  std::vector<ForwardStats> out;
  for (const auto& s : proxy_->stats()) {
    ForwardStats f;
    f.id = s.id;
    f.listen = s.listen.str();
    f.udp = s.protocol == proxy::Protocol::kUdp;
    for (const auto& b : s.backends)
      f.backends.push_back(
          {b.endpoint.str(), b.up, b.open, b.total, b.bytes_to, b.bytes_from, b.connect_errors});
    out.push_back(std::move(f));
  }
  return out;
}

void Forwarder::drain() { proxy_->drain(); }

}  // namespace plumb::core
