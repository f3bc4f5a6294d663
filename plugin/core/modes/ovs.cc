// Open vSwitch mode: a veth pair whose host end becomes a port of an existing Open vSwitch
// bridge (access tag or trunks), made in OVSDB through ovs/ (never ovs-vsctl). The Port and
// Interface rows carry external_ids naming plumb and the attachment, so DEL, CHECK and GC find
// them without the store and never touch a port someone else made.
#include <algorithm>
#include <cstdlib>
#include <memory>

#include "base/names.h"
#include "ovs/vswitch.h"
#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

std::string ovsdbSocket(const std::string& configured) {
  if (!configured.empty()) return configured;
  const char* env = std::getenv("PLUMB_OVSDB");
  if (env && *env) return env;
  return ovs::kDefaultSocket;
}

std::chrono::milliseconds ovsdbTimeout() {
  // Tests shorten it; 5 s is longer than ovs-vswitchd takes to add a port on a busy bridge.
  const char* env = std::getenv("PLUMB_OVSDB_TIMEOUT_MS");
  long ms = env ? std::strtol(env, nullptr, 10) : 0;
  return std::chrono::milliseconds(ms > 0 ? ms : 5000);
}

namespace {

Result<ovs::Switch> openSwitch(const std::string& where) {
  return ovs::Switch::open(where, ovsdbTimeout());
}

}  // namespace

Result<bool> ovsBridgeExists(const std::string& ovsdb, const std::string& bridge) {
  PLUMB_ASSIGN(auto sw, openSwitch(ovsdbSocket(ovsdb)));
  return sw.bridgeExists(bridge);
}

Status ovsReady(const std::string& ovsdb, const std::string& bridge) {
  PLUMB_ASSIGN(auto sw, openSwitch(ovsdbSocket(ovsdb)));
  PLUMB_ASSIGN(bool exists, sw.bridgeExists(bridge));
  if (!exists)
    return fail(Errc::kNotFound, "no Open vSwitch bridge " + bridge + " in " + sw.where());
  return {};
}

namespace {

constexpr const char* kOwner = "plumb";

std::map<std::string, std::string> ownerIds(const std::string& network) {
  return {{"owner", kOwner}, {"plumb_network", network}};
}

std::map<std::string, std::string> attachmentIds(const AttachmentKey& key) {
  auto ids = ownerIds(key.network);
  ids["plumb_container_id"] = key.container_id;
  ids["plumb_ifname"] = key.ifname;
  return ids;
}

}  // namespace

Result<std::vector<AttachmentKey>> ovsPortOwners(const std::string& ovsdb) {
  PLUMB_ASSIGN(auto sw, openSwitch(ovsdbSocket(ovsdb)));
  PLUMB_ASSIGN(auto ports, sw.findPorts({{"owner", kOwner}}));
  std::vector<AttachmentKey> out;
  for (const auto& p : ports) {
    auto id = [&](const char* k) {
      auto it = p.external_ids.find(k);
      return it == p.external_ids.end() ? std::string() : it->second;
    };
    out.push_back({id("plumb_network"), id("plumb_container_id"), id("plumb_ifname")});
  }
  return out;
}

Status removeOvsPortsOf(const std::string& ovsdb, const AttachmentKey& key, Kernel& k) {
  PLUMB_ASSIGN(auto sw, openSwitch(ovsdbSocket(ovsdb)));
  PLUMB_ASSIGN(auto ports, sw.findPorts(attachmentIds(key)));
  std::vector<std::string> gone;
  for (const auto& p : ports) {
    gone.push_back(p.uuid);
    auto link = k.getLink(Kernel::kHost, p.name);
    if (link.ok() && link->alias == Engine::ownerStamp(key))
      (void)k.deleteLink(Kernel::kHost, link->index);
  }
  return sw.removePorts(gone);
}

