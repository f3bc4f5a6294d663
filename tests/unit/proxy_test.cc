// The forwarder's pieces without a network: pipe lending, watermarks, the UDP session table,
// backend choice and health, address parsing.
#include <gtest/gtest.h>
#include <unistd.h>

#include <set>
#include <thread>

#include "base/endpoint.h"
#include "plugin/cli/grammar.h"
#include "plugin/proxy/backends.h"
#include "plugin/proxy/list.h"
#include "plugin/proxy/pipe_pool.h"
#include "plugin/proxy/udp.h"

namespace plumb::proxy {
namespace {

TEST(PipePoolTest, LendsOnlyWhileInFlightAndKeepsAFewIdle) {
  PipePool pool(2, 0);
  auto a = pool.acquire();
  auto b = pool.acquire();
  auto c = pool.acquire();
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(pool.inUse(), 3u);
  EXPECT_EQ(pool.created(), 3u);
  EXPECT_GE((*a)->capacity, 4096u);
  Pipe* first = a->get();
  pool.release(std::move(*a), true);
  pool.release(std::move(*b), true);
  pool.release(std::move(*c), true);  // past max_idle: closed
  EXPECT_EQ(pool.inUse(), 0u);
  EXPECT_EQ(pool.idle(), 2u);
  auto again = pool.acquire();
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(pool.created(), 3u) << "an idle pipe is lent again";
  EXPECT_EQ(pool.idle(), 1u);
  (void)first;
  // A pipe still holding bytes is never lent again: they belong to a connection that is gone.
  ASSERT_EQ(::write((*again)->write_end.get(), "x", 1), 1);
  pool.release(std::move(*again), false);
  EXPECT_EQ(pool.idle(), 1u);
  EXPECT_EQ(pool.inUse(), 0u);
}

TEST(PipePoolTest, AskedSizeIsTheCapacity) {
  PipePool pool(1, 256 * 1024);
  auto p = pool.acquire();
  ASSERT_TRUE(p.ok());
  EXPECT_EQ((*p)->capacity, 256u * 1024) << "up to pipe-max-size (1 MiB here), anyone may ask";
  pool.release(std::move(*p), true);
}

struct Item : ListHook {
  int n = 0;
};

TEST(HookListTest, MovingBetweenListsKeepsBothCounts) {
  HookList a, b;
  Item x, y;
  a.pushBack(&x);
  a.pushBack(&y);
  EXPECT_EQ(a.size(), 2u);
  b.pushBack(&x);  // a connection that connected: from the connecting list to the open one
  EXPECT_EQ(a.size(), 1u);
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(a.front(), &y);
  b.remove(&y);  // not in b: nothing happens
  EXPECT_EQ(a.size(), 1u);
  a.pushBack(&y);  // to the tail of its own list
  EXPECT_EQ(a.size(), 1u);
  a.remove(&y);
  b.remove(&x);
  EXPECT_TRUE(a.empty());
  EXPECT_TRUE(b.empty());
  EXPECT_FALSE(x.linked());
}

TEST(WatermarkTest, PausesAtHighAndResumesAtLow) {
  Watermark w{100, 50};
  bool paused = false;
  paused = w.paused(paused, 0);
  EXPECT_FALSE(paused);
  paused = w.paused(paused, 99);
  EXPECT_FALSE(paused);
  paused = w.paused(paused, 100);
  EXPECT_TRUE(paused) << "full: reading stops";
  paused = w.paused(paused, 80);
  EXPECT_TRUE(paused) << "between the marks it stays as it was";
  paused = w.paused(paused, 50);
  EXPECT_FALSE(paused) << "down to low: reading resumes";
  paused = w.paused(paused, 80);
  EXPECT_FALSE(paused) << "between the marks it stays as it was";
}

PeerKey peer(uint8_t last, uint16_t port) {
  sockaddr_storage ss{};
  auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  s4->sin_addr.s_addr = htonl(0x7f000000u | last);
  return PeerKey::from(ss);
}

TEST(UdpSessionTableTest, OneSessionPerClientAddress) {
  UdpSessionTable t;
  auto& a = t.insert(nullptr, peer(1, 1000), 0);
  auto& b = t.insert(nullptr, peer(1, 1001), 0);
  auto& c = t.insert(nullptr, peer(2, 1000), 0);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_EQ(t.find(peer(1, 1000)), &a);
  EXPECT_EQ(t.find(peer(1, 1001)), &b);
  EXPECT_EQ(t.find(peer(2, 1000)), &c);
  EXPECT_EQ(t.find(peer(3, 1000)), nullptr);
  sockaddr_storage ss;
  socklen_t len = a.peer().toSockaddr(&ss);
  EXPECT_EQ(len, sizeof(sockaddr_in));
  EXPECT_EQ(PeerKey::from(ss), a.peer());
  sockaddr_storage v6{};
  auto* s6 = reinterpret_cast<sockaddr_in6*>(&v6);
  s6->sin6_family = AF_INET6;
  s6->sin6_port = htons(53);
  s6->sin6_addr.s6_addr[15] = 1;
  auto k6 = PeerKey::from(v6);
  EXPECT_EQ(t.find(k6), nullptr);
  EXPECT_EQ(k6.toSockaddr(&ss), sizeof(sockaddr_in6));
  EXPECT_EQ(PeerKey::from(ss), k6);
}

TEST(UdpSessionTableTest, IdleSessionsExpireOldestFirstAndActivityKeepsThemAlive) {
  UdpSessionTable t;
  t.insert(nullptr, peer(1, 1), 0);
  t.insert(nullptr, peer(2, 2), 100);
  t.insert(nullptr, peer(3, 3), 200);
  t.touch(*t.find(peer(1, 1)), 250);  // the oldest is active again
  std::vector<uint16_t> gone;
  auto note = [&](UdpSession& s) { gone.push_back(ntohs(s.peer().port)); };
  EXPECT_EQ(t.expire(1099, 1000, note), 0u);
  EXPECT_EQ(t.expire(1100, 1000, note), 1u);
  EXPECT_EQ(gone, std::vector<uint16_t>{2});
  EXPECT_EQ(t.expire(1249, 1000, note), 1u);
  EXPECT_EQ(gone, (std::vector<uint16_t>{2, 3}));
  EXPECT_EQ(t.size(), 1u);
  EXPECT_NE(t.find(peer(1, 1)), nullptr);
  t.clear(note);
  EXPECT_EQ(t.size(), 0u);
  EXPECT_EQ(gone, (std::vector<uint16_t>{2, 3, 1}));
  // A session is small: the budget is 256 bytes per flow, table node included.
  EXPECT_LE(sizeof(UdpSession) + sizeof(PeerKey) + 3 * sizeof(void*), 256u);
}

std::vector<Endpoint> endpoints(int n) {
  std::vector<Endpoint> out;
  for (int i = 0; i < n; ++i)
    out.push_back(*Endpoint::parse("198.18.0." + std::to_string(i + 1) + ":80"));
  return out;
}

TEST(BackendSetTest, LeastConnectionsWithTiesInTurn) {
  BackendSet set("svc", endpoints(3), HealthPolicy{});
  std::set<const Backend*> first_three;
  for (int i = 0; i < 3; ++i) {
    Backend* b = set.pick(0, 0);
    ASSERT_NE(b, nullptr);
    first_three.insert(b);
    set.opened(b);
  }
  EXPECT_EQ(first_three.size(), 3u) << "each gets one before any gets two";
  set.closed(&set.at(1));
  EXPECT_EQ(set.pick(0, 0), &set.at(1)) << "the one with fewest connections";
  EXPECT_EQ(set.pick(BackendSet::bit(1), 0)->active(), 1) << "what a connection tried is left out";
  EXPECT_EQ(set.pick(BackendSet::bit(0) | BackendSet::bit(1) | BackendSet::bit(2), 0), nullptr);
}

TEST(BackendSetTest, ARefusedConnectTakesABackendDownAtOnceAndChecksBringItBack) {
  BackendSet set("svc", endpoints(2), HealthPolicy{true, 2, 2, 2000});
  Backend* a = &set.at(0);
  set.connectFailed(a, "Connection refused", 0);
  EXPECT_FALSE(a->up());
  EXPECT_EQ(a->counters().connect_errors.load(), 1u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(set.pick(0, 100000), &set.at(1)) << "down is skipped";
  set.checkResult(a, true, "");
  EXPECT_FALSE(a->up()) << "rise is 2";
  set.checkResult(a, false, "refused");
  set.checkResult(a, true, "");
  EXPECT_FALSE(a->up()) << "good checks must be consecutive";
  set.checkResult(a, true, "");
  EXPECT_TRUE(a->up());
  // fall is 2: one failed check is not enough to take an up backend down.
  set.checkResult(a, false, "refused");
  EXPECT_TRUE(a->up());
  set.checkResult(a, false, "refused");
  EXPECT_FALSE(a->up());
  // Every backend down: nothing to pick (the client is reset, not left waiting).
  set.connectFailed(&set.at(1), "Connection refused", 0);
  EXPECT_EQ(set.pick(0, 0), nullptr);
}

TEST(BackendSetTest, WithoutActiveChecksADownBackendIsRetriedLater) {
  BackendSet set("svc", endpoints(1), HealthPolicy{false, 2, 2, 2000});
  Backend* a = &set.at(0);
  set.connectFailed(a, "Connection refused", 1000);
  EXPECT_EQ(set.pick(0, 2999), nullptr);
  EXPECT_EQ(set.pick(0, 3000), a) << "retried once its hold-down is over";
  set.connectSucceeded(a);
  EXPECT_TRUE(a->up());
}

TEST(BackendSetTest, ConcurrentPicksCountEveryConnection) {
  BackendSet set("svc", endpoints(4), HealthPolicy{});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        Backend* b = set.pick(0, 0);
        set.opened(b);
        set.closed(b);
      }
    });
  }
  for (auto& t : threads) t.join();
  uint64_t total = 0;
  for (size_t i = 0; i < set.size(); ++i) {
    EXPECT_EQ(set.at(i).active(), 0);
    total += set.at(i).counters().total.load();
    EXPECT_GT(set.at(i).counters().total.load(), 0u);
  }
  EXPECT_EQ(total, 40000u);
}

