// Request bytes against golden copies, and replies parsed back.
#include <gtest/gtest.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <string>
#include <vector>

#include "netlink/addr.h"
#include "netlink/link.h"
#include "netlink/route.h"
#include "netlink/rule.h"
#include "netlink/socket.h"

namespace plumb::netlink {
namespace {

std::vector<uint8_t> bytes(const Message& m) { return {m.data(), m.data() + m.size()}; }

TEST(NetlinkMessage, AddIpv4AddressMatchesGolden) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  buildAddAddress(m, 7, *IpPrefix::parse("198.18.0.5/24"), {});
  // nlmsghdr(16) ifaddrmsg(8) IFA_LOCAL(8) IFA_ADDRESS(8) IFA_BROADCAST(8)
  // clang-format off
  const std::vector<uint8_t> golden = {
      48, 0, 0, 0, RTM_NEWADDR, 0, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // len, type, CREATE|EXCL
      AF_INET, 24, 0, RT_SCOPE_UNIVERSE, 7, 0, 0, 0,                   // ifaddrmsg
      8, 0, IFA_LOCAL, 0, 198, 18, 0, 5,
      8, 0, IFA_ADDRESS, 0, 198, 18, 0, 5,
      8, 0, IFA_BROADCAST, 0, 198, 18, 0, 255,
  };
  // clang-format on
  EXPECT_EQ(bytes(m), golden);
}

TEST(NetlinkMessage, Ipv6AddressAsksForNoDad) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL);
  buildAddAddress(m, 3, *IpPrefix::parse("2001:db8::5/64"), {});
  const auto* nlh = m.hdr();
  bool nodad = false;
  forEachAttr(nlh, sizeof(ifaddrmsg), [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == IFA_FLAGS) nodad = (mnl_attr_get_u32(a) & IFA_F_NODAD) != 0;
    EXPECT_NE(mnl_attr_get_type(a), IFA_BROADCAST);
  });
  EXPECT_TRUE(nodad);
}

TEST(NetlinkMessage, VethPeerNestCarriesNameAndMtu) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  VethSpec spec;
  spec.name = "plm01";
  spec.peer_name = "plt01";
  spec.mtu = 1400;
  buildCreateVeth(m, spec);
  // The layout iproute2 sends for `ip link add plm01 mtu 1400 type veth peer name plt01 mtu 1400`.
  // clang-format off
  const std::vector<uint8_t> golden = {
      112, 0, 0, 0, RTM_NEWLINK, 0, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // nlmsghdr, CREATE|EXCL
      AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,            // ifinfomsg
      10, 0, IFLA_IFNAME, 0, 'p', 'l', 'm', '0', '1', 0, 0, 0,          // "plm01"
      8, 0, IFLA_MTU, 0, 0x78, 0x05, 0, 0,                              // 1400
      60, 0, IFLA_LINKINFO, 0x80,                                       // nested
      9, 0, IFLA_INFO_KIND, 0, 'v', 'e', 't', 'h', 0, 0, 0, 0,          //   "veth"
      44, 0, IFLA_INFO_DATA, 0x80,                                      //   nested
      40, 0, 1 /* VETH_INFO_PEER */, 0x80,                              //     nested
      AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,           //       ifinfomsg
      10, 0, IFLA_IFNAME, 0, 'p', 'l', 't', '0', '1', 0, 0, 0,          //       "plt01"
      8, 0, IFLA_MTU, 0, 0x78, 0x05, 0, 0,                              //       1400
  };
  // clang-format on
  EXPECT_EQ(bytes(m), golden);
  // Parse back: the outer name and kind are where the kernel looks for them.
  std::string kind, name;
  forEachAttr(m.hdr(), sizeof(ifinfomsg), [&](const nlattr* a) {
    if (mnl_attr_get_type(a) == IFLA_IFNAME) name = mnl_attr_get_str(a);
    if (mnl_attr_get_type(a) == IFLA_LINKINFO) {
      forEachNested(a, [&](const nlattr* in) {
        if (mnl_attr_get_type(in) == IFLA_INFO_KIND) kind = mnl_attr_get_str(in);
      });
    }
  });
  EXPECT_EQ(name, "plm01");
  EXPECT_EQ(kind, "veth");
}

TEST(NetlinkMessage, DefaultRouteViaGateway) {
  Message m(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL);
  Route r;
  r.dst = *IpPrefix::parse("0.0.0.0/0");
  r.gateway = *IpAddr::parse("198.18.0.1");
  r.oif = 4;
  buildRoute(m, r);
  // clang-format off
  const std::vector<uint8_t> golden = {
      44, 0, 0, 0, RTM_NEWROUTE, 0, 0x00, 0x06, 0, 0, 0, 0, 0, 0, 0, 0,  // nlmsghdr
      AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0, 0, 0, 0,
      8, 0, RTA_GATEWAY, 0, 198, 18, 0, 1,
      8, 0, RTA_OIF, 0, 4, 0, 0, 0,
  };
  // clang-format on
  EXPECT_EQ(bytes(m), golden);
}

