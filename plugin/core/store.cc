#include "plugin/core/store.h"

#include "base/backoff.h"
#include "base/fd.h"
#include "base/process.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <mutex>
#include <optional>
#include <system_error>

namespace plumb::core {
namespace {

constexpr int kSchemaVersion = 7;
constexpr int kBusyTimeoutMs = 30000;
// About a dozen ADDs' worth of pages (4 KiB each).
constexpr int kCheckpointPages = 128;
// Where a commit checkpoints itself even when a helper should (one never came).
constexpr int kInlineCheckpointPages = 1000;

const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS networks(
  name TEXT PRIMARY KEY, frontend TEXT NOT NULL, config TEXT NOT NULL, created INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS attachments(
  network TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
  netns TEXT NOT NULL, mode TEXT NOT NULL, host_ifname TEXT NOT NULL, bridge TEXT NOT NULL,
  mac TEXT NOT NULL, frontend TEXT NOT NULL, state TEXT NOT NULL, detail TEXT NOT NULL,
  created INTEGER NOT NULL,
  PRIMARY KEY(network, container_id, ifname)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_subnets(subnet TEXT PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_free(
  subnet TEXT NOT NULL, lo BLOB NOT NULL, hi BLOB NOT NULL, PRIMARY KEY(subnet, lo)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_allocs(
  subnet TEXT NOT NULL, ip BLOB NOT NULL, addr TEXT NOT NULL, prefix INTEGER NOT NULL,
  gateway TEXT NOT NULL, network TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
  PRIMARY KEY(subnet, ip)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS ip_allocs_owner ON ip_allocs(network, container_id, ifname);
CREATE INDEX IF NOT EXISTS ip_allocs_ip ON ip_allocs(ip);
CREATE TABLE IF NOT EXISTS endpoints(
  network TEXT NOT NULL, id TEXT NOT NULL, config TEXT NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY(network, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_pools(
  id TEXT PRIMARY KEY, subnet TEXT NOT NULL, frontend TEXT NOT NULL, config TEXT NOT NULL)
  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_released(
  ip BLOB NOT NULL, addr TEXT NOT NULL, PRIMARY KEY(ip, addr)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ip_cursor(
  subnet TEXT NOT NULL, range_key TEXT NOT NULL, last BLOB NOT NULL,
  PRIMARY KEY(subnet, range_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS vf_claims(
  id INTEGER PRIMARY KEY AUTOINCREMENT, pci TEXT NOT NULL UNIQUE, pf TEXT NOT NULL,
  vf INTEGER NOT NULL, network TEXT NOT NULL, container_id TEXT NOT NULL, ifname TEXT NOT NULL,
  original TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS vf_claims_owner ON vf_claims(network, container_id, ifname);
CREATE TABLE IF NOT EXISTS services(
  name TEXT NOT NULL, proto TEXT NOT NULL, guest TEXT NOT NULL, netns TEXT NOT NULL,
  address TEXT NOT NULL, port INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY(name, proto, guest)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS links(
  guest TEXT NOT NULL, name TEXT NOT NULL, proto TEXT NOT NULL, netns TEXT NOT NULL,
  port INTEGER NOT NULL, created INTEGER NOT NULL,
  PRIMARY KEY(guest, name, proto)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster_leases(
  prefix TEXT NOT NULL, host TEXT NOT NULL, lease INTEGER NOT NULL, renewed INTEGER NOT NULL,
  boot TEXT NOT NULL, PRIMARY KEY(prefix, host)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS cluster_blocks(
  prefix TEXT NOT NULL, host TEXT NOT NULL, subnet TEXT NOT NULL, block TEXT NOT NULL,
  PRIMARY KEY(prefix, host, block)) WITHOUT ROWID;
)sql";

// SQLite's own busy_timeout sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50, 100 ms between
// tries: with a few dozen plugin processes at once, a writer sleeps far longer than the write
// it waits for takes (a few hundred microseconds). Store::onBusy tries again after 50 us,
// doubling up to 1 ms, for kBusyTimeoutMs in all.
constexpr auto kBusyPauseCap = std::chrono::microseconds(1000);

Error sqlError(sqlite3* h, const std::string& what) {
  int rc = sqlite3_extended_errcode(h);
  Errc code =
      (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED ? Errc::kTryAgain : Errc::kIo;
  std::string text = sqlite3_errmsg(h);
  // "disk I/O error" or "database is locked" alone does not say which: the extended code does
  // (sqlite3.h).
  if ((rc & 0xff) == SQLITE_IOERR || (rc & 0xff) == SQLITE_BUSY)
    text += " (SQLite code " + std::to_string(rc) + ")";
  return makeError(code, what + ": " + text);
}

}  // namespace

sqlite3_stmt* StmtCache::take(const char* sql) {
  auto it = free_.find(std::string_view(sql));
  if (it == free_.end() || it->second.empty()) return nullptr;
  sqlite3_stmt* s = it->second.back();
  it->second.pop_back();
  --kept_;
  return s;
}

void StmtCache::giveBack(sqlite3_stmt* s) {
  // A statement stepped part-way holds a read transaction until it is reset.
  (void)sqlite3_reset(s);  // returns the last step's error, reported already
  (void)sqlite3_clear_bindings(s);
  if (kept_ >= kMaxKept) {
    sqlite3_finalize(s);
    return;
  }
  free_[sqlite3_sql(s)].push_back(s);
  ++kept_;
}

void StmtCache::clear() {
  for (auto& [sql, list] : free_) {
    for (auto* s : list) sqlite3_finalize(s);
  }
  free_.clear();
  kept_ = 0;
}

Result<Stmt> Db::prepare(const char* sql) {
  if (cache_) {
    if (sqlite3_stmt* kept = cache_->take(sql)) return Stmt(h_, kept, cache_);
  }
  sqlite3_stmt* s = nullptr;
  if (sqlite3_prepare_v3(h_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
    return sqlError(h_, "failed to prepare a store query");
  }
  return Stmt(h_, s, cache_);
}

Status Db::exec(const char* sql) {
  if (sqlite3_exec(h_, sql, nullptr, nullptr, nullptr) != SQLITE_OK) return sqlError(h_, "store");
  return {};
}

namespace {

// One statement, through the connection's kept ones (BEGIN, COMMIT: every transaction's).
Status run(Db& db, const char* sql) {
  PLUMB_ASSIGN(auto q, db.prepare(sql));
  return q.run();
}

}  // namespace

Stmt::~Stmt() {
  if (!s_) return;
  if (cache_) {
    cache_->giveBack(s_);
  } else {
    sqlite3_finalize(s_);
  }
}

Stmt& Stmt::bind(int i, const std::string& v) {
  sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}
Stmt& Stmt::bind(int i, long long v) {
  sqlite3_bind_int64(s_, i, v);
  return *this;
}
Stmt& Stmt::bindBlob(int i, const std::string& v) {
  sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
  return *this;
}

Result<bool> Stmt::step() {
  int rc = sqlite3_step(s_);
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  Error e = sqlError(db_, "store query failed");
  if ((rc & 0xff) == SQLITE_CONSTRAINT) e.code = Errc::kExists;
  return e;
}

Status Stmt::run() {
  for (;;) {
    PLUMB_ASSIGN(bool row, step());
    if (!row) return {};
  }
}

std::string Stmt::text(int col) const {
  const auto* p = sqlite3_column_text(s_, col);
  return p ? std::string(reinterpret_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s_, col)))
           : "";
}
std::string Stmt::blob(int col) const {
  const auto* p = sqlite3_column_blob(s_, col);
  return p ? std::string(static_cast<const char*>(p),
                         static_cast<size_t>(sqlite3_column_bytes(s_, col)))
           : "";
}
long long Stmt::integer(int col) const { return sqlite3_column_int64(s_, col); }

Result<std::unique_ptr<Store>> Store::open(const std::string& dir) {
  // The state is plumb's alone: an absolute directory that only its owner (the user plumb
  // runs as) can write to, and files in it that are not symbolic links. A plumb.db planted as a
  // symlink in a world-writable directory once had root create the file it pointed to.
  if (dir.empty() || dir[0] != '/')
    return fail(Errc::kInvalid, "state directory '" + dir + "' is not an absolute path");
  if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
    return failErrno(errno, "failed to create state directory " + dir);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0)
    return failErrno(errno, "failed to use state directory " + dir);
  if (!S_ISDIR(st.st_mode))
    return fail(Errc::kInvalid, "state directory " + dir + " is not a directory");
  if (st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
    return fail(Errc::kInvalid, "state directory " + dir +
                                    " can be written by other users; plumb keeps its state only "
                                    "where its own user alone can write");
  }
  std::string path = dir + "/plumb.db";
  // Made here, 0600 and never through a symlink, before SQLite opens it (NOFOLLOW too). Only
  // when it is not there yet: closing any descriptor of a file drops every POSIX lock the
  // process holds on it, and in the daemon other connections of this process hold SQLite's
  // locks on an existing store (dropping them had concurrent writers fail with "disk I/O
  // error"). A file just made exclusively has no connection yet; the mutex keeps this
  // process's other opens from starting on it before the descriptor is closed.
  {
    static std::mutex creating;
    std::lock_guard lock(creating);
    struct stat have {};
    if (::lstat(path.c_str(), &have) != 0) {
      if (errno != ENOENT) return failErrno(errno, "failed to open store " + path);
      UniqueFd made(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
      if (!made.valid() && errno != EEXIST) return failErrno(errno, "failed to open store " + path);
    } else if (S_ISLNK(have.st_mode)) {
      return failErrno(ELOOP, "failed to open store " + path);
    }
  }
  sqlite3* h = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &h,
                           SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                               SQLITE_OPEN_EXRESCODE | SQLITE_OPEN_NOFOLLOW,
                           nullptr);
  if (rc != SQLITE_OK) {
    std::string msg = h ? sqlite3_errmsg(h) : "out of memory";
    sqlite3_close(h);
    return fail(Errc::kIo, "failed to open store " + path + ": " + msg);
  }
  std::unique_ptr<Store> store(new Store(h, path));
  sqlite3_busy_handler(h, &Store::onBusy, store.get());
  // A plugin process lives for one command. Closing the last connection would checkpoint the
  // WAL into the database (two fsyncs) and delete the WAL and its index, which the next
  // process then creates again (a directory fsync): the WAL stays instead, and is copied into
  // the database once it is past kCheckpointPages (by the commit that takes it there, or by a
  // helper: checkpointInBackground). Each open reads back what the WAL holds, so it is kept
  // short.
  int persist = 1;
  (void)sqlite3_file_control(h, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  (void)sqlite3_db_config(h, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, nullptr);
  sqlite3_wal_hook(h, &Store::onCommit, store.get());
  PLUMB_TRY(store->migrate());
  return store;
}

// A wait is one run of calls, each coming right after the pause of the one before. SQLite
// resets its count of tries when a statement steps, not when a statement is prepared: a wait
// while preparing (reading the schema) can begin with tries > 0, and counting on tries == 0
// alone would have it give up at once, on the deadline of a wait long past ("database is
// locked"). Per connection, not per thread: a pool's connection serves one thread after
// another.
int Store::onBusy(void* store, int tries) {
  auto* self = static_cast<Store*>(store);
  auto now = std::chrono::steady_clock::now();
  if (tries == 0 || !self->busy_wait_ || now - self->busy_paused_ > 10 * kBusyPauseCap)
    self->busy_wait_.emplace(std::chrono::milliseconds(kBusyTimeoutMs), kBusyPauseCap);
  bool again = self->busy_wait_->pause();
  self->busy_paused_ = std::chrono::steady_clock::now();
  return again ? 1 : 0;
}

int Store::onCommit(void* store, sqlite3* h, const char* db, int frames) {
  auto* self = static_cast<Store*>(store);
  self->wal_frames_ = frames;
  int limit = self->background_checkpoint_ ? kInlineCheckpointPages : kCheckpointPages;
  if (frames < limit) return SQLITE_OK;
  if (!self->ask_checkpoint_ || frames >= kInlineCheckpointPages || !self->ask_checkpoint_())
    (void)sqlite3_wal_checkpoint_v2(h, db, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
  return SQLITE_OK;
}

Store::~Store() {
  statements_.clear();
  sqlite3_close_v2(h_);
  if (!background_checkpoint_ || wal_frames_ < kCheckpointPages) return;
  // plumb itself again, with nothing of this process's but the state dir: it outlives this
  // process (init reaps it) and holds none of its descriptors.
  // One that cannot start leaves the copy to the commit past kInlineCheckpointPages.
  std::string dir = path_.substr(0, path_.rfind('/'));
  std::string env = "PLUMB_CHECKPOINT=" + dir;
  char* argv[] = {const_cast<char*>("plumb-checkpoint"), nullptr};
  char* envp[] = {env.data(), nullptr};
  (void)spawnSelf(argv, envp);
}

int Store::checkpointMain(const std::string& dir) {
  auto store = open(dir);
  if (!store.ok()) return 1;
  // One helper at a time; one that finds another at work has nothing to do.
  std::string lock_path = (*store)->path_ + ".checkpoint-lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return 0;
  // TRUNCATE, not PASSIVE: the WAL must also start again from empty. What a checkpoint copied
  // is noted only in the WAL index, which the next process to open the store alone rebuilds
  // from the WAL file, as if nothing had been copied: a WAL that is not emptied here would
  // never restart, and every open would read all of it back.
  int rc =
      sqlite3_wal_checkpoint_v2((*store)->h_, "main", SQLITE_CHECKPOINT_TRUNCATE, nullptr, nullptr);
  if (rc != SQLITE_OK) return 1;
  // And the new WAL's header, with its sync, written here rather than by the next ADD.
  return (*store)->restartWal().ok() ? 0 : 1;
}

Result<bool> Store::current() {
  Db db(h_, &statements_);
  // Scoped: a live statement holds a read transaction, and journal_mode cannot change in one.
  PLUMB_ASSIGN(auto version_q, db.prepare("PRAGMA user_version"));
  PLUMB_ASSIGN(bool row, version_q.step());
  return row && version_q.integer(0) == kSchemaVersion;
}

Status Store::migrate() {
  Db db(h_);
  // WAL: readers never block writers; synchronous=NORMAL: a crash loses at most the last
  // commits after power loss, never leaves a torn record.
  PLUMB_TRY(db.exec("PRAGMA synchronous=NORMAL; PRAGMA journal_size_limit=1048576"));
  PLUMB_ASSIGN(bool up_to_date, current());
  if (up_to_date) return {};
  // First use: switching to WAL needs the database to itself, so first-time set-up is
  // serialised. The switch takes the write lock once, never through the busy handler: another
  // process may hold it for a moment (clearing the journal of one killed while switching), so
  // a busy answer is tried again, as onBusy would.
  std::string lock_path = path_ + ".init-lock";
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (!lock.valid()) return failErrno(errno, "failed to set up store " + path_);
  if (::flock(lock.get(), LOCK_EX) != 0) return failErrno(errno, "failed to set up store " + path_);
  PLUMB_ASSIGN(up_to_date, current());
  if (up_to_date) return {};
  Backoff wait(std::chrono::milliseconds(kBusyTimeoutMs), kBusyPauseCap);
  for (;;) {
    // It answers with the mode it is in: one that did not become WAL is an error, not a store
    // that would go on in rollback mode, where readers block writers.
    PLUMB_ASSIGN(auto mode, db.prepare("PRAGMA journal_mode=WAL"));
    auto row = mode.step();
    if (!row.ok() && row.error().code == Errc::kTryAgain && wait.pause()) continue;
    if (!row.ok()) return std::move(row).error().wrap("failed to set up store " + path_);
    std::string now = *row ? mode.text(0) : "unknown";
    if (now != "wal")
      return fail(Errc::kIo, "failed to set up store " + path_ + ": its journal mode stayed " +
                                 now + " instead of becoming WAL");
    break;
  }
  return transaction("BEGIN IMMEDIATE", [&](Db& d) -> Status {
    PLUMB_TRY(d.exec(kSchema));
    return d.exec(("PRAGMA user_version=" + std::to_string(kSchemaVersion)).c_str());
  });
}

Status Store::transaction(const char* begin, const std::function<Status(Db&)>& fn) {
  if (in_transaction_.load() == std::this_thread::get_id()) {
    // Inside fn of an enclosing transaction: a savepoint, undone alone when fn fails.
    Db db(h_, &statements_);
    PLUMB_TRY(run(db, "SAVEPOINT nested"));
    Status st = fn(db);
    if (!st.ok()) {
      (void)run(db, "ROLLBACK TO nested");
      (void)run(db, "RELEASE nested");
      return st;
    }
    return run(db, "RELEASE nested");
  }
  std::lock_guard lock(mu_);
  in_transaction_ = std::this_thread::get_id();
  struct Leave {
    std::atomic<std::thread::id>& id;
    ~Leave() { id = std::thread::id(); }
  } leave{in_transaction_};
  Db db(h_, &statements_);
  PLUMB_TRY(run(db, begin));
  Status st = fn(db);
  if (!st.ok()) {
    (void)run(db, "ROLLBACK");
    return st;
  }
  auto committed = run(db, "COMMIT");
  if (!committed.ok()) {
    (void)run(db, "ROLLBACK");
    return committed;
  }
  return {};
}

Status Store::write(const std::function<Status(Db&)>& fn) {
  return transaction("BEGIN IMMEDIATE", fn);
}
Status Store::read(const std::function<Status(Db&)>& fn) { return transaction("BEGIN", fn); }

namespace {

AttachmentRecord readRecord(const Stmt& q) {
  AttachmentRecord r;
  r.key = {q.text(0), q.text(1), q.text(2)};
  r.netns = q.text(3);
  r.mode = q.text(4);
  r.host_ifname = q.text(5);
  r.via = q.text(6);
  r.mac = q.text(7);
  r.frontend = q.text(8);
  r.state = q.text(9);
  (void)r.readDetail(q.text(10));  // a damaged detail reads as no addresses, as before
  r.created = q.integer(11);
  return r;
}

constexpr const char* kRecordColumns =
    "network, container_id, ifname, netns, mode, host_ifname, bridge, mac, frontend, state, "
    "detail, created";

}  // namespace

Status Store::insertAttachment(const AttachmentRecord& r) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("INSERT INTO attachments VALUES(?,?,?,?,?,?,?,?,?,?,?,?)"));
    q.bind(1, r.key.network).bind(2, r.key.container_id).bind(3, r.key.ifname).bind(4, r.netns);
    q.bind(5, r.mode).bind(6, r.host_ifname).bind(7, r.via).bind(8, r.mac).bind(9, r.frontend);
    q.bind(10, r.state)
        .bind(11, r.detailJson())
        .bind(12, r.created ? r.created : static_cast<long long>(::time(nullptr)));
    auto st = q.run();
    if (!st.ok() && st.error().code == Errc::kExists) {
      return fail(Errc::kExists, "attachment " + r.key.str() + " already exists");
    }
    return st;
  });
}

Status Store::updateAttachment(const AttachmentRecord& r) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(
        auto q,
        db.prepare(
            "UPDATE attachments SET netns=?, mode=?, host_ifname=?, bridge=?, mac=?, "
            "frontend=?, state=?, detail=? WHERE network=? AND container_id=? AND ifname=?"));
    q.bind(1, r.netns).bind(2, r.mode).bind(3, r.host_ifname).bind(4, r.via).bind(5, r.mac);
    q.bind(6, r.frontend).bind(7, r.state).bind(8, r.detailJson());
    q.bind(9, r.key.network).bind(10, r.key.container_id).bind(11, r.key.ifname);
    PLUMB_TRY(q.run());
    // Removed while it was being made (a DEL or DeleteEndpoint that overtook the attach): the
    // attach must fail and undo, not finish on links nothing records.
    if (sqlite3_changes(db.handle()) == 0) {
      return fail(Errc::kNotFound,
                  "attachment " + r.key.str() + " was removed while it was being made");
    }
    return {};
  });
}

Result<std::optional<AttachmentRecord>> Store::findAttachment(const AttachmentKey& key) {
  std::optional<AttachmentRecord> out;
  PLUMB_TRY(read([&](Db& db) -> Status {
    std::string sql = std::string("SELECT ") + kRecordColumns +
                      " FROM attachments WHERE network=? AND container_id=? AND ifname=?";
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    q.bind(1, key.network).bind(2, key.container_id).bind(3, key.ifname);
    PLUMB_ASSIGN(bool row, q.step());
    if (row) out = readRecord(q);
    return {};
  }));
  return out;
}

Status Store::deleteAttachment(const AttachmentKey& key) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(
        auto q,
        db.prepare("DELETE FROM attachments WHERE network=? AND container_id=? AND ifname=?"));
    q.bind(1, key.network).bind(2, key.container_id).bind(3, key.ifname);
    return q.run();
  });
}

Result<std::vector<AttachmentRecord>> Store::listAttachments(const std::string& network) {
  std::vector<AttachmentRecord> out;
  PLUMB_TRY(read([&](Db& db) -> Status {
    std::string sql = std::string("SELECT ") + kRecordColumns + " FROM attachments" +
                      (network.empty() ? "" : " WHERE network=?") +
                      " ORDER BY network, container_id, ifname";
    PLUMB_ASSIGN(auto q, db.prepare(sql.c_str()));
    if (!network.empty()) q.bind(1, network);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      out.push_back(readRecord(q));
    }
    return {};
  }));
  return out;
}

Result<bool> Store::hasAttachments(const std::string& network) {
  bool any = false;
  PLUMB_TRY(read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("SELECT 1 FROM attachments WHERE network=? LIMIT 1"));
    q.bind(1, network);
    PLUMB_ASSIGN(any, q.step());
    return {};
  }));
  return any;
}

namespace {

long long now() { return static_cast<long long>(::time(nullptr)); }

// Networks and endpoints share a shape: two key columns, the front end's config, a time.
template <class Record>
Result<std::vector<Record>> selectRecords(Store& store, const char* sql,
                                          const std::vector<std::string>& args) {
  std::vector<Record> out;
  PLUMB_TRY(store.read([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare(sql));
    for (size_t i = 0; i < args.size(); ++i) q.bind(static_cast<int>(i + 1), args[i]);
    for (;;) {
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) break;
      out.push_back(Record{q.text(0), q.text(1), q.text(2), q.integer(3)});
    }
    return {};
  }));
  return out;
}

