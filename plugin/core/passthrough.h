// The passthrough mode: a whole device (a NIC, or a veth end standing in for one) moved into
// the container and given back on removal with its name, MTU, MAC and alias. Renames happen in
// a temporary namespace, where neither the host's nor the container's names can collide.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "base/result.h"
#include "netlink/device.h"
#include "netlink/netns.h"
#include "netlink/socket.h"
#include "plugin/core/types.h"

namespace plumb::core {

// The device plan names, checked as fit to move: not lo, not a bridge or a bridge's port.
Result<netlink::LinkInfo> findPassthroughDevice(netlink::NlSocket& host,
                                                const PassthroughPlan& plan,
                                                const std::string& sysfs = "/sys");

// What removal restores, kept in the attachment record: name, mtu, mac, perm_mac, pci, alias.
nlohmann::json restoreInfo(const netlink::LinkInfo& dev, const std::string& sysfs = "/sys");

struct DeviceSettings {
  std::string name;  // its name once in the target
  int mtu = 0;       // 0: unchanged
  std::optional<MacAddr> mac;
  std::string alias;
};

// Moves dev (in from's netns) into target, through a temporary namespace, with settings. On a
// failure half-way the device goes back to where it was, as it was.
Status moveDevice(netlink::NlSocket& from, const netlink::LinkInfo& dev,
                  const netlink::Netns& target, const DeviceSettings& settings,
                  const nlohmann::json& restore);

// Gives the device at index (in where's netns) back to the host as restore describes.
Status restoreDevice(netlink::NlSocket& where, int index, const nlohmann::json& restore);

// After the container's netns died: the kernel hands a physical device back to the host,
// possibly renamed devN. Finds it (PCI address, permanent MAC) and restores it; a device that
// is gone (a veth stand-in dies with the netns) is success.
Status restoreReturnedDevice(netlink::NlSocket& host, const nlohmann::json& restore,
                             const std::string& stamp, const std::string& sysfs = "/sys");

}  // namespace plumb::core
