// Passthrough mode: a whole device (a NIC, or a veth end standing in for one) moved into the
// container and given back on removal with its name, MTU, MAC, alias, altnames and up state.
// A device moves in one request, renamed on arrival, when no name stands in its way; else
// through a temporary namespace, where neither the host's nor the container's names collide.
#include <algorithm>
#include <memory>

#include "base/log.h"
#include "base/names.h"
#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

namespace {

nl::LinkChange settingsChange(const DeviceSettings& s) {
  nl::LinkChange set;
  set.name = s.name;
  if (s.mtu > 0) set.mtu = s.mtu;
  if (s.mac) set.mac = s.mac;
  set.alias = s.alias;
  return set;
}

// In a fresh temporary namespace: the device renamed and set, then moved to target.
Status throughTemporary(Kernel& k, Ns from, int index, Ns target, const DeviceSettings& s) {
  nl::LinkChange down;
  down.up = false;
  PLUMB_TRY(k.changeLink(from, index, down));
  PLUMB_ASSIGN(Ns temp, k.temporaryNetns());
  struct Close {
    Kernel& k;
    Ns ns;
    ~Close() { k.closeNetns(ns); }  // the temporary netns dies with its last handle
  } close{k, temp};
  PLUMB_TRY(k.moveLink(from, index, temp));
  PLUMB_ASSIGN(auto links, k.listLinks(temp));
  int tidx = 0;
  for (const auto& l : links) {
    if (l.name != "lo") tidx = l.index;
  }
  auto st = k.changeLink(temp, tidx, settingsChange(s));
  if (!st.ok()) {
    // Back where it came from, whatever failed: there the caller puts it right (found by its
    // PCI address or permanent MAC). Sent on to target, it would be stranded there unstamped.
    (void)k.moveLink(temp, tidx, from);
    return st;
  }
  return k.moveLink(temp, tidx, target);
}

// The device at index (in from) into target, renamed and set as s says. In one request when
// neither its name nor s.name is taken in target: each move costs the kernel a grace period
// (some 20 ms for a veth here), the one cost a device's attach cannot shed. Otherwise, or when
// the kernel refuses the change after the move, through a temporary namespace.
Status transfer(Kernel& k, Ns from, int index, Ns target, const DeviceSettings& s) {
  PLUMB_ASSIGN(auto dev, k.getLink(from, index));
  bool free =
      !k.getLink(target, s.name).ok() && (dev.name == s.name || !k.getLink(target, dev.name).ok());
  if (free) {
    auto st = k.moveLink(from, index, target, settingsChange(s));
    if (st.ok()) return {};
    // Moved but not set: back where it came from under its old name, then the long way. It
    // is found by name (the target may have given it another index). Not moved: refused.
    auto moved = k.getLink(target, s.name);
    if (!moved.ok()) moved = k.getLink(target, dev.name);
    if (!moved.ok()) return st;
    nl::LinkChange back;
    back.name = dev.name;
    if (!k.moveLink(target, moved->index, from, back).ok()) return st;
    PLUMB_ASSIGN(auto home, k.getLink(from, dev.name));
    index = home.index;
  }
  return throughTemporary(k, from, index, target, s);
}

std::string describeDevice(const PassthroughPlan& plan) {
  if (!plan.device.empty()) return plan.device;
  if (plan.hwaddr) return "with MAC " + plan.hwaddr->str();
  return "at PCI " + plan.pci_address;
}

// The altnames r lists that dev (on the host) lacks, put back.
Status restoreAltnames(Kernel& k, const nl::LinkInfo& dev, const DeviceRestore& r) {
  std::vector<std::string> missing;
  for (const auto& a : r.altnames) {
    if (std::find(dev.altnames.begin(), dev.altnames.end(), a) == dev.altnames.end())
      missing.push_back(a);
  }
  if (missing.empty()) return {};
  auto st = k.addAltnames(Kernel::kHost, dev.index, missing);
  if (!st.ok())
    return std::move(st).error().wrap("failed to give " + r.name + " its altnames back");
  return {};
}

// The host's addresses on dev (IPv6 link-local ones are the kernel's own) and the routes
// through it that are not the kernel's own (those come back with the addresses).
Status hostConfigOf(Kernel& k, const nl::LinkInfo& dev, DeviceRestore& r) {
  r.addresses.clear();
  r.routes.clear();
  for (int family : {AF_INET, AF_INET6}) {
    PLUMB_ASSIGN(auto addrs, k.listAddresses(Kernel::kHost, family, dev.index));
    for (const auto& a : addrs) {
      if (a.index != dev.index || a.prefix.addr().isLinkLocal()) continue;
      r.addresses.push_back(a.prefix);
    }
    PLUMB_ASSIGN(auto routes, k.listRoutes(Kernel::kHost, family, RT_TABLE_MAIN));
    for (const auto& rt : routes) {
      if (rt.oif != dev.index || rt.protocol == RTPROT_KERNEL || rt.type != RTN_UNICAST) continue;
      if (rt.dst.addr().isLinkLocal() || (rt.dst.addr().isV6() && rt.dst.addr().data()[0] == 0xff))
        continue;
      r.routes.push_back({rt.dst, rt.gateway, rt.metric});
    }
  }
  return {};
}

// What the device carried on the host, put back on it (index, on the host) once it is home.
Status restoreHostConfig(Kernel& k, int index, const DeviceRestore& r) {
  for (const auto& a : r.addresses) {
    auto st = k.addAddress(Kernel::kHost, index, a);
    if (!st.ok() && st.error().code != Errc::kExists)
      return std::move(st).error().wrap("failed to give " + r.name + " its address " + a.str() +
                                        " back");
  }
  for (const auto& x : r.routes) {
    nl::Route rt;
    rt.dst = x.dst;
    rt.gateway = x.gateway;
    rt.oif = index;
    rt.metric = x.metric;
    auto st = k.addRoute(Kernel::kHost, rt, /*replace=*/false);
    if (!st.ok() && st.error().code != Errc::kExists)
      return std::move(st).error().wrap("failed to give " + r.name + " its route to " +
                                        x.dst.str() + " back");
  }
  return {};
}

}  // namespace

