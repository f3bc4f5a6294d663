#include "plugin/core/ipam.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "store_dump.h"
#include "test_dir.h"

namespace plumb::core {
namespace {

IpRange range(const char* subnet, const char* start = nullptr, const char* end = nullptr,
              const char* gw = nullptr) {
  IpRange r;
  r.subnet = *IpPrefix::parse(subnet);
  if (start) r.start = *IpAddr::parse(start);
  if (end) r.end = *IpAddr::parse(end);
  if (gw) r.gateway = *IpAddr::parse(gw);
  EXPECT_TRUE(r.normalise().ok());
  return r;
}

class IpamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = Store::open(dir_.path());
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  IpamRequest req(const std::string& cid, std::vector<RangeSet> sets) {
    return {{"net", cid, "eth0"}, std::move(sets), {}};
  }
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

// Issue 15: overlapping subnets in one store (two networks on 198.18.60.0/24 and /25, or one
// config with both as range sets) never hand out one address twice.
TEST_F(IpamTest, AnAddressIsHandedOutOnceWhateverSubnetItIsTakenFrom) {
  Ipam ipam(*store_);
  RangeSet wide{range("198.18.60.0/24")}, narrow{range("198.18.60.0/25")};
  auto a = ipam.allocate({{"net-a", "c1", "eth0"}, {wide}, {}});
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)[0].address.str(), "198.18.60.1/24");
  auto b = ipam.allocate({{"net-b", "c1", "eth0"}, {narrow}, {}});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)[0].address.str(), "198.18.60.2/25") << "198.18.60.1 is net-a's";
  // One config with both ranges as sets: two different addresses.
  auto both = ipam.allocate({{"net-c", "c1", "eth0"}, {wide, narrow}, {}});
  ASSERT_TRUE(both.ok()) << both.error().message;
  ASSERT_EQ(both->size(), 2u);
  EXPECT_NE((*both)[0].address.addr(), (*both)[1].address.addr());
  std::set<std::string> seen = {(*a)[0].address.addr().str(), (*b)[0].address.addr().str()};
  for (const auto& x : *both)
    EXPECT_TRUE(seen.insert(x.address.addr().str()).second) << x.address.str();
  // Asked for by address, or reserved: taken elsewhere is taken.
  auto asked = ipam.allocate({{"net-b", "c2", "eth0"}, {narrow}, {*IpAddr::parse("198.18.60.1")}});
  ASSERT_FALSE(asked.ok());
  EXPECT_EQ(asked.error().code, Errc::kExists) << asked.error().message;
  auto reserved = ipam.reserve(*IpPrefix::parse("198.18.60.0/25"), *IpAddr::parse("198.18.60.1"),
                               {"net-b", "c3", "eth0"});
  ASSERT_FALSE(reserved.ok());
  EXPECT_EQ(reserved.error().code, Errc::kExists);
  // Given back in its own subnet, the address is free in the other one again.
  ASSERT_TRUE(ipam.release({"net-a", "c1", "eth0"}).ok());
  ASSERT_TRUE(ipam.reserve(*IpPrefix::parse("198.18.60.0/25"), *IpAddr::parse("198.18.60.1"),
                           {"net-b", "c3", "eth0"})
                  .ok());
}

TEST_F(IpamTest, AnIpv4AddressAndTheIpv6OneEndingInItsBytesAreTwoAddresses) {
  Ipam ipam(*store_);
  RangeSet v6{range("::c612:0/120")}, v4{range("198.18.0.0/24")};
  auto a = ipam.allocate({{"net6", "c1", "eth0"}, {v6}, {*IpAddr::parse("::c612:5")}});
  ASSERT_TRUE(a.ok()) << a.error().message;
  auto b = ipam.allocate({{"net4", "c1", "eth0"}, {v4}, {*IpAddr::parse("198.18.0.5")}});
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)[0].address.str(), "198.18.0.5/24");
}

