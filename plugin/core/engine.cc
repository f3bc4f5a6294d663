// Attach, detach and check: the steps every mode shares (namespaces, the record, a DHCP
// client, the result), with each mode's own steps from its file under modes/, chosen by
// std::visit over the plan.
#include "plugin/core/engine.h"

#include <chrono>
#include <functional>

#include <unistd.h>

#include <filesystem>

#include "base/log.h"
#include "base/names.h"
#include "base/process.h"
#include "plugin/core/dhcp.h"
#include "plugin/core/failpoint.h"
#include "plugin/core/kernel.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core {

namespace {

std::string hex8(const AttachmentKey& key) { return stableHex8(key.str()); }

// The plan a record was made with, as far as detach needs it: its mode (the record's via says
// which bridge, master or device).
template <size_t I = 0>
std::optional<Plan> planOfMode(const std::string& mode) {
  if constexpr (I < std::variant_size_v<Plan>) {
    if (mode == std::variant_alternative_t<I, Plan>::kMode) return Plan(std::in_place_index<I>);
    return planOfMode<I + 1>(mode);
  } else {
    return std::nullopt;
  }
}

void removeFiles(const std::vector<std::string>& files) {
  for (const auto& f : files) {
    std::error_code ec;
    std::filesystem::remove_all(f, ec);
  }
}

// The processes an attachment owns, stopped, and what they wrote, removed.
void stopHelpers(const std::vector<Helper>& helpers) {
  for (const auto& h : helpers) {
    if (h.kind == "dhcp") stopDhcp(h.pid, h.program);
    removeFiles(h.files);
  }
}

// A DHCP client that gets the lease and keeps renewing it, owned by the attachment; or, with
// foreground, one that runs until it ends, after which the attachment is undone (pipework -f).
void addDhcpStep(modes::Context& ctx, const DhcpClient& client, std::vector<Step>& steps) {
  steps.push_back(
      {"run DHCP client " + client.name + " on " + ctx.req.key.ifname,
       [&ctx, &client]() -> Status {
         const netlink::Netns* ns = ctx.kernel.netns(ctx.ctr_ns);
         if (!ns) return fail(Errc::kUnsupported, "no netns to run a DHCP client in");
         if (ctx.req.dhcp->foreground) {
           PLUMB_TRY(runDhcpForeground(*ns, client));
           return fail(Errc::kInvalid, client.name + " ended in the foreground");
         }
         std::string log = dhcpRunDir() + "/" + hex8(ctx.req.key) + ".log";
         auto lease = startDhcp(*ns, client, ctx.req.key.ifname, log, 30000);
         if (!lease.ok()) {
           ::unlink(log.c_str());
           removeFiles(client.files);
           return std::move(lease).error();
         }
         Helper h{.kind = "dhcp", .program = client.name, .pid = lease->pid, .files = client.files};
         h.files.push_back(log);
         ctx.record.helpers.push_back(h);
         ctx.result.addresses = {{lease->address, std::nullopt}};
         return {};
       },
       [&ctx] { stopHelpers(ctx.record.helpers); }});
}

// The request completed from what the address source handed out, as CNI has it: a route
// without a gateway goes through its family's first gateway; isDefaultGateway adds a default
// route per family; isGateway puts each gateway on the bridge; ipMasq masquerades each subnet.
void useAddressing(AttachRequest& req, Addressing got) {
  std::optional<IpAddr> gw4, gw6;
  for (const auto& a : got.addresses) {
    auto& gw = a.address.isV4() ? gw4 : gw6;
    if (a.gateway && !gw) gw = a.gateway;
  }
  req.addresses = std::move(got.addresses);
  req.routes.clear();
  for (auto r : got.routes) {
    if (!r.gateway) r.gateway = r.dst.isV4() ? gw4 : gw6;
    req.routes.push_back(r);
  }
  if (req.address_use.default_route) {
    for (const auto& gw : {gw4, gw6}) {
      if (!gw) continue;
      IpPrefix def(IpAddr::fromNumber(gw->isV6(), 0), 0);
      bool have = false;
      for (const auto& r : req.routes) have |= r.dst == def;
      RouteSpec route;
      route.dst = def;
      route.gateway = gw;
      if (!have) req.routes.push_back(route);
    }
  }
  if (auto* bridge = std::get_if<VethBridgePlan>(&req.plan)) {
    for (const auto& a : req.addresses) {
      if (req.address_use.gateway_on_bridge && a.gateway)
        bridge->gateway_addresses.emplace_back(*a.gateway, a.address.len());
      if (req.address_use.masquerade) bridge->masquerade.push_back(a.address.network());
    }
  }
}

Status allocate(modes::Context& ctx) {
  PLUMB_ASSIGN(auto got, ctx.req.address_source->allocate());
  useAddressing(ctx.req, std::move(got));
  ctx.record.addresses = ctx.req.addresses;
  ctx.record.routes = ctx.req.routes;
  return {};
}

void release(modes::Context& ctx) {
  auto st = ctx.req.address_source->release();
  if (!st.ok()) log::get("core")->warn("{}", st.error().message);
}

Status insertRecord(modes::Context& ctx) {
  auto st = ctx.store.insertAttachment(ctx.record);
  if (!st.ok() && st.error().code == Errc::kExists) {
    return fail(Errc::kExists, "container " + ctx.req.key.container_id + " already has interface " +
                                   ctx.req.key.ifname + " on network " + ctx.req.key.network);
  }
  return st;
}

// The record ("adding") goes in before anything is made, so a duplicate never allocates and
// a crash leaves what DEL needs. Allocation follows as a step of its own (whatever fails after
// it gives the addresses back), in the same transaction when the source is plumb's own IPAM.
void addRecordSteps(modes::Context& ctx, std::vector<Step>& steps) {
  AddressSource* source = ctx.req.address_source;
  bool joined = source && source->inStore();
  std::string what = "record attachment " + ctx.req.key.str();
  if (joined) what += " and " + source->describe();
  steps.push_back({what,
                   [&ctx, joined]() -> Status {
                     if (!joined) return insertRecord(ctx);
                     return ctx.store.write([&](Db&) -> Status {
                       PLUMB_TRY(insertRecord(ctx));
                       return allocate(ctx);
                     });
                   },
                   [&ctx, joined] {
                     (void)ctx.store.write([&](Db&) -> Status {
                       if (joined) release(ctx);
                       return ctx.store.deleteAttachment(ctx.req.key);
                     });
                   }});
  if (source && !joined) {
    steps.push_back({source->describe(), [&ctx]() -> Status { return allocate(ctx); },
                     [&ctx] { release(ctx); }});
  }
}

}  // namespace

