#include "fake_etcd.h"

namespace plumb::testing {
namespace {

bool inRange(const std::string& k, const std::string& key, const std::string& end) {
  if (end.empty()) return k == key;
  if (end == std::string(1, '\0')) return k >= key;
  return k >= key && k < end;
}

}  // namespace

Status FakeEtcd::upLocked() const {
  if (down_) return fail(Errc::kTryAgain, "etcd: no endpoint answered (the fake is down)");
  return {};
}

std::vector<etcd::KeyValue> FakeEtcd::rangeLocked(const std::string& key,
                                                  const std::string& end) const {
  std::vector<etcd::KeyValue> out;
  for (auto it = kvs_.lower_bound(key); it != kvs_.end(); ++it) {
    if (!inRange(it->first, key, end)) break;
    out.push_back(it->second);
  }
  return out;
}

bool FakeEtcd::applyLocked(const etcd::TxnOp& op, int64_t rev, etcd::TxnResult* out) {
  switch (op.kind) {
    case etcd::TxnOp::Kind::kRange: {
      etcd::RangeResult r;
      r.kvs = rangeLocked(op.key, op.range_end);
      r.count = static_cast<int64_t>(r.kvs.size());
      r.revision = revision_;
      if (out) out->ranges.push_back(std::move(r));
      return false;
    }
    case etcd::TxnOp::Kind::kPut: {
      etcd::KeyValue& kv = kvs_[op.key];
      if (kv.key.empty()) {
        kv.key = op.key;
        kv.create_revision = rev;
        kv.version = 0;
      }
      kv.value = op.value;
      kv.mod_revision = rev;
      kv.version += 1;
      kv.lease = op.lease;
      history_.push_back({rev, {false, kv}});
      return true;
    }
    case etcd::TxnOp::Kind::kDelete: {
      bool any = false;
      for (const auto& kv : rangeLocked(op.key, op.range_end)) {
        etcd::KeyValue gone;
        gone.key = kv.key;
        gone.mod_revision = rev;
        history_.push_back({rev, {true, gone}});
        kvs_.erase(kv.key);
        any = true;
      }
      return any;
    }
  }
  return false;
}

bool FakeEtcd::compareLocked(const etcd::Compare& c) const {
  auto it = kvs_.find(c.key);
  const etcd::KeyValue none;
  const etcd::KeyValue& kv = it == kvs_.end() ? none : it->second;
  int cmp = 0;
  auto three = [](auto a, auto b) { return a < b ? -1 : (a > b ? 1 : 0); };
  switch (c.target) {
    case etcd::Compare::Target::kVersion:
      cmp = three(kv.version, c.number);
      break;
    case etcd::Compare::Target::kCreate:
      cmp = three(kv.create_revision, c.number);
      break;
    case etcd::Compare::Target::kMod:
      cmp = three(kv.mod_revision, c.number);
      break;
    case etcd::Compare::Target::kLease:
      cmp = three(kv.lease, c.number);
      break;
    case etcd::Compare::Target::kValue:
      if (it == kvs_.end()) return false;  // etcd: a value compare on a missing key fails
      cmp = three(kv.value, c.value);
      break;
  }
  switch (c.op) {
    case etcd::Compare::Op::kEqual:
      return cmp == 0;
    case etcd::Compare::Op::kGreater:
      return cmp > 0;
    case etcd::Compare::Op::kLess:
      return cmp < 0;
    case etcd::Compare::Op::kNotEqual:
      return cmp != 0;
  }
  return false;
}

Result<etcd::RangeResult> FakeEtcd::range(const std::string& key, const std::string& range_end) {
  std::lock_guard lock(mu_);
  PLUMB_TRY(upLocked());
  etcd::RangeResult r;
  r.kvs = rangeLocked(key, range_end);
  r.count = static_cast<int64_t>(r.kvs.size());
  r.revision = revision_;
  return r;
}

Result<int64_t> FakeEtcd::put(const std::string& key, const std::string& value, int64_t lease) {
  PLUMB_ASSIGN(auto r, txn({}, {etcd::TxnOp::put(key, value, lease)}, {}));
  return r.revision;
}

Result<int64_t> FakeEtcd::remove(const std::string& key, const std::string& range_end) {
  int64_t n = 0;
  {
    std::lock_guard lock(mu_);
    PLUMB_TRY(upLocked());
    n = static_cast<int64_t>(rangeLocked(key, range_end).size());
  }
  PLUMB_TRY(txn({}, {etcd::TxnOp::del(key, range_end)}, {}));
  return n;
}

Result<etcd::TxnResult> FakeEtcd::txn(const std::vector<etcd::Compare>& compares,
                                      const std::vector<etcd::TxnOp>& success,
                                      const std::vector<etcd::TxnOp>& failure) {
  std::lock_guard lock(mu_);
  PLUMB_TRY(upLocked());
  for (const auto& op : success) {
    if (op.kind == etcd::TxnOp::Kind::kPut && op.lease != 0 && !leases_.count(op.lease))
      return fail(Errc::kNotFound, "etcdserver: requested lease not found");
  }
  etcd::TxnResult out;
  out.succeeded = true;
  for (const auto& c : compares) out.succeeded = out.succeeded && compareLocked(c);
  // One revision for the whole transaction, when it writes.
  int64_t rev = revision_ + 1;
  bool wrote = false;
  for (const auto& op : out.succeeded ? success : failure)
    wrote = applyLocked(op, rev, &out) || wrote;
  if (wrote) revision_ = rev;
  out.revision = revision_;
  for (auto& r : out.ranges) r.revision = revision_;
  if (wrote) changed_.notify_all();
  return out;
}

Result<etcd::Lease> FakeEtcd::grant(int64_t ttl_s) {
  std::lock_guard lock(mu_);
  PLUMB_TRY(upLocked());
  int64_t id = next_lease_++;
  leases_[id] = {ttl_s, now_ + ttl_s};
  return etcd::Lease{id, ttl_s};
}

Result<int64_t> FakeEtcd::keepAlive(int64_t lease) {
  std::lock_guard lock(mu_);
  PLUMB_TRY(upLocked());
  auto it = leases_.find(lease);
  if (it == leases_.end())
    return fail(Errc::kNotFound, "lease " + std::to_string(lease) + " has expired");
  it->second.expires = now_ + it->second.ttl;
  return it->second.ttl;
}

Status FakeEtcd::revoke(int64_t lease) {
  std::lock_guard lock(mu_);
  PLUMB_TRY(upLocked());
  return revokeLocked(lease);
}

Status FakeEtcd::revokeLocked(int64_t lease) {
  if (!leases_.erase(lease)) return fail(Errc::kNotFound, "etcdserver: requested lease not found");
  // Its keys go in one revision.
  int64_t rev = revision_ + 1;
  bool wrote = false;
  std::vector<std::string> keys;
  for (const auto& [k, kv] : kvs_)
    if (kv.lease == lease) keys.push_back(k);
  for (const auto& k : keys) wrote = applyLocked(etcd::TxnOp::del(k), rev, nullptr) || wrote;
  if (wrote) {
    revision_ = rev;
    changed_.notify_all();
  }
  return {};
}

void FakeEtcd::advance(int64_t seconds) {
  // Expiry happens on the cluster's side, whatever a client sees of it.
  std::lock_guard lock(mu_);
  now_ += seconds;
  std::vector<int64_t> expired;
  for (const auto& [id, l] : leases_)
    if (l.expires <= now_) expired.push_back(id);
  for (int64_t id : expired) (void)revokeLocked(id);
}

void FakeEtcd::setDown(bool down) {
  std::lock_guard lock(mu_);
  down_ = down;
  changed_.notify_all();
}

void FakeEtcd::compact(int64_t revision) {
  std::lock_guard lock(mu_);
  compacted_ = std::max(compacted_, revision);
  std::erase_if(history_, [&](const Event& e) { return e.revision < compacted_; });
}

int64_t FakeEtcd::revision() {
  std::lock_guard lock(mu_);
  return revision_;
}

class FakeWatcher : public etcd::Watcher {
 public:
  explicit FakeWatcher(FakeEtcd& etcd) : etcd_(etcd) {}
  Status run(const std::string& key, const std::string& range_end, int64_t start_revision,
             const etcd::EventsFn& on_events) override {
    std::unique_lock lock(etcd_.mu_);
    int64_t next = start_revision > 0 ? start_revision : etcd_.revision_ + 1;
    if (next < etcd_.compacted_)
      return fail(Errc::kExhausted,
                  "etcd compacted its history past revision " + std::to_string(next));
    for (;;) {
      if (stopped_) return {};
      if (!etcd_.down_) {
        // Every event from next on (copied: the history may grow while they are delivered).
        std::vector<FakeEtcd::Event> due;
        for (const auto& e : etcd_.history_)
          if (e.revision >= next && inRange(e.event.kv.key, key, range_end)) due.push_back(e);
        // As etcd: what is due comes in one batch, at the store's revision.
        int64_t rev = etcd_.revision_;
        next = rev + 1;
        lock.unlock();
        if (!due.empty()) {
          std::vector<etcd::WatchEvent> batch;
          for (auto& e : due) batch.push_back(std::move(e.event));
          on_events(batch, rev);
        }
        lock.lock();
        if (stopped_) return {};
        if (etcd_.revision_ + 1 != next) continue;  // more came while delivering
      }
      etcd_.changed_.wait(lock);
    }
  }
  void stop() override {
    std::lock_guard lock(etcd_.mu_);
    stopped_ = true;
    etcd_.changed_.notify_all();
  }

 private:
  FakeEtcd& etcd_;
  bool stopped_ = false;
};

std::unique_ptr<etcd::Watcher> FakeEtcd::watcher() { return std::make_unique<FakeWatcher>(*this); }

}  // namespace plumb::testing
