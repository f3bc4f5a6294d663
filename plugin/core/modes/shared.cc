// Pieces more than one mode uses: a veth pair with its peer born in the netns, the container
// side's name, addresses and routes, announcing, and deleting stamped links.
#include <linux/rtnetlink.h>

#include <algorithm>

#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

Status createVethPair(Context& ctx, int mtu) {
  nl::VethSpec spec;
  spec.name = ctx.host_name;
  spec.peer_name = ctx.born_named ? ctx.req.key.ifname : ctx.tmp_name;
  spec.mtu = mtu;
  spec.peer_mac = ctx.req.mac;
  Kernel& k = ctx.kernel;
  auto st = k.createVeth(Kernel::kHost, spec, ctx.ctr_ns);
  if (!st.ok() && st.error().code == Errc::kExists) {
    // The host name is derived from the attachment key, which the store just showed free: a
    // link by that name is a leftover of a crashed run.
    auto stale = k.getLink(Kernel::kHost, spec.name);
    if (stale.ok() && stale->kind == "veth" && stale->alias == Engine::ownerStamp(ctx.req.key)) {
      PLUMB_TRY(k.deleteLink(Kernel::kHost, stale->index));
      st = k.createVeth(Kernel::kHost, spec, ctx.ctr_ns);
    }
  }
  if (!st.ok() && st.error().code == Errc::kExists) {
    if (ctx.born_named && !k.getLink(Kernel::kHost, spec.name).ok()) {
      return fail(Errc::kExists,
                  "interface " + ctx.req.key.ifname + " already exists in netns " + ctx.req.netns);
    }
    return fail(Errc::kExists,
                "host interface " + spec.name + " already exists and is not this attachment's");
  }
  PLUMB_TRY(st);
  auto link = k.getLink(Kernel::kHost, spec.name);
  Result<nl::LinkInfo> peer = nl::LinkInfo{};
  if (link.ok() && ctx.born_named) peer = k.getLink(ctx.ctr_ns, spec.peer_name);
  if (!link.ok() || !peer.ok()) {
    // Made but not read back: this step fails, so no undo of it will run; the pair goes here.
    deleteVethPair(ctx);
    return !link.ok() ? std::move(link).error() : std::move(peer).error();
  }
  ctx.host_index = link->index;
  ctx.host_link = std::move(link).value();
  if (ctx.born_named) {
    ctx.ctr_index = peer->index;
    ctx.ctr_link = std::move(peer).value();
  }
  return {};
}

void deleteVethPair(Context& ctx) {
  auto made = ctx.kernel.getLink(Kernel::kHost, ctx.host_name);
  if (made.ok()) (void)ctx.kernel.deleteLink(Kernel::kHost, made->index);
}

namespace {

Status addRoute(Context& ctx, const RouteSpec& r) {
  nl::Route route;
  route.dst = r.dst.network();
  route.gateway = r.gateway;
  route.src = r.src;
  route.oif = ctx.ctr_index;
  route.mtu = static_cast<uint32_t>(r.mtu);
  route.metric = static_cast<uint32_t>(r.metric);
  if (!r.gateway) route.scope = RT_SCOPE_LINK;
  // A gateway outside every subnet on the link gets a host route of its own on the link first,
  // and then the route through it, as pipework does it (`ip route` in the guest reads the same).
  if (r.gateway) {
    bool covered = false;
    for (const auto& a : ctx.req.addresses) covered |= a.address.network().contains(*r.gateway);
    if (!covered) {
      nl::Route host;
      host.dst = IpPrefix(*r.gateway, r.gateway->isV4() ? 32 : 128);
      host.oif = ctx.ctr_index;
      host.scope = RT_SCOPE_LINK;
      auto st = ctx.kernel.addRoute(ctx.ctr_ns, host, false);
      if (!st.ok() && st.error().code != Errc::kExists) return st;
    }
  }
  auto st = ctx.kernel.addRoute(ctx.ctr_ns, route, r.replace);
  if (!st.ok() && st.error().code == Errc::kExists) return {};
  return st;
}

}  // namespace

