// What a program plumb starts gets of plumb's (base/process.h): its stdio and nothing else. A
// descriptor without close-on-exec (a runtime's leaked pipe, a log file) stays behind, and the
// signals come as a new program expects them, whatever the starting thread blocks or ignores
// (a long-lived plumb blocks SIGTERM in every thread, and every plumb ignores SIGPIPE).
#include <fcntl.h>
#include <pthread.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "base/fd.h"
#include "base/process.h"
#include "gtest/gtest.h"
#include "test_dir.h"

namespace plumb {
namespace {

// Runs fn with SIGTERM blocked, SIGPIPE ignored and a descriptor of marker open without
// close-on-exec, as in a long-lived plumb with a leaked descriptor; puts them back after.
template <typename Fn>
void asALongLivedPlumb(const std::string& marker, Fn fn) {
  UniqueFd leaked(::open(marker.c_str(), O_RDWR | O_CREAT, 0600));  // no O_CLOEXEC: the point
  ASSERT_TRUE(leaked.valid());
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &term, &old), 0);
  auto old_pipe = ::signal(SIGPIPE, SIG_IGN);
  fn();
  ::signal(SIGPIPE, old_pipe);
  ::pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

// A process's SigBlk or SigIgn mask, from its /proc status text.
unsigned long long mask(const std::string& status, const std::string& name) {
  auto at = status.find(name + ":\t");
  return at == std::string::npos
             ? ~0ULL
             : std::stoull(status.substr(at + name.size() + 2, 16), nullptr, 16);
}

void expectDefaultSignals(const std::string& status) {
  EXPECT_EQ(mask(status, "SigBlk"), 0u) << "signals blocked in the child\n" << status;
  EXPECT_EQ(mask(status, "SigIgn") & (1ULL << (SIGPIPE - 1)), 0u) << "SIGPIPE ignored\n" << status;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(Process, ARunProgramGetsItsStdioAndDefaultSignalsOnly) {
  testing::TempDir dir;
  std::string marker = dir.path() + "/leaked";
  asALongLivedPlumb(marker, [&] {
    ProcessSpec fds, status;
    fds.argv = {"/bin/ls", "-l", "/proc/self/fd/"};
    status.argv = {"/bin/cat", "/proc/self/status"};
    for (auto* spec : {&fds, &status}) {
      auto run = runProcess(*spec);
      ASSERT_TRUE(run.ok()) << run.error().message;
      ASSERT_EQ(run->exit_code, 0) << run->err;
      if (spec == &fds) {
        EXPECT_NE(run->out.find("pipe:"), std::string::npos) << run->out;  // its stdio
        EXPECT_EQ(run->out.find(marker), std::string::npos) << "plumb's descriptor\n" << run->out;
      } else {
        expectDefaultSignals(run->out);
      }
    }
  });
}

TEST(Process, ADetachedHelperGetsDevNullAndDefaultSignalsOnly) {
  testing::TempDir dir;
  std::string marker = dir.path() + "/leaked";
  char* argv[] = {const_cast<char*>("sleep"), const_cast<char*>("30"), nullptr};
  char* envp[] = {nullptr};
  asALongLivedPlumb(marker, [&] { ASSERT_TRUE(spawnDetached("/bin/sleep", argv, envp)); });
  // The child: the sleep whose parent is this process (bounded wait for its exec).
  std::string proc;
  for (int i = 0; i < 500 && proc.empty(); ++i) {
    for (const auto& e : std::filesystem::directory_iterator("/proc")) {
      std::string status = slurp(e.path().string() + "/status");
      if (status.rfind("Name:\tsleep\n", 0) == 0 &&
          status.find("\nPPid:\t" + std::to_string(::getpid()) + "\n") != std::string::npos)
        proc = e.path().string();
    }
    if (proc.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ASSERT_NE(proc, "") << "the helper did not start";
  std::string fds;
  for (const auto& e : std::filesystem::directory_iterator(proc + "/fd"))
    fds += std::filesystem::read_symlink(e.path()).string() + "\n";
  expectDefaultSignals(slurp(proc + "/status"));
  EXPECT_EQ(fds, "/dev/null\n/dev/null\n/dev/null\n");
  // Gone once reaped (a zombie's /proc entries are not readable to a user that is not root).
  pid_t pid = std::stoi(proc.substr(6));
  ::kill(pid, SIGKILL);
  for (int i = 0; i < 500 && ::kill(pid, 0) == 0; ++i) {
    reapDisowned();
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_NE(::kill(pid, 0), 0) << "the helper was not reaped";
}

// starttime, field 22 of /proc/PID/stat, read as a shell would split it: past the command's
// name, which may hold spaces and parentheses.
long long startTimeFromText(const std::string& stat) {
  std::istringstream fields(stat.substr(stat.rfind(')') + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) fields >> field;
  return std::stoll(field);
}

// A child forked from this process, running fn and exiting with what it returns; killed and
// reaped when the test leaves, however it leaves.
class Child {
 public:
  template <typename Fn>
  explicit Child(Fn fn) : pid_(::fork()) {
    if (pid_ == 0) ::_exit(fn());
  }
  ~Child() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  pid_t pid() const { return pid_; }
  // Its exit code, once it has exited (-1 if it did not exit normally).
  int wait() {
    int status = 0;
    pid_t got = ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return got > 0 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  }

 private:
  pid_t pid_;
};

TEST(Process, AStartTimeIsReadPastACommandNameWithSpacesAndParentheses) {
  // A child named to trip a reader that splits at the first ')' or space.
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t pid = -1;
  {
    Child child([&] {
      ::prctl(PR_SET_NAME, "a) b (c) d", 0, 0, 0);
      char one = 1;
      (void)!::write(ready[1], &one, 1);
      ::pause();
      return 0;
    });
    ASSERT_GT(child.pid(), 0);
    pid = child.pid();
    ::close(ready[1]);
    char one = 0;
    ASSERT_EQ(::read(ready[0], &one, 1), 1);
    ::close(ready[0]);
    std::string stat = slurp("/proc/" + std::to_string(pid) + "/stat");
    ASSERT_NE(stat.find("(a) b (c) d)"), std::string::npos) << stat;
    EXPECT_EQ(processStartTime(pid), startTimeFromText(stat));
  }  // killed and reaped
  EXPECT_EQ(processStartTime(pid), 0) << "a pid with no process";
}

// A process's own start time is read once and remembered: a forked child, which inherits
// what this process remembered, reads its own.
TEST(Process, AForkedChildReadsItsOwnStartTimeNotItsParents) {
  long long own = processStartTime(::getpid());
  ASSERT_EQ(own, startTimeFromText(slurp("/proc/self/stat")));
  EXPECT_EQ(processStartTime(::getpid()), own);
  // A child started in the same clock tick as this process (10 ms) cannot tell the two apart:
  // another is forked a tick later.
  for (int attempt = 0; attempt < 50; ++attempt) {
    Child child([] {
      long long mine = processStartTime(::getpid());
      return mine == startTimeFromText(slurp("/proc/self/stat")) ? 0 : 1;
    });
    ASSERT_GT(child.pid(), 0);
    if (startTimeFromText(slurp("/proc/" + std::to_string(child.pid()) + "/stat")) == own) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    EXPECT_EQ(child.wait(), 0) << "the child read its parent's start time";
    return;
  }
  FAIL() << "no child started in a later clock tick than this process";
}

}  // namespace
}  // namespace plumb
