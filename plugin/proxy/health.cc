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
  Checked& c = checked_[service->id];
  c.service = service;
  c.set = service->backends();
  for (size_t i = 0; i < c.set->size(); ++i) {
    auto p = std::make_unique<Probe>();
    p->checker = this;
    p->set = c.set.get();
    p->backend = &c.set->at(i);
    c.probes.push_back(std::move(p));
  }
}

void HealthChecker::remove(uint64_t id) {
  auto it = checked_.find(id);
  if (it == checked_.end()) return;
  // Probes may have events later in this batch: they (and the set they point into) are freed
  // after it, by a task that owns them, not one that needs this checker alive.
  auto retired = std::make_shared<std::vector<std::unique_ptr<Probe>>>();
  for (auto& p : it->second.probes) {
    loop_.close(p->fd);
    p->set = nullptr;
    retired->push_back(std::move(p));
  }
  loop_.later([retired, keep = std::move(it->second.set)] {});
  checked_.erase(it);
}

void HealthChecker::finish(Probe& p, bool ok, const std::string& why) {
  loop_.close(p.fd);
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
  for (auto& [id, c] : checked_) {
    const Service& svc = *c.service;
    for (auto& p : c.probes) {
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
