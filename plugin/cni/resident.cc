#include "plugin/cni/resident.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <fstream>
#include <list>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "base/fd.h"
#include "base/process.h"
#include "plugin/cni/config.h"
#include "plugin/core/cluster_ipam.h"
#include "plugin/core/store.h"

extern char** environ;

namespace plumb::cni::resident {
namespace {

constexpr char kMagic[] = "plumb-cni-resident-1";
constexpr size_t kMaxField = 16u << 20;  // a config with a large prevResult fits many times
constexpr size_t kMaxFields = 4096;
constexpr int kMaxCallsInFlight = 64;  // past it a call is declined, and done by its caller

enum Reply : uint32_t { kServed = 0, kDeclined = 1 };

// At most this many services per state directory (one per distinct caller): callers that each
// run in a namespace of their own (`ip netns exec` makes a mount namespace per command) would
// otherwise start one each.
constexpr int kMaxServices = 4;

// A service's files: STATE/cni-<hash of its identity>.{sock,lock,pid}.
std::string servicePath(const std::string& dir, const std::string& hash, const char* ext) {
  return dir + "/cni-" + hash + ext;
}

bool isCniVariable(const char* kv) { return std::strncmp(kv, "CNI_", 4) == 0; }

// A file by device and inode; with `content`, by its size and modification time too (a binary
// replaced in place by an install keeps neither).
std::string statId(const char* path, bool content = false) {
  struct stat st {};
  if (::stat(path, &st) != 0) return "-";
  std::string id = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  if (content) {
    id += ":" + std::to_string(st.st_size) + ":" + std::to_string(st.st_mtim.tv_sec) + "." +
          std::to_string(st.st_mtim.tv_nsec);
  }
  return id;
}

// A namespace by its link's text ("net:[4026531840]": its type and inode on the one nsfs).
// Reading the link costs half of a stat through it, and this is on every plugin call's path.
std::string nsId(const char* path) {
  char buf[64];
  ssize_t n = ::readlink(path, buf, sizeof(buf));
  return n > 0 && static_cast<size_t>(n) < sizeof(buf) ? std::string(buf, static_cast<size_t>(n))
                                                       : std::string("-");
}

// Everything that makes a call come out differently in another process: a call is served only
// when the caller's is the service's. The binary comes first (see exeOf).
std::string identity() {
  std::string id = statId("/proc/self/exe", /*content=*/true);
  id += '\n';
  for (const char* ns : {"/proc/self/ns/net", "/proc/self/ns/mnt", "/proc/self/ns/pid",
                         "/proc/self/ns/user", "/proc/self/ns/uts", "/proc/self/ns/ipc"}) {
    id += nsId(ns);
    id += ' ';
  }
  id += statId("/");
  char cwd[4096];
  id += "\ncwd ";
  id += ::getcwd(cwd, sizeof(cwd)) ? cwd : "-";
  id += "\nuid " + std::to_string(::geteuid()) + " " + std::to_string(::getegid()) + "\n";
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    if (!isCniVariable(*e)) env.emplace_back(*e);
  }
  std::sort(env.begin(), env.end());
  for (const auto& kv : env) {
    id += kv;
    id += '\0';
  }
  return id;
}

std::string exeOf(const std::string& id) { return id.substr(0, id.find('\n')); }

// FNV-1a, 64 bits: which of a directory's services is this caller's. A collision only costs a
// declined call: the service compares the whole identity.
std::string hashOf(const std::string& id) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char ch : id) {
    h ^= ch;
    h *= 0x100000001b3ULL;
  }
  char out[17];
  (void)std::snprintf(out, sizeof(out), "%016llx", static_cast<unsigned long long>(h));
  return out;
}

// The hashes of the services a directory has sockets for.
std::vector<std::string> servicesIn(const std::string& dir) {
  std::vector<std::string> out;
  DIR* d = ::opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = ::readdir(d)) {
    std::string_view name = e->d_name;
    if (name.size() == 4 + 16 + 5 && name.substr(0, 4) == "cni-" && name.substr(20) == ".sock")
      out.emplace_back(name.substr(4, 16));
  }
  ::closedir(d);
  return out;
}

