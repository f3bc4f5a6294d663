// A service as every loop shares it: its listening socket and its backends. Internal to the
// proxy.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "base/endpoint.h"
#include "base/fd.h"
#include "plugin/proxy/backends.h"
#include "plugin/proxy/proxy.h"

namespace plumb::proxy {

struct Service {
  Service(uint64_t id_, ServiceSpec spec, HealthPolicy policy)
      : id(id_),
        name(spec.name),
        protocol(spec.protocol),
        listen(spec.listen),
        socket(std::move(spec.socket)),
        health_port(spec.health_port),
        backends(spec.name, spec.backends, policy) {}

  const uint64_t id;
  const std::string name;
  const Protocol protocol;
  const Endpoint listen;
  const UniqueFd socket;
  const uint16_t health_port;
  BackendSet backends;
};

}  // namespace plumb::proxy
