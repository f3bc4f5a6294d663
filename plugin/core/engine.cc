#include "plugin/core/engine.h"

#include <linux/if.h>
#include <linux/rtnetlink.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>

#include "base/log.h"
#include "netlink/addr.h"
#include "netlink/announce.h"
#include "netlink/firewall.h"
#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/socket.h"
#include "netlink/sysctl.h"
#include "plugin/core/passthrough.h"

namespace plumb::core {

namespace nl = plumb::netlink;
using json = nlohmann::json;

std::string modeName(const Plan& plan) {
  switch (plan.index()) {
    case 0:
      return "bridge";
    case 1:
      return "macvlan";
    case 2:
      return "ovs";
    case 3:
      return "sriov";
    default:
      return "passthrough";
  }
}

namespace {

std::string hex8(const AttachmentKey& key) { return stableHex8(key.str()); }

Status validateName(const std::string& what, const std::string& v) {
  if (v.empty()) return fail(Errc::kInvalid, what + " is empty");
  if (v.find('/') != std::string::npos || v == "." || v == ".." ||
      v.find("..") != std::string::npos) {
    return fail(Errc::kInvalid, what + " '" + v + "' must not hold '/' or '..'");
  }
  return {};
}

json detailOf(const AttachRequest& req, const json& restore) {
  json d;
  if (!restore.is_null()) d["restore"] = restore;
  d["addresses"] = json::array();
  for (const auto& a : req.addresses) {
    d["addresses"].push_back(
        {{"address", a.address.str()}, {"gateway", a.gateway ? a.gateway->str() : ""}});
  }
  d["routes"] = json::array();
  for (const auto& r : req.routes) {
    d["routes"].push_back({{"dst", r.dst.str()}, {"gw", r.gateway ? r.gateway->str() : ""}});
  }
  return d;
}

AttachmentRecord recordOf(const AttachRequest& req, const std::string& host_ifname,
                          const std::string& state, const json& restore = json()) {
  AttachmentRecord r;
  r.key = req.key;
  r.netns = req.netns;
  r.mode = modeName(req.plan);
  r.frontend = req.frontend;
  r.host_ifname = host_ifname;
  if (const auto* b = std::get_if<VethBridgePlan>(&req.plan)) r.bridge = b->bridge;
  if (const auto* m = std::get_if<MacvlanPlan>(&req.plan)) r.bridge = m->master;
  if (restore.is_object()) r.bridge = restore.value("name", "");
  r.state = state;
  r.detail = detailOf(req, restore).dump();
  return r;
}

}  // namespace

std::vector<AddressSpec> Engine::recordedAddresses(const AttachmentRecord& record) {
  std::vector<AddressSpec> out;
  auto detail = json::parse(record.detail, nullptr, false);
  if (!detail.is_object() || !detail.contains("addresses") || !detail["addresses"].is_array())
    return out;
  for (const auto& a : detail["addresses"]) {
    if (!a.is_object() || !a.contains("address") || !a["address"].is_string()) continue;
    auto prefix = IpPrefix::parse(a["address"].get<std::string>());
    if (!prefix.ok()) continue;
    AddressSpec spec{*prefix, std::nullopt};
    if (a.contains("gateway") && a["gateway"].is_string()) {
      auto gw = IpAddr::parse(a["gateway"].get<std::string>());
      if (gw.ok()) spec.gateway = *gw;
    }
    out.push_back(spec);
  }
  return out;
}

std::string Engine::hostIfname(const AttachmentKey& key) { return "plm" + hex8(key); }
std::string Engine::ownerStamp(const AttachmentKey& key) { return "plumb:" + key.str(); }
std::string Engine::bridgeStamp(const std::string& bridge) { return "plumb:bridge:" + bridge; }
std::string Engine::tempIfname(const AttachmentKey& key) { return "plt" + hex8(key); }
std::string Engine::hostSideIfname(const AttachmentKey& key) { return "plc" + hex8(key); }

struct Engine::Context {
  const AttachRequest& req;
  std::optional<nl::NlSocket> host;
  std::optional<nl::Netns> target;
  std::optional<nl::NlSocket> ctr;  // in the target netns (the host's for host-side placement)
  int bridge_index = 0;
  int bridge_mtu = 0;
  int host_index = 0;
  int ctr_index = 0;
  std::string host_name;
  std::string tmp_name;
  AttachResult result;
  std::optional<nl::LinkInfo> device;  // passthrough: the device moved in
  json restore;                        // passthrough: what removal gives back
  bool created_bridge = false;         // this attach made the bridge
  // The interfaces as made, read before the link comes up: see "record the result".
  std::optional<nl::LinkInfo> host_link;
  std::optional<nl::LinkInfo> ctr_link;
};

namespace {

// Neighbours learn the new addresses at once rather than on their first miss (an address may
// have belonged to another container a moment ago). Behind a bridge port that the kernel has
// yet to enable, a child process does it once the port forwards and the interface sends
// (netlink/announce.h); elsewhere the kernel has
// sent the gratuitous ARPs (arp_notify, set when naming the link) and plumb sends the
// unsolicited NAs.
void announce(const AttachRequest& req, int bridge_port, const nl::Netns& ns, int ifindex,
              const MacAddr& mac) {
  std::vector<IpAddr> addrs;
  for (const auto& a : req.addresses) addrs.push_back(a.address.addr());
  if (std::holds_alternative<VethBridgePlan>(req.plan) && bridge_port) {
    auto st = nl::announceWhenForwarding(bridge_port, ns, ifindex, mac, addrs);
    if (!st.ok()) log::get("core")->info("{}", st.error().message);
    return;
  }
  for (const auto& a : addrs) {
    if (a.isV4()) continue;
    auto st = nl::announceAddress(ns, ifindex, mac, a);
    if (!st.ok()) log::get("core")->info("{}", st.error().message);
  }
}

}  // namespace

Status Engine::validate(const AttachRequest& req) {
  PLUMB_TRY(validateName("network name", req.key.network));
  PLUMB_TRY(validateName("container id", req.key.container_id));
  if (req.placement == Placement::kContainer) {
    PLUMB_TRY(nl::validateIfname(req.key.ifname));
    if (req.netns.empty())
      return fail(Errc::kInvalid, "no netns given for container " + req.key.container_id);
  }
  if (req.mtu < 0 || req.mtu > 65535)
    return fail(Errc::kInvalid, "mtu " + std::to_string(req.mtu) + " is out of range");
  if (req.mac && (req.mac->isMulticast() || req.mac->isZero())) {
    return fail(Errc::kInvalid, "MAC address " + req.mac->str() + " is not a unicast address");
  }
  if (!req.host_ifname.empty()) {
    if (!std::holds_alternative<VethBridgePlan>(req.plan)) {
      return fail(Errc::kInvalid, "a host-side name (" + req.host_ifname +
                                      ") is for a veth; mode " + modeName(req.plan) +
                                      " has no host end");
    }
    PLUMB_TRY(nl::validateIfname(req.host_ifname));
  }
  if (const auto* b = std::get_if<VethBridgePlan>(&req.plan)) {
    PLUMB_TRY(nl::validateIfname(b->bridge));
  } else if (const auto* m = std::get_if<MacvlanPlan>(&req.plan)) {
    if (m->master.empty()) return fail(Errc::kInvalid, "macvlan needs a master interface");
    PLUMB_TRY(nl::validateIfname(m->master));
    PLUMB_TRY(nl::parseMacvlanMode(m->mode));
  } else if (const auto* p = std::get_if<PassthroughPlan>(&req.plan)) {
    if (p->device.empty() && !p->hwaddr && p->pci_address.empty())
      return fail(Errc::kInvalid, "passthrough needs a device name, a MAC or a PCI address");
    if (!p->device.empty()) PLUMB_TRY(nl::validateIfname(p->device));
  } else {
    return fail(Errc::kUnsupported, "mode " + modeName(req.plan) + " is not available yet");
  }
  return {};
}

namespace {

// Creates the bridge when it is missing and allowed, puts the gateway addresses on it, brings
// it up, and makes sure its forwarding (and masquerade) rules are in place.
// Deletes a bridge plumb made (stamped at creation: a bridge the user made, br0 with the host's
// uplink in it, is never plumb's to remove) and the forwarding rules plumb installed for it.
// only_if_unused: only a bridge without ports, and nothing at all otherwise (a concurrent
// attach may have joined the bridge an attach that failed had made).
Status deleteOwnBridge(nl::NlSocket& s, const std::string& bridge, bool only_if_unused) {
  auto br = nl::getLink(s, bridge);
  bool ours = br.ok() && br->kind == "bridge" && br->alias == Engine::bridgeStamp(bridge);
  if (ours && only_if_unused) {
    PLUMB_ASSIGN(auto links, nl::listLinks(s));
    for (const auto& l : links) {
      if (l.master == br->index) return {};
    }
  }
  if (ours) {
    auto st = nl::deleteLink(s, br->index);
    if (!st.ok() && st.error().code != Errc::kNotFound) return st;
  } else if (only_if_unused) {
    return {};
  }
  return nl::Firewall::revokeBridge(bridge);
}

Result<nl::LinkInfo> ensureBridge(nl::NlSocket& s, const std::string& network,
                                  const VethBridgePlan& plan, int mtu, bool* created = nullptr) {
  bool made = false;
  auto result = [&]() -> Result<nl::LinkInfo> {
    auto br = nl::getLink(s, plan.bridge);
    if (!br.ok() && br.error().code == Errc::kNotFound) {
      if (!plan.create_bridge) {
        return fail(Errc::kNotFound, "no such bridge " + plan.bridge + " and create=false");
      }
      // A MAC of its own: otherwise the bridge takes its lowest port's, and the
      // gateway's MAC changes under the containers as ports come and go.
      auto st = nl::createBridge(s, {plan.bridge, mtu, MacAddr::fromName("bridge:" + plan.bridge)});
      if (!st.ok() && st.error().code != Errc::kExists) return std::move(st).error();
      made = st.ok();
      br = nl::getLink(s, plan.bridge);
      if (st.ok() && br.ok()) {
        nl::LinkChange stamp;
        stamp.alias = Engine::bridgeStamp(plan.bridge);
        PLUMB_TRY(nl::changeLink(s, br->index, stamp));
      }
    }
    if (!br.ok()) return std::move(br).error();
    if (br->kind != "bridge") {
      return fail(Errc::kInvalid,
                  plan.bridge + " exists and is not a bridge (kind '" + br->kind + "')");
    }
    for (const auto& gw : plan.gateway_addresses) {
      auto st = nl::addAddress(s, br->index, gw);
      if (!st.ok() && st.error().code != Errc::kExists) return std::move(st).error();
    }
    nl::LinkChange change;
    if (!br->up()) change.up = true;
    if (plan.promisc && !(br->flags & IFF_PROMISC)) change.promisc = true;
    if (change.up || change.promisc) PLUMB_TRY(nl::changeLink(s, br->index, change));
    bool v4 = false, v6 = false;
    for (const auto& gw : plan.gateway_addresses) (gw.isV4() ? v4 : v6) = true;
    if (v4) PLUMB_TRY(nl::writeSysctl(nullptr, "net.ipv4.ip_forward", "1"));
    if (v6) PLUMB_TRY(nl::writeSysctl(nullptr, "net.ipv6.conf.all.forwarding", "1"));
    PLUMB_TRY(nl::Firewall::ensure({plan.bridge, network, plan.masquerade, plan.internal}));
    return std::move(br).value();
  }();
  // A bridge made here and then not usable goes again: a failure changes nothing.
  if (!result.ok() && made) (void)deleteOwnBridge(s, plan.bridge, /*only_if_unused=*/true);
  if (created) *created = made && result.ok();
  return result;
}

}  // namespace

Result<bool> Engine::prepareBridge(const std::string& network, const VethBridgePlan& plan,
                                   int mtu) {
  PLUMB_TRY(nl::validateIfname(plan.bridge));
  PLUMB_ASSIGN(auto host, nl::NlSocket::open());
  bool created = false;
  PLUMB_TRY(ensureBridge(host, network, plan, mtu, &created));
  return created;
}

Result<std::vector<Step>> Engine::buildSteps(Context& ctx) {
  const AttachRequest& req = ctx.req;
  std::vector<Step> steps;
  ctx.host_name = req.host_ifname.empty() ? hostIfname(req.key) : req.host_ifname;
  ctx.tmp_name =
      req.placement == Placement::kHostSide ? hostSideIfname(req.key) : tempIfname(req.key);
  bool in_container = req.placement == Placement::kContainer;

  steps.push_back({"open the host netns" + (in_container ? " and netns " + req.netns : ""),
                   [&ctx, in_container]() -> Status {
                     PLUMB_ASSIGN(ctx.host, nl::NlSocket::open());
                     if (!in_container) return {};
                     auto ns = nl::Netns::fromPath(ctx.req.netns);
                     if (!ns.ok()) return std::move(ns).error();
                     ctx.target = std::move(ns).value();
                     PLUMB_ASSIGN(ctx.ctr, nl::NlSocket::openIn(*ctx.target));
                     return {};
                   }});

  if (const auto* pp = std::get_if<PassthroughPlan>(&req.plan)) {
    std::string what = !pp->device.empty() ? pp->device
                       : pp->hwaddr        ? "with MAC " + pp->hwaddr->str()
                                           : "at PCI " + pp->pci_address;
    steps.push_back({"find device " + what, [&ctx, pp]() -> Status {
                       PLUMB_ASSIGN(auto dev, findPassthroughDevice(*ctx.host, *pp));
                       ctx.restore = restoreInfo(dev);
                       ctx.device = dev;
                       return {};
                     }});
  }

  steps.push_back({"record attachment " + req.key.str(),
                   [this, &ctx]() -> Status {
                     bool veth = std::holds_alternative<VethBridgePlan>(ctx.req.plan);
                     auto st = store_.insertAttachment(
                         recordOf(ctx.req, veth ? ctx.host_name : "", "adding", ctx.restore));
                     if (!st.ok() && st.error().code == Errc::kExists) {
                       return fail(Errc::kExists, "container " + ctx.req.key.container_id +
                                                      " already has interface " +
                                                      ctx.req.key.ifname + " on network " +
                                                      ctx.req.key.network);
                     }
                     return st;
                   },
                   [this, &ctx] { (void)store_.deleteAttachment(ctx.req.key); }});

  if (const auto* bp = std::get_if<VethBridgePlan>(&req.plan)) {
    const VethBridgePlan& plan = *bp;
    steps.push_back({"ensure bridge " + plan.bridge,
                     [&ctx, &plan]() -> Status {
                       PLUMB_ASSIGN(auto br, ensureBridge(*ctx.host, ctx.req.key.network, plan,
                                                          ctx.req.mtu, &ctx.created_bridge));
                       ctx.bridge_index = br.index;
                       ctx.bridge_mtu = br.mtu;
                       return {};
                     },
                     [&ctx, &plan] {
                       // An attach that fails later takes back the bridge it made (none other).
                       if (ctx.created_bridge)
                         (void)deleteOwnBridge(*ctx.host, plan.bridge, /*only_if_unused=*/true);
                     }});

    steps.push_back({"create veth " + ctx.host_name + " with peer " + ctx.tmp_name,
                     [&ctx, in_container]() -> Status {
                       nl::VethSpec spec;
                       spec.name = ctx.host_name;
                       spec.peer_name = ctx.tmp_name;
                       spec.peer_netns = in_container ? &*ctx.target : nullptr;
                       spec.mtu = ctx.req.mtu > 0 ? ctx.req.mtu : ctx.bridge_mtu;
                       spec.peer_mac = ctx.req.mac;
                       auto st = nl::createVeth(*ctx.host, spec);
                       if (!st.ok() && st.error().code == Errc::kExists) {
                         // The host name is derived from the attachment key, which the store
                         // just showed free: a link by that name is a leftover of a crashed run.
                         auto stale = nl::getLink(*ctx.host, spec.name);
                         if (stale.ok() && stale->kind == "veth" &&
                             stale->alias == ownerStamp(ctx.req.key)) {
                           PLUMB_TRY(nl::deleteLink(*ctx.host, stale->index));
                           st = nl::createVeth(*ctx.host, spec);
                         }
                       }
                       if (!st.ok() && st.error().code == Errc::kExists) {
                         return fail(Errc::kExists, "host interface " + spec.name +
                                                        " already exists and is not this "
                                                        "attachment's");
                       }
                       PLUMB_TRY(st);
                       PLUMB_ASSIGN(auto link, nl::getLink(*ctx.host, spec.name));
                       ctx.host_index = link.index;
                       ctx.host_link = std::move(link);
                       return {};
                     },
                     [&ctx] {
                       // By name: the index is unknown if the step failed after creating it.
                       auto made = nl::getLink(*ctx.host, ctx.host_name);
                       if (made.ok()) (void)nl::deleteLink(*ctx.host, made->index);
                     }});

    steps.push_back(
        {"attach " + ctx.host_name + " to bridge " + plan.bridge, [&ctx, &plan]() -> Status {
           nl::LinkChange change;
           change.master = ctx.bridge_index;
           change.alias = ownerStamp(ctx.req.key);
           change.no_ipv6_link_local = true;  // before it is first up
           auto st = nl::changeLink(*ctx.host, ctx.host_index, change);
           if (!st.ok() && st.error().code == Errc::kUnsupported) {
             // No IPv6 on this host (ipv6.disable=1) or an MTU below 1280: nothing to turn off.
             change.no_ipv6_link_local = false;
             st = nl::changeLink(*ctx.host, ctx.host_index, change);
           }
           if (!st.ok() && st.error().sys_errno == EXFULL) {
             return fail(Errc::kInvalid, "failed to attach " + ctx.host_name + " to bridge " +
                                             plan.bridge +
                                             ": the bridge has the most ports the kernel allows "
                                             "(1024)");
           }
           if (!st.ok())
             return std::move(st).error().wrap("failed to attach " + ctx.host_name + " to bridge " +
                                               plan.bridge);
           if (plan.hairpin) PLUMB_TRY(nl::setBridgePortHairpin(*ctx.host, ctx.host_index, true));
           return {};  // up last: see "set ... up" below
         }});
  } else if (const auto* mp = std::get_if<MacvlanPlan>(&req.plan)) {
    const MacvlanPlan& plan = *mp;
    steps.push_back(
        {"create macvlan " + ctx.tmp_name + " on " + plan.master + " (" + plan.mode + ")",
         [&ctx, &plan, in_container]() -> Status {
           auto master = nl::getLink(*ctx.host, plan.master);
           if (!master.ok()) {
             if (master.error().code == Errc::kNotFound) {
               return fail(Errc::kNotFound, "master link " + plan.master + " does not exist");
             }
             return std::move(master).error();
           }
           PLUMB_ASSIGN(auto mode, nl::parseMacvlanMode(plan.mode));
           nl::MacvlanSpec spec;
           spec.name = ctx.tmp_name;
           spec.parent_index = master->index;
           spec.mode = mode;
           spec.netns = in_container ? &*ctx.target : nullptr;
           spec.mtu = ctx.req.mtu;
           spec.mac = ctx.req.mac;
           auto st = nl::createMacvlan(*ctx.host, spec);
           if (!st.ok()) return std::move(st).error();
           return {};
         },
         [&ctx, in_container] {
           nl::NlSocket& side = in_container ? *ctx.ctr : *ctx.host;
           auto link = nl::getLink(side, ctx.tmp_name);
           if (!link.ok() && in_container) link = nl::getLink(side, ctx.req.key.ifname);
           if (link.ok()) (void)nl::deleteLink(side, link->index);
         }});
  } else if (std::holds_alternative<PassthroughPlan>(req.plan)) {
    if (!in_container) {
      // The runtime moves it (Docker: SrcName) and names it; plumb stamps it and remembers it.
      steps.push_back({"stamp the device for the runtime to move", [&ctx]() -> Status {
                         ctx.tmp_name = ctx.device->name;
                         nl::LinkChange change;
                         change.alias = ownerStamp(ctx.req.key);
                         if (ctx.req.mtu > 0) change.mtu = ctx.req.mtu;
                         return nl::changeLink(*ctx.host, ctx.device->index, change);
                       }});
    } else {
      steps.push_back(
          {"move the device into netns " + req.netns + " through a temporary netns",
           [&ctx]() -> Status {
             DeviceSettings s{ctx.tmp_name, ctx.req.mtu, ctx.req.mac, ownerStamp(ctx.req.key)};
             return moveDevice(*ctx.host, *ctx.device, *ctx.target, s, ctx.restore);
           },
           [&ctx] {
             auto link = nl::getLink(*ctx.ctr, ctx.tmp_name);
             if (!link.ok()) link = nl::getLink(*ctx.ctr, ctx.req.key.ifname);
             if (link.ok()) (void)restoreDevice(*ctx.ctr, link->index, ctx.restore);
           }});
    }
  } else {
    return fail(Errc::kUnsupported, "mode " + modeName(req.plan) + " is not available yet");
  }

  if (!in_container && !std::holds_alternative<PassthroughPlan>(req.plan)) {
    // The runtime moves and renames it; the stamp goes with it, so whichever netns it is in
    // when the endpoint is deleted, detach knows it for plumb's.
    steps.push_back({"stamp " + ctx.tmp_name + " for the runtime to move", [&ctx]() -> Status {
                       PLUMB_ASSIGN(auto link, nl::getLink(*ctx.host, ctx.tmp_name));
                       nl::LinkChange change;
                       change.alias = ownerStamp(ctx.req.key);
                       return nl::changeLink(*ctx.host, link.index, change);
                     }});
  } else if (in_container) {
    steps.push_back({"name the container interface " + req.key.ifname, [&ctx]() -> Status {
                       auto tmp = nl::getLink(*ctx.ctr, ctx.tmp_name);
                       if (!tmp.ok()) return std::move(tmp).error();
                       ctx.ctr_index = tmp->index;
                       nl::LinkChange change;
                       change.name = ctx.req.key.ifname;
                       change.alias = ownerStamp(ctx.req.key);
                       // The kernel announces the IPv4 addresses itself when the link comes up.
                       change.arp_notify = true;
                       auto st = nl::changeLink(*ctx.ctr, ctx.ctr_index, change);
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
    bool v6 = std::any_of(req.addresses.begin(), req.addresses.end(),
                          [](const auto& a) { return !a.address.isV4(); });
    if (v6) {
      // Docker turns IPv6 off in a container with no IPv6 network (default.disable_ipv6):
      // the interface made for an IPv6 address gets it back, the rest of the guest does not.
      steps.push_back({"enable IPv6 on " + req.key.ifname, [&ctx]() -> Status {
                         std::string key = "net.ipv6.conf." + ctx.req.key.ifname + ".disable_ipv6";
                         auto now = nl::readSysctl(&*ctx.target, key);
                         if (!now.ok() || now->rfind('0', 0) == 0) return {};
                         return nl::writeSysctl(&*ctx.target, key, "0");
                       }});
    }
    for (const auto& a : req.addresses) {
      steps.push_back(
          {"add address " + a.address.str() + " to " + req.key.ifname,
           [&ctx, &a]() -> Status { return nl::addAddress(*ctx.ctr, ctx.ctr_index, a.address); }});
    }
    steps.push_back({"set " + req.key.ifname + " up", [&ctx]() -> Status {
                       nl::LinkChange up;
                       up.up = true;
                       return nl::changeLink(*ctx.ctr, ctx.ctr_index, up);
                     }});
    for (const auto& r : req.routes) {
      std::string what = "add route " + r.dst.str() + (r.gateway ? " via " + r.gateway->str() : "");
      steps.push_back({what, [&ctx, &r]() -> Status {
                         nl::Route route;
                         route.dst = r.dst.network();
                         route.gateway = r.gateway;
                         route.src = r.src;
                         route.oif = ctx.ctr_index;
                         route.mtu = static_cast<uint32_t>(r.mtu);
                         route.metric = static_cast<uint32_t>(r.metric);
                         if (!r.gateway) route.scope = RT_SCOPE_LINK;
                         // A gateway outside every subnet on the link is reached on-link.
                         if (r.gateway) {
                           bool covered = false;
                           for (const auto& a : ctx.req.addresses)
                             covered |= a.address.network().contains(*r.gateway);
                           route.onlink = !covered;
                         }
                         auto st = nl::addRoute(*ctx.ctr, route, r.replace);
                         if (!st.ok() && st.error().code == Errc::kExists) return {};
                         return st;
                       }});
    }
  }

  if (std::holds_alternative<VethBridgePlan>(req.plan)) {
    // The bridge port comes up last. Once both veth ends are up the kernel enables the port in
    // the background (linkwatch), holding the RTNL lock for work that grows with the bridge's
    // ports; the result is made from the links as read while creating and naming them, so an
    // attach has nothing left to ask the kernel and does not wait for that work.
    steps.push_back({"set " + ctx.host_name + " up", [&ctx]() -> Status {
                       nl::LinkChange up;
                       up.up = true;
                       return nl::changeLink(*ctx.host, ctx.host_index, up);
                     }});
  }

  steps.push_back(
      {"record the result", [this, &ctx, in_container]() -> Status {
         nl::NlSocket& side = in_container ? *ctx.ctr : *ctx.host;
         auto link = ctx.ctr_link && in_container ? Result<nl::LinkInfo>(*ctx.ctr_link)
                     : in_container               ? nl::getLink(side, ctx.ctr_index)
                                                  : nl::getLink(side, ctx.tmp_name);
         if (!link.ok()) return std::move(link).error();
         ctx.result.container = {link->name, link->mac ? link->mac->str() : "",
                                 in_container ? ctx.req.netns : "", link->mtu};
         if (ctx.host_index) {
           PLUMB_ASSIGN(auto h, ctx.host_link ? Result<nl::LinkInfo>(*ctx.host_link)
                                              : nl::getLink(*ctx.host, ctx.host_index));
           ctx.result.host = InterfaceInfo{h.name, h.mac ? h.mac->str() : "", "", h.mtu};
         }
         ctx.result.addresses = ctx.req.addresses;
         ctx.result.routes = ctx.req.routes;
         AttachmentRecord r =
             recordOf(ctx.req, ctx.result.host ? ctx.result.host->name : "", "ready", ctx.restore);
         r.mac = ctx.result.container.mac;
         PLUMB_TRY(store_.updateAttachment(r));
         if (in_container && link->mac)
           announce(ctx.req, ctx.host_index, *ctx.target, ctx.ctr_index, *link->mac);
         return {};
       }});
  return steps;
}

Result<std::vector<std::string>> Engine::describe(const AttachRequest& req) {
  PLUMB_TRY(validate(req));
  Context ctx{req, {}, {}, {}, 0, 0, 0, 0, {}, {}, {}, {}, {}, false, {}, {}};
  PLUMB_ASSIGN(auto steps, buildSteps(ctx));
  std::vector<std::string> out;
  for (const auto& s : steps) out.push_back(s.what);
  return out;
}

Result<AttachResult> Engine::attach(const AttachRequest& req) {
  PLUMB_TRY(validate(req));
  Context ctx{req, {}, {}, {}, 0, 0, 0, 0, {}, {}, {}, {}, {}, false, {}, {}};
  PLUMB_ASSIGN(auto steps, buildSteps(ctx));
  auto st = runSteps(steps);
  if (!st.ok()) {
    return std::move(st).error().wrap("failed to attach " + req.key.ifname + " of container " +
                                      req.key.container_id);
  }
  return std::move(ctx.result);
}

Status Engine::detach(const DetachRequest& req) {
  PLUMB_ASSIGN(auto record, store_.findAttachment(req.key));
  std::string netns = !req.netns.empty() ? req.netns : (record ? record->netns : "");
  const std::string stamp = ownerStamp(req.key);
  PLUMB_ASSIGN(auto host, nl::NlSocket::open());
  if (record && record->mode == "passthrough") {
    // Never deleted: given back to the host, from the container or from wherever the kernel
    // put it when the container's netns died.
    auto detail = json::parse(record->detail, nullptr, false);
    json restore = detail.is_object() && detail.contains("restore") ? detail["restore"] : json();
    bool done = false;
    auto ns =
        netns.empty() ? Result<nl::Netns>(fail(Errc::kNotFound, "")) : nl::Netns::fromPath(netns);
    if (ns.ok()) {
      PLUMB_ASSIGN(auto ctr, nl::NlSocket::openIn(*ns));
      PLUMB_ASSIGN(auto links, nl::listLinks(ctr));
      for (const auto& l : links) {
        if (l.alias != stamp) continue;
        PLUMB_TRY(restoreDevice(ctr, l.index, restore));
        done = true;
      }
    }
    if (!done) PLUMB_TRY(restoreReturnedDevice(host, restore, stamp));
    return store_.deleteAttachment(req.key);
  }
  if (!netns.empty()) {
    auto ns = nl::Netns::fromPath(netns);
    if (ns.ok()) {
      PLUMB_ASSIGN(auto ctr, nl::NlSocket::openIn(*ns));
      auto link = nl::getLink(ctr, req.key.ifname);
      if (link.ok()) {
        // Only plumb's own interface goes: stamped with this attachment's key. A DEL after a
        // failed ADD must not take a same-named interface that another plugin owns.
        if (link->alias == stamp) {
          auto st = nl::deleteLink(ctr, link->index);
          if (!st.ok() && st.error().code != Errc::kNotFound) return st;
        }
      } else if (link.error().code != Errc::kNotFound) {
        return std::move(link).error();
      }
    } else if (ns.error().code != Errc::kNotFound && ns.error().code != Errc::kInvalid) {
      return std::move(ns).error();
    }
  }
  // Ends left on the host (Docker's, or a veth whose container end went elsewhere): only
  // links stamped with this key.
  for (const std::string& name :
       {record && !record->host_ifname.empty() ? record->host_ifname : hostIfname(req.key),
        hostSideIfname(req.key)}) {
    auto hl = nl::getLink(host, name);
    if (hl.ok() && hl->alias == stamp) {
      auto st = nl::deleteLink(host, hl->index);
      if (!st.ok() && st.error().code != Errc::kNotFound) return st;
    }
  }
  if (record) PLUMB_TRY(store_.deleteAttachment(req.key));
  if (!req.masquerade.empty()) {
    nl::Firewall::Lock lock(true);
    PLUMB_TRY(lock.status());
    PLUMB_ASSIGN(auto left, store_.listAttachments(req.key.network));
    if (left.empty()) {
      for (const auto& subnet : req.masquerade)
        PLUMB_TRY(nl::Firewall::unmasquerade(req.key.network, subnet));
    }
  }
  return {};
}

Status Engine::check(const AttachRequest& req) {
  PLUMB_ASSIGN(auto record, store_.findAttachment(req.key));
  if (!record) return fail(Errc::kNotFound, "no attachment " + req.key.str() + " is recorded");
  if (record->state != "ready")
    return fail(Errc::kInvalid, "attachment " + req.key.str() + " is not complete");
  std::string netns = req.netns.empty() ? record->netns : req.netns;
  PLUMB_ASSIGN(auto ns, nl::Netns::fromPath(netns));
  PLUMB_ASSIGN(auto ctr, nl::NlSocket::openIn(ns));
  auto link = nl::getLink(ctr, req.key.ifname);
  if (!link.ok())
    return fail(Errc::kNotFound, "interface " + req.key.ifname + " is missing in netns " + netns);
  if (!link->up()) return fail(Errc::kInvalid, "interface " + req.key.ifname + " is down");
  std::string want_kind = std::holds_alternative<MacvlanPlan>(req.plan) ? "macvlan" : "veth";
  bool passthrough = std::holds_alternative<PassthroughPlan>(req.plan);
  if (!passthrough && link->kind != want_kind) {
    return fail(Errc::kInvalid,
                "interface " + req.key.ifname + " is a " + link->kind + ", not a " + want_kind);
  }
  PLUMB_ASSIGN(auto addrs, nl::listAddresses(ctr, AF_UNSPEC, link->index));
  for (const auto& a : req.addresses) {
    bool found = false;
    for (const auto& have : addrs) found |= have.prefix == a.address;
    if (!found)
      return fail(Errc::kInvalid,
                  "address " + a.address.str() + " is missing on " + req.key.ifname);
  }
  std::vector<nl::Route> routes;
  for (int family : {AF_INET, AF_INET6}) {
    // Any table: a later plugin in the chain (sbr) may have moved them, as the spec allows.
    PLUMB_ASSIGN(auto rs, nl::listRoutes(ctr, family, 0));
    routes.insert(routes.end(), rs.begin(), rs.end());
  }
  for (const auto& r : req.routes) {
    bool found = false;
    for (const auto& have : routes) {
      found |= have.dst == r.dst.network() && have.gateway == r.gateway && have.oif == link->index;
    }
    if (!found) {
      return fail(Errc::kInvalid, "route " + r.dst.str() +
                                      (r.gateway ? " via " + r.gateway->str() : "") +
                                      " is missing on " + req.key.ifname);
    }
  }
  if (const auto* b = std::get_if<VethBridgePlan>(&req.plan)) {
    PLUMB_ASSIGN(auto host, nl::NlSocket::open());
    auto br = nl::getLink(host, b->bridge);
    if (!br.ok()) return fail(Errc::kNotFound, "bridge " + b->bridge + " is missing");
    auto hl = nl::getLink(host, record->host_ifname);
    if (!hl.ok())
      return fail(Errc::kNotFound, "host interface " + record->host_ifname + " is missing");
    if (hl->master != br->index) {
      return fail(Errc::kInvalid, "host interface " + record->host_ifname +
                                      " is not attached to bridge " + b->bridge);
    }
  }
  return {};
}

Status Engine::removeBridge(const std::string& bridge) {
  PLUMB_ASSIGN(auto host, nl::NlSocket::open());
  return deleteOwnBridge(host, bridge, /*only_if_unused=*/false);
}

}  // namespace plumb::core
