#include "plugin/cli/doctor.h"

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/json.h"
#include "base/standard_streams.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/doctor.h"
#include "plugin/core/store.h"

namespace plumb::cli {

namespace {

// A block this host holds in one of etcd and its store but not the other.
Result<std::vector<core::Finding>> clusterFindings(core::Store& store, const ClusterQuery& query) {
  std::vector<core::Finding> out;
  PLUMB_ASSIGN(auto config, clusterConfig(query));
  if (!config) return out;
  auto view = core::clusterView(store, *config);
  if (!view.ok()) return std::move(view).error().wrap("failed to read the cluster");
  for (const auto& b : view->blocks) {
    if (!b.holder.empty() && !b.local) {
      out.push_back({"cluster-block", b.block,
                     "etcd names this host (" + view->host +
                         ") its holder; the store does not have it (an ADD will take it up)"});
    } else if (b.holder.empty() && b.local) {
      out.push_back({"cluster-block", b.block,
                     "the store holds it with " + std::to_string(b.addresses) +
                         " addresses; etcd has no claim of it (another host may take it)"});
    }
  }
  return out;
}

}  // namespace

int doctor(const DoctorCommand& cmd, const Options& opts) {
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error().message, opts);
  core::DoctorOptions options;
  options.fix = cmd.fix && !opts.dry_run;
  if (!opts.ovsdb.empty()) options.ovsdb.push_back(opts.ovsdb);
  auto found = core::doctor(**store, options);
  if (!found.ok()) return failWith("plumb doctor: " + found.error().message, opts);
  // After what was found (and fixed) here: a cluster that cannot be read is one more line.
  auto cluster = clusterFindings(**store, cmd.cluster);
  if (cluster.ok()) {
    found->insert(found->end(), cluster->begin(), cluster->end());
  } else {
    found->push_back({"check-failed", "cluster", cluster.error().message});
  }

  size_t left = 0, fixed = 0;
  for (const auto& f : *found) (f.fixed ? fixed : left) += 1;
  if (opts.json) {
    nlohmann::json out = {{"findings", nlohmann::json::array()}, {"clean", left == 0}};
    for (const auto& f : *found) {
      out["findings"].push_back({{"kind", f.kind},
                                 {"subject", f.subject},
                                 {"detail", f.detail},
                                 {"fixable", f.fixable},
                                 {"fixed", f.fixed},
                                 {"error", f.fix_error}});
    }
    std::cout << json_read::text(out, 2) << "\n";
    return left == 0 ? 0 : 1;
  }
  for (const auto& f : *found) {
    std::string outcome = f.fixed                ? " [fixed]"
                          : !f.fix_error.empty() ? " [not fixed: " + f.fix_error + "]"
                          : f.fixable            ? " [--fix removes it]"
                                                 : "";
    std::cout << f.kind << " " << f.subject << ": " << f.detail << outcome << "\n";
  }
  if (found->empty()) {
    std::cout << "no differences: the store and the kernel agree\n";
  } else {
    std::cout << found->size() << (found->size() == 1 ? " difference" : " differences");
    if (fixed) std::cout << ", " << fixed << " fixed";
    std::cout << "\n";
  }
  return left == 0 ? 0 : 1;
}

}  // namespace plumb::cli
