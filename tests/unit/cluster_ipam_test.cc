// The cluster IPAM (plugin/core/cluster_ipam.h) against the fake etcd: hosts with stores of
// their own sharing one subnet, blocks claimed when full and given back when empty, a lease
// that etcd stops renewing, a store that lost its blocks, bad configs.
#include "plugin/core/cluster_ipam.h"

#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "fake_etcd.h"
#include "test_dir.h"

namespace plumb::core {
namespace {

IpPrefix net(const char* text) { return *IpPrefix::parse(text); }

ClusterIpamConfig config(const std::string& host, int block_size = 28) {
  ClusterIpamConfig c;
  c.endpoints = {"http://127.0.0.1:1"};  // not dialled: the tests hand the fake in
  c.host = host;
  c.block_size = block_size;
  c.lease_ttl_s = 2;  // trusted for 1 s after a renewal
  return c;
}

// One host: its own store, on the shared fake.
struct Host {
  explicit Host(testing::FakeEtcd& e, std::string n, int block_size = 28)
      : etcd(e), name(std::move(n)), cfg(config(name, block_size)) {
    store = std::move(Store::open(dir.path())).value();
  }
  IpamRequest request(const std::string& id, const std::vector<std::string>& want = {}) {
    IpamRequest r;
    r.owner = {"cluster", id, "eth0"};
    IpRange range{net("198.18.0.0/24"), std::nullopt, std::nullopt, *IpAddr::parse("198.18.0.1")};
    EXPECT_TRUE(range.normalise().ok());
    r.range_sets = {{range}};
    for (const auto& w : want) r.requested.push_back(*IpAddr::parse(w));
    return r;
  }
  Result<Addressing> add(const std::string& id, const std::vector<std::string>& want = {}) {
    return ClusterAddresses(*store, cfg, request(id, want), {}, etcd).allocate();
  }
  Status del(const std::string& id) {
    return ClusterAddresses(*store, cfg, request(id), {}, etcd).release();
  }
  testing::FakeEtcd& etcd;
  std::string name;
  ClusterIpamConfig cfg;
  testing::TempDir dir;
  std::unique_ptr<Store> store;
};

// block -> host, as etcd holds them.
std::map<std::string, std::string> blocks(testing::FakeEtcd& etcd) {
  std::map<std::string, std::string> out;
  auto r = etcd.range("/plumb/ipam/", etcd::prefixEnd("/plumb/ipam/"));
  EXPECT_TRUE(r.ok());
  for (const auto& kv : r->kvs) {
    auto v = nlohmann::json::parse(kv.value);
    out[kv.key.substr(kv.key.rfind('/') + 1)] = v["host"].get<std::string>();
  }
  return out;
}

TEST(ClusterIpam, TwoHostsNeverHandOutOneAddressTwice) {
  testing::FakeEtcd etcd;
  Host a(etcd, "host-a"), b(etcd, "host-b");
  std::mutex mu;
  std::multiset<std::string> given;
  std::map<std::string, std::set<std::string>> by_host;
  auto run = [&](Host& h) {
    for (int i = 0; i < 60; ++i) {
      auto got = h.add(h.name + "-c" + std::to_string(i));
      ASSERT_TRUE(got.ok()) << got.error().message;
      ASSERT_EQ(got->addresses.size(), 1u);
      std::lock_guard lock(mu);
      given.insert(got->addresses[0].address.str());
      by_host[h.name].insert(got->addresses[0].address.str());
    }
  };
  std::thread ta(run, std::ref(a)), tb(run, std::ref(b));
  ta.join();
  tb.join();
  EXPECT_EQ(given.size(), 120u);
  EXPECT_EQ(std::set<std::string>(given.begin(), given.end()).size(), 120u)
      << "no address given twice";
  // Each host's addresses lie in blocks etcd says are its own; each address has the subnet's
  // prefix length (a container reaches the other host's containers directly).
  auto held = blocks(etcd);
  for (const auto& [host, addrs] : by_host) {
    for (const auto& text : addrs) {
      EXPECT_EQ(text.substr(text.find('/')), "/24");
      auto addr = *IpAddr::parse(text.substr(0, text.find('/')));
      auto block = IpPrefix(addr, 28).network().str();
      block[block.find('/')] = '-';
      EXPECT_EQ(held[block], host) << text;
    }
  }
  EXPECT_EQ(by_host["host-a"].count("198.18.0.1/24") + by_host["host-b"].count("198.18.0.1/24"), 0u)
      << "the gateway is never handed out";
  // Everything given back: every block goes back to etcd, nothing stays in either store.
  for (auto* h : {&a, &b}) {
    for (int i = 0; i < 60; ++i) ASSERT_TRUE(h->del(h->name + "-c" + std::to_string(i)).ok());
  }
  EXPECT_TRUE(blocks(etcd).empty());
  for (auto* h : {&a, &b}) {
    auto n = Ipam(*h->store).countHeld(net("198.18.0.0/24"), *IpAddr::parse("198.18.0.0"),
                                       *IpAddr::parse("198.18.0.255"));
    EXPECT_EQ(*n, 0);
  }
}

TEST(ClusterIpam, AnAddressComesFromTheHostsBlockAndIsIdempotent) {
  testing::FakeEtcd etcd;
  Host a(etcd, "host-a");
  auto first = a.add("c1");
  ASSERT_TRUE(first.ok()) << first.error().message;
  EXPECT_EQ(first->addresses[0].address.str(), "198.18.0.2/24");
  ASSERT_TRUE(first->addresses[0].gateway);
  EXPECT_EQ(first->addresses[0].gateway->str(), "198.18.0.1");
  auto again = a.add("c1");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->addresses[0].address, first->addresses[0].address);
  EXPECT_EQ(blocks(etcd), (std::map<std::string, std::string>{{"198.18.0.0-28", "host-a"}}));
  // 13 more fill the first block (.0 network, .1 gateway); the 15th claims a second.
  for (int i = 2; i <= 14; ++i) ASSERT_TRUE(a.add("c" + std::to_string(i)).ok());
  EXPECT_EQ(blocks(etcd).size(), 1u);
  auto next = a.add("c15");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next->addresses[0].address.str(), "198.18.0.16/24");
  EXPECT_EQ(blocks(etcd).size(), 2u);
  // The second block's only address goes: with the first full, the empty one is kept as the
  // host's spare (a quarter of a block free is what a host keeps ahead of need).
  ASSERT_TRUE(a.del("c15").ok());
  EXPECT_EQ(blocks(etcd).size(), 2u);
  ASSERT_TRUE(a.del("c14").ok());
  ASSERT_TRUE(a.del("c13").ok());
  ASSERT_TRUE(a.del("c12").ok());
  EXPECT_EQ(blocks(etcd).size(), 2u) << "3 free in the first block: the spare stays";
  ASSERT_TRUE(a.del("c11").ok());
  EXPECT_EQ(blocks(etcd), (std::map<std::string, std::string>{{"198.18.0.0-28", "host-a"}}))
      << "4 free in the first block: the empty one goes back";
}

