// SR-IOV mode: a virtual function of a PF moved into the container, with its settings (MAC,
// VLAN, spoof check, trust, link state, rates) set through the PF, and given back exactly as
// it was. The store decides which VF an attachment holds (plugin/core/vf_claims.h) and keeps
// the VF's state from before plumb's first change; removal puts back that state, and only
// while the hold is still this attachment's. A VF bound to a userspace driver (vfio-pci) has
// no netdev: only its PF-side settings are applied, and the result names it by PCI address.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>
#include <memory>

#include "base/log.h"
#include "base/names.h"
#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"
#include "plugin/core/vf_claims.h"

namespace plumb::core::modes {

namespace {

using json = nlohmann::json;

// One VF setting plumb changes: as errors name it, and as the PF is sent it.
struct Setting {
  std::string name;
  std::string value;
  nl::VfConfig config;
};

// What removal gives back: the VF's netdev (none under a userspace driver) and the settings
// plumb changes, as they were before its first change.
struct VfOriginal {
  std::optional<DeviceRestore> device;
  nl::VfConfig vf;
};

std::string protoName(uint16_t proto) {
  return proto == nl::kVlanProto8021AD ? "802.1ad" : "802.1q";
}

Result<nl::VfLinkState> parseLinkState(const std::string& s) {
  if (s == "auto") return nl::VfLinkState::kAuto;
  if (s == "enable") return nl::VfLinkState::kEnable;
  if (s == "disable") return nl::VfLinkState::kDisable;
  return fail(Errc::kInvalid, "link_state '" + s + "' is not auto, enable or disable");
}

Result<uint16_t> parseProto(const std::string& s) {
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  if (lower.empty() || lower == "802.1q") return nl::kVlanProto8021Q;
  if (lower == "802.1ad") return nl::kVlanProto8021AD;
  return fail(Errc::kInvalid, "vlanProto '" + s + "' is not 802.1q or 802.1ad");
}

// The settings a request changes, in the order they are set (the link state last, once the
// rest is in place, as sriov-cni does). now: the VF's current settings, for a rate given
// only in part.
std::vector<Setting> settingsOf(const SriovPlan& plan, const AttachRequest& req,
                                const nl::VfConfig& now) {
  const VfSettings& s = plan.settings;
  std::vector<Setting> out;
  if (req.mac) {
    nl::VfConfig c;
    c.mac = req.mac;
    out.push_back({"mac", req.mac->str(), c});
  }
  if (s.vlan) {
    nl::VfConfig c;
    c.vlan =
        nl::VfVlan{*s.vlan, s.vlan_qos.value_or(0),
                   parseProto(s.vlan_proto).ok() ? *parseProto(s.vlan_proto) : nl::kVlanProto8021Q};
    out.push_back({"vlan",
                   std::to_string(*s.vlan) + " (qos " + std::to_string(c.vlan->qos) + ", " +
                       protoName(c.vlan->proto) + ")",
                   c});
  }
  if (s.min_tx_rate || s.max_tx_rate) {
    nl::VfRate was = now.rate.value_or(nl::VfRate{});
    nl::VfConfig c;
    c.rate = nl::VfRate{s.min_tx_rate ? static_cast<uint32_t>(*s.min_tx_rate) : was.min_mbps,
                        s.max_tx_rate ? static_cast<uint32_t>(*s.max_tx_rate) : was.max_mbps};
    out.push_back(
        {"tx rate",
         std::to_string(c.rate->min_mbps) + "-" + std::to_string(c.rate->max_mbps) + " Mbps", c});
  }
  if (s.spoofchk) {
    nl::VfConfig c;
    c.spoofchk = s.spoofchk;
    out.push_back({"spoofchk", *s.spoofchk ? "on" : "off", c});
  }
  if (s.trust) {
    nl::VfConfig c;
    c.trust = s.trust;
    out.push_back({"trust", *s.trust ? "on" : "off", c});
  }
  if (!s.link_state.empty()) {
    nl::VfConfig c;
    c.link_state =
        parseLinkState(s.link_state).ok() ? *parseLinkState(s.link_state) : nl::VfLinkState::kAuto;
    out.push_back({"link_state", s.link_state, c});
  }
  return out;
}

// The fields of have that want sets, with have's values; a field the PF does not report
// takes the drivers' default (no MAC, VLAN 0, spoof check on, not trusted, link auto, no rate
// limits).
nl::VfConfig fieldsOf(const nl::VfConfig& want, const nl::VfConfig& have) {
  nl::VfConfig out;
  if (want.mac) out.mac = have.mac.value_or(MacAddr({0, 0, 0, 0, 0, 0}));
  if (want.vlan) out.vlan = have.vlan.value_or(nl::VfVlan{});
  if (want.rate) out.rate = have.rate.value_or(nl::VfRate{});
  if (want.spoofchk) out.spoofchk = have.spoofchk.value_or(true);
  if (want.trust) out.trust = have.trust.value_or(false);
  if (want.link_state) out.link_state = have.link_state.value_or(nl::VfLinkState::kAuto);
  return out;
}

// Calls f(name, member) for each VfConfig field, in the order settings are set.
template <typename F>
void eachField(F&& f) {
  f("mac", &nl::VfConfig::mac);
  f("vlan", &nl::VfConfig::vlan);
  f("tx rate", &nl::VfConfig::rate);
  f("spoofchk", &nl::VfConfig::spoofchk);
  f("trust", &nl::VfConfig::trust);
  f("link_state", &nl::VfConfig::link_state);
}

// Each field of c as a VfConfig of its own, with a name for errors.
std::vector<std::pair<std::string, nl::VfConfig>> split(const nl::VfConfig& c) {
  std::vector<std::pair<std::string, nl::VfConfig>> out;
  eachField([&](const char* name, auto member) {
    if (!(c.*member)) return;
    nl::VfConfig x;
    x.*member = c.*member;
    out.emplace_back(name, x);
  });
  return out;
}

json vfJson(const nl::VfConfig& c) {
  json j = json::object();
  if (c.mac) j["mac"] = c.mac->str();
  if (c.vlan) j["vlan"] = {{"id", c.vlan->vlan}, {"qos", c.vlan->qos}, {"proto", c.vlan->proto}};
  if (c.rate) j["rate"] = {{"min", c.rate->min_mbps}, {"max", c.rate->max_mbps}};
  if (c.spoofchk) j["spoofchk"] = *c.spoofchk;
  if (c.trust) j["trust"] = *c.trust;
  if (c.link_state) j["link_state"] = static_cast<uint32_t>(*c.link_state);
  return j;
}

nl::VfConfig vfOf(const json& j) {
  nl::VfConfig c;
  if (!j.is_object()) return c;
  if (j.contains("mac") && j["mac"].is_string()) {
    auto m = MacAddr::parse(j["mac"].get<std::string>());
    if (m.ok()) c.mac = *m;
  }
  auto num = [](const json& o, const char* k) {
    return o.contains(k) && o[k].is_number_unsigned() ? o[k].get<uint32_t>() : 0U;
  };
  if (j.contains("vlan") && j["vlan"].is_object()) {
    const auto& v = j["vlan"];
    c.vlan = nl::VfVlan{static_cast<int>(num(v, "id")), static_cast<int>(num(v, "qos")),
                        static_cast<uint16_t>(num(v, "proto"))};
  }
  if (j.contains("rate") && j["rate"].is_object())
    c.rate = nl::VfRate{num(j["rate"], "min"), num(j["rate"], "max")};
  if (j.contains("spoofchk") && j["spoofchk"].is_boolean()) c.spoofchk = j["spoofchk"].get<bool>();
  if (j.contains("trust") && j["trust"].is_boolean()) c.trust = j["trust"].get<bool>();
  if (j.contains("link_state") && j["link_state"].is_number_unsigned() &&
      j["link_state"].get<uint32_t>() <= 2)
    c.link_state = static_cast<nl::VfLinkState>(j["link_state"].get<uint32_t>());
  return c;
}

std::string originalJson(const VfOriginal& o) {
  json j = {{"vf", vfJson(o.vf)}};
  if (o.device) j["device"] = json::parse(o.device->json());
  return j.dump();
}

Result<VfOriginal> originalOf(const std::string& text) {
  auto j = json::parse(text, nullptr, false);
  if (!j.is_object()) return fail(Errc::kIo, "a VF's saved state is damaged");
  VfOriginal o;
  if (j.contains("device") && j["device"].is_object()) {
    PLUMB_ASSIGN(auto d, DeviceRestore::fromJson(j["device"].dump()));
    o.device = d;
  }
  if (j.contains("vf")) o.vf = vfOf(j["vf"]);
  return o;
}

std::string describeVf(const SriovPlan& plan) {
  return plan.pci_address.empty() ? "a free VF of PF " + plan.pf : "VF " + plan.pci_address;
}

Status restoreSettings(Kernel& k, const std::string& pf, int pf_index, int vf,
                       const nl::VfConfig& original);

// What an attach found and holds, for its later steps and their undo.
struct Held {
  nl::VfLocation loc;
  int pf_index = 0;
  VfClaim claim;
  VfOriginal original;
  std::vector<Setting> settings;
  // A claim taken over from a holder whose container is gone: its key, and the VF's lock,
  // held until the VF is back as it was before that holder (reset).
  std::optional<AttachmentKey> took_over_from;
  UniqueFd lock;
  bool reset = false;
};

// A VF asked for by PCI address that another attachment holds: whether that holder's
// container is gone, so this one may take the VF over (a device plugin gave it out again
// before the old DEL came). Its id when so; 0 when the holder still has it.
Result<long long> takeoverOf(Context& ctx, const VfClaim& held) {
  if (held.owner.str() == ctx.req.key.str()) return held.id;  // this attachment's, left over
  PLUMB_ASSIGN(auto rec, ctx.store.findAttachment(held.owner));
  bool gone = !rec;
  if (rec && !rec->netns.empty()) {
    auto ns = ctx.kernel.openNetns(rec->netns);
    if (ns.ok()) {
      ctx.kernel.closeNetns(*ns);
    } else if (ns.error().code == Errc::kNoNetns) {
      gone = true;
    }
  }
  if (!gone) return 0;
  log::get("core")->info("VF {} was held by {}, whose container is gone: {} takes it over",
                         held.pci, held.owner.str(), ctx.req.key.str());
  return held.id;
}

// Claims the VF (by PCI address, or a free one of the PF) and records it, in one transaction.
Status claimVf(Context& ctx, const SriovPlan& plan, Held& h) {
  Kernel& k = ctx.kernel;
  VfClaims claims(ctx.store);
  VfClaim want;
  want.owner = ctx.req.key;
  if (!plan.pci_address.empty()) {
    PLUMB_ASSIGN(h.loc, k.sriovVf(plan.pci_address));
    if (!plan.pf.empty() && plan.pf != h.loc.pf_name)
      return fail(Errc::kInvalid, "VF " + plan.pci_address + " is a VF of " + h.loc.pf_name +
                                      ", not of PF " + plan.pf);
    if (h.loc.vf.netdev.empty() && !nl::userspaceDriver(h.loc.vf.driver)) {
      return fail(Errc::kNotFound, "VF " + plan.pci_address +
                                       " has no network device on the host (driver '" +
                                       h.loc.vf.driver + "'; is it in another netns?)");
    }
    want.pci = h.loc.vf.pci;
    want.pf = h.loc.pf_name;
    want.vf = h.loc.vf.index;
  }
  std::vector<std::pair<int, std::string>> candidates;
  std::vector<nl::PciVf> pf_vfs;
  if (plan.pci_address.empty()) {
    PLUMB_ASSIGN(auto pf, k.sriovPf(plan.pf));
    pf_vfs = pf.vfs;
    for (const auto& vf : pf.vfs) {
      // Only VFs with a netdev on the host: one with a kernel driver but none is in another
      // namespace already, plumb's or not; one under a userspace driver (vfio-pci) is a
      // device plugin's to hand out by deviceID.
      if (!vf.netdev.empty()) candidates.emplace_back(vf.index, vf.pci);
    }
    want.pf = pf.name;
    h.loc.pf_pci = pf.pci;
    h.loc.pf_name = pf.name;
  }
  // Before the claim: a failure after it, in this step, would leave it held by no record.
  PLUMB_ASSIGN(auto pf_link, k.getLink(Kernel::kHost, h.loc.pf_name));
  h.pf_index = pf_link.index;
  // The claim and the record that names it commit together.
  auto record = [&](const std::function<Result<VfClaim>()>& take) {
    return ctx.store.write([&](Db&) -> Status {
      PLUMB_ASSIGN(h.claim, take());
      ctx.record.via = h.claim.pf;
      ctx.record.pci = h.claim.pci;
      ctx.record.claim = h.claim.id;
      ctx.record.vlan = plan.settings.vlan;
      return ctx.store.updateAttachment(ctx.record);
    });
  };
  if (plan.pci_address.empty()) {
    PLUMB_TRY(record([&] { return claims.claimFree(want, candidates); }));
    for (const auto& vf : pf_vfs) {
      if (vf.pci == h.claim.pci) h.loc.vf = vf;
    }
  } else {
    PLUMB_ASSIGN(auto held, claims.find(want.pci));
    long long takeover = 0;
    if (held) {
      PLUMB_ASSIGN(takeover, takeoverOf(ctx, *held));
      if (takeover) {
        // Under the VF's lock from here to the end of its reset: a late DEL of the old holder
        // waits, then finds the claim is no longer its own.
        PLUMB_ASSIGN(h.lock, claims.lock(want.pci));
        PLUMB_ASSIGN(held, claims.find(want.pci));
        if (!held || held->id != takeover)
          return fail(Errc::kTryAgain, "VF " + want.pci + " changed hands meanwhile; try again");
        h.took_over_from = held->owner;
      }
    }
    PLUMB_TRY(record([&] { return claims.claim(want, takeover); }));
  }
  return {};
}

// Reads what the VF is before plumb changes anything, into the claim. A claim taken over keeps
// what it had: the state from before the first holder.
Status saveOriginal(Context& ctx, const SriovPlan& plan, Held& h) {
  Kernel& k = ctx.kernel;
  VfOriginal o;
  if (!h.claim.original.empty()) PLUMB_ASSIGN(o, originalOf(h.claim.original));
  if (h.took_over_from) {
    // Nothing of the old holder's is carried over: the VF goes back to what it was before it
    // (netdev and PF-side settings), then this attachment starts from there.
    if (o.device && !nl::userspaceDriver(h.loc.vf.driver)) {
      PLUMB_TRY(restoreReturnedDevice(k, *o.device, Engine::ownerStamp(*h.took_over_from)));
    }
    if (!o.vf.empty())
      PLUMB_TRY(restoreSettings(k, h.loc.pf_name, h.pf_index, h.loc.vf.index, o.vf));
    PLUMB_ASSIGN(h.loc, k.sriovVf(h.loc.vf.pci));  // its netdev's name now
    h.reset = true;
    h.lock.reset();
  }
  if (!nl::userspaceDriver(h.loc.vf.driver) && !o.device) {
    PLUMB_ASSIGN(auto dev, k.getLink(Kernel::kHost, h.loc.vf.netdev));
    o.device = restoreOf(k, dev);
    o.device->pci = h.loc.vf.pci;
  }
  nl::VfConfig now;
  auto probe = settingsOf(plan, ctx.req, nl::VfConfig{});
  if (!probe.empty() || plan.settings.min_tx_rate || plan.settings.max_tx_rate) {
    PLUMB_ASSIGN(auto infos, k.vfSettings(h.pf_index));
    for (const auto& i : infos) {
      if (i.vf == h.loc.vf.index) now = i.config;
    }
  }
  h.settings = settingsOf(plan, ctx.req, now);
  for (const auto& s : h.settings) {
    // Kept from an earlier holder when it changed the same setting: that value is the original.
    nl::VfConfig was = fieldsOf(s.config, now);
    eachField([&](const char*, auto member) {
      if (s.config.*member && !(o.vf.*member)) o.vf.*member = was.*member;
    });
  }
  h.original = o;
  return VfClaims(ctx.store).saveOriginal(h.claim.id, originalJson(o));
}

std::string vfName(const Held& h) {
  return "VF " + std::to_string(h.loc.vf.index) + " (" + h.loc.vf.pci + ")";
}

// Puts back the VF settings of original through the PF, one by one, in the reverse of the
// order they were set (as a rollback undoes them).
Status restoreSettings(Kernel& k, const std::string& pf, int pf_index, int vf,
                       const nl::VfConfig& original) {
  auto each = split(original);
  std::reverse(each.begin(), each.end());
  for (const auto& [name, one] : each) {
    auto st = k.setVf(pf_index, vf, one);
    if (!st.ok()) {
      return std::move(st).error().wrap("failed to restore the " + name + " of VF " +
                                        std::to_string(vf) + " through PF " + pf);
    }
  }
  return {};
}

// Gives a held VF back as its claim's original has it: its netdev from the netns (found by
// the stamp) or from wherever the kernel put it when the netns died, then its PF-side
// settings; then the claim goes.
Status giveBack(Kernel& k, Store& store, const VfClaim& claim, const std::string& netns,
                const std::string& stamp) {
  VfClaims claims(store);
  PLUMB_ASSIGN(auto lock, claims.lock(claim.pci));
  PLUMB_ASSIGN(auto now, claims.find(claim.pci));
  if (!now || now->id != claim.id) return {};  // taken over meanwhile: not this one's to reset
  if (!claim.original.empty()) {
    PLUMB_ASSIGN(auto o, originalOf(claim.original));
    // Where sysfs has the VF now: its netdev, and its PF (whose netdev may have been renamed).
    auto loc = k.sriovVf(claim.pci);
    if (o.device) {
      bool done = false;
      if (!netns.empty()) {
        auto ns = k.openNetns(netns);
        if (ns.ok()) {
          auto links = k.listLinks(*ns);
          Status st;
          if (links.ok()) {
            for (const auto& l : *links) {
              if (l.alias != stamp) continue;
              st = restoreDevice(k, *ns, l.index, *o.device);
              done = true;
            }
          }
          k.closeNetns(*ns);
          PLUMB_TRY(st);
        }
      }
      if (!done && loc.ok() && loc->vf.netdev.empty() && !nl::userspaceDriver(loc->vf.driver)) {
        // A VF does not vanish: with no netdev on the host it is still in some netns (one
        // whose path is gone but which lives on, or is being torn down). The claim stays, so
        // a DEL again restores it once the kernel has handed it back.
        return fail(Errc::kTryAgain, "VF " + claim.pci +
                                         " is not back on the host yet (its netns still "
                                         "exists); its DEL must be tried again");
      }
      if (!done) PLUMB_TRY(restoreReturnedDevice(k, *o.device, stamp));
    }
    if (!o.vf.empty()) {
      std::string pf_name = loc.ok() ? loc->pf_name : claim.pf;
      PLUMB_ASSIGN(auto pf, k.getLink(Kernel::kHost, pf_name));
      PLUMB_TRY(restoreSettings(k, pf_name, pf.index, claim.vf, o.vf));
    }
  }
  return claims.release(claim.id);
}

}  // namespace

Status validate(const SriovPlan& plan, const AttachRequest& req) {
  if (!req.host_ifname.empty()) {
    return fail(Errc::kInvalid, "a host-side name (" + req.host_ifname +
                                    ") is for a veth; mode sriov has no host end");
  }
  if (plan.pf.empty() && plan.pci_address.empty())
    return fail(Errc::kInvalid, "sriov needs a VF's PCI address (deviceID) or a PF to pick one of");
  if (!plan.pf.empty()) PLUMB_TRY(validateIfname(plan.pf));
  if (!plan.pci_address.empty()) PLUMB_TRY(validatePciAddress(plan.pci_address));
  const VfSettings& s = plan.settings;
  if (s.vlan && (*s.vlan < 0 || *s.vlan > 4095))
    return fail(Errc::kInvalid, "vlan " + std::to_string(*s.vlan) + " is out of range 0-4095");
  if (!s.vlan && (s.vlan_qos || !s.vlan_proto.empty()))
    return fail(Errc::kInvalid, "vlanQoS and vlanProto need a vlan");
  if (s.vlan_qos && (*s.vlan_qos < 0 || *s.vlan_qos > 7))
    return fail(Errc::kInvalid, "vlanQoS " + std::to_string(*s.vlan_qos) + " is out of range 0-7");
  PLUMB_TRY(parseProto(s.vlan_proto));
  if (!s.link_state.empty()) PLUMB_TRY(parseLinkState(s.link_state));
  for (const auto& [name, v] :
       {std::pair{"min_tx_rate", s.min_tx_rate}, {"max_tx_rate", s.max_tx_rate}}) {
    if (v && *v < 0) return fail(Errc::kInvalid, std::string(name) + " is negative");
  }
  if (s.min_tx_rate && s.max_tx_rate && *s.max_tx_rate > 0 && *s.min_tx_rate > *s.max_tx_rate) {
    return fail(Errc::kInvalid, "min_tx_rate " + std::to_string(*s.min_tx_rate) +
                                    " is above max_tx_rate " + std::to_string(*s.max_tx_rate));
  }
  return {};
}

void addSteps(const SriovPlan& plan, Context& ctx, std::vector<Step>& steps) {
  auto h = std::make_shared<Held>();
  steps.push_back({"claim " + describeVf(plan),
                   [&ctx, &plan, h]() -> Status { return claimVf(ctx, plan, *h); },
                   [&ctx, h] {
                     // A claim taken over whose VF was not reset keeps the old holder's
                     // original: left to GC, which gives the VF back from it.
                     if (h->took_over_from && !h->reset) return;
                     if (h->claim.id) (void)VfClaims(ctx.store).release(h->claim.id);
                   }});
  // In the store before the first change: a crash from here on leaves what removal needs.
  steps.push_back({"save the VF's state from before plumb",
                   [&ctx, &plan, h]() -> Status { return saveOriginal(ctx, plan, *h); }});
  // One request per setting: a driver that refuses one is named with it.
  for (const auto& planned : settingsOf(plan, ctx.req, nl::VfConfig{})) {
    std::string setting = planned.name;
    steps.push_back({"set the VF's " + setting + " through its PF",
                     [&ctx, h, setting]() -> Status {
                       for (const auto& s : h->settings) {
                         if (s.name != setting) continue;
                         auto st = ctx.kernel.setVf(h->pf_index, h->loc.vf.index, s.config);
                         if (!st.ok()) {
                           return fail(st.error().code, "PF " + h->loc.pf_name + " refused " +
                                                            s.name + " " + s.value + " for " +
                                                            vfName(*h) + ": " + st.error().message);
                         }
                       }
                       return {};
                     },
                     [&ctx, h, setting] {
                       for (const auto& [name, one] : split(h->original.vf)) {
                         if (name == setting)
                           (void)ctx.kernel.setVf(h->pf_index, h->loc.vf.index, one);
                       }
                     }});
  }
  steps.push_back({"leave a VF bound to a userspace driver where it is",
                   [&ctx, h]() -> Status {
                     if (nl::userspaceDriver(h->loc.vf.driver)) ctx.userspace_pci = h->loc.vf.pci;
                     return {};
                   },
                   [&ctx] { ctx.userspace_pci.clear(); }});
  if (!ctx.in_container) {
    // The runtime moves it (Docker: SrcName) and names it; plumb stamps it and sets its MTU
    // and MAC. Its altnames go now: Docker renames it, and gives it back under its old name.
    steps.push_back(
        {"stamp the VF's netdev for the runtime to move",
         [&ctx, h]() -> Status {
           if (!ctx.userspace_pci.empty())
             return fail(Errc::kInvalid, vfName(*h) + " is bound to " + h->loc.vf.driver +
                                             ": it has no netdev for Docker to move");
           PLUMB_ASSIGN(auto dev, ctx.kernel.getLink(Kernel::kHost, h->loc.vf.netdev));
           ctx.tmp_name = dev.name;
           if (!dev.altnames.empty())
             PLUMB_TRY(ctx.kernel.deleteAltnames(Kernel::kHost, dev.index, dev.altnames));
           nl::LinkChange change;
           change.alias = Engine::ownerStamp(ctx.req.key);
           if (ctx.req.mtu > 0) change.mtu = ctx.req.mtu;
           if (ctx.req.mac) change.mac = ctx.req.mac;
           auto st = ctx.kernel.changeLink(Kernel::kHost, dev.index, change);
           if (!st.ok()) {
             // Its altnames back: the step's undo runs only once it succeeded.
             (void)restoreReturnedDevice(ctx.kernel, *h->original.device,
                                         Engine::ownerStamp(ctx.req.key));
           }
           return st;
         },
         [&ctx, h] {
           if (h->original.device)
             (void)restoreReturnedDevice(ctx.kernel, *h->original.device,
                                         Engine::ownerStamp(ctx.req.key));
         }});
    return;
  }
  steps.push_back({"move the VF's netdev into netns " + ctx.req.netns,
                   [&ctx, h]() -> Status {
                     if (!ctx.userspace_pci.empty()) return {};
                     PLUMB_ASSIGN(auto dev, ctx.kernel.getLink(Kernel::kHost, h->loc.vf.netdev));
                     return moveDeviceNamed(ctx, dev, *h->original.device);
                   },
                   [&ctx, h] {
                     if (!ctx.userspace_pci.empty() || !h->original.device) return;
                     auto link = ctx.kernel.getLink(ctx.ctr_ns, ctx.tmp_name);
                     if (!link.ok()) link = ctx.kernel.getLink(ctx.ctr_ns, ctx.req.key.ifname);
                     if (link.ok())
                       (void)restoreDevice(ctx.kernel, ctx.ctr_ns, link->index,
                                           *h->original.device);
                   }});
  // The container side: addressed, up and routed, unless there is no netdev.
  ctx.born_named = true;  // named on arrival: stamped with "set ... up"
  std::vector<Step> container;
  addContainerSteps(ctx, container);
  for (auto& s : container) {
    auto apply = std::move(s.apply);
    s.apply = [&ctx, apply]() -> Status { return ctx.userspace_pci.empty() ? apply() : Status{}; };
    if (s.undo) {
      auto undo = std::move(s.undo);
      s.undo = [&ctx, undo] {
        if (ctx.userspace_pci.empty()) undo();
      };
    }
    steps.push_back(std::move(s));
  }
}

// Given back only while the hold is this attachment's: a DEL that comes after the VF went to
// a newer attachment (its claim has another id) leaves it alone.
Status detach(const SriovPlan&, Detach& d) {
  VfClaims claims(d.store);
  std::optional<VfClaim> claim;
  if (d.record && !d.record->pci.empty()) {
    PLUMB_ASSIGN(claim, claims.find(d.record->pci));
    if (claim && claim->id != d.record->claim) {
      log::get("core")->info("VF {} is held by {} now; {} leaves it as it is", claim->pci,
                             claim->owner.str(), d.key.str());
      return {};
    }
  } else {
    PLUMB_ASSIGN(claim, claims.heldBy(d.key));
  }
  if (!claim) return {};  // nothing held: a second DEL, or an ADD that claimed nothing
  auto st = giveBack(d.kernel, d.store, *claim, d.netns, d.stamp);
  if (!st.ok()) return std::move(st).error().wrap("failed to give VF " + claim->pci + " back");
  return {};
}

namespace {

// The VF the record holds is still its own, and its PF-side settings are as asked where the
// PF reports them.
Status checkHeld(const SriovPlan& plan, const AttachRequest& req, const AttachmentRecord& record,
                 Kernel& k, Store& store) {
  if (record.pci.empty()) return fail(Errc::kInvalid, "the record names no VF");
  PLUMB_ASSIGN(auto claim, VfClaims(store).find(record.pci));
  if (!claim || claim->id != record.claim)
    return fail(Errc::kInvalid, "VF " + record.pci + " is no longer held by " + record.key.str());
  auto wanted = settingsOf(plan, req, nl::VfConfig{});
  if (wanted.empty()) return {};
  PLUMB_ASSIGN(auto pf, k.getLink(Kernel::kHost, claim->pf));
  PLUMB_ASSIGN(auto infos, k.vfSettings(pf.index));
  for (const auto& info : infos) {
    if (info.vf != claim->vf) continue;
    for (const auto& w : settingsOf(plan, req, info.config)) {
      nl::VfConfig have = fieldsOf(w.config, info.config);
      bool reported = false;
      eachField([&](const char*, auto member) {
        reported |= (w.config.*member).has_value() && (info.config.*member).has_value();
      });
      if (reported && !(have == w.config)) {
        return fail(Errc::kInvalid, "VF " + record.pci + "'s " + w.name + " is not " + w.value +
                                        " on PF " + claim->pf);
      }
    }
  }
  return {};
}

}  // namespace

Status check(const SriovPlan& plan, Check& c) {
  return checkHeld(plan, c.req, c.record, c.kernel, c.store);
}

std::optional<Status> checkUserspaceVf(const SriovPlan& plan, const AttachRequest& req,
                                       const AttachmentRecord& record, Kernel& k, Store& store) {
  if (record.pci.empty()) return std::nullopt;
  auto loc = k.sriovVf(record.pci);
  if (!loc.ok() || !nl::userspaceDriver(loc->vf.driver)) return std::nullopt;
  return checkHeld(plan, req, record, k, store);
}

Status sriovReady(Kernel& k, Store& store, const SriovPlan& plan) {
  if (!plan.pci_address.empty()) {
    PLUMB_ASSIGN(auto loc, k.sriovVf(plan.pci_address));
    if (loc.vf.netdev.empty() && !nl::userspaceDriver(loc.vf.driver))
      return fail(Errc::kNotFound, "VF " + plan.pci_address + " has no network device on the host");
    return {};
  }
  PLUMB_ASSIGN(auto pf, k.sriovPf(plan.pf));
  PLUMB_ASSIGN(auto held, VfClaims(store).list());
  int usable = 0;
  for (const auto& vf : pf.vfs) {
    if (vf.netdev.empty()) continue;  // as claimVf picks
    ++usable;
    bool taken =
        std::any_of(held.begin(), held.end(), [&](const VfClaim& c) { return c.pci == vf.pci; });
    if (!taken) return {};
  }
  return fail(Errc::kExhausted, "PF " + plan.pf + " has no free VF (" + std::to_string(usable) +
                                    " usable, all held)");
}

// VFs held for network by attachments that are neither kept nor recorded (a crashed ADD's).
Status sweep(const SriovPlan&, Sweep& s) {
  VfClaims claims(s.store);
  PLUMB_ASSIGN(auto held, claims.list(s.network));
  for (const auto& c : held) {
    bool kept = std::any_of(s.keep.begin(), s.keep.end(),
                            [&](const AttachmentKey& k) { return k.str() == c.owner.str(); });
    if (kept) continue;
    PLUMB_ASSIGN(auto rec, s.store.findAttachment(c.owner));
    if (rec) continue;
    PLUMB_TRY(giveBack(s.kernel, s.store, c, "", Engine::ownerStamp(c.owner)));
  }
  return {};
}

}  // namespace plumb::core::modes
