// The service directory across hosts, in etcd (docs/cluster.md): what this host's daemon
// exposes is registered under its own lease at the address other hosts reach it on, and every
// other host's registrations are followed by one watch, so links on this host forward to
// endpoints on every host. Internal to the core: the ambassadors stand on it.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: the service directory is reached through it"
#endif

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/result.h"
#include "etcd/kv.h"
#include "plugin/core/ambassadors.h"

namespace plumb::core {

// Another host's endpoint of a service.
struct RemoteEndpoint {
  std::string host, guest;
  std::string address;  // ADDR:PORT where that host's daemon forwards to it
  int port = 0;         // the service's own port (a link's default)
};

class ClusterServices {
 public:
  // A service's endpoints on other hosts changed (name, udp).
  using Changed = std::function<void(const std::string&, bool)>;
  // Takes a lease (or keeps trying, when etcd does not answer yet) and starts the watch;
  // kv: the caller's, or nullptr for a client on config.endpoints.
  static Result<std::unique_ptr<ClusterServices>> start(const ClusterServicesConfig& config,
                                                        Changed changed, etcd::Kv* kv = nullptr);
  // Stops both threads and revokes the lease: this host's registrations go at once.
  ~ClusterServices();
  ClusterServices(const ClusterServices&) = delete;
  ClusterServices& operator=(const ClusterServices&) = delete;

  // Registers an endpoint of this host's under its lease; an error in one line (within the
  // etcd timeout) registers nothing. keep: on failure, registered all the same as soon as
  // etcd answers (an endpoint the daemon serves again after a restart).
  Status publish(const std::string& name, bool udp, const std::string& guest,
                 const std::string& address, int port, bool keep = false);
  // Best effort: the key goes with the lease otherwise.
  void withdraw(const std::string& name, bool udp, const std::string& guest);
  std::vector<RemoteEndpoint> remote(const std::string& name, bool udp);
  const ClusterServicesConfig& config() const { return config_; }

 private:
  using Key = std::tuple<std::string, bool, std::string>;  // name, udp, guest
  struct Published {
    std::string address;
    int port = 0;
  };
  ClusterServices(ClusterServicesConfig config, Changed changed)
      : config_(std::move(config)), changed_(std::move(changed)) {}
  std::string key(const std::string& name, bool udp, const std::string& guest) const;
  std::string value(const Published& p) const;
  // The lease, granted anew (with every registration put again) when there is none.
  Status renew();
  void keepAliveLoop();
  void watchLoop();
  // Applies a put or delete of a key under services/ to remote_; the service it touched.
  std::optional<std::pair<std::string, bool>> apply(const std::string& key, const std::string& v,
                                                    bool deleted);

  ClusterServicesConfig config_;
  Changed changed_;
  std::unique_ptr<etcd::Kv> own_;
  etcd::Kv* kv_ = nullptr;
  std::string dir_;  // <prefix>/services/

  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;
  int64_t lease_ = 0;
  std::map<Key, Published> published_;
  // Other hosts' endpoints: key -> endpoint, by (name, udp).
  std::map<std::pair<std::string, bool>, std::map<std::string, RemoteEndpoint>> remote_;
  std::unique_ptr<etcd::Watcher> watcher_;
  std::thread keepalive_, watch_;
};

}  // namespace plumb::core
