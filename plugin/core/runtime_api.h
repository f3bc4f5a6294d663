// The container runtimes' Engine API (Docker's, and podman's compatible one) on a unix socket,
// spoken through libcurl, loaded on first use: pipework's other forms and the CNI plugin (the
// same binary) never load libcurl and the TLS stack it links. The command line looks
// containers up with it (plugin/cli/runtimes.h); `plumb daemon` follows Docker's container
// events with it (plugin/docker/labels.h).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "base/result.h"

namespace plumb::core {

// Where Docker answers: /var/run/docker.sock, or PLUMB_DOCKER_SOCK.
std::string dockerSocket();

struct ApiReply {
  long status = 0;
  std::string body;
};

// GET path. kNotFound when nothing answers on the socket.
Result<ApiReply> apiGet(const std::string& socket, const std::string& path, long timeout_ms = 5000);

// GET path as a stream: true once the body's first bytes arrive, false when the server ends
// the response or timeout_ms passes with none.
Result<bool> apiFirstBytes(const std::string& socket, const std::string& path, long timeout_ms);

// A GET whose body is a stream of lines (the Engine API's /events): run hands each whole line
// to on_line, on its own thread, until the server ends the response or stop() is called.
class ApiStream {
 public:
  ApiStream() = default;
  ApiStream(const ApiStream&) = delete;
  ApiStream& operator=(const ApiStream&) = delete;

  // Blocks. Ok when the server ended the stream or stop() was called (then at once, also for
  // a run that starts after it); the error when the socket does not answer or the server
  // refuses the request.
  Status run(const std::string& socket, const std::string& path,
             const std::function<void(const std::string&)>& on_line);
  // From any thread.
  void stop();
  bool stopped() const { return stopped_; }

 private:
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  void* multi_ = nullptr;  // the CURLM of the run in progress
};

}  // namespace plumb::core
