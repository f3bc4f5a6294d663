#include "fake_kernel.h"

#include <linux/if.h>
#include <sys/socket.h>

#include <algorithm>
#include <sstream>

namespace plumb::core::testing {

FakeKernel::FakeKernel() {
  spaces_.emplace_back();  // the host
  nl::LinkInfo lo;
  lo.name = "lo";
  lo.mtu = 65536;
  lo.flags = IFF_UP;
  addLink(kHost, lo);
}

Status FakeKernel::change(const std::string& what) {
  if (++changes == fail_at)
    return fail(Errc::kKernel,
                "injected failure at change " + std::to_string(changes) + " (" + what + ")");
  return {};
}

Result<FakeKernel::Space*> FakeKernel::space(Ns ns) {
  if (ns < 0 || static_cast<size_t>(ns) >= spaces_.size() || !spaces_[ns].live)
    return fail(Errc::kInternal, "netns handle " + std::to_string(ns) + " is closed");
  return &spaces_[ns];
}

FakeKernel::Link* FakeKernel::find(Ns ns, const std::string& name) {
  auto s = space(ns);
  if (!s.ok()) return nullptr;
  for (auto& [i, l] : (*s)->links) {
    // As the kernel's name lookup, altnames included.
    if (l.info.name == name ||
        std::find(l.info.altnames.begin(), l.info.altnames.end(), name) != l.info.altnames.end())
      return &l;
  }
  return nullptr;
}

FakeKernel::Link* FakeKernel::find(Ns ns, int index) {
  auto s = space(ns);
  if (!s.ok()) return nullptr;
  auto it = (*s)->links.find(index);
  return it == (*s)->links.end() ? nullptr : &it->second;
}

int FakeKernel::addLink(Ns ns, nl::LinkInfo info) {
  info.index = info.name == "lo" ? 1 : next_index_++;
  if (!info.mtu) info.mtu = 1500;
  if (!info.mac && info.name != "lo") info.mac = MacAddr::fromName("fake:" + info.name);
  spaces_[ns].links[info.index].info = info;
  return info.index;
}

void FakeKernel::removeLink(Ns ns, int index) {
  Space& s = spaces_[ns];
  auto it = s.links.find(index);
  if (it == s.links.end()) return;
  Link l = it->second;
  s.links.erase(it);
  std::erase_if(s.routes, [&](const nl::Route& r) { return r.oif == index; });
  for (auto& [i, other] : s.links) {
    if (other.info.master == index) other.info.master = 0;
  }
  if (l.peer_ns >= 0 && find(l.peer_ns, l.peer)) removeLink(l.peer_ns, l.peer);
}

void FakeKernel::addNetns(const std::string& path) {
  Space s;
  s.path = path;
  spaces_.push_back(s);
  nl::LinkInfo lo;
  lo.name = "lo";
  lo.mtu = 65536;
  lo.flags = IFF_UP;
  addLink(static_cast<Ns>(spaces_.size() - 1), lo);
}

int FakeKernel::addDevice(const std::string& name, const MacAddr& mac, const std::string& pci) {
  nl::LinkInfo d;
  d.name = name;
  d.mac = mac;
  d.perm_mac = mac;
  d.flags = IFF_UP;
  int index = addLink(kHost, d);
  if (!pci.empty()) pci_[index] = pci;
  return index;
}

int FakeKernel::addVethPair(const std::string& name, const std::string& peer) {
  nl::LinkInfo a, b;
  a.name = name;
  a.kind = b.kind = "veth";
  a.flags = b.flags = IFF_UP;
  b.name = peer;
  int ia = addLink(kHost, a), ib = addLink(kHost, b);
  spaces_[kHost].links[ia].peer_ns = kHost;
  spaces_[kHost].links[ia].peer = ib;
  spaces_[kHost].links[ib].peer_ns = kHost;
  spaces_[kHost].links[ib].peer = ia;
  return ia;
}

void FakeKernel::setSysctl(Ns ns, const std::string& key, const std::string& value) {
  spaces_[ns].sysctls[key] = value;
}

std::string FakeKernel::snapshot() const {
  std::ostringstream out;
  for (size_t n = 0; n < spaces_.size(); ++n) {
    const Space& s = spaces_[n];
    if (!s.live) continue;
    out << "netns " << (n == 0 ? "host" : s.temporary ? "temporary" : s.path) << "\n";
    std::vector<const Link*> links;
    for (const auto& [i, l] : s.links) links.push_back(&l);
    std::sort(links.begin(), links.end(),
              [](const Link* a, const Link* b) { return a->info.name < b->info.name; });
    for (const Link* l : links) {
      const auto& i = l->info;
      std::string master;
      if (i.master) {
        auto it = s.links.find(i.master);
        master = it == s.links.end() ? "?" : it->second.info.name;
      }
      out << "  " << i.name << " kind=" << i.kind << " mtu=" << i.mtu
          << " mac=" << (i.mac ? i.mac->str() : "") << " up=" << ((i.flags & IFF_UP) != 0)
          << " promisc=" << ((i.flags & IFF_PROMISC) != 0) << " master=" << master
          << " alias=" << i.alias << " hairpin=" << l->hairpin << " macvlan=" << i.macvlan_mode;
      for (const auto& a : i.altnames) out << " altname=" << a;
      out << "\n";
      for (const auto& a : l->addresses) out << "    addr " << a.str() << "\n";
    }
    for (const auto& r : s.routes) out << "  route " << nl::describe(r) << "\n";
    for (const auto& [k, v] : s.sysctls) out << "  sysctl " << k << "=" << v << "\n";
  }
  for (const auto& r : rules_) out << "rule " << r << "\n";
  out << "table " << table_ << "\n";
  for (const auto& pf : pfs_) {
    for (size_t n = 0; n < pf.settings.size(); ++n) {
      const auto& c = pf.settings[n];
      out << "pf " << pf.name << " vf " << n << " mac=" << (c.mac ? c.mac->str() : "")
          << " vlan=" << (c.vlan ? c.vlan->vlan : -1) << "/" << (c.vlan ? c.vlan->qos : -1) << "/"
          << (c.vlan ? c.vlan->proto : 0) << " spoofchk=" << c.spoofchk.value_or(false)
          << " trust=" << c.trust.value_or(false)
          << " link=" << static_cast<int>(c.link_state.value_or(nl::VfLinkState::kAuto))
          << " rate=" << (c.rate ? c.rate->min_mbps : 0) << "-" << (c.rate ? c.rate->max_mbps : 0)
          << "\n";
    }
  }
  return out.str();
}

Result<Kernel::Ns> FakeKernel::openNetns(const std::string& path) {
  for (size_t n = 1; n < spaces_.size(); ++n) {
    if (spaces_[n].live && spaces_[n].path == path) return static_cast<Ns>(n);
  }
  return fail(Errc::kNoNetns, "failed to open netns " + path + ": No such file or directory");
}

Result<Kernel::Ns> FakeKernel::temporaryNetns() {
  PLUMB_TRY(change("create a temporary netns"));
  Space s;
  s.temporary = true;
  spaces_.push_back(s);
  Ns ns = static_cast<Ns>(spaces_.size() - 1);
  nl::LinkInfo lo;
  lo.name = "lo";
  lo.mtu = 65536;
  addLink(ns, lo);
  return ns;
}

void FakeKernel::closeNetns(Ns ns) {
  if (ns <= 0 || static_cast<size_t>(ns) >= spaces_.size() || !spaces_[ns].temporary) return;
  dies(ns);
}

void FakeKernel::removeNetns(const std::string& path) {
  for (size_t n = 1; n < spaces_.size(); ++n) {
    if (spaces_[n].live && spaces_[n].path == path) dies(static_cast<Ns>(n));
  }
}

Kernel::Ns FakeKernel::unlinkNetns(const std::string& path) {
  for (size_t n = 1; n < spaces_.size(); ++n) {
    if (spaces_[n].live && spaces_[n].path == path) {
      spaces_[n].path = "(unlinked)";
      return static_cast<Ns>(n);
    }
  }
  return -1;
}

void FakeKernel::dies(Ns ns) {
  // As the kernel does when a netns dies: virtual links die with it, devices go to the host.
  std::vector<int> indexes;
  for (const auto& [i, l] : spaces_[ns].links) indexes.push_back(i);
  for (int i : indexes) {
    Link* l = find(ns, i);
    if (!l || l->info.name == "lo") continue;
    if (l->info.kind.empty()) {
      Link moved = *l;
      spaces_[ns].links.erase(i);
      moved.info.flags &= ~static_cast<unsigned>(IFF_UP);
      moved.addresses.clear();  // the kernel drops them on the way
      if (find(kHost, moved.info.name)) moved.info.name = "dev" + std::to_string(i);
      spaces_[kHost].links[i] = moved;
    } else {
      removeLink(ns, i);
    }
  }
  spaces_[ns].live = false;
}

Result<nl::LinkInfo> FakeKernel::getLink(Ns ns, const std::string& name) {
  PLUMB_TRY(space(ns));
  if (Link* l = find(ns, name)) return l->info;
  return fail(Errc::kNotFound, "no link " + name);
}

Result<nl::LinkInfo> FakeKernel::getLink(Ns ns, int index) {
  PLUMB_TRY(space(ns));
  if (Link* l = find(ns, index)) return l->info;
  return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
}

Result<std::vector<nl::LinkInfo>> FakeKernel::listLinks(Ns ns) {
  PLUMB_ASSIGN(Space * s, space(ns));
  std::vector<nl::LinkInfo> out;
  for (const auto& [i, l] : s->links) out.push_back(l.info);
  return out;
}

Status FakeKernel::createVeth(Ns ns, const nl::VethSpec& spec, Ns peer_ns) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(space(peer_ns));
  PLUMB_TRY(change("create veth " + spec.name));
  if (find(ns, spec.name) || find(peer_ns, spec.peer_name))
    return fail(Errc::kExists, "a link named " + spec.name + " or " + spec.peer_name + " exists");
  nl::LinkInfo a, b;
  a.name = spec.name;
  b.name = spec.peer_name;
  a.kind = b.kind = "veth";
  a.mtu = b.mtu = spec.mtu;
  a.mac = spec.mac;
  b.mac = spec.peer_mac;
  int ia = addLink(ns, a), ib = addLink(peer_ns, b);
  spaces_[ns].links[ia].peer_ns = peer_ns;
  spaces_[ns].links[ia].peer = ib;
  spaces_[peer_ns].links[ib].peer_ns = ns;
  spaces_[peer_ns].links[ib].peer = ia;
  return {};
}

