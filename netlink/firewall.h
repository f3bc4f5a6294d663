// Forwarding and masquerade rules plumb owns, through libnftables (nftables speaks netlink).
// Every rule carries a comment "plumb:<kind>:<owner>" so it is found and removed by that tag
// alone, and adding the same rule twice is a no-op.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/fd.h"
#include "base/ip.h"
#include "base/result.h"

struct nlmsghdr;

namespace plumb::netlink {

// One message of an nftables rule dump as plumb reads it: the rule's handle and its comment
// (libnftables keeps it in the rule's user data); nullopt when the message is too short to be
// a rule. Read only as far as the message goes.
struct RuleRead {
  std::string comment;
  uint64_t handle = 0;
};
std::optional<RuleRead> readRule(const nlmsghdr* nlh);

// What one bridge needs: forwarding accepted, and its subnets masqueraded on the way out.
struct BridgeRules {
  std::string bridge;
  std::string owner;  // the network, for the masquerade rules' tags
  std::vector<IpPrefix> masquerade;
  // Nothing is forwarded between the bridge and any other interface (Docker's --internal).
  bool internal = false;
};

using PortMapping = plumb::PortMapping;  // base/ip.h

class Firewall {
 public:
  // Serialises rule edits across plumb processes. ensure() checks under a shared hold; whoever
  // removes rules that depend on "no attachment is left" holds it exclusively across that check
  // and the removal, so an ADD recorded before the check keeps its rules and one after re-adds.
  class Lock {
   public:
    explicit Lock(bool exclusive);
    // Whether the lock is held; rule edits without it could race (reported, not ignored).
    Status status() const { return status_; }

   private:
    UniqueFd fd_;
    Status status_;
  };

  // Makes sure the bridge's rules are there, adding only what is missing: one listing when
  // all is in place (every ADD calls it, since dockerd may have set FORWARD to DROP since).
  // dockerd sets iptables' FORWARD policy to DROP and bridge-nf-call-iptables=1, which drops
  // even traffic between two ports of one bridge: so the accept rules also go into iptables'
  // own `filter FORWARD` chains (iptables-nft) when those exist.
  static Status ensure(const BridgeRules& rules);
  // Whether a name can be written into nft's rule text: the kernel takes interface names
  // that nft's quoted strings cannot hold ('"', '\\'). Checked before any rule is built.
  static Status canQuote(const std::string& what, const std::string& name);
  static Status revokeBridge(const std::string& bridge);
  // Call with a Lock(true) held.
  static Status unmasquerade(const std::string& owner, const IpPrefix& subnet);

  // DNAT for ports published to a container behind bridge, tagged with owner (the endpoint):
  // from other hosts (prerouting) and from this one (output), 127.0.0.1 included (which turns
  // on the bridge's route_localnet).
  static Status publish(const std::string& owner, const std::string& bridge,
                        const std::vector<PortMapping>& ports);
  static Status unpublish(const std::string& owner);  // nothing published is success

  // Removes plumb's table once none of its chains holds a rule (the last network is gone).
  // held: the caller's Lock(true), across its own checks; null: taken here.
  static Status tidy(const Lock* held = nullptr);

  // Every tag plumb's rules carry, once each, in its own chains and iptables' FORWARD chains
  // (plumb doctor).
  static Result<std::vector<std::string>> tags();
  // Removes every rule carrying tag, wherever tags() finds it. held: as tidy's.
  static Status removeTag(const std::string& tag, const Lock* held = nullptr);
  // What a tag says: its kind ("fwd", "masq", "port") and its owner as written, which for an
  // owner too long for nft's comments is the owner's start, '~' and a hash (ownedBy tells).
  struct Tag {
    std::string kind;
    std::string owner;
  };
  static std::optional<Tag> parseTag(const std::string& tag);
  static bool ownedBy(const Tag& tag, const std::string& owner);
};

}  // namespace plumb::netlink