template <class Record>
Result<std::optional<Record>> selectRecord(Store& store, const char* sql,
                                           const std::vector<std::string>& args) {
  PLUMB_ASSIGN(auto all, selectRecords<Record>(store, sql, args));
  if (all.empty()) return std::optional<Record>();
  return std::optional<Record>(std::move(all.front()));
}

Status insertRecord(Store& store, const char* sql, const std::string& k1, const std::string& k2,
                    const std::string& config, long long created, const std::string& what) {
  return store.write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare(sql));
    q.bind(1, k1).bind(2, k2).bind(3, config).bind(4, created ? created : now());
    auto st = q.run();
    if (!st.ok() && st.error().code == Errc::kExists)
      return fail(Errc::kExists, what + " already exists");
    return st;
  });
}

}  // namespace

Status Store::insertNetwork(const NetworkRecord& n) {
  return insertRecord(*this, "INSERT INTO networks VALUES(?,?,?,?)", n.name, n.frontend, n.config,
                      n.created, "network " + n.name);
}

Result<std::optional<NetworkRecord>> Store::findNetwork(const std::string& name) {
  return selectRecord<NetworkRecord>(
      *this, "SELECT name, frontend, config, created FROM networks WHERE name=?", {name});
}

Result<std::vector<NetworkRecord>> Store::listNetworks(const std::string& frontend) {
  return selectRecords<NetworkRecord>(
      *this,
      "SELECT name, frontend, config, created FROM networks WHERE ?1='' OR frontend=?1 "
      "ORDER BY name",
      {frontend});
}

