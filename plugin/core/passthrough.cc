#include "plugin/core/passthrough.h"

#include "base/log.h"
#include "netlink/link.h"

namespace plumb::core {

namespace nl = plumb::netlink;
using json = nlohmann::json;

namespace {

struct Restore {
  std::string name;
  int mtu = 0;
  std::optional<MacAddr> mac;
  std::optional<MacAddr> perm_mac;
  std::string pci;
  std::string alias;
  bool up = false;
};

Restore parseRestore(const json& j) {
  Restore r;
  if (!j.is_object()) return r;
  r.name = j.value("name", "");
  r.mtu = j.value("mtu", 0);
  r.pci = j.value("pci", "");
  r.alias = j.value("alias", "");
  r.up = j.value("up", false);
  for (auto [key, out] : {std::pair{"mac", &r.mac}, std::pair{"perm_mac", &r.perm_mac}}) {
    auto m = MacAddr::parse(j.value(key, ""));
    if (m.ok()) *out = *m;
  }
  return r;
}

// In a fresh temporary namespace: the device renamed and set, then moved to target.
Status throughTemporary(nl::NlSocket& from, int index, const nl::Netns& target,
                        const DeviceSettings& s) {
  nl::LinkChange down;
  down.up = false;
  PLUMB_TRY(nl::changeLink(from, index, down));
  PLUMB_ASSIGN(auto temp, nl::Netns::createTemporary());
  nl::LinkChange move;
  move.netns = &temp;
  PLUMB_TRY(nl::changeLink(from, index, move));
  PLUMB_ASSIGN(auto tsock, nl::NlSocket::openIn(temp));
  PLUMB_ASSIGN(auto links, nl::listLinks(tsock));
  int tidx = 0;
  for (const auto& l : links) {
    if (l.name != "lo") tidx = l.index;
  }
  auto back = [&](const Error& e) -> Status {
    // Whatever failed, the device leaves the temporary namespace (which dies with it).
    nl::LinkChange home;
    home.netns = &target;
    (void)nl::changeLink(tsock, tidx, home);
    return fail(e);
  };
  nl::LinkChange set;
  set.name = s.name;
  if (s.mtu > 0) set.mtu = s.mtu;
  if (s.mac) set.mac = s.mac;
  set.alias = s.alias;
  auto st = nl::changeLink(tsock, tidx, set);
  if (!st.ok()) return back(st.error());
  nl::LinkChange go;
  go.netns = &target;
  return nl::changeLink(tsock, tidx, go);
}

}  // namespace

Result<nl::LinkInfo> findPassthroughDevice(nl::NlSocket& host, const PassthroughPlan& plan,
                                           const std::string& sysfs) {
  PLUMB_ASSIGN(auto dev, nl::findDevice(host, {plan.device, plan.hwaddr, plan.pci_address}, sysfs));
  if (dev.name == "lo") return fail(Errc::kInvalid, "lo cannot be moved into a container");
  if (dev.kind == "bridge")
    return fail(Errc::kInvalid, dev.name + " is a bridge; only a device can be moved");
  if (dev.master)
    return fail(Errc::kInvalid, dev.name + " is a bridge port; detach it from its bridge first");
  return dev;
}

json restoreInfo(const nl::LinkInfo& dev, const std::string& sysfs) {
  return {{"name", dev.name},
          {"mtu", dev.mtu},
          {"mac", dev.mac ? dev.mac->str() : ""},
          {"perm_mac", dev.perm_mac ? dev.perm_mac->str() : ""},
          {"pci", nl::pciAddressOf(sysfs, dev.name)},
          {"alias", dev.alias},
          {"up", dev.up()}};
}

Status moveDevice(nl::NlSocket& from, const nl::LinkInfo& dev, const nl::Netns& target,
                  const DeviceSettings& settings, const json& restore) {
  auto st = throughTemporary(from, dev.index, target, settings);
  if (!st.ok()) {
    // It may be in target already, or back where it was under its new name: put it right.
    (void)restoreReturnedDevice(from, restore, settings.alias);
    return std::move(st).error().wrap("failed to move " + dev.name);
  }
  return {};
}

Status restoreDevice(nl::NlSocket& where, int index, const json& restore) {
  Restore r = parseRestore(restore);
  if (r.name.empty()) return fail(Errc::kInvalid, "no record of the device's original name");
  PLUMB_ASSIGN(auto host, nl::Netns::current());
  DeviceSettings s{r.name, r.mtu, r.mac, r.alias};
  auto st = throughTemporary(where, index, host, s);
  if (!st.ok()) return std::move(st).error().wrap("failed to give " + r.name + " back to the host");
  if (r.up) {
    PLUMB_ASSIGN(auto sock, nl::NlSocket::open());
    PLUMB_ASSIGN(auto back, nl::getLink(sock, r.name));
    nl::LinkChange up;
    up.up = true;
    PLUMB_TRY(nl::changeLink(sock, back.index, up));
  }
  return {};
}

Status restoreReturnedDevice(nl::NlSocket& host, const json& restore, const std::string& stamp,
                             const std::string& sysfs) {
  Restore r = parseRestore(restore);
  PLUMB_ASSIGN(auto links, nl::listLinks(host));
  nl::DeviceRef ref{"", r.perm_mac, r.pci};
  auto found = nl::pickDevice(links, ref, sysfs);
  if (!found) {
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
    PLUMB_TRY(nl::changeLink(host, found->index, down));
    change.name = r.name;
  }
  if (r.mtu > 0 && found->mtu != r.mtu) change.mtu = r.mtu;
  if (r.mac && found->mac != r.mac) change.mac = r.mac;
  change.alias = r.alias;
  if (r.up) change.up = true;
  auto st = nl::changeLink(host, found->index, change);
  if (!st.ok()) return std::move(st).error().wrap("failed to restore " + r.name);
  log::get("core")->info("{} restored on the host (was {})", r.name, found->name);
  return {};
}

}  // namespace plumb::core
