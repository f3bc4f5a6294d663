// Bridge mode: a veth pair, its host end a port of a Linux bridge (made when missing, with the
// gateway addresses and forwarding rules of CNI's isGateway/ipMasq and Docker's networks).
#include <linux/if.h>

#include <functional>
#include <memory>

#include "base/names.h"
#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

// Deletes a bridge plumb made (stamped at creation: a bridge the user made, br0 with the host's
// uplink in it, is never plumb's to remove), the forwarding rules plumb installed for it, and
// plumb's nftables table once it holds no rule.
// only_if_unused: only a bridge without ports, and nothing at all otherwise (a concurrent
// attach may have joined the bridge an attach that failed had made).
Status deleteOwnBridge(Kernel& k, const std::string& bridge, bool only_if_unused, bool made_here) {
  auto br = k.getLink(Kernel::kHost, bridge);
  bool ours =
      br.ok() && br->kind == "bridge" && (made_here || br->alias == Engine::bridgeStamp(bridge));
  if (ours && only_if_unused) {
    PLUMB_ASSIGN(auto links, k.listLinks(Kernel::kHost));
    for (const auto& l : links) {
      if (l.master == br->index) return {};
    }
  }
  if (ours) {
    auto st = k.deleteLink(Kernel::kHost, br->index);
    if (!st.ok() && st.error().code != Errc::kNotFound) return st;
  } else if (only_if_unused) {
    return {};
  }
  PLUMB_TRY(k.revokeBridgeRules(bridge));
  // The last bridge's rules gone, plumb's table goes too: a first ADD that failed leaves the
  // host as it found it.
  return k.tidyRules();
}

namespace {

// A bridge name as the kernel and plumb's forwarding rules, which name it, both take it.
Status checkBridgeName(const VethBridgePlan& plan) {
  PLUMB_TRY(validateIfname(plan.bridge));
  return nl::Firewall::canQuote("bridge name", plan.bridge);
}

// Takes back a bridge this process made, with the network's masquerade rules unless unused()
// says another attachment of the network needs them (the rules go first: the bridge's removal
// then finds plumb's table empty and removes it too).
void takeBackBridge(Kernel& k, const std::string& network, const VethBridgePlan& plan,
                    const std::function<Result<bool>()>& unused) {
  (void)k.unmasquerade(network, plan.masquerade, unused);
  (void)deleteOwnBridge(k, plan.bridge, /*only_if_unused=*/true, /*made_here=*/true);
}

// Creates the bridge when it is missing and allowed, puts the gateway addresses on it, brings
// it up, and makes sure its forwarding (and masquerade) rules are in place. A bridge made here
// and then not usable goes again: a failure changes nothing.
Result<nl::LinkInfo> ensureBridge(Kernel& k, const std::string& network, const VethBridgePlan& plan,
                                  int mtu, bool* created) {
  constexpr Ns host = Kernel::kHost;
  bool made = false;
  auto result = [&]() -> Result<nl::LinkInfo> {
    auto br = k.getLink(host, plan.bridge);
    if (!br.ok() && br.error().code == Errc::kNotFound) {
      if (!plan.create_bridge) {
        return fail(Errc::kNotFound, "no such bridge " + plan.bridge + " and create=false");
      }
      // A MAC of its own: otherwise the bridge takes its lowest port's, and the gateway's MAC
      // changes under the containers as ports come and go.
      auto st =
          k.createBridge(host, {plan.bridge, mtu, MacAddr::fromName("bridge:" + plan.bridge)});
      if (!st.ok() && st.error().code != Errc::kExists) return std::move(st).error();
      made = st.ok();
      br = k.getLink(host, plan.bridge);
      if (st.ok() && br.ok()) {
        nl::LinkChange stamp;
        stamp.alias = Engine::bridgeStamp(plan.bridge);
        PLUMB_TRY(k.changeLink(host, br->index, stamp));
      }
    }
    if (!br.ok()) return std::move(br).error();
    if (br->kind != "bridge") {
      return fail(Errc::kInvalid,
                  plan.bridge + " exists and is not a bridge (kind '" + br->kind + "')");
    }
    if (!plan.gateway_addresses.empty()) {
      // Looked at first: a listing needs no RTNL lock, adding does, even one that is there.
      PLUMB_ASSIGN(auto have, k.listAddresses(host, AF_UNSPEC, br->index));
      for (const auto& gw : plan.gateway_addresses) {
        bool present = false;
        for (const auto& a : have) present |= a.prefix == gw;
        if (present) continue;
        auto st = k.addAddress(host, br->index, gw);
        if (!st.ok() && st.error().code != Errc::kExists) return std::move(st).error();
      }
    }
    nl::LinkChange change;
    if (!br->up()) change.up = true;
    if (plan.promisc && !(br->flags & IFF_PROMISC)) change.promisc = true;
    if (change.up || change.promisc) PLUMB_TRY(k.changeLink(host, br->index, change));
    bool v4 = false, v6 = false;
    for (const auto& gw : plan.gateway_addresses) (gw.isV4() ? v4 : v6) = true;
    if (v4) PLUMB_TRY(k.writeSysctl(host, "net.ipv4.ip_forward", "1"));
    if (v6 && plan.ipv6_forwarding)
      PLUMB_TRY(k.writeSysctl(host, "net.ipv6.conf.all.forwarding", "1"));
    PLUMB_TRY(k.ensureBridgeRules({plan.bridge, network, plan.masquerade, plan.internal}));
    return std::move(br).value();
  }();
  if (!result.ok() && made) takeBackBridge(k, network, plan, [] { return Result<bool>(true); });
  if (created) *created = made && result.ok();
  return result;
}

// What the bridge steps learn for the later ones.
struct BridgeState {
  int index = 0;
  int mtu = 0;
  bool created = false;  // this attach made the bridge
};

}  // namespace

