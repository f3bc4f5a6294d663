// Links and exposes asked for by container labels: `docker run --network NET --label
// plumb.link=NAME[:PORT][/udp] --label plumb.expose=NAME:PORT[/udp]`, NET a plumb network.
// dockerd hands a network driver no labels (Join names the sandbox, not the container), and
// asking dockerd about the container during Join would wait on the container lock that
// dockerd holds while it calls Join: so `plumb daemon` follows dockerd's container start
// events and, for a container that started with those labels and an endpoint on one of its
// networks, makes the same links and exposes `plumb link` and `plumb expose` make (a link
// also names the service in the container's /etc/hosts). The container's guest is
// docker-<full id>, as on the command line, so `plumb unlink CONTAINER NAME` undoes a label's
// link. When the container stops, its netns goes, and its links and services with it.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "plugin/core/runtime_api.h"

namespace plumb::docker {

// One entry of a label's value.
struct LabelEntry {
  std::string name;
  int port = 0;  // 0: the service's own (a link only)
  bool udp = false;
};

// A plumb.link (need_port false) or plumb.expose (need_port true) value: entries separated
// by commas, each NAME[:PORT][/udp|/tcp].
Result<std::vector<LabelEntry>> parseLabel(const std::string& value, bool need_port);

class ContainerLabels {
 public:
  // A control request (JSON text, docs/proxy.md) -> its answer: the ambassadors' handle.
  using Handle = std::function<std::string(const std::string&)>;

  // Follows the container events of the dockerd on socket (reconnecting while it is down),
  // after acting on the containers already running; the store in state_dir says which
  // networks are plumb's.
  static std::unique_ptr<ContainerLabels> start(std::string socket, std::string state_dir,
                                                Handle handle);
  ~ContainerLabels();  // stops following
  ContainerLabels(const ContainerLabels&) = delete;
  ContainerLabels& operator=(const ContainerLabels&) = delete;

 private:
  ContainerLabels(std::string socket, std::string state_dir, Handle handle);
  void run();
  // Acts on container id's labels, if it runs with an endpoint on a plumb network.
  void apply(const std::string& id);
  // Waits ms, or less when stopping; false when stopping.
  bool pause(int ms);

  std::string socket_;
  std::string state_dir_;
  Handle handle_;
  core::ApiStream stream_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;  // last: it uses the members above
};

}  // namespace plumb::docker
