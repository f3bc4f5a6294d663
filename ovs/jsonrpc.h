// JSON-RPC 1.0 over a unix stream socket, as ovsdb-server speaks it (RFC 7047 section 4):
// requests carry an id, replies are matched to it, the server's "echo" requests are answered,
// and notifications ("update" and the like, id null) are set aside. Every call has a deadline,
// named in the error when it passes. Depends on base/ only.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <chrono>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/fd.h"
#include "base/json.h"
#include "base/result.h"

namespace plumb::ovs {

using json = nlohmann::json;

// Splits a byte stream into JSON texts. ovsdb-server sends values back to back with no
// delimiter: a read may end inside a value or hold several. Tracks nesting outside strings (a
// brace inside a string, or an escaped quote, does not count: json_read::Nesting); only
// objects and arrays are accepted at the top level, as JSON-RPC sends nothing else, and none
// nested deeper than json_read::kMaxDepth (what json_read::parse refuses too).
class Scanner {
 public:
  // Appends bytes; complete values are then available through next().
  void feed(std::string_view bytes);
  // The next complete JSON text, if one is complete; an error when the stream is not JSON
  // (a top-level byte that starts no object or array). Consumed either way.
  Result<std::optional<std::string>> next();
  size_t buffered() const { return buf_.size() - start_; }

 private:
  std::string buf_;
  size_t start_ = 0;  // where the value being scanned began
  size_t pos_ = 0;    // how far the scan has gone
  json_read::Nesting nesting_;
};

class Connection {
 public:
  // "unix:PATH" or a bare path. The connect itself is bounded by timeout.
  static Result<Connection> open(const std::string& where, std::chrono::milliseconds timeout);

  // Sends {"method", "params", "id"} and returns the reply's "result"; a reply whose "error"
  // is not null is an error naming the method and what the server said.
  Result<json> call(const std::string& method, const json& params,
                    std::chrono::milliseconds timeout);

  const std::string& where() const { return where_; }
  // Notifications received while waiting for replies (an "update" of a monitor), oldest first.
  std::vector<json>& notifications() { return notifications_; }

 private:
  Connection(UniqueFd fd, std::string where) : fd_(std::move(fd)), where_(std::move(where)) {}
  Status send(const json& msg);
  // The next message, read within deadline.
  Result<json> receive(std::chrono::steady_clock::time_point deadline, const std::string& what,
                       std::chrono::milliseconds timeout);

  UniqueFd fd_;
  std::string where_;
  Scanner scanner_;
  long long next_id_ = 1;
  std::vector<json> notifications_;
};

// Where a socket path comes from: "unix:PATH" or PATH. Anything else (tcp:, ssl:) is refused:
// plumb talks to the local ovsdb-server only.
Result<std::string> socketPath(const std::string& where);

}  // namespace plumb::ovs
