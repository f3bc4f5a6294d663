#include "plugin/core/cluster_services.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "base/json.h"
#include "base/log.h"
#include "etcd/client.h"
#include "plugin/core/directory.h"

namespace plumb::core {
namespace {

using json = nlohmann::json;

}  // namespace

Result<std::unique_ptr<ClusterServices>> ClusterServices::start(const ClusterServicesConfig& config,
                                                                Changed changed, etcd::Kv* kv) {
  std::unique_ptr<ClusterServices> s(new ClusterServices(config, std::move(changed)));
  if (kv) {
    s->kv_ = kv;
  } else {
    PLUMB_ASSIGN(auto client, etcd::Client::create({config.endpoints, config.timeout_ms}));
    s->own_ = std::move(client);
    s->kv_ = s->own_.get();
  }
  s->dir_ = config.prefix;
  s->dir_.append("/services/");
  s->watcher_ = s->kv_->watcher();
  auto first = s->renew();
  if (!first.ok())
    log::get("proxy")->warn("no etcd lease yet (registrations wait for one): {}",
                            first.error().message);
  s->keepalive_ = std::thread([p = s.get()] { p->keepAliveLoop(); });
  s->watch_ = std::thread([p = s.get()] { p->watchLoop(); });
  return s;
}

ClusterServices::~ClusterServices() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  watcher_->stop();
  if (keepalive_.joinable()) keepalive_.join();
  if (watch_.joinable()) watch_.join();
  int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  // A clean stop takes this host's endpoints away at once; a crash leaves them to the TTL.
  if (lease != 0) (void)kv_->revoke(lease);
}

std::string ClusterServices::key(const std::string& name, bool udp,
                                 const std::string& guest) const {
  std::string k = dir_;
  k.append(name).append("/").append(protoName(udp)).append("/").append(config_.host);
  k.append("/").append(guest);
  return k;
}

std::string ClusterServices::value(const Published& p) const {
  return json{{"address", p.address}, {"port", p.port}}.dump();
}

Status ClusterServices::renew() {
  int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  if (lease != 0) {
    auto ttl = kv_->keepAlive(lease);
    if (ttl.ok()) return {};
    if (ttl.error().code != Errc::kNotFound) return std::move(ttl).error();
    log::get("proxy")->warn("host {}: etcd lease {:x} expired: registering again", config_.host,
                            lease);
  }
  PLUMB_ASSIGN(auto granted, kv_->grant(config_.lease_ttl_s));
  std::map<Key, Published> all;
  {
    std::lock_guard lock(mu_);
    lease_ = granted.id;
    all = published_;
  }
  for (const auto& [k, p] : all) {
    auto put = kv_->put(key(std::get<0>(k), std::get<1>(k), std::get<2>(k)), value(p), granted.id);
    if (!put.ok()) return std::move(put).error();
  }
  return {};
}

void ClusterServices::keepAliveLoop() {
  auto period = std::chrono::milliseconds(config_.lease_ttl_s * 1000 / 3);
  for (;;) {
    std::unique_lock lock(mu_);
    bool ok = lease_ != 0;
    wake_.wait_for(lock, ok ? period : std::chrono::milliseconds(500), [&] { return stopping_; });
    if (stopping_) return;
    lock.unlock();
    auto st = renew();
    if (!st.ok()) {
      log::get("proxy")->warn("host {}: etcd lease not renewed: {}", config_.host,
                              st.error().message);
      // Retried at the next tick, sooner: a lease the host could not keep has lost the keys
      // bound to it, and they are put again under a new one.
      std::lock_guard again(mu_);
      if (st.error().code == Errc::kNotFound) lease_ = 0;
    }
  }
}

