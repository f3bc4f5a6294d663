#include "netlink/device.h"

#include <filesystem>

namespace plumb::netlink {

namespace fs = std::filesystem;

std::string pciAddressOf(const std::string& sysfs, const std::string& ifname) {
  std::error_code ec;
  auto target = fs::read_symlink(fs::path(sysfs) / "class/net" / ifname / "device", ec);
  if (ec) return "";
  return target.filename().string();
}

std::vector<std::string> netdevsOf(const std::string& sysfs, const std::string& pci) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e :
       fs::directory_iterator(fs::path(sysfs) / "bus/pci/devices" / pci / "net", ec))
    out.push_back(e.path().filename().string());
  return out;
}

std::optional<LinkInfo> pickDevice(const std::vector<LinkInfo>& links, const DeviceRef& ref,
                                   const std::string& sysfs) {
  if (!ref.pci.empty()) {
    for (const auto& name : netdevsOf(sysfs, ref.pci)) {
      for (const auto& l : links) {
        if (l.name == name) return l;
      }
    }
  }
  if (ref.mac) {
    for (const auto& l : links) {
      if (l.perm_mac && *l.perm_mac == *ref.mac) return l;
    }
    for (const auto& l : links) {
      if (l.mac && *l.mac == *ref.mac && l.kind != "bridge") return l;
    }
  }
  if (!ref.name.empty()) {
    for (const auto& l : links) {
      if (l.name == ref.name) return l;
    }
  }
  return std::nullopt;
}

Result<LinkInfo> findDevice(NlSocket& s, const DeviceRef& ref, const std::string& sysfs) {
  PLUMB_ASSIGN(auto links, listLinks(s));
  auto found = pickDevice(links, ref, sysfs);
  if (found) return *found;
  std::string what = !ref.pci.empty() ? "PCI address " + ref.pci
                     : ref.mac        ? "MAC " + ref.mac->str()
                                      : ref.name;
  return fail(Errc::kNotFound, "no network device " + what + " on the host");
}

}  // namespace plumb::netlink
