#include "harness.h"

#include "../unit/store_dump.h"

#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdio>
#include <fstream>

namespace plumb::testing {

Cmd sh(const std::string& cmd) {
  Cmd r;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int status = pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

std::string shq(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

bool running(pid_t pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return false;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] != 'Z';
}

long rssKiB(pid_t pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

void NetnsTest::SetUp() {
  ASSERT_EQ(geteuid(), 0u) << "the netns tier needs root";
  static std::atomic<int> counter{0};
  prefix_ = "plumb-t" + std::to_string(getpid()) + "-" + std::to_string(counter++);
  host_ = prefix_ + "-host";
  ASSERT_EQ(sh("ip netns add " + host_).rc, 0);
  namespaces_.push_back(host_);
  in(host_, "ip link set lo up");
}

void NetnsTest::TearDown() {
  // Where plumb works: the host namespace, checked before it goes (tests DEL what they ADD).
  auto host_links =
      in(host_, "ip -o link 2>/dev/null | grep -E ': (plm|plt|plc)[0-9a-f]{8}' || true").out;
  EXPECT_EQ(host_links, "") << "attachment links left in the host namespace";
  for (auto it = namespaces_.rbegin(); it != namespaces_.rend(); ++it)
    sh("ip netns del " + *it + " 2>/dev/null");
  auto left = sh("ip netns list | grep -c '^" + prefix_ + "' || true");
  EXPECT_EQ(std::stoi(left.out.empty() ? "0" : left.out), 0) << "namespaces leaked";
  auto links = sh("ip -o link 2>/dev/null | grep -E ': (plm|plt|plc)[0-9a-f]{8}' || true");
  EXPECT_EQ(links.out, "") << "links leaked into the root namespace";
}

std::string NetnsTest::makeNetns(const std::string& name) {
  std::string full = nsName(name);
  EXPECT_EQ(sh("ip netns add " + full).rc, 0);
  namespaces_.push_back(full);
  in(full, "ip link set lo up");
  return "/run/netns/" + full;
}

Cmd NetnsTest::in(const std::string& ns_name, const std::string& cmd) {
  return sh("ip netns exec " + ns_name + " sh -c " + shq(cmd) + " 2>&1");
}

Cmd NetnsTest::cni(const std::string& command, const json& conf, const std::string& cid,
                   const std::string& netns_path, const std::string& ifname,
                   const std::string& extra_env) {
  static std::atomic<int> seq{0};
  std::string file = state_.path() + "/conf-" + std::to_string(seq++) + ".json";
  {
    std::ofstream f(file);
    f << conf.dump();
  }
  std::string cmd = "ip netns exec " + host_ + " env CNI_COMMAND=" + command +
                    " CNI_CONTAINERID=" + shq(cid) + " CNI_NETNS=" + shq(netns_path) +
                    " CNI_IFNAME=" + shq(ifname) + " CNI_PATH=/usr/lib/cni " + extra_env + " " +
                    PLUMB_BIN + " < " + file;
  return sh(cmd);
}

json NetnsTest::bridgeConf(const std::string& name, const std::string& bridge,
                           const std::string& subnet, const std::string& version) {
  return {{"cniVersion", version},
          {"name", name},
          {"type", "plumb"},
          {"bridge", bridge},
          {"isGateway", true},
          {"dataDir", state_.path() + "/state"},
          {"ipam", {{"type", "plumb"}, {"subnet", subnet}}}};
}

// IPAM's round-robin cursor and its list of addresses once given back are left out: both move
// on by design when an address is released (as host-local's cursor does), and hold nothing.
std::string NetnsTest::storeDump() {
  // sqlite_sequence only grows: VF claims' ids are generations, never reused.
  return storeDumpOf(state_.path() + "/state/plumb.db",
                     {"ip_cursor", "ip_released", "sqlite_sequence"});
}

std::string NetnsTest::hostSnapshot() {
  // Global addresses only: the kernel's own link-local ones change state (DAD) by themselves.
  return inHost(
             "ip -o link 2>/dev/null | sed 's/ state [A-Z]*//'; ip -o addr show scope global; nft "
             "list ruleset")
             .out +
         storeDump();
}

bool NetnsTest::ping(const std::string& ns_name, const std::string& addr, bool v6) {
  return in(ns_name, std::string("busybox ping ") + (v6 ? "-6 " : "") + "-c 1 -W 2 " + addr).rc ==
         0;
}

int NetnsTest::cniCode(const Cmd& r) {
  auto j = json::parse(r.out, nullptr, false);
  if (!j.is_object() || !j.contains("code") || !j["code"].is_number_integer()) return 0;
  return j["code"].get<int>();
}

}  // namespace plumb::testing
