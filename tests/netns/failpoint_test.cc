// Failpoints (plugin/core/failpoint.h; built in by -DPLUMB_FAILPOINTS=ON, as the sanitizer
// build is): an ADD killed (SIGKILL) or failed before each of its steps in turn, for each
// mode and front end, then recovered as a runtime would (DEL; GC; the same ADD again) or as an
// operator would (`plumb doctor --fix`), leaves the host, the container and the store as they
// were; so does a DEL killed before each of its parts, once DEL runs again. The walk ends at the
// first N past the last step (the ADD goes through); every N before it was a real step.
#include "harness.h"

namespace plumb::testing {
namespace {

class Failpoint : public NetnsTest {
 protected:
  Cmd plumb(const std::string& args, const std::string& env = "") {
    return inHost(env + " " + std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " +
                  args);
  }
  // What must come back: the host's links, addresses, rules and the store's rows, and the
  // container's links and addresses.
  std::string snapshot(const std::string& guest) {
    return hostSnapshot() + in(guest, "ip -o link; ip -o addr show scope global").out;
  }
  static std::string at(const char* verb, int n, const char* action) {
    // (LeakSanitizer has nothing to say about a process that kills itself.)
    return std::string("ASAN_OPTIONS=detect_leaks=0 PLUMB_FAILPOINT=") + verb + ":" +
           std::to_string(n) + ":" + action;
  }

