// The netlink layer on its own, read back through netlink.
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "harness.h"
#include "netlink/addr.h"
#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/sysctl.h"

namespace plumb::testing {
namespace {

namespace nl = plumb::netlink;

class Netlink : public NetnsTest {};

TEST_F(Netlink, VethPeerIsBornInTheTargetNetnsAndReadsBack) {
  auto path = makeNetns("c1");
  auto host = nl::Netns::fromName(host_);
  auto target = nl::Netns::fromPath(path);
  ASSERT_TRUE(host.ok() && target.ok());
  auto hs = nl::NlSocket::openIn(*host);
  auto ts = nl::NlSocket::openIn(*target);
  ASSERT_TRUE(hs.ok() && ts.ok());
  nl::VethSpec spec;
  spec.name = "vh0";
  spec.peer_name = "vc0";
  spec.peer_netns = &*target;
  spec.mtu = 1450;
  ASSERT_TRUE(nl::createVeth(*hs, spec).ok());
  auto dup = nl::createVeth(*hs, spec);
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kExists);
  auto peer = nl::getLink(*ts, "vc0");
  ASSERT_TRUE(peer.ok()) << peer.error().message;
  EXPECT_EQ(peer->kind, "veth");
  EXPECT_EQ(peer->mtu, 1450);
  EXPECT_EQ(in(nsName("c1"), "ip -o link show vc0").rc, 0);
  EXPECT_EQ(inHost("ip -o link show vc0").rc, 1);

  nl::LinkChange c;
  c.name = "eth7";
  c.alias = "plumb test";
  c.up = true;
  ASSERT_TRUE(nl::changeLink(*ts, peer->index, c).ok());
  auto renamed = nl::getLink(*ts, peer->index);
  EXPECT_EQ(renamed->name, "eth7");
  EXPECT_EQ(renamed->alias, "plumb test");

  auto p4 = *IpPrefix::parse("198.18.30.2/24");
  auto p6 = *IpPrefix::parse("2001:db8:30::2/64");
  ASSERT_TRUE(nl::addAddress(*ts, peer->index, p4).ok());
  ASSERT_TRUE(nl::addAddress(*ts, peer->index, p6).ok());
  auto again = nl::addAddress(*ts, peer->index, p4);
  EXPECT_EQ(again.error().code, Errc::kExists);
  auto addrs = nl::listAddresses(*ts, AF_UNSPEC, peer->index);
  ASSERT_TRUE(addrs.ok());
  int seen = 0;
  for (const auto& a : *addrs) seen += (a.prefix == p4 || a.prefix == p6);
  EXPECT_EQ(seen, 2);

  nl::Route r;
  r.dst = *IpPrefix::parse("198.18.31.0/24");
  r.gateway = *IpAddr::parse("198.18.30.1");
  r.oif = peer->index;
  r.metric = 77;
  r.mtu = 1300;
  ASSERT_TRUE(nl::addRoute(*ts, r).ok());
  auto routes = nl::listRoutes(*ts, AF_INET);
  ASSERT_TRUE(routes.ok());
  bool found = false;
  for (const auto& x : *routes) {
    if (x.dst == r.dst) {
      found = true;
      EXPECT_EQ(x.gateway, r.gateway);
      EXPECT_EQ(x.metric, 77u);
      EXPECT_EQ(x.mtu, 1300u);
    }
  }
  EXPECT_TRUE(found);
  ASSERT_TRUE(nl::deleteRoute(*ts, r).ok());
  EXPECT_EQ(nl::deleteRoute(*ts, r).error().code, Errc::kNotFound);
  EXPECT_EQ(nl::deleteAddress(*ts, peer->index, p4).ok(), true);
  EXPECT_EQ(nl::deleteAddress(*ts, peer->index, p4).error().code, Errc::kNotFound);

  ASSERT_TRUE(nl::writeSysctl(&*target, "net.ipv4.conf.eth7.rp_filter", "2").ok());
  EXPECT_EQ(nl::readSysctl(&*target, "net.ipv4.conf.eth7.rp_filter").value(), "2");
  EXPECT_EQ(in(nsName("c1"), "cat /proc/sys/net/ipv4/conf/eth7/rp_filter").out, "2\n");

  auto host_end = nl::getLink(*hs, "vh0");
  ASSERT_TRUE(nl::deleteLink(*hs, host_end->index).ok());
  EXPECT_EQ(nl::getLink(*ts, "eth7").error().code, Errc::kNotFound) << "the peer went with it";
}

TEST_F(Netlink, KernelErrorsCarryTheExtendedAck) {
  auto host = nl::Netns::fromName(host_);
  auto hs = nl::NlSocket::openIn(*host);
  ASSERT_TRUE(hs.ok());
  nl::VethSpec veth;
  veth.name = "ea0";
  veth.peer_name = "ea1";
  ASSERT_TRUE(nl::createVeth(*hs, veth).ok());
  auto ea0 = nl::getLink(*hs, "ea0");
  nl::LinkChange too_big;
  too_big.mtu = 70000;
  auto refused = nl::changeLink(*hs, ea0->index, too_big);
  ASSERT_FALSE(refused.ok());
  // The kernel's own words (NLMSGERR_ATTR_MSG), not just errno's.
  EXPECT_NE(refused.error().message.find("mtu greater than device maximum"), std::string::npos)
      << refused.error().message;
  nl::MacvlanSpec spec;
  spec.name = "mv0";
  spec.parent_index = 99999;  // no such link
  auto st = nl::createMacvlan(*hs, spec);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("failed to create macvlan mv0"), std::string::npos)
      << st.error().message;
  auto missing = nl::getLink(*hs, "nosuch0");
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
}

TEST_F(Netlink, ListsManyLinksInOneDump) {
  ASSERT_EQ(inHost("for i in $(seq 1 300); do echo \"link add lk$i type veth peer name lp$i\"; "
                   "done | ip -batch -")
                .rc,
            0);
  auto host = nl::Netns::fromName(host_);
  auto hs = nl::NlSocket::openIn(*host);
  auto links = nl::listLinks(*hs);
  ASSERT_TRUE(links.ok());
  EXPECT_EQ(links->size(), 601u);  // lo + 300 pairs
}

}  // namespace
}  // namespace plumb::testing
