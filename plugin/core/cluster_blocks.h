// A host's share of a cluster subnet, held in etcd (docs/cluster.md): the subnet is cut into
// blocks; a host claims free ones in transactions guarded on the block's key, under its
// lease, and hands out addresses inside them from its own store. Internal to the core (the
// cluster IPAM stands on it); etcd is reached through etcd/kv.h, so a fake serves the tests.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: the cluster IPAM is reached through it"
#endif

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "etcd/kv.h"

namespace plumb::core {

struct ClusterSpec {
  std::string prefix = "/plumb";  // where plumb's keys live in etcd
  std::string host;               // this host's name (PLUMB_HOST, else the hostname)
  int64_t lease_ttl_s = 10;
};

// A prefix is "/" and segments of letters, digits, '-', '_', '.' ("/plumb", "/a/b"), never
// ".." or "."; a host name is one such segment.
Status validateClusterSpec(const ClusterSpec& spec);

// This host's lease, renewed on demand. Addresses are handed out only under a lease renewed
// less than half a TTL ago: one that etcd may be about to let lapse is not trusted.
class HostLease {
 public:
  using Clock = std::function<std::chrono::steady_clock::time_point()>;
  HostLease(etcd::Kv& kv, ClusterSpec spec, Clock clock = std::chrono::steady_clock::now);

  // The lease to act under: the current one when renewed recently, else renewed now; a new
  // one (with the host's key bound to it, and lapsed set) when the old one expired. An error
  // in one line when etcd does not answer in time.
  Result<int64_t> current(bool* lapsed = nullptr);
  int64_t id() const { return id_; }
  std::chrono::steady_clock::time_point renewed() const { return renewed_; }
  // Takes up a lease an earlier process of this host renewed at `renewed` (the local store
  // keeps it between the CNI plugin's runs).
  void restore(int64_t id, std::chrono::steady_clock::time_point renewed) {
    id_ = id;
    renewed_ = renewed;
  }

 private:
  etcd::Kv& kv_;
  ClusterSpec spec_;
  Clock clock_;
  int64_t id_ = 0;
  std::chrono::steady_clock::time_point renewed_{};
};

struct BlockRecord {
  IpPrefix block;
  std::string host;
  int64_t lease = 0;
  bool used = false;  // it has held an address: never reclaimed by another host
  int64_t mod_revision = 0;
};

// A block's key and value as etcd holds them under dir (".../blocks/"): the block from the
// key ("198.18.0.64-26"), its holder, lease and state from the JSON value. A key outside dir, a
// malformed one or a value of the wrong shape is kDecode: etcd's answer is read, not trusted.
Result<BlockRecord> readBlockClaim(const std::string& dir, const etcd::KeyValue& kv);

class BlockClaims {
 public:
  // subnet: the cluster's range; block_len: the blocks' prefix length (default 26).
  BlockClaims(etcd::Kv& kv, ClusterSpec spec, IpPrefix subnet, int block_len);
  static Status validate(const IpPrefix& subnet, int block_len);

  // Every claimed block of the subnet, as etcd holds them, in address order.
  Result<std::vector<BlockRecord>> list();
  // This host's blocks.
  Result<std::vector<IpPrefix>> mine();
  // A free block for this host, under lease: the first one nobody holds, or one whose owner's
  // lease has expired and that never held an address. kExhausted when there is none. used:
  // claimed as holding an address already (one transaction where claim and markUsed are two).
  Result<IpPrefix> claim(int64_t lease, bool used = false);
  // The block holding addr, for a request of that address: kExists naming its holder when
  // another host holds it.
  Result<IpPrefix> claimHolding(int64_t lease, const IpAddr& addr, bool used = false);
  // The block holds an address now: it stays this host's whatever becomes of its lease.
  Status markUsed(const IpPrefix& block);
  // Gives a block back (its last address went). kNotFound when this host does not hold it.
  Status release(const IpPrefix& block);
  // This host's blocks under a new lease (the old one lapsed).
  Status rebind(int64_t lease);

  std::string key(const IpPrefix& block) const;

 private:
  Result<BlockRecord> read(const etcd::KeyValue& kv) const { return readBlockClaim(dir_, kv); }
  // One try at block, as list() found it (held: its record, else none). false: not free.
  Result<bool> tryClaim(const IpPrefix& block, const BlockRecord* held, int64_t lease, bool used);
  // block's record, when this host holds it (kNotFound otherwise).
  Result<BlockRecord> owned(const IpPrefix& block);
  // op on rec's key, guarded on the key being as rec read it (kTryAgain when it changed).
  Status change(const BlockRecord& rec, const etcd::TxnOp& op);
  // Whether host's lease is still the one it holds (its host key is bound to it).
  Result<bool> leaseAlive(const std::string& host, int64_t lease);
  std::string value(int64_t lease, bool used) const;

  etcd::Kv& kv_;
  ClusterSpec spec_;
  IpPrefix subnet_;
  int block_len_;
  std::string dir_;  // <prefix>/ipam/<subnet>/blocks/
};

}  // namespace plumb::core