Status FakeKernel::createBridge(Ns ns, const nl::BridgeSpec& spec) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("create bridge " + spec.name));
  if (find(ns, spec.name)) return fail(Errc::kExists, "a link named " + spec.name + " exists");
  nl::LinkInfo b;
  b.name = spec.name;
  b.kind = "bridge";
  b.mtu = spec.mtu;
  b.mac = spec.mac;
  addLink(ns, b);
  return {};
}

Status FakeKernel::createMacvlan(Ns ns, const nl::MacvlanSpec& spec, Ns in_ns) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(space(in_ns));
  PLUMB_TRY(change("create macvlan " + spec.name));
  Link* parent = find(ns, spec.parent_index);
  if (!parent) return fail(Errc::kNotFound, "no parent link");
  if (find(in_ns, spec.name)) return fail(Errc::kExists, "a link named " + spec.name + " exists");
  nl::LinkInfo m;
  m.name = spec.name;
  m.kind = "macvlan";
  m.mtu = spec.mtu ? spec.mtu : parent->info.mtu;
  m.mac = spec.mac;
  m.macvlan_mode = static_cast<uint32_t>(spec.mode);
  addLink(in_ns, m);
  return {};
}

Status FakeKernel::changeLink(Ns ns, int index, const nl::LinkChange& c) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("change link " + std::to_string(index)));
  Link* l = find(ns, index);
  if (!l) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  if (c.name && *c.name != l->info.name && find(ns, *c.name))
    return fail(Errc::kExists, "a link named " + *c.name + " exists");  // its own altname too
  if (c.master && *c.master) {
    Link* m = find(ns, *c.master);
    if (!m || m->info.kind != "bridge") return fail(Errc::kInvalid, "master is not a bridge");
  }
  if (c.name) l->info.name = *c.name;
  if (c.mtu) l->info.mtu = *c.mtu;
  if (c.mac) l->info.mac = *c.mac;
  if (c.up) l->info.flags = *c.up ? l->info.flags | IFF_UP : l->info.flags & ~IFF_UP;
  if (c.promisc)
    l->info.flags = *c.promisc ? l->info.flags | IFF_PROMISC : l->info.flags & ~IFF_PROMISC;
  if (c.master) l->info.master = *c.master;
  if (c.alias) l->info.alias = *c.alias;
  return {};
}

