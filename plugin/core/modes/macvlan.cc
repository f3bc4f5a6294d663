// Macvlan mode: a macvlan child of a host interface, born in the container's netns (or left on
// the host for Docker to move).
#include "base/names.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core {

Result<MacvlanMode> parseMacvlanMode(const std::string& name) {
  if (name.empty() || name == "bridge") return MacvlanMode::kBridge;
  if (name == "private") return MacvlanMode::kPrivate;
  if (name == "vepa") return MacvlanMode::kVepa;
  if (name == "passthru") return MacvlanMode::kPassthru;
  if (name == "source") return MacvlanMode::kSource;
  return fail(Errc::kInvalid,
              "unknown macvlan mode '" + name + "' (bridge, private, vepa, passthru or source)");
}

const char* macvlanModeName(MacvlanMode mode) {
  switch (mode) {
    case MacvlanMode::kPrivate:
      return "private";
    case MacvlanMode::kVepa:
      return "vepa";
    case MacvlanMode::kPassthru:
      return "passthru";
    case MacvlanMode::kSource:
      return "source";
    case MacvlanMode::kBridge:
      break;
  }
  return "bridge";
}

namespace modes {

namespace {

nl::MacvlanMode kernelMode(MacvlanMode mode) {
  switch (mode) {
    case MacvlanMode::kPrivate:
      return nl::MacvlanMode::kPrivate;
    case MacvlanMode::kVepa:
      return nl::MacvlanMode::kVepa;
    case MacvlanMode::kPassthru:
      return nl::MacvlanMode::kPassthru;
    case MacvlanMode::kSource:
      return nl::MacvlanMode::kSource;
    case MacvlanMode::kBridge:
      break;
  }
  return nl::MacvlanMode::kBridge;
}

}  // namespace

Status validate(const MacvlanPlan& plan, const AttachRequest& req) {
  if (!req.host_ifname.empty()) {
    return fail(Errc::kInvalid, "a host-side name (" + req.host_ifname +
                                    ") is for a veth; mode macvlan has no host end");
  }
  if (plan.master.empty()) return fail(Errc::kInvalid, "macvlan needs a master interface");
  return validateIfname(plan.master);
}

void addSteps(const MacvlanPlan& plan, Context& ctx, std::vector<Step>& steps) {
  ctx.record.via = plan.master;
  steps.push_back({"create macvlan " + ctx.tmp_name + " on " + plan.master + " (" +
                       macvlanModeName(plan.mode) + ")",
                   [&ctx, &plan]() -> Status {
                     auto master = ctx.kernel.getLink(Kernel::kHost, plan.master);
                     if (!master.ok()) {
                       if (master.error().code == Errc::kNotFound)
                         return fail(Errc::kNotFound,
                                     "master link " + plan.master + " does not exist");
                       return std::move(master).error();
                     }
                     nl::MacvlanSpec spec;
                     spec.name = ctx.tmp_name;
                     spec.parent_index = master->index;
                     spec.mode = kernelMode(plan.mode);
                     spec.mtu = ctx.req.mtu;
                     spec.mac = ctx.req.mac;
                     return ctx.kernel.createMacvlan(Kernel::kHost, spec, ctx.ctr_ns);
                   },
                   [&ctx] {
                     auto link = ctx.kernel.getLink(ctx.ctr_ns, ctx.tmp_name);
                     if (!link.ok() && ctx.in_container)
                       link = ctx.kernel.getLink(ctx.ctr_ns, ctx.req.key.ifname);
                     if (link.ok()) (void)ctx.kernel.deleteLink(ctx.ctr_ns, link->index);
                   }});
  addContainerSteps(ctx, steps);
}

Status detach(const MacvlanPlan&, Detach& d) { return deleteStampedLinks(d); }

Status check(const MacvlanPlan&, Check& c) { return checkKind(c, "macvlan"); }

// Nothing of this mode outlives its record.
Status sweep(const MacvlanPlan&, Sweep&) { return {}; }

}  // namespace modes
}  // namespace plumb::core
