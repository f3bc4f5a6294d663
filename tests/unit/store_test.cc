#include "plugin/core/store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <iterator>
#include <thread>

#include "test_dir.h"

namespace plumb::core {
namespace {

AttachmentRecord record(const std::string& cid) {
  AttachmentRecord r;
  r.key = {"net", cid, "eth0"};
  r.netns = "/run/netns/" + cid;
  r.mode = "bridge";
  r.state = "ready";
  return r;
}

TEST(Store, KeepsAttachmentsByKey) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_TRUE((*store)->insertAttachment(record("a")).ok());
  ASSERT_TRUE((*store)->insertAttachment(record("b")).ok());
  auto dup = (*store)->insertAttachment(record("a"));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kExists);
  auto found = (*store)->findAttachment({"net", "a", "eth0"});
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->netns, "/run/netns/a");
  ASSERT_TRUE((*store)->deleteAttachment({"net", "a", "eth0"}).ok());
  EXPECT_FALSE((*store)->findAttachment({"net", "a", "eth0"})->has_value());
  EXPECT_EQ((*store)->listAttachments()->size(), 1u);
  // A network has attachments while any is recorded, of whatever container.
  EXPECT_TRUE(*(*store)->hasAttachments("net"));
  EXPECT_FALSE(*(*store)->hasAttachments("ne")) << "a prefix of a name is not the network";
  EXPECT_FALSE(*(*store)->hasAttachments("other"));
  ASSERT_TRUE((*store)->deleteAttachment({"net", "b", "eth0"}).ok());
  EXPECT_FALSE(*(*store)->hasAttachments("net"));
}

// A checkpoint (mode) of dir's store made by another connection, as another process would
// make it, leaving the WAL file in place: the frames the WAL held, and in *copied (when given)
// how many of them are in the database now.
int checkpointFromOutside(const std::string& dir, int mode, int* copied = nullptr) {
  sqlite3* h = nullptr;
  EXPECT_EQ(sqlite3_open_v2((dir + "/plumb.db").c_str(), &h, SQLITE_OPEN_READWRITE, nullptr),
            SQLITE_OK);
  // A first read opens the WAL; until then the connection knows of no log.
  EXPECT_EQ(sqlite3_exec(h, "SELECT count(*) FROM attachments", nullptr, nullptr, nullptr),
            SQLITE_OK);
  int log = -1, done = -1;
  EXPECT_EQ(sqlite3_wal_checkpoint_v2(h, "main", mode, &log, &done), SQLITE_OK)
      << sqlite3_errmsg(h);
  if (copied) *copied = done;
  sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  int persist = 1;
  sqlite3_file_control(h, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  sqlite3_close(h);
  return log;
}

TEST(Store, KeptStatementsHoldNoTransactionBetweenCalls) {
  // A connection keeps its compiled statements for the next call: one stepped to its first
  // row (a lookup) must still end its read, or no other process could ever reset the WAL.
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  for (const char* cid : {"a", "b", "c"}) ASSERT_TRUE((*store)->insertAttachment(record(cid)).ok());
  for (int i = 0; i < 3; ++i) {
    auto found = (*store)->findAttachment({"net", "b", "eth0"});
    ASSERT_TRUE(found.ok() && found->has_value());
    ASSERT_EQ((*store)->listAttachments("net")->size(), 3u);
  }
  // TRUNCATE empties the WAL only when no connection is reading.
  EXPECT_EQ(checkpointFromOutside(dir.path(), SQLITE_CHECKPOINT_TRUNCATE), 0);
  // And the kept statements still run, on the checkpointed store, with fresh bindings.
  EXPECT_EQ((*(*store)->findAttachment({"net", "c", "eth0"}))->netns, "/run/netns/c");
  EXPECT_FALSE((*store)->findAttachment({"net", "d", "eth0"})->has_value());
  ASSERT_TRUE((*store)->deleteAttachment({"net", "a", "eth0"}).ok());
  EXPECT_EQ((*store)->listAttachments()->size(), 2u);
}

TEST(Store, UpdatingARecordSomeoneRemovedFails) {
  // An attach whose record a concurrent DEL removed must fail (and undo), not finish on links
  // nothing records.
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  ASSERT_TRUE((*store)->insertAttachment(record("a")).ok());
  ASSERT_TRUE((*store)->updateAttachment(record("a")).ok());
  ASSERT_TRUE((*store)->deleteAttachment({"net", "a", "eth0"}).ok());
  auto st = (*store)->updateAttachment(record("a"));
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kNotFound);
  EXPECT_NE(st.error().message.find("was removed while it was being made"), std::string::npos);
  EXPECT_FALSE((*store)->findAttachment({"net", "a", "eth0"})->has_value());
}