Engine::Engine(Store& store) : store_(store), own_kernel_(realKernel()), kernel_(*own_kernel_) {}
Engine::Engine(Store& store, Kernel& kernel) : store_(store), kernel_(kernel) {}
Engine::~Engine() = default;

std::string Engine::hostIfname(const AttachmentKey& key) { return "plm" + hex8(key); }
std::string Engine::ownerStamp(const AttachmentKey& key) { return "plumb:" + key.str(); }
std::string Engine::bridgeStamp(const std::string& bridge) { return "plumb:bridge:" + bridge; }
std::string Engine::tempIfname(const AttachmentKey& key) { return "plt" + hex8(key); }
std::string Engine::hostSideIfname(const AttachmentKey& key) { return "plc" + hex8(key); }

Status Engine::validate(const AttachRequest& req) {
  PLUMB_TRY(validateId("network name", req.key.network));
  PLUMB_TRY(validateId("container id", req.key.container_id));
  if (req.placement == Placement::kContainer) {
    PLUMB_TRY(validateIfname(req.key.ifname));
    if (req.netns.empty())
      return fail(Errc::kInvalid, "no netns given for container " + req.key.container_id);
  }
  // 68: the least IPv4 allows (RFC 791); 0 inherits.
  if (req.mtu != 0 && (req.mtu < 68 || req.mtu > 65535))
    return fail(Errc::kInvalid, "mtu " + std::to_string(req.mtu) + " is out of range (68-65535)");
  if (req.mac) PLUMB_TRY(checkUnicast(*req.mac));
  if (req.dhcp &&
      (!req.addresses.empty() || req.placement != Placement::kContainer || req.address_source))
    return fail(Errc::kInvalid, "DHCP is for an interface in a container without other addresses");
  if (req.address_source && (!req.addresses.empty() || !req.routes.empty()))
    return fail(Errc::kInvalid, "allocated addresses come with no static addresses or routes");
  return std::visit([&](const auto& plan) { return modes::validate(plan, req); }, req.plan);
}

