// The etcd client against a real three-member etcd 3.4 cluster, started by each test in its
// host namespace (members on that namespace's loopback, data in the test's temp dir) and
// stopped by pid after. The client runs in this process, in that namespace (setns on the test
// thread; the threads it starts inherit it).
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <mutex>
#include <thread>

#include "../unit/kv_contract.h"
#include "etcd/client.h"
#include "etcd_members.h"
#include "harness.h"

namespace plumb::testing {
namespace {

using Clock = std::chrono::steady_clock;
using etcd::Client;

class EtcdCluster : public NetnsTest {
 protected:
  static constexpr int kMembers = EtcdMembers::kMembers;

  void SetUp() override {
    NetnsTest::SetUp();
    members_ = std::make_unique<EtcdMembers>(host(), "127.0.0.1", state_.path(), prefix_);
    for (int i = 0; i < kMembers; ++i) ASSERT_TRUE(members_->start(i));
    enter();
    auto c = Client::create({endpoints(), 2000});
    ASSERT_TRUE(c.ok()) << c.error().message;
    client_ = std::move(*c);
    // The cluster is up once a write goes through.
    auto deadline = Clock::now() + std::chrono::seconds(30);
    Result<int64_t> up = fail(Errc::kTryAgain, "not tried");
    while (Clock::now() < deadline && !(up = client_->put("/up", "1")).ok())
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ASSERT_TRUE(up.ok()) << up.error().message << "\n" << logs();
  }

  void TearDown() override {
    client_.reset();
    leave();
    members_.reset();
    NetnsTest::TearDown();
  }

  std::string url(int i, bool peer) const { return members_->url(i, peer); }
  std::vector<std::string> endpoints() const { return members_->endpoints(); }
  void start(int i) { ASSERT_TRUE(members_->start(i)); }
  void kill(int i) { members_->kill(i); }
  std::string logs() { return members_->logs(); }
  void enter() {
    self_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    int ns = ::open(("/run/netns/" + host()).c_str(), O_RDONLY | O_CLOEXEC);
    ASSERT_GE(ns, 0);
    ASSERT_EQ(::setns(ns, CLONE_NEWNET), 0);
    ::close(ns);
  }
  void leave() {
    if (self_ < 0) return;
    EXPECT_EQ(::setns(self_, CLONE_NEWNET), 0);
    ::close(self_);
    self_ = -1;
  }
  // Retries op until it succeeds or the deadline passes.
  template <class F>
  auto eventually(F op, int seconds) {
    auto deadline = Clock::now() + std::chrono::seconds(seconds);
    auto r = op();
    while (!r.ok() && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      r = op();
    }
    return r;
  }

  std::unique_ptr<EtcdMembers> members_;
  int self_ = -1;
  std::unique_ptr<Client> client_;
};

TEST_F(EtcdCluster, KeepsTheContractTheFakeKeeps) {
  kvContractTransactions(*client_, "/t/");
  kvContractWatch(*client_, "/w/");
  kvContractLeases(*client_, "/l/", [] { std::this_thread::sleep_for(std::chrono::seconds(1)); });
}

TEST_F(EtcdCluster, OneMemberDownChangesNothingTwoDownFailWithinTheTimeout) {
  auto& c = *client_;
  auto watcher = c.watcher();
  std::mutex mu;
  std::vector<std::string> got;
  std::vector<int64_t> revisions;
  auto begin = c.range("/up");
  ASSERT_TRUE(begin.ok());
  std::thread w([&] {
    auto st = watcher->run("/k/", etcd::prefixEnd("/k/"), begin->revision + 1,
                           [&](const std::vector<etcd::WatchEvent>& events, int64_t) {
                             std::lock_guard lock(mu);
                             for (const auto& e : events) {
                               got.push_back(e.kv.value);
                               revisions.push_back(e.kv.mod_revision);
                             }
                           });
    EXPECT_TRUE(st.ok()) << st.error().message;
  });
  // Whatever fails below, the watch stops and its thread is joined.
  struct Joiner {
    etcd::Watcher& watcher;
    std::thread& thread;
    ~Joiner() {
      watcher.stop();
      if (thread.joinable()) thread.join();
    }
  } joiner{*watcher, w};
  ASSERT_TRUE(c.put("/k/1", "1").ok());
  // The member the client (and its watch) used first goes: calls move to the others. When it
  // was the leader, writes wait for the other two to elect one (etcd's election, not the
  // client); after that, every write goes through.
  kill(0);
  auto elected = eventually([&] { return c.put("/k/2", "2"); }, 15);
  ASSERT_TRUE(elected.ok()) << "with one member of three down: " << elected.error().message;
  for (int i = 3; i <= 5; ++i) {
    auto r = c.put("/k/" + std::to_string(i), std::to_string(i));
    ASSERT_TRUE(r.ok()) << "with one member of three down: " << r.error().message;
  }
  // Two down: no quorum. A write fails within the client's timeout, in one line.
  kill(1);
  auto t0 = Clock::now();
  auto lost = c.put("/k/lost", "x");
  auto took = Clock::now() - t0;
  ASSERT_FALSE(lost.ok()) << "a write without quorum";
  EXPECT_EQ(lost.error().message.find('\n'), std::string::npos) << lost.error().message;
  EXPECT_NE(lost.error().message.find("within 2000 ms"), std::string::npos) << lost.error().message;
  EXPECT_LT(took, std::chrono::milliseconds(2000 + 1500));
  // A member back: a majority again, and everything resumes.
  start(1);
  auto again = eventually([&] { return c.put("/k/6", "6"); }, 20);
  ASSERT_TRUE(again.ok()) << again.error().message << "\n" << logs();
  auto deadline = Clock::now() + std::chrono::seconds(10);
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (!got.empty() && got.back() == "6") break;
    }
    if (Clock::now() > deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  watcher->stop();
  w.join();
  // Every change once, in order, across the watch's reconnects: no revision twice, none out
  // of order. (A write that timed out, for want of a leader or of quorum, may still have been
  // committed: the lost one, or a second "2" from the retry. Those are changes too.)
  for (size_t i = 1; i < revisions.size(); ++i)
    EXPECT_LT(revisions[i - 1], revisions[i]) << "event " << i;
  std::vector<std::string> want{"1", "2", "3", "4", "5", "6"};
  std::vector<std::string> values;
  for (const auto& v : got)
    if (v != "x" && (values.empty() || values.back() != v)) values.push_back(v);
  EXPECT_EQ(values, want);
}

}  // namespace
}  // namespace plumb::testing
