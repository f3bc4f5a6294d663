#include "base/http_client.h"

#include <curl/curl.h>

#include <algorithm>

#include "base/dl.h"

namespace plumb {
namespace {

// The libcurl entry points used, resolved on the first call.
struct CurlLib {
  decltype(&curl_easy_init) init = nullptr;
  decltype(&curl_easy_setopt) setopt = nullptr;
  decltype(&curl_easy_perform) perform = nullptr;
  decltype(&curl_easy_getinfo) getinfo = nullptr;
  decltype(&curl_easy_cleanup) cleanup = nullptr;
  decltype(&curl_easy_strerror) strerror = nullptr;
  decltype(&curl_slist_append) slist_append = nullptr;
  decltype(&curl_slist_free_all) slist_free = nullptr;
  decltype(&curl_multi_init) multi_init = nullptr;
  decltype(&curl_multi_add_handle) multi_add = nullptr;
  decltype(&curl_multi_remove_handle) multi_remove = nullptr;
  decltype(&curl_multi_perform) multi_perform = nullptr;
  decltype(&curl_multi_poll) multi_poll = nullptr;
  decltype(&curl_multi_wakeup) multi_wakeup = nullptr;
  decltype(&curl_multi_info_read) multi_info_read = nullptr;
  decltype(&curl_multi_cleanup) multi_cleanup = nullptr;

  bool resolve(const DynamicLibrary& lib) {
    return lib.resolve("curl_easy_init", init) && lib.resolve("curl_easy_setopt", setopt) &&
           lib.resolve("curl_easy_perform", perform) && lib.resolve("curl_easy_getinfo", getinfo) &&
           lib.resolve("curl_easy_cleanup", cleanup) &&
           lib.resolve("curl_easy_strerror", strerror) &&
           lib.resolve("curl_slist_append", slist_append) &&
           lib.resolve("curl_slist_free_all", slist_free) &&
           lib.resolve("curl_multi_init", multi_init) &&
           lib.resolve("curl_multi_add_handle", multi_add) &&
           lib.resolve("curl_multi_remove_handle", multi_remove) &&
           lib.resolve("curl_multi_perform", multi_perform) &&
           lib.resolve("curl_multi_poll", multi_poll) &&
           lib.resolve("curl_multi_wakeup", multi_wakeup) &&
           lib.resolve("curl_multi_info_read", multi_info_read) &&
           lib.resolve("curl_multi_cleanup", multi_cleanup);
  }
};

Result<const CurlLib*> curl() { return loadOnce<CurlLib>("libcurl.so.4", "libcurl4"); }

using WriteFn = size_t (*)(char*, size_t, size_t, void*);

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// An easy handle with what it points to: freed together.
class Request {
 public:
  Request(const CurlLib& lib, const HttpTarget& target, const std::string& path,
          const std::string& body, WriteFn write, void* data, long timeout_ms,
          long connect_timeout_ms)
      : lib_(lib), url_(target.base_url + path), body_(body) {
    c_ = lib.init();
    if (!c_) return;
    if (!target.unix_socket.empty())
      lib.setopt(c_, CURLOPT_UNIX_SOCKET_PATH, target.unix_socket.c_str());
    lib.setopt(c_, CURLOPT_URL, url_.c_str());
    lib.setopt(c_, CURLOPT_WRITEFUNCTION, write);
    lib.setopt(c_, CURLOPT_WRITEDATA, data);
    if (timeout_ms > 0) lib.setopt(c_, CURLOPT_TIMEOUT_MS, timeout_ms);
    lib.setopt(c_, CURLOPT_CONNECTTIMEOUT_MS, std::max(connect_timeout_ms, 1L));
    lib.setopt(c_, CURLOPT_NOSIGNAL, 1L);
    lib.setopt(c_, CURLOPT_NOPROXY, "*");  // the machine's proxy settings are not for these
    if (!body_.empty()) {
      headers_ = lib.slist_append(nullptr, "Content-Type: application/json");
      lib.setopt(c_, CURLOPT_HTTPHEADER, headers_);
      lib.setopt(c_, CURLOPT_POSTFIELDS, body_.c_str());
      lib.setopt(c_, CURLOPT_POSTFIELDSIZE, static_cast<long>(body_.size()));
    }
  }
  ~Request() {
    if (c_) lib_.cleanup(c_);
    if (headers_) lib_.slist_free(headers_);
  }
  Request(const Request&) = delete;
  Request& operator=(const Request&) = delete;
  CURL* get() const { return c_; }
  long status() const {
    long s = 0;
    lib_.getinfo(c_, CURLINFO_RESPONSE_CODE, &s);
    return s;
  }

