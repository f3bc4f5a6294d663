#include "plugin/core/runtime_api.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdlib>

#include "base/dl.h"

namespace plumb::core {
namespace {

// The libcurl entry points used, resolved on the first call.
struct CurlLib {
  decltype(&curl_easy_init) init = nullptr;
  decltype(&curl_easy_setopt) setopt = nullptr;
  decltype(&curl_easy_perform) perform = nullptr;
  decltype(&curl_easy_getinfo) getinfo = nullptr;
  decltype(&curl_easy_cleanup) cleanup = nullptr;
  decltype(&curl_easy_strerror) strerror = nullptr;
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

// An easy handle for GET path on the socket, its body handed to write (with data); timeout_ms
// 0: none.
CURL* request(const CurlLib& lib, const std::string& socket, const std::string& path, WriteFn write,
              void* data, long timeout_ms) {
  CURL* c = lib.init();
  if (!c) return nullptr;
  std::string url = "http://localhost" + path;  // curl copies strings it is given
  lib.setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  lib.setopt(c, CURLOPT_URL, url.c_str());
  lib.setopt(c, CURLOPT_WRITEFUNCTION, write);
  lib.setopt(c, CURLOPT_WRITEDATA, data);
  if (timeout_ms > 0) lib.setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
  lib.setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
  lib.setopt(c, CURLOPT_NOSIGNAL, 1L);
  return c;
}

CURLcode transfer(const CurlLib& lib, const std::string& socket, const std::string& path,
                  WriteFn write, void* data, long timeout_ms, long* status = nullptr) {
  CURL* c = request(lib, socket, path, write, data, std::max(timeout_ms, 1L));
  if (!c) return CURLE_FAILED_INIT;
  CURLcode rc = lib.perform(c);
  if (rc == CURLE_OK && status) lib.getinfo(c, CURLINFO_RESPONSE_CODE, status);
  lib.cleanup(c);
  return rc;
}

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

}  // namespace

std::string dockerSocket() { return envOr("PLUMB_DOCKER_SOCK", "/var/run/docker.sock"); }

Result<ApiReply> apiGet(const std::string& socket, const std::string& path, long timeout_ms) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  ApiReply r;
  CURLcode rc = transfer(*lib, socket, path, &collect, &r.body, timeout_ms, &r.status);
  if (rc != CURLE_OK) return fail(Errc::kNotFound, std::string(lib->strerror(rc)));
  return r;
}

Result<bool> apiFirstBytes(const std::string& socket, const std::string& path, long timeout_ms) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  bool got = false;
  // Returning less than given ends the transfer: the first bytes are all that is wanted.
  WriteFn first = [](char*, size_t, size_t, void* flag) -> size_t {
    *static_cast<bool*>(flag) = true;
    return 0;
  };
  CURLcode rc = transfer(*lib, socket, path, first, &got, timeout_ms);
  if (got) return true;
  if (rc == CURLE_OK || rc == CURLE_OPERATION_TIMEDOUT) return false;
  return fail(Errc::kNotFound, std::string(lib->strerror(rc)));
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

Status ApiStream::run(const std::string& socket, const std::string& path,
                      const std::function<void(const std::string&)>& on_line) {
  PLUMB_ASSIGN(const CurlLib* lib, curl());
  Lines lines{&on_line, {}};
  CURL* c = request(*lib, socket, path, &splitLines, &lines, 0);
  CURLM* m = lib->multi_init();
  if (!c || !m || lib->multi_add(m, c) != CURLM_OK) {
    if (c) lib->cleanup(c);
    if (m) lib->multi_cleanup(m);
    return fail(Errc::kIo, "failed to set up a request to " + socket);
  }
  lib->setopt(c, CURLOPT_FAILONERROR, 1L);  // an HTTP error status ends the transfer
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
  long status = 0;
  lib->getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  {
    std::lock_guard lock(mu_);
    multi_ = nullptr;
  }
  lib->multi_remove(m, c);
  lib->cleanup(c);
  lib->multi_cleanup(m);
  if (stopped_ || result == CURLE_OK) return {};
  if (result == CURLE_HTTP_RETURNED_ERROR)
    return fail(Errc::kInvalid,
                "GET " + path + " on " + socket + ": HTTP " + std::to_string(status));
  return fail(Errc::kNotFound, std::string(lib->strerror(result)));
}

void ApiStream::stop() {
  stopped_ = true;
  std::lock_guard lock(mu_);
  if (!multi_) return;
  if (auto lib = curl(); lib.ok()) (void)(*lib)->multi_wakeup(static_cast<CURLM*>(multi_));
}

}  // namespace plumb::core
