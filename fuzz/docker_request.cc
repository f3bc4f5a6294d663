// Request bodies libnetwork posts to the remote network and IPAM drivers (CreateNetwork,
// CreateEndpoint with its port mappings, the labels on options), and label values as the user
// types them in `docker network create -o` / `--label`.
#include <cstdint>
#include <string>

#include "base/json.h"
#include "plugin/docker/labels.h"
#include "plugin/docker/network.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  (void)docker::parseLabel(text, false);
  (void)docker::parseLabel(text, true);
  auto j = json_read::parse(text);
  if (!j.ok()) return 0;
  if (auto n = docker::parseCreateNetwork(*j); n.ok()) {
    // What is stored for a network is read back when the daemon restarts.
    (void)n->toJson().dump();
    (void)docker::NetworkConfig::fromJson(n->toJson());
  }
  (void)docker::NetworkConfig::fromJson(*j);
  if (auto ep = docker::parseCreateEndpoint(*j); ep.ok()) {
    (void)ep->toJson().dump();
    (void)docker::EndpointConfig::fromJson(ep->toJson());
    if (j->is_object() && j->contains("Options")) {
      if (auto ports = docker::parsePortmap((*j)["Options"], *ep); ports.ok())
        (void)docker::portmapJson(*ports).dump();
    }
  }
  (void)docker::EndpointConfig::fromJson(*j);
  return 0;
}
