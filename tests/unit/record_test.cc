// The typed attachment record: every field through the store and back, and records written
// before the fields were typed still read.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include "plugin/core/store.h"
#include "test_dir.h"

namespace plumb::core {
namespace {

AttachmentRecord full() {
  AttachmentRecord r;
  r.key = {"net", "ctr1", "eth1"};
  r.netns = "/run/netns/ctr1";
  r.mode = "passthrough";
  r.via = "vf0";
  r.mac = "02:00:00:00:00:01";
  r.frontend = "cli";
  r.state = "ready";
  r.addresses = {{*IpPrefix::parse("198.18.0.5/24"), *IpAddr::parse("198.18.0.1")},
                 {*IpPrefix::parse("2001:db8::5/64"), std::nullopt}};
  RouteSpec def;
  def.dst = *IpPrefix::parse("0.0.0.0/0");
  def.gateway = *IpAddr::parse("198.18.0.1");
  r.routes = {def};
  DeviceRestore dr;
  dr.name = "eth9";
  dr.mtu = 9000;
  dr.mac = *MacAddr::parse("02:00:00:00:00:09");
  dr.perm_mac = *MacAddr::parse("02:00:00:00:00:0a");
  dr.pci = "0000:03:00.1";
  dr.alias = "uplink";
  dr.up = true;
  r.restore = dr;
  r.helpers = {{"dhcp", "udhcpc", 4242, {"/run/plumb/dhcp/x.log"}}};
  return r;
}

TEST(Record, EveryFieldSurvivesTheStore) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  const AttachmentRecord want = full();
  ASSERT_TRUE((*store)->insertAttachment(want).ok());
  auto got = (*store)->findAttachment(want.key);
  ASSERT_TRUE(got.ok() && got->has_value());
  const AttachmentRecord& r = **got;
  EXPECT_EQ(r.via, "vf0");
  EXPECT_EQ(r.mode, "passthrough");
  ASSERT_EQ(r.addresses.size(), 2u);
  EXPECT_EQ(r.addresses[0].address.str(), "198.18.0.5/24");
  EXPECT_EQ(r.addresses[0].gateway->str(), "198.18.0.1");
  EXPECT_FALSE(r.addresses[1].gateway);
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].gateway->str(), "198.18.0.1");
  ASSERT_TRUE(r.restore);
  EXPECT_EQ(r.restore->name, "eth9");
  EXPECT_EQ(r.restore->mtu, 9000);
  EXPECT_EQ(r.restore->mac->str(), "02:00:00:00:00:09");
  EXPECT_EQ(r.restore->perm_mac->str(), "02:00:00:00:00:0a");
  EXPECT_EQ(r.restore->pci, "0000:03:00.1");
  EXPECT_EQ(r.restore->alias, "uplink");
  EXPECT_TRUE(r.restore->up);
  ASSERT_EQ(r.helpers.size(), 1u);
  EXPECT_EQ(r.helpers[0].kind, "dhcp");
  EXPECT_EQ(r.helpers[0].program, "udhcpc");
  EXPECT_EQ(r.helpers[0].pid, 4242);
  EXPECT_EQ(r.helpers[0].files, std::vector<std::string>{"/run/plumb/dhcp/x.log"});
}

TEST(Record, ReadsTheUntypedDetailOfEarlierVersions) {
  AttachmentRecord r;
  ASSERT_TRUE(r.readDetail(R"({"addresses":[{"address":"198.18.0.7/24","gateway":""}],
      "routes":[{"dst":"0.0.0.0/0","gw":"198.18.0.1"}],
      "dhcp":{"client":"dhclient","pid":77,"files":["/a","/b"]},
      "restore":{"name":"eth3","mtu":1500,"mac":"02:00:00:00:00:03","up":false}})")
                  .ok());
  ASSERT_EQ(r.addresses.size(), 1u);
  EXPECT_EQ(r.addresses[0].address.str(), "198.18.0.7/24");
  EXPECT_FALSE(r.addresses[0].gateway);
  ASSERT_EQ(r.routes.size(), 1u);
  EXPECT_EQ(r.routes[0].gateway->str(), "198.18.0.1");
  ASSERT_EQ(r.helpers.size(), 1u);
  EXPECT_EQ(r.helpers[0].program, "dhclient");
  EXPECT_EQ(r.helpers[0].pid, 77);
  ASSERT_TRUE(r.restore);
  EXPECT_EQ(r.restore->name, "eth3");
  EXPECT_FALSE(r.readDetail("not json").ok());
}

TEST(Record, BytesThatAreNotUtf8NeverThrow) {
  AttachmentRecord r = full();
  r.restore->alias = "bad\xff";
  std::string text;
  EXPECT_NO_THROW(text = r.detailJson());
  AttachmentRecord back;
  EXPECT_TRUE(back.readDetail(text).ok());
}

}  // namespace
}  // namespace plumb::core
