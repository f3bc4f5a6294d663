// The one state shared by every front end: networks, attachments and IP allocations in SQLite
// (WAL). Short transactions; writers from many processes serialise only on SQLite's write lock,
// so kernel work never waits behind another container's.
#pragma once

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "base/backoff.h"
#include "base/result.h"
#include "plugin/core/types.h"

namespace plumb::core {

class Stmt;

// A connection's compiled statements, kept for the next transaction that runs the same SQL:
// compiling one costs more than running it, and a long-lived process (the daemon, the resident
// CNI service) runs the same few dozen again and again. Used by one thread at a time (the
// Store's transaction lock).
class StmtCache {
 public:
  StmtCache() = default;
  StmtCache(const StmtCache&) = delete;
  StmtCache& operator=(const StmtCache&) = delete;
  ~StmtCache() { clear(); }
  sqlite3_stmt* take(const char* sql);  // nullptr: none kept
  void giveBack(sqlite3_stmt* s);       // reset and kept, or finalized when enough are kept
  void clear();                         // finalizes every one kept

 private:
  static constexpr size_t kMaxKept = 64;
  std::map<std::string, std::vector<sqlite3_stmt*>, std::less<>> free_;
  size_t kept_ = 0;
};

// One SQL connection. Callers go through Store::write / Store::read, which hand out a Db for
// the length of one transaction.
class Db {
 public:
  explicit Db(sqlite3* h, StmtCache* cache = nullptr) : h_(h), cache_(cache) {}
  Result<Stmt> prepare(const char* sql);  // one statement
  Status exec(const char* sql);           // any number of statements, compiled each time
  sqlite3* handle() const { return h_; }

 private:
  sqlite3* h_;
  StmtCache* cache_;
};

class Stmt {
 public:
  Stmt(sqlite3* db, sqlite3_stmt* s, StmtCache* cache = nullptr) : db_(db), s_(s), cache_(cache) {}
  Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)), cache_(o.cache_) {}
  Stmt(const Stmt&) = delete;
  Stmt& operator=(const Stmt&) = delete;
  Stmt& operator=(Stmt&&) = delete;
  ~Stmt();

  Stmt& bind(int i, const std::string& v);
  Stmt& bind(int i, long long v);
  Stmt& bindBlob(int i, const std::string& v);
  // SQLITE_ROW: true; SQLITE_DONE: false; anything else: an error.
  Result<bool> step();
  Status run();  // step until done
  std::string text(int col) const;
  std::string blob(int col) const;
  long long integer(int col) const;

 private:
  sqlite3* db_;
  sqlite3_stmt* s_;
  StmtCache* cache_;  // given back there, when not null
};