void addContainerSteps(Context& ctx, std::vector<Step>& steps) {
  const AttachRequest& req = ctx.req;
  if (!ctx.in_container) {
    // The runtime moves and renames it; the stamp goes with it, so whichever netns it is in
    // when the endpoint is deleted, detach knows it for plumb's.
    steps.push_back({"stamp " + ctx.tmp_name + " for the runtime to move", [&ctx]() -> Status {
                       PLUMB_ASSIGN(auto link, ctx.kernel.getLink(Kernel::kHost, ctx.tmp_name));
                       nl::LinkChange change;
                       change.alias = Engine::ownerStamp(ctx.req.key);
                       return ctx.kernel.changeLink(Kernel::kHost, link.index, change);
                     }});
    return;
  }
  if (!ctx.born_named)
    steps.push_back({"name the container interface " + req.key.ifname, [&ctx]() -> Status {
                       auto tmp = ctx.kernel.getLink(ctx.ctr_ns, ctx.tmp_name);
                       if (!tmp.ok()) return std::move(tmp).error();
                       ctx.ctr_index = tmp->index;
                       nl::LinkChange change;
                       change.name = ctx.req.key.ifname;
                       change.alias = Engine::ownerStamp(ctx.req.key);
                       // The kernel announces the IPv4 addresses itself when the link comes up.
                       change.arp_notify = true;
                       auto st = ctx.kernel.changeLink(ctx.ctr_ns, ctx.ctr_index, change);
                       if (!st.ok() && st.error().code == Errc::kExists) {
                         return fail(Errc::kExists, "interface " + ctx.req.key.ifname +
                                                        " already exists in netns " +
                                                        ctx.req.netns);
                       }
                       PLUMB_TRY(st);
                       ctx.ctr_link = std::move(tmp).value();
                       ctx.ctr_link->name = ctx.req.key.ifname;
                       return {};
                     }});
  bool allocated = req.address_source != nullptr;  // addresses known only when steps run
  bool v6 = std::any_of(req.addresses.begin(), req.addresses.end(),
                        [](const auto& a) { return !a.address.isV4(); });
  if (v6 || allocated) {
    // Docker turns IPv6 off in a container with no IPv6 network (default.disable_ipv6): the
    // interface made for an IPv6 address gets it back, the rest of the guest does not.
    steps.push_back(
        {"enable IPv6 on " + req.key.ifname + " if it gets an IPv6 address", [&ctx]() -> Status {
           bool any = std::any_of(ctx.req.addresses.begin(), ctx.req.addresses.end(),
                                  [](const auto& a) { return !a.address.isV4(); });
           if (!any) return {};
           std::string key = "net.ipv6.conf." + ctx.req.key.ifname + ".disable_ipv6";
           auto now = ctx.kernel.readSysctl(ctx.ctr_ns, key);
           if (!now.ok() || now->rfind('0', 0) == 0) return {};
           return ctx.kernel.writeSysctl(ctx.ctr_ns, key, "0");
         }});
  }
  if (allocated) {
    steps.push_back({"add the allocated addresses to " + req.key.ifname, [&ctx]() -> Status {
                       for (const auto& a : ctx.req.addresses)
                         PLUMB_TRY(ctx.kernel.addAddress(ctx.ctr_ns, ctx.ctr_index, a.address));
                       return {};
                     }});
  } else {
    for (const auto& a : req.addresses) {
      steps.push_back(
          {"add address " + a.address.str() + " to " + req.key.ifname, [&ctx, &a]() -> Status {
             return ctx.kernel.addAddress(ctx.ctr_ns, ctx.ctr_index, a.address);
           }});
    }
  }
  steps.push_back({"set " + req.key.ifname + " up" + (ctx.born_named ? " and stamp it" : ""),
                   [&ctx]() -> Status {
                     nl::LinkChange up;
                     up.up = true;
                     if (ctx.born_named) {
                       // What naming it sets otherwise, in the same request.
                       up.alias = Engine::ownerStamp(ctx.req.key);
                       up.arp_notify = true;
                     }
                     return ctx.kernel.changeLink(ctx.ctr_ns, ctx.ctr_index, up);
                   }});
  if (allocated) {
    steps.push_back({"add the allocated routes", [&ctx]() -> Status {
                       for (const auto& r : ctx.req.routes) PLUMB_TRY(addRoute(ctx, r));
                       return {};
                     }});
  } else {
    for (const auto& r : req.routes) {
      std::string what = "add route " + r.dst.str() + (r.gateway ? " via " + r.gateway->str() : "");
      steps.push_back({what, [&ctx, &r]() -> Status { return addRoute(ctx, r); }});
    }
  }
}