// Moves dev (in from) into target (in one request, or through a temporary namespace). On a failure
// half-way the device goes back to where it was, as it was.
Status moveDevice(Kernel& k, const nl::LinkInfo& dev, Ns target, const DeviceSettings& settings,
                  const DeviceRestore& restore) {
  // Its altnames would stop it taking its old name back (a name is taken by an altname, its
  // own included) and may be taken in the target: they go now and come back with it.
  if (!dev.altnames.empty()) {
    auto dropped = k.deleteAltnames(Kernel::kHost, dev.index, dev.altnames);
    if (!dropped.ok()) {
      // The kernel drops them one by one: those already gone come back.
      (void)restoreReturnedDevice(k, restore, settings.alias);
      return dropped;
    }
  }
  auto st = transfer(k, Kernel::kHost, dev.index, target, settings);
  if (!st.ok()) {
    // It may be in target already, or back where it was under its new name: put it right.
    (void)restoreReturnedDevice(k, restore, settings.alias);
    return std::move(st).error().wrap("failed to move " + dev.name);
  }
  return {};
}

// Gives the device at index (in where) back to the host as restore describes.
Status restoreDevice(Kernel& k, Ns where, int index, const DeviceRestore& r) {
  if (r.name.empty()) return fail(Errc::kInvalid, "no record of the device's original name");
  DeviceSettings s{r.name, r.mtu, r.mac, r.alias};
  auto st = transfer(k, where, index, Kernel::kHost, s);
  if (!st.ok()) return std::move(st).error().wrap("failed to give " + r.name + " back to the host");
  PLUMB_ASSIGN(auto back, k.getLink(Kernel::kHost, r.name));
  PLUMB_TRY(restoreAltnames(k, back, r));
  if (r.up) {
    nl::LinkChange up;
    up.up = true;
    PLUMB_TRY(k.changeLink(Kernel::kHost, back.index, up));
  }
  return restoreHostConfig(k, back.index, r);
}

