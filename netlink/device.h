// Finding a whole device (a NIC to move into a container) by name, MAC or PCI address, and
// finding it again when the kernel has handed it back to the host, possibly renamed devN.
// sysfs is a parameter so that tests can lay out a fake PCI tree.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/link.h"
#include "netlink/socket.h"

namespace plumb::netlink {

struct DeviceRef {
  std::string name;
  std::optional<MacAddr> mac;  // current or permanent
  std::string pci;             // "0000:03:00.0"
};

// The PCI address of a network device (from <sysfs>/class/net/<ifname>/device), or "".
std::string pciAddressOf(const std::string& sysfs, const std::string& ifname);
// The network devices of a PCI function (<sysfs>/bus/pci/devices/<pci>/net/*).
std::vector<std::string> netdevsOf(const std::string& sysfs, const std::string& pci);

// Which of links is the device ref names: by PCI address first (stable across renames), then
// by permanent or current MAC, then by name.
std::optional<LinkInfo> pickDevice(const std::vector<LinkInfo>& links, const DeviceRef& ref,
                                   const std::string& sysfs);

// The device in the socket's namespace.
Result<LinkInfo> findDevice(NlSocket& s, const DeviceRef& ref, const std::string& sysfs = "/sys");

}  // namespace plumb::netlink