TEST(EndpointTest, ParsesWhatAUserTypes) {
  auto v4 = Endpoint::parse("198.18.0.5:8080");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->str(), "198.18.0.5:8080");
  auto v6 = Endpoint::parse("[2001:db8::1]:53");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->str(), "[2001:db8::1]:53");
  EXPECT_EQ(Endpoint::parse("127.0.0.1:0")->port, 0);
  sockaddr_storage ss;
  EXPECT_EQ(v6->toSockaddr(&ss), sizeof(sockaddr_in6));
  EXPECT_EQ(Endpoint::fromSockaddr(reinterpret_cast<sockaddr*>(&ss)), *v6);
  for (const char* bad : {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536",
                          "127.0.0.1:99999999999", "127.0.0.1:-1", "127.0.0.1:8o", "2001:db8::1:53",
                          "[2001:db8::1]", "[2001:db8::1]53", "host:80", "1.2.3.4.5:80"}) {
    auto r = Endpoint::parse(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.error().code, Errc::kInvalid);
      EXPECT_EQ(r.error().message.find('\n'), std::string::npos);
    }
  }
  EXPECT_EQ(Endpoint::parse("127.0.0.1:65536").error().message,
            "'127.0.0.1:65536': port 65536 is out of range (0-65535)");
}

TEST(EndpointTest, ProxyIsACommandNotAPipeworkHostInterface) {
  EXPECT_FALSE(cli::isPipeworkForm({"proxy", "--listen", "127.0.0.1:0"}));
  EXPECT_TRUE(cli::isPipeworkForm({"br0", "guest", "198.18.0.2/24"}));
}

}  // namespace
}  // namespace plumb::proxy