TEST(Store, SurvivesReopenAndSharesStateAcrossConnections) {
  testing::TempDir dir;
  {
    auto store = Store::open(dir.path());
    ASSERT_TRUE(store.ok());
    ASSERT_TRUE((*store)->insertAttachment(record("a")).ok());
  }
  auto again = Store::open(dir.path());
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE((*again)->findAttachment({"net", "a", "eth0"})->has_value());
}

TEST(Store, AFailedTransactionLeavesNothing) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  bool inserted = false;
  auto st = (*store)->write([&](Db& db) -> Status {
    auto q = db.prepare(
        "INSERT INTO attachments "
        "VALUES('net','half','eth0','','bridge','','','','cni','adding','{}',0)");
    if (!q.ok()) return std::move(q).error();
    if (auto r = q->run(); !r.ok()) return r;
    // The row is there inside the transaction: the failure below is what must take it away.
    auto seen = db.prepare("SELECT count(*) FROM attachments WHERE container_id='half'");
    if (!seen.ok()) return std::move(seen).error();
    auto row = seen->step();
    inserted = row.ok() && *row && seen->integer(0) == 1;
    return fail(Errc::kInternal, "crash half-way");
  });
  ASSERT_TRUE(inserted) << "the INSERT itself must have worked for the test to mean anything";
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "crash half-way");
  EXPECT_FALSE((*store)->findAttachment({"net", "half", "eth0"})->has_value());
}

// A write inside a write joins it: a nested part that fails is undone alone, and a failure of
// the whole takes every nested part with it.
TEST(Store, AWriteInsideAWriteCommitsOnceWithIt) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  Store& s = **store;
  auto record = [](const std::string& cid) {
    AttachmentRecord r;
    r.key = {"net", cid, "eth0"};
    r.mode = "bridge";
    r.state = "adding";
    return r;
  };
  auto st = s.write([&](Db&) -> Status {
    if (auto a = s.insertAttachment(record("kept")); !a.ok()) return a;
    auto inner = s.write([&](Db&) -> Status {
      if (auto b = s.insertAttachment(record("undone")); !b.ok()) return b;
      return fail(Errc::kInternal, "inner part fails");
    });
    EXPECT_FALSE(inner.ok());
    auto seen = s.findAttachment({"net", "undone", "eth0"});
    EXPECT_TRUE(seen.ok() && !seen->has_value()) << "the failed nested part is undone at once";
    return {};
  });
  ASSERT_TRUE(st.ok()) << st.error().message;
  EXPECT_TRUE(s.findAttachment({"net", "kept", "eth0"})->has_value());
  EXPECT_FALSE(s.findAttachment({"net", "undone", "eth0"})->has_value());

  st = s.write([&](Db&) -> Status {
    EXPECT_TRUE(s.insertAttachment(record("inner")).ok());
    return fail(Errc::kInternal, "the whole fails");
  });
  ASSERT_FALSE(st.ok());
  EXPECT_FALSE(s.findAttachment({"net", "inner", "eth0"})->has_value())
      << "a nested write commits with its enclosing one or not at all";
}