Status moveDeviceNamed(Context& ctx, const nl::LinkInfo& dev, const DeviceRestore& restore) {
  Kernel& k = ctx.kernel;
  const std::string& ifname = ctx.req.key.ifname;
  if (k.getLink(ctx.ctr_ns, ifname).ok())
    return fail(Errc::kExists, "interface " + ifname + " already exists in netns " + ctx.req.netns);
  DeviceSettings s{ifname, ctx.req.mtu, ctx.req.mac, Engine::ownerStamp(ctx.req.key)};
  PLUMB_TRY(moveDevice(k, dev, ctx.ctr_ns, s, restore));
  PLUMB_ASSIGN(auto link, k.getLink(ctx.ctr_ns, ifname));
  ctx.ctr_index = link.index;
  ctx.ctr_link = std::move(link);
  return {};
}

Result<nl::LinkInfo> findPassthroughDevice(Kernel& k, const PassthroughPlan& plan) {
  PLUMB_ASSIGN(auto dev, k.findDevice({plan.device, plan.hwaddr, plan.pci_address}));
  if (dev.name == "lo") return fail(Errc::kInvalid, "lo cannot be moved into a container");
  if (dev.kind == "bridge")
    return fail(Errc::kInvalid, dev.name + " is a bridge; only a device can be moved");
  if (dev.master)
    return fail(Errc::kInvalid, dev.name + " is a bridge port; detach it from its bridge first");
  return dev;
}

DeviceRestore restoreOf(Kernel& k, const nl::LinkInfo& dev) {
  DeviceRestore r;
  r.name = dev.name;
  r.mtu = dev.mtu;
  r.mac = dev.mac;
  r.perm_mac = dev.perm_mac;
  r.pci = k.pciAddressOf(dev.name);
  r.alias = dev.alias;
  r.up = dev.up();
  r.altnames = dev.altnames;
  return r;
}

Status restoreReturnedDevice(Kernel& k, const DeviceRestore& r, const std::string& stamp) {
  constexpr Ns host = Kernel::kHost;
  PLUMB_ASSIGN(auto links, k.listLinks(host));
  nl::DeviceRef ref{"", r.perm_mac, r.pci};
  auto found = k.pickDevice(links, ref);
  if (!found && !stamp.empty()) {
    // Stamped and under any name: the device as plumb left it.
    for (const auto& l : links) {
      if (l.alias == stamp) found = l;
    }
  }
  if (!found) return {};  // gone: a veth stand-in dies with the netns it was in
  nl::LinkChange change;
  if (found->name != r.name) {
    nl::LinkChange down;
    down.up = false;
    PLUMB_TRY(k.changeLink(host, found->index, down));
    change.name = r.name;
  }
  if (r.mtu > 0 && found->mtu != r.mtu) change.mtu = r.mtu;
  if (r.mac && found->mac != r.mac) change.mac = r.mac;
  change.alias = r.alias;
  if (r.up) change.up = true;
  auto st = k.changeLink(host, found->index, change);
  if (!st.ok()) return std::move(st).error().wrap("failed to restore " + r.name);
  PLUMB_TRY(restoreAltnames(k, *found, r));
  PLUMB_TRY(restoreHostConfig(k, found->index, r));
  log::get("core")->info("{} restored on the host (was {})", r.name, found->name);
  return {};
}

Status validate(const PassthroughPlan& plan, const AttachRequest& req) {
  if (!req.host_ifname.empty()) {
    return fail(Errc::kInvalid, "a host-side name (" + req.host_ifname +
                                    ") is for a veth; mode passthrough has no host end");
  }
  if (plan.device.empty() && !plan.hwaddr && plan.pci_address.empty())
    return fail(Errc::kInvalid, "passthrough needs a device name, a MAC or a PCI address");
  if (!plan.device.empty()) PLUMB_TRY(validateIfname(plan.device));
  return {};
}

