// The container runtimes' Engine API (Docker's, and podman's compatible one) on a unix socket,
// over base/http_client.h. The command line looks containers up with it
// (plugin/cli/runtimes.h); `plumb daemon` follows Docker's container events with it
// (plugin/docker/labels.h).
#pragma once

#include <chrono>
#include <string>

#include "base/http_client.h"
#include "base/result.h"

namespace plumb::core {

// Where Docker answers: /var/run/docker.sock, or PLUMB_DOCKER_SOCK.
std::string dockerSocket();

using ApiReply = HttpResponse;

// A moment as /events' `since` takes it: seconds.nanoseconds since the epoch.
std::string apiSince(std::chrono::system_clock::time_point t);

// GET path on the socket. kNotFound when nothing answers on it.
Result<ApiReply> apiGet(const std::string& socket, const std::string& path, long timeout_ms = 5000);

// GET path as a stream: true once the body's first bytes arrive, false when the server ends
// the response or timeout_ms passes with none.
Result<bool> apiFirstBytes(const std::string& socket, const std::string& path, long timeout_ms);

// A GET on the socket whose body is a stream of lines (the Engine API's /events).
class ApiStream {
 public:
  // Blocks: see HttpLineStream::run.
  Status run(const std::string& socket, const std::string& path,
             const std::function<void(const std::string&)>& on_line) {
    return stream_.run(HttpTarget{"http://localhost", socket}, path, "", on_line);
  }
  void stop() { stream_.stop(); }
  bool stopped() const { return stream_.stopped(); }

 private:
  HttpLineStream stream_;
};

}  // namespace plumb::core
