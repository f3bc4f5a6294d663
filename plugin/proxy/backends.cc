#include "plugin/proxy/backends.h"

#include "base/log.h"

namespace plumb::proxy {

BackendSet::BackendSet(std::string service, const std::vector<Endpoint>& endpoints,
                       HealthPolicy policy, const BackendSet* previous)
    : service_(std::move(service)), policy_(policy) {
  for (const auto& e : endpoints) {
    std::shared_ptr<Backend> kept;
    if (previous) {
      for (const auto& b : previous->backends_)
        if (b->endpoint() == e) kept = b;
    }
    backends_.push_back(kept ? kept : std::make_shared<Backend>(e));
  }
}

size_t BackendSet::indexOf(const Backend* b) const {
  for (size_t i = 0; i < backends_.size(); ++i)
    if (backends_[i].get() == b) return i;
  return backends_.size();
}

Backend* BackendSet::pick(uint64_t tried, int64_t now_ms) {
  size_t n = backends_.size();
  if (n == 0) return nullptr;
  size_t start = static_cast<size_t>(turn_.fetch_add(1, std::memory_order_relaxed) % n);
  Backend* best = nullptr;
  for (size_t k = 0; k < n; ++k) {
    size_t i = (start + k) % n;
    if (tried & bit(i)) continue;
    Backend* b = backends_[i].get();
    bool usable =
        b->up() || (!policy_.active && b->retry_at_ms_.load(std::memory_order_relaxed) <= now_ms);
    if (!usable) continue;
    if (!best || b->active() < best->active()) best = b;
  }
  return best;
}

void BackendSet::opened(Backend* b) {
  b->active_.fetch_add(1, std::memory_order_relaxed);
  b->counters_.open.fetch_add(1, std::memory_order_relaxed);
  b->counters_.total.fetch_add(1, std::memory_order_relaxed);
}

void BackendSet::closed(Backend* b) {
  b->active_.fetch_sub(1, std::memory_order_relaxed);
  b->counters_.open.fetch_sub(1, std::memory_order_relaxed);
}

void BackendSet::setUp(Backend* b, bool up, const std::string& why) {
  if (b->up_.exchange(up) == up) return;  // logged once per change, whichever loop saw it
  auto log = log::get("proxy");
  if (up) {
    log->warn("service {}: backend {} is up{}", service_, b->endpoint().str(),
              why.empty() ? "" : " (" + why + ")");
  } else {
    log->warn("service {}: backend {} is down: {}", service_, b->endpoint().str(), why);
  }
}

void BackendSet::connectFailed(Backend* b, const std::string& why, int64_t now_ms) {
  b->counters_.connect_errors.fetch_add(1, std::memory_order_relaxed);
  b->retry_at_ms_.store(now_ms + policy_.retry_after_ms, std::memory_order_relaxed);
  setUp(b, false, why);
}

void BackendSet::connectSucceeded(Backend* b) {
  if (!b->up()) setUp(b, true, "a connection succeeded");
}

void BackendSet::checkResult(Backend* b, bool ok, const std::string& why) {
  if (ok) {
    b->bad_checks_ = 0;
    if (!b->up() && ++b->good_checks_ >= policy_.rise) {
      b->good_checks_ = 0;
      setUp(b, true, "health check passed");
    }
  } else {
    b->good_checks_ = 0;
    if (b->up() && ++b->bad_checks_ >= policy_.fall) {
      b->bad_checks_ = 0;
      setUp(b, false, "health check: " + why);
    }
  }
}

}  // namespace plumb::proxy