// The WAL is copied into the database once it passes its limit: by the commit that takes it
// there, or, for a plugin process, by the helper it leaves (checkpointMain). Either way a
// later checkpoint finds nothing left to copy.
TEST(Store, TheWalIsCheckpointedPastItsLimitInlineOrByTheHelper) {
  auto fill = [](Store& s, int n) {
    for (int i = 0; i < n; ++i) ASSERT_TRUE(s.insertAttachment(record(std::to_string(i))).ok());
  };
  // What the WAL holds, and whether all of it is in the database already.
  auto walFrames = [](const std::string& dir, bool* all_copied) {
    int copied = -1;
    int log = checkpointFromOutside(dir, SQLITE_CHECKPOINT_PASSIVE, &copied);
    *all_copied = log == copied;
    return log;
  };
  {
    // No helper in a test binary: commits past the limit checkpoint themselves.
    testing::TempDir dir;
    auto store = Store::open(dir.path());
    ASSERT_TRUE(store.ok());
    (*store)->checkpointInBackground();
    fill(**store, 200);
    bool all_copied = false;
    int frames = walFrames(dir.path(), &all_copied);
    EXPECT_GE(frames, 0);
    EXPECT_LT(frames, 128) << "a commit past the limit restarted the WAL";
  }
  // The helper's part, run here: what the WAL holds (below the limit: no commit copied it)
  // goes into the database file, and the WAL starts again: its header and the one page of the
  // write that restarted it (the next process's open reads back that page alone).
  testing::TempDir dir;
  {
    auto store = Store::open(dir.path());
    ASSERT_TRUE(store.ok());
    fill(**store, 20);
  }
  std::string db = dir.path() + "/plumb.db";
  auto before = std::filesystem::file_size(db);
  EXPECT_EQ(Store::checkpointMain(dir.path()), 0);
  EXPECT_GT(std::filesystem::file_size(db), before) << "the helper wrote the WAL's pages";
  EXPECT_EQ(std::filesystem::file_size(db + "-wal"), 32u + 24u + 4096u);
  bool all_copied = false;
  EXPECT_EQ(walFrames(dir.path(), &all_copied), 1);
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  auto all = (*store)->listAttachments();
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 20u);
}

// A checkpoint that copied every frame restarts the WAL itself, so that the next commit (an
// attach's) neither writes a new WAL header nor waits for its sync: the WAL then holds the one
// frame of the restart. A checkpoint that could not copy everything (a reader still holds old
// frames) leaves the WAL as it is.
TEST(Store, ACheckpointRestartsTheWalForTheNextCommit) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  for (int i = 0; i < 40; ++i)
    ASSERT_TRUE((*store)->insertAttachment(record(std::to_string(i))).ok());
  int copied = -1;
  ASSERT_TRUE((*store)->checkpoint().ok());
  ASSERT_TRUE((*store)->insertAttachment(record("next")).ok());
  int after_restart = checkpointFromOutside(dir.path(), SQLITE_CHECKPOINT_PASSIVE, &copied);
  // That outside checkpoint copied everything and restarted nothing: the next commit restarts
  // the WAL itself, as every commit after a checkpoint did before, and holds its own frames only.
  ASSERT_TRUE((*store)->insertAttachment(record("one more")).ok());
  int one_commit = checkpointFromOutside(dir.path(), SQLITE_CHECKPOINT_PASSIVE, &copied);
  ASSERT_GE(one_commit, 1);
  EXPECT_EQ(after_restart, one_commit + 1)
      << "after the store's checkpoint the WAL held its restart's frame, then the commit's";
  EXPECT_EQ((*store)->listAttachments()->size(), 42u);

  // A reader on the old frames: the checkpoint copies what it can and restarts nothing.
  for (int i = 0; i < 10; ++i)
    ASSERT_TRUE((*store)->insertAttachment(record("r" + std::to_string(i))).ok());
  sqlite3* reader = nullptr;
  ASSERT_EQ(
      sqlite3_open_v2((dir.path() + "/plumb.db").c_str(), &reader, SQLITE_OPEN_READWRITE, nullptr),
      SQLITE_OK);
  ASSERT_EQ(
      sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM attachments", nullptr, nullptr, nullptr),
      SQLITE_OK);
  ASSERT_TRUE((*store)->insertAttachment(record("after-reader")).ok());
  int held = checkpointFromOutside(dir.path(), SQLITE_CHECKPOINT_PASSIVE, &copied);
  ASSERT_TRUE((*store)->checkpoint().ok());
  EXPECT_GE(checkpointFromOutside(dir.path(), SQLITE_CHECKPOINT_PASSIVE, &copied), held)
      << "a WAL a reader still reads is not restarted";
  sqlite3_exec(reader, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(reader);
  EXPECT_EQ((*store)->listAttachments()->size(), 53u);
}

