// What front ends ask about the host, answered without handing them netlink or OVSDB: whether
// an interface exists and of what kind, which subnets the host routes, whether a netns is
// there, whether a device can be passed through, whether an Open vSwitch bridge is there, whether
// an SR-IOV PF has a VF free. Read-only: nothing here changes the host.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core {

struct HostLink {
  std::string name;
  std::string kind;  // "bridge", "macvlan", "veth", "openvswitch", ...; "" for a device
  int mtu = 0;
};

// The host's interface of that name; nullopt when there is none.
Result<std::optional<HostLink>> findHostLink(const std::string& name);
// The host's interface with that MAC (its current or its permanent one); nullopt when none.
Result<std::optional<HostLink>> findHostLinkByMac(const MacAddr& mac);
// Subnets the host routes (its LAN, a VPN), default and link-local routes left out: Docker's
// default pools never hand these out.
Result<std::vector<IpPrefix>> routedSubnets(bool v6);
// Whether path is a container's network namespace: Errc::kNoNetns when it is gone, kInvalid
// when it is not a netns or is the one plumb runs in (the host's).
Status checkNetns(const std::string& path);
// Whether the device a passthrough plan names is on the host and fit to move.
Status checkPassthroughDevice(const PassthroughPlan& plan);
// Whether the plan's ovsdb-server answers and has its bridge (ovs mode).
Status checkOvsBridge(const OvsPlan& plan);
// Whether an SR-IOV plan can be met: its VF is in sysfs, or its PF is and has a VF no
// attachment in store holds (CNI STATUS).
Status checkSriov(const SriovPlan& plan, Store& store);
// Whether OVSDB (ovsdb: as OvsPlan::ovsdb) has a bridge by that name; an error when
// ovsdb-server does not answer.
Result<bool> isOvsBridge(const std::string& ovsdb, const std::string& name);

}  // namespace plumb::core