void announce(Context& ctx, const MacAddr& mac) {
  std::vector<IpAddr> addrs;
  for (const auto& a : ctx.req.addresses) {
    // An address never held before is in no neighbour's cache: the kernel's own announcement
    // (arp_notify) and the container's first packets are all it needs.
    if (!a.fresh) addrs.push_back(a.address.addr());
  }
  if (addrs.empty()) return;
  ctx.kernel.announce(ctx.ctr_ns, ctx.ctr_index, mac, addrs, ctx.announce_after_port);
}

Status deleteStampedLinks(Detach& d) {
  Kernel& k = d.kernel;
  // The record is inserted ("adding") before any link is made, with the names the attach will
  // use: a link under a name derived from this key that is still unstamped is one an attach
  // made and was killed before stamping, and is ours too. Under any other name, or a record
  // that is "ready" (the stamps were all set by then), only the stamp says so.
  bool under_way = d.record && d.record->state == "adding";
  auto ours = [&](const nl::LinkInfo& l, bool derived_name) {
    if (l.alias == d.stamp) return true;
    return under_way && derived_name && l.alias.empty() &&
           (l.kind == "veth" || l.kind == "macvlan");
  };
  auto remove = [&](Ns ns, const std::string& name, bool derived_name) -> Status {
    auto link = k.getLink(ns, name);
    if (!link.ok() && link.error().code == Errc::kNotFound) return {};
    if (!link.ok()) return std::move(link).error();
    // A DEL after a failed ADD must not take a same-named interface another plugin owns.
    if (!ours(*link, derived_name)) return {};
    auto st = k.deleteLink(ns, link->index);
    if (!st.ok() && st.error().code != Errc::kNotFound) return st;
    return {};
  };
  if (!d.netns.empty()) {
    auto ns = k.openNetns(d.netns);
    if (ns.ok()) {
      Status st = remove(*ns, d.key.ifname, false);
      if (st.ok()) st = remove(*ns, Engine::tempIfname(d.key), true);
      k.closeNetns(*ns);
      PLUMB_TRY(st);
    } else if (ns.error().code != Errc::kNoNetns && ns.error().code != Errc::kInvalid) {
      return std::move(ns).error();
    }
  }
  // Ends left on the host (Docker's, or a veth whose container end went elsewhere).
  std::string host_end = d.record && !d.record->host_ifname.empty() ? d.record->host_ifname
                                                                    : Engine::hostIfname(d.key);
  PLUMB_TRY(remove(Kernel::kHost, host_end, host_end == Engine::hostIfname(d.key)));
  return remove(Kernel::kHost, Engine::hostSideIfname(d.key), true);
}

Status checkKind(const Check& c, const std::string& kind) {
  if (c.link.kind == kind) return {};
  return fail(Errc::kInvalid,
              "interface " + c.req.key.ifname + " is a " + c.link.kind + ", not a " + kind);
}

}  // namespace plumb::core::modes
