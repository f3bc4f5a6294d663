#include "plugin/cli/guest.h"

#include <algorithm>
#include <cctype>
#include <filesystem>

#include "base/ip.h"
#include "plugin/cli/runtimes.h"
#include "plugin/core/host.h"
#include "plugin/core/runtime_api.h"

namespace plumb::cli {
namespace {

Result<Guest> checked(Guest g, bool must_exist, const std::string& what) {
  if (!must_exist) return g;
  auto ns = core::checkNetns(g.netns);
  if (!ns.ok())
    return fail(ns.error().code, "failed to find guest " + what + ": " + ns.error().message);
  return g;
}

}  // namespace

Result<Guest> resolveGuest(const std::string& guest, bool must_exist) {
  if (guest.empty()) return fail(Errc::kInvalid, "the guest is empty");
  auto fromRuntime = [&](const std::string& prefix,
                         const Result<RuntimeGuest>& r) -> Result<Guest> {
    if (!r.ok()) return r.error();
    // The full id keys the record, whichever name or short id the user gave. A stopped
    // container (del only) has no netns left: its records go, its links went with it.
    if (r->pid == 0) return Guest{"", prefix + r->id, r->hosts_path};
    return checked({"/proc/" + std::to_string(r->pid) + "/ns/net", prefix + r->id, r->hosts_path},
                   true, guest);
  };
  if (guest.rfind("docker:", 0) == 0) {
    return fromRuntime("docker-", dockerContainer(guest.substr(7), must_exist));
  }
  if (guest.rfind("podman:", 0) == 0) {
    return fromRuntime("podman-", podmanContainer(guest.substr(7), must_exist));
  }
  if (guest.rfind("containerd:", 0) == 0)
    return fromRuntime("containerd-", containerdTask(guest.substr(11)));
  if (guest[0] == '/') return checked({guest, "ns-" + stableHex8(guest), ""}, must_exist, guest);
  bool digits =
      std::all_of(guest.begin(), guest.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits)
    return checked({"/proc/" + guest + "/ns/net", "pid-" + guest, ""}, must_exist, "PID " + guest);
  bool plain = guest.find('/') == std::string::npos && guest != "." && guest != "..";
  std::error_code ec;
  if (plain && std::filesystem::exists("/run/netns/" + guest, ec)) {
    return checked({"/run/netns/" + guest, guest, ""}, must_exist, guest);
  }
  // pipework's usual guest: a Docker container's name, id or short id.
  if (plain && std::filesystem::exists(core::dockerSocket(), ec)) {
    auto r = dockerContainer(guest, must_exist);
    if (r.ok() || r.error().code != Errc::kNotFound) return fromRuntime("docker-", r);
  }
  if (plain && !must_exist) return Guest{"/run/netns/" + guest, guest, ""};
  return fail(Errc::kNotFound, "guest " + guest +
                                   " is neither a netns name, a netns path, a PID nor a Docker "
                                   "container (podman:NAME and containerd:[NS/]ID name those)");
}

}  // namespace plumb::cli
