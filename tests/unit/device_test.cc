// Finding a passed-through device again after the kernel handed it back to the host under
// another name (devN): by its PCI address in a sysfs-shaped tree, or by its permanent MAC.
// Real NICs are not on these machines, so the tree is laid out here.
#include <gtest/gtest.h>

#include <filesystem>

#include "netlink/device.h"
#include "test_dir.h"

namespace plumb::netlink {
namespace {

namespace fs = std::filesystem;

LinkInfo link(int index, const std::string& name, const std::string& mac,
              const std::string& perm = "", const std::string& kind = "") {
  LinkInfo l;
  l.index = index;
  l.name = name;
  l.kind = kind;
  l.mac = *MacAddr::parse(mac);
  if (!perm.empty()) l.perm_mac = *MacAddr::parse(perm);
  return l;
}

class FakeSysfs : public ::testing::Test {
 protected:
  // <root>/bus/pci/devices/<pci>/net/<ifname> and <root>/class/net/<ifname>/device -> the PCI dir
  void nic(const std::string& pci, const std::string& ifname) {
    fs::path dev = fs::path(root()) / "bus/pci/devices" / pci;
    fs::create_directories(dev / "net" / ifname);
    fs::create_directories(fs::path(root()) / "class/net" / ifname);
    fs::create_symlink(dev, fs::path(root()) / "class/net" / ifname / "device");
  }
  std::string root() const { return dir_.path(); }
  plumb::testing::TempDir dir_;
};

TEST_F(FakeSysfs, PciAddressAndNetdevsComeFromTheTree) {
  nic("0000:03:00.0", "enp3s0");
  nic("0000:03:00.1", "enp3s0f1");
  EXPECT_EQ(pciAddressOf(root(), "enp3s0"), "0000:03:00.0");
  EXPECT_EQ(pciAddressOf(root(), "veth0"), "") << "a virtual device has no PCI address";
  EXPECT_EQ(netdevsOf(root(), "0000:03:00.1"), std::vector<std::string>{"enp3s0f1"});
  EXPECT_TRUE(netdevsOf(root(), "0000:09:00.0").empty());
}

TEST_F(FakeSysfs, ADeviceHandedBackAsDevNIsFoundByPciAddress) {
  // The container's netns died; the kernel moved the NIC back and, its old name being taken,
  // called it dev7. The PCI tree says which netdev the function has now.
  nic("0000:03:00.0", "dev7");
  std::vector<LinkInfo> links = {link(1, "lo", "00:00:00:00:00:00"),
                                 link(2, "enp3s0", "02:11:11:11:11:11"),  // someone else's now
                                 link(7, "dev7", "02:00:00:00:00:55")};
  DeviceRef ref{"enp3s0", MacAddr::parse("3c:fd:fe:00:00:01").value(), "0000:03:00.0"};
  auto found = pickDevice(links, ref, root());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "dev7");
}

TEST_F(FakeSysfs, WithoutAPciAddressThePermanentMacDecides) {
  std::vector<LinkInfo> links = {
      link(4, "dev4", "02:00:00:00:00:55", "3c:fd:fe:00:00:01"),
      link(5, "br0", "3c:fd:fe:00:00:01", "", "bridge"),  // a bridge borrowing the MAC
  };
  DeviceRef ref{"", MacAddr::parse("3c:fd:fe:00:00:01").value(), ""};
  auto found = pickDevice(links, ref, root());
  ASSERT_TRUE(found);
  EXPECT_EQ(found->name, "dev4");
  // A current MAC matches too, but never a bridge's.
  DeviceRef by_current{"", MacAddr::parse("02:00:00:00:00:55").value(), ""};
  EXPECT_EQ(pickDevice(links, by_current, root())->name, "dev4");
  std::vector<LinkInfo> only_bridge = {links[1]};
  EXPECT_FALSE(pickDevice(only_bridge, ref, root()));
}

TEST_F(FakeSysfs, NothingMatchesWhenTheDeviceIsGone) {
  std::vector<LinkInfo> links = {link(1, "lo", "00:00:00:00:00:00")};
  DeviceRef ref{"", MacAddr::parse("3c:fd:fe:00:00:01").value(), "0000:03:00.0"};
  EXPECT_FALSE(pickDevice(links, ref, root())) << "a veth stand-in dies with its netns";
}

}  // namespace
}  // namespace plumb::netlink