TEST(NetlinkMessage, ParsesALinkReply) {
  // A reply shaped as the kernel sends it: name, MTU, MAC, master, linkinfo kind macvlan + mode.
  Message m(RTM_NEWLINK, 0);
  auto* ifi = m.putHeader<ifinfomsg>();
  ifi->ifi_index = 12;
  ifi->ifi_flags = 1;  // IFF_UP
  m.putStr(IFLA_IFNAME, "eth1");
  m.putU32(IFLA_MTU, 9000);
  uint8_t mac[6] = {2, 0, 0, 0, 0, 9};
  m.put(IFLA_ADDRESS, 6, mac);
  m.putU32(IFLA_MASTER, 3);
  nlattr* li = m.nestStart(IFLA_LINKINFO);
  m.putStr(IFLA_INFO_KIND, "macvlan");
  nlattr* data = m.nestStart(IFLA_INFO_DATA);
  m.putU32(IFLA_MACVLAN_MODE, MACVLAN_MODE_VEPA);
  m.nestEnd(data);
  m.nestEnd(li);
  auto info = parseLink(m.hdr());
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->index, 12);
  EXPECT_EQ(info->name, "eth1");
  EXPECT_EQ(info->mtu, 9000);
  EXPECT_EQ(info->mac->str(), "02:00:00:00:00:09");
  EXPECT_EQ(info->master, 3);
  EXPECT_EQ(info->kind, "macvlan");
  EXPECT_EQ(info->macvlan_mode, static_cast<uint32_t>(MacvlanMode::kVepa));
  EXPECT_TRUE(info->up());
}

// Replies are read only as far as they go (the fuzzer's netlink_reply target walks every
// reader over any bytes): a message too short for its family header, a prefix length past the
// address, a name without its NUL, an error too short for its header are all refused.
TEST(NetlinkMessage, RepliesAreReadOnlyAsFarAsTheyGo) {
  for (int type :
       {int{RTM_NEWLINK}, int{RTM_NEWADDR}, int{RTM_NEWROUTE}, int{RTM_NEWRULE}, NLMSG_ERROR}) {
    SCOPED_TRACE(type);
    Message m(static_cast<uint16_t>(type), NLM_F_ACK_TLVS);
    m.putU8(1, 0);
    m.hdr()->nlmsg_len = sizeof(nlmsghdr) + 2;  // cut to 2 bytes: less than any family header
    EXPECT_FALSE(parseLink(m.hdr()).ok());
    EXPECT_FALSE(parseAddr(m.hdr()));
    EXPECT_FALSE(parseRoute(m.hdr()));
    EXPECT_FALSE(parseRule(m.hdr()));
    EXPECT_EQ(extAckMessage(m.hdr()), "");
  }
  Message a(RTM_NEWADDR, 0);
  auto* ifa = a.putHeader<ifaddrmsg>();
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 33;
  uint8_t v4[4] = {198, 18, 0, 5};
  a.put(IFA_LOCAL, 4, v4);
  EXPECT_FALSE(parseAddr(a.hdr())) << "a /33 is no IPv4 prefix";
  ifa->ifa_prefixlen = 24;
  ASSERT_TRUE(parseAddr(a.hdr()));
  EXPECT_EQ(parseAddr(a.hdr())->prefix.str(), "198.18.0.5/24");

  Message r(RTM_NEWRULE, 0);
  auto* fh = r.putHeader<fib_rule_hdr>();
  fh->family = AF_INET;
  char unterminated[4] = {'e', 't', 'h', '0'};
  r.put(FRA_IIFNAME, 4, unterminated);
  r.putStr(FRA_OIFNAME, "eth1");
  auto rule = parseRule(r.hdr());
  ASSERT_TRUE(rule);
  EXPECT_EQ(rule->iif, "") << "a name without its NUL is not read";
  EXPECT_EQ(rule->oif, "eth1");

  // An attribute that runs past the message's end, into the bytes its length would be aligned
  // to, is not read.
  Message cut(RTM_NEWRULE, 0);
  cut.putHeader<fib_rule_hdr>()->family = AF_INET;
  cut.put(FRA_SRC, 4, v4);
  ASSERT_TRUE(parseRule(cut.hdr()));
  EXPECT_TRUE(parseRule(cut.hdr())->from);
  cut.hdr()->nlmsg_len -= 2;
  ASSERT_TRUE(parseRule(cut.hdr()));
  EXPECT_FALSE(parseRule(cut.hdr())->from);

  // A length past 2 GiB is no message (libmnl's own check reads it as negative, and passes it).
  Message big(RTM_NEWLINK, 0);
  big.hdr()->nlmsg_len = 0x80000010u;
  EXPECT_FALSE(messageOk(big.hdr(), static_cast<int>(big.size())));
  EXPECT_TRUE(messageOk(a.hdr(), static_cast<int>(a.size())));

  // An error whose echoed request claims to be shorter than a header.
  Message e(NLMSG_ERROR, NLM_F_ACK_TLVS);
  auto* err = e.putHeader<nlmsgerr>();
  err->error = -EEXIST;
  err->msg.nlmsg_len = 4;
  e.putStr(NLMSGERR_ATTR_MSG, "File exists");
  EXPECT_EQ(extAckMessage(e.hdr()), "");
  err->msg.nlmsg_len = sizeof(nlmsghdr);
  EXPECT_EQ(extAckMessage(e.hdr()), "File exists");
}

}  // namespace
}  // namespace plumb::netlink
