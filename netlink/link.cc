#include "netlink/link.h"

#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sys/socket.h>

#include <cstring>

#include "base/names.h"

namespace plumb::netlink {

bool LinkInfo::up() const { return (flags & IFF_UP) != 0; }

namespace {

ifinfomsg* putIfinfo(Message& m, int index = 0) {
  auto* ifi = m.putHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = index;
  return ifi;
}

void putCommon(Message& m, const std::string& name, int mtu, const std::optional<MacAddr>& mac) {
  if (!name.empty()) m.putStr(IFLA_IFNAME, name);
  if (mtu > 0) m.putU32(IFLA_MTU, static_cast<uint32_t>(mtu));
  if (mac) m.put(IFLA_ADDRESS, 6, mac->data());
}

Status named(Status st, const std::string& what) {
  if (st.ok()) return st;
  return std::move(st).error().wrap(what);
}

}  // namespace

void buildCreateVeth(Message& m, const VethSpec& spec) {
  putIfinfo(m);
  putCommon(m, spec.name, spec.mtu, spec.mac);
  nlattr* linkinfo = m.nestStart(IFLA_LINKINFO);
  m.putStr(IFLA_INFO_KIND, "veth");
  nlattr* data = m.nestStart(IFLA_INFO_DATA);
  nlattr* peer = m.nestStart(VETH_INFO_PEER);
  // The peer nest starts with its own ifinfomsg.
  auto* pifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(m.hdr(), sizeof(ifinfomsg)));
  pifi->ifi_family = AF_UNSPEC;
  putCommon(m, spec.peer_name, spec.mtu, spec.peer_mac);
  if (spec.peer_netns) m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(spec.peer_netns->fd()));
  m.nestEnd(peer);
  m.nestEnd(data);
  m.nestEnd(linkinfo);
}

Status createVeth(NlSocket& s, const VethSpec& spec) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  buildCreateVeth(m, spec);
  return named(s.request(m), "failed to create veth " + spec.name + "/" + spec.peer_name);
}

Status createBridge(NlSocket& s, const BridgeSpec& spec) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  putIfinfo(m);
  putCommon(m, spec.name, spec.mtu, spec.mac);
  nlattr* linkinfo = m.nestStart(IFLA_LINKINFO);
  m.putStr(IFLA_INFO_KIND, "bridge");
  m.nestEnd(linkinfo);
  return named(s.request(m), "failed to create bridge " + spec.name);
}

void buildCreateMacvlan(Message& m, const MacvlanSpec& spec) {
  putIfinfo(m);
  putCommon(m, spec.name, spec.mtu, spec.mac);
  m.putU32(IFLA_LINK, static_cast<uint32_t>(spec.parent_index));
  if (spec.netns) m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(spec.netns->fd()));
  nlattr* linkinfo = m.nestStart(IFLA_LINKINFO);
  m.putStr(IFLA_INFO_KIND, "macvlan");
  nlattr* data = m.nestStart(IFLA_INFO_DATA);
  m.putU32(IFLA_MACVLAN_MODE, static_cast<uint32_t>(spec.mode));
  m.nestEnd(data);
  m.nestEnd(linkinfo);
}

Status createMacvlan(NlSocket& s, const MacvlanSpec& spec) {
  Message m(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL);
  buildCreateMacvlan(m, spec);
  return named(s.request(m), "failed to create macvlan " + spec.name);
}

void buildChangeLink(Message& m, int index, const LinkChange& c) {
  auto* ifi = putIfinfo(m, index);
  if (c.up) {
    ifi->ifi_change |= IFF_UP;
    if (*c.up) ifi->ifi_flags |= IFF_UP;
  }
  if (c.promisc) {
    ifi->ifi_change |= IFF_PROMISC;
    if (*c.promisc) ifi->ifi_flags |= IFF_PROMISC;
  }
  putCommon(m, c.name.value_or(""), c.mtu.value_or(0), c.mac);
  if (c.master) m.putU32(IFLA_MASTER, static_cast<uint32_t>(*c.master));
  if (c.alias) m.putStr(IFLA_IFALIAS, *c.alias);
  if (c.netns) m.putU32(IFLA_NET_NS_FD, static_cast<uint32_t>(c.netns->fd()));
  if (c.arp_notify || c.no_ipv6_link_local) {
    nlattr* af_spec = m.nestStart(IFLA_AF_SPEC);
    if (c.arp_notify) {
      nlattr* inet = m.nestStart(AF_INET);
      nlattr* conf = m.nestStart(IFLA_INET_CONF);
      m.putU32(IPV4_DEVCONF_ARP_NOTIFY, *c.arp_notify ? 1 : 0);
      m.nestEnd(conf);
      m.nestEnd(inet);
    }
    if (c.no_ipv6_link_local) {
      nlattr* inet6 = m.nestStart(AF_INET6);
      m.putU8(IFLA_INET6_ADDR_GEN_MODE, IN6_ADDR_GEN_MODE_NONE);
      m.nestEnd(inet6);
    }
    m.nestEnd(af_spec);
  }
}

