#include "etcd/client.h"

#include <chrono>
#include <condition_variable>
#include <thread>

#include "base/json.h"
#include "etcd/codec.h"

namespace plumb::etcd {
namespace {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

long msLeft(Clock::time_point deadline) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

}  // namespace

Status validateEndpoint(const std::string& url) {
  auto bad = [&](const std::string& why) {
    return fail(Errc::kInvalid,
                "etcd endpoint '" + url + "' " + why + " (expected http://HOST:PORT)");
  };
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0) {
    if (url.rfind("https://", 0) == 0) return bad("uses TLS, which plumb does not speak yet");
    return bad("is not an http:// URL");
  }
  std::string rest = url.substr(scheme.size());
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  size_t colon = rest.rfind(':');
  if (colon == std::string::npos || colon == 0) return bad("names no port");
  std::string host = rest.substr(0, colon), port = rest.substr(colon + 1);
  if (port.empty() || port.size() > 5 ||
      port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) == 0 ||
      std::stoi(port) > 65535)
    return bad("has no valid port");
  bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  for (char c : bracketed ? host.substr(1, host.size() - 2) : host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' ||
              (bracketed && c == ':');
    if (!ok) return bad("has a malformed host");
  }
  return {};
}

Result<std::vector<std::string>> parseEndpoints(const std::string& list) {
  std::vector<std::string> out;
  for (size_t start = 0; start <= list.size();) {
    size_t comma = list.find(',', start);
    std::string one =
        list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    start = comma == std::string::npos ? list.size() + 1 : comma + 1;
    if (one.empty()) continue;
    PLUMB_TRY(validateEndpoint(one));
    if (one.back() == '/') one.pop_back();
    out.push_back(one);
  }
  if (out.empty()) return fail(Errc::kInvalid, "no etcd endpoint is given");
  return out;
}

Result<std::unique_ptr<Client>> Client::create(ClientOptions options) {
  if (options.endpoints.empty()) return fail(Errc::kInvalid, "no etcd endpoint is given");
  for (auto& e : options.endpoints) {
    PLUMB_TRY(validateEndpoint(e));
    if (e.back() == '/') e.pop_back();
  }
  if (options.timeout_ms <= 0) return fail(Errc::kInvalid, "the etcd timeout must be positive");
  return std::unique_ptr<Client>(new Client(std::move(options)));
}

Result<json> Client::call(const std::string& path, const json& body) {
  const auto& eps = options_.endpoints;
  auto deadline = Clock::now() + std::chrono::milliseconds(options_.timeout_ms);
  size_t first = preferred_.load() % eps.size();
  std::string causes;
  for (size_t i = 0; i < eps.size(); ++i) {
    long left = msLeft(deadline);
    if (left <= 0) break;
    size_t at = (first + i) % eps.size();
    // Each endpoint gets its share of what is left, the last one all of it: one that hangs
    // (a member cut off from the others) leaves time for the next.
    long budget = std::max(left / static_cast<long>(eps.size() - i), 1L);
    auto reply = httpRequest(HttpTarget{eps[at], ""}, path, body.dump(), budget);
    std::string cause;
    if (!reply.ok()) {
      cause = reply.error().message;
    } else {
      auto answer = json_read::parse(reply->body);
      if (!answer.ok() || !answer->is_object()) {
        cause = "answered something that is not etcd's JSON (HTTP " +
                std::to_string(reply->status) + ")";
      } else if (Status err = codec::errorOf(*answer); !err.ok()) {
        // Unavailable or timed out here (no leader, no quorum): perhaps not elsewhere. Any
        // other error is etcd's answer to the request itself.
        if (err.error().code != Errc::kTryAgain) {
          preferred_ = at;
          return fail(err.error().code, "etcd at " + eps[at] + ": " + err.error().message);
        }
        cause = err.error().message;
      } else if (reply->status != 200) {
        cause = "HTTP " + std::to_string(reply->status);
      } else {
        preferred_ = at;
        return std::move(answer).value();
      }
    }
    if (!causes.empty()) causes += "; ";
    causes += eps[at] + ": " + cause;
  }
  return fail(Errc::kTryAgain, "etcd: no endpoint answered " + path + " within " +
                                   std::to_string(options_.timeout_ms) + " ms (" +
                                   (causes.empty() ? "no time left" : causes) + ")");
}

Result<RangeResult> Client::range(const std::string& key, const std::string& range_end) {
  PLUMB_ASSIGN(json a, call("/v3/kv/range", codec::rangeRequest(key, range_end)));
  return codec::rangeResult(a);
}

