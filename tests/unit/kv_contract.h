// What tests/unit/fake_etcd.h must do as a real etcd does: run on the fake by the unit tier,
// and on etcd 3.4 by the netns tier (tests/netns/etcd_test.cc). Each check works under its
// own key prefix, so one store serves all of them.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "etcd/kv.h"

namespace plumb::testing {

// Puts, ranges, deletes and guarded transactions.
inline void kvContractTransactions(etcd::Kv& kv, const std::string& p) {
  using etcd::Compare;
  using etcd::TxnOp;
  auto r1 = kv.put(p + "a", "1");
  auto r2 = kv.put(p + "b", std::string("\0\xff", 2));
  ASSERT_TRUE(r1.ok() && r2.ok());
  EXPECT_EQ(*r2, *r1 + 1);
  auto all = kv.range(p, etcd::prefixEnd(p));
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->kvs.size(), 2u);
  EXPECT_EQ(all->kvs[0].key, p + "a");
  EXPECT_EQ(all->kvs[0].create_revision, *r1);
  EXPECT_EQ(all->kvs[0].version, 1);
  EXPECT_EQ(all->kvs[1].value, std::string("\0\xff", 2)) << "values are bytes";
  EXPECT_EQ(all->revision, *r2);
  EXPECT_TRUE(kv.range(p + "nothing")->kvs.empty());
  // A claim guarded on absence: the first wins, the second reads who holds it instead.
  auto first = kv.txn({Compare::absent(p + "claim")}, {TxnOp::put(p + "claim", "A")},
                      {TxnOp::get(p + "claim")});
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->succeeded);
  EXPECT_EQ(first->revision, *r2 + 1);
  auto second = kv.txn({Compare::absent(p + "claim")}, {TxnOp::put(p + "claim", "B")},
                       {TxnOp::get(p + "claim")});
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->succeeded);
  EXPECT_EQ(second->revision, first->revision) << "a transaction that writes nothing";
  ASSERT_EQ(second->ranges.size(), 1u);
  ASSERT_EQ(second->ranges[0].kvs.size(), 1u);
  EXPECT_EQ(second->ranges[0].kvs[0].value, "A");
  // Two writes in one transaction: one revision.
  auto both = kv.txn(
      {Compare::unchangedSince(p + "claim", first->revision), Compare::valueIs(p + "claim", "A")},
      {TxnOp::put(p + "x", "1"), TxnOp::put(p + "y", "2")});
  ASSERT_TRUE(both.ok());
  EXPECT_TRUE(both->succeeded);
  EXPECT_EQ(both->revision, first->revision + 1);
  EXPECT_EQ(kv.range(p + "x")->kvs.at(0).mod_revision, kv.range(p + "y")->kvs.at(0).mod_revision);
  // Guarded on the revision it was read at: a change since then makes it fail.
  auto stale =
      kv.txn({Compare::unchangedSince(p + "claim", second->ranges[0].kvs[0].mod_revision - 1)},
             {TxnOp::del(p + "claim")});
  ASSERT_TRUE(stale.ok());
  EXPECT_FALSE(stale->succeeded);
  // A value compare on a key that is not there fails.
  auto missing = kv.txn({Compare::valueIs(p + "none", "")}, {TxnOp::put(p + "z", "1")});
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->succeeded);
  auto removed = kv.remove(p, etcd::prefixEnd(p));
  ASSERT_TRUE(removed.ok());
  EXPECT_EQ(*removed, 5);
  EXPECT_EQ(kv.remove(p + "a").value(), 0);
}