namespace {

// The steps of one attach, in order: namespaces, the record ("adding"), the mode's own, a DHCP
// client, the result (the record "ready").
std::vector<Step> buildSteps(modes::Context& ctx, const std::optional<DhcpClient>& dhcp) {
  const AttachRequest& req = ctx.req;
  std::vector<Step> steps;
  // The host's socket opens on its first use; the container's netns is opened here, so a gone
  // container fails before anything is recorded.
  steps.push_back({"open the host netns" + (ctx.in_container ? " and netns " + req.netns : ""),
                   [&ctx]() -> Status {
                     if (!ctx.in_container) return {};
                     PLUMB_ASSIGN(ctx.ctr_ns, ctx.kernel.openNetns(ctx.req.netns));
                     return {};
                   }});
  addRecordSteps(ctx, steps);
  std::visit([&](const auto& plan) { modes::addSteps(plan, ctx, steps); }, ctx.req.plan);
  if (dhcp) addDhcpStep(ctx, *dhcp, steps);
  steps.push_back({"record the result", [&ctx]() -> Status {
                     std::optional<nl::LinkInfo> link = ctx.ctr_link;
                     if (!ctx.userspace_pci.empty()) {
                       // A device without a netdev: nothing in the netns to read back.
                       link = nl::LinkInfo{};
                       link->name = ctx.req.key.ifname;
                     } else if (!link) {
                       PLUMB_ASSIGN(link, ctx.in_container
                                              ? ctx.kernel.getLink(ctx.ctr_ns, ctx.ctr_index)
                                              : ctx.kernel.getLink(Kernel::kHost, ctx.tmp_name));
                     }
                     ctx.result.container = {.name = link->name,
                                             .mac = link->mac ? link->mac->str() : "",
                                             .sandbox = ctx.in_container ? ctx.req.netns : "",
                                             .mtu = link->mtu,
                                             .pci = ctx.userspace_pci};
                     if (ctx.host_link) {
                       const auto& h = *ctx.host_link;
                       ctx.result.host = InterfaceInfo{.name = h.name,
                                                       .mac = h.mac ? h.mac->str() : "",
                                                       .sandbox = "",
                                                       .mtu = h.mtu,
                                                       .pci = ""};
                     }
                     if (!ctx.req.dhcp) ctx.result.addresses = ctx.req.addresses;
                     ctx.result.routes = ctx.req.routes;
                     ctx.record.host_ifname = ctx.result.host ? ctx.result.host->name : "";
                     ctx.record.addresses = ctx.result.addresses;
                     ctx.record.mac = ctx.result.container.mac;
                     ctx.record.state = "ready";
                     PLUMB_TRY(ctx.store.updateAttachment(ctx.record));
                     if (ctx.in_container && link->mac && ctx.userspace_pci.empty())
                       modes::announce(ctx, *link->mac);
                     return {};
                   }});
  return steps;
}

AttachmentRecord firstRecord(const AttachRequest& req) {
  AttachmentRecord r;
  r.key = req.key;
  r.netns = req.netns;
  r.mode = modeName(req.plan);
  r.frontend = req.frontend;
  r.state = "adding";
  r.owner_pid = ::getpid();
  r.owner_start = processStartTime(r.owner_pid);
  r.routes = req.routes;
  r.addresses = req.addresses;
  return r;  // what it goes through (via, a host end) the mode's addSteps sets
}

modes::Context contextFor(const AttachRequest& req, Store& store, Kernel& kernel) {
  bool in_container = req.placement == Placement::kContainer;
  std::string host_name = req.host_ifname.empty() ? Engine::hostIfname(req.key) : req.host_ifname;
  modes::Context ctx(req, store, kernel);
  ctx.in_container = in_container;
  ctx.host_name = host_name;
  ctx.tmp_name = in_container ? Engine::tempIfname(req.key) : Engine::hostSideIfname(req.key);
  ctx.record = firstRecord(req);
  return ctx;
}

}  // namespace

Result<std::vector<std::string>> Engine::describe(const AttachRequest& req) {
  PLUMB_TRY(validate(req));
  auto ctx = contextFor(req, store_, kernel_);
  std::optional<DhcpClient> dhcp;
  if (req.dhcp) dhcp = DhcpClient{req.dhcp->client, {}, {}, {}};
  std::vector<std::string> out;
  for (const auto& s : buildSteps(ctx, dhcp)) out.push_back(s.what);
  return out;
}

Result<AttachResult> Engine::attach(const AttachRequest& req) {
  PLUMB_TRY(validate(req));
  std::optional<DhcpClient> dhcp;
  if (req.dhcp) {
    // Found before anything is made: a missing client changes nothing.
    PLUMB_ASSIGN(dhcp, dhcpClient(req.dhcp->client, req.dhcp->options, req.key.ifname,
                                  req.dhcp->hostname, dhcpRunDir()));
    // Whose client it is, for plumb doctor (plugin/core/dhcp.h: runningDhcpClients).
    dhcp->setup.env.push_back(std::string(kDhcpKeyVar) + "=" + req.key.str());
    dhcp->setup.env.push_back(std::string(kDhcpStoreVar) + "=" + store_.path());
  }
  auto ctx = contextFor(req, store_, kernel_);
  auto steps = buildSteps(ctx, dhcp);
  auto st = runSteps(steps);
  if (!st.ok()) {
    return std::move(st).error().wrap("failed to attach " + req.key.ifname + " of container " +
                                      req.key.container_id);
  }
  return std::move(ctx.result);
}

