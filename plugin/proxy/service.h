// A service as every loop shares it: its listening socket and its current backends. Internal
// to the proxy.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "base/endpoint.h"
#include "base/fd.h"
#include "plugin/proxy/backends.h"
#include "plugin/proxy/proxy.h"

namespace plumb::proxy {

struct Service {
  Service(uint64_t id_, ServiceSpec spec, HealthPolicy policy_)
      : id(id_),
        name(spec.name),
        protocol(spec.protocol),
        listen(spec.listen),
        socket(std::move(spec.socket)),
        health_port(spec.health_port),
        policy(policy_),
        set_(std::make_shared<BackendSet>(spec.name, spec.backends, policy_)) {}

  // The current backends; a connection keeps the set it started with.
  std::shared_ptr<BackendSet> backends() const {
    std::lock_guard lock(mu_);
    return set_;
  }
  void setBackends(std::shared_ptr<BackendSet> set) {
    std::lock_guard lock(mu_);
    set_ = std::move(set);
  }

  const uint64_t id;
  const std::string name;
  const Protocol protocol;
  const Endpoint listen;
  const UniqueFd socket;
  const uint16_t health_port;
  const HealthPolicy policy;

 private:
  mutable std::mutex mu_;
  std::shared_ptr<BackendSet> set_;
};

}  // namespace plumb::proxy