  // conf's network set up first by a container of its own (c0), so the steps walked are one
  // attachment's; c1 is walked.
  void walkCni(json conf, const std::string& peer) {
    conf["cniVersion"] = "1.1.0";  // GC
    auto c0 = makeNetns("c0");
    auto c1 = makeNetns("c1");
    ASSERT_EQ(add(conf, "c0", c0).rc, 0);
    const std::string before = snapshot(nsName("c1"));
    json gc = conf;
    gc["cni.dev/valid-attachments"] = json::array({{{"containerID", "c0"}, {"ifname", "eth0"}}});
    int steps = 0;
    for (int n = 1; n <= 40; ++n) {
      SCOPED_TRACE("ADD killed before step " + std::to_string(n));
      auto r = cni("ADD", conf, "c1", c1, "eth0", at("add", n, "kill"));
      if (r.rc == 0) {
        steps = n - 1;
        break;
      }
      EXPECT_EQ(r.rc, 137) << "killed, not failed: " << r.out;
      // Each recovery in turn: DEL; GC; `plumb doctor --fix`; the same ADD again (then its
      // DEL).
      if (n % 4 == 1) {
        auto d = del(conf, "c1", c1);
        ASSERT_EQ(d.rc, 0) << d.out;
      } else if (n % 4 == 2) {
        auto g = cni("GC", gc, "", "", "eth0");
        ASSERT_EQ(g.rc, 0) << g.out;
      } else if (n % 4 == 3) {
        auto fixed = plumb("doctor --fix");
        ASSERT_EQ(fixed.rc, 0) << fixed.out;
        EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
      } else {
        auto again = add(conf, "c1", c1);
        ASSERT_EQ(again.rc, 0) << again.out;
        EXPECT_TRUE(ping(nsName("c1"), peer));
        ASSERT_EQ(del(conf, "c1", c1).rc, 0);
      }
      EXPECT_EQ(snapshot(nsName("c1")), before);

      SCOPED_TRACE("ADD failed at step " + std::to_string(n));
      auto f = cni("ADD", conf, "c1", c1, "eth0", at("add", n, "error"));
      EXPECT_NE(f.rc, 0);
      EXPECT_NE(f.out.find("failpoint add:" + std::to_string(n)), std::string::npos) << f.out;
      EXPECT_EQ(snapshot(nsName("c1")), before) << "the rollback left nothing";
    }
    EXPECT_GT(steps, 3) << "the walk reached past the last step";
    ASSERT_EQ(del(conf, "c1", c1).rc, 0);
    EXPECT_EQ(snapshot(nsName("c1")), before);

    // DEL killed before each of its parts, then DEL again.
    int parts = 0;
    for (int n = 1; n <= 20; ++n) {
      SCOPED_TRACE("DEL killed before part " + std::to_string(n));
      ASSERT_EQ(add(conf, "c1", c1).rc, 0);
      auto d = cni("DEL", conf, "c1", c1, "eth0", at("del", n, "kill"));
      if (d.rc == 0) {
        parts = n - 1;
        break;
      }
      EXPECT_EQ(d.rc, 137) << d.out;
      ASSERT_EQ(del(conf, "c1", c1).rc, 0);
      EXPECT_EQ(snapshot(nsName("c1")), before);
    }
    EXPECT_GE(parts, 2);
    EXPECT_EQ(snapshot(nsName("c1")), before);
    ASSERT_EQ(del(conf, "c0", c0).rc, 0);
    RecordProperty("add_steps", steps);
    RecordProperty("del_parts", parts);
  }
};

TEST_F(Failpoint, CniBridgeAddAndDelAtEveryStep) {
  auto conf = bridgeConf("netfp", "br-fp", "198.18.76.0/24");
  conf["ipMasq"] = true;
  walkCni(conf, "198.18.76.1");
}

TEST_F(Failpoint, CniMacvlanAddAndDelAtEveryStep) {
  ASSERT_EQ(inHost("ip link add fp0 type bridge && ip addr add 198.18.77.1/24 dev fp0 && "
                   "ip link add fp0m type veth peer name fp0p && ip link set fp0p master fp0 && "
                   "ip link set fp0 up && ip link set fp0p up && ip link set fp0m up")
                .rc,
            0);
  json conf = {{"name", "netfpm"},
               {"type", "plumb"},
               {"mode", "macvlan"},
               {"master", "fp0m"},
               {"dataDir", state_.path() + "/state"},
               {"ipam", {{"type", "plumb"}, {"subnet", "198.18.77.0/24"}}}};
  walkCni(conf, "198.18.77.1");
}

// The command line: pipework's bridge form, killed or failed before each step, then `plumb
// del`, `plumb doctor --fix` or the same command again.
TEST_F(Failpoint, CliBridgeAttachAtEveryStep) {
  makeNetns("g0");
  makeNetns("g1");
  auto g0 = nsName("g0"), g1 = nsName("g1");
  ASSERT_EQ(plumb("br-fpc " + g0 + " 198.18.78.2/24").rc, 0);
  const std::string before = snapshot(g1);
  int steps = 0;
  for (int n = 1; n <= 40; ++n) {
    SCOPED_TRACE("attach killed before step " + std::to_string(n));
    auto r = plumb("br-fpc " + g1 + " 198.18.78.3/24", at("add", n, "kill"));
    if (r.rc == 0) {
      steps = n - 1;
      break;
    }
    EXPECT_EQ(r.rc, 137) << r.out;
    if (n % 3 == 1) {
      auto d = plumb("del " + g1);
      ASSERT_EQ(d.rc, 0) << d.out;
    } else if (n % 3 == 2) {
      auto fixed = plumb("doctor --fix");
      ASSERT_EQ(fixed.rc, 0) << fixed.out;
      EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
    } else {
      auto again = plumb("br-fpc " + g1 + " 198.18.78.3/24");
      ASSERT_EQ(again.rc, 0) << again.out;
      EXPECT_TRUE(ping(g1, "198.18.78.2"));
      ASSERT_EQ(plumb("del " + g1).rc, 0);
    }
    EXPECT_EQ(snapshot(g1), before);
    auto f = plumb("br-fpc " + g1 + " 198.18.78.3/24", at("add", n, "error"));
    EXPECT_EQ(f.rc, 1) << f.out;
    EXPECT_NE(f.out.find("failpoint add:" + std::to_string(n)), std::string::npos) << f.out;
    EXPECT_EQ(snapshot(g1), before) << "the rollback left nothing";
  }
  EXPECT_GT(steps, 3);
  ASSERT_EQ(plumb("del " + g1).rc, 0);
  ASSERT_EQ(plumb("del " + g0).rc, 0);
  RecordProperty("add_steps", steps);
}

}  // namespace
}  // namespace plumb::testing