Status FakeKernel::moveLink(Ns ns, int index, Ns to, const nl::LinkChange& c) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(space(to));
  PLUMB_TRY(change("move link " + std::to_string(index)));
  Link* l = find(ns, index);
  if (!l) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  // As the kernel: the move fails when its name is taken there, and a rename refused after
  // the move leaves it moved.
  // its name taken there, the new one is used at once when it is free.
  if (find(to, l->info.name) && (!c.name || find(to, *c.name)))
    return fail(Errc::kExists, "a link named " + l->info.name + " exists");
  for (const auto& alt : l->info.altnames) {
    if (find(to, alt)) return fail(Errc::kExists, "a link named " + alt + " exists");
  }
  ++moves;
  Link moved = *l;
  moved.addresses.clear();  // addresses and routes stay behind, as the kernel drops them
  moved.info.master = 0;
  moved.info.flags &= ~static_cast<unsigned>(IFF_UP);
  std::erase_if(spaces_[ns].routes, [&](const nl::Route& r) { return r.oif == index; });
  spaces_[ns].links.erase(index);
  spaces_[to].links[index] = moved;
  if (moved.peer_ns >= 0) {
    if (Link* peer = find(moved.peer_ns, moved.peer)) peer->peer_ns = to;
  }
  bool changed = c.name || c.mtu || c.mac || c.alias;
  if (!changed) return {};
  nl::LinkChange rest = c;
  rest.netns = nullptr;
  --changes;  // one request: counted once, above
  return changeLink(to, index, rest);
}

