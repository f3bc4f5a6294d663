// Active health checks: every interval, a TCP connect to each backend of each service (a UDP
// service's companion TCP port); one still pending at the next round counts as failed. Runs
// on one loop. Internal to the proxy.
#pragma once

#include <map>
#include <memory>
#include <vector>

#include "base/fd.h"
#include "plugin/proxy/loop.h"

namespace plumb::proxy {

struct Service;
class Backend;
class BackendSet;

class HealthChecker {
 public:
  explicit HealthChecker(Loop& loop) : loop_(loop) {}
  ~HealthChecker();
  // Checks the service's current backends (again, after they changed).
  void add(const std::shared_ptr<Service>& service);
  void remove(uint64_t id);
  // One round: the pending checks fail, new ones start.
  void round();

 private:
  struct Probe final : Handler {
    HealthChecker* checker = nullptr;
    BackendSet* set = nullptr;  // nullptr once retired
    Backend* backend = nullptr;
    UniqueFd fd;
    void onEvents(uint32_t events) override;
  };
  void finish(Probe& p, bool ok, const std::string& why);

  // A service whose backends are checked.
  struct Checked {
    std::shared_ptr<Service> service;
    std::shared_ptr<BackendSet> set;  // what the probes point into
    std::vector<std::unique_ptr<Probe>> probes;
  };

  Loop& loop_;
  std::map<uint64_t, Checked> checked_;
};

}  // namespace plumb::proxy
