// An etcd in memory, for tests of what stands on etcd/kv.h (the cluster IPAM and directory to
// come): revisions, ranges, transactions, leases on a clock the test moves, watches from a
// revision, compaction, and an outage switch. tests/unit/kv_contract.h holds the behaviour it
// must share with a real etcd; the netns tier runs the same checks against etcd 3.4, so the
// fake cannot drift from the real thing unnoticed.
#pragma once

#include <condition_variable>
#include <map>
#include <mutex>

#include "etcd/kv.h"

namespace plumb::testing {

class FakeEtcd : public etcd::Kv {
 public:
  Result<etcd::RangeResult> range(const std::string& key,
                                  const std::string& range_end = "") override;
  Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0) override;
  Result<int64_t> remove(const std::string& key, const std::string& range_end = "") override;
  Result<etcd::TxnResult> txn(const std::vector<etcd::Compare>& compares,
                              const std::vector<etcd::TxnOp>& success,
                              const std::vector<etcd::TxnOp>& failure = {}) override;
  Result<etcd::Lease> grant(int64_t ttl_s) override;
  Result<int64_t> keepAlive(int64_t lease) override;
  Status revoke(int64_t lease) override;
  std::unique_ptr<etcd::Watcher> watcher() override;

  // The test's clock: leases whose time is up expire, with their keys (one revision).
  void advance(int64_t seconds);
  // While down, every call fails as a cluster without quorum does (kTryAgain), and watches
  // wait.
  void setDown(bool down);
  // Forgets the history before revision (as etcd's compaction): a watch from earlier fails.
  void compact(int64_t revision);
  int64_t revision();

 private:
  friend class FakeWatcher;
  struct LeaseState {
    int64_t ttl = 0;
    int64_t expires = 0;  // on the test's clock
  };
  struct Event {
    int64_t revision = 0;
    etcd::WatchEvent event;
  };
  Status upLocked() const;
  Status revokeLocked(int64_t lease);
  std::vector<etcd::KeyValue> rangeLocked(const std::string& key, const std::string& end) const;
  // Applies one operation at the revision being written; false when it changed nothing.
  bool applyLocked(const etcd::TxnOp& op, int64_t rev, etcd::TxnResult* out);
  bool compareLocked(const etcd::Compare& c) const;

  std::mutex mu_;
  std::condition_variable changed_;
  std::map<std::string, etcd::KeyValue> kvs_;
  std::map<int64_t, LeaseState> leases_;
  std::vector<Event> history_;
  int64_t revision_ = 1;
  int64_t compacted_ = 0;
  int64_t now_ = 0;
  int64_t next_lease_ = 7000;
  bool down_ = false;
};

}  // namespace plumb::testing
