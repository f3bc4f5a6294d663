#include "plugin/proxy/proxy.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <thread>

#include "base/log.h"
#include "plugin/proxy/backends.h"
#include "plugin/proxy/service.h"
#include "plugin/proxy/worker.h"

namespace plumb::proxy {

struct Proxy::Impl {
  Options options;
  std::vector<std::unique_ptr<Worker>> workers;
  std::vector<std::thread> threads;
  mutable std::mutex mu;
  std::map<uint64_t, std::shared_ptr<Service>> services;
  uint64_t next_id = 1;
  size_t next_udp_worker = 0;
  bool drained = false;
};

Proxy::Proxy(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Proxy::~Proxy() { drain(); }

Result<std::unique_ptr<Proxy>> Proxy::start(const Options& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  int n = options.threads > 0 ? options.threads
                              : static_cast<int>(std::max(1L, ::sysconf(_SC_NPROCESSORS_ONLN)));
  for (int i = 0; i < n; ++i) {
    auto w = std::make_unique<Worker>(options, i == 0);
    PLUMB_TRY(w->init());
    impl->workers.push_back(std::move(w));
  }
  std::vector<Worker*> all;
  for (auto& w : impl->workers) all.push_back(w.get());
  for (auto& w : impl->workers) w->setPeers(all);
  for (auto& w : impl->workers) impl->threads.emplace_back([wp = w.get()] { wp->loop().run(); });
  return std::unique_ptr<Proxy>(new Proxy(std::move(impl)));
}

Result<uint64_t> Proxy::add(ServiceSpec spec) {
  if (spec.backends.size() > BackendSet::kMaxBackends)
    return fail(Errc::kInvalid, "service " + spec.name + " has " +
                                    std::to_string(spec.backends.size()) + " backends (at most " +
                                    std::to_string(BackendSet::kMaxBackends) + ")");
  if (!spec.socket.valid()) return fail(Errc::kInvalid, "service " + spec.name + " has no socket");
  if (spec.protocol == Protocol::kTcp) {
    // Accepted sockets inherit both: a proxy adds no Nagle delay to what its clients send,
    // and urgent data arrives inline (plugin/proxy/tcp.cc).
    int one = 1;
    (void)::setsockopt(spec.socket.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    (void)::setsockopt(spec.socket.get(), SOL_SOCKET, SO_OOBINLINE, &one, sizeof(one));
  }
  HealthPolicy policy;
  policy.active = impl_->options.health_interval_ms > 0 &&
                  (spec.protocol == Protocol::kTcp || spec.health_port != 0);
  std::lock_guard lock(impl_->mu);
  if (impl_->drained) return fail(Errc::kInvalid, "the proxy is shutting down");
  uint64_t id = impl_->next_id++;
  auto service = std::make_shared<Service>(id, std::move(spec), policy);
  impl_->services[id] = service;
  size_t udp_worker = impl_->next_udp_worker++ % impl_->workers.size();
  for (size_t i = 0; i < impl_->workers.size(); ++i) {
    Worker* w = impl_->workers[i].get();
    bool serve_udp = i == udp_worker;
    w->loop().post([w, service, serve_udp] { w->addService(service, serve_udp); });
  }
  return id;
}

// A TCP listener stops listening at once (new connections are refused, not left in the
// backlog), before every loop has let go of the socket.
static void stopListening(const Service& s) {
  if (s.protocol == Protocol::kTcp) (void)::shutdown(s.socket.get(), SHUT_RDWR);
}

Status Proxy::setBackends(uint64_t id, const std::vector<Endpoint>& backends) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->services.find(id);
  if (impl_->drained || it == impl_->services.end())
    return fail(Errc::kNotFound, "no service " + std::to_string(id) + " in the proxy");
  if (backends.size() > BackendSet::kMaxBackends)
    return fail(Errc::kInvalid, "service " + it->second->name + ": " +
                                    std::to_string(backends.size()) + " backends (at most " +
                                    std::to_string(BackendSet::kMaxBackends) + ")");
  Service& svc = *it->second;
  auto old = svc.backends();
  svc.setBackends(std::make_shared<BackendSet>(svc.name, backends, svc.policy, old.get()));
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    wp->loop().post([wp, id] { wp->backendsChanged(id); });
  }
  return {};
}

void Proxy::remove(uint64_t id) {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->services.find(id);
  if (impl_->drained || it == impl_->services.end()) return;
  stopListening(*it->second);
  impl_->services.erase(it);
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    wp->loop().post([wp, id] { wp->removeService(id); });
  }
}

std::vector<ServiceStats> Proxy::stats() const {
  std::vector<ServiceStats> out;
  std::lock_guard lock(impl_->mu);
  for (const auto& [id, svc] : impl_->services) {
    ServiceStats s;
    s.id = id;
    s.name = svc->name;
    s.protocol = svc->protocol;
    s.listen = svc->listen;
    auto set = svc->backends();
    for (size_t i = 0; i < set->size(); ++i) {
      const Backend& b = set->at(i);
      const auto& c = b.counters();
      s.backends.push_back({b.endpoint(), b.up(), c.open.load(), c.total.load(), c.bytes_to.load(),
                            c.bytes_from.load(), c.connect_errors.load()});
    }
    out.push_back(std::move(s));
  }
  return out;
}

void Proxy::drain() {
  {
    std::lock_guard lock(impl_->mu);
    if (impl_->drained) return;
    impl_->drained = true;
    for (const auto& [id, s] : impl_->services) stopListening(*s);
  }
  for (auto& w : impl_->workers) {
    Worker* wp = w.get();
    wp->loop().post([wp] { wp->startDrain(); });
  }
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  impl_->workers.clear();
  std::lock_guard lock(impl_->mu);
  impl_->services.clear();
}

}  // namespace plumb::proxy
