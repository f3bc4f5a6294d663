// libnetwork's remote network driver and remote IPAM driver: one handler per endpoint, on the
// engine and the store the CNI plugin and the command line use. Transport-free: `plumb
// daemon` feeds it HTTP requests; the unit tests feed it dockerd's recorded ones.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/store.h"
#include "plugin/docker/http.h"
#include "plugin/docker/network.h"

namespace plumb::docker {

struct DriverConfig {
  std::string state_dir = "/var/lib/plumb";
  // Where RequestPool finds a subnet when dockerd names none: (base, prefix length).
  std::vector<std::pair<IpPrefix, int>> default_pools;
  // plumb daemon --etcd-endpoints: pools created with a subnet are shared with the other
  // hosts' daemons through etcd (docs/cluster.md).
  std::optional<core::ClusterIpamConfig> cluster;
};

class Driver {
 public:
  explicit Driver(DriverConfig cfg);

  // method "POST", path "/NetworkDriver.Join": the HTTP status and JSON body to answer with.
  HttpReply handle(const std::string& method, const std::string& path, const std::string& body);
  // Prometheus text: each call's count and duration histogram (plumb daemon --metrics).
  std::string metrics();

 private:
  using Handler = Result<json> (Driver::*)(core::Store&, const json&);
  // call: the path without its leading '/' ("NetworkDriver.Join").
  HttpReply call(const std::string& method, const std::string& call, const std::string& body);
  struct Histogram {
    std::vector<uint64_t> buckets;  // one per kBounds entry, cumulative when printed
    uint64_t count = 0;
    double sum = 0;
    uint64_t errors = 0;
  };
  std::mutex calls_mu_;
  std::map<std::string, Histogram> calls_;

  // NetworkDriver.*
  Result<json> capabilities(core::Store&, const json&);
  Result<json> createNetwork(core::Store&, const json&);
  Result<json> deleteNetwork(core::Store&, const json&);
  Result<json> createEndpoint(core::Store&, const json&);
  Result<json> endpointOperInfo(core::Store&, const json&);
  Result<json> deleteEndpoint(core::Store&, const json&);
  Result<json> join(core::Store&, const json&);
  Result<json> leave(core::Store&, const json&);
  Result<json> programExternalConnectivity(core::Store&, const json&);
  Result<json> revokeExternalConnectivity(core::Store&, const json&);
  Result<json> nothingToDo(core::Store&, const json&);
  // IpamDriver.*
  Result<json> ipamCapabilities(core::Store&, const json&);
  Result<json> defaultAddressSpaces(core::Store&, const json&);
  Result<json> requestPool(core::Store&, const json&);
  Result<json> releasePool(core::Store&, const json&);
  Result<json> requestAddress(core::Store&, const json&);
  Result<json> releaseAddress(core::Store&, const json&);

  Result<IpPrefix> pickSubnet(core::Store& store, bool v6);

  DriverConfig cfg_;
  core::StorePool stores_;
  // Network creation and removal check for overlaps and shared bridges across networks:
  // one at a time (they are rare); endpoint calls never take it.
  std::mutex networks_mu_;
};

}  // namespace plumb::docker
