#include "netlink/netns.h"

#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "base/process.h"

extern char** environ;

namespace plumb::netlink {

Result<Netns> Netns::fromPath(const std::string& path) {
  Netns ns;
  // A netns file is a regular file (nsfs, or a bind mount of one): anything else, a FIFO
  // that would block the open or a device, is refused before it is opened.
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return failErrno(errno, "failed to open netns " + path);
  if (!S_ISREG(st.st_mode))
    return fail(Errc::kInvalid, "failed to open netns " + path + ": not a network namespace");
  ns.fd_.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY));
  if (!ns.fd_.valid()) return failErrno(errno, "failed to open netns " + path);
  struct statfs sfs {};
  if (::fstatfs(ns.fd_.get(), &sfs) != 0) return failErrno(errno, "failed to stat netns " + path);
  if (sfs.f_type != NSFS_MAGIC || ::ioctl(ns.fd_.get(), NS_GET_NSTYPE) != CLONE_NEWNET) {
    return fail(Errc::kInvalid, "failed to open netns " + path + ": not a network namespace");
  }
  ns.path_ = path;
  return ns;
}

bool Netns::isCurrent() const {
  struct stat mine {
  }, here{};
  return ::fstat(fd_.get(), &mine) == 0 && ::stat("/proc/thread-self/ns/net", &here) == 0 &&
         mine.st_dev == here.st_dev && mine.st_ino == here.st_ino;
}

Result<Netns> Netns::fromPid(pid_t pid) {
  return fromPath("/proc/" + std::to_string(pid) + "/ns/net");
}

Result<Netns> Netns::fromName(const std::string& name) {
  if (name.empty() || name.find('/') != std::string::npos || name == "." || name == "..") {
    return fail(Errc::kInvalid, "'" + name + "' is not a netns name");
  }
  return fromPath("/run/netns/" + name);
}

Result<Netns> Netns::current() { return fromPath("/proc/thread-self/ns/net"); }

Result<Netns> Netns::createTemporary() {
  Result<Netns> out = fail(Errc::kInternal, "no namespace made");
  std::thread worker([&] {
    // The thread's own namespace goes with the thread; the handle opened here keeps it.
    if (::unshare(CLONE_NEWNET) != 0) {
      out = failErrno(errno, "failed to create a temporary netns");
      return;
    }
    out = fromPath("/proc/thread-self/ns/net");
  });
  worker.join();
  return out;
}

Status runIn(const Netns& ns, const std::function<Status()>& fn) {
  if (ns.isCurrent()) return fn();
  // In and back out on the calling thread: a thread made for it would cost more than the
  // work it does. The way back is this thread's own namespace, opened once.
  thread_local UniqueFd home(::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC));
  if (!home.valid()) return failErrno(errno, "failed to open this thread's own netns");
  if (::setns(ns.fd(), CLONE_NEWNET) != 0)
    return failErrno(errno, "failed to enter netns " + ns.path());
  Status result = fn();
  if (::setns(home.get(), CLONE_NEWNET) != 0) {
    // Going on in the wrong namespace would make every later change there: stop instead.
    (void)std::fprintf(stderr, "plumb: failed to return from netns %s: %s\n", ns.path().c_str(),
                       std::strerror(errno));
    std::abort();
  }
  return result;
}

bool enterForGood(const Netns& ns) { return ::setns(ns.fd(), CLONE_NEWNET) == 0; }

namespace {

// plumb's environment with setup's added.
std::vector<char*> childEnv(const ChildSetup& setup) {
  std::vector<char*> envp;
  for (char** e = environ; *e; ++e) envp.push_back(*e);
  for (const auto& e : setup.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  return envp;
}

void say(const char* msg) { (void)!::write(2, msg, std::strlen(msg)); }

// In the child, just before exec: none of plumb's descriptors past stdio, and the signals as a
// new program expects them (a long-lived plumb blocks some, and every plumb ignores SIGPIPE).
// What base/process gives the children it spawns, done here by hand because these children
// fork to enter a namespace first. Async-signal-safe calls only.
void cleanChild() {
  sigset_t none;
  sigemptyset(&none);
  (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  (void)::sigaction(SIGPIPE, &dfl, nullptr);
  (void)::syscall(SYS_close_range, 3U, ~0U, 0U);
}

// In the child, after fork: enters ns and applies setup's mounts. Exits 126 when it cannot.
void enterChild(const Netns& ns, const ChildSetup& setup) {
  if (!enterForGood(ns)) {
    say("plumb: failed to enter the guest's netns\n");
    ::_exit(126);
  }
  if (setup.binds.empty()) return;
  // Private mounts: nothing mounted here reaches the host's mount namespace.
  if (::unshare(CLONE_NEWNS | CLONE_NEWUTS) != 0 ||
      ::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    say("plumb: failed to make a mount namespace for the program\n");
    ::_exit(126);
  }
  for (const auto& [source, target] : setup.binds) {
    if (::mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
      say("plumb: failed to bind ");
      say(source.c_str());
      say(" over ");
      say(target.c_str());
      say("\n");
      ::_exit(126);
    }
  }
}

}  // namespace

Result<int> execIn(const Netns& ns, const std::vector<std::string>& argv, const ChildSetup& setup) {
  if (argv.empty()) return fail(Errc::kInvalid, "nothing to run");
  std::vector<char*> args = execArray(argv);
  std::vector<char*> envp = childEnv(setup);
  pid_t pid = ::fork();
  if (pid < 0) return failErrno(errno, "failed to run " + argv[0]);
  if (pid == 0) {
    enterChild(ns, setup);
    cleanChild();
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return failErrno(errno, "failed to wait for " + argv[0]);
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 127) {
    return fail(Errc::kNotFound, "failed to run " + argv[0] + ": not found");
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

Result<pid_t> spawnIn(const Netns& ns, const std::vector<std::string>& argv, const std::string& log,
                      const ChildSetup& setup) {
  if (argv.empty()) return fail(Errc::kInvalid, "nothing to run");
  UniqueFd out(::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600));
  if (!out.valid()) return failErrno(errno, "failed to open " + log);
  UniqueFd null(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  if (!null.valid()) return failErrno(errno, "failed to open /dev/null");
  std::vector<char*> args = execArray(argv);
  std::vector<char*> envp = childEnv(setup);
  pid_t pid = ::fork();
  if (pid < 0) return failErrno(errno, "failed to start " + argv[0]);
  if (pid == 0) {
    ::setsid();
    ::dup2(null.get(), 0);
    ::dup2(out.get(), 1);
    ::dup2(out.get(), 2);
    enterChild(ns, setup);
    cleanChild();
    ::execvpe(args[0], args.data(), envp.data());
    ::_exit(127);
  }
  return pid;
}

Result<UniqueFd> socketIn(const Netns& ns, int domain, int type, int protocol) {
  UniqueFd out;
  PLUMB_TRY(runIn(ns, [&]() -> Status {
    int fd = ::socket(domain, type | SOCK_CLOEXEC, protocol);
    if (fd < 0) return failErrno(errno, "failed to open a socket in netns " + ns.path());
    out.reset(fd);
    return {};
  }));
  return out;
}

}  // namespace plumb::netlink
