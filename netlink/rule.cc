#include "netlink/rule.h"

#include <linux/fib_rules.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <cstring>

namespace plumb::netlink {
namespace {

void buildRule(Message& m, const Rule& r) {
  auto* h = m.putHeader<fib_rule_hdr>();
  h->family = static_cast<uint8_t>(r.family);
  h->action = FR_ACT_TO_TBL;
  h->table = static_cast<uint8_t>(r.table < 256 ? r.table : RT_TABLE_UNSPEC);
  if (r.table >= 256) m.putU32(FRA_TABLE, r.table);
  if (r.from) {
    h->src_len = static_cast<uint8_t>(r.from->len());
    IpAddr a = r.from->network().addr();
    if (r.from->len() > 0) m.put(FRA_SRC, a.size(), a.data());
  }
  if (r.to) {
    h->dst_len = static_cast<uint8_t>(r.to->len());
    IpAddr a = r.to->network().addr();
    if (r.to->len() > 0) m.put(FRA_DST, a.size(), a.data());
  }
  if (!r.iif.empty()) m.putStr(FRA_IIFNAME, r.iif);
  if (!r.oif.empty()) m.putStr(FRA_OIFNAME, r.oif);
  if (r.fwmark) m.putU32(FRA_FWMARK, *r.fwmark);
  if (r.priority) m.putU32(FRA_PRIORITY, *r.priority);
}

}  // namespace

std::string describe(const Rule& r) {
  std::string s;
  if (r.priority) s += std::to_string(*r.priority) + ": ";
  s += "from " + (r.from ? r.from->str() : std::string("all"));
  if (r.to) s += " to " + r.to->str();
  if (!r.iif.empty()) s += " iif " + r.iif;
  if (!r.oif.empty()) s += " oif " + r.oif;
  if (r.fwmark) s += " fwmark " + std::to_string(*r.fwmark);
  return s + " table " + std::to_string(r.table);
}

Status addRule(NlSocket& s, const Rule& r) {
  Message m(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL);
  buildRule(m, r);
  auto st = s.request(m);
  if (!st.ok()) return std::move(st).error().wrap("failed to add rule " + describe(r));
  return {};
}

Status deleteRule(NlSocket& s, const Rule& r) {
  Message m(RTM_DELRULE, 0);
  buildRule(m, r);
  auto st = s.request(m);
  if (!st.ok()) {
    if (st.error().sys_errno == ENOENT)
      return fail(Errc::kNotFound, "rule " + describe(r) + " does not exist");
    return std::move(st).error().wrap("failed to delete rule " + describe(r));
  }
  return {};
}

std::optional<Rule> parseRule(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWRULE) return std::nullopt;
  const auto* fh = familyHeader<fib_rule_hdr>(nlh);
  if (!fh || (fh->family != AF_INET && fh->family != AF_INET6)) return std::nullopt;
  Rule r;
  r.family = fh->family;
  r.table = fh->table;
  bool v6 = fh->family == AF_INET6;
  size_t want = v6 ? 16 : 4;
  forEachAttr(nlh, sizeof(fib_rule_hdr), [&](const nlattr* a) {
    uint16_t type = mnl_attr_get_type(a);
    size_t len = mnl_attr_get_payload_len(a);
    const void* p = mnl_attr_get_payload(a);
    if ((type == FRA_SRC || type == FRA_DST) && len == want) {
      auto addr = IpAddr::fromBytes(fh->family, p);
      int plen = type == FRA_SRC ? fh->src_len : fh->dst_len;
      if (plen <= addr.bits()) (type == FRA_SRC ? r.from : r.to) = IpPrefix(addr, plen);
    } else if (type == FRA_TABLE && len == 4) {
      r.table = mnl_attr_get_u32(a);
    } else if (type == FRA_PRIORITY && len == 4) {
      r.priority = mnl_attr_get_u32(a);
    } else if (type == FRA_FWMARK && len == 4) {
      r.fwmark = mnl_attr_get_u32(a);
    } else if (type == FRA_IIFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
      r.iif = mnl_attr_get_str(a);
    } else if (type == FRA_OIFNAME && mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0) {
      r.oif = mnl_attr_get_str(a);
    }
  });
  return r;
}

Result<std::vector<Rule>> listRules(NlSocket& s, int family) {
  Message m(RTM_GETRULE, 0);
  auto* h = m.putHeader<fib_rule_hdr>();
  h->family = static_cast<uint8_t>(family);
  std::vector<Rule> out;
  auto st = s.dump(
      m,
      [&](const nlmsghdr* nlh) -> Status {
        if (auto r = parseRule(nlh)) out.push_back(std::move(*r));
        return {};
      },
      [&] { out.clear(); });
  if (!st.ok()) return std::move(st).error().wrap("failed to list rules");
  return out;
}

}  // namespace plumb::netlink