Status Store::deleteNetwork(const std::string& name) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto eps, db.prepare("DELETE FROM endpoints WHERE network=?"));
    eps.bind(1, name);
    PLUMB_TRY(eps.run());
    PLUMB_ASSIGN(auto q, db.prepare("DELETE FROM networks WHERE name=?"));
    q.bind(1, name);
    return q.run();
  });
}

Status Store::insertEndpoint(const EndpointRecord& e) {
  return insertRecord(*this, "INSERT INTO endpoints VALUES(?,?,?,?)", e.network, e.id, e.config,
                      e.created, "endpoint " + e.id);
}

Status Store::updateEndpoint(const EndpointRecord& e) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("UPDATE endpoints SET config=? WHERE network=? AND id=?"));
    q.bind(1, e.config).bind(2, e.network).bind(3, e.id);
    return q.run();
  });
}

Result<std::optional<EndpointRecord>> Store::findEndpoint(const std::string& network,
                                                          const std::string& id) {
  return selectRecord<EndpointRecord>(
      *this, "SELECT network, id, config, created FROM endpoints WHERE network=? AND id=?",
      {network, id});
}

Result<std::vector<EndpointRecord>> Store::listEndpoints(const std::string& network) {
  return selectRecords<EndpointRecord>(
      *this, "SELECT network, id, config, created FROM endpoints WHERE network=? ORDER BY id",
      {network});
}

