// `plumb doctor [--fix]`: the store reconciled with the kernel (plugin/core/doctor.h), one line
// per difference; with etcd's endpoints, this host's blocks against etcd's as well.
#pragma once

#include "plugin/cli/cluster.h"
#include "plugin/cli/execute.h"

namespace plumb::cli {

struct DoctorCommand {
  bool fix = false;
  ClusterQuery cluster;  // used when etcd's endpoints are given or in the environment
};

// 0 when nothing is left to fix (nothing found, or all of it fixed); 1 otherwise.
int doctor(const DoctorCommand& cmd, const Options& opts);

}  // namespace plumb::cli