 private:
  const CurlLib& lib_;
  std::string url_;
  std::string body_;
  CURL* c_ = nullptr;
  curl_slist* headers_ = nullptr;
};

Error curlError(const CurlLib& lib, CURLcode rc) {
  Errc code = Errc::kIo;
  if (rc == CURLE_OPERATION_TIMEDOUT) code = Errc::kTryAgain;
  if (rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST) code = Errc::kNotFound;
  return {code, 0, lib.strerror(rc)};
}

}  // namespace

Result<HttpResponse> httpRequest(const HttpTarget& target, const std::string& path,
                                 const std::string& body, long timeout_ms) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  HttpResponse r;
  long limit = std::max(timeout_ms, 1L);
  Request req(*lib, target, path, body, &collect, &r.body, limit, limit);
  if (!req.get()) return fail(Errc::kIo, "failed to set up a request");
  CURLcode rc = lib->perform(req.get());
  if (rc != CURLE_OK) return curlError(*lib, rc);
  r.status = req.status();
  return r;
}

Result<bool> httpFirstBytes(const HttpTarget& target, const std::string& path, long timeout_ms) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  bool got = false;
  // Returning less than given ends the transfer: the first bytes are all that is wanted.
  WriteFn first = [](char*, size_t, size_t, void* flag) -> size_t {
    *static_cast<bool*>(flag) = true;
    return 0;
  };
  long limit = std::max(timeout_ms, 1L);
  Request req(*lib, target, path, "", first, &got, limit, limit);
  if (!req.get()) return fail(Errc::kIo, "failed to set up a request");
  CURLcode rc = lib->perform(req.get());
  if (got) return true;
  if (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT) return false;
  return curlError(*lib, rc);
}

namespace {

struct Lines {
  const std::function<void(const std::string&)>* on_line;
  std::string partial;
};

size_t splitLines(char* data, size_t size, size_t n, void* p) {
  auto* l = static_cast<Lines*>(p);
  l->partial.append(data, size * n);
  size_t start = 0;
  for (size_t nl; (nl = l->partial.find('\n', start)) != std::string::npos; start = nl + 1) {
    if (nl > start) (*l->on_line)(l->partial.substr(start, nl - start));
  }
  l->partial.erase(0, start);
  return size * n;
}

}  // namespace

Status HttpLineStream::run(const HttpTarget& target, const std::string& path,
                           const std::string& body,
                           const std::function<void(const std::string&)>& on_line,
                           long connect_timeout_ms) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  Lines lines{&on_line, {}};
  Request req(*lib, target, path, body, &splitLines, &lines, 0, connect_timeout_ms);
  CURLM* m = lib->multi_init();
  if (!req.get() || !m || lib->multi_add(m, req.get()) != CURLM_OK) {
    if (m) lib->multi_cleanup(m);
    return fail(Errc::kIo, "failed to set up a request to " + target.base_url + path);
  }
  lib->setopt(req.get(), CURLOPT_FAILONERROR, 1L);  // an HTTP error status ends the transfer
  {
    std::lock_guard lock(mu_);
    multi_ = m;
  }
  CURLcode result = CURLE_OK;
  int running = 1;
  while (running && !stopped_) {
    if (lib->multi_perform(m, &running) != CURLM_OK) break;
    if (running) (void)lib->multi_poll(m, nullptr, 0, 60000, nullptr);  // stop() wakes it
  }
  int left = 0;
  while (CURLMsg* msg = lib->multi_info_read(m, &left)) {
    if (msg->msg == CURLMSG_DONE) result = msg->data.result;
  }
  long status = req.status();
  {
    std::lock_guard lock(mu_);
    multi_ = nullptr;
  }
  lib->multi_remove(m, req.get());
  lib->multi_cleanup(m);
  if (stopped_ || result == CURLE_OK) return {};
  if (result == CURLE_HTTP_RETURNED_ERROR)
    return fail(Errc::kInvalid, path + ": HTTP " + std::to_string(status));
  return curlError(*lib, result);
}

void HttpLineStream::stop() {
  stopped_ = true;
  std::lock_guard lock(mu_);
  if (!multi_) return;
  if (auto lib = curl(); lib.ok()) (void)(*lib)->multi_wakeup(static_cast<CURLM*>(multi_));
}

}  // namespace plumb
