// The service directory across hosts (plugin/core/cluster_services.h) on the fake etcd: one
// host's registrations reach another's view through the watch, go with the lease, come back
// under a new lease, and survive a compacted history.
#include "plugin/core/cluster_services.h"

#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <set>
#include <thread>

#include "fake_etcd.h"

namespace plumb::core {
namespace {

using Clock = std::chrono::steady_clock;

ClusterServicesConfig config(const std::string& host, const std::string& ip) {
  ClusterServicesConfig c;
  c.endpoints = {"http://127.0.0.1:1"};  // not dialled: the fake is handed in
  c.host = host;
  c.advertise = ip;
  c.lease_ttl_s = 3;
  return c;
}

// A host's view: which services changed, and their remote endpoints' addresses.
struct View {
  std::mutex mu;
  std::multiset<std::string> changes;
  ClusterServices::Changed fn() {
    return [this](const std::string& name, bool udp) {
      std::lock_guard lock(mu);
      changes.insert(name + (udp ? "/udp" : "/tcp"));
    };
  }
};

std::set<std::string> addresses(ClusterServices& s, const std::string& name) {
  std::set<std::string> out;
  for (const auto& e : s.remote(name, false)) out.insert(e.host + "=" + e.address);
  return out;
}

template <class Pred>
bool eventually(Pred pred) {
  auto deadline = Clock::now() + std::chrono::seconds(5);
  while (!pred()) {
    if (Clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return true;
}

TEST(ClusterServices, AnotherHostsEndpointsAreFollowedAndGoWithItsLease) {
  testing::FakeEtcd etcd;
  View va, vb;
  auto a = ClusterServices::start(config("ha", "198.18.250.1"), va.fn(), &etcd);
  auto b = ClusterServices::start(config("hb", "198.18.250.2"), vb.fn(), &etcd);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_TRUE((*b)->publish("web", false, "g1", "198.18.250.2:40000", 8080).ok());
  ASSERT_TRUE(eventually([&] { return addresses(**a, "web").size() == 1; }));
  EXPECT_EQ(addresses(**a, "web"), (std::set<std::string>{"hb=198.18.250.2:40000"}));
  EXPECT_EQ((*a)->remote("web", false)[0].port, 8080);
  EXPECT_TRUE(addresses(**b, "web").empty()) << "a host's own endpoints are served locally";
  {
    std::lock_guard lock(va.mu);
    EXPECT_GE(va.changes.count("web/tcp"), 1u);
  }
  // Withdrawn: gone from the other host's view.
  (*b)->withdraw("web", false, "g1");
  ASSERT_TRUE(eventually([&] { return addresses(**a, "web").empty(); }));
  // Registered again, then host B's lease lapses (B stops renewing: it is gone): its
  // endpoint goes with the lease.
  ASSERT_TRUE((*b)->publish("web", false, "g1", "198.18.250.2:40001", 8080).ok());
  ASSERT_TRUE(eventually([&] { return addresses(**a, "web").size() == 1; }));
  auto lease_of = [&]() -> int64_t {
    auto r = etcd.range("/plumb/services/", etcd::prefixEnd("/plumb/services/"));
    return r.ok() && r->kvs.size() == 1 ? r->kvs[0].lease : 0;
  };
  int64_t old = lease_of();
  ASSERT_NE(old, 0);
  etcd.setDown(true);  // nobody renews
  etcd.advance(4);
  etcd.setDown(false);
  EXPECT_EQ(lease_of(), 0) << "gone with the lease";
  // B's keepalive finds its lease gone and registers again under a new one; A follows.
  ASSERT_TRUE(eventually([&] { return lease_of() != 0 && lease_of() != old; }));
  ASSERT_TRUE(eventually([&] { return addresses(**a, "web").size() == 1; }));
  // A clean stop revokes the lease: the endpoint goes at once.
  b->reset();
  ASSERT_TRUE(eventually([&] { return addresses(**a, "web").empty(); }));
}

TEST(ClusterServices, ACompactedHistoryIsReadAgain) {
  testing::FakeEtcd etcd;
  View va;
  auto a = ClusterServices::start(config("ha", "198.18.250.1"), va.fn(), &etcd);
  ASSERT_TRUE(a.ok());
  // Written behind A's back while its watch cannot follow (etcd away), then compacted.
  etcd.setDown(true);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  etcd.setDown(false);
  ASSERT_TRUE(
      etcd.put("/plumb/services/db/tcp/hc/g9", R"({"address":"198.18.250.3:5","port":5432})").ok());
  etcd.compact(etcd.revision());
  ASSERT_TRUE(eventually([&] { return addresses(**a, "db").size() == 1; }));
  // A malformed value is skipped, not fatal.
  ASSERT_TRUE(etcd.put("/plumb/services/db/tcp/hd/g1", "not json").ok());
  ASSERT_TRUE(
      etcd.put("/plumb/services/db/tcp/he/g1", R"({"address":"198.18.250.5:6","port":5432})").ok());
  ASSERT_TRUE(eventually([&] { return addresses(**a, "db").size() == 2; }));
}

TEST(ClusterServices, ARegistrationEtcdDoesNotTakeFailsInOneLine) {
  testing::FakeEtcd etcd;
  View va;
  auto a = ClusterServices::start(config("ha", "198.18.250.1"), va.fn(), &etcd);
  ASSERT_TRUE(a.ok());
  etcd.setDown(true);
  auto st = (*a)->publish("web", false, "g1", "198.18.250.1:40000", 80);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.error().message.find("failed to register web/tcp of g1 in etcd"), std::string::npos)
      << st.error().message;
  EXPECT_EQ(st.error().message.find('\n'), std::string::npos);
  etcd.setDown(false);
  auto r = etcd.range("/plumb/services/", etcd::prefixEnd("/plumb/services/"));
  EXPECT_TRUE(r->kvs.empty()) << "nothing registered, now or later";
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a keepalive tick
  r = etcd.range("/plumb/services/", etcd::prefixEnd("/plumb/services/"));
  EXPECT_TRUE(r->kvs.empty());
}

TEST(ClusterServices, BadConfigsAreOneLine) {
  auto c = config("ha", "198.18.250.1");
  EXPECT_TRUE(validateClusterServices(c).ok());
  auto bad = [](ClusterServicesConfig b, const std::string& want) {
    auto st = validateClusterServices(b);
    ASSERT_FALSE(st.ok()) << want;
    EXPECT_NE(st.error().message.find(want), std::string::npos) << st.error().message;
  };
  auto b = c;
  b.advertise = "";
  bad(b, "--advertise-address ''");
  b = c;
  b.advertise = "0.0.0.0";
  bad(b, "--advertise-address '0.0.0.0'");
  b = c;
  b.endpoints = {"ftp://x:1"};
  bad(b, "ftp://x:1");
  b = c;
  b.prefix = "/a/../b";
  bad(b, "'..'");
}

}  // namespace
}  // namespace plumb::core
