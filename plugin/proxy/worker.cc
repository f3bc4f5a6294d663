#include "plugin/proxy/worker.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

#include "plugin/proxy/health.h"
#include "plugin/proxy/tcp.h"
#include "plugin/proxy/udp.h"

namespace plumb::proxy {

DatagramBatch::DatagramBatch() : data(new char[kSize * kMaxDatagram]) {}

// A TCP service's listening socket as this loop sees it. Every loop watches the one socket;
// EPOLLEXCLUSIVE wakes one of them per connection, not all.
// EPOLLEXCLUSIVE wakes an idle loop, and the same one again and again while the others sleep:
// eight long transfers could all land on one core. A loop that carries at least two more
// connections than the least busy one hands a new connection over to it.
class Worker::Acceptor final : public Handler {
 public:
  Acceptor(Worker& worker, std::shared_ptr<Service> service)
      : worker_(worker), service_(std::move(service)) {}
  bool resting() const { return resting_; }
  Status start() {
    resting_ = false;
    return worker_.loop().add(service_->socket.get(), EPOLLIN | EPOLLEXCLUSIVE, this);
  }
  void stop() {
    if (!resting_) worker_.loop().remove(service_->socket.get());
  }
  void onEvents(uint32_t /*events*/) override {
    for (int i = 0; i < 64; ++i) {
      int fd = ::accept4(service_->socket.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the listener stays readable, so watching it would spin. It
          // rests a while; connections wait in the backlog meanwhile.
          stop();
          resting_ = true;
          worker_.loop().after(100, [w = &worker_, id = service_->id] { w->resumeAcceptor(id); });
        }
        return;  // EAGAIN: another loop took it, or none is left
      }
      Worker* target = &worker_;
      for (Worker* w : worker_.peers_)
        if (w->load() + 1 < target->load()) target = w;
      if (target == &worker_) {
        worker_.adopt(service_, UniqueFd(fd));
      } else {
        target->load_.fetch_add(1, std::memory_order_relaxed);  // counted before it lands
        // Closed even if the target never runs it (it stopped first).
        auto client = std::make_shared<UniqueFd>(fd);
        target->loop().post([target, svc = service_, client] {
          target->load_.fetch_sub(1, std::memory_order_relaxed);
          target->adopt(svc, std::move(*client));
        });
      }
    }
  }

 private:
  Worker& worker_;
  std::shared_ptr<Service> service_;
  bool resting_ = false;  // out of the epoll set until its timer fires
};

Worker::Worker(const Options& options, bool runs_health_checks)
    : options_(options), runs_health_checks_(runs_health_checks), pipes_(64, options.pipe_size) {}

Worker::~Worker() {
  if (!loop_) return;
  closeAllConnections(true);
  udp_.clear();
  acceptors_.clear();
  health_.reset();
  loop_->runLater();
}

Status Worker::init() {
  PLUMB_ASSIGN(loop_, Loop::create());
  if (runs_health_checks_ && options_.health_interval_ms > 0) {
    health_ = std::make_unique<HealthChecker>(*loop_);
    loop_->every(options_.health_interval_ms, [this] {
      if (health_) health_->round();  // gone once draining
    });
  }
  // Timeouts are checked at a tenth of the shortest, at least every second.
  int shortest = std::min(
      {options_.idle_timeout_ms, options_.connect_timeout_ms, options_.udp_idle_timeout_ms});
  loop_->every(std::clamp(shortest / 10, 10, 1000), [this] { sweep(); });
  return {};
}

DatagramBatch& Worker::batch() {
  if (!batch_) batch_ = std::make_unique<DatagramBatch>();  // only loops that serve UDP pay
  return *batch_;
}

void Worker::addService(const std::shared_ptr<Service>& service, bool serve_udp) {
  if (draining_) return;
  services_[service->id] = service;
  if (service->protocol == Protocol::kTcp) {
    auto a = std::make_unique<Acceptor>(*this, service);
    if (a->start().ok()) acceptors_[service->id] = std::move(a);
  } else if (serve_udp) {
    auto u = std::make_unique<UdpListener>(*this, *service);
    if (u->start().ok()) udp_[service->id] = std::move(u);
  }
  if (health_) health_->add(service);
}