namespace {

std::vector<int> trunkIds(const std::vector<VlanRange>& trunks) {
  std::vector<int> ids;
  for (const auto& r : trunks) {
    for (int v = r.min; v <= r.max; ++v) ids.push_back(v);
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

std::string vlanText(const OvsPlan& plan) {
  std::string out;
  if (plan.vlan) out += " tag " + std::to_string(*plan.vlan);
  if (!plan.trunks.empty()) {
    out += " trunks ";
    for (size_t i = 0; i < plan.trunks.size(); ++i) {
      const auto& r = plan.trunks[i];
      out += (i ? "," : "") + std::to_string(r.min) +
             (r.max != r.min ? "-" + std::to_string(r.max) : "");
    }
  }
  return out;
}

// Removes the ports made for key; none is success.
Status removeOwnPorts(ovs::Switch& sw, const AttachmentKey& key) {
  PLUMB_ASSIGN(auto ports, sw.findPorts(attachmentIds(key)));
  std::vector<std::string> uuids;
  for (const auto& p : ports) uuids.push_back(p.uuid);
  return sw.removePorts(uuids);
}

}  // namespace

Status validate(const OvsPlan& plan, const AttachRequest& req) {
  if (plan.bridge.empty()) return fail(Errc::kInvalid, "mode ovs needs a bridge");
  PLUMB_TRY(validateIfname(plan.bridge));
  if (!req.host_ifname.empty()) PLUMB_TRY(validateIfname(req.host_ifname));
  if (plan.vlan && (*plan.vlan < 0 || *plan.vlan > 4095))
    return fail(Errc::kInvalid, "vlan " + std::to_string(*plan.vlan) + " is out of range (0-4095)");
  for (const auto& r : plan.trunks) {
    if (std::min(r.min, r.max) < 0 || std::max(r.min, r.max) > 4095) {
      return fail(Errc::kInvalid, "trunk " + std::to_string(r.min) + "-" + std::to_string(r.max) +
                                      " is out of range (0-4095)");
    }
    if (r.min > r.max) {
      return fail(Errc::kInvalid, "trunk range " + std::to_string(r.min) + "-" +
                                      std::to_string(r.max) + " is upside down");
    }
  }
  if (plan.ofport_request && (*plan.ofport_request < 1 || *plan.ofport_request > 65279)) {
    return fail(Errc::kInvalid, "ofport_request " + std::to_string(*plan.ofport_request) +
                                    " is out of range (1-65279)");
  }
  if (!plan.datapath_type.empty() && plan.datapath_type != "system" &&
      plan.datapath_type != "netdev") {
    return fail(Errc::kInvalid,
                "datapath '" + plan.datapath_type + "' is neither system nor netdev");
  }
  const std::string& t = plan.interface_type;
  if (!t.empty() && t != "system" && t != "afxdp" && t != "afxdp-nonpmd") {
    return fail(Errc::kInvalid,
                "interface_type '" + t + "' does not fit a veth (system, afxdp or afxdp-nonpmd)");
  }
  PLUMB_TRY(ovs::socketPath(ovsdbSocket(plan.ovsdb)));
  return {};
}

void addSteps(const OvsPlan& plan, Context& ctx, std::vector<Step>& steps) {
  std::string where = ovsdbSocket(plan.ovsdb);
  ctx.record.via = plan.bridge;
  ctx.record.host_ifname = ctx.host_name;
  ctx.record.ovsdb = where;
  ctx.record.vlan = plan.vlan;
  ctx.born_named = ctx.in_container;
  std::string peer = ctx.born_named ? ctx.req.key.ifname : ctx.tmp_name;
  auto sw = std::make_shared<std::optional<ovs::Switch>>();
  if (plan.create_bridge) {
    auto made = std::make_shared<bool>(false);
    steps.push_back(
        {"ensure Open vSwitch bridge " + plan.bridge +
             (plan.datapath_type.empty() ? "" : " (datapath " + plan.datapath_type + ")"),
         [&plan, sw, where, made]() -> Status {
           PLUMB_ASSIGN(auto opened, openSwitch(where));
           sw->emplace(std::move(opened));
           PLUMB_ASSIGN(bool exists, (*sw)->bridgeExists(plan.bridge));
           if (exists) return {};
           auto st = (*sw)->createBridge(plan.bridge, plan.datapath_type, {{"owner", kOwner}});
           // Made and then not applied (no ovs-vswitchd): it goes again.
           if (!st.ok()) (void)(*sw)->deleteBridge(plan.bridge);
           PLUMB_TRY(st);
           *made = true;
           return {};
         },
         [&plan, sw, made] {
           if (*made && *sw) (void)(*sw)->deleteBridge(plan.bridge);
         }});
  }
  steps.push_back({"create veth " + ctx.host_name + " with peer " + peer,
                   [&ctx]() -> Status { return createVethPair(ctx, ctx.req.mtu); },
                   [&ctx] { deleteVethPair(ctx); }});
  steps.push_back({"stamp " + ctx.host_name + " and set it up", [&ctx]() -> Status {
                     nl::LinkChange change;
                     change.alias = Engine::ownerStamp(ctx.req.key);
                     change.no_ipv6_link_local = true;  // before it is first up
                     change.up = true;
                     auto st = ctx.kernel.changeLink(Kernel::kHost, ctx.host_index, change);
                     if (!st.ok() && st.error().code == Errc::kUnsupported) {
                       change.no_ipv6_link_local = false;  // no IPv6 on this host
                       st = ctx.kernel.changeLink(Kernel::kHost, ctx.host_index, change);
                     }
                     return st;
                   }});
  // The container's side first: ovs-vswitchd reconfigures every bridge on each link event in
  // its netns, and takes events that come together in one reconfiguration. The container's
  // end going up (the host end's carrier) after the port would cost one more per ADD.
  addContainerSteps(ctx, steps);
  steps.push_back(
      {"add port " + ctx.host_name + " to Open vSwitch bridge " + plan.bridge + vlanText(plan),
       [&ctx, &plan, sw, where]() -> Status {
         if (!*sw) {
           PLUMB_ASSIGN(auto opened, openSwitch(where));
           sw->emplace(std::move(opened));
         }
         ovs::PortSpec spec;
         spec.bridge = plan.bridge;
         spec.name = ctx.host_name;
         spec.tag = plan.vlan;
         spec.trunks = trunkIds(plan.trunks);
         spec.ofport_request = plan.ofport_request;
         spec.interface_type = plan.interface_type == "system" ? "" : plan.interface_type;
         spec.external_ids = attachmentIds(ctx.req.key);
         PLUMB_TRY((*sw)->addPort(spec));
         // What the container sent as its interface came up, the kernel's gratuitous ARPs
         // included, went before the port forwarded: plumb announces again once both veth
         // ends are up (an address that changed hands must be announced).
         ctx.announce_after_port = ctx.host_index;
         return {};
       },
       [&ctx, sw] {
         if (*sw) (void)removeOwnPorts(**sw, ctx.req.key);
       }});
}

Status detach(const OvsPlan& plan, Detach& d) {
  std::string where =
      d.record && !d.record->ovsdb.empty() ? d.record->ovsdb : ovsdbSocket(plan.ovsdb);
  auto sw = openSwitch(where);
  Status ports = sw.ok() ? removeOwnPorts(*sw, d.key) : Status(sw.error());
  // The links go whatever the switch said; a retry finds the port by its external_ids.
  PLUMB_TRY(deleteStampedLinks(d));
  if (!ports.ok())
    return std::move(ports).error().wrap("cannot remove the Open vSwitch port of " + d.key.str());
  return {};
}

Status check(const OvsPlan& plan, Check& c) {
  PLUMB_TRY(checkKind(c, "veth"));
  const std::string& host = c.record.host_ifname;
  if (!c.kernel.getLink(Kernel::kHost, host).ok())
    return fail(Errc::kNotFound, "host interface " + host + " is missing");
  std::string where = !c.record.ovsdb.empty() ? c.record.ovsdb : ovsdbSocket(plan.ovsdb);
  PLUMB_ASSIGN(auto sw, openSwitch(where));
  PLUMB_ASSIGN(auto ports, sw.findPorts(attachmentIds(c.req.key)));
  const ovs::PortRow* port = nullptr;
  for (const auto& p : ports) {
    if (p.name == host) port = &p;
  }
  if (!port) return fail(Errc::kNotFound, "Open vSwitch has no port " + host + " of plumb's");
  PLUMB_ASSIGN(auto bridge, sw.bridgeOf(port->uuid));
  if (bridge != plan.bridge) {
    return fail(Errc::kInvalid,
                "port " + host + " is on " +
                    (bridge.empty() ? std::string("no bridge") : "bridge " + bridge) + ", not " +
                    plan.bridge);
  }
  auto tagText = [](const std::optional<int>& t) {
    return t ? std::to_string(*t) : std::string("none");
  };
  if (port->tag != plan.vlan) {
    return fail(Errc::kInvalid, "port " + host + " has tag " + tagText(port->tag) +
                                    ", configured " + tagText(plan.vlan));
  }
  auto want = trunkIds(plan.trunks);
  auto have = port->trunks;
  std::sort(have.begin(), have.end());
  if (have != want)
    return fail(Errc::kInvalid, "port " + host + " trunks other VLANs than configured");
  PLUMB_ASSIGN(auto iface, sw.findInterface(host));
  if (!iface) return fail(Errc::kNotFound, "Open vSwitch has no interface " + host);
  if (!iface->error.empty())
    return fail(Errc::kInvalid, "Open vSwitch interface " + host + ": " + iface->error);
  if (!iface->ofport || *iface->ofport < 1)
    return fail(Errc::kInvalid, "Open vSwitch interface " + host + " has no OpenFlow port");
  return {};
}

Status sweep(const OvsPlan& plan, Sweep& s) {
  PLUMB_ASSIGN(auto sw, openSwitch(ovsdbSocket(plan.ovsdb)));
  PLUMB_ASSIGN(auto ports, sw.findPorts(ownerIds(s.network)));
  std::vector<std::string> gone;
  for (const auto& p : ports) {
    AttachmentKey key{
        s.network,
        p.external_ids.count("plumb_container_id") ? p.external_ids.at("plumb_container_id") : "",
        p.external_ids.count("plumb_ifname") ? p.external_ids.at("plumb_ifname") : ""};
    bool kept = false;
    for (const auto& k : s.keep)
      kept |= k.container_id == key.container_id && k.ifname == key.ifname;
    if (kept) continue;
    gone.push_back(p.uuid);
    // Its host end, when it is still the one plumb made for that attachment.
    auto link = s.kernel.getLink(Kernel::kHost, p.name);
    if (link.ok() && link->alias == Engine::ownerStamp(key))
      (void)s.kernel.deleteLink(Kernel::kHost, link->index);
  }
  return sw.removePorts(gone);
}

}  // namespace plumb::core::modes
