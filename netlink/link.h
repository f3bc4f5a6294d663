// Links: create veth, bridge, macvlan; change, read, list and delete links. Results and errors
// name the link; ENODEV/EEXIST come back as Errc::kNotFound / Errc::kExists.
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "netlink/netns.h"
#include "netlink/socket.h"

namespace plumb::netlink {

struct LinkInfo {
  int index = 0;
  std::string name;
  std::string kind;  // "veth", "bridge", "macvlan", ...; empty for a physical device
  unsigned flags = 0;
  int mtu = 0;
  std::optional<MacAddr> mac;
  std::optional<MacAddr> perm_mac;
  std::string alias;
  std::vector<std::string> altnames;  // IFLA_PROP_LIST
  int master = 0;                     // ifindex of the bridge it is enslaved to
  uint32_t macvlan_mode = 0;
  uint8_t oper_state = 0;
  bool up() const;
};

enum class MacvlanMode : uint32_t {
  kPrivate = 1,
  kVepa = 2,
  kBridge = 4,
  kPassthru = 8,
  kSource = 16
};

struct VethSpec {
  std::string name;  // host side, in the socket's netns
  std::string peer_name;
  const Netns* peer_netns = nullptr;  // the peer is born there; nullptr: the socket's netns
  int mtu = 0;
  std::optional<MacAddr> mac;
  std::optional<MacAddr> peer_mac;
};

struct BridgeSpec {
  std::string name;
  int mtu = 0;
  std::optional<MacAddr> mac;
};

struct MacvlanSpec {
  std::string name;
  int parent_index = 0;  // lower device, in the socket's netns
  MacvlanMode mode = MacvlanMode::kBridge;
  const Netns* netns = nullptr;  // born there; nullptr: the socket's netns
  int mtu = 0;
  std::optional<MacAddr> mac;
};

// Changes applied to one link in one RTM_NEWLINK request.
struct LinkChange {
  std::optional<std::string> name;
  std::optional<int> mtu;
  std::optional<MacAddr> mac;
  std::optional<bool> up;
  std::optional<bool> promisc;
  std::optional<int> master;  // 0 detaches
  std::optional<std::string> alias;
  const Netns* netns = nullptr;  // move the link there
  // IPv4 arp_notify: the kernel itself sends a gratuitous ARP for every address when the link
  // comes up or changes MAC (set through IFLA_AF_SPEC, no sysctl write in the netns needed).
  std::optional<bool> arp_notify;
  // No IPv6 link-local address (IFLA_INET6_ADDR_GEN_MODE none). Must come before the link is
  // first up: a bridge port's host end needs no address, and without one it sends no DAD or
  // MLD that the bridge would flood to every other port.
  bool no_ipv6_link_local = false;
};

Status createVeth(NlSocket& s, const VethSpec& spec);
Status createBridge(NlSocket& s, const BridgeSpec& spec);
Status createMacvlan(NlSocket& s, const MacvlanSpec& spec);
Status changeLink(NlSocket& s, int index, const LinkChange& change);
// Hairpin mode of a bridge port (IFLA_BRPORT_MODE).
Status setBridgePortHairpin(NlSocket& s, int index, bool hairpin);
Status deleteLink(NlSocket& s, int index);
// Deletes link index of namespace ns (nullptr: the caller's) and returns once the kernel has
// taken it, its peer and its addresses and routes out of their namespaces (its RTM_DELLINK
// notification), without waiting for the kernel to finish freeing it: after that comes an RCU
// barrier, 20 ms and more for a veth, which the request's sender sits out inside the kernel. A
// short-lived process of its own sends the request and sits it out instead. s is used only to
// look the link up when notifications were lost.
Status deleteLinkPromptly(NlSocket& s, const Netns* ns, int index);
Result<LinkInfo> getLink(NlSocket& s, const std::string& name);
Result<LinkInfo> getLink(NlSocket& s, int index);
Result<std::vector<LinkInfo>> listLinks(NlSocket& s);
// Blocks until link name exists with carrier (IFF_LOWER_UP), woken by link notifications, not
// by polling: pipework's --wait, inside a container.
Status waitForCarrier(const std::string& name);

// Alternative names of a link (RTM_NEWLINKPROP / RTM_DELLINKPROP). A name that is a link's
// altname cannot become another link's name, nor its own: plumb drops a device's altnames
// before renaming or moving it and puts them back when it gives the device back.
Status addAltnames(NlSocket& s, int index, const std::vector<std::string>& names);
Status deleteAltnames(NlSocket& s, int index, const std::vector<std::string>& names);

// Request builders, exposed for the golden-byte unit tests.
void buildCreateVeth(Message& m, const VethSpec& spec);
void buildCreateMacvlan(Message& m, const MacvlanSpec& spec);
void buildChangeLink(Message& m, int index, const LinkChange& change);
void buildAltnames(Message& m, int index, const std::vector<std::string>& names);
Result<LinkInfo> parseLink(const nlmsghdr* nlh);

}  // namespace plumb::netlink