Status FakeKernel::setBridgePortHairpin(Ns ns, int index, bool on) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("hairpin " + std::to_string(index)));
  Link* l = find(ns, index);
  if (!l || !l->info.master) return fail(Errc::kInvalid, "not a bridge port");
  l->hairpin = on;
  return {};
}

Status FakeKernel::deleteLink(Ns ns, int index) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("delete link " + std::to_string(index)));
  if (!find(ns, index)) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  removeLink(ns, index);
  return {};
}

Status FakeKernel::addAddress(Ns ns, int index, const IpPrefix& prefix) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("add address " + prefix.str()));
  Link* l = find(ns, index);
  if (!l) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  for (const auto& a : l->addresses) {
    if (a == prefix) return fail(Errc::kExists, "address " + prefix.str() + " exists");
  }
  l->addresses.push_back(prefix);
  return {};
}

Result<std::vector<nl::AddrInfo>> FakeKernel::listAddresses(Ns ns, int family, int index) {
  PLUMB_ASSIGN(Space * s, space(ns));
  std::vector<nl::AddrInfo> out;
  for (const auto& [i, l] : s->links) {
    if (index && i != index) continue;
    for (const auto& a : l.addresses) {
      if (family == AF_UNSPEC || (family == AF_INET) == a.isV4()) out.push_back({i, a, 0, 0});
    }
  }
  return out;
}