// A call whose output is more than stdout and the exit code stays in its process: a log of its
// own (logFile, logLevel: the log is process-wide), or a delegated IPAM plugin, whose stderr
// is the runtime's log.
bool servable(const Placement& p) {
  return p.log_file.empty() && p.log_level.empty() && !p.delegated_ipam;
}

// --- framing: a field is a 32-bit length and its bytes ---

void putField(std::string& out, std::string_view field) {
  auto n = static_cast<uint32_t>(field.size());
  out.append(reinterpret_cast<const char*>(&n), sizeof(n));
  out.append(field);
}

// Reads a message of fields as it comes, in as few recv calls as the sender's writes allow
// (a request is sent in one, and usually read in one).
class Reader {
 public:
  explicit Reader(int fd) : fd_(fd) {}
  bool u32(uint32_t& v) {
    if (!need(sizeof(v))) return false;
    std::memcpy(&v, buf_.data() + pos_, sizeof(v));
    pos_ += sizeof(v);
    return true;
  }
  bool field(std::string& out) {
    uint32_t n = 0;
    if (!u32(n) || n > kMaxField || !need(n)) return false;
    out.assign(buf_, pos_, n);
    pos_ += n;
    return true;
  }

 private:
  // The buffer starts at a page and grows (zero-filled) at once to what a field needs, and
  // recv fills it: a large field costs its size once, not once per recv. A page, not more: in
  // a plugin process every page first touched is a page fault, and a reply is a few hundred
  // bytes.
  bool need(size_t n) {
    if (end_ - pos_ >= n) return true;
    buf_.erase(0, pos_);
    end_ -= pos_;
    pos_ = 0;
    if (buf_.size() < n) buf_.resize(std::max({n, 2 * buf_.size(), size_t{4096}}));
    while (end_ < n) {
      ssize_t got = ::recv(fd_, buf_.data() + end_, buf_.size() - end_, 0);
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) return false;
      end_ += static_cast<size_t>(got);
    }
    return true;
  }

  int fd_;
  std::string buf_;
  size_t pos_ = 0;  // what is read of buf_
  size_t end_ = 0;  // what recv filled of buf_
};

// A request: the magic, the kind ("run", "status", "stop"), the caller's identity, stdin, then
// the environment's NAME=VALUE strings. A reply: served or declined, the exit code, the text.
std::string request(std::string_view kind, const std::string& id, const Invocation* in) {
  std::string out;
  std::vector<std::string_view> fields = {kMagic, kind};
  fields.push_back(id);
  fields.push_back(in ? std::string_view(in->input) : std::string_view());
  std::vector<std::string> env;
  if (in) {
    for (const auto& [k, v] : in->env) env.push_back(k + "=" + v);
  }
  uint32_t count = static_cast<uint32_t>(fields.size() + env.size());
  out.append(reinterpret_cast<const char*>(&count), sizeof(count));
  for (auto f : fields) putField(out, f);
  for (const auto& kv : env) putField(out, kv);
  return out;
}

std::string reply(Reply r, int code, std::string_view text) {
  std::string out;
  auto status = static_cast<uint32_t>(r);
  auto exit_code = static_cast<uint32_t>(code);
  out.append(reinterpret_cast<const char*>(&status), sizeof(status));
  out.append(reinterpret_cast<const char*>(&exit_code), sizeof(exit_code));
  putField(out, text);
  return out;
}

bool peerIsMe(int fd) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  return ::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == ::geteuid();
}

// The state directory as Store::open requires it: a directory of this user's that nobody else
// can write to. A socket anywhere else is not trusted with a call.
enum class DirState { kUsable, kMissing, kUnfit };
DirState dirState(const std::string& dir) {
  struct stat st {};
  if (dir.empty() || dir[0] != '/') return DirState::kUnfit;
  if (::lstat(dir.c_str(), &st) != 0)
    return errno == ENOENT ? DirState::kMissing : DirState::kUnfit;
  if (!S_ISDIR(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)))
    return DirState::kUnfit;
  return DirState::kUsable;
}

enum class Connected { kYes, kNone, kNo };
Connected connectTo(const std::string& dir, const std::string& hash, UniqueFd& out) {
  std::string path = servicePath(dir, hash, ".sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return Connected::kNo;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return Connected::kNo;
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return errno == ENOENT || errno == ECONNREFUSED ? Connected::kNone : Connected::kNo;
  }
  if (!peerIsMe(fd.get())) return Connected::kNo;
  out = std::move(fd);
  return Connected::kYes;
}

