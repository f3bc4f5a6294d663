#include "netlink/vf.h"

#include <arpa/inet.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "base/names.h"
#include "netlink/device.h"

namespace plumb::netlink {

namespace fs = std::filesystem;

namespace {

std::string linkTarget(const fs::path& p) {
  std::error_code ec;
  auto t = fs::read_symlink(p, ec);
  return ec ? "" : t.filename().string();
}

std::optional<int> readInt(const fs::path& p) {
  std::ifstream in(p);
  int v = 0;
  if (!(in >> v)) return std::nullopt;
  return v;
}

fs::path pciDir(const std::string& sysfs, const std::string& pci) {
  return fs::path(sysfs) / "bus/pci/devices" / pci;
}

PciVf vfAt(const std::string& sysfs, int index, const std::string& pci) {
  PciVf vf;
  vf.index = index;
  vf.pci = pci;
  vf.driver = linkTarget(pciDir(sysfs, pci) / "driver");
  auto nets = netdevsOf(sysfs, pci);
  std::sort(nets.begin(), nets.end());
  if (!nets.empty()) vf.netdev = nets.front();
  return vf;
}

}  // namespace

bool userspaceDriver(const std::string& driver) {
  return driver == "vfio-pci" || driver == "uio_pci_generic" || driver == "igb_uio";
}

Result<SriovPf> sriovPf(const std::string& sysfs, const std::string& pf_ifname) {
  PLUMB_TRY(validateIfname(pf_ifname));
  std::error_code ec;
  if (!fs::exists(fs::path(sysfs) / "class/net" / pf_ifname, ec))
    return fail(Errc::kNotFound, "PF " + pf_ifname + " does not exist");
  SriovPf pf;
  pf.name = pf_ifname;
  pf.pci = pciAddressOf(sysfs, pf_ifname);
  if (pf.pci.empty())
    return fail(Errc::kInvalid, "PF " + pf_ifname + " is not a PCI device (no " + sysfs +
                                    "/class/net/" + pf_ifname + "/device)");
  auto dir = pciDir(sysfs, pf.pci);
  auto total = readInt(dir / "sriov_totalvfs");
  if (!total)
    return fail(Errc::kInvalid, "PF " + pf_ifname + " (" + pf.pci +
                                    ") has no SR-IOV capability (no sriov_totalvfs)");
  pf.total_vfs = *total;
  int num = readInt(dir / "sriov_numvfs").value_or(0);
  if (num <= 0)
    return fail(Errc::kNotFound, "PF " + pf_ifname + " has no VF enabled (sriov_numvfs is 0)");
  for (int i = 0; i < num; ++i) {
    std::string pci = linkTarget(dir / ("virtfn" + std::to_string(i)));
    if (pci.empty()) continue;  // being created or removed as we read
    pf.vfs.push_back(vfAt(sysfs, i, pci));
  }
  return pf;
}

Result<VfLocation> sriovVf(const std::string& sysfs, const std::string& pci_in) {
  PLUMB_TRY(validatePciAddress(pci_in));
  // sysfs names PCI functions in lowercase hex.
  std::string vf_pci = pci_in;
  std::transform(vf_pci.begin(), vf_pci.end(), vf_pci.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::error_code ec;
  auto dir = pciDir(sysfs, vf_pci);
  if (!fs::exists(dir, ec))
    return fail(Errc::kNotFound, "no PCI device " + vf_pci + " in " + sysfs + "/bus/pci/devices");
  VfLocation loc;
  loc.pf_pci = linkTarget(dir / "physfn");
  if (loc.pf_pci.empty())
    return fail(Errc::kInvalid, "PCI device " + vf_pci + " is not an SR-IOV VF (no physfn)");
  auto pf_dir = pciDir(sysfs, loc.pf_pci);
  std::optional<int> index;
  for (const auto& e : fs::directory_iterator(pf_dir, ec)) {
    std::string n = e.path().filename().string();
    if (n.rfind("virtfn", 0) != 0 || linkTarget(e.path()) != vf_pci) continue;
    try {
      index = std::stoi(n.substr(6));
    } catch (const std::exception&) {
      continue;
    }
  }
  if (!index)
    return fail(Errc::kInvalid, "VF " + vf_pci + " is not listed by its PF " + loc.pf_pci);
  auto pf_nets = netdevsOf(sysfs, loc.pf_pci);
  std::sort(pf_nets.begin(), pf_nets.end());
  if (pf_nets.empty())
    return fail(Errc::kNotFound,
                "the PF " + loc.pf_pci + " of VF " + vf_pci + " has no network device");
  loc.pf_name = pf_nets.front();
  loc.vf = vfAt(sysfs, *index, vf_pci);
  return loc;
}

namespace {

template <typename T>
void putVf(Message& m, uint16_t type, const T& v) {
  m.put(type, sizeof(v), &v);
}

}  // namespace

void buildSetVf(Message& m, int pf_index, int vf, const VfConfig& c) {
  auto* ifi = m.putHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = pf_index;
  nlattr* list = m.nestStart(IFLA_VFINFO_LIST | NLA_F_NESTED);
  nlattr* info = m.nestStart(IFLA_VF_INFO | NLA_F_NESTED);
  auto n = static_cast<uint32_t>(vf);
  if (c.mac) {
    ifla_vf_mac v{};
    v.vf = n;
    std::memcpy(v.mac, c.mac->data(), 6);
    putVf(m, IFLA_VF_MAC, v);
  }
  if (c.vlan) {
    if (c.vlan->proto == kVlanProto8021Q) {
      ifla_vf_vlan v{n, static_cast<uint32_t>(c.vlan->vlan), static_cast<uint32_t>(c.vlan->qos)};
      putVf(m, IFLA_VF_VLAN, v);
    } else {
      nlattr* vl = m.nestStart(IFLA_VF_VLAN_LIST | NLA_F_NESTED);
      ifla_vf_vlan_info v{};
      v.vf = n;
      v.vlan = static_cast<uint32_t>(c.vlan->vlan);
      v.qos = static_cast<uint32_t>(c.vlan->qos);
      v.vlan_proto = htons(c.vlan->proto);
      putVf(m, IFLA_VF_VLAN_INFO, v);
      m.nestEnd(vl);
    }
  }
  if (c.rate) {
    ifla_vf_rate v{n, c.rate->min_mbps, c.rate->max_mbps};
    putVf(m, IFLA_VF_RATE, v);
  }
  if (c.spoofchk) {
    ifla_vf_spoofchk v{n, *c.spoofchk ? 1U : 0U};
    putVf(m, IFLA_VF_SPOOFCHK, v);
  }
  if (c.link_state) {
    ifla_vf_link_state v{n, static_cast<uint32_t>(*c.link_state)};
    putVf(m, IFLA_VF_LINK_STATE, v);
  }
  if (c.trust) {
    ifla_vf_trust v{n, *c.trust ? 1U : 0U};
    putVf(m, IFLA_VF_TRUST, v);
  }
  m.nestEnd(info);
  m.nestEnd(list);
}

void buildGetVfs(Message& m, int pf_index) {
  auto* ifi = m.putHeader<ifinfomsg>();
  ifi->ifi_family = AF_UNSPEC;
  ifi->ifi_index = pf_index;
  m.putU32(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS);
}

namespace {

template <typename T>
const T* payloadAs(const nlattr* a) {
  if (mnl_attr_get_payload_len(a) < sizeof(T)) return nullptr;
  return static_cast<const T*>(mnl_attr_get_payload(a));
}

// A flag the driver reports as 0 or 1; ~0 when it does not support it.
std::optional<bool> flag(uint32_t v) {
  if (v > 1) return std::nullopt;
  return v == 1;
}

VfInfo parseVfInfo(const nlattr* nest) {
  VfInfo out;
  VfConfig& c = out.config;
  forEachNested(nest, [&](const nlattr* a) {
    switch (mnl_attr_get_type(a)) {
      case IFLA_VF_MAC:
        if (const auto* v = payloadAs<ifla_vf_mac>(a)) {
          out.vf = static_cast<int>(v->vf);
          std::array<uint8_t, 6> b{};
          std::memcpy(b.data(), v->mac, 6);
          c.mac = MacAddr(b);
        }
        break;
      case IFLA_VF_VLAN:
        if (const auto* v = payloadAs<ifla_vf_vlan>(a); v && !c.vlan)
          c.vlan = VfVlan{static_cast<int>(v->vlan), static_cast<int>(v->qos), kVlanProto8021Q};
        break;
      case IFLA_VF_VLAN_LIST:
        // The protocol is only here; the first entry is the VF's VLAN.
        forEachNested(a, [&](const nlattr* e) {
          const auto* v = payloadAs<ifla_vf_vlan_info>(e);
          if (mnl_attr_get_type(e) != IFLA_VF_VLAN_INFO || !v) return;
          c.vlan =
              VfVlan{static_cast<int>(v->vlan), static_cast<int>(v->qos), ntohs(v->vlan_proto)};
        });
        break;
      case IFLA_VF_RATE:
        if (const auto* v = payloadAs<ifla_vf_rate>(a))
          c.rate = VfRate{v->min_tx_rate, v->max_tx_rate};
        break;
      case IFLA_VF_SPOOFCHK:
        if (const auto* v = payloadAs<ifla_vf_spoofchk>(a)) c.spoofchk = flag(v->setting);
        break;
      case IFLA_VF_TRUST:
        if (const auto* v = payloadAs<ifla_vf_trust>(a)) c.trust = flag(v->setting);
        break;
      case IFLA_VF_LINK_STATE:
        if (const auto* v = payloadAs<ifla_vf_link_state>(a); v && v->link_state <= 2)
          c.link_state = static_cast<VfLinkState>(v->link_state);
        break;
      default:
        break;
    }
  });
  return out;
}

}  // namespace

Result<std::vector<VfInfo>> parseVfs(const nlmsghdr* nlh) {
  if (nlh->nlmsg_type != RTM_NEWLINK) return fail(Errc::kDecode, "not a link message");
  std::vector<VfInfo> out;
  forEachAttr(nlh, sizeof(ifinfomsg), [&](const nlattr* attr) {
    if (mnl_attr_get_type(attr) != IFLA_VFINFO_LIST) return;
    forEachNested(attr, [&](const nlattr* info) {
      if (mnl_attr_get_type(info) == IFLA_VF_INFO) out.push_back(parseVfInfo(info));
    });
  });
  return out;
}

Status setVf(NlSocket& s, int pf_index, int vf, const VfConfig& config) {
  Message m(RTM_SETLINK, 0);
  buildSetVf(m, pf_index, vf, config);
  return s.request(m);
}

Result<std::vector<VfInfo>> getVfs(NlSocket& s, int pf_index) {
  Message m(RTM_GETLINK, 0);
  buildGetVfs(m, pf_index);
  std::vector<VfInfo> out;
  // The socket peeks each reply's size first: a PF with hundreds of VFs answers in one
  // message of tens of kilobytes.
  PLUMB_TRY(s.request(m, [&](const nlmsghdr* nlh) -> Status {
    PLUMB_ASSIGN(out, parseVfs(nlh));
    return {};
  }));
  return out;
}

}  // namespace plumb::netlink
