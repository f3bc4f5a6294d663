// Engine order and rollback, with fake steps standing in for kernel calls.
#include "plugin/core/steps.h"

#include <gtest/gtest.h>

namespace plumb::core {
namespace {

struct Recorder {
  std::vector<std::string> log;
  Step ok(const std::string& name, bool with_undo = true) {
    return Step(
        name,
        [this, name]() -> Status {
          log.push_back("do " + name);
          return {};
        },
        with_undo ? std::function<void()>([this, name] { log.push_back("undo " + name); })
                  : std::function<void()>());
  }
  Step failing(const std::string& name) {
    return Step(name, [this, name]() -> Status {
      log.push_back("do " + name);
      return fail(Errc::kKernel, name + " refused");
    });
  }
};

TEST(Steps, RunsInOrderAndKeepsEverythingOnSuccess) {
  Recorder r;
  std::vector<Step> steps = {r.ok("bridge"), r.ok("veth"), r.ok("address")};
  ASSERT_TRUE(runSteps(steps).ok());
  EXPECT_EQ(r.log, (std::vector<std::string>{"do bridge", "do veth", "do address"}));
}

TEST(Steps, UndoesAppliedStepsNewestFirstOnFailure) {
  Recorder r;
  std::vector<Step> steps = {r.ok("record"), r.ok("bridge", false), r.ok("veth"),
                             r.failing("rename"), r.ok("never")};
  auto st = runSteps(steps);
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().message, "rename refused");
  EXPECT_EQ(r.log, (std::vector<std::string>{"do record", "do bridge", "do veth", "do rename",
                                             "undo veth", "undo record"}));
}

TEST(Rollback, RunsWhenNotDisarmed) {
  std::vector<int> order;
  {
    Rollback rb;
    rb.push("a", [&] { order.push_back(1); });
    rb.push("b", [&] { order.push_back(2); });
  }
  EXPECT_EQ(order, (std::vector<int>{2, 1}));
  {
    Rollback rb;
    rb.push("a", [&] { order.push_back(3); });
    rb.disarm();
  }
  EXPECT_EQ(order.size(), 2u);
}

}  // namespace
}  // namespace plumb::core