Status Store::deleteEndpoint(const std::string& network, const std::string& id) {
  return write([&](Db& db) -> Status {
    PLUMB_ASSIGN(auto q, db.prepare("DELETE FROM endpoints WHERE network=? AND id=?"));
    q.bind(1, network).bind(2, id);
    return q.run();
  });
}

Status Store::checkpoint() {
  int log = 0, copied = 0;
  {
    std::lock_guard lock(mu_);
    if (sqlite3_wal_checkpoint_v2(h_, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &copied) !=
        SQLITE_OK)
      return sqlError(h_, "failed to checkpoint store " + path_);
  }
  if (log <= 0 || copied < log) return {};  // a reader holds frames: the WAL cannot restart
  return restartWal();
}

Status Store::restartWal() {
  // A write that changes nothing: the schema version, put back as it is.
  return write([](Db& db) -> Status {
    long long version = 0;
    {
      PLUMB_ASSIGN(auto q, db.prepare("PRAGMA user_version"));
      PLUMB_ASSIGN(bool row, q.step());
      if (!row) return fail(Errc::kIo, "the store answered no schema version");
      version = q.integer(0);
    }
    return db.exec(("PRAGMA user_version=" + std::to_string(version)).c_str());
  });
}

StorePool::~StorePool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  checkpoint_cv_.notify_all();
  if (checkpoint_thread_.joinable()) checkpoint_thread_.join();
}

