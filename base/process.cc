#include "base/process.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdlib>
#include <mutex>
#include <string_view>

#include "base/fd.h"

extern char** environ;

namespace plumb {
namespace {

Result<std::pair<UniqueFd, UniqueFd>> makePipe(const std::string& what) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return failErrno(errno, "failed to run " + what);
  return std::pair<UniqueFd, UniqueFd>{UniqueFd(p[0]), UniqueFd(p[1])};
}

// Appends what fd has to out; closes fd at its end.
void drain(UniqueFd& fd, std::string& out) {
  char buf[16384];
  ssize_t n = ::read(fd.get(), buf, sizeof(buf));
  if (n > 0) {
    out.append(buf, static_cast<size_t>(n));
  } else if (n == 0 || errno != EINTR) {
    fd.reset();
  }
}

// What every child gets, whatever this process (or thread) has: none of its descriptors past
// stdio (those without close-on-exec, such as a runtime's leaked pipes, included), its signals
// unblocked and SIGPIPE at its default.
bool startClean(posix_spawn_file_actions_t* fa, posix_spawnattr_t* attr, short flags) {
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  return posix_spawn_file_actions_addclosefrom_np(fa, 3) == 0 &&
         posix_spawnattr_setsigmask(attr, &none) == 0 &&
         posix_spawnattr_setsigdefault(attr, &defaults) == 0 &&
         posix_spawnattr_setflags(
             attr, static_cast<short>(flags | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF)) == 0;
}

// posix_spawn's two attribute objects, destroyed with it.
struct SpawnAttrs {
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  bool ok = false;
  SpawnAttrs() {
    if (posix_spawn_file_actions_init(&fa) != 0) return;
    if (posix_spawnattr_init(&attr) != 0) {
      posix_spawn_file_actions_destroy(&fa);
      return;
    }
    ok = true;
  }
  ~SpawnAttrs() {
    if (!ok) return;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
  }
  SpawnAttrs(const SpawnAttrs&) = delete;
  SpawnAttrs& operator=(const SpawnAttrs&) = delete;
};

}  // namespace

