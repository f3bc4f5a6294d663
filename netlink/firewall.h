// Forwarding and masquerade rules plumb owns, through libnftables (nftables speaks netlink).
// Every rule carries a comment "plumb:<kind>:<owner>" so it is found and removed by that tag
// alone, and adding the same rule twice is a no-op.
#pragma once

#include <string>

#include "base/ip.h"
#include "base/result.h"

namespace plumb::netlink {

class Firewall {
 public:
  // Accepts forwarding from and to the bridge. dockerd sets iptables' FORWARD policy to DROP and
  // bridge-nf-call-iptables=1, which drops even traffic between two ports of one bridge: so the
  // accept rules go into iptables' own `filter FORWARD` chains (iptables-nft) when they exist.
  static Status allowBridge(const std::string& bridge);
  static Status revokeBridge(const std::string& bridge);
  // Masquerades traffic from subnet to anywhere outside it (table inet plumb, postrouting).
  static Status masquerade(const std::string& owner, const IpPrefix& subnet);
  static Status unmasquerade(const std::string& owner, const IpPrefix& subnet);
  // Whether the tag's rules are present (for CHECK and tests).
  static Result<bool> hasBridgeRules(const std::string& bridge);
  static Result<bool> hasMasquerade(const std::string& owner, const IpPrefix& subnet);
};

}  // namespace plumb::netlink
