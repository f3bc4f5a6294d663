#include "plugin/cli/runtimes.h"

#include <curl/curl.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "base/dl.h"
#include "base/json.h"

namespace plumb::cli {
namespace {

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

// The libcurl entry points used, resolved on the first runtime guest: pipework's other forms
// (and the CNI plugin, the same binary) never load libcurl and the TLS stack it links.
struct CurlLib {
  decltype(&curl_easy_init) init = nullptr;
  decltype(&curl_easy_setopt) setopt = nullptr;
  decltype(&curl_easy_perform) perform = nullptr;
  decltype(&curl_easy_getinfo) getinfo = nullptr;
  decltype(&curl_easy_cleanup) cleanup = nullptr;
  decltype(&curl_easy_strerror) strerror = nullptr;

  bool resolve(const DynamicLibrary& lib) {
    return lib.resolve("curl_easy_init", init) && lib.resolve("curl_easy_setopt", setopt) &&
           lib.resolve("curl_easy_perform", perform) && lib.resolve("curl_easy_getinfo", getinfo) &&
           lib.resolve("curl_easy_cleanup", cleanup) && lib.resolve("curl_easy_strerror", strerror);
  }
};

size_t collect(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpResult {
  long status = 0;
  std::string body;
};

// GET path on the HTTP server at a unix socket.
Result<HttpResult> get(const std::string& socket, const std::string& path) {
  PLUMB_ASSIGN(const CurlLib* loaded, loadOnce<CurlLib>("libcurl.so.4", "libcurl4"));
  const CurlLib& lib = *loaded;
  CURL* c = lib.init();
  if (!c) return fail(Errc::kInternal, "libcurl could not start");
  HttpResult r;
  std::string url = "http://localhost" + path;
  lib.setopt(c, CURLOPT_UNIX_SOCKET_PATH, socket.c_str());
  lib.setopt(c, CURLOPT_URL, url.c_str());
  lib.setopt(c, CURLOPT_WRITEFUNCTION, &collect);
  lib.setopt(c, CURLOPT_WRITEDATA, &r.body);
  lib.setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
  lib.setopt(c, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = lib.perform(c);
  if (rc == CURLE_OK) lib.getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  lib.cleanup(c);
  if (rc != CURLE_OK) return fail(Errc::kNotFound, std::string(lib.strerror(rc)));
  return r;
}

bool validName(const std::string& name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::string dockerSocket() { return envOr("PLUMB_DOCKER_SOCK", "/var/run/docker.sock"); }
std::string podmanSocket() { return envOr("PLUMB_PODMAN_SOCK", "/run/podman/podman.sock"); }

Result<RuntimeGuest> engineContainer(const std::string& runtime, const std::string& socket,
                                     const std::string& name, bool running, int wait_ms) {
  std::string what = runtime + " container " + name;
  if (!validName(name)) return fail(Errc::kInvalid, what + " is not a valid container name or id");
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto r = get(socket, "/containers/" + name + "/json");
    if (!r.ok()) {
      return fail(Errc::kNotFound, "failed to ask " + runtime + " for container " + name + " on " +
                                       socket + ": " + r.error().message);
    }
    if (r->status == 404) return fail(Errc::kNotFound, what + " does not exist");
    if (r->status != 200) {
      auto err = json_read::parse(r->body);
      std::string msg = err.ok() && err->is_object() && (*err)["message"].is_string()
                            ? (*err)["message"].get<std::string>()
                            : "HTTP " + std::to_string(r->status);
      return fail(Errc::kInvalid, "failed to look up " + what + ": " + msg);
    }
    auto j = json_read::parse(r->body);
    if (!j.ok() || !j->is_object())
      return fail(Errc::kDecode, runtime + " answered with malformed JSON for " + name);
    RuntimeGuest g;
    std::string status;
    PLUMB_TRY(json_read::str(*j, "Id", g.id));
    PLUMB_ASSIGN(const nlohmann::json* state, json_read::object(*j, "State"));
    if (state) {
      PLUMB_TRY(json_read::integer(*state, "Pid", g.pid));
      PLUMB_TRY(json_read::str(*state, "Status", status));
    }
    if (g.pid > 0 && (status == "running" || status.empty())) return g;
    if (!running) {
      g.pid = 0;
      return g;
    }
    // "created" (starting) or "restarting": the process is coming; anything else is not.
    bool coming = status == "created" || status == "restarting";
    if (!coming || std::chrono::steady_clock::now() >= deadline) {
      return fail(Errc::kInvalid,
                  what + " is not running (status " + (status.empty() ? "unknown" : status) + ")");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
}

Result<RuntimeGuest> containerdTask(const std::string& ref) {
  std::string ns = "default", id = ref;
  auto slash = ref.find('/');
  if (slash != std::string::npos) {
    ns = ref.substr(0, slash);
    id = ref.substr(slash + 1);
  }
  if (!validName(ns) || !validName(id))
    return fail(Errc::kInvalid, "containerd:" + ref + " is not [namespace/]id");
  // The v2 shim writes its task's PID here while the task lives.
  std::string dir =
      envOr("PLUMB_CONTAINERD_STATE", "/run/containerd/io.containerd.runtime.v2.task");
  std::string file = dir + "/" + ns + "/" + id + "/init.pid";
  std::ifstream in(file);
  int pid = 0;
  if (!(in >> pid) || pid <= 0) {
    return fail(Errc::kNotFound, "containerd task " + id + " in namespace " + ns +
                                     " is not running (no " + file + ")");
  }
  struct stat st {};
  if (::stat(("/proc/" + std::to_string(pid)).c_str(), &st) != 0)
    return fail(Errc::kNotFound, "containerd task " + id + " in namespace " + ns + " has exited");
  return RuntimeGuest{id, pid};
}

}  // namespace plumb::cli
