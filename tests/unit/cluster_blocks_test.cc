// Address blocks claimed in etcd (plugin/core/cluster_blocks.h), against the fake etcd that
// tests/unit/kv_contract.h holds to a real one's behaviour: claims racing across hosts, a
// lease that lapses, the reclaim rule, renewal while etcd is away, bad specs.
#include "plugin/core/cluster_blocks.h"

#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "fake_etcd.h"

namespace plumb::core {
namespace {

using Clock = std::chrono::steady_clock;

ClusterSpec spec(const std::string& host) {
  ClusterSpec s;
  s.host = host;
  return s;
}

IpPrefix net(const char* text) { return *IpPrefix::parse(text); }

TEST(ClusterBlocks, TwoHostsRacingClaimEachBlockOnce) {
  testing::FakeEtcd etcd;
  const auto subnet = net("198.18.0.0/20");  // 64 blocks of /26
  std::mutex mu;
  std::multiset<std::string> claimed;
  std::map<std::string, int> exhausted;
  auto host = [&](const std::string& name) {
    HostLease lease(etcd, spec(name));
    BlockClaims blocks(etcd, spec(name), subnet, 26);
    for (int i = 0; i < 40; ++i) {
      auto id = lease.current();
      ASSERT_TRUE(id.ok()) << id.error().message;
      auto b = blocks.claim(*id);
      std::lock_guard lock(mu);
      if (b.ok()) {
        claimed.insert(b->str());
      } else {
        EXPECT_EQ(b.error().code, Errc::kExhausted) << b.error().message;
        ++exhausted[name];
      }
    }
  };
  std::thread a(host, "host-a"), b(host, "host-b");
  a.join();
  b.join();
  EXPECT_EQ(claimed.size(), 64u) << "every block claimed";
  EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), 64u)
      << "no block given twice";
  EXPECT_EQ(exhausted["host-a"] + exhausted["host-b"], 16);
  BlockClaims reader(etcd, spec("host-c"), subnet, 26);
  auto all = reader.list();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 64u);
  EXPECT_EQ(all->front().block.str(), "198.18.0.0/26");
  EXPECT_EQ(all->back().block.str(), "198.18.15.192/26");
  auto none = reader.claim(1);
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.error().message.find("no free block of /26 is left in 198.18.0.0/20"),
            std::string::npos)
      << none.error().message;
}

TEST(ClusterBlocks, ADeadHostsBlockIsReclaimedOnlyIfItNeverHeldAnAddress) {
  testing::FakeEtcd etcd;
  const auto subnet = net("198.18.16.0/25");  // two blocks of /26
  Clock::time_point now_a{};
  HostLease lease_a(etcd, spec("a"), [&] { return now_a; });
  BlockClaims a(etcd, spec("a"), subnet, 26);
  auto la = lease_a.current();
  ASSERT_TRUE(la.ok());
  auto used = a.claim(*la);
  auto unused = a.claim(*la);
  ASSERT_TRUE(used.ok() && unused.ok());
  ASSERT_TRUE(a.markUsed(*used).ok());
  // Host a dies (or sleeps): its lease lapses.
  etcd.advance(11);
  now_a += std::chrono::seconds(11);
  HostLease lease_b(etcd, spec("b"));
  BlockClaims b(etcd, spec("b"), subnet, 26);
  auto lb = lease_b.current();
  ASSERT_TRUE(lb.ok());
  auto got = b.claim(*lb);
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(got->str(), unused->str()) << "the block that never held an address";
  auto more = b.claim(*lb);
  ASSERT_FALSE(more.ok()) << "the used one stays a's: " << more->str();
  EXPECT_EQ(more.error().code, Errc::kExhausted);
  // a comes back: a new lease, its blocks moved to it; the one b took is not a's any more.
  bool lapsed = false;
  auto la2 = lease_a.current(&lapsed);
  ASSERT_TRUE(la2.ok()) << la2.error().message;
  EXPECT_TRUE(lapsed);
  EXPECT_NE(*la2, *la);
  ASSERT_TRUE(a.rebind(*la2).ok());
  auto mine = a.mine();
  ASSERT_TRUE(mine.ok());
  ASSERT_EQ(mine->size(), 1u);
  EXPECT_EQ(mine->front().str(), used->str());
  EXPECT_EQ(a.list()->front().lease, *la2);
  // Released blocks go back; nobody releases another host's.
  EXPECT_EQ(a.release(*got).error().code, Errc::kNotFound);
  ASSERT_TRUE(a.release(*used).ok());
  ASSERT_TRUE(b.claim(*lb).ok()) << "the released block is free again";
}

TEST(ClusterBlocks, NoAddressUnderALeaseThatMayLapse) {
  testing::FakeEtcd etcd;
  Clock::time_point now{};
  HostLease lease(etcd, spec("a"), [&] { return now; });
  auto id = lease.current();
  ASSERT_TRUE(id.ok());
  etcd.setDown(true);
  now += std::chrono::seconds(4);  // renewed 4 s ago, TTL 10 s: still trusted, no call made
  EXPECT_EQ(lease.current().value(), *id);
  now += std::chrono::seconds(2);  // 6 s: past half the TTL, and etcd does not answer
  auto late = lease.current();
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::kTryAgain);
  EXPECT_NE(late.error().message.find(
                "host a hands out no address: its etcd lease (renewed 6 s ago, TTL 10 s)"),
            std::string::npos)
      << late.error().message;
  etcd.setDown(false);
  auto back = lease.current();
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(*back, *id) << "renewed, not replaced";
}

TEST(ClusterBlocks, BadSpecsAreOneLineErrors) {
  for (const auto& [prefix, host, says] :
       std::vector<std::tuple<std::string, std::string, std::string>>{
           {"plumb", "h", "must start with '/'"},
           {"/plumb/", "h", "not end with one"},
           {"/plumb/../etc", "h", "segment '..'"},
           {"/plu mb", "h", "segment 'plu mb'"},
           {"/plumb", "", "host name ''"},
           {"/plumb", "a/b", "host name 'a/b'"},
       }) {
    ClusterSpec s;
    s.prefix = prefix;
    s.host = host;
    auto st = validateClusterSpec(s);
    ASSERT_FALSE(st.ok()) << prefix << " " << host;
    EXPECT_NE(st.error().message.find(says), std::string::npos) << st.error().message;
  }
  EXPECT_TRUE(validateClusterSpec(spec("node-1.example")).ok());
  EXPECT_FALSE(BlockClaims::validate(net("198.18.0.0/20"), 19).ok());
  EXPECT_FALSE(BlockClaims::validate(net("198.18.0.0/20"), 31).ok());
  EXPECT_FALSE(BlockClaims::validate(net("fd00::/48"), 120).ok()) << "over a million blocks";
  EXPECT_TRUE(BlockClaims::validate(net("fd00::/112"), 122).ok());
}

}  // namespace
}  // namespace plumb::core
