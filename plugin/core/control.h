// `plumb daemon`'s control socket, <state dir>/control.sock: how the command line reaches the
// daemon that holds the ambassadors' listeners. One JSON request per connection, one JSON
// answer. The socket is the daemon's user's only (0600) and the peer's uid is checked too.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::core {

std::string controlSocketPath(const std::string& state_dir);

class ControlServer {
 public:
  // request text -> answer text; called on the server's one thread, one request at a time.
  using Handler = std::function<std::string(const std::string& request)>;
  // Fails (kExists) when another daemon answers on path; a socket left by a killed one is
  // replaced.
  static Result<std::unique_ptr<ControlServer>> start(const std::string& path, Handler handler);
  // Stops serving and removes the socket.
  ~ControlServer();
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

 private:
  ControlServer(std::string path, UniqueFd fd, Handler handler);
  void serve();

  std::string path_;
  UniqueFd fd_;
  std::atomic<bool> stopping_{false};
  Handler handler_;
  std::thread thread_;
};

// Sends one request and returns the answer. Nothing listening at path: Errc::kNotFound.
Result<std::string> controlCall(const std::string& path, const std::string& request,
                                int timeout_ms = 10000);

}  // namespace plumb::core