class Store {
 public:
  // Opens (creating when needed) dir/plumb.db.
  static Result<std::unique_ptr<Store>> open(const std::string& dir);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }

  // For a process that runs one command and exits (the CNI plugin, the command line): once
  // the WAL has grown past its limit, copying it into the database (with two fsyncs) is left
  // to a helper process started when this Store closes, instead of landing on the command
  // whose commit crossed the limit. Without it (the daemon), that commit does it.
  void checkpointInBackground() { background_checkpoint_ = helper_available_; }
  // The helper is the plumb binary itself (plugin/main.cc says so at start-up; a test binary
  // that links the store never starts itself): PLUMB_CHECKPOINT=<state dir> in its
  // environment makes it checkpointMain.
  static void helperIsThisProgram() { helper_available_ = true; }
  static int checkpointMain(const std::string& dir);
  // For a long-lived process (StorePool): a commit that takes the WAL past its limit calls ask
  // (which must not block) rather than copying the WAL itself, two fsyncs later. The copy
  // runs elsewhere, through checkpoint(): it does not hold up writers. ask returns false when
  // it cannot take it (the commit then copies the WAL itself).
  void checkpointElsewhere(std::function<bool()> ask) { ask_checkpoint_ = std::move(ask); }
  // SQLite's PASSIVE checkpoint; when it copied every frame, the WAL is restarted too
  // (restartWal).
  Status checkpoint();

  // Runs fn inside BEGIN IMMEDIATE ... COMMIT; rolls back when fn fails. Called from inside
  // fn (the same thread), a write joins the enclosing transaction as a savepoint: what several
  // parts of one step write commits once, or not at all.
  Status write(const std::function<Status(Db&)>& fn);
  Status read(const std::function<Status(Db&)>& fn);

  // Attachments.
  Status insertAttachment(const AttachmentRecord& r);  // kExists when the key is taken
  // kNotFound when the record is gone (removed while its attach was under way).
  Status updateAttachment(const AttachmentRecord& r);
  Result<std::optional<AttachmentRecord>> findAttachment(const AttachmentKey& key);
  Status deleteAttachment(const AttachmentKey& key);
  Result<std::vector<AttachmentRecord>> listAttachments(const std::string& network = "");
  // Whether network has any attachment recorded: one index lookup, not a read of every record
  // (a DEL asks, to know whether its network's masquerade is still needed).
  Result<bool> hasAttachments(const std::string& network);

  // Networks a front end defines once and refers to later (Docker's CreateNetwork), and their
  // endpoints (CreateEndpoint before Join). Configs are the front end's own JSON.
  Status insertNetwork(const NetworkRecord& n);  // kExists when the name is taken
  Result<std::optional<NetworkRecord>> findNetwork(const std::string& name);
  Result<std::vector<NetworkRecord>> listNetworks(const std::string& frontend);  // "": all
  Status deleteNetwork(const std::string& name);   // with its endpoints
  Status insertEndpoint(const EndpointRecord& e);  // kExists when the id is taken
  Status updateEndpoint(const EndpointRecord& e);  // its config
  Result<std::optional<EndpointRecord>> findEndpoint(const std::string& network,
                                                     const std::string& id);
  Result<std::vector<EndpointRecord>> listEndpoints(const std::string& network);
  Status deleteEndpoint(const std::string& network, const std::string& id);

 private:
  Store(sqlite3* h, std::string path) : h_(h), path_(std::move(path)) {}
  static int onCommit(void* store, sqlite3* h, const char* db, int frames);
  static int onBusy(void* store, int tries);
  Status migrate();
  Result<bool> current();  // the schema is this build's
  // Once a checkpoint has copied every frame, the next commit starts the WAL over from its
  // beginning: it writes a new header and syncs it, whatever `synchronous` says (SQLite
  // orders the new header before the frames that overwrite the old ones). That commit would be
  // an attach's, an fdatasync (0.5 to 10 ms here) in roughly one call in fifteen. A write that
  // changes nothing, made right after the checkpoint by whoever made it, restarts the WAL there
  // instead. A reader still on old frames keeps it from restarting: the write then only adds
  // a frame.
  Status restartWal();
  Status transaction(const char* begin, const std::function<Status(Db&)>& fn);

  sqlite3* h_;
  StmtCache statements_;  // finalized before h_ is closed
  std::string path_;
  std::mutex mu_;  // one connection per Store; the daemon opens one Store per worker
  std::atomic<std::thread::id> in_transaction_{};  // the thread inside one, if any
  static inline bool helper_available_ = false;
  bool background_checkpoint_ = false;
  std::function<bool()> ask_checkpoint_;
  int wal_frames_ = 0;  // after the last commit
  // This connection's wait for a lock another holds (onBusy), and when it last paused.
  std::optional<Backoff> busy_wait_;
  std::chrono::steady_clock::time_point busy_paused_{};
};

// SQLite connections for concurrent requests (the Docker daemon's handlers, the resident CNI
// service's): one per request in flight, reused, so only the first pays the cold open. The
// WAL is copied into the database by a thread of the pool's (with a connection of its own),
// not by the request whose commit took it past its limit.
class StorePool {
 public:
  explicit StorePool(std::string dir) : dir_(std::move(dir)) {}
  ~StorePool();
  StorePool(const StorePool&) = delete;
  StorePool& operator=(const StorePool&) = delete;
  class Lease {
   public:
    Lease(StorePool& pool, std::unique_ptr<Store> s) : pool_(pool), store_(std::move(s)) {}
    Lease(Lease&&) = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease& operator=(Lease&&) = delete;
    ~Lease();
    Store& operator*() { return *store_; }

   private:
    StorePool& pool_;
    std::unique_ptr<Store> store_;
  };
  Result<Lease> acquire();
  const std::string& dir() const { return dir_; }

 private:
  bool askCheckpoint();
  void checkpointer();

  std::string dir_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Store>> idle_;
  std::condition_variable checkpoint_cv_;
  bool checkpoint_wanted_ = false;
  bool stopping_ = false;
  std::thread checkpoint_thread_;  // started at the first checkpoint asked for
};

}  // namespace plumb::core
