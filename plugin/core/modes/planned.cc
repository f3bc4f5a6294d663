// SR-IOV: a planned mode (its issue is open). Every verb refuses them, so a
// front end that builds their plans gets one clear error and nothing changes.
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

namespace {
template <typename Plan>
Status notYet() {
  return fail(Errc::kUnsupported, std::string("mode ") + Plan::kMode + " is not available yet");
}
}  // namespace

Status validate(const SriovPlan&, const AttachRequest&) { return notYet<SriovPlan>(); }
void addSteps(const SriovPlan&, Context&, std::vector<Step>& steps) {
  steps.push_back({"attach an SR-IOV VF", []() -> Status { return notYet<SriovPlan>(); }});
}
Status detach(const SriovPlan&, Detach& d) { return deleteStampedLinks(d); }
Status check(const SriovPlan&, Check&) { return notYet<SriovPlan>(); }
Status sweep(const SriovPlan&, Sweep&) { return {}; }

}  // namespace plumb::core::modes
