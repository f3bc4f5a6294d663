// etcd v3's key-value API as plumb uses it: ranges, puts, deletes, transactions guarded on
// revisions, leases and watches. An interface, so that what stands on it (the cluster IPAM,
// the service directory) is tested against a fake as well as against a real etcd; the client
// (etcd/client.h) speaks etcd's JSON gateway. Keys and values are bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"

namespace plumb::etcd {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct RangeResult {
  std::vector<KeyValue> kvs;
  int64_t count = 0;
  int64_t revision = 0;  // the store's revision the answer was read at
};

// One condition of a transaction, on one key.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue, kLease };
  enum class Op { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kVersion;
  Op op = Op::kEqual;
  int64_t number = 0;  // version, revision or lease id
  std::string value;   // kValue

  // The key does not exist.
  static Compare absent(std::string key) {
    return {std::move(key), Target::kCreate, Op::kEqual, 0, ""};
  }
  // The key was last changed at revision (it has not changed since it was read).
  static Compare unchangedSince(std::string key, int64_t mod_revision) {
    return {std::move(key), Target::kMod, Op::kEqual, mod_revision, ""};
  }
  static Compare valueIs(std::string key, std::string value) {
    return {std::move(key), Target::kValue, Op::kEqual, 0, std::move(value)};
  }
};

// One operation of a transaction.
struct TxnOp {
  enum class Kind { kPut, kDelete, kRange };
  Kind kind = Kind::kRange;
  std::string key;
  std::string range_end;  // kDelete, kRange: "" for the key alone
  std::string value;      // kPut
  int64_t lease = 0;      // kPut: 0 for none

  static TxnOp put(std::string key, std::string value, int64_t lease = 0) {
    return {Kind::kPut, std::move(key), "", std::move(value), lease};
  }
  static TxnOp del(std::string key, std::string range_end = "") {
    return {Kind::kDelete, std::move(key), std::move(range_end), "", 0};
  }
  static TxnOp get(std::string key, std::string range_end = "") {
    return {Kind::kRange, std::move(key), std::move(range_end), "", 0};
  }
};

struct TxnResult {
  bool succeeded = false;
  int64_t revision = 0;
  std::vector<RangeResult> ranges;  // the answers of the branch's kRange operations, in order
};

struct Lease {
  int64_t id = 0;
  int64_t ttl = 0;  // seconds
};

struct WatchEvent {
  bool deleted = false;  // else a put
  KeyValue kv;           // a delete carries the key and its mod_revision only
};

// Events as they come, each batch with the revision it brings the watcher to.
using EventsFn = std::function<void(const std::vector<WatchEvent>&, int64_t revision)>;

// One watch, blocking in run() until stop().
class Watcher {
 public:
  virtual ~Watcher() = default;
  // Hands every change to [key, range_end) from start_revision on to on_events, in order and
  // once each, across reconnects (it resumes after the last revision it delivered, trying the
  // endpoints in turn, with a growing pause while none serves it). Returns ok after stop();
  // kExhausted when etcd compacted the history it would need (read the keys again, then
  // watch from the revision read at).
  virtual Status run(const std::string& key, const std::string& range_end, int64_t start_revision,
                     const EventsFn& on_events) = 0;
  // From any thread.
  virtual void stop() = 0;
};

class Kv {
 public:
  virtual ~Kv() = default;
  // [key, range_end): range_end "" for key alone, prefixEnd(p) for every key under p.
  virtual Result<RangeResult> range(const std::string& key, const std::string& range_end = "") = 0;
  // The revision the put made.
  virtual Result<int64_t> put(const std::string& key, const std::string& value,
                              int64_t lease = 0) = 0;
  // How many keys went.
  virtual Result<int64_t> remove(const std::string& key, const std::string& range_end = "") = 0;
  virtual Result<TxnResult> txn(const std::vector<Compare>& compares,
                                const std::vector<TxnOp>& success,
                                const std::vector<TxnOp>& failure = {}) = 0;
  virtual Result<Lease> grant(int64_t ttl_s) = 0;
  // The lease's TTL again; kNotFound once it has expired (or was revoked).
  virtual Result<int64_t> keepAlive(int64_t lease) = 0;
  virtual Status revoke(int64_t lease) = 0;
  virtual std::unique_ptr<Watcher> watcher() = 0;
};

// The range_end that covers every key starting with prefix.
std::string prefixEnd(const std::string& prefix);

}  // namespace plumb::etcd