TEST_F(IpamTest, AnOverlappingSubnetFullyTakenIsExhaustedNotDuplicated) {
  Ipam ipam(*store_);
  RangeSet small{range("198.18.61.0/29")}, wide{range("198.18.61.0/24")};
  for (int i = 0; i < 6; ++i) {
    auto got = ipam.allocate({{"net-w", "w" + std::to_string(i), "eth0"}, {wide}, {}});
    ASSERT_TRUE(got.ok()) << got.error().message;
  }
  auto none = ipam.allocate({{"net-s", "s1", "eth0"}, {small}, {}});
  ASSERT_FALSE(none.ok()) << (*none)[0].address.str();
  EXPECT_EQ(none.error().code, Errc::kExhausted) << none.error().message;
}

TEST_F(IpamTest, HandsOutAddressesInOrderSkippingTheGateway) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24", nullptr, nullptr, "198.18.0.1")};
  auto a = ipam.allocate(req("a", {set}));
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->size(), 1u);
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.2/24");
  EXPECT_EQ((*a)[0].gateway->str(), "198.18.0.1");
  auto b = ipam.allocate(req("b", {set}));
  ASSERT_TRUE(b.ok()) << b.error().message;
  EXPECT_EQ((*b)[0].address.str(), "198.18.0.3/24");
}

TEST_F(IpamTest, IsIdempotentPerOwner) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24")};
  auto a = ipam.allocate(req("a", {set}));
  auto again = ipam.allocate(req("a", {set}));
  ASSERT_TRUE(a.ok() && again.ok());
  EXPECT_EQ((*a)[0].address, (*again)[0].address);
}

// An address nobody held before is fresh (no neighbour can have cached it: it needs no
// announcement); one given back and handed out again is not, nor is one an owner asks for
// again.
TEST_F(IpamTest, KnowsWhetherAnAddressWasEverHeldBefore) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24", nullptr, nullptr, "198.18.0.1")};
  auto a = ipam.allocate(req("a", {set}));
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_TRUE((*a)[0].fresh);
  auto again = ipam.allocate(req("a", {set}));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE((*again)[0].fresh) << "the owner's own address, asked for again";
  ASSERT_TRUE(ipam.release({"net", "a", "eth0"}).ok());
  auto b = req("b", {set});
  b.requested = {(*a)[0].address.addr()};
  auto got = ipam.allocate(b);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ((*got)[0].address, (*a)[0].address);
  EXPECT_FALSE((*got)[0].fresh) << "a's address changed hands: neighbours may hold a's MAC";
  auto c = ipam.allocate(req("c", {set}));
  ASSERT_TRUE(c.ok());
  EXPECT_TRUE((*c)[0].fresh);
  // Given back one by one (Docker's ReleaseAddress) counts the same.
  auto subnet = *IpPrefix::parse("198.18.0.0/24");
  ASSERT_TRUE(ipam.releaseAddress(subnet, (*c)[0].address.addr()).ok());
  auto d = req("d", {set});
  d.requested = {(*c)[0].address.addr()};
  auto got_d = ipam.allocate(d);
  ASSERT_TRUE(got_d.ok());
  EXPECT_FALSE((*got_d)[0].fresh);
}

TEST_F(IpamTest, HonoursARequestedAddressAndRefusesATakenOne) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24")};
  auto r = req("a", {set});
  r.requested = {*IpAddr::parse("198.18.0.77")};
  auto a = ipam.allocate(r);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.77/24");
  auto r2 = req("b", {set});
  r2.requested = {*IpAddr::parse("198.18.0.77")};
  auto b = ipam.allocate(r2);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.error().code, Errc::kExists);
  auto r3 = req("c", {set});
  r3.requested = {*IpAddr::parse("198.19.0.1")};
  EXPECT_FALSE(ipam.allocate(r3).ok());
}

TEST_F(IpamTest, RunsOutAndRecoversAfterRelease) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/29", "198.18.0.2", "198.18.0.3", "198.18.0.1")};
  ASSERT_TRUE(ipam.allocate(req("a", {set})).ok());
  ASSERT_TRUE(ipam.allocate(req("b", {set})).ok());
  auto c = ipam.allocate(req("c", {set}));
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(c.error().code, Errc::kExhausted);
  EXPECT_NE(c.error().message.find("no free address in range 198.18.0.2-198.18.0.3"),
            std::string::npos)
      << c.error().message;
  ASSERT_TRUE(ipam.release({"net", "a", "eth0"}).ok());
  auto c2 = ipam.allocate(req("c", {set}));
  ASSERT_TRUE(c2.ok());
  EXPECT_EQ((*c2)[0].address.str(), "198.18.0.2/29");
}

