// A real three-member etcd 3.4 cluster for a test: members in a namespace the test made,
// listening on one address of it (ports 22379/22380 + 10 per member), data in the test's temp
// dir, each the test process's child so that kill() reaps it, and each dying with the test
// process (PR_SET_PDEATHSIG), so a test that crashes leaves none behind.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

namespace plumb::testing {

class EtcdMembers {
 public:
  static constexpr int kMembers = 3;
  // ns: the namespace's name; ip: the address the members listen on; dir: where their data
  // and logs go; token: the cluster's name (unique per test).
  EtcdMembers(std::string ns, std::string ip, std::string dir, std::string token)
      : ns_(std::move(ns)), ip_(std::move(ip)), dir_(std::move(dir)), token_(std::move(token)) {}
  ~EtcdMembers() {
    for (int i = 0; i < kMembers; ++i) kill(i);
  }
  EtcdMembers(const EtcdMembers&) = delete;
  EtcdMembers& operator=(const EtcdMembers&) = delete;

  // false when the member could not be started.
  bool start(int i);
  void kill(int i);
  std::string url(int i, bool peer = false) const;
  std::vector<std::string> endpoints() const;
  std::string endpointList() const;  // comma-separated
  // The last lines of each member's log, for a failure's message.
  std::string logs() const;

 private:
  std::string ns_, ip_, dir_, token_;
  pid_t pids_[kMembers] = {};
};

}  // namespace plumb::testing
