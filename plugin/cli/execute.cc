#include "plugin/cli/execute.h"

#include <cctype>
#include <nlohmann/json.hpp>

#include "base/json.h"
#include "base/standard_streams.h"
#include "plugin/cli/guest.h"
#include "plugin/core/ambassadors.h"
#include "plugin/core/engine.h"
#include "plugin/core/host.h"
#include "plugin/core/in_guest.h"
#include "plugin/core/store.h"

namespace plumb::cli {
namespace {

using json = nlohmann::json;

int failWith(const Error& e, const Options& opts) { return cli::failWith(e.message, opts); }

// How a DHCP client names the guest (its hostname option): the name the user gave, made safe.
std::string guestName(const std::string& guest) {
  std::string out;
  for (char ch : guest) out += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ? ch : '-';
  while (!out.empty() && out.front() == '-') out.erase(0, 1);
  return out.empty() ? "plumb" : out.substr(0, 63);
}

// Which host interface, and what it decides (pipework's rules): an existing Linux bridge gets a
// veth; a missing name starting "br" becomes a new bridge; any other existing interface gets a
// macvlan child; OVS and --direct-phys are their own modes.
Result<core::AttachRequest> requestFor(const AttachCommand& c, const Guest& guest,
                                       const Options& opts) {
  std::string host_if = c.host_if;
  std::optional<core::HostLink> link;
  if (c.host_mac) {
    PLUMB_ASSIGN(link, core::findHostLinkByMac(*c.host_mac));
    if (!link) return fail(Errc::kNotFound, "no host interface has MAC " + c.host_mac->str());
    host_if = link->name;
  } else {
    PLUMB_ASSIGN(link, core::findHostLink(host_if));
  }

  core::AttachRequest req;
  req.key = {host_if, guest.id, c.container_if};
  req.netns = guest.netns;
  req.frontend = "cli";
  req.mac = c.mac;
  req.host_ifname = c.local_if;   // -l
  if (link) req.mtu = link->mtu;  // pipework: the MTU of the host interface
  // Open vSwitch is asked, not guessed from the name: its bridge is a kernel link of kind
  // openvswitch (system datapath), a tap (netdev datapath), or no link at all.
  bool ovs = false;
  bool create_ovs = false;
  bool maybe_ovs = !link || link->kind == "openvswitch" || link->kind == "tun";
  if (!c.direct_phys && !c.vf && maybe_ovs) {
    auto known = core::isOvsBridge(opts.ovsdb, host_if);
    ovs = known.ok() && *known;
    if (!ovs && !link && host_if.rfind("ovs", 0) == 0) {
      // pipework makes a missing ovs* bridge in Open vSwitch.
      if (!known.ok()) {
        return std::move(known).error().wrap("cannot create Open vSwitch bridge " + host_if);
      }
      ovs = create_ovs = true;
    }
    if (!ovs && link && link->kind == "openvswitch") {
      if (!known.ok()) return std::move(known).error().wrap("cannot use " + host_if);
      return fail(Errc::kInvalid, host_if + " is an Open vSwitch internal port, not a bridge");
    }
  }
  if (!opts.ovs_datapath.empty() && !create_ovs) {
    return fail(Errc::kInvalid,
                "--ovs-datapath is for an Open vSwitch bridge plumb creates (an ovs* name that "
                "does not exist)");
  }
  if (c.vf) {
    core::SriovPlan plan;
    plan.pf = host_if;
    plan.settings.vlan = c.vlan;  // set through the PF: the VF's traffic is tagged there
    req.plan = plan;
    req.mtu = 0;  // the VF keeps its own
  } else if (c.direct_phys) {
    req.plan = core::PassthroughPlan{host_if, std::nullopt, "", c.force};
  } else if (ovs) {
    core::OvsPlan plan;
    plan.bridge = host_if;
    plan.vlan = c.vlan;
    plan.ovsdb = opts.ovsdb;
    plan.create_bridge = create_ovs;
    plan.datapath_type = opts.ovs_datapath;
    if (create_ovs && plan.datapath_type.empty()) plan.datapath_type = "system";
    req.plan = plan;
    // pipework: the MTU of the host interface; an OVS bridge's tap says nothing of its ports.
    req.mtu = 0;
  } else if ((link && link->kind == "bridge") || (!link && host_if.rfind("br", 0) == 0)) {
    if (c.vlan)
      return fail(Errc::kUnsupported, "VLAN configuration is not supported for a Linux bridge");
    core::VethBridgePlan plan;
    plan.bridge = host_if;
    req.plan = plan;
  } else if (link) {
    if (c.vlan) {
      return fail(Errc::kUnsupported,
                  "@" + std::to_string(*c.vlan) + " on " + host_if +
                      " needs an 802.1q sub-interface, and this kernel has no 8021q support");
    }
    PLUMB_ASSIGN(auto mode, core::parseMacvlanMode(c.macvlan_mode));
    req.plan = core::MacvlanPlan{host_if, mode};
  } else {
    return fail(Errc::kNotFound,
                "host interface " + host_if +
                    " does not exist (only names starting with br or ovs are created)");
  }
  if (c.address.kind == AddressSpec::Kind::kStatic) {
    req.addresses.push_back({*c.address.address, c.address.gateway});
    if (c.address.gateway) {
      core::RouteSpec def;
      def.dst = IpPrefix(IpAddr::fromNumber(c.address.gateway->isV6(), 0), 0);
      def.gateway = c.address.gateway;
      def.replace = true;  // pipework replaces the guest's default route
      req.routes.push_back(def);
    }
  } else if (c.address.kind == AddressSpec::Kind::kDhcp) {
    req.dhcp = core::DhcpRequest{c.address.dhcp_client, c.address.dhcp_options, guestName(c.guest),
                                 c.keep_dhcp_client};
  }
  return req;
}

// The same command again is a no-op; the same interface with other settings is an error that
// says what differs.
Result<bool> alreadyAttached(core::Store& store, const core::AttachRequest& req) {
  bool dhcp = req.dhcp.has_value();
  PLUMB_ASSIGN(auto record, store.findAttachment(req.key));
  if (!record) return false;
  std::vector<std::string> diffs;
  if (record->netns != req.netns)
    diffs.push_back("netns " + record->netns + " (asked " + req.netns + ")");
  if (record->mode != core::modeName(req.plan))
    diffs.push_back("mode " + record->mode + " (asked " + core::modeName(req.plan) + ")");
  std::optional<int> vlan;
  if (const auto* ovs = std::get_if<core::OvsPlan>(&req.plan)) vlan = ovs->vlan;
  if (const auto* vf = std::get_if<core::SriovPlan>(&req.plan)) vlan = vf->settings.vlan;
  if (record->vlan != vlan) {
    auto tag = [](const std::optional<int>& v) { return v ? std::to_string(*v) : "none"; };
    diffs.push_back("VLAN " + tag(record->vlan) + " (asked " + tag(vlan) + ")");
  }
  if (!req.host_ifname.empty() && record->host_ifname != req.host_ifname) {
    diffs.push_back("host interface " + record->host_ifname + " (asked " + req.host_ifname + ")");
  }
  if (req.mac && record->mac != req.mac->str())
    diffs.push_back("MAC " + record->mac + " (asked " + req.mac->str() + ")");
  auto text = [](const std::vector<core::AddressSpec>& addrs) {
    std::string out;
    for (const auto& a : addrs) {
      out += (out.empty() ? "" : ",") + a.address.str() + (a.gateway ? "@" + a.gateway->str() : "");
    }
    return out;
  };
  bool had_dhcp = false;
  for (const auto& h : record->helpers) had_dhcp |= h.kind == "dhcp";
  if (dhcp != had_dhcp)
    diffs.push_back(std::string("addressing ") + (had_dhcp ? "DHCP" : "static") + " (asked " +
                    (dhcp ? "DHCP" : "static") + ")");
  std::string have = text(record->addresses), want = text(req.addresses);
  if (!dhcp && !had_dhcp && have != want)
    diffs.push_back("address " + (have.empty() ? "none" : have) + " (asked " +
                    (want.empty() ? "none" : want) + ")");
  if (diffs.empty()) return true;
  std::string msg;
  for (const auto& d : diffs) msg += (msg.empty() ? "" : ", ") + d;
  return fail(Errc::kExists, req.key.ifname + " of " + req.key.container_id +
                                 " is already attached to " + req.key.network +
                                 " with other settings: " + msg);
}

// Whether a record that matches the request is stale: complete ("ready"), yet its interface or
// its netns is gone from the kernel (a guest's netns made anew under the same name). A record
// still "adding" is another attach under way, and a check that fails for any other reason
// (a busy store, a link set down) is not taken for staleness.
bool isStale(core::Store& store, core::Engine& engine, const core::AttachRequest& req) {
  auto record = store.findAttachment(req.key);
  if (!record.ok() || !*record || (*record)->state != "ready") return false;
  auto live = engine.check(req);
  return !live.ok() &&
         (live.error().code == Errc::kNotFound || live.error().code == Errc::kNoNetns);
}

int attach(const AttachCommand& c, const Options& opts) {
  auto guest = resolveGuest(c.guest);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto req = requestFor(c, *guest, opts);
  if (!req.ok())
    return failWith(
        std::move(req).error().wrap("failed to attach " + c.container_if + " of " + c.guest), opts);
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error(), opts);
  (*store)->checkpointInBackground();
  core::Engine engine(**store);
  if (opts.dry_run) {
    auto steps = engine.describe(*req);
    if (!steps.ok()) return failWith(steps.error(), opts);
    if (opts.json) {
      std::cout << json{{"plan", *steps}}.dump() << "\n";
    } else {
      for (const auto& s : *steps) std::cout << s << "\n";
    }
    return 0;
  }
  // An attach killed part-way (its record still "adding", its process gone) is cleaned and
  // made anew; one still under way is not raced.
  if (auto record = (*store)->findAttachment(req->key);
      record.ok() && *record && (*record)->state != "ready") {
    auto abandoned = core::Engine::stillAbandoned(**store, **record);
    if (!abandoned.ok()) return failWith(abandoned.error(), opts);
    if (*abandoned) {
      auto st = engine.detach({req->key, "", {}, {}});
      if (!st.ok())
        return failWith(std::move(st).error().wrap("failed to clean an unfinished attach"), opts);
    } else if (auto now = (*store)->findAttachment(req->key);
               !now.ok() || (*now && (*now)->state != "ready")) {
      // (One that finished meanwhile is a re-run, below.)
      return failWith(
          makeError(Errc::kTryAgain, "failed to attach " + c.container_if + " of " + c.guest +
                                         ": another attach of it is "
                                         "under way"),
          opts);
    }
  }
  auto same = alreadyAttached(**store, *req);
  if (!same.ok()) return failWith(same.error(), opts);
  // The record alone does not make a re-run a no-op: the kernel must still have what it says.
  // A guest's netns made anew under the same name, or an interface removed by hand, leaves a
  // stale record; it is cleaned and the attach made again.
  if (*same && isStale(**store, engine, *req)) {
    auto st = engine.detach({req->key, "", {}, {}});
    if (!st.ok())
      return failWith(std::move(st).error().wrap("failed to clean a stale record"), opts);
    *same = false;
  }
  if (*same) {
    if (opts.json) {
      std::cout << json{{"attached", req->key.str()}, {"changed", false}}.dump() << "\n";
    } else {
      std::cout << req->key.ifname << " of " << c.guest << " is already attached to "
                << req->key.network << "\n";
    }
    return 0;
  }
  auto done = engine.attach(*req);
  if (!done.ok()) return failWith(done.error(), opts);
  std::string addrs;
  for (const auto& a : done->addresses) addrs += (addrs.empty() ? "" : ",") + a.address.str();
  if (opts.json) {
    std::cout << json{{"attached", req->key.str()},
                      {"changed", true},
                      {"mode", core::modeName(req->plan)},
                      {"interface", done->container.name},
                      {"mac", done->container.mac},
                      {"netns", done->container.sandbox},
                      {"addresses", addrs}}
                     .dump()
              << "\n";
  } else {
    std::cout << "attached " << done->container.name << " of " << c.guest << " to "
              << req->key.network << " (" << core::modeName(req->plan) << ")"
              << (addrs.empty() ? "" : ": " + addrs) << ", mac " << done->container.mac << "\n";
  }
  return 0;
}

int del(const DelCommand& c, const Options& opts) {
  auto guest = resolveGuest(c.guest, /*must_exist=*/false);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error(), opts);
  (*store)->checkpointInBackground();
  auto records = (*store)->listAttachments();
  if (!records.ok()) return failWith(records.error(), opts);
  core::Engine engine(**store);
  int removed = 0;
  for (const auto& r : *records) {
    if (r.key.container_id != guest->id || r.key.ifname != c.container_if) continue;
    auto st = engine.detach({r.key, r.netns, {}, {}});
    if (!st.ok())
      return failWith(std::move(st).error().wrap("failed to remove " + r.key.str()), opts);
    ++removed;
  }
  // A guest with no attachment left keeps no link or service either (docs/proxy.md).
  if (removed > 0) {
    auto left = (*store)->listAttachments();
    if (!left.ok()) return failWith(left.error(), opts);
    bool any = false;
    for (const auto& r : *left) any = any || r.key.container_id == guest->id;
    if (!any) {
      auto st = core::forgetGuestLinks(opts.state_dir, **store, guest->id);
      if (!st.ok())
        return failWith(std::move(st).error().wrap("failed to remove the links of " + c.guest),
                        opts);
    }
  }
  if (opts.json) {
    std::cout << json{{"removed", removed}}.dump() << "\n";
  } else {
    std::cout << (removed ? "removed " : "nothing to remove for ") << c.container_if << " of "
              << c.guest << "\n";
  }
  return 0;
}

