// Open vSwitch and SR-IOV: planned modes (their issues are open). Every verb refuses them, so a
// front end that builds their plans gets one clear error and nothing changes.
#include "plugin/core/modes/mode.h"

namespace plumb::core::modes {

namespace {
template <typename Plan>
Status notYet() {
  return fail(Errc::kUnsupported, std::string("mode ") + Plan::kMode + " is not available yet");
}
}  // namespace

Status validate(const OvsPlan&, const AttachRequest&) { return notYet<OvsPlan>(); }
void addSteps(const OvsPlan&, Context&, std::vector<Step>& steps) {
  steps.push_back({"attach to Open vSwitch", []() -> Status { return notYet<OvsPlan>(); }});
}
Status detach(const OvsPlan&, Detach& d) { return deleteStampedLinks(d); }
Status check(const OvsPlan&, Check&) { return notYet<OvsPlan>(); }

Status validate(const SriovPlan&, const AttachRequest&) { return notYet<SriovPlan>(); }
void addSteps(const SriovPlan&, Context&, std::vector<Step>& steps) {
  steps.push_back({"attach an SR-IOV VF", []() -> Status { return notYet<SriovPlan>(); }});
}
Status detach(const SriovPlan&, Detach& d) { return deleteStampedLinks(d); }
Status check(const SriovPlan&, Check&) { return notYet<SriovPlan>(); }

}  // namespace plumb::core::modes