void addSteps(const PassthroughPlan& plan, Context& ctx, std::vector<Step>& steps) {
  auto device = std::make_shared<nl::LinkInfo>();
  // What removal gives back is in the store before the device is first changed, so a crash
  // from here on leaves a record that detach can restore from.
  steps.push_back({"find device " + describeDevice(plan), [&ctx, &plan, device]() -> Status {
                     PLUMB_ASSIGN(*device, findPassthroughDevice(ctx.kernel, plan));
                     DeviceRestore restore = restoreOf(ctx.kernel, *device);
                     PLUMB_TRY(hostConfigOf(ctx.kernel, *device, restore));
                     if (!plan.force && (!restore.addresses.empty() || !restore.routes.empty())) {
                       std::string what;
                       for (const auto& a : restore.addresses)
                         what += (what.empty() ? "" : ", ") + a.str();
                       for (const auto& x : restore.routes)
                         what += (what.empty() ? "route to " : ", route to ") + x.dst.str();
                       return fail(Errc::kInvalid,
                                   device->name + " carries the host's " + what +
                                       ": moving it would take them from the host (force it "
                                       "to move it anyway; they come back with it)");
                     }
                     ctx.record.restore = restore;
                     ctx.record.via = device->name;
                     return ctx.store.updateAttachment(ctx.record);
                   }});
  if (!ctx.in_container) {
    // The runtime moves it (Docker: SrcName) and names it; plumb stamps it and remembers it.
    // Its altnames go now, as on the way into a container: dockerd renames it in the sandbox
    // and back to this name when it gives it back; plumb's removal puts them back.
    steps.push_back({"stamp the device for the runtime to move",
                     [&ctx, device]() -> Status {
                       ctx.tmp_name = device->name;
                       if (!device->altnames.empty()) {
                         auto dropped = ctx.kernel.deleteAltnames(Kernel::kHost, device->index,
                                                                  device->altnames);
                         if (!dropped.ok()) {
                           (void)restoreReturnedDevice(ctx.kernel, *ctx.record.restore, "");
                           return dropped;
                         }
                       }
                       nl::LinkChange change;
                       change.alias = Engine::ownerStamp(ctx.req.key);
                       if (ctx.req.mtu > 0) change.mtu = ctx.req.mtu;
                       auto st = ctx.kernel.changeLink(Kernel::kHost, device->index, change);
                       if (!st.ok())
                         (void)restoreReturnedDevice(ctx.kernel, *ctx.record.restore, "");
                       return st;
                     },
                     [&ctx] {
                       (void)restoreReturnedDevice(ctx.kernel, *ctx.record.restore,
                                                   Engine::ownerStamp(ctx.req.key));
                     }});
    return;
  }
  steps.push_back(
      {"move the device into netns " + ctx.req.netns,
       [&ctx, device]() -> Status { return moveDeviceNamed(ctx, *device, *ctx.record.restore); },
       [&ctx] {
         auto link = ctx.kernel.getLink(ctx.ctr_ns, ctx.tmp_name);
         if (!link.ok()) link = ctx.kernel.getLink(ctx.ctr_ns, ctx.req.key.ifname);
         if (link.ok())
           (void)restoreDevice(ctx.kernel, ctx.ctr_ns, link->index, *ctx.record.restore);
       }});
  ctx.born_named = true;  // named on arrival: stamped with "set ... up"
  addContainerSteps(ctx, steps);
}

// Never deleted: given back to the host, from the container or from wherever the kernel put
// it when the container's netns died.
Status detach(const PassthroughPlan&, Detach& d) {
  DeviceRestore restore = d.record && d.record->restore ? *d.record->restore : DeviceRestore{};
  bool done = false;
  Kernel& k = d.kernel;
  if (!d.netns.empty()) {
    auto ns = k.openNetns(d.netns);
    if (ns.ok()) {
      PLUMB_ASSIGN(auto links, k.listLinks(*ns));
      for (const auto& l : links) {
        if (l.alias != d.stamp) continue;
        PLUMB_TRY(restoreDevice(k, *ns, l.index, restore));
        done = true;
      }
      k.closeNetns(*ns);
    }
  }
  if (!done) PLUMB_TRY(restoreReturnedDevice(k, restore, d.stamp));
  return {};
}

Status check(const PassthroughPlan&, Check&) { return {}; }

// Nothing of this mode outlives its record.
Status sweep(const PassthroughPlan&, Sweep&) { return {}; }

}  // namespace plumb::core::modes
