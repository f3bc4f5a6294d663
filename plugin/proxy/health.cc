#include "plugin/proxy/health.h"

#include <sys/epoll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "plugin/proxy/backends.h"
#include "plugin/proxy/service.h"

namespace plumb::proxy {

HealthChecker::~HealthChecker() = default;

void HealthChecker::add(const std::shared_ptr<Service>& service) {
  if (!service->policy.active) return;
  remove(service->id);
  auto set = service->backends();
  services_[service->id] = service;
  sets_[service->id] = set;
  auto& probes = probes_[service->id];
  for (size_t i = 0; i < set->size(); ++i) {
    auto p = std::make_unique<Probe>();
    p->checker = this;
    p->set = set.get();
    p->backend = &set->at(i);
    probes.push_back(std::move(p));
  }
}

void HealthChecker::remove(uint64_t id) {
  auto it = probes_.find(id);
  if (it != probes_.end()) {
    // Probes may have events later in this batch: they (and the set they point into) are
    // freed after it, by a task that owns them, not one that needs this checker alive.
    auto retired = std::make_shared<std::vector<std::unique_ptr<Probe>>>();
    for (auto& p : it->second) {
      loop_.remove(p->fd.get());
      p->fd.reset();
      p->set = nullptr;
      retired->push_back(std::move(p));
    }
    probes_.erase(it);
    loop_.later([retired, keep = sets_[id]] {});
  }
  services_.erase(id);
  sets_.erase(id);
}

void HealthChecker::finish(Probe& p, bool ok, const std::string& why) {
  if (p.fd.valid()) loop_.remove(p.fd.get());
  p.fd.reset();
  if (p.set) p.set->checkResult(p.backend, ok, why);
}

void HealthChecker::Probe::onEvents(uint32_t events) {
  if (!fd.valid() || !(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
  int err = 0;
  socklen_t len = sizeof(err);
  if (::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  checker->finish(*this, err == 0, err == 0 ? "" : std::strerror(err));
}

void HealthChecker::round() {
  for (auto& [id, probes] : probes_) {
    Service& svc = *services_[id];
    for (auto& p : probes) {
      if (p->fd.valid()) finish(*p, false, "no answer within the check interval");
      Endpoint target = p->backend->endpoint();
      if (svc.protocol == Protocol::kUdp) target.port = svc.health_port;
      sockaddr_storage sa;
      socklen_t slen = target.toSockaddr(&sa);
      UniqueFd fd(::socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
      if (!fd.valid()) continue;
      int rc = ::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), slen);
      if (rc == 0) {
        finish(*p, true, "");
        continue;
      }
      if (errno != EINPROGRESS) {
        finish(*p, false, std::strerror(errno));
        continue;
      }
      if (!loop_.add(fd.get(), EPOLLOUT | EPOLLET, p.get()).ok()) continue;
      p->fd = std::move(fd);
    }
  }
}

}  // namespace plumb::proxy
