// A network's addresses shared by many hosts through etcd (docs/cluster.md): each host claims
// blocks of the subnet in etcd and hands out the addresses inside its blocks from its own
// store, at local speed. etcd is reached only when the host needs a new block, when its
// lease is due for renewal (every half TTL at most), and when a block empties and goes back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "plugin/core/ipam.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::etcd {
class Kv;  // etcd/kv.h: internal to the core
}

namespace plumb::core {

struct ClusterIpamConfig {
  std::vector<std::string> endpoints;  // "http://HOST:PORT", tried in turn
  std::string prefix = "/plumb";       // where plumb's keys live in etcd
  int block_size = 26;                 // IPv4 blocks' prefix length
  int block_size_v6 = 0;               // IPv6's; 0: 16 bits past the subnet's, at most 122
  std::string host;                    // this host's name in the cluster
  long timeout_ms = 5000;              // one etcd call's budget, over every endpoint
  int64_t lease_ttl_s = 10;
};

// The name this host goes by in a cluster: PLUMB_HOST, else the hostname.
std::string clusterHostName();
// "http://HOST:PORT,..." (--etcd-endpoints, PLUMB_ETCD_ENDPOINTS), each checked.
Result<std::vector<std::string>> parseEtcdEndpoints(const std::string& list);

// Endpoints, prefix, host and lease; with ranges, that each subnet cuts into blocks.
Status validateClusterIpam(const ClusterIpamConfig& config,
                           const std::vector<RangeSet>& ranges = {});

// Addresses from this host's blocks of the request's subnets: one from each range set,
// idempotent for its owner. Allocation fails in one line, changing nothing, when a block is
// needed (or the lease is due) and etcd does not answer within the timeout.
class ClusterAddresses : public AddressSource {
 public:
  ClusterAddresses(Store& store, ClusterIpamConfig config, IpamRequest req,
                   std::vector<RouteSpec> routes);
  // On an etcd the caller provides (the unit tests' fake).
  ClusterAddresses(Store& store, ClusterIpamConfig config, IpamRequest req,
                   std::vector<RouteSpec> routes, etcd::Kv& kv);
  ~ClusterAddresses() override;
  std::string describe() const override;
  Result<Addressing> allocate() override;
  // Gives the owner's addresses back; a block left empty goes back to etcd (when etcd does
  // not answer, the block stays this host's, to be used or given back later: release
  // succeeds all the same).
  Status release() override;
  // Gives back one address, whoever holds it (Docker's ReleaseAddress), then as release().
  Status releaseAddress(const IpAddr& addr);

  // When a host's free addresses in a subnet fall to a quarter of a block, the next block is
  // claimed by a helper process, started by the allocation that saw it: the plumb binary
  // itself (plugin/main.cc says so at start-up; a test binary never starts itself), with
  // PLUMB_CLUSTER_CLAIM=<JSON> in its environment making it claimMain. In a long-lived
  // process (base/process.h) claimMain runs on a thread instead, which waitForClaims waits
  // for as the process ends. Every wait of a claim is bounded by the etcd timeout: each etcd
  // call, and the host's cluster.lock, which an ADD or DEL holds (the claimed block goes back
  // to etcd when that lock stays taken).
  static void helperIsThisProgram();
  static int claimMain(const std::string& spec);
  static void waitForClaims();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// What a host holds in a cluster, as its own store has it and as etcd does (plumb ls
// --cluster): a block in one and not the other is what to look at.
struct ClusterBlockView {
  std::string subnet, block;
  std::string holder;       // the host etcd names ("" when etcd holds no such block)
  bool local = false;       // in this host's store
  bool used = false;        // etcd's state
  long long addresses = 0;  // held in it on this host
};
struct ClusterServiceView {
  std::string name, proto, guest, address;  // registered by this host
};
struct ClusterView {
  std::string host;
  int64_t lease = 0;               // the lease this host's store names (0: none yet)
  bool lease_alive = false;        // etcd still binds the host's key to it
  std::vector<std::string> hosts;  // every host etcd knows alive
  std::vector<ClusterBlockView> blocks;
  std::vector<ClusterServiceView> services;
};
Result<ClusterView> clusterView(Store& store, const ClusterIpamConfig& config);

}  // namespace plumb::core
