// The failpoint walk (plugin/core/failpoint.h; built in by -DPLUMB_FAILPOINTS=ON, as the
// sanitizer build is), for any mode's fixture: an ADD killed (SIGKILL) or failed before each
// of its steps in turn, then recovered as a runtime would (DEL; GC; the same ADD again) or as
// an operator would (`plumb doctor --fix`), leaves the host, the container and the store as
// they were; so does a DEL killed before each of its parts, once DEL runs again; a CHECK
// killed or failed before each of its reads changes nothing, and the next CHECK passes. Each
// walk ends at the first N past the last step (the command goes through); every N before it
// was a real step.
#pragma once

#include "harness.h"

namespace plumb::testing {

template <class Base>
class FailpointWalk : public Base {
 protected:
  // Given to every plumb the walk runs (a fixture's PLUMB_SYSFS_ROOT, PLUMB_OVSDB).
  std::string walk_env_;

  Cmd plumb(const std::string& args, const std::string& env = "") {
    return this->inHost(env + " " + walk_env_ + " " + std::string(PLUMB_BIN) + " --state-dir " +
                        this->state_.path() + "/state " + args);
  }
  Cmd plugin(const std::string& command, const json& conf, const std::string& cid,
             const std::string& netns, const std::string& env = "") {
    return this->cni(command, conf, cid, netns, "eth0", walk_env_ + " " + env);
  }
  // What else the walk must find as it was (a switch's ports); the host's links, addresses,
  // rules and the store's rows, and the container's links and addresses are always compared.
  virtual std::string moreState() { return ""; }
  std::string snapshot(const std::string& guest) {
    return this->hostSnapshot() + this->in(guest, "ip -o link; ip -o addr show scope global").out +
           moreState();
  }
  static std::string at(const char* verb, int n, const char* action) {
    // (LeakSanitizer has nothing to say about a process that kills itself.)
    return std::string("ASAN_OPTIONS=detect_leaks=0 PLUMB_FAILPOINT=") + verb + ":" +
           std::to_string(n) + ":" + action;
  }

  // c1 is walked. With first_container, conf's network is set up by a container of its own
  // (c0) first, so the steps walked are one attachment's (a mode with one device to give has
  // none). peer: an address c1 reaches once attached.
  void walkCni(json conf, const std::string& peer, bool first_container = true) {
    conf["cniVersion"] = "1.1.0";  // GC
    std::string c0;
    if (first_container) c0 = this->makeNetns("c0");
    auto c1 = this->makeNetns("c1");
    const std::string g1 = this->nsName("c1");
    if (first_container) {
      ASSERT_EQ(plugin("ADD", conf, "c0", c0).rc, 0);
    }
    const std::string before = snapshot(g1);
    json gc = conf;
    gc["cni.dev/valid-attachments"] = json::array();
    if (first_container)
      gc["cni.dev/valid-attachments"].push_back({{"containerID", "c0"}, {"ifname", "eth0"}});
    int steps = 0;
    std::string result;
    for (int n = 1; n <= 40; ++n) {
      SCOPED_TRACE("ADD killed before step " + std::to_string(n));
      auto r = plugin("ADD", conf, "c1", c1, at("add", n, "kill"));
      if (r.rc == 0) {
        steps = n - 1;
        result = r.out;
        break;
      }
      EXPECT_EQ(r.rc, 137) << "killed, not failed: " << r.out;
      // Each recovery in turn: DEL; GC; `plumb doctor --fix`; the same ADD again (then its
      // DEL).
      if (n % 4 == 1) {
        auto d = plugin("DEL", conf, "c1", c1);
        ASSERT_EQ(d.rc, 0) << d.out;
      } else if (n % 4 == 2) {
        auto g = plugin("GC", gc, "", "");
        ASSERT_EQ(g.rc, 0) << g.out;
      } else if (n % 4 == 3) {
        auto fixed = plumb("doctor --fix");
        ASSERT_EQ(fixed.rc, 0) << fixed.out;
        EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
      } else {
        auto again = plugin("ADD", conf, "c1", c1);
        ASSERT_EQ(again.rc, 0) << again.out;
        EXPECT_TRUE(this->ping(g1, peer));
        ASSERT_EQ(plugin("DEL", conf, "c1", c1).rc, 0);
      }
      EXPECT_EQ(snapshot(g1), before);

      SCOPED_TRACE("ADD failed at step " + std::to_string(n));
      auto f = plugin("ADD", conf, "c1", c1, at("add", n, "error"));
      EXPECT_NE(f.rc, 0);
      EXPECT_NE(f.out.find("failpoint add:" + std::to_string(n)), std::string::npos) << f.out;
      EXPECT_EQ(snapshot(g1), before) << "the rollback left nothing";
    }
    EXPECT_GT(steps, 3) << "the walk reached past the last step";
    EXPECT_TRUE(this->ping(g1, peer));

    // CHECK killed or failed before each of its reads: nothing changes, the next one passes.
    json check = conf;
    check["prevResult"] = json::parse(result, nullptr, false);
    const std::string attached = snapshot(g1);
    int reads = 0;
    for (int n = 1; n <= 20; ++n) {
      SCOPED_TRACE("CHECK killed before read " + std::to_string(n));
      auto k = plugin("CHECK", check, "c1", c1, at("check", n, "kill"));
      if (k.rc == 0) {
        reads = n - 1;
        break;
      }
      EXPECT_EQ(k.rc, 137) << k.out;
      auto f = plugin("CHECK", check, "c1", c1, at("check", n, "error"));
      EXPECT_NE(f.out.find("failpoint check:" + std::to_string(n)), std::string::npos) << f.out;
      EXPECT_EQ(snapshot(g1), attached);
      auto ok = plugin("CHECK", check, "c1", c1);
      EXPECT_EQ(ok.rc, 0) << ok.out;
    }
    EXPECT_GE(reads, 4);
    ASSERT_EQ(plugin("DEL", conf, "c1", c1).rc, 0);
    EXPECT_EQ(snapshot(g1), before);

    // DEL killed before each of its parts, then DEL again.
    int parts = 0;
    for (int n = 1; n <= 20; ++n) {
      SCOPED_TRACE("DEL killed before part " + std::to_string(n));
      ASSERT_EQ(plugin("ADD", conf, "c1", c1).rc, 0);
      auto d = plugin("DEL", conf, "c1", c1, at("del", n, "kill"));
      if (d.rc == 0) {
        parts = n - 1;
        break;
      }
      EXPECT_EQ(d.rc, 137) << d.out;
      ASSERT_EQ(plugin("DEL", conf, "c1", c1).rc, 0);
      EXPECT_EQ(snapshot(g1), before);
    }
    EXPECT_GE(parts, 2);
    EXPECT_EQ(snapshot(g1), before);
    if (first_container) {
      ASSERT_EQ(plugin("DEL", conf, "c0", c0).rc, 0);
    }
    this->RecordProperty("add_steps", steps);
    this->RecordProperty("check_reads", reads);
    this->RecordProperty("del_parts", parts);
  }
};

}  // namespace plumb::testing
