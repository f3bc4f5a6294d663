// The ambassadors of one host, as `plumb daemon` holds them: a forwarder (plugin/core/
// forwarder.h), the services guests expose and the links guests make to them (recorded in the
// store, plugin/core/directory.h), and the control requests that change them
// (plugin/core/control.h). A link listens on 127.0.0.1:PORT inside its guest and forwards to
// every endpoint of its service; when a service gains or loses an endpoint, every link to it
// follows at once. Listeners come back from the store when the daemon restarts.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "base/result.h"
#include "plugin/core/forwarder.h"

namespace plumb::core {

class Store;
class Directory;
class NetnsWatch;
class ClusterServices;

// Services across hosts (docs/cluster.md; plumb daemon --etcd-endpoints): what this host's
// guests expose is registered in etcd at an address of this host's, where the daemon forwards
// to them, and links follow every host's endpoints.
struct ClusterServicesConfig {
  std::vector<std::string> endpoints;  // "http://HOST:PORT"
  std::string prefix = "/plumb";
  std::string host;       // this host's name (PLUMB_HOST, else the hostname)
  std::string advertise;  // the address other hosts reach this one on (--advertise-address)
  int64_t lease_ttl_s = 10;
  long timeout_ms = 5000;
};
Status validateClusterServices(const ClusterServicesConfig& config);

class Ambassadors {
 public:
  // Opens the store in state_dir, starts the forwarder and listens again for every recorded
  // link whose guest's netns is still there (the others are forgotten, and logged).
  // With cluster, services are shared with other hosts through etcd.
  static Result<std::unique_ptr<Ambassadors>> start(
      const std::string& state_dir, const ForwarderOptions& options,
      const std::optional<ClusterServicesConfig>& cluster = std::nullopt);
  // Drains the forwarder.
  ~Ambassadors();
  Ambassadors(const Ambassadors&) = delete;
  Ambassadors& operator=(const Ambassadors&) = delete;

  // One control request (JSON text, see docs/proxy.md) -> its answer: {"ok": true, ...} or
  // {"error": "one line"}. Thread-safe.
  std::string handle(const std::string& request);
  // The guest's links and services go (its attachment was removed).
  Status forgetGuest(const std::string& guest);
  // A guest's netns went away: the links and services recorded with it go.
  void netnsGone(const std::string& path);
  // Prometheus text: per link and backend, connections open and total, bytes each way,
  // connect errors and health (plumb daemon --metrics).
  std::string metrics();

 private:
  using LinkKey = std::tuple<std::string, std::string, bool>;  // guest, name, udp
  Ambassadors(std::unique_ptr<Store> store, std::unique_ptr<Forwarder> forwarder);
  Status restore();
  // address: where the host reaches the guest; "" to take it from the guest's attachments
  // (a Docker container on a plumb network is attached by endpoint: its front end names it).
  Result<std::string> expose(const std::string& guest, const std::string& netns,
                             const std::string& name, int port, bool udp, std::string address);
  Status unexpose(const std::string& guest, const std::string& name);
  // hosts: a Docker container's /etc/hosts (as the host sees it) to name the service in.
  Result<std::string> link(const std::string& guest, const std::string& netns,
                           const std::string& name, int port, bool udp, const std::string& hosts);
  Status unlink(const std::string& guest, const std::string& name, const std::string& hosts);
  Status listen(const LinkKey& key, const std::string& netns, int port);
  Status forgetGuestLocked(const std::string& guest);
  // Stops watching a netns no record names any more.
  void unwatchUnused(const std::string& netns);
  // Every link to name follows its endpoints (this host's and, in a cluster, the others').
  Status follow(const std::string& name, bool udp);
  // In a cluster: the guest's endpoint is served on the advertised address and registered.
  Status advertise(const std::string& guest, const std::string& name, bool udp,
                   const std::string& address, int port, bool restoring);
  void unadvertise(const std::string& guest, const std::string& name, bool udp);

  std::mutex mu_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<Directory> directory_;
  std::unique_ptr<Forwarder> forwarder_;
  std::map<LinkKey, uint64_t> listeners_;  // a link's forwarder listener
  // An exposed endpoint's listener on the advertised address, and its ADDR:PORT.
  std::map<LinkKey, std::pair<uint64_t, std::string>> advertised_;
  std::unique_ptr<NetnsWatch> watch_;         // its thread calls netnsGone
  std::unique_ptr<ClusterServices> cluster_;  // last: its thread calls follow
};

// A guest is gone (its last attachment removed): its links and services go too, through the
// daemon of state_dir when one runs (it closes their listeners), else from the store directly.
Status forgetGuestLinks(const std::string& state_dir, Store& store, const std::string& guest);

}  // namespace plumb::core