struct Answer {
  uint32_t status = kDeclined;
  int code = 0;
  std::string text;
};

std::optional<Answer> call(int fd, std::string_view kind, const Invocation* in = nullptr,
                           const std::string& id = {}) {
  if (!sendAll(fd, request(kind, id, in))) return std::nullopt;
  Answer a;
  uint32_t code = 0;
  Reader r(fd);
  if (!r.u32(a.status) || !r.u32(code) || !r.field(a.text)) return std::nullopt;
  a.code = static_cast<int>(code);
  return a;
}

// --- the service ---

class Service {
 public:
  explicit Service(std::string dir)
      : dir_(std::move(dir)), stores_(dir_), id_(identity()), hash_(hashOf(id_)) {}
  int run();

 private:
  void work();
  void addWorker();  // with mu_ held
  void serve(UniqueFd fd);
  std::string handle(int fd);
  bool ownSocket() const;
  void stop();
  void joinFinished(bool all);

  std::string dir_;
  core::StorePool stores_;
  std::string id_, hash_;
  ino_t socket_ino_ = 0;
  std::chrono::seconds idle_{300};
  std::atomic<bool> stopping_{false};
  std::atomic<long> served_{0}, declined_{0};
  std::atomic<long long> busy_us_{0};  // in the calls served
  UniqueFd wake_{::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
  UniqueFd listener_;
  std::mutex mu_;
  std::list<std::thread> threads_;  // the workers
  std::vector<std::thread::id> finished_;
  int idle_workers_ = 0;  // waiting in accept
  int in_flight_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

void Service::stop() {
  stopping_ = true;
  uint64_t one = 1;
  (void)!::write(wake_.get(), &one, sizeof(one));
}

// Threads that answered their call are joined from the main loop: none outlives the service.
void Service::joinFinished(bool all) {
  std::list<std::thread> done;
  {
    std::lock_guard lock(mu_);
    for (auto it = threads_.begin(); it != threads_.end();) {
      auto f = std::find(finished_.begin(), finished_.end(), it->get_id());
      if (all || f != finished_.end()) {
        if (f != finished_.end()) finished_.erase(f);
        auto next = std::next(it);
        done.splice(done.end(), threads_, it);
        it = next;
      } else {
        ++it;
      }
    }
  }
  for (auto& t : done) t.join();
}

bool Service::ownSocket() const {
  struct stat st {};
  return ::lstat(servicePath(dir_, hash_, ".sock").c_str(), &st) == 0 && st.st_ino == socket_ino_;
}

std::string Service::handle(int fd) {
  Reader r(fd);
  uint32_t count = 0;
  if (!r.u32(count) || count < 4 || count > kMaxFields) return {};
  std::vector<std::string> fields(count);
  for (auto& f : fields) {
    if (!r.field(f)) return {};
  }
  if (fields[0] != kMagic) return {};
  const std::string& kind = fields[1];
  if (kind == "status") {
    return reply(kServed, 0,
                 "pid " + std::to_string(::getpid()) + ", served " + std::to_string(served_) +
                     " (" + std::to_string(served_ ? busy_us_ / served_ : 0) +
                     " us each on average), declined " + std::to_string(declined_));
  }
  if (kind == "stop") {
    stop();
    return reply(kServed, 0, "");
  }
  if (kind != "run") return {};
  auto decline = [&](const std::string& why) {
    ++declined_;
    return reply(kDeclined, 0, why);
  };
  if (fields[2] != id_) {
    // A caller running another build of plumb: this one is out of date, or the caller is.
    // Either way the service that matches the installed binary is the one to keep.
    if (exeOf(fields[2]) != exeOf(id_)) stop();
    return decline("the caller's binary, namespaces or environment are not the service's");
  }
  Invocation in;
  in.input = std::move(fields[3]);
  for (size_t i = 4; i < fields.size(); ++i) {
    auto eq = fields[i].find('=');
    if (eq == std::string::npos) return {};
    in.env.emplace(fields[i].substr(0, eq), fields[i].substr(eq + 1));
  }
  auto where = placementOf(in.input);
  if (!where.ok() || where->data_dir != dir_) return decline("another state directory");
  if (!servable(*where)) return decline("the call logs to its caller's log or stderr");
  auto began = std::chrono::steady_clock::now();
  Output out = cni::run(in, &stores_);
  busy_us_ += std::chrono::duration_cast<std::chrono::microseconds>(
                  std::chrono::steady_clock::now() - began)
                  .count();
  ++served_;
  return reply(kServed, out.exit_code, out.text);
}

void Service::serve(UniqueFd fd) {
  // A caller that stops writing half-way does not hold a thread for ever.
  timeval tv{10, 0};
  (void)::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (peerIsMe(fd.get())) {
    std::string answer = handle(fd.get());
    if (!answer.empty()) (void)sendAll(fd.get(), answer);
  }
  fd.reset();
  reapDisowned();
}

void Service::addWorker() {
  try {
    threads_.emplace_back(&Service::work, this);
    ++idle_workers_;
  } catch (const std::system_error&) {
    // No thread to be had: callers wait in the backlog for a worker, or time out and make
    // their call themselves.
  }
}

// A worker waits in accept itself: a caller's connect wakes the thread that serves it, with no
// hand-off between threads and no thread started per call. The kernel wakes one waiter per
// connection. A worker that takes the last idle place starts another, so one is always
// waiting (up to kMaxCallsInFlight serving, and one more that declines); a worker finding
// kIdleWorkers others idle after its call leaves.
void Service::work() {
  constexpr int kIdleWorkers = 2;
  for (;;) {
    UniqueFd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (!conn.valid()) {
      if (stopping_) break;  // the listener was shut down
      // Out of descriptors or memory for a moment (the caller waits in the backlog), or a
      // connection that went: this worker stays, and tries again in 10 ms, or at once when
      // the service stops (stop() signals wake_).
      if (errno != EINTR && errno != ECONNABORTED) {
        pollfd p{wake_.get(), POLLIN, 0};
        (void)::poll(&p, 1, 10);
      }
      continue;
    }
    std::unique_lock lock(mu_);
    if (in_flight_ >= kMaxCallsInFlight) {
      lock.unlock();
      ++declined_;
      (void)sendAll(conn.get(), reply(kDeclined, 0, "too many calls in flight"));
      continue;
    }
    --idle_workers_;
    ++in_flight_;
    if (idle_workers_ == 0 && !stopping_) addWorker();
    lock.unlock();
    serve(std::move(conn));
    lock.lock();
    --in_flight_;
    last_ = std::chrono::steady_clock::now();
    if (idle_workers_ >= kIdleWorkers || stopping_) break;
    ++idle_workers_;
  }
  std::lock_guard lock(mu_);
  finished_.push_back(std::this_thread::get_id());
}

int Service::run() {
  // Whatever happens below, a start of this identity is no longer under way.
  struct Started {
    std::string path;
    ~Started() { (void)::unlink(path.c_str()); }
  } started{servicePath(dir_, hash_, ".starting")};
  if (const char* v = std::getenv("PLUMB_RESIDENT_IDLE_S"); v && *v) {
    char* end = nullptr;
    long s = std::strtol(v, &end, 10);
    if (*end == '\0' && s > 0) idle_ = std::chrono::seconds(s);
  }
  markLongLived();
  (void)::signal(SIGPIPE, SIG_IGN);
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&sigs, s);
  if (::pthread_sigmask(SIG_BLOCK, &sigs, nullptr) != 0) return 1;
  UniqueFd sigfd(::signalfd(-1, &sigs, SFD_CLOEXEC));
  if (!sigfd.valid() || !wake_.valid()) return 1;

  // The store first: it makes the directory, and refuses one that others can write to.
  {
    auto lease = stores_.acquire();
    if (!lease.ok()) {
      (void)std::fprintf(stderr, "plumb: cni-resident: %s\n", lease.error().message.c_str());
      return 1;
    }
  }
  // One service per caller identity: a second one started at the same moment leaves. So does
  // one whose lock a leaving service unlinked between its open and its flock: a lock on a file
  // no longer at the path keeps out no later service.
  std::string lock_path = servicePath(dir_, hash_, ".lock");
  UniqueFd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) return 0;
  struct stat held {
  }, named{};
  if (::fstat(lock.get(), &held) != 0 || ::lstat(lock_path.c_str(), &named) != 0 ||
      held.st_ino != named.st_ino || held.st_dev != named.st_dev)
    return 0;
  // What services that died left (their lock is free): gone, so they count no more.
  for (const auto& other : servicesIn(dir_)) {
    if (other == hash_) continue;
    UniqueFd theirs(
        ::open(servicePath(dir_, other, ".lock").c_str(), O_RDWR | O_CLOEXEC | O_NOFOLLOW));
    if (theirs.valid() && ::flock(theirs.get(), LOCK_EX | LOCK_NB) != 0) continue;
    for (const char* ext : {".sock", ".pid", ".lock"})
      (void)::unlink(servicePath(dir_, other, ext).c_str());
  }

