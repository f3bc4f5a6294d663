// HTTP requests as a client, through libcurl, loaded on first use (base/dl.h): pipework's
// other forms and the CNI plugin's start-up never load it or the TLS stack it links. Serves
// the container runtimes' Engine API on a unix socket (plugin/core/runtime_api.h) and etcd's
// JSON gateway over TCP (etcd/).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>

#include "base/result.h"

namespace plumb {

// Where requests go: "http://HOST:PORT" (base_url), or an HTTP server on a unix socket.
struct HttpTarget {
  std::string base_url = "http://localhost";
  std::string unix_socket;  // when set, the connection goes there
};

struct HttpResponse {
  long status = 0;
  std::string body;
};

// One request: GET, or POST with body (application/json) when body is not empty. An error
// when no answer came: kTryAgain for a timeout, kNotFound when nothing answers (refused,
// unreachable), kIo for the rest; the message is libcurl's.
Result<HttpResponse> httpRequest(const HttpTarget& target, const std::string& path,
                                 const std::string& body = "", long timeout_ms = 5000);

// GET path as a stream: true once the body's first bytes arrive, false when the server ends
// the response or timeout_ms passes with none.
Result<bool> httpFirstBytes(const HttpTarget& target, const std::string& path, long timeout_ms);

// A request whose answer is a stream of lines (the Engine API's /events, etcd's watch): run
// hands each whole line to on_line, on its own thread, until the server ends the response or
// stop() is called.
class HttpLineStream {
 public:
  HttpLineStream() = default;
  HttpLineStream(const HttpLineStream&) = delete;
  HttpLineStream& operator=(const HttpLineStream&) = delete;

  // Blocks. Ok when the server ended the stream or stop() was called (then at once, also for
  // a run that starts after it); the error when the server does not answer (within
  // connect_timeout_ms) or refuses the request (HTTP status >= 400).
  Status run(const HttpTarget& target, const std::string& path, const std::string& body,
             const std::function<void(const std::string&)>& on_line,
             long connect_timeout_ms = 5000);
  // From any thread.
  void stop();
  bool stopped() const { return stopped_; }

 private:
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  void* multi_ = nullptr;  // the CURLM of the run in progress
};

}  // namespace plumb