TEST(ClusterIpam, ARequestedAddressInAnotherHostsBlockIsRefused) {
  testing::FakeEtcd etcd;
  Host a(etcd, "host-a"), b(etcd, "host-b");
  ASSERT_TRUE(a.add("c1").ok());
  auto taken = b.add("c2", {"198.18.0.5"});
  ASSERT_FALSE(taken.ok());
  EXPECT_NE(taken.error().message.find("held by host host-a"), std::string::npos)
      << taken.error().message;
  EXPECT_EQ(blocks(etcd).size(), 1u) << "nothing claimed";
  auto mine = b.add("c3", {"198.18.0.77"});
  ASSERT_TRUE(mine.ok()) << mine.error().message;
  EXPECT_EQ(mine->addresses[0].address.str(), "198.18.0.77/24");
  EXPECT_EQ(blocks(etcd)["198.18.0.64-28"], "host-b");
}

TEST(ClusterIpam, NoAddressOnceTheLeaseCannotBeRenewedAndBackWhenItCan) {
  testing::FakeEtcd etcd;
  Host a(etcd, "host-a");
  ASSERT_TRUE(a.add("c1").ok());
  etcd.setDown(true);
  // Within half a TTL of the renewal, the host's block serves without etcd.
  ASSERT_TRUE(a.add("c2").ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  auto late = a.add("c3");
  ASSERT_FALSE(late.ok());
  EXPECT_NE(late.error().message.find("cannot be renewed"), std::string::npos)
      << late.error().message;
  EXPECT_EQ(late.error().message.find('\n'), std::string::npos);
  auto held = Ipam(*a.store).lookup({"cluster", "c3", "eth0"});
  EXPECT_TRUE(held->empty()) << "nothing half-done";
  // Released while etcd is away: the address goes (the block, still holding c1's, stays).
  ASSERT_TRUE(a.del("c2").ok());
  etcd.setDown(false);
  // The lease lapsed meanwhile: a new one, and the block moves to it.
  etcd.advance(5);
  auto back = a.add("c3");
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(blocks(etcd), (std::map<std::string, std::string>{{"198.18.0.0-28", "host-a"}}));
  auto host = etcd.range("/plumb/hosts/host-a");
  ASSERT_EQ(host->kvs.size(), 1u);
  auto block = etcd.range("/plumb/ipam/198.18.0.0-24/blocks/198.18.0.0-28");
  ASSERT_EQ(block->kvs.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(block->kvs[0].value)["lease"], host->kvs[0].lease);
}

TEST(ClusterIpam, AStoreThatLostItsBlocksTakesThemBackFromEtcd) {
  testing::FakeEtcd etcd;
  auto a = std::make_unique<Host>(etcd, "host-a");
  ASSERT_TRUE(a->add("c1").ok());
  // The host's store is gone (reinstalled): its block is still its own in etcd.
  a = std::make_unique<Host>(etcd, "host-a");
  auto got = a->add("c2");
  ASSERT_TRUE(got.ok()) << got.error().message;
  EXPECT_EQ(blocks(etcd).size(), 1u) << "the block etcd holds for the host is used, not a new one";
  EXPECT_TRUE(IpPrefix::parse("198.18.0.0/28")->contains(got->addresses[0].address.addr()));
}

TEST(ClusterIpam, TheSubnetFullIsOneClearError) {
  testing::FakeEtcd etcd;
  Host a(etcd, "host-a", 25), b(etcd, "host-b", 25);
  ASSERT_TRUE(a.add("c1").ok());
  ASSERT_TRUE(b.add("c2").ok());
  // Both /25 blocks are held: host-b's block fills, and there is none to claim.
  int failed_at = -1;
  for (int i = 0; i < 127 && failed_at < 0; ++i) {
    auto r = b.add("d" + std::to_string(i));
    if (r.ok()) continue;
    failed_at = i;
    EXPECT_NE(r.error().message.find("no free block"), std::string::npos) << r.error().message;
    EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
  }
  EXPECT_EQ(failed_at, 126) << "the block's 127 addresses (c2's and 126 more), then none";
}

TEST(ClusterIpam, BadConfigsAreOneLine) {
  std::vector<RangeSet> ranges = {
      {IpRange{net("198.18.0.0/24"), std::nullopt, std::nullopt, std::nullopt}}};
  auto c = config("host-a");
  EXPECT_TRUE(validateClusterIpam(c, ranges).ok());
  auto bad = [&](ClusterIpamConfig b, const std::string& want) {
    auto st = validateClusterIpam(b, ranges);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.find('\n'), std::string::npos);
  };
  auto b = c;
  b.endpoints = {};
  bad(b, "at least one endpoint");
  b = c;
  b.endpoints = {"http//nowhere"};
  bad(b, "http//nowhere");
  b = c;
  b.prefix = "/plumb/../etc";
  bad(b, "'..'");
  b = c;
  b.host = "a/b";
  bad(b, "host name 'a/b'");
  b = c;
  b.block_size = 20;
  bad(b, "blockSize 20 does not fit 198.18.0.0/24");
  b = c;
  b.timeout_ms = 5;
  bad(b, "timeout of 5 ms");
}

}  // namespace
}  // namespace plumb::core