Result<bool> ensureBridgeForNetwork(Kernel& k, const std::string& network,
                                    const VethBridgePlan& plan, int mtu) {
  PLUMB_TRY(checkBridgeName(plan));
  bool created = false;
  PLUMB_TRY(ensureBridge(k, network, plan, mtu, &created));
  return created;
}

Status validate(const VethBridgePlan& plan, const AttachRequest& req) {
  if (!req.host_ifname.empty()) PLUMB_TRY(validateIfname(req.host_ifname));
  // Refused before anything is made, not at the rules' step.
  return checkBridgeName(plan);
}

void addSteps(const VethBridgePlan& plan, Context& ctx, std::vector<Step>& steps) {
  ctx.record.via = plan.bridge;
  ctx.record.host_ifname = ctx.host_name;
  // The peer is born in the container's netns under its final name: a name taken there makes
  // the creation fail, before anything exists. (Docker's end stays on the host, for dockerd to
  // move and rename.)
  ctx.born_named = ctx.in_container;
  std::string peer = ctx.born_named ? ctx.req.key.ifname : ctx.tmp_name;
  auto br = std::make_shared<BridgeState>();
  steps.push_back({"ensure bridge " + plan.bridge,
                   [&ctx, &plan, br]() -> Status {
                     PLUMB_ASSIGN(auto link, ensureBridge(ctx.kernel, ctx.req.key.network, plan,
                                                          ctx.req.mtu, &br->created));
                     br->index = link.index;
                     br->mtu = link.mtu;
                     return {};
                   },
                   [&ctx, &plan, br] {
                     // An attach that fails later takes back the bridge it made (none other),
                     // and the network's masquerade unless another attachment of it has come.
                     if (!br->created) return;
                     takeBackBridge(
                         ctx.kernel, ctx.req.key.network, plan, [&ctx]() -> Result<bool> {
                           PLUMB_ASSIGN(auto left, ctx.store.listAttachments(ctx.req.key.network));
                           for (const auto& a : left) {
                             if (a.key.str() != ctx.req.key.str()) return false;
                           }
                           return true;
                         });
                   }});
  steps.push_back({"create veth " + ctx.host_name + " with peer " + peer,
                   [&ctx, br]() -> Status {
                     return createVethPair(ctx, ctx.req.mtu > 0 ? ctx.req.mtu : br->mtu);
                   },
                   [&ctx] { deleteVethPair(ctx); }});
  steps.push_back(
      {"attach " + ctx.host_name + " to bridge " + plan.bridge, [&ctx, &plan, br]() -> Status {
         nl::LinkChange change;
         change.master = br->index;
         change.alias = Engine::ownerStamp(ctx.req.key);
         change.no_ipv6_link_local = true;  // before it is first up
         Kernel& k = ctx.kernel;
         auto st = k.changeLink(Kernel::kHost, ctx.host_index, change);
         if (!st.ok() && st.error().code == Errc::kUnsupported) {
           // No IPv6 on this host (ipv6.disable=1) or an MTU below 1280: nothing to turn off.
           change.no_ipv6_link_local = false;
           st = k.changeLink(Kernel::kHost, ctx.host_index, change);
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
         if (plan.hairpin) PLUMB_TRY(k.setBridgePortHairpin(Kernel::kHost, ctx.host_index, true));
         return {};  // up last: see "set ... up" below
       }});
  addContainerSteps(ctx, steps);
  // The bridge port comes up last. Once both veth ends are up the kernel enables the port in
  // the background (linkwatch), holding the RTNL lock for work that grows with the bridge's
  // ports; the result is made from the links as read while creating and naming them, so an
  // attach has nothing left to ask the kernel and does not wait for that work.
  steps.push_back({"set " + ctx.host_name + " up", [&ctx]() -> Status {
                     nl::LinkChange up;
                     up.up = true;
                     PLUMB_TRY(ctx.kernel.changeLink(Kernel::kHost, ctx.host_index, up));
                     ctx.announce_after_port = ctx.host_index;
                     return {};
                   }});
}

Status detach(const VethBridgePlan&, Detach& d) { return deleteStampedLinks(d); }

Status check(const VethBridgePlan& plan, Check& c) {
  PLUMB_TRY(checkKind(c, "veth"));
  auto br = c.kernel.getLink(Kernel::kHost, plan.bridge);
  if (!br.ok()) return fail(Errc::kNotFound, "bridge " + plan.bridge + " is missing");
  auto hl = c.kernel.getLink(Kernel::kHost, c.record.host_ifname);
  if (!hl.ok())
    return fail(Errc::kNotFound, "host interface " + c.record.host_ifname + " is missing");
  if (hl->master != br->index) {
    return fail(Errc::kInvalid, "host interface " + c.record.host_ifname +
                                    " is not attached to bridge " + plan.bridge);
  }
  return {};
}

// Nothing of this mode outlives its record.
Status sweep(const VethBridgePlan&, Sweep&) { return {}; }

}  // namespace plumb::core::modes