Status FakeKernel::addRoute(Ns ns, const nl::Route& route, bool replace) {
  PLUMB_ASSIGN(Space * s, space(ns));
  PLUMB_TRY(change("add route " + nl::describe(route)));
  if (route.oif && !find(ns, route.oif)) return fail(Errc::kNotFound, "no such device");
  for (auto& r : s->routes) {
    if (r.dst == route.dst && r.table == route.table) {
      if (!replace) return fail(Errc::kExists, "route " + route.dst.str() + " exists");
      r = route;
      return {};
    }
  }
  s->routes.push_back(route);
  return {};
}

Result<std::vector<nl::Route>> FakeKernel::listRoutes(Ns ns, int family, uint32_t table) {
  PLUMB_ASSIGN(Space * s, space(ns));
  std::vector<nl::Route> out;
  for (const auto& r : s->routes) {
    if ((family == AF_INET) == r.dst.isV4() && (!table || r.table == table)) out.push_back(r);
  }
  return out;
}

Result<std::string> FakeKernel::readSysctl(Ns ns, const std::string& key) {
  PLUMB_ASSIGN(Space * s, space(ns));
  auto it = s->sysctls.find(key);
  if (it == s->sysctls.end()) return fail(Errc::kNotFound, "no sysctl " + key);
  return it->second + "\n";
}

Status FakeKernel::writeSysctl(Ns ns, const std::string& key, const std::string& value) {
  PLUMB_ASSIGN(Space * s, space(ns));
  PLUMB_TRY(change("sysctl " + key));
  s->sysctls[key] = value;
  return {};
}

Status FakeKernel::ensureBridgeRules(const nl::BridgeRules& rules) {
  PLUMB_TRY(change("rules of " + rules.bridge));
  table_ = true;
  rules_.insert("fwd:" + rules.bridge + (rules.internal ? ":internal" : ""));
  for (const auto& m : rules.masquerade) rules_.insert("masq:" + rules.owner + ":" + m.str());
  return {};
}

Status FakeKernel::revokeBridgeRules(const std::string& bridge) {
  PLUMB_TRY(change("revoke rules of " + bridge));
  std::erase_if(rules_, [&](const std::string& r) { return r.rfind("fwd:" + bridge, 0) == 0; });
  return {};
}

Status FakeKernel::tidyRules() {
  PLUMB_TRY(change("tidy rules"));
  if (rules_.empty()) table_ = false;
  return {};
}

Status FakeKernel::unmasquerade(const std::string& owner, const std::vector<IpPrefix>& subnets,
                                const std::function<Result<bool>()>& unused) {
  PLUMB_ASSIGN(bool gone, unused());
  if (!gone) return {};
  for (const auto& s : subnets) {
    PLUMB_TRY(change("unmasquerade " + s.str()));
    rules_.erase("masq:" + owner + ":" + s.str());
  }
  return {};
}

Result<nl::LinkInfo> FakeKernel::findDevice(const nl::DeviceRef& ref) {
  PLUMB_ASSIGN(auto links, listLinks(kHost));
  if (!ref.name.empty()) return getLink(kHost, ref.name);
  auto found = pickDevice(links, ref);
  if (!found) return fail(Errc::kNotFound, "no such device");
  return *found;
}