TEST_F(IpamTest, ARequestedAddressMayFallInAnyRangeOfItsSet) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24", "198.18.0.10", "198.18.0.20"),
               range("198.18.0.0/24", "198.18.0.50", "198.18.0.60")};
  auto r = req("a", {set});
  r.requested = {*IpAddr::parse("198.18.0.55")};
  auto a = ipam.allocate(r);
  ASSERT_TRUE(a.ok()) << a.error().message;
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.55/24");
  auto r2 = req("b", {set});
  r2.requested = {*IpAddr::parse("198.18.0.30")};
  EXPECT_FALSE(ipam.allocate(r2).ok());
}

TEST_F(IpamTest, AGatewayInsideTheRangeIsSkippedNotAllocated) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/29", "198.18.0.2", "198.18.0.4", "198.18.0.3")};
  auto a = ipam.allocate(req("a", {set}));
  auto b = ipam.allocate(req("b", {set}));
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.2/29");
  EXPECT_EQ((*b)[0].address.str(), "198.18.0.4/29");
  EXPECT_FALSE(ipam.allocate(req("c", {set})).ok()) << "only the gateway is left";
  auto gw = req("d", {set});
  gw.requested = {*IpAddr::parse("198.18.0.3")};
  EXPECT_FALSE(ipam.allocate(gw).ok());
}

TEST_F(IpamTest, ReleasingAFreeAddressChangesNothing) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24")};
  ASSERT_TRUE(ipam.allocate(req("a", {set})).ok());
  auto subnet = *IpPrefix::parse("198.18.0.0/24");
  // Every table as it is after the allocation: releasing free addresses must not widen the
  // free spans nor touch a's address.
  std::string before = plumb::testing::storeDumpOf(dir_.path() + "/plumb.db");
  ASSERT_NE(before.find("|net|a|eth0|"), std::string::npos) << before;
  ASSERT_TRUE(
      ipam.releaseAddress(subnet, *IpAddr::parse("198.18.0.2")).ok());  // the first of a span
  ASSERT_TRUE(ipam.releaseAddress(subnet, *IpAddr::parse("198.18.0.77")).ok());  // inside a span
  EXPECT_EQ(plumb::testing::storeDumpOf(dir_.path() + "/plumb.db"), before);
  // And the next three allocations are three new addresses, none of them a's.
  std::set<std::string> seen = {"198.18.0.1/24"};
  for (int i = 0; i < 3; ++i) {
    auto next = ipam.allocate(req("n" + std::to_string(i), {set}));
    ASSERT_TRUE(next.ok()) << next.error().message;
    EXPECT_TRUE(seen.insert((*next)[0].address.str()).second) << (*next)[0].address.str();
  }
}

TEST_F(IpamTest, DualStackTakesOneFromEachSet) {
  Ipam ipam(*store_);
  auto a = ipam.allocate(req("a", {{range("198.18.0.0/24")}, {range("2001:db8::/64")}}));
  ASSERT_TRUE(a.ok()) << a.error().message;
  ASSERT_EQ(a->size(), 2u);
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.1/24");
  EXPECT_EQ((*a)[1].address.str(), "2001:db8::1/64");
}

TEST_F(IpamTest, ReleaseMergesFreeSpaceAndCursorWrapsRoundRobin) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/28")};  // .1 - .14
  for (int i = 0; i < 14; ++i) ASSERT_TRUE(ipam.allocate(req("c" + std::to_string(i), {set})).ok());
  for (int i = 0; i < 14; ++i)
    ASSERT_TRUE(ipam.release({"net", "c" + std::to_string(i), "eth0"}).ok());
  // One span again: the next allocation continues after the cursor and wraps.
  auto a = ipam.allocate(req("x", {set}));
  ASSERT_TRUE(a.ok());
  EXPECT_EQ((*a)[0].address.str(), "198.18.0.1/28");
  int spans = 0;
  ASSERT_TRUE(store_
                  ->read([&](Db& db) -> Status {
                    auto q = db.prepare("SELECT count(*) FROM ip_free");
                    if (!q.ok()) return std::move(q).error();
                    auto row = q->step();
                    spans = static_cast<int>(q->integer(0));
                    return {};
                  })
                  .ok());
  EXPECT_EQ(spans, 1);
}