  std::string path = servicePath(dir_, hash_, ".sock");
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (path.size() >= sizeof(addr.sun_path)) return 1;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  listener_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!listener_.valid()) return 1;
  (void)::unlink(path.c_str());  // a service that died left it; the lock says none runs
  mode_t old = ::umask(0177);
  int bound = ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old);
  if (bound != 0 || ::listen(listener_.get(), 128) != 0) return 1;
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return 1;
  socket_ino_ = st.st_ino;
  {
    std::ofstream pid(servicePath(dir_, hash_, ".pid"), std::ios::trunc);
    pid << ::getpid() << "\n";
  }
  (void)::unlink(started.path.c_str());
  {
    std::lock_guard guard(mu_);
    addWorker();
    if (threads_.empty()) return 1;
  }

  while (!stopping_) {
    pollfd p[2] = {{sigfd.get(), POLLIN, 0}, {wake_.get(), POLLIN, 0}};
    int n = ::poll(p, 2, 1000);
    if (n < 0 && errno != EINTR) break;
    if ((p[0].revents & POLLIN) || stopping_) break;
    joinFinished(false);
    reapDisowned();
    if (!ownSocket()) break;  // the state directory was removed, or another service took over
    std::lock_guard guard(mu_);
    if (in_flight_ == 0 && std::chrono::steady_clock::now() - last_ > idle_) break;
  }
  // No new calls (a shut-down listener wakes every worker in accept); those under way finish
  // and are answered. Callers still in the backlog find the socket closed, and make their
  // call themselves.
  stop();
  bool mine = ownSocket();
  (void)::shutdown(listener_.get(), SHUT_RDWR);
  if (mine) {
    (void)::unlink(path.c_str());
    (void)::unlink(servicePath(dir_, hash_, ".pid").c_str());
    (void)::unlink(servicePath(dir_, hash_, ".lock").c_str());
  }
  joinFinished(true);
  listener_.reset();
  core::ClusterAddresses::waitForClaims();  // blocks claimed ahead, on threads of this process
  reapDisowned();
  return 0;
}

}  // namespace