std::optional<nl::LinkInfo> FakeKernel::pickDevice(const std::vector<nl::LinkInfo>& links,
                                                   const nl::DeviceRef& ref) {
  for (const auto& l : links) {
    auto pci = pci_.find(l.index);
    if (!ref.pci.empty() && pci != pci_.end() && pci->second == ref.pci) return l;
    if (ref.mac && (l.perm_mac == ref.mac || l.mac == ref.mac)) return l;
  }
  return std::nullopt;
}

std::string FakeKernel::pciAddressOf(const std::string& ifname) {
  Link* l = find(kHost, ifname);
  auto it = l ? pci_.find(l->info.index) : pci_.end();
  return it == pci_.end() ? "" : it->second;
}

int FakeKernel::addSriovPf(const std::string& pf_name, const std::string& pf_pci,
                           const std::vector<FakeVf>& vfs, bool reports_vfs) {
  FakePf pf;
  pf.name = pf_name;
  pf.pci = pf_pci;
  pf.reports = reports_vfs;
  pf.vfs = vfs;
  pf.index = addDevice(pf_name, MacAddr::fromName("fake-pf:" + pf_name), pf_pci);
  for (size_t n = 0; n < vfs.size(); ++n) {
    int index = 0;
    if (!nl::userspaceDriver(vfs[n].driver)) {
      std::string name = pf_name + "v" + std::to_string(n);
      index = addDevice(name, MacAddr::fromName("fake-vf:" + name), vfs[n].pci);
      find(kHost, index)->info.altnames = {"enp" + std::to_string(n) + "s0f0v" + pf_name};
    }
    pf.vf_index.push_back(index);
    nl::VfConfig defaults;
    defaults.mac = MacAddr({0, 0, 0, 0, 0, 0});
    defaults.vlan = nl::VfVlan{};
    defaults.spoofchk = true;
    defaults.trust = false;
    defaults.link_state = nl::VfLinkState::kAuto;
    defaults.rate = nl::VfRate{};
    pf.settings.push_back(defaults);
  }
  pfs_.push_back(pf);
  return pf.index;
}

std::optional<std::string> FakeKernel::nameOf(int index) const {
  for (const auto& s : spaces_) {
    if (!s.live) continue;
    auto it = s.links.find(index);
    if (it != s.links.end()) return it->second.info.name;
  }
  return std::nullopt;
}

Status FakeKernel::addAltnames(Ns ns, int index, const std::vector<std::string>& names) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("add altnames of " + std::to_string(index)));
  Link* l = find(ns, index);
  if (!l) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  for (const auto& n : names) {
    if (find(ns, n)) return fail(Errc::kExists, "a link named " + n + " exists");
  }
  for (const auto& n : names) l->info.altnames.push_back(n);
  return {};
}

Status FakeKernel::deleteAltnames(Ns ns, int index, const std::vector<std::string>& names) {
  PLUMB_TRY(space(ns));
  PLUMB_TRY(change("delete altnames of " + std::to_string(index)));
  Link* l = find(ns, index);
  if (!l) return fail(Errc::kNotFound, "no link with index " + std::to_string(index));
  for (const auto& n : names) {
    if (std::erase(l->info.altnames, n) == 0)
      return fail(Errc::kNotFound, "link has no altname " + n);
  }
  return {};
}

Result<nl::SriovPf> FakeKernel::sriovPf(const std::string& pf_ifname) {
  for (const auto& pf : pfs_) {
    if (pf.name != pf_ifname) continue;
    nl::SriovPf out{pf.name, pf.pci, static_cast<int>(pf.vfs.size()), {}};
    for (size_t n = 0; n < pf.vfs.size(); ++n) {
      nl::PciVf vf{static_cast<int>(n), pf.vfs[n].pci, pf.vfs[n].driver, ""};
      // sysfs lists a netdev only while it is in the host's namespace.
      if (pf.vf_index[n] && find(kHost, pf.vf_index[n])) vf.netdev = *nameOf(pf.vf_index[n]);
      out.vfs.push_back(vf);
    }
    return out;
  }
  if (find(kHost, pf_ifname))
    return fail(Errc::kInvalid, "PF " + pf_ifname + " has no SR-IOV capability");
  return fail(Errc::kNotFound, "PF " + pf_ifname + " does not exist");
}