void Worker::removeService(uint64_t id) {
  // Events of this batch may still name what goes: it goes after the batch.
  loop_->later([this, id] {
    if (auto a = acceptors_.find(id); a != acceptors_.end()) {
      a->second->stop();
      acceptors_.erase(a);
    }
    if (auto u = udp_.find(id); u != udp_.end()) {
      loop_->remove(u->second->service().socket.get());
      udp_.erase(u);
    }
    if (health_) health_->remove(id);
    closeServiceConnections(id);
    // The connections freed above are freed after this batch, with the service last.
    auto keep = services_[id];
    services_.erase(id);
    loop_->later([keep] {});
  });
}

void Worker::backendsChanged(uint64_t id) {
  loop_->later([this, id] {
    auto svc = services_.find(id);
    if (svc == services_.end()) return;
    if (auto u = udp_.find(id); u != udp_.end()) u->second->setBackends(svc->second->backends());
    if (health_) health_->add(svc->second);
  });
}

void Worker::startDrain() {
  loop_->later([this] {
    if (draining_) return;
    draining_ = true;
    drain_deadline_ms_ = loop_->nowMs() + options_.drain_timeout_ms;
    for (auto& [id, a] : acceptors_) a->stop();
    acceptors_.clear();
    for (auto& [id, u] : udp_) loop_->remove(u->service().socket.get());
    udp_.clear();
    health_.reset();
    loop_->every(20, [this] {
      if (connecting_.empty() && open_.empty()) {
        loop_->stop();
      } else if (loop_->nowMs() >= drain_deadline_ms_) {
        closeAllConnections(true);  // cut: a RST, so no client takes a truncated stream as whole
        loop_->stop();
      }
    });
  });
}

void Worker::resumeAcceptor(uint64_t id) {
  auto a = acceptors_.find(id);
  if (draining_ || a == acceptors_.end() || !a->second->resting()) return;
  (void)a->second->start();
}

void Worker::adopt(const std::shared_ptr<Service>& service, UniqueFd client) {
  // A handed-over connection may arrive after its service went or the drain began.
  if (draining_ || !services_.count(service->id)) return;
  load_.fetch_add(1, std::memory_order_relaxed);
  auto* c = new TcpConn(*this, *service, std::move(client));
  c->start();
}

void Worker::connecting(TcpConn* c) { connecting_.pushBack(c); }

void Worker::opened(TcpConn* c) { open_.pushBack(c); }

void Worker::touched(TcpConn* c) {
  if (!c->connecting()) open_.pushBack(c);
}

void Worker::closed(TcpConn* c) {
  load_.fetch_sub(1, std::memory_order_relaxed);
  connecting_.remove(c);
  open_.remove(c);
  loop_->later([c] { delete c; });
}

void Worker::sweep() {
  int64_t now = loop_->nowMs();
  while (ListHook* h = connecting_.front()) {
    auto* c = static_cast<TcpConn*>(h);
    if (now - c->lastActivityMs() < options_.connect_timeout_ms) break;
    connecting_.remove(c);  // timedOut() links it again if it connects elsewhere
    c->timedOut();
  }
  while (ListHook* h = open_.front()) {
    auto* c = static_cast<TcpConn*>(h);
    if (now - c->lastActivityMs() < options_.idle_timeout_ms) break;
    c->timedOut();
  }
  for (auto& [id, u] : udp_) u->expire();
}

void Worker::closeAllConnections(bool reset) {
  while (ListHook* h = connecting_.front()) static_cast<TcpConn*>(h)->close(true);
  while (ListHook* h = open_.front()) static_cast<TcpConn*>(h)->close(reset);
}

void Worker::closeServiceConnections(uint64_t id) {
  for (HookList* list : {&connecting_, &open_}) {
    ListHook* h = list->front();
    while (h) {
      ListHook* next = list->next(h);
      auto* c = static_cast<TcpConn*>(h);
      if (c->service().id == id) c->close(true);
      h = next;
    }
  }
}

}  // namespace plumb::proxy
