// An etcd v3 client over etcd's JSON gateway (/v3/kv/*, /v3/lease/*, /v3/watch), through
// base/http_client.h. Several endpoints: a call goes to the last one that answered, and on to
// the next when one refuses, times out or says it is unavailable, all within the call's
// timeout. Errors are one line naming the endpoints and the causes. Thread-safe.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/http_client.h"
#include "etcd/kv.h"

namespace plumb::etcd {

struct ClientOptions {
  std::vector<std::string> endpoints;  // "http://HOST:PORT"
  long timeout_ms = 5000;              // a call's whole budget, over every endpoint it tries
};

// "http://HOST:PORT" (an IPv6 HOST in brackets), no path: what an endpoint may be.
Status validateEndpoint(const std::string& url);
// A comma-separated list (--etcd-endpoints, PLUMB_ETCD_ENDPOINTS), each validated.
Result<std::vector<std::string>> parseEndpoints(const std::string& list);

class Client : public Kv {
 public:
  static Result<std::unique_ptr<Client>> create(ClientOptions options);

  Result<RangeResult> range(const std::string& key, const std::string& range_end = "") override;
  Result<int64_t> put(const std::string& key, const std::string& value, int64_t lease = 0) override;
  Result<int64_t> remove(const std::string& key, const std::string& range_end = "") override;
  Result<TxnResult> txn(const std::vector<Compare>& compares, const std::vector<TxnOp>& success,
                        const std::vector<TxnOp>& failure = {}) override;
  Result<Lease> grant(int64_t ttl_s) override;
  Result<int64_t> keepAlive(int64_t lease) override;
  Status revoke(int64_t lease) override;
  std::unique_ptr<Watcher> watcher() override;

  const ClientOptions& options() const { return options_; }

 private:
  friend class HttpWatcher;
  explicit Client(ClientOptions options) : options_(std::move(options)) {}
  // POST body to path, trying the endpoints in turn from the last that answered.
  Result<nlohmann::json> call(const std::string& path, const nlohmann::json& body);

  ClientOptions options_;
  std::atomic<size_t> preferred_{0};  // the endpoint that answered last
};

}  // namespace plumb::etcd