Result<nl::VfLocation> FakeKernel::sriovVf(const std::string& vf_pci) {
  for (const auto& pf : pfs_) {
    for (size_t n = 0; n < pf.vfs.size(); ++n) {
      if (pf.vfs[n].pci != vf_pci) continue;
      PLUMB_ASSIGN(auto whole, sriovPf(pf.name));
      return nl::VfLocation{whole.vfs[n], pf.pci, pf.name};
    }
    if (pf.pci == vf_pci)
      return fail(Errc::kInvalid, "PCI device " + vf_pci + " is not an SR-IOV VF (no physfn)");
  }
  return fail(Errc::kNotFound, "no PCI device " + vf_pci);
}

Result<std::vector<nl::VfInfo>> FakeKernel::vfSettings(int pf_index) {
  for (const auto& pf : pfs_) {
    if (pf.index != pf_index) continue;
    std::vector<nl::VfInfo> out;
    if (!pf.reports) return out;
    for (size_t n = 0; n < pf.settings.size(); ++n)
      out.push_back({static_cast<int>(n), pf.settings[n]});
    return out;
  }
  return std::vector<nl::VfInfo>{};
}

Status FakeKernel::setVf(int pf_index, int vf, const nl::VfConfig& c) {
  FakePf* pf = nullptr;
  for (auto& p : pfs_) pf = p.index == pf_index ? &p : pf;
  std::string what;
  auto add = [&](const std::string& name, const std::string& v) {
    what += " " + name + "=" + v;
    return refused_vf_settings.count(name) > 0;
  };
  bool refused = false;
  if (c.mac) refused |= add("mac", c.mac->str());
  if (c.vlan)
    refused |= add("vlan", std::to_string(c.vlan->vlan) + "/" + std::to_string(c.vlan->qos) + "/" +
                               std::to_string(c.vlan->proto));
  if (c.spoofchk) refused |= add("spoofchk", std::to_string(*c.spoofchk));
  if (c.trust) refused |= add("trust", std::to_string(*c.trust));
  if (c.link_state) refused |= add("link_state", std::to_string(static_cast<int>(*c.link_state)));
  if (c.rate)
    refused |=
        add("rate", std::to_string(c.rate->min_mbps) + "-" + std::to_string(c.rate->max_mbps));
  std::string call = (pf ? pf->name : "?") + " vf " + std::to_string(vf) + what;
  PLUMB_TRY(change("set " + call));
  vf_calls.push_back(call);
  if (!pf || !pf->reports || refused)
    return Error{Errc::kUnsupported, EOPNOTSUPP, "Operation not supported"};
  if (vf < 0 || static_cast<size_t>(vf) >= pf->settings.size())
    return fail(Errc::kInvalid, "no VF " + std::to_string(vf));
  auto& s = pf->settings[static_cast<size_t>(vf)];
  if (c.mac) s.mac = c.mac;
  if (c.vlan) s.vlan = c.vlan;
  if (c.spoofchk) s.spoofchk = c.spoofchk;
  if (c.trust) s.trust = c.trust;
  if (c.link_state) s.link_state = c.link_state;
  if (c.rate) s.rate = c.rate;
  return {};
}

void FakeKernel::announce(Ns, int ifindex, const MacAddr& mac, const std::vector<IpAddr>& addrs,
                          int port_index) {
  for (const auto& a : addrs) {
    announced.push_back(
        a.str() + " is at " + mac.str() + " on " + std::to_string(ifindex) +
        (port_index ? " once port " + std::to_string(port_index) + " forwards" : ""));
  }
}

}  // namespace plumb::core::testing
