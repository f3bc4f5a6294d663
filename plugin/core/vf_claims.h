// Which attachment holds which SR-IOV VF, in the store: the store decides which VF an ADD
// gets, so two concurrent ADDs never take the same one whatever order they read sysfs in.
// Each claim's id is its generation (never reused): a DEL that comes late, after the VF was
// given to a newer attachment, finds another id and leaves the VF alone. The claim also keeps
// the VF's state from before plumb first changed it, which DEL puts back.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/result.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core {

struct VfClaim {
  long long id = 0;  // the generation
  std::string pci;   // the VF's PCI address
  std::string pf;    // its PF's netdev
  int vf = 0;        // its index on the PF
  AttachmentKey owner;
  std::string original;  // what DEL puts back (the mode's JSON); "" until saved
};

class VfClaims {
 public:
  explicit VfClaims(Store& store) : store_(store) {}

  // An exclusive lock on one VF, across processes (flock on a file beside the store), held
  // while a VF changes hands: a takeover's reset and a DEL's give-back never interleave.
  Result<UniqueFd> lock(const std::string& pci);

  // Claims want.pci for want.owner. A VF another attachment holds is Errc::kExists naming the
  // holder, unless that claim's id is takeover: the new claim (a new id) then keeps its saved
  // original state, which is still what the VF was before plumb.
  Result<VfClaim> claim(const VfClaim& want, long long takeover = 0);
  // The first of candidates (want.pf's VFs, in order) that no attachment holds, claimed for
  // want.owner; Errc::kExhausted "no free VF" when every one is held.
  Result<VfClaim> claimFree(const VfClaim& want,
                            const std::vector<std::pair<int, std::string>>& candidates);
  Result<std::optional<VfClaim>> find(const std::string& pci);
  Result<std::optional<VfClaim>> heldBy(const AttachmentKey& owner);
  // Every claim, or those of one network.
  Result<std::vector<VfClaim>> list(const std::string& network = "");
  Status saveOriginal(long long id, const std::string& original);
  // Gives the claim up; one with another id (a newer one) or none is left as it is.
  Status release(long long id);

 private:
  Store& store_;
};

}  // namespace plumb::core
