// `plumb ls --cluster`: what this host holds in the cluster (its lease, its address blocks, the
// services it registered), as its store has it and as etcd does (docs/cluster.md).
#pragma once

#include <optional>
#include <string>

#include "base/result.h"
#include "plugin/cli/execute.h"
#include "plugin/core/cluster_ipam.h"

namespace plumb::cli {

struct ClusterQuery {
  std::string endpoints;  // --etcd-endpoints, else $PLUMB_ETCD_ENDPOINTS
  std::string prefix = "/plumb";
  std::string host;  // --host, else $PLUMB_HOST, else the hostname
};

int listCluster(const ClusterQuery& query, const Options& opts);
// The cluster's configuration from the query and the environment; nullopt when no etcd
// endpoints are given either way.
Result<std::optional<core::ClusterIpamConfig>> clusterConfig(const ClusterQuery& query);

}  // namespace plumb::cli
