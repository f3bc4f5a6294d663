#include "netlink/route.h"

#include <sys/socket.h>

namespace plumb::netlink {

std::string describe(const Route& r) {
  std::string s = r.dst.str();
  if (r.gateway) s += " via " + r.gateway->str();
  if (r.oif) s += " dev " + std::to_string(r.oif);
  return s;
}

void buildRoute(Message& m, const Route& r) {
  auto* rtm = m.putHeader<rtmsg>();
  rtm->rtm_family = static_cast<uint8_t>(r.dst.addr().family());
  rtm->rtm_dst_len = static_cast<uint8_t>(r.dst.len());
  rtm->rtm_table =
      r.table < 256 ? static_cast<uint8_t>(r.table) : static_cast<uint8_t>(RT_TABLE_UNSPEC);
  rtm->rtm_protocol = r.protocol;
  rtm->rtm_scope = r.scope;
  rtm->rtm_type = r.type;
  if (r.onlink) rtm->rtm_flags |= RTNH_F_ONLINK;
  if (r.table >= 256) m.putU32(RTA_TABLE, r.table);
  if (r.dst.len() > 0) {
    IpAddr net = r.dst.network().addr();
    m.put(RTA_DST, net.size(), net.data());
  }
  if (r.gateway) m.put(RTA_GATEWAY, r.gateway->size(), r.gateway->data());
  if (r.src) m.put(RTA_PREFSRC, r.src->size(), r.src->data());
  if (r.oif) m.putU32(RTA_OIF, static_cast<uint32_t>(r.oif));
  if (r.metric) m.putU32(RTA_PRIORITY, r.metric);
  if (r.mtu) {
    nlattr* metrics = m.nestStart(RTA_METRICS);
    m.putU32(RTAX_MTU, r.mtu);
    m.nestEnd(metrics);
  }
}

Status addRoute(NlSocket& s, const Route& r, bool replace) {
  Message m(RTM_NEWROUTE, NLM_F_CREATE | (replace ? NLM_F_REPLACE : NLM_F_EXCL));
  buildRoute(m, r);
  auto st = s.request(m);
  if (!st.ok()) return std::move(st).error().wrap("failed to add route " + describe(r));
  return {};
}

Status deleteRoute(NlSocket& s, const Route& r) {
  Message m(RTM_DELROUTE, 0);
  buildRoute(m, r);
  auto* rtm = static_cast<rtmsg*>(mnl_nlmsg_get_payload(m.hdr()));
  rtm->rtm_scope = RT_SCOPE_NOWHERE;  // match any scope
  rtm->rtm_protocol = 0;
  auto st = s.request(m);
  if (!st.ok()) {
    if (st.error().sys_errno == ESRCH)
      return fail(Errc::kNotFound, "route " + describe(r) + " does not exist");
    return std::move(st).error().wrap("failed to delete route " + describe(r));
  }
  return {};
}

std::optional<Route> parseRoute(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWROUTE) return std::nullopt;
  const auto* rt = familyHeader<rtmsg>(nlh);
  if (!rt || (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6)) return std::nullopt;
  Route r;
  r.scope = rt->rtm_scope;
  r.protocol = rt->rtm_protocol;
  r.type = rt->rtm_type;
  r.table = rt->rtm_table;
  r.onlink = (rt->rtm_flags & RTNH_F_ONLINK) != 0;
  size_t want = rt->rtm_family == AF_INET6 ? 16 : 4;
  IpAddr dst = IpAddr::fromNumber(rt->rtm_family == AF_INET6, 0);
  forEachAttr(nlh, sizeof(*rt), [&](const nlattr* attr) {
    switch (mnl_attr_get_type(attr)) {
      case RTA_DST:
        if (mnl_attr_get_payload_len(attr) == want)
          dst = IpAddr::fromBytes(rt->rtm_family, mnl_attr_get_payload(attr));
        break;
      case RTA_GATEWAY:
        if (mnl_attr_get_payload_len(attr) == want)
          r.gateway = IpAddr::fromBytes(rt->rtm_family, mnl_attr_get_payload(attr));
        break;
      case RTA_PREFSRC:
        if (mnl_attr_get_payload_len(attr) == want)
          r.src = IpAddr::fromBytes(rt->rtm_family, mnl_attr_get_payload(attr));
        break;
      case RTA_OIF:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0)
          r.oif = static_cast<int>(mnl_attr_get_u32(attr));
        break;
      case RTA_PRIORITY:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) r.metric = mnl_attr_get_u32(attr);
        break;
      case RTA_TABLE:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) r.table = mnl_attr_get_u32(attr);
        break;
      case RTA_METRICS: {
        forEachNested(attr, [&](const nlattr* mx) {
          if (mnl_attr_get_type(mx) == RTAX_MTU && mnl_attr_validate(mx, MNL_TYPE_U32) == 0) {
            r.mtu = mnl_attr_get_u32(mx);
          }
        });
        break;
      }
      default:
        break;
    }
  });
  if (rt->rtm_dst_len > dst.bits()) return std::nullopt;
  r.dst = IpPrefix(dst, rt->rtm_dst_len);
  return r;
}

Result<std::vector<Route>> listRoutes(NlSocket& s, int family, uint32_t table) {
  Message m(RTM_GETROUTE, 0);
  auto* rtm = m.putHeader<rtmsg>();
  rtm->rtm_family = static_cast<uint8_t>(family);
  std::vector<Route> out;
  auto st = s.dump(
      m,
      [&](const nlmsghdr* nlh) -> Status {
        auto r = parseRoute(nlh);
        if (!r || (table != 0 && r->table != table)) return {};
        out.push_back(*r);
        return {};
      },
      [&] { out.clear(); });
  if (!st.ok()) return std::move(st).error().wrap("failed to list routes");
  return out;
}

}  // namespace plumb::netlink
