#include "plugin/cli/cluster.h"

#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/json.h"
#include "base/standard_streams.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/store.h"

namespace plumb::cli {

Result<std::optional<core::ClusterIpamConfig>> clusterConfig(const ClusterQuery& query) {
  std::string endpoints = query.endpoints;
  if (endpoints.empty()) {
    const char* env = std::getenv("PLUMB_ETCD_ENDPOINTS");
    if (env) endpoints = env;
  }
  if (endpoints.empty()) return std::optional<core::ClusterIpamConfig>();
  core::ClusterIpamConfig config;
  auto eps = core::parseEtcdEndpoints(endpoints);
  if (!eps.ok()) return fail(Errc::kInvalid, "--etcd-endpoints: " + eps.error().message);
  config.endpoints = *eps;
  config.prefix = query.prefix;
  config.host = query.host.empty() ? core::clusterHostName() : query.host;
  PLUMB_TRY(core::validateClusterIpam(config));
  return std::optional<core::ClusterIpamConfig>(config);
}

int listCluster(const ClusterQuery& query, const Options& opts) {
  auto config = clusterConfig(query);
  if (!config.ok()) return failWith(config.error().message, opts);
  if (!*config)
    return failWith(
        "ls --cluster needs etcd's endpoints (--etcd-endpoints URL,... or "
        "PLUMB_ETCD_ENDPOINTS)",
        opts);
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error().message, opts);
  auto view = core::clusterView(**store, **config);
  if (!view.ok()) return failWith("failed to read the cluster: " + view.error().message, opts);
  if (opts.json) {
    nlohmann::json out = {{"host", view->host},
                          {"lease", view->lease},
                          {"leaseAlive", view->lease_alive},
                          {"hosts", view->hosts},
                          {"blocks", nlohmann::json::array()},
                          {"services", nlohmann::json::array()}};
    for (const auto& b : view->blocks)
      out["blocks"].push_back({{"subnet", b.subnet},
                               {"block", b.block},
                               {"inEtcd", !b.holder.empty()},
                               {"inStore", b.local},
                               {"used", b.used},
                               {"addresses", b.addresses}});
    for (const auto& s : view->services)
      out["services"].push_back(
          {{"name", s.name}, {"proto", s.proto}, {"guest", s.guest}, {"address", s.address}});
    std::cout << json_read::text(out, 2) << "\n";
    return 0;
  }
  std::printf("host %s: lease %llx %s; hosts alive in etcd: %zu\n", view->host.c_str(),
              static_cast<unsigned long long>(view->lease),
              view->lease == 0    ? "(none yet)"
              : view->lease_alive ? "(alive)"
                                  : "(lapsed: renewed by the next allocation that needs etcd)",
              view->hosts.size());
  std::printf("\n%-20s %-20s %-8s %-8s %s\n", "SUBNET", "BLOCK", "ETCD", "STORE", "ADDRESSES");
  for (const auto& b : view->blocks) {
    std::printf("%-20s %-20s %-8s %-8s %lld\n", b.subnet.c_str(), b.block.c_str(),
                b.holder.empty() ? "missing" : (b.used ? "used" : "claimed"),
                b.local ? "yes" : "missing", b.addresses);
  }
  std::printf("\n%-24s %-5s %-24s %s\n", "SERVICE", "PROTO", "EXPOSED BY", "REGISTERED AT");
  for (const auto& s : view->services)
    std::printf("%-24s %-5s %-24.24s %s\n", s.name.c_str(), s.proto.c_str(), s.guest.c_str(),
                s.address.c_str());
  return 0;
}

}  // namespace plumb::cli
