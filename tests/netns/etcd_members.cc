#include "etcd_members.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

namespace plumb::testing {

std::string EtcdMembers::url(int i, bool peer) const {
  return "http://" + ip_ + ":" + std::to_string((peer ? 22380 : 22379) + 10 * i);
}

std::vector<std::string> EtcdMembers::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < kMembers; ++i) out.push_back(url(i));
  return out;
}

std::string EtcdMembers::endpointList() const {
  std::string out;
  for (const auto& e : endpoints()) out += (out.empty() ? "" : ",") + e;
  return out;
}

bool EtcdMembers::start(int i) {
  std::string cluster;
  for (int j = 0; j < kMembers; ++j)
    cluster += (j ? "," : "") + std::string("m") + std::to_string(j) + "=" + url(j, true);
  std::string dir = dir_ + "/etcd" + std::to_string(i);
  std::vector<std::string> args = {"ip",
                                   "netns",
                                   "exec",
                                   ns_,
                                   "etcd",
                                   "--name",
                                   "m" + std::to_string(i),
                                   "--data-dir",
                                   dir,
                                   "--listen-client-urls",
                                   url(i),
                                   "--advertise-client-urls",
                                   url(i),
                                   "--listen-peer-urls",
                                   url(i, true),
                                   "--initial-advertise-peer-urls",
                                   url(i, true),
                                   "--initial-cluster",
                                   cluster,
                                   "--initial-cluster-token",
                                   token_,
                                   "--heartbeat-interval",
                                   "50",
                                   "--election-timeout",
                                   "500"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::string log = dir + ".log";
  // fork and exec (only async-signal-safe calls in the child).
  pid_t pid = ::fork();
  if (pid < 0) return false;
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    ::execvp("ip", argv.data());
    ::_exit(127);
  }
  pids_[i] = pid;
  return true;
}

void EtcdMembers::kill(int i) {
  if (pids_[i] <= 0) return;
  ::kill(pids_[i], SIGKILL);
  int status = 0;
  (void)::waitpid(pids_[i], &status, 0);
  pids_[i] = 0;
}

std::string EtcdMembers::logs() const {
  std::string out;
  for (int i = 0; i < kMembers; ++i)
    out += sh("tail -5 " + dir_ + "/etcd" + std::to_string(i) + ".log").out;
  return out;
}

}  // namespace plumb::testing
