#include "plugin/core/in_guest.h"

#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/rule.h"
#include "netlink/socket.h"

namespace plumb::core {

namespace nl = plumb::netlink;

namespace {

// Whether the guest already has exactly this route (a re-run), not merely one to dst.
bool sameRoute(nl::NlSocket& s, const nl::Route& want) {
  auto routes = nl::listRoutes(s, want.dst.isV4() ? AF_INET : AF_INET6, want.table);
  if (!routes.ok()) return false;
  for (const auto& r : *routes) {
    if (r.dst == want.dst && r.gateway == want.gateway && (!want.oif || r.oif == want.oif) &&
        (!want.metric || r.metric == want.metric))
      return true;
  }
  return false;
}

}  // namespace

Result<std::string> changeRoute(const std::string& netns, const RouteChange& c) {
  PLUMB_ASSIGN(auto ns, nl::Netns::fromPath(netns));
  PLUMB_ASSIGN(auto sock, nl::NlSocket::openIn(ns));
  nl::Route r;
  r.dst = c.dst.network();
  r.gateway = c.via;
  r.metric = static_cast<uint32_t>(c.metric);
  r.table = c.table;
  if (!c.dev.empty()) {
    PLUMB_ASSIGN(auto link, nl::getLink(sock, c.dev));
    r.oif = link.index;
  }
  if (!r.gateway) r.scope = RT_SCOPE_LINK;
  Status st =
      c.action == "del" ? nl::deleteRoute(sock, r) : nl::addRoute(sock, r, c.action == "replace");
  bool rerun =
      !st.ok() && c.action == "add" && st.error().code == Errc::kExists && sameRoute(sock, r);
  if (!st.ok() && !rerun) return std::move(st).error();
  return nl::describe(r);
}

Result<std::string> changeRule(const std::string& netns, const RuleChange& c) {
  PLUMB_ASSIGN(auto ns, nl::Netns::fromPath(netns));
  PLUMB_ASSIGN(auto sock, nl::NlSocket::openIn(ns));
  nl::Rule r;
  r.family = c.family == 6 ? AF_INET6 : AF_INET;
  r.from = c.from;
  r.to = c.to;
  r.iif = c.iif;
  r.oif = c.oif;
  r.fwmark = c.fwmark;
  r.priority = c.priority;
  r.table = c.table;
  Status st = c.action == "del" ? nl::deleteRule(sock, r) : nl::addRule(sock, r);
  // The same rule added again is there already.
  if (!st.ok() && !(c.action == "add" && st.error().code == Errc::kExists))
    return std::move(st).error();
  return nl::describe(r);
}

Result<int> runTc(const std::string& netns, const std::vector<std::string>& args) {
  PLUMB_ASSIGN(auto ns, nl::Netns::fromPath(netns));
  std::vector<std::string> argv = {"tc"};
  argv.insert(argv.end(), args.begin(), args.end());
  return nl::execIn(ns, argv);
}

Status waitForCarrier(const std::string& ifname) { return nl::waitForCarrier(ifname); }

}  // namespace plumb::core
