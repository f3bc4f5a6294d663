// The daemon's HTTP/1.1 server on a unix socket: libmicrohttpd, loaded when `plumb daemon`
// starts so that the CNI plugin and the command line (the same binary) never load it or the
// TLS stack it links. One thread per connection: dockerd's concurrent calls come on separate
// connections and never wait behind one another.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "base/fd.h"
#include "base/result.h"

namespace plumb::docker {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "application/vnd.docker.plugins.v1+json";
};

// method ("POST"), path ("/NetworkDriver.Join"), body.
using HttpHandler =
    std::function<HttpReply(const std::string&, const std::string&, const std::string&)>;

class HttpServer {
 public:
  // Serves on listen_fd (bound and listening) until the server is destroyed.
  static Result<std::unique_ptr<HttpServer>> start(UniqueFd listen_fd, HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

 private:
  HttpServer() = default;
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A unix stream socket bound at path (replacing a stale one), mode 0600, listening.
Result<UniqueFd> listenUnix(const std::string& path);

}  // namespace plumb::docker