// In a long-lived process the commit that takes the WAL past its limit only asks for the copy
// (and does not wait two fsyncs for it): the pool's own thread makes it.
TEST(Store, ALongLivedProcessCopiesTheWalOffTheCommittingThread) {
  testing::TempDir dir;
  std::string db = dir.path() + "/plumb.db";
  {
    auto store = Store::open(dir.path());
    ASSERT_TRUE(store.ok());
    int asked = 0;
    (*store)->checkpointElsewhere([&] {
      ++asked;
      return true;
    });
    auto before = std::filesystem::file_size(db);
    for (int i = 0; i < 200; ++i)
      ASSERT_TRUE((*store)->insertAttachment(record("s" + std::to_string(i))).ok());
    EXPECT_GT(asked, 0);
    EXPECT_EQ(std::filesystem::file_size(db), before) << "a commit copied the WAL itself";
  }
  auto before = std::filesystem::file_size(db);
  {
    StorePool pool(dir.path());
    {
      auto lease = pool.acquire();
      ASSERT_TRUE(lease.ok()) << lease.error().message;
      for (int i = 0; i < 200; ++i)
        ASSERT_TRUE((**lease).insertAttachment(record("p" + std::to_string(i))).ok());
    }
    for (int i = 0; i < 500 && std::filesystem::file_size(db) == before; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    EXPECT_GT(std::filesystem::file_size(db), before) << "the pool's thread copied the WAL";
  }  // and the pool stops its thread
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->listAttachments()->size(), 400u);
}

TEST(Store, ManyProcessesOpeningAFreshStoreAtOnceAllSucceed) {
  // The first use switches the database to WAL, which needs it to itself: a burst of CNI
  // invocations on a new dataDir once failed with "database is locked".
  testing::TempDir dir;
  std::vector<pid_t> children;
  for (int i = 0; i < 64; ++i) {
    pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto store = Store::open(dir.path());
      if (!store.ok()) _exit(1);
      _exit((*store)->insertAttachment(record("c" + std::to_string(i))).ok() ? 0 : 2);
    }
    children.push_back(pid);
  }
  for (pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "child exit " << WEXITSTATUS(status);
  }
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->listAttachments()->size(), 64u);
}

TEST(Store, TheFirstOpenWaitsOutAnotherWriterOfTheNewDatabase) {
  // The switch to WAL takes the new database's write lock, which SQLite tries once, never
  // through the busy handler. Another process holds it for a moment when it clears the
  // journal of one killed while switching: 32 concurrent ADDs on a fresh dataDir after a
  // kill -9 once failed 14 times with "database is locked". Here a connection holds that
  // lock for 300 ms (a bound that only has to outlast the open's way to the switch).
  testing::TempDir dir;
  sqlite3* other = nullptr;
  ASSERT_EQ(sqlite3_open((dir.path() + "/plumb.db").c_str(), &other), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(other, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr), SQLITE_OK);
  int committed = SQLITE_ERROR;
  std::thread done([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    committed = sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
  });
  auto store = Store::open(dir.path());
  done.join();
  sqlite3_close(other);
  ASSERT_EQ(committed, SQLITE_OK);
  ASSERT_TRUE(store.ok()) << store.error().message;
  EXPECT_TRUE((*store)->insertAttachment(record("a")).ok());
}