Result<int64_t> Client::put(const std::string& key, const std::string& value, int64_t lease) {
  PLUMB_ASSIGN(json a, call("/v3/kv/put", codec::putRequest(key, value, lease)));
  return codec::revision(a);
}

Result<int64_t> Client::remove(const std::string& key, const std::string& range_end) {
  PLUMB_ASSIGN(json a, call("/v3/kv/deleterange", codec::deleteRequest(key, range_end)));
  return codec::number(a, "deleted");
}

Result<TxnResult> Client::txn(const std::vector<Compare>& compares,
                              const std::vector<TxnOp>& success,
                              const std::vector<TxnOp>& failure) {
  PLUMB_ASSIGN(json a, call("/v3/kv/txn", codec::txnRequest(compares, success, failure)));
  return codec::txnResult(a);
}

Result<Lease> Client::grant(int64_t ttl_s) {
  PLUMB_ASSIGN(json a, call("/v3/lease/grant", json{{"TTL", std::to_string(ttl_s)}}));
  Lease l;
  PLUMB_ASSIGN(l.id, codec::number(a, "ID"));
  PLUMB_ASSIGN(l.ttl, codec::number(a, "TTL"));
  if (l.id == 0) return fail(Errc::kDecode, "etcd granted a lease without an id");
  return l;
}

Result<int64_t> Client::keepAlive(int64_t lease) {
  // The gateway answers a keep-alive stream of one request with one result.
  PLUMB_ASSIGN(json a, call("/v3/lease/keepalive", json{{"ID", std::to_string(lease)}}));
  auto result = a.find("result");
  if (result == a.end() || !result->is_object())
    return fail(Errc::kDecode, "etcd's keep-alive answer has no result");
  PLUMB_ASSIGN(int64_t ttl, codec::number(*result, "TTL"));
  if (ttl <= 0) return fail(Errc::kNotFound, "lease " + std::to_string(lease) + " has expired");
  return ttl;
}

Status Client::revoke(int64_t lease) {
  PLUMB_ASSIGN(json a, call("/v3/lease/revoke", json{{"ID", std::to_string(lease)}}));
  (void)a;
  return {};
}

// A watch over the gateway's streamed /v3/watch, moving to the next endpoint when one ends or
// fails, from the revision after the last one delivered.
class HttpWatcher : public Watcher {
 public:
  explicit HttpWatcher(Client& client) : client_(client) {}

  Status run(const std::string& key, const std::string& range_end, int64_t start_revision,
             const EventsFn& on_events) override {
    const auto& eps = client_.options_.endpoints;
    int64_t next = start_revision;  // the first revision not yet delivered
    size_t at = client_.preferred_.load() % eps.size();
    int quiet_failures = 0;
    while (!stopped()) {
      Status compacted;  // ok unless etcd compacted past next
      HttpLineStream* stream = nullptr;
      bool created = false;
      auto line = [&](const std::string& text) {
        auto w = codec::watchLine(text);
        if (!w.ok()) {
          stream->stop();  // garbage from this endpoint: on to the next
          return;
        }
        if (w->compact_revision > 0) {
          compacted = fail(Errc::kExhausted, "etcd compacted its history past revision " +
                                                 std::to_string(next) + " (now " +
                                                 std::to_string(w->compact_revision) + ")");
          stream->stop();
          return;
        }
        if (w->created) created = true;
        if (!w->events.empty()) {
          on_events(w->events, w->revision);
          next = w->events.back().kv.mod_revision + 1;
        }
      };
      {
        std::lock_guard lock(mu_);
        if (stopping_) break;
        stream_ = std::make_unique<HttpLineStream>();  // stop() of the last one is sticky
        stream = stream_.get();
      }
      // However the stream ends (failed, refused, garbage, or just ended), the watch goes on
      // at the next endpoint; only a stop or a compaction ends it.
      (void)stream->run(HttpTarget{eps[at], ""}, "/v3/watch",
                        codec::watchRequest(key, range_end, next).dump(), line,
                        client_.options_.timeout_ms);
      if (stopped()) return {};
      if (!compacted.ok()) return compacted;
      if (created) quiet_failures = 0;
      // The next endpoint, after a pause that grows while none serves.
      at = (at + 1) % eps.size();
      ++quiet_failures;
      int pause_ms = std::min(50 << std::min(quiet_failures, 5), 1000);
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(pause_ms), [this] { return stopping_; });
    }
    return {};
  }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      if (stream_) stream_->stop();
    }
    cv_.notify_all();
  }

 private:
  bool stopped() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  Client& client_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unique_ptr<HttpLineStream> stream_;  // the attempt's, replaced under mu_
};

std::unique_ptr<Watcher> Client::watcher() { return std::make_unique<HttpWatcher>(*this); }

}  // namespace plumb::etcd
