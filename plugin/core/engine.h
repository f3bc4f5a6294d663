// The engine: carries out an AttachRequest in the kernel, records it in the store, and undoes
// it. Front ends turn their input into requests; the engine never sees CNI JSON, HTTP or argv.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"
#include "plugin/core/steps.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core {

struct DetachRequest {
  AttachmentKey key;
  std::string netns;  // may be empty or gone: detach still succeeds
  // Masquerade rules of the network to remove once no attachment of it is left (ipMasq).
  std::vector<IpPrefix> masquerade;
};

class Engine {
 public:
  explicit Engine(Store& store) : store_(store) {}

  // Validates the request (names, addresses, mode) without touching anything.
  static Status validate(const AttachRequest& req);
  // The steps attach would run, described, for --dry-run.
  Result<std::vector<std::string>> describe(const AttachRequest& req);

  Result<AttachResult> attach(const AttachRequest& req);
  // Idempotent: a missing record, link or netns is success.
  Status detach(const DetachRequest& req);
  // Verifies that the interface, its addresses and routes are as requested and recorded.
  Status check(const AttachRequest& req);

  // Creates the bridge of a network ahead of its first attachment (Docker's CreateNetwork),
  // with its gateway addresses and rules, as attach would. true: this call made the bridge. A
  // failure leaves no bridge it made behind.
  Result<bool> prepareBridge(const std::string& network, const VethBridgePlan& plan, int mtu);
  // Removes a bridge plumb made (stamped at creation; any other is left alone) and the rules
  // it installed for it (Docker network removal).
  Status removeBridge(const std::string& bridge);

  // Names plumb derives from the attachment key: stable across retries and processes.
  static std::string hostIfname(const AttachmentKey& key);
  static std::string tempIfname(const AttachmentKey& key);
  static std::string hostSideIfname(const AttachmentKey& key);  // left for Docker to move
  // The addresses an attachment was made with, as the engine recorded them.
  static std::vector<AddressSpec> recordedAddresses(const AttachmentRecord& record);
  // IFLA_IFALIAS on every link plumb makes: what detach checks before deleting anything.
  static std::string ownerStamp(const AttachmentKey& key);
  static std::string bridgeStamp(const std::string& bridge);

 private:
  struct Context;
  Result<std::vector<Step>> buildSteps(Context& ctx);

  Store& store_;
};

}  // namespace plumb::core