std::optional<std::pair<std::string, bool>> ClusterServices::apply(const std::string& k,
                                                                   const std::string& v,
                                                                   bool deleted) {
  if (k.compare(0, dir_.size(), dir_) != 0) return std::nullopt;
  // NAME/PROTO/HOST/GUEST
  std::vector<std::string> parts;
  for (size_t start = dir_.size();;) {
    size_t slash = k.find('/', start);
    parts.push_back(
        k.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() != 4 || (parts[1] != "tcp" && parts[1] != "udp")) return std::nullopt;
  if (parts[2] == config_.host) return std::nullopt;  // this host's: served locally
  std::pair<std::string, bool> service{parts[0], parts[1] == "udp"};
  std::lock_guard lock(mu_);
  auto& endpoints = remote_[service];
  if (deleted) {
    if (endpoints.erase(k) == 0) return std::nullopt;
    return service;
  }
  auto j = json_read::parse(v);
  if (!j.ok() || !j->is_object()) {
    log::get("proxy")->warn("service key {} holds no JSON object: ignored", k);
    return std::nullopt;
  }
  RemoteEndpoint e;
  e.host = parts[2];
  e.guest = parts[3];
  e.address = json_read::valueOr(*j, "address", std::string());
  e.port = json_read::valueOr(*j, "port", 0);
  endpoints[k] = e;
  return service;
}

void ClusterServices::watchLoop() {
  auto log = log::get("proxy");
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
    }
    // Everything under services/, then every change from the revision read at.
    auto all = kv_->range(dir_, etcd::prefixEnd(dir_));
    if (!all.ok()) {
      log->warn("service directory: {}", all.error().message);
      std::unique_lock lock(mu_);
      wake_.wait_for(lock, std::chrono::seconds(1), [&] { return stopping_; });
      continue;
    }
    std::set<std::pair<std::string, bool>> touched;
    {
      std::lock_guard lock(mu_);
      for (const auto& [service, _] : remote_) touched.insert(service);
      remote_.clear();
    }
    for (const auto& kv : all->kvs) {
      if (auto s = apply(kv.key, kv.value, false)) touched.insert(*s);
    }
    for (const auto& [name, udp] : touched) changed_(name, udp);
    auto st = watcher_->run(dir_, etcd::prefixEnd(dir_), all->revision + 1,
                            [&](const std::vector<etcd::WatchEvent>& events, int64_t) {
                              std::set<std::pair<std::string, bool>> changed;
                              for (const auto& e : events) {
                                if (auto s = apply(e.kv.key, e.kv.value, e.deleted))
                                  changed.insert(*s);
                              }
                              for (const auto& [name, udp] : changed) changed_(name, udp);
                            });
    if (st.ok()) return;  // stopped
    log->warn("service directory watch: {}: reading it again", st.error().message);
  }
}

Status ClusterServices::publish(const std::string& name, bool udp, const std::string& guest,
                                const std::string& address, int port, bool keep) {
  Key k{name, udp, guest};
  Published p{address, port};
  int64_t lease = 0;
  {
    std::lock_guard lock(mu_);
    lease = lease_;
    if (keep) published_[k] = p;
  }
  Status st = lease != 0 ? Status() : renew();
  if (st.ok()) {
    std::lock_guard lock(mu_);
    lease = lease_;
  }
  if (st.ok()) {
    auto put = kv_->put(key(name, udp, guest), value(p), lease);
    if (!put.ok()) st = std::move(put).error();
  }
  std::lock_guard lock(mu_);
  if (!st.ok()) {
    if (!keep) published_.erase(k);
    return st.error().wrap("failed to register " + name + "/" + protoName(udp) + " of " + guest +
                           " in etcd");
  }
  published_[k] = p;
  return {};
}

void ClusterServices::withdraw(const std::string& name, bool udp, const std::string& guest) {
  {
    std::lock_guard lock(mu_);
    published_.erase({name, udp, guest});
  }
  auto st = kv_->remove(key(name, udp, guest));
  if (!st.ok())
    log::get("proxy")->warn("{}/{} of {}: left to its lease: {}", name, protoName(udp), guest,
                            st.error().message);
}

std::vector<RemoteEndpoint> ClusterServices::remote(const std::string& name, bool udp) {
  std::lock_guard lock(mu_);
  std::vector<RemoteEndpoint> out;
  auto it = remote_.find({name, udp});
  if (it == remote_.end()) return out;
  for (const auto& [k, e] : it->second) out.push_back(e);
  return out;
}

}  // namespace plumb::core
