#include "netlink/addr.h"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

namespace plumb::netlink {
namespace {

void putIfaddr(Message& m, int index, const IpPrefix& prefix) {
  auto* ifa = m.putHeader<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(prefix.addr().family());
  ifa->ifa_prefixlen = static_cast<uint8_t>(prefix.len());
  ifa->ifa_index = static_cast<uint32_t>(index);
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  m.put(IFA_LOCAL, prefix.addr().size(), prefix.addr().data());
  m.put(IFA_ADDRESS, prefix.addr().size(), prefix.addr().data());
}

}  // namespace

void buildAddAddress(Message& m, int index, const IpPrefix& prefix, const AddrOptions& opts) {
  putIfaddr(m, index, prefix);
  if (prefix.isV4() && prefix.len() < 31) {
    IpAddr brd = prefix.last();
    m.put(IFA_BROADCAST, brd.size(), brd.data());
  }
  if (opts.nodad && !prefix.isV4()) m.putU32(IFA_FLAGS, IFA_F_NODAD);
}

Status addAddress(NlSocket& s, int index, const IpPrefix& prefix, const AddrOptions& opts) {
  Message m(RTM_NEWADDR, NLM_F_CREATE | (opts.replace ? NLM_F_REPLACE : NLM_F_EXCL));
  buildAddAddress(m, index, prefix, opts);
  auto st = s.request(m);
  if (!st.ok()) return std::move(st).error().wrap("failed to add address " + prefix.str());
  return {};
}

Status deleteAddress(NlSocket& s, int index, const IpPrefix& prefix) {
  Message m(RTM_DELADDR, 0);
  putIfaddr(m, index, prefix);
  auto st = s.request(m);
  if (!st.ok()) {
    if (st.error().sys_errno == EADDRNOTAVAIL) {
      return fail(Errc::kNotFound,
                  "address " + prefix.str() + " is not on link " + std::to_string(index));
    }
    return std::move(st).error().wrap("failed to delete address " + prefix.str());
  }
  return {};
}

std::optional<AddrInfo> parseAddr(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWADDR) return std::nullopt;
  const auto* a = familyHeader<ifaddrmsg>(nlh);
  if (!a || (a->ifa_family != AF_INET && a->ifa_family != AF_INET6)) return std::nullopt;
  AddrInfo info;
  info.index = static_cast<int>(a->ifa_index);
  info.flags = a->ifa_flags;
  info.scope = a->ifa_scope;
  const void* local = nullptr;
  const void* address = nullptr;
  forEachAttr(nlh, sizeof(*a), [&](const nlattr* attr) {
    size_t want = a->ifa_family == AF_INET6 ? 16 : 4;
    switch (mnl_attr_get_type(attr)) {
      case IFA_LOCAL:
        if (mnl_attr_get_payload_len(attr) == want) local = mnl_attr_get_payload(attr);
        break;
      case IFA_ADDRESS:
        if (mnl_attr_get_payload_len(attr) == want) address = mnl_attr_get_payload(attr);
        break;
      case IFA_FLAGS:
        if (mnl_attr_validate(attr, MNL_TYPE_U32) == 0) info.flags = mnl_attr_get_u32(attr);
        break;
      default:
        break;
    }
  });
  const void* bytes = local ? local : address;
  if (!bytes) return std::nullopt;
  auto addr = IpAddr::fromBytes(a->ifa_family, bytes);
  if (a->ifa_prefixlen > addr.bits()) return std::nullopt;
  info.prefix = IpPrefix(addr, a->ifa_prefixlen);
  return info;
}

Result<std::vector<AddrInfo>> listAddresses(NlSocket& s, int family, int index) {
  Message m(RTM_GETADDR, 0);
  auto* ifa = m.putHeader<ifaddrmsg>();
  ifa->ifa_family = static_cast<uint8_t>(family);
  ifa->ifa_index = static_cast<uint32_t>(index);  // filtered by the kernel (strict checking)
  std::vector<AddrInfo> out;
  auto st = s.dump(
      m,
      [&](const nlmsghdr* nlh) -> Status {
        auto info = parseAddr(nlh);
        if (!info || (index != 0 && info->index != index)) return {};
        out.push_back(*info);
        return {};
      },
      [&] { out.clear(); });
  if (!st.ok()) return std::move(st).error().wrap("failed to list addresses");
  return out;
}

}  // namespace plumb::netlink
