#include "plugin/cli/guest.h"

#include <sys/stat.h>

#include <algorithm>
#include <cctype>

#include "base/ip.h"
#include "netlink/netns.h"

namespace plumb::cli {
namespace {

bool exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<Guest> checked(Guest g, bool must_exist, const std::string& what) {
  if (!must_exist) return g;
  auto ns = netlink::Netns::fromPath(g.netns);
  if (!ns.ok())
    return fail(ns.error().code, "failed to find guest " + what + ": " + ns.error().message);
  return g;
}

}  // namespace

Result<Guest> resolveGuest(const std::string& guest, bool must_exist) {
  if (guest.empty()) return fail(Errc::kInvalid, "the guest is empty");
  for (const char* runtime : {"podman:", "containerd:", "docker:"}) {
    if (guest.rfind(runtime, 0) == 0) {
      return fail(Errc::kUnsupported,
                  "guest " + guest + ": " +
                      std::string(runtime).substr(0, std::string(runtime).size() - 1) +
                      " guests are not available yet");
    }
  }
  if (guest[0] == '/') return checked({guest, "ns-" + stableHex8(guest)}, must_exist, guest);
  bool digits =
      std::all_of(guest.begin(), guest.end(), [](unsigned char c) { return std::isdigit(c); });
  if (digits)
    return checked({"/proc/" + guest + "/ns/net", "pid-" + guest}, must_exist, "PID " + guest);
  bool plain = guest.find('/') == std::string::npos && guest != "." && guest != "..";
  if (plain && (exists("/run/netns/" + guest) || !must_exist)) {
    return checked({"/run/netns/" + guest, guest}, must_exist, guest);
  }
  return fail(Errc::kNotFound,
              "guest " + guest +
                  " is neither a netns name, a netns path nor a PID (Docker, podman and "
                  "containerd guests are not available yet)");
}

}  // namespace plumb::cli