Handover handOver(const Invocation& in) {
  auto env = [&](const char* k) {
    auto it = in.env.find(k);
    return it == in.env.end() ? std::string() : it->second;
  };
  std::string command = env("CNI_COMMAND");
  if (command == "VERSION" || command.empty()) return {};  // nothing a warm process does faster
  if (env("PLUMB_RESIDENT") == "off" || !env("PLUMB_FAILPOINT").empty()) return {};
  auto where = placementOf(in.input);
  if (!where.ok() || !servable(*where)) return {};
  const std::string& dir = where->data_dir;
  switch (dirState(dir)) {
    case DirState::kUnfit:
      return {};
    case DirState::kMissing:
      return {std::nullopt, dir};  // the call makes it; the service comes after
    case DirState::kUsable:
      break;
  }
  std::string id = identity();
  UniqueFd fd;
  switch (connectTo(dir, hashOf(id), fd)) {
    case Connected::kNone:
      return {std::nullopt, dir};
    case Connected::kNo:
      return {};
    case Connected::kYes:
      break;
  }
  // A service that went away mid-call (killed, or stopped) answers nothing: the call is made
  // here, and an attach it left half-done is an abandoned one, which ADD cleans first.
  auto answer = call(fd.get(), "run", &in, id);
  if (!answer || answer->status != kServed) return {};
  return {Output{answer->code, std::move(answer->text)}, {}};
}