// Issue 15: a state directory others can write to, a planted plumb.db symlink, a relative path.
TEST(Store, StateOnlyWhereItsOwnerAloneWritesAndNeverThroughASymlink) {
  testing::TempDir dir;
  std::string open_dir = dir.path() + "/open";
  ASSERT_EQ(::mkdir(open_dir.c_str(), 0700), 0);
  ASSERT_EQ(::chmod(open_dir.c_str(), 01777), 0);
  auto shared = Store::open(open_dir);
  ASSERT_FALSE(shared.ok());
  EXPECT_NE(shared.error().message.find("can be written by other users"), std::string::npos)
      << shared.error().message;
  EXPECT_FALSE(std::filesystem::exists(open_dir + "/plumb.db"));

  std::string mine = dir.path() + "/mine";
  ASSERT_EQ(::mkdir(mine.c_str(), 0700), 0);
  std::string victim = dir.path() + "/victim.db";
  ASSERT_EQ(::symlink(victim.c_str(), (mine + "/plumb.db").c_str()), 0);
  auto planted = Store::open(mine);
  ASSERT_FALSE(planted.ok());
  EXPECT_FALSE(std::filesystem::exists(victim)) << "nothing was created through the symlink";

  EXPECT_FALSE(Store::open("relative/state").ok());

  std::string good = dir.path() + "/good";
  ASSERT_TRUE(Store::open(good).ok());
  struct stat st {};
  ASSERT_EQ(::stat((good + "/plumb.db").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(Store, UnusableDirectoryIsAClearError) {
  auto store = Store::open("/proc/plumb-cannot-be-here");
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.error().message.find("failed to create state directory"), std::string::npos);
}

// SQLite's math functions are the only callers of libm in plumb, which in the release build
// loads it on their first use (base/libm.cc) rather than at every start: each answers as libm
// would. (The sanitizer build links SQLite and libm as shared libraries.)
TEST(Store, SqliteMathFunctionsAnswerAsLibmWould) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(":memory:", &db), SQLITE_OK);
  const char* sql =
      "SELECT acos(-1), acosh(2), asin(1), asinh(1), atan(1), atanh(0.5), cos(pi()), cosh(1), "
      "exp(1), ln(exp(2)), sin(pi() / 2), sinh(1), sqrt(16), tan(pi() / 4), tanh(1), "
      "trunc(-2.7), atan2(1, 1), mod(7.5, 2), pow(2, 10)";
  const double want[] = {3.14159265358979,
                         1.31695789692482,
                         1.5707963267949,
                         0.881373587019543,
                         0.785398163397448,
                         0.549306144334055,
                         -1.0,
                         1.54308063481524,
                         2.71828182845905,
                         2.0,
                         1.0,
                         1.1752011936438,
                         4.0,
                         1.0,
                         0.761594155955765,
                         -2.0,
                         0.785398163397448,
                         1.5,
                         1024.0};
  sqlite3_stmt* stmt = nullptr;
  ASSERT_EQ(sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  ASSERT_EQ(sqlite3_step(stmt), SQLITE_ROW) << sqlite3_errmsg(db);
  ASSERT_EQ(sqlite3_column_count(stmt), static_cast<int>(std::size(want)));
  for (int i = 0; i < sqlite3_column_count(stmt); ++i) {
    EXPECT_EQ(sqlite3_column_type(stmt, i), SQLITE_FLOAT) << sqlite3_column_name(stmt, i);
    EXPECT_NEAR(sqlite3_column_double(stmt, i), want[i], 1e-12) << sqlite3_column_name(stmt, i);
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
}

}  // namespace
}  // namespace plumb::core
