#include "plugin/cli/runtimes.h"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

#include "base/json.h"
#include "base/process.h"
#include "plugin/core/runtime_api.h"

namespace plumb::cli {
namespace {

std::string envOr(const char* name, const char* fallback) {
  const char* v = std::getenv(name);
  return v && *v ? v : fallback;
}

bool validName(const std::string& name) {
  // Docker's and podman's rule, [a-zA-Z0-9][a-zA-Z0-9_.-]*: "." and ".." would otherwise
  // become requests for other Engine API paths.
  if (name.empty() || name.size() > 128 || !std::isalnum(static_cast<unsigned char>(name[0])))
    return false;
  for (char c : name) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

// One look at a container through the Engine API: its /containers/NAME/json object, or
// nothing when the runtime has no such container.
Result<std::optional<nlohmann::json>> apiInspect(const std::string& runtime,
                                                 const std::string& socket,
                                                 const std::string& name) {
  auto r = core::apiGet(socket, "/containers/" + name + "/json");
  if (!r.ok()) {
    return fail(Errc::kNotFound, "failed to ask " + runtime + " for container " + name + " on " +
                                     socket + ": " + r.error().message);
  }
  if (r->status == 404) return std::optional<nlohmann::json>();
  if (r->status != 200) {
    auto err = json_read::parse(r->body);
    std::string msg = err.ok() && err->is_object() && (*err)["message"].is_string()
                          ? (*err)["message"].get<std::string>()
                          : "HTTP " + std::to_string(r->status);
    return fail(Errc::kInvalid, "failed to look up " + runtime + " container " + name + ": " + msg);
  }
  auto j = json_read::parse(r->body);
  if (!j.ok() || !j->is_object())
    return fail(Errc::kDecode, runtime + " answered with malformed JSON for " + name);
  return std::optional<nlohmann::json>(std::move(*j));
}

// The same look through `podman container inspect`, for a host whose podman API service is
// not running (podman is daemonless: its socket is only there when podman.socket is enabled).
Result<std::optional<nlohmann::json>> podmanCliInspect(const std::string& name) {
  ProcessSpec spec;
  spec.argv = {envOr("PLUMB_PODMAN", "podman"), "container", "inspect", "--", name};
  spec.deadline = std::chrono::seconds(30);
  auto run = runProcess(spec);
  if (!run.ok()) {
    return fail(Errc::kNotFound, "failed to ask podman for container " + name + ": " +
                                     run.error().message + " (is podman installed?)");
  }
  if (run->exit_code != 0) {
    if (run->err.find("no such container") != std::string::npos)
      return std::optional<nlohmann::json>();
    std::string msg = run->err.substr(0, run->err.find('\n'));
    if (msg.rfind("Error: ", 0) == 0) msg = msg.substr(7);
    return fail(Errc::kInvalid, "failed to look up podman container " + name + ": " +
                                    (msg.empty() ? "exit " + std::to_string(run->exit_code) : msg));
  }
  auto j = json_read::parse(run->out);
  if (!j.ok() || !j->is_array() || j->size() != 1 || !(*j)[0].is_object())
    return fail(Errc::kDecode, "podman container inspect printed malformed JSON for " + name);
  return std::optional<nlohmann::json>(std::move((*j)[0]));
}

using Inspect = std::function<Result<std::optional<nlohmann::json>>()>;
using Clock = std::chrono::steady_clock;
// Blocks until the container may have changed state (an event about it, from since on), or
// until the deadline.
using AwaitChange =
    std::function<void(const std::string& id, std::chrono::system_clock::time_point since,
                       Clock::time_point deadline)>;

// A container's id and PID from inspect's answers, waiting while it starts (pipework did the
// same) up to wait_ms: on the runtime's events, not on a timer.
Result<RuntimeGuest> waitRunning(const std::string& what, const Inspect& inspect,
                                 const AwaitChange& await, bool running, int wait_ms) {
  auto deadline = Clock::now() + std::chrono::milliseconds(wait_ms);
  for (;;) {
    auto since = std::chrono::system_clock::now();
    PLUMB_ASSIGN(auto found, inspect());
    if (!found) return fail(Errc::kNotFound, what + " does not exist");
    const nlohmann::json& j = *found;
    RuntimeGuest g;
    std::string status;
    PLUMB_TRY(json_read::str(j, "Id", g.id));
    if (j.contains("HostsPath") && j["HostsPath"].is_string()) g.hosts_path = j["HostsPath"];
    PLUMB_ASSIGN(const nlohmann::json* state, json_read::object(j, "State"));
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
    if (!coming || Clock::now() >= deadline) {
      return fail(Errc::kInvalid,
                  what + " is not running (status " + (status.empty() ? "unknown" : status) + ")");
    }
    await(g.id, since, deadline);
  }
}

long msUntil(Clock::time_point deadline) {
  return static_cast<long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count());
}

// The Engine API's event stream about one container, from since on: Docker and podman replay
// what happened after since, so a start between the inspect and this call is not missed.
AwaitChange apiAwait(const std::string& socket) {
  return [socket](const std::string& id, std::chrono::system_clock::time_point since,
                  Clock::time_point deadline) {
    // filters={"container":["<id>"]}, URL-encoded; the id is hex.
    std::string path = "/events?since=" + core::apiSince(since) +
                       "&filters=%7B%22container%22%3A%5B%22" + id + "%22%5D%7D";
    (void)core::apiFirstBytes(socket, path, msUntil(deadline));
  };
}

// podman without its service: `podman wait` for the running condition.
void podmanCliAwait(const std::string& id, std::chrono::system_clock::time_point,
                    Clock::time_point deadline) {
  ProcessSpec spec;
  spec.argv = {envOr("PLUMB_PODMAN", "podman"), "wait", "--condition", "running", "--", id};
  spec.deadline = std::chrono::milliseconds(std::max(msUntil(deadline), 1L));
  (void)runProcess(spec);
}

}  // namespace

Result<RuntimeGuest> dockerContainer(const std::string& name, bool running, int wait_ms) {
  std::string what = "docker container " + name;
  if (!validName(name)) return fail(Errc::kInvalid, what + " is not a valid container name or id");
  std::string socket = core::dockerSocket();
  return waitRunning(
      what, [&] { return apiInspect("docker", socket, name); }, apiAwait(socket), running, wait_ms);
}

Result<RuntimeGuest> podmanContainer(const std::string& name, bool running, int wait_ms) {
  std::string what = "podman container " + name;
  if (!validName(name)) return fail(Errc::kInvalid, what + " is not a valid container name or id");
  std::string socket = envOr("PLUMB_PODMAN_SOCK", "/run/podman/podman.sock");
  std::error_code ec;
  if (std::filesystem::exists(socket, ec)) {
    return waitRunning(
        what, [&] { return apiInspect("podman", socket, name); }, apiAwait(socket), running,
        wait_ms);
  }
  return waitRunning(
      what, [&] { return podmanCliInspect(name); }, podmanCliAwait, running, wait_ms);
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
  // The v2 shim writes its task's PID here while the task lives: under a standalone
  // containerd's state, or under the one dockerd runs (namespace "moby" holds Docker's).
  std::vector<std::string> dirs;
  std::string state = envOr("PLUMB_CONTAINERD_STATE", "");
  if (!state.empty()) {
    dirs = {state};
  } else {
    dirs = {"/run/containerd/io.containerd.runtime.v2.task",
            "/run/docker/containerd/daemon/io.containerd.runtime.v2.task"};
  }
  int pid = 0;
  for (const auto& dir : dirs) {
    std::ifstream in(dir + "/" + ns + "/" + id + "/init.pid");
    if (in >> pid && pid > 0) break;
    pid = 0;
  }
  if (pid <= 0) {
    std::string where = dirs[0];
    for (size_t i = 1; i < dirs.size(); ++i) where += " or " + dirs[i];
    return fail(Errc::kNotFound, "containerd task " + id + " in namespace " + ns +
                                     " is not running (no init.pid under " + where + ")");
  }
  std::error_code ec;
  if (!std::filesystem::exists("/proc/" + std::to_string(pid), ec))
    return fail(Errc::kNotFound, "containerd task " + id + " in namespace " + ns + " has exited");
  return RuntimeGuest{id, pid, ""};
}

}  // namespace plumb::cli