std::vector<char*> execArray(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

Result<ProcessRun> runProcess(const ProcessSpec& spec) {
  if (spec.argv.empty()) return fail(Errc::kInvalid, "no program to run");
  const std::string& what = spec.argv[0];
  PLUMB_ASSIGN(auto in, makePipe(what));
  PLUMB_ASSIGN(auto out, makePipe(what));
  std::pair<UniqueFd, UniqueFd> err;
  if (spec.capture_err) {
    PLUMB_ASSIGN(err, makePipe(what));
  }

  SpawnAttrs sp;
  if (!sp.ok) return failErrno(ENOMEM, "failed to run " + what);
  posix_spawn_file_actions_adddup2(&sp.fa, in.first.get(), 0);
  posix_spawn_file_actions_adddup2(&sp.fa, out.second.get(), 1);
  if (spec.capture_err) posix_spawn_file_actions_adddup2(&sp.fa, err.second.get(), 2);
  if (!startClean(&sp.fa, &sp.attr, 0)) return failErrno(ENOMEM, "failed to run " + what);
  std::vector<char*> argv = execArray(spec.argv);
  std::vector<char*> envp = execArray(spec.env);
  char** env = spec.own_env ? envp.data() : environ;
  pid_t pid = 0;
  int rc = what.find('/') == std::string::npos
               ? posix_spawnp(&pid, what.c_str(), &sp.fa, &sp.attr, argv.data(), env)
               : posix_spawn(&pid, what.c_str(), &sp.fa, &sp.attr, argv.data(), env);
  if (rc != 0) return failErrno(rc, "failed to run " + what);
  in.first.reset();
  out.second.reset();
  err.second.reset();
  UniqueFd& in_w = in.second;
  UniqueFd& out_r = out.first;
  UniqueFd& err_r = err.first;
  ::fcntl(in_w.get(), F_SETFL, O_NONBLOCK);
  if (spec.input.empty()) in_w.reset();

  ProcessRun run;
  size_t written = 0;
  auto deadline = std::chrono::steady_clock::now() + spec.deadline;
  bool timed_out = false;
  while (out_r.valid() || err_r.valid()) {
    pollfd fds[3] = {{out_r.valid() ? out_r.get() : -1, POLLIN, 0},
                     {err_r.valid() ? err_r.get() : -1, POLLIN, 0},
                     {in_w.valid() ? in_w.get() : -1, POLLOUT, 0}};
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    if (::poll(fds, 3, static_cast<int>(left.count())) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (in_w.valid() && (fds[2].revents & (POLLOUT | POLLERR | POLLHUP))) {
      ssize_t n = ::write(in_w.get(), spec.input.data() + written, spec.input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if (n < 0 && errno != EAGAIN) written = spec.input.size();
      if (written >= spec.input.size()) in_w.reset();
    }
    if (fds[0].revents & (POLLIN | POLLHUP | POLLERR)) drain(out_r, run.out);
    if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) drain(err_r, run.err);
  }
  in_w.reset();
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    auto ms = spec.deadline.count();
    std::string bound =
        ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
    return fail(Errc::kTryAgain, what + " did not finish within " + bound + " and was killed");
  }
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return run;
}

namespace {

long long readStartTime(pid_t pid) {
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) return 0;
  // One line of a few hundred bytes: starttime comes well within the first 500.
  char buf[1024];
  size_t len = 0;
  for (ssize_t n;
       len < sizeof(buf) - 1 && (n = ::read(fd.get(), buf + len, sizeof(buf) - 1 - len)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return 0;
    len += static_cast<size_t>(n);
  }
  std::string_view stat(buf, len);
  // Past the command's name, which may hold spaces and parentheses: the fields after the
  // last ')' are state (3) onwards; starttime is field 22.
  auto close = stat.rfind(')');
  if (close == std::string_view::npos) return 0;
  size_t at = close + 1;
  for (int i = 3; i <= 22; ++i) {
    at = stat.find_first_not_of(' ', at);
    if (at == std::string_view::npos) return 0;
    if (i == 22) break;
    at = stat.find(' ', at);
    if (at == std::string_view::npos) return 0;
  }
  long long t = 0;
  auto [end, ec] = std::from_chars(stat.data() + at, stat.data() + stat.size(), t);
  return ec == std::errc() && end != stat.data() + at ? t : 0;
}

}  // namespace

long long processStartTime(pid_t pid) {
  // This process's own is asked on every attach (its record names its owner): read once. A
  // forked child has a pid of its own, and reads its own.
  static std::atomic<pid_t> own_pid{0};
  static std::atomic<long long> own_start{0};
  bool self = pid == ::getpid();
  if (self && own_pid.load() == pid) return own_start.load();
  long long t = readStartTime(pid);
  if (self && t != 0) {
    own_start.store(t);
    own_pid.store(pid);
  }
  return t;
}

bool spawnDetached(const char* path, char* const argv[], char* const envp[], bool own_session) {
  SpawnAttrs sp;
  if (!sp.ok) return false;
  for (int fd = 0; fd < 3; ++fd) {
    if (posix_spawn_file_actions_addopen(&sp.fa, fd, "/dev/null", O_RDWR, 0) != 0) return false;
  }
  if (!startClean(&sp.fa, &sp.attr, own_session ? POSIX_SPAWN_SETSID : 0)) return false;
  pid_t pid = 0;
  if (posix_spawn(&pid, path, &sp.fa, &sp.attr, argv, envp) != 0) return false;
  disown(pid);
  return true;
}

std::string selfPath() {
  char buf[4096];
  ssize_t n = ::readlink("/proc/self/exe", buf, sizeof(buf) - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string();
}

bool spawnSelf(char* const argv[], char* const envp[], bool own_session) {
  std::string self = selfPath();
  return !self.empty() && spawnDetached(self.c_str(), argv, envp, own_session);
}

namespace {
std::mutex g_disowned_mu;
std::vector<pid_t> g_disowned;

void reapLocked() {
  std::erase_if(g_disowned, [](pid_t p) {
    int status = 0;
    pid_t got = ::waitpid(p, &status, WNOHANG);
    return got == p || (got < 0 && errno == ECHILD);
  });
}
}  // namespace

void disown(pid_t pid) {
  std::lock_guard lock(g_disowned_mu);
  reapLocked();
  if (pid > 0) g_disowned.push_back(pid);
}

void reapDisowned() {
  std::lock_guard lock(g_disowned_mu);
  reapLocked();
}

namespace {
std::atomic<bool> g_long_lived{false};
}  // namespace

void markLongLived() { g_long_lived = true; }
bool isLongLived() { return g_long_lived; }

}  // namespace plumb
