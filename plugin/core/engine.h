// The engine: carries out an AttachRequest in the kernel, records it in the store, and undoes
// it. Front ends turn their input into requests; the engine never sees CNI JSON, HTTP or argv,
// and front ends never see netlink: what they need of the kernel is a call here or in
// plugin/core/host.h.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core {

class Kernel;  // plugin/core/kernel.h, internal

struct DetachRequest {
  AttachmentKey key;
  std::string netns;  // may be empty or gone: detach still succeeds
  // Masquerade rules of the network to remove once no attachment of it is left (ipMasq).
  std::vector<IpPrefix> masquerade;
  // The plan as the front end's configuration has it now: how to find what an attach made
  // when its record is gone (an OVS port by its external_ids). The record's mode wins.
  std::optional<Plan> plan;
};

// A network going away (Docker's DeleteNetwork), after its attachments.
struct NetworkRemoval {
  std::string network;
  std::string bridge;                // its bridge; empty: none (macvlan, passthrough)
  std::vector<IpPrefix> masquerade;  // the subnets it masqueraded
};

class Engine {
 public:
  // On the real kernel.
  explicit Engine(Store& store);
  // On a kernel the caller provides (the unit tests' fake).
  Engine(Store& store, Kernel& kernel);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates the request (names, addresses, mode) without touching anything.
  static Status validate(const AttachRequest& req);
  // The steps attach would run, described, for --dry-run.
  Result<std::vector<std::string>> describe(const AttachRequest& req);

  // A failure half-way undoes every step taken, the DHCP client included. A netns that is
  // gone is Errc::kNoNetns.
  Result<AttachResult> attach(const AttachRequest& req);
  // Idempotent: a missing record, link or netns is success. Stops the helpers the attachment
  // owns (its DHCP client), whichever front end made it.
  Status detach(const DetachRequest& req);
  // Verifies that the interface, its addresses and routes are as requested and recorded.
  Status check(const AttachRequest& req);
  // CNI GC past the store: removes what plumb made for network in the plan's mode that no
  // record names and keep does not list (OVS ports plumb owns; none other is touched).
  Status sweep(const std::string& network, const Plan& plan,
               const std::vector<AttachmentKey>& keep);

  // Creates the bridge of a network ahead of its first attachment (Docker's CreateNetwork),
  // with its gateway addresses and rules, as attach would. true: this call made the bridge. A
  // failure leaves no bridge it made behind.
  Result<bool> prepareBridge(const std::string& network, const VethBridgePlan& plan, int mtu);
  // Removes a bridge plumb made (stamped at creation; any other is left alone) and the rules
  // it installed for it.
  Status removeBridge(const std::string& bridge);
  // Removes what a network set up besides its attachments: its masquerade rules, its bridge
  // unless another network's attachment still uses it, and plumb's firewall table once empty.
  Status removeNetwork(const NetworkRemoval& removal);

  // DNAT for ports published to a container behind bridge, tagged with owner (Docker's -p;
  // 127.0.0.1 included); unpublish removes owner's, nothing published being success.
  Status publish(const std::string& owner, const std::string& bridge,
                 const std::vector<PortMapping>& ports);
  Status unpublish(const std::string& owner);

  // Names plumb derives from the attachment key: stable across retries and processes.
  // Whether a record is an attach whose process is gone (killed mid-way): still "adding",
  // and its owner no longer runs. Such a record is what DEL cleans; a retried attach cleans it
  // first too. A record from before owners were recorded is not taken for abandoned.
  static bool abandoned(const AttachmentRecord& record);
  // abandoned(), and the store still holding that very record: read again once its owner is
  // known gone, since an attach that finished and exited between the caller's read and the
  // check looks abandoned by a record read before it finished. What a front end asks before it
  // cleans an attach it found unfinished.
  static Result<bool> stillAbandoned(Store& store, const AttachmentRecord& seen);

  static std::string hostIfname(const AttachmentKey& key);
  static std::string tempIfname(const AttachmentKey& key);
  static std::string hostSideIfname(const AttachmentKey& key);  // left for Docker to move
  // IFLA_IFALIAS on every link plumb makes: what detach checks before deleting anything.
  static std::string ownerStamp(const AttachmentKey& key);
  static std::string bridgeStamp(const std::string& bridge);

 private:
  // The network's masquerade rules go once no attachment of it is left (checked and removed
  // under the firewall's exclusive lock, so a concurrent ADD keeps or re-adds them).
  Status unmasqueradeIfUnused(const std::string& network, const std::vector<IpPrefix>& subnets);

  Store& store_;
  std::unique_ptr<Kernel> own_kernel_;
  Kernel& kernel_;
};

}  // namespace plumb::core