// Watches: every change after the revision asked for, in order, a batch per revision.
inline void kvContractWatch(etcd::Kv& kv, const std::string& p) {
  using etcd::TxnOp;
  auto start = kv.put(p + "before", "0");
  ASSERT_TRUE(start.ok());
  ASSERT_TRUE(kv.put(p + "a", "1").ok());
  ASSERT_TRUE(kv.txn({}, {TxnOp::put(p + "b", "2"), TxnOp::put(p + "c", "3")}).ok());
  ASSERT_TRUE(kv.remove(p + "a").ok());
  auto w = kv.watcher();
  std::mutex mu;
  std::vector<std::string> seen;
  std::vector<size_t> batch_of;  // which batch each event came in
  std::vector<int64_t> revisions;
  size_t batches = 0;
  std::thread t([&] {
    auto st = w->run(p, etcd::prefixEnd(p), *start + 1,
                     [&](const std::vector<etcd::WatchEvent>& events, int64_t rev) {
                       std::lock_guard lock(mu);
                       for (const auto& e : events) {
                         seen.push_back((e.deleted ? "-" : "+") + e.kv.key.substr(p.size()));
                         batch_of.push_back(batches);
                         revisions.push_back(e.kv.mod_revision);
                         EXPECT_LE(e.kv.mod_revision, rev) << "a batch brings the watch to rev";
                       }
                       ++batches;
                     });
    EXPECT_TRUE(st.ok()) << st.error().message;
  });
  ASSERT_TRUE(kv.put(p + "d", "4").ok());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (seen.size() >= 5 || std::chrono::steady_clock::now() > deadline) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  w->stop();
  t.join();
  EXPECT_EQ(seen, (std::vector<std::string>{"+a", "+b", "+c", "-a", "+d"}));
  // What happened before the watch may come in one batch (etcd sends its history so); the
  // two writes of one transaction are never split, and revisions only grow.
  ASSERT_EQ(batch_of.size(), 5u);
  EXPECT_EQ(batch_of[1], batch_of[2]) << "b and c came in one transaction";
  EXPECT_EQ(revisions[1], revisions[2]);
  for (size_t i = 1; i < revisions.size(); ++i) EXPECT_LE(revisions[i - 1], revisions[i]);
  (void)kv.remove(p, etcd::prefixEnd(p));
}

// Leases: keys bound to one go with it; a lease that lapsed is not found. tick lets a second
// pass (a real one, or the fake's clock).
inline void kvContractLeases(etcd::Kv& kv, const std::string& p,
                             const std::function<void()>& tick) {
  auto kept = kv.grant(2);
  auto lapsed = kv.grant(2);
  ASSERT_TRUE(kept.ok() && lapsed.ok());
  EXPECT_EQ(kept->ttl, 2);
  EXPECT_NE(kept->id, lapsed->id);
  ASSERT_TRUE(kv.put(p + "kept", "x", kept->id).ok());
  ASSERT_TRUE(kv.put(p + "lapsed", "x", lapsed->id).ok());
  EXPECT_EQ(kv.range(p + "kept")->kvs.at(0).lease, kept->id);
  auto bogus = kv.put(p + "bogus", "x", 123456789);
  ASSERT_FALSE(bogus.ok()) << "a put on a lease that does not exist";
  EXPECT_EQ(bogus.error().code, Errc::kNotFound) << bogus.error().message;
  for (int i = 0; i < 4; ++i) {  // one renewed every second, the other left to lapse
    auto ttl = kv.keepAlive(kept->id);
    ASSERT_TRUE(ttl.ok()) << ttl.error().message;
    EXPECT_EQ(*ttl, 2);
    tick();
  }
  ASSERT_TRUE(kv.keepAlive(kept->id).ok());
  EXPECT_EQ(kv.range(p + "kept")->kvs.size(), 1u);
  EXPECT_TRUE(kv.range(p + "lapsed")->kvs.empty()) << "its lease expired";
  auto late = kv.keepAlive(lapsed->id);
  ASSERT_FALSE(late.ok());
  EXPECT_EQ(late.error().code, Errc::kNotFound) << late.error().message;
  ASSERT_TRUE(kv.revoke(kept->id).ok());
  EXPECT_TRUE(kv.range(p + "kept")->kvs.empty()) << "revoked with its keys";
}

}  // namespace plumb::testing