Status changeLink(NlSocket& s, int index, const LinkChange& change) {
  Message m(RTM_NEWLINK, 0);
  buildChangeLink(m, index, change);
  return named(s.request(m), "failed to change link " + std::to_string(index));
}

Status setBridgePortHairpin(NlSocket& s, int index, bool hairpin) {
  Message m(RTM_SETLINK, 0);
  auto* ifi = m.putHeader<ifinfomsg>();
  ifi->ifi_family = AF_BRIDGE;
  ifi->ifi_index = index;
  nlattr* protinfo = m.nestStart(IFLA_PROTINFO | NLA_F_NESTED);
  m.putU8(IFLA_BRPORT_MODE, hairpin ? 1 : 0);
  m.nestEnd(protinfo);
  return named(s.request(m), "failed to set hairpin mode on link " + std::to_string(index));
}

Status deleteLink(NlSocket& s, int index) {
  Message m(RTM_DELLINK, 0);
  putIfinfo(m, index);
  return named(s.request(m), "failed to delete link " + std::to_string(index));
}

void buildAltnames(Message& m, int index, const std::vector<std::string>& names) {
  putIfinfo(m, index);
  nlattr* list = m.nestStart(IFLA_PROP_LIST | NLA_F_NESTED);
  for (const auto& n : names) m.putStr(IFLA_ALT_IFNAME, n);
  m.nestEnd(list);
}

namespace {
Status changeAltnames(NlSocket& s, uint16_t type, int index,
                      const std::vector<std::string>& names) {
  if (names.empty()) return {};
  Message m(type, 0);
  buildAltnames(m, index, names);
  std::string joined;
  for (const auto& n : names) joined += (joined.empty() ? "" : ", ") + n;
  return named(s.request(m), std::string("failed to ") +
                                 (type == RTM_NEWLINKPROP ? "add" : "remove") + " altnames " +
                                 joined + " of link " + std::to_string(index));
}
}  // namespace

Status addAltnames(NlSocket& s, int index, const std::vector<std::string>& names) {
  return changeAltnames(s, RTM_NEWLINKPROP, index, names);
}
Status deleteAltnames(NlSocket& s, int index, const std::vector<std::string>& names) {
  return changeAltnames(s, RTM_DELLINKPROP, index, names);
}

Result<LinkInfo> parseLink(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return fail(Errc::kDecode, "not a link message");
  const auto* ifi = familyHeader<ifinfomsg>(nlh);
  if (!ifi) return fail(Errc::kDecode, "link message too short");
  LinkInfo info;
  info.index = ifi->ifi_index;
  info.flags = ifi->ifi_flags;
  forEachAttr(nlh, sizeof(*ifi), [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case IFLA_IFNAME:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) info.name = mnl_attr_get_str(attr);
        break;
      case IFLA_MTU:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
          info.mtu = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_ADDRESS:
      case IFLA_PERM_ADDRESS:
        if (mnl_attr_get_payload_len(attr) == 6) {
          std::array<uint8_t, 6> b{};
          std::memcpy(b.data(), mnl_attr_get_payload(attr), 6);
          (mnl_attr_get_type(attr) == IFLA_ADDRESS ? info.mac : info.perm_mac) = MacAddr(b);
        }
        break;
      case IFLA_IFALIAS:
        if (mnl_attr_validate(attr, MNL_TYPE_NUL_STRING) == 0) info.alias = mnl_attr_get_str(attr);
        break;
      case IFLA_PROP_LIST:
        forEachNested(attr, [&](const nlattr* prop) {
          if (mnl_attr_get_type(prop) == IFLA_ALT_IFNAME &&
              mnl_attr_validate(prop, MNL_TYPE_NUL_STRING) == 0)
            info.altnames.emplace_back(mnl_attr_get_str(prop));
        });
        break;
      case IFLA_MASTER:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
          info.master = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case IFLA_OPERSTATE:
        if (mnl_attr_validate(attr, MNL_TYPE_U8) == 0) info.oper_state = mnl_attr_get_u8(attr);
        break;
      case IFLA_LINKINFO: {
        forEachNested(attr, [&](const nlattr* inner) {
          if (mnl_attr_get_type(inner) == IFLA_INFO_KIND &&
              mnl_attr_validate(inner, MNL_TYPE_NUL_STRING) == 0) {
            info.kind = mnl_attr_get_str(inner);
          } else if (mnl_attr_get_type(inner) == IFLA_INFO_DATA && info.kind == "macvlan") {
            forEachNested(inner, [&](const nlattr* data) {
              if (mnl_attr_get_type(data) == IFLA_MACVLAN_MODE &&
                  mnl_attr_validate(data, MNL_TYPE_U32) == 0) {
                info.macvlan_mode = mnl_attr_get_u32(data);
              }
            });
          }
        });
        break;
      }
      default:
        break;
    }
  });
  return info;
}

