// The netns tier's harness: each test gets its own "host" namespace (where the plugin runs and
// its bridges and rules live) and container namespaces, all named with a per-test prefix, all
// removed afterwards; the root namespace is only ever read, to check that nothing leaked.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "../unit/test_dir.h"

namespace plumb::testing {

using json = nlohmann::json;

struct Cmd {
  int rc = -1;
  std::string out;
};

// Runs a shell command line (tests only) and returns its exit code and stdout.
Cmd sh(const std::string& cmd);
std::string shq(const std::string& s);  // single-quoted for sh
// A process's resident memory (VmRSS), in KiB; -1 when it cannot be read.
long rssKiB(pid_t pid);
// Whether pid runs: gone or a zombie is not (init on these machines may reap late or never).
bool running(pid_t pid);

class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override;
  void TearDown() override;

  // A new namespace "<prefix>-<name>"; returns its /run/netns path.
  std::string makeNetns(const std::string& name);
  std::string nsName(const std::string& name) const { return prefix_ + "-" + name; }
  const std::string& host() const { return host_; }  // the host namespace's name
  // A command inside a test namespace.
  Cmd in(const std::string& ns_name, const std::string& cmd);
  Cmd inHost(const std::string& cmd) { return in(host_, cmd); }

  // Runs the CNI plugin in the host namespace.
  Cmd cni(const std::string& command, const json& conf, const std::string& cid,
          const std::string& netns_path, const std::string& ifname = "eth0",
          const std::string& extra_env = "");
  Cmd add(const json& conf, const std::string& cid, const std::string& netns_path,
          const std::string& ifname = "eth0") {
    return cni("ADD", conf, cid, netns_path, ifname);
  }
  Cmd del(const json& conf, const std::string& cid, const std::string& netns_path,
          const std::string& ifname = "eth0") {
    return cni("DEL", conf, cid, netns_path, ifname);
  }
  // A bridge-mode configuration with the built-in IPAM on subnet, state in this test's dir.
  json bridgeConf(const std::string& name, const std::string& bridge, const std::string& subnet,
                  const std::string& version = "1.0.0");
  // Everything in the host namespace a bad request must not change: links, addresses, rules,
  // and the store's rows.
  std::string hostSnapshot();
  std::string storeDump();
  bool ping(const std::string& ns_name, const std::string& addr, bool v6 = false);
  int cniCode(const Cmd& r);

  std::string prefix_;
  std::string host_;
  std::vector<std::string> namespaces_;
  TempDir state_;
};

}  // namespace plumb::testing