bool StorePool::askCheckpoint() {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (!checkpoint_thread_.joinable()) {
      try {
        checkpoint_thread_ = std::thread(&StorePool::checkpointer, this);
      } catch (const std::system_error&) {
        return false;  // no thread to be had: the commit copies the WAL itself
      }
    }
    checkpoint_wanted_ = true;
  }
  checkpoint_cv_.notify_one();
  return true;
}

void StorePool::checkpointer() {
  std::unique_ptr<Store> own;
  std::unique_lock lock(mu_);
  for (;;) {
    checkpoint_cv_.wait(lock, [&] { return checkpoint_wanted_ || stopping_; });
    if (stopping_) return;
    checkpoint_wanted_ = false;
    lock.unlock();
    // A failure is left for the next commit past the limit to ask again; a WAL that keeps
    // growing is checkpointed inline past kInlineCheckpointPages.
    if (!own) {
      auto opened = Store::open(dir_);
      if (opened.ok()) own = std::move(*opened);
    }
    if (own) (void)own->checkpoint();
    lock.lock();
  }
}

StorePool::Lease::~Lease() {
  if (!store_) return;
  std::lock_guard lock(pool_.mu_);
  pool_.idle_.push_back(std::move(store_));
}

Result<StorePool::Lease> StorePool::acquire() {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      auto s = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(s));
    }
  }
  PLUMB_ASSIGN(auto s, Store::open(dir_));
  s->checkpointElsewhere([this] { return askCheckpoint(); });
  return Lease(*this, std::move(s));
}

}  // namespace plumb::core