// route, rule and tc: carried out in the guest's netns by the core.
int pass(const PassCommand& p, const Options& opts) {
  // The arguments are read before the guest is looked up: bad input fails first.
  std::optional<RuleArgs> rule;
  std::optional<RouteArgs> route;
  if (p.what == "rule") {
    auto args = parseRuleArgs(p.args);
    if (!args.ok()) return failWith(args.error(), opts);
    rule = *args;
  } else if (p.what == "route") {
    auto args = parseRouteArgs(p.args);
    if (!args.ok()) return failWith(args.error(), opts);
    route = *args;
  }
  auto guest = resolveGuest(p.guest);
  if (!guest.ok()) return failWith(guest.error(), opts);
  if (!rule && !route) {
    auto rc = core::runTc(guest->netns, p.args);
    if (!rc.ok()) return failWith(rc.error(), opts);
    return *rc;
  }
  auto done =
      rule ? core::changeRule(guest->netns, *rule) : core::changeRoute(guest->netns, *route);
  if (!done.ok()) return failWith(std::move(done).error().wrap("in guest " + p.guest), opts);
  if (opts.json)
    std::cout << json{{p.what, *done}, {"action", rule ? rule->action : route->action}}.dump()
              << "\n";
  return 0;
}

}  // namespace

int failWith(const std::string& message, const Options& opts) {
  if (opts.json) {
    std::cout << json_read::text(json{{"error", message}}) << "\n";
  } else {
    std::cerr << "plumb: " << message << "\n";
  }
  return 1;
}

int execute(const Command& cmd, const Options& opts) {
  if (const auto* a = std::get_if<AttachCommand>(&cmd)) return attach(*a, opts);
  if (const auto* d = std::get_if<DelCommand>(&cmd)) return del(*d, opts);
  if (const auto* p = std::get_if<PassCommand>(&cmd)) return pass(*p, opts);
  const auto& w = std::get<WaitCommand>(cmd);
  auto st = core::waitForCarrier(w.container_if);
  if (!st.ok())
    return failWith(std::move(st).error().wrap("failed to wait for " + w.container_if), opts);
  return 0;
}

}  // namespace plumb::cli