namespace {

Result<LinkInfo> getLinkBy(NlSocket& s, int index, const std::string& name) {
  Message m(RTM_GETLINK, 0);
  putIfinfo(m, index);
  if (!name.empty()) m.putStr(IFLA_IFNAME, name);
  // Skip per-VF and stats blocks: small replies even on big NICs.
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::optional<LinkInfo> found;
  auto st = s.request(m, [&](const nlmsghdr* nlh) -> Status {
    auto info = parseLink(nlh);
    if (!info.ok()) return std::move(info).error();
    found = std::move(info).value();
    return {};
  });
  std::string what = name.empty() ? "link " + std::to_string(index) : "link " + name;
  if (!st.ok()) {
    if (st.error().code == Errc::kNotFound) return fail(Errc::kNotFound, what + " does not exist");
    return std::move(st).error().wrap("failed to read " + what);
  }
  if (!found) return fail(Errc::kNotFound, what + " does not exist");
  return std::move(*found);
}

}  // namespace

Result<LinkInfo> getLink(NlSocket& s, const std::string& name) {
  PLUMB_TRY(validateIfname(name));
  return getLinkBy(s, 0, name);
}

Result<LinkInfo> getLink(NlSocket& s, int index) { return getLinkBy(s, index, ""); }

Status waitForCarrier(const std::string& name) {
  PLUMB_TRY(validateIfname(name));
  // Subscribe before looking, so a change between the look and the wait is not missed.
  PLUMB_ASSIGN(auto events, NlSocket::subscribe(RTMGRP_LINK));
  PLUMB_ASSIGN(auto query, NlSocket::open());
  auto ready = [&](const LinkInfo& l) { return l.name == name && (l.flags & IFF_LOWER_UP); };
  bool resync = true;
  for (;;) {
    if (resync) {
      auto l = getLink(query, name);
      if (l.ok() && ready(*l)) return {};
      if (!l.ok() && l.error().code != Errc::kNotFound) return std::move(l).error();
      resync = false;
    }
    bool done = false;
    auto st = events.next([&](const nlmsghdr* nlh) -> Status {
      if (nlh->nlmsg_type != RTM_NEWLINK) return {};
      auto l = parseLink(nlh);
      if (l.ok() && ready(*l)) done = true;
      return {};
    });
    if (done) return {};
    if (!st.ok()) {
      if (st.error().code != Errc::kTryAgain) return st;
      resync = true;  // a receive timeout or dropped notifications: look again
    }
  }
}

Result<std::vector<LinkInfo>> listLinks(NlSocket& s) {
  Message m(RTM_GETLINK, 0);
  putIfinfo(m);
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
  std::vector<LinkInfo> out;
  auto st = s.dump(
      m,
      [&](const nlmsghdr* nlh) -> Status {
        auto info = parseLink(nlh);
        if (info.ok()) out.push_back(std::move(info).value());
        return {};
      },
      [&] { out.clear(); });
  if (!st.ok()) return std::move(st).error().wrap("failed to list links");
  return out;
}

}  // namespace plumb::netlink