TEST_F(IpamTest, SubnetIsSharedAcrossNetworks) {
  Ipam ipam(*store_);
  RangeSet set{range("198.18.0.0/24")};
  auto a = ipam.allocate({{"docker-net", "a", "eth0"}, {set}, {}});
  auto b = ipam.allocate({{"cni-net", "b", "eth0"}, {set}, {}});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE((*a)[0].address, (*b)[0].address);
}

TEST_F(IpamTest, ConcurrentAllocationsFromTwoConnectionsNeverCollide) {
  RangeSet set{range("198.18.0.0/24")};
  std::vector<std::string> got[2];
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&, t] {
      auto s = Store::open(dir_.path());  // its own connection, as another process would have
      ASSERT_TRUE(s.ok());
      Ipam ipam(**s);
      for (int i = 0; i < 50; ++i) {
        auto a = ipam.allocate(
            {{"net", "t" + std::to_string(t) + "-" + std::to_string(i), "eth0"}, {set}, {}});
        ASSERT_TRUE(a.ok()) << a.error().message;
        got[t].push_back((*a)[0].address.str());
      }
    });
  }
  for (auto& th : threads) th.join();
  std::set<std::string> all(got[0].begin(), got[0].end());
  all.insert(got[1].begin(), got[1].end());
  EXPECT_EQ(all.size(), 100u);
}

TEST(IpRange, NormaliseChecksBounds) {
  IpRange r;
  r.subnet = *IpPrefix::parse("198.18.0.0/24");
  r.start = *IpAddr::parse("198.18.1.5");
  EXPECT_FALSE(r.normalise().ok());
  IpRange r2;
  r2.subnet = *IpPrefix::parse("198.18.0.0/24");
  r2.start = *IpAddr::parse("198.18.0.9");
  r2.end = *IpAddr::parse("198.18.0.5");
  EXPECT_FALSE(r2.normalise().ok());
}

// Issue 15, item 16: what a subnet and its gateway cannot be.
TEST(IpRange, NormaliseRefusesWholeSpaceSingleAddressAndEdgeGateways) {
  struct Case {
    const char* subnet;
    const char* gateway;
    const char* message;
  };
  for (const auto& c : {
           Case{"0.0.0.0/0", nullptr, "is every address there is"},
           Case{"::/0", nullptr, "is every address there is"},
           Case{"198.18.0.7/32", nullptr, "holds one address"},
           Case{"2001:db8::1/128", nullptr, "holds one address"},
           Case{"198.18.0.0/24", "198.18.0.0", "is the network address of 198.18.0.0/24"},
           Case{"198.18.0.0/24", "198.18.0.255", "is the broadcast address of 198.18.0.0/24"},
       }) {
    IpRange r;
    r.subnet = *IpPrefix::parse(c.subnet);
    if (c.gateway) r.gateway = *IpAddr::parse(c.gateway);
    auto st = r.normalise();
    ASSERT_FALSE(st.ok()) << c.subnet;
    EXPECT_EQ(st.error().code, Errc::kInvalid);
    EXPECT_NE(st.error().message.find(c.message), std::string::npos) << st.error().message;
  }
  // Still fine: a /31 (two addresses, RFC 3021) and a gateway at either usable end.
  for (const char* gw : {"198.18.0.1", "198.18.0.254"}) {
    IpRange r;
    r.subnet = *IpPrefix::parse("198.18.0.0/24");
    r.gateway = *IpAddr::parse(gw);
    EXPECT_TRUE(r.normalise().ok()) << gw;
  }
  IpRange p2p;
  p2p.subnet = *IpPrefix::parse("198.18.0.0/31");
  EXPECT_TRUE(p2p.normalise().ok());
}

}  // namespace
}  // namespace plumb::core