Status Engine::detach(const DetachRequest& req) {
  PLUMB_ASSIGN(auto record, store_.findAttachment(req.key));
  if (record) stopHelpers(record->helpers);
  modes::Detach d{.key = req.key,
                  .record = record,
                  .netns = !req.netns.empty() ? req.netns : (record ? record->netns : ""),
                  .kernel = kernel_,
                  .store = store_,
                  .stamp = ownerStamp(req.key)};
  std::optional<Plan> plan = record ? planOfMode(record->mode) : std::nullopt;
  if (req.plan && (!plan || plan->index() == req.plan->index())) plan = req.plan;
  // As attach's steps: each part's time in the debug log.
  auto logger = log::get("core");
  auto timed = [&](const std::string& what, const std::function<Status()>& part) -> Status {
    auto t0 = std::chrono::steady_clock::now();
    Status st = failpoint("del");
    if (st.ok()) st = part();
    logger->debug(
        "detach: {} ({} us)", what,
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0)
            .count());
    return st;
  };
  PLUMB_TRY(timed(plan ? "mode " + modeName(*plan) : "stamped links", [&]() -> Status {
    if (plan) return std::visit([&](const auto& p) { return modes::detach(p, d); }, *plan);
    return modes::deleteStampedLinks(d);
  }));
  if (record)
    PLUMB_TRY(timed("remove the record", [&] { return store_.deleteAttachment(req.key); }));
  return timed("masquerade", [&] { return unmasqueradeIfUnused(req.key.network, req.masquerade); });
}

Status Engine::sweep(const std::string& network, const Plan& plan,
                     const std::vector<AttachmentKey>& keep) {
  modes::Sweep s{.network = network, .keep = keep, .kernel = kernel_, .store = store_};
  return std::visit([&](const auto& p) { return modes::sweep(p, s); }, plan);
}

bool Engine::abandoned(const AttachmentRecord& record) {
  if (record.state != "adding" || record.owner_pid <= 0) return false;
  return processStartTime(record.owner_pid) != record.owner_start;
}

Result<bool> Engine::stillAbandoned(Store& store, const AttachmentRecord& seen) {
  if (!abandoned(seen)) return false;
  // Its owner is gone now, so the record can no longer change under it: what the store holds
  // now is what that owner left.
  PLUMB_ASSIGN(auto now, store.findAttachment(seen.key));
  return now && now->state == "adding" && now->owner_pid == seen.owner_pid &&
         now->owner_start == seen.owner_start;
}

Status Engine::check(const AttachRequest& req) {
  // CHECK changes nothing: a failpoint before each of its reads shows that a CHECK killed or
  // failed anywhere leaves nothing behind, and the next one passes.
  PLUMB_TRY(failpoint("check"));
  PLUMB_ASSIGN(auto record, store_.findAttachment(req.key));
  if (!record) return fail(Errc::kNotFound, "no attachment " + req.key.str() + " is recorded");
  if (record->state != "ready")
    return fail(Errc::kInvalid, "attachment " + req.key.str() + " is not complete");
  if (const auto* vf = std::get_if<SriovPlan>(&req.plan)) {
    auto userspace = modes::checkUserspaceVf(*vf, req, *record, kernel_, store_);
    if (userspace) return *userspace;
  }
  std::string netns = req.netns.empty() ? record->netns : req.netns;
  PLUMB_TRY(failpoint("check"));
  PLUMB_ASSIGN(auto ctr, kernel_.openNetns(netns));
  auto link = kernel_.getLink(ctr, req.key.ifname);
  if (!link.ok())
    return fail(Errc::kNotFound, "interface " + req.key.ifname + " is missing in netns " + netns);
  if (!link->up()) return fail(Errc::kInvalid, "interface " + req.key.ifname + " is down");
  modes::Check c{.req = req, .record = *record, .link = *link, .kernel = kernel_, .store = store_};
  PLUMB_TRY(failpoint("check"));
  PLUMB_TRY(std::visit([&](const auto& p) { return modes::check(p, c); }, req.plan));
  PLUMB_TRY(failpoint("check"));
  PLUMB_ASSIGN(auto addrs, kernel_.listAddresses(ctr, AF_UNSPEC, link->index));
  for (const auto& a : req.addresses) {
    bool found = false;
    for (const auto& have : addrs) found |= have.prefix == a.address;
    if (!found)
      return fail(Errc::kInvalid,
                  "address " + a.address.str() + " is missing on " + req.key.ifname);
  }
  PLUMB_TRY(failpoint("check"));
  std::vector<nl::Route> routes;
  for (int family : {AF_INET, AF_INET6}) {
    // Any table: a later plugin in the chain (sbr) may have moved them, as the spec allows.
    PLUMB_ASSIGN(auto rs, kernel_.listRoutes(ctr, family, 0));
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
  return {};
}

}  // namespace plumb::core
