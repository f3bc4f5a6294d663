// What the engine does for a network rather than one attachment: its bridge made ahead of use
// and removed after, its masquerade rules, and the ports published to its containers.
#include "plugin/core/engine.h"
#include "plugin/core/kernel.h"
#include "plugin/core/modes/mode.h"

namespace plumb::core {

namespace nl = plumb::netlink;

Result<bool> Engine::prepareBridge(const std::string& network, const VethBridgePlan& plan,
                                   int mtu) {
  return modes::ensureBridgeForNetwork(kernel_, network, plan, mtu);
}

Status Engine::removeBridge(const std::string& bridge) {
  return modes::deleteOwnBridge(kernel_, bridge, /*only_if_unused=*/false);
}

Status Engine::unmasqueradeIfUnused(const std::string& network,
                                    const std::vector<IpPrefix>& subnets) {
  if (subnets.empty()) return {};
  return kernel_.unmasquerade(network, subnets, [&]() -> Result<bool> {
    PLUMB_ASSIGN(bool any, store_.hasAttachments(network));
    return !any;
  });
}

Status Engine::removeNetwork(const NetworkRemoval& removal) {
  PLUMB_TRY(unmasqueradeIfUnused(removal.network, removal.masquerade));
  if (!removal.bridge.empty()) {
    // The bridge may be shared with a CNI network or another front end: kept while in use.
    PLUMB_ASSIGN(auto attachments, store_.listAttachments());
    bool in_use = false;
    for (const auto& a : attachments)
      in_use |= a.mode == VethBridgePlan::kMode && a.via == removal.bridge &&
                a.key.network != removal.network;
    if (!in_use) PLUMB_TRY(removeBridge(removal.bridge));
  }
  return kernel_.tidyRules();
}

Status Engine::publish(const std::string& owner, const std::string& bridge,
                       const std::vector<PortMapping>& ports) {
  return nl::Firewall::publish(owner, bridge, ports);
}

Status Engine::unpublish(const std::string& owner) { return nl::Firewall::unpublish(owner); }

}  // namespace plumb::core