void start(const std::string& dir) {
  // A caller in a mount namespace its parent is not in was made for this one call (`ip netns
  // exec` makes one per command): no later call will share its identity, so no service.
  if (nsId("/proc/self/ns/mnt") !=
      nsId(("/proc/" + std::to_string(::getppid()) + "/ns/mnt").c_str()))
    return;
  if (static_cast<int>(servicesIn(dir).size()) >= kMaxServices) return;
  // One start per identity: concurrent first calls (a runtime starting many pods) would each
  // start one, and all but one would leave again. The service removes the mark once it
  // listens; a mark older than 10 s is one whose service never got that far.
  std::string starting = servicePath(dir, hashOf(identity()), ".starting");
  UniqueFd mark(
      ::open(starting.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!mark.valid()) {
    struct stat st {};
    if (errno == EEXIST && ::lstat(starting.c_str(), &st) == 0 &&
        ::time(nullptr) - st.st_mtime > 10)
      (void)::unlink(starting.c_str());
    return;
  }
  mark.reset();
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) {
    if (!isCniVariable(*e)) envp.push_back(*e);
  }
  envp.push_back(nullptr);
  std::string dir_arg = dir;
  char* argv[] = {const_cast<char*>("plumb"), const_cast<char*>("cni-resident"),
                  const_cast<char*>("serve"), dir_arg.data(), nullptr};
  // Its own session; not waited for: this process exits now, and init (or the runtime's
  // subreaper) reaps it.
  (void)spawnSelf(argv, envp.data(), /*own_session=*/true);
}

int main(int argc, char** argv) {
  // argv: cni-resident KIND DIR
  if (argc != 3 || dirState(argv[2]) == DirState::kUnfit) {
    (void)std::fprintf(stderr,
                       "usage: plumb cni-resident serve|status|stop STATE_DIR (absolute)\n");
    return 2;
  }
  std::string kind = argv[1], dir = argv[2];
  if (kind == "serve") {
    // What a plugin process left open (a runtime's pipes) is not the service's to hold. Closed
    // before the service makes descriptors of its own (its wake-up eventfd among them).
    (void)::syscall(SYS_close_range, 3U, ~0U, 0U);
    return Service(dir).run();
  }
  if (kind != "status" && kind != "stop") {
    (void)std::fprintf(stderr, "plumb: cni-resident: unknown request '%s' (serve, status, stop)\n",
                       kind.c_str());
    return 2;
  }
  // Every service of the directory (one per caller identity), each on a line of its own.
  int found = 0, failed = 0;
  for (const auto& hash : servicesIn(dir)) {
    UniqueFd fd;
    if (connectTo(dir, hash, fd) != Connected::kYes) continue;  // one that died: no service
    auto answer = call(fd.get(), "status");
    if (!answer) continue;
    ++found;
    if (kind == "status") {
      (void)std::printf("%s: %s\n", servicePath(dir, hash, ".sock").c_str(), answer->text.c_str());
      continue;
    }
    // Stopped once the calls under way are answered; waited for by its pid.
    const std::string& text = answer->text;  // "pid N, ..."
    pid_t pid = text.rfind("pid ", 0) == 0 ? static_cast<pid_t>(std::atol(text.c_str() + 4)) : 0;
    UniqueFd pidfd(pid > 0 ? static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)) : -1);
    UniqueFd again;
    if (connectTo(dir, hash, again) != Connected::kYes || !call(again.get(), "stop")) continue;
    pollfd p{pidfd.get(), POLLIN, 0};
    if (pidfd.valid() && ::poll(&p, 1, 10000) != 1) {
      (void)std::fprintf(stderr,
                         "plumb: cni-resident: the service %d for %s did not stop within 10 s\n",
                         pid, dir.c_str());
      ++failed;
    }
  }
  if (found == 0 && kind == "status") {
    (void)std::fprintf(stderr, "plumb: cni-resident: no service runs for %s\n", dir.c_str());
    return 1;
  }
  return failed ? 1 : 0;
}

}  // namespace plumb::cni::resident
