#include "ovs/jsonrpc.h"
#include "base/json.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>

namespace plumb::ovs {

namespace {

using Clock = std::chrono::steady_clock;

std::string ms(std::chrono::milliseconds t) { return std::to_string(t.count()) + " ms"; }

int remainingMs(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() < 0 ? 0 : static_cast<int>(left.count());
}

}  // namespace

void Scanner::feed(std::string_view bytes) {
  if (start_ > 0 && start_ == buf_.size()) {
    buf_.clear();
    start_ = pos_ = 0;
  } else if (start_ > 65536 && start_ * 2 > buf_.size()) {
    buf_.erase(0, start_);
    pos_ -= start_;
    start_ = 0;
  }
  buf_.append(bytes);
}

Result<std::optional<std::string>> Scanner::next() {
  while (pos_ < buf_.size()) {
    char c = buf_[pos_++];
    if (nesting_.depth() == 0) {
      // Between values: only blanks, then an object or array.
      if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
        start_ = pos_;
        continue;
      }
      if (c != '{' && c != '[') {
        start_ = pos_;
        return fail(Errc::kDecode,
                    std::string("not a JSON-RPC message: unexpected '") + c + "' between messages");
      }
    }
    size_t depth = nesting_.step(c);
    if (depth > json_read::kMaxDepth) {
      return fail(Errc::kDecode, "not a JSON-RPC message: nested deeper than " +
                                     std::to_string(json_read::kMaxDepth) + " levels");
    }
    if (depth == 0) {
      std::string text = buf_.substr(start_, pos_ - start_);
      start_ = pos_;
      return std::optional<std::string>(std::move(text));
    }
  }
  return std::optional<std::string>();
}

Result<std::string> socketPath(const std::string& where) {
  std::string path = where;
  if (path.rfind("unix:", 0) == 0) path = path.substr(5);
  if (path.empty() || path[0] != '/') {
    return fail(Errc::kInvalid, "OVSDB address '" + where +
                                    "' is not a unix socket (unix:/path or /path; plumb talks "
                                    "to the local ovsdb-server only)");
  }
  if (path.size() >= sizeof(sockaddr_un::sun_path)) {
    return fail(Errc::kInvalid, "OVSDB socket path " + path + " is too long");
  }
  return path;
}

Result<Connection> Connection::open(const std::string& where, std::chrono::milliseconds timeout) {
  PLUMB_ASSIGN(auto path, socketPath(where));
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return failErrno(errno, "socket(AF_UNIX)");
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  std::memcpy(sa.sun_path, path.data(), path.size());
  std::string who = "OVSDB at unix:" + path;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
    int e = errno;
    if (e != EAGAIN && e != EINPROGRESS) {
      Error err = errorFromErrno(e, "cannot connect to " + who);
      // No server there: not running, or another path. A CNI caller reads kNotFound as
      // "nothing to do" on DEL; this must stay an error.
      if (err.code == Errc::kNotFound) err.code = Errc::kUnsupported;
      if (e == ECONNREFUSED) err.message += " (is ovsdb-server running?)";
      return fail(std::move(err));
    }
    pollfd p{fd.get(), POLLOUT, 0};
    int n = ::poll(&p, 1, static_cast<int>(timeout.count()));
    if (n == 0)
      return fail(Errc::kTryAgain,
                  "cannot connect to " + who + ": no answer within " + ms(timeout));
    int soerr = 0;
    socklen_t len = sizeof(soerr);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (n < 0 || soerr != 0) return failErrno(n < 0 ? errno : soerr, "cannot connect to " + who);
  }
  return Connection(std::move(fd), "unix:" + path);
}

Status Connection::send(const json& msg) {
  std::string text = msg.dump();
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::send(fd_.get(), text.data() + off, text.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd_.get(), POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      return failErrno(errno, "cannot write to OVSDB at " + where_);
    }
    off += static_cast<size_t>(n);
  }
  return {};
}

Result<json> Connection::receive(Clock::time_point deadline, const std::string& what,
                                 std::chrono::milliseconds timeout) {
  for (;;) {
    PLUMB_ASSIGN(auto text, scanner_.next());
    if (text) {
      // The scanner bounded its depth, as json_read::parse would have: parsed once, here.
      auto j = json::parse(*text, nullptr, /*allow_exceptions=*/false);
      if (j.is_discarded() || !j.is_object())
        return fail(Errc::kDecode, "OVSDB at " + where_ + " sent a message that is not JSON");
      return j;
    }
    pollfd p{fd_.get(), POLLIN, 0};
    int n = ::poll(&p, 1, remainingMs(deadline));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return failErrno(errno, "cannot read from OVSDB at " + where_);
    if (n == 0) {
      return fail(Errc::kTryAgain,
                  "OVSDB at " + where_ + " did not answer " + what + " within " + ms(timeout));
    }
    char buf[65536];
    ssize_t got = ::recv(fd_.get(), buf, sizeof(buf), 0);
    if (got < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (got < 0) return failErrno(errno, "cannot read from OVSDB at " + where_);
    if (got == 0) return fail(Errc::kIo, "OVSDB at " + where_ + " closed the connection");
    scanner_.feed(std::string_view(buf, static_cast<size_t>(got)));
  }
}

Result<json> Connection::call(const std::string& method, const json& params,
                              std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  long long id = next_id_++;
  PLUMB_TRY(send({{"method", method}, {"params", params}, {"id", id}}));
  for (;;) {
    PLUMB_ASSIGN(auto msg, receive(deadline, method, timeout));
    auto mit = msg.find("method");
    if (mit != msg.end()) {
      // A request from the server: echo is answered (the server drops clients that do not),
      // anything else with no id is a notification.
      auto idit = msg.find("id");
      if (*mit == "echo" && idit != msg.end() && !idit->is_null()) {
        PLUMB_TRY(send({{"result", json_read::valueOr(msg, "params", json::array())},
                        {"error", nullptr},
                        {"id", *idit}}));
      } else if (idit == msg.end() || idit->is_null()) {
        notifications_.push_back(std::move(msg));
      }
      continue;
    }
    auto idit = msg.find("id");
    if (idit == msg.end() || !idit->is_number_integer() || idit->get<long long>() != id)
      continue;  // a late reply to a call that timed out
    auto err = msg.find("error");
    if (err != msg.end() && !err->is_null()) {
      std::string text = err->is_string() ? err->get<std::string>() : err->dump();
      return fail(Errc::kInvalid, "OVSDB at " + where_ + " refused " + method + ": " + text);
    }
    auto res = msg.find("result");
    if (res == msg.end())
      return fail(Errc::kDecode,
                  "OVSDB at " + where_ + " replied to " + method + " without result");
    return std::move(*res);
  }
}

}  // namespace plumb::ovs
