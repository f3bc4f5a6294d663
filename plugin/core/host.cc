#include "plugin/core/host.h"

#include <sys/socket.h>

#include "netlink/device.h"
#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/socket.h"
#include "plugin/core/kernel.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core {

namespace nl = plumb::netlink;

namespace {
HostLink hostLinkOf(const nl::LinkInfo& l) { return {l.name, l.kind, l.mtu}; }
}  // namespace

Result<std::optional<HostLink>> findHostLink(const std::string& name) {
  PLUMB_ASSIGN(auto sock, nl::NlSocket::open());
  auto l = nl::getLink(sock, name);
  if (l.ok()) return std::optional<HostLink>(hostLinkOf(*l));
  if (l.error().code == Errc::kNotFound) return std::optional<HostLink>();
  return std::move(l).error();
}

Result<std::optional<HostLink>> findHostLinkByMac(const MacAddr& mac) {
  PLUMB_ASSIGN(auto sock, nl::NlSocket::open());
  PLUMB_ASSIGN(auto links, nl::listLinks(sock));
  auto found = nl::pickDevice(links, {"", mac, ""}, sysfsRoot());
  if (!found) return std::optional<HostLink>();
  return std::optional<HostLink>(hostLinkOf(*found));
}

Result<std::vector<IpPrefix>> routedSubnets(bool v6) {
  PLUMB_ASSIGN(auto sock, nl::NlSocket::open());
  PLUMB_ASSIGN(auto routes, nl::listRoutes(sock, v6 ? AF_INET6 : AF_INET));
  std::vector<IpPrefix> out;
  for (const auto& r : routes) {
    if (!r.dst.isDefault() && !r.dst.addr().isLinkLocal()) out.push_back(r.dst);
  }
  return out;
}

Status checkNetns(const std::string& path) {
  PLUMB_TRY(openContainerNetns(path));
  return {};
}

Status checkPassthroughDevice(const PassthroughPlan& plan) {
  PLUMB_TRY(modes::findPassthroughDevice(*realKernel(), plan));
  return {};
}

Status checkSriov(const SriovPlan& plan, Store& store) {
  auto k = realKernel();
  return modes::sriovReady(*k, store, plan);
}

Status checkOvsBridge(const OvsPlan& plan) { return modes::ovsReady(plan.ovsdb, plan.bridge); }

Result<bool> isOvsBridge(const std::string& ovsdb, const std::string& name) {
  return modes::ovsBridgeExists(ovsdb, name);
}

}  // namespace plumb::core
