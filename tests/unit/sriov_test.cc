// SR-IOV: the PF-side messages against golden bytes written from the kernel's struct layouts,
// the VF info parser on a 256-VF reply, the store's VF claims under concurrency, and the
// engine's SR-IOV paths on the recording fake kernel (refusals, the netns dying first, a late
// DEL after a takeover, the order settings are set and restored).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "fake_kernel.h"
#include "netlink/link.h"
#include "netlink/vf.h"
#include "plugin/core/engine.h"
#include "plugin/core/modes/mode.h"
#include "plugin/core/vf_claims.h"
#include "store_dump.h"
#include "test_dir.h"

namespace plumb {
namespace {

std::vector<uint8_t> bytes(const netlink::Message& m) { return {m.data(), m.data() + m.size()}; }

// Little-endian words, as the kernel's structs lay them out on this machine.
struct Bytes {
  std::vector<uint8_t> b;
  Bytes& u16(uint16_t v) {
    b.push_back(static_cast<uint8_t>(v));
    b.push_back(static_cast<uint8_t>(v >> 8));
    return *this;
  }
  Bytes& u32(uint32_t v) {
    return u16(static_cast<uint16_t>(v)).u16(static_cast<uint16_t>(v >> 16));
  }
  Bytes& raw(std::initializer_list<uint8_t> v) {
    b.insert(b.end(), v);
    return *this;
  }
  Bytes& zeros(size_t n) {
    b.insert(b.end(), n, 0);
    return *this;
  }
  // nlmsghdr (no flags: the socket adds them) and ifinfomsg for index.
  Bytes& header(uint32_t len, uint16_t type, int index) {
    return u32(len)
        .u16(type)
        .u16(0)
        .u32(0)
        .u32(0)
        .raw({0, 0})
        .u16(0)
        .u32(static_cast<uint32_t>(index))
        .u32(0)
        .u32(0);
  }
  // IFLA_VFINFO_LIST { IFLA_VF_INFO { ... } }, both flagged nested, around len bytes.
  Bytes& vfNests(uint16_t inner_len) {
    return u16(static_cast<uint16_t>(inner_len + 8))
        .u16(IFLA_VFINFO_LIST | NLA_F_NESTED)
        .u16(static_cast<uint16_t>(inner_len + 4))
        .u16(IFLA_VF_INFO | NLA_F_NESTED);
  }
};

netlink::VfConfig one(auto member, auto value) {
  netlink::VfConfig c;
  c.*member = value;
  return c;
}

TEST(VfMessages, EachSettingMatchesGolden) {
  using netlink::VfConfig;
  struct Case {
    std::string name;
    VfConfig config;
    std::vector<uint8_t> attr;  // the setting's attribute inside IFLA_VF_INFO
  };
  const std::vector<Case> cases = {
      {"mac", one(&VfConfig::mac, *MacAddr::parse("02:aa:bb:cc:dd:ee")),
       Bytes()
           .u16(40)
           .u16(IFLA_VF_MAC)
           .u32(3)
           .raw({0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee})
           .zeros(26)
           .b},
      {"vlan 802.1Q", one(&VfConfig::vlan, netlink::VfVlan{100, 5, netlink::kVlanProto8021Q}),
       Bytes().u16(16).u16(IFLA_VF_VLAN).u32(3).u32(100).u32(5).b},
      // 802.1ad only goes in the list form, with the protocol in network order.
      {"vlan 802.1ad", one(&VfConfig::vlan, netlink::VfVlan{100, 5, netlink::kVlanProto8021AD}),
       Bytes()
           .u16(24)
           .u16(IFLA_VF_VLAN_LIST | NLA_F_NESTED)
           .u16(20)
           .u16(IFLA_VF_VLAN_INFO)
           .u32(3)
           .u32(100)
           .u32(5)
           .raw({0x88, 0xa8})
           .zeros(2)
           .b},
      {"rate", one(&VfConfig::rate, netlink::VfRate{10, 1000}),
       Bytes().u16(16).u16(IFLA_VF_RATE).u32(3).u32(10).u32(1000).b},
      {"spoofchk", one(&VfConfig::spoofchk, false),
       Bytes().u16(12).u16(IFLA_VF_SPOOFCHK).u32(3).u32(0).b},
      {"trust", one(&VfConfig::trust, true), Bytes().u16(12).u16(IFLA_VF_TRUST).u32(3).u32(1).b},
      {"link_state", one(&VfConfig::link_state, netlink::VfLinkState::kDisable),
       Bytes().u16(12).u16(IFLA_VF_LINK_STATE).u32(3).u32(2).b},
  };
  for (const auto& c : cases) {
    SCOPED_TRACE(c.name);
    netlink::Message m(RTM_SETLINK, 0);
    netlink::buildSetVf(m, 7, 3, c.config);
    auto inner = static_cast<uint16_t>(c.attr.size());
    Bytes golden;
    golden.header(32 + 8 + inner, RTM_SETLINK, 7).vfNests(inner);
    golden.b.insert(golden.b.end(), c.attr.begin(), c.attr.end());
    EXPECT_EQ(bytes(m), golden.b);
    // Read back as the kernel would report it.
    std::vector<uint8_t> reply = bytes(m);
    reinterpret_cast<nlmsghdr*>(reply.data())->nlmsg_type = RTM_NEWLINK;
    auto vfs = netlink::parseVfs(reinterpret_cast<const nlmsghdr*>(reply.data()));
    ASSERT_TRUE(vfs.ok());
    ASSERT_EQ(vfs->size(), 1u);
    if (c.name != "mac") continue;  // only IFLA_VF_MAC carries the VF's number for the parser
    EXPECT_EQ((*vfs)[0].vf, 3);
    EXPECT_EQ((*vfs)[0].config, c.config);
  }
}

TEST(VfMessages, GetAsksForVfInfoWithoutStats) {
  netlink::Message m(RTM_GETLINK, 0);
  netlink::buildGetVfs(m, 7);
  auto golden = Bytes()
                    .header(40, RTM_GETLINK, 7)
                    .u16(8)
                    .u16(IFLA_EXT_MASK)
                    .u32(RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS)
                    .b;
  EXPECT_EQ(bytes(m), golden);
}

TEST(VfMessages, AltnamesMatchGolden) {
  netlink::Message m(RTM_NEWLINKPROP, 0);
  netlink::buildAltnames(m, 5, {"enp3s2f0"});
  auto golden = Bytes()
                    .header(52, RTM_NEWLINKPROP, 5)
                    .u16(20)
                    .u16(IFLA_PROP_LIST | NLA_F_NESTED)
                    .u16(13)
                    .u16(IFLA_ALT_IFNAME)
                    .raw({'e', 'n', 'p', '3', 's', '2', 'f', '0', 0})
                    .zeros(3)
                    .b;
  EXPECT_EQ(bytes(m), golden);
}

// A PF's reply with 256 VFs: tens of kilobytes in one message, every VF's settings read.
TEST(VfMessages, ParsesA256VfReply) {
  std::vector<uint8_t> buf(256 * 1024);
  nlmsghdr* nlh = mnl_nlmsg_put_header(buf.data());
  nlh->nlmsg_type = RTM_NEWLINK;
  auto* ifi = static_cast<ifinfomsg*>(mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg)));
  ifi->ifi_index = 7;
  mnl_attr_put_strz(nlh, IFLA_IFNAME, "pf0");
  mnl_attr_put_u32(nlh, IFLA_NUM_VF, 256);
  nlattr* list = mnl_attr_nest_start(nlh, IFLA_VFINFO_LIST);
  for (uint32_t n = 0; n < 256; ++n) {
    nlattr* info = mnl_attr_nest_start(nlh, IFLA_VF_INFO);
    ifla_vf_mac mac{};
    mac.vf = n;
    mac.mac[0] = 0x02;
    mac.mac[5] = static_cast<uint8_t>(n);
    mnl_attr_put(nlh, IFLA_VF_MAC, sizeof(mac), &mac);
    ifla_vf_vlan vlan{n, n % 4095, n % 8};
    mnl_attr_put(nlh, IFLA_VF_VLAN, sizeof(vlan), &vlan);
    nlattr* vl = mnl_attr_nest_start(nlh, IFLA_VF_VLAN_LIST);
    ifla_vf_vlan_info vi{};
    vi.vf = n;
    vi.vlan = n % 4095;
    vi.qos = n % 8;
    vi.vlan_proto = htons(n % 2 ? 0x88a8 : 0x8100);
    mnl_attr_put(nlh, IFLA_VF_VLAN_INFO, sizeof(vi), &vi);
    mnl_attr_nest_end(nlh, vl);
    ifla_vf_rate rate{n, n, 10 * n};
    mnl_attr_put(nlh, IFLA_VF_RATE, sizeof(rate), &rate);
    ifla_vf_spoofchk spoof{n, n % 2};
    mnl_attr_put(nlh, IFLA_VF_SPOOFCHK, sizeof(spoof), &spoof);
    ifla_vf_link_state ls{n, n % 3};
    mnl_attr_put(nlh, IFLA_VF_LINK_STATE, sizeof(ls), &ls);
    ifla_vf_trust trust{n, n == 255 ? ~0U : 1U};  // ~0: the driver does not support it
    mnl_attr_put(nlh, IFLA_VF_TRUST, sizeof(trust), &trust);
    mnl_attr_nest_end(nlh, info);
  }
  mnl_attr_nest_end(nlh, list);
  ASSERT_GT(nlh->nlmsg_len, 32u * 1024u) << "as big as a real 256-VF PF's reply";
  auto vfs = netlink::parseVfs(nlh);
  ASSERT_TRUE(vfs.ok());
  ASSERT_EQ(vfs->size(), 256u);
  for (uint32_t n = 0; n < 256; ++n) {
    const auto& v = (*vfs)[n];
    ASSERT_EQ(v.vf, static_cast<int>(n));
    EXPECT_EQ(v.config.mac->data()[5], n);
    EXPECT_EQ(v.config.vlan->vlan, static_cast<int>(n % 4095));
    EXPECT_EQ(v.config.vlan->qos, static_cast<int>(n % 8));
    EXPECT_EQ(v.config.vlan->proto, n % 2 ? netlink::kVlanProto8021AD : netlink::kVlanProto8021Q);
    EXPECT_EQ(v.config.rate->max_mbps, 10 * n);
    EXPECT_EQ(*v.config.spoofchk, n % 2 == 1);
    EXPECT_EQ(static_cast<uint32_t>(*v.config.link_state), n % 3);
    EXPECT_EQ(v.config.trust.has_value(), n != 255);
  }
}

// sysfs as the kernel lays it out, in a temp dir: a PF with two VFs, one under vfio-pci.
TEST(VfSysfs, ReadsAPfsVfsAndAVfsPf) {
  namespace fs = std::filesystem;
  testing::TempDir dir;
  std::string sys = dir.path();
  auto pci = [&](const std::string& bdf) { return sys + "/bus/pci/devices/" + bdf; };
  auto dev = [&](const std::string& ifname, const std::string& bdf) {
    fs::create_directories(pci(bdf) + (ifname.empty() ? "" : "/net/" + ifname));
    if (ifname.empty()) return;
    fs::create_directories(sys + "/class/net/" + ifname);
    fs::create_symlink("../../../bus/pci/devices/" + bdf, sys + "/class/net/" + ifname + "/device");
  };
  dev("pf0", "0000:3b:00.0");
  std::ofstream(pci("0000:3b:00.0") + "/sriov_totalvfs") << "8\n";
  std::ofstream(pci("0000:3b:00.0") + "/sriov_numvfs") << "2\n";
  dev("pf0v0", "0000:3b:02.0");
  dev("", "0000:3b:02.1");
  for (int n = 0; n < 2; ++n) {
    std::string vf = "0000:3b:02." + std::to_string(n);
    fs::create_symlink("../" + vf, pci("0000:3b:00.0") + "/virtfn" + std::to_string(n));
    fs::create_symlink("../0000:3b:00.0", pci(vf) + "/physfn");
    fs::create_symlink(n == 0 ? "../../drivers/iavf" : "../../drivers/vfio-pci",
                       pci(vf) + "/driver");
  }
  auto pf = netlink::sriovPf(sys, "pf0");
  ASSERT_TRUE(pf.ok()) << pf.error().message;
  EXPECT_EQ(pf->pci, "0000:3b:00.0");
  EXPECT_EQ(pf->total_vfs, 8);
  ASSERT_EQ(pf->vfs.size(), 2u);
  EXPECT_EQ(pf->vfs[0].netdev, "pf0v0");
  EXPECT_EQ(pf->vfs[0].driver, "iavf");
  EXPECT_EQ(pf->vfs[1].netdev, "");
  EXPECT_TRUE(netlink::userspaceDriver(pf->vfs[1].driver));
  auto vf = netlink::sriovVf(sys, "0000:3B:02.1");  // as a user may type it: sysfs is lowercase
  ASSERT_TRUE(vf.ok()) << vf.error().message;
  EXPECT_EQ(vf->vf.pci, "0000:3b:02.1");
  EXPECT_EQ(vf->vf.index, 1);
  EXPECT_EQ(vf->pf_name, "pf0");
  auto not_vf = netlink::sriovVf(sys, "0000:3b:00.0");
  ASSERT_FALSE(not_vf.ok());
  EXPECT_EQ(not_vf.error().message, "PCI device 0000:3b:00.0 is not an SR-IOV VF (no physfn)");
  EXPECT_FALSE(netlink::sriovVf(sys, "../../etc").ok());
  auto no_sriov = netlink::sriovPf(sys, "pf0v0");
  ASSERT_FALSE(no_sriov.ok());
  EXPECT_NE(no_sriov.error().message.find("has no SR-IOV capability"), std::string::npos);
}

using core::VfClaim;
using core::VfClaims;

TEST(VfClaims, ConcurrentClaimsOfOnePfNeverShareAVf) {
  testing::TempDir dir;
  ASSERT_TRUE(core::Store::open(dir.path()).ok());
  std::vector<std::pair<int, std::string>> vfs;
  for (int n = 0; n < 4; ++n) vfs.emplace_back(n, "0000:03:02." + std::to_string(n));
  std::mutex mu;
  std::vector<std::string> got;
  std::atomic<int> exhausted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      auto store = core::Store::open(dir.path());  // a connection each, as processes have
      ASSERT_TRUE(store.ok());
      VfClaim want;
      want.pf = "pf0";
      want.owner = {"net", "c" + std::to_string(t), "net1"};
      auto c = VfClaims(**store).claimFree(want, vfs);
      if (!c.ok()) {
        EXPECT_EQ(c.error().code, Errc::kExhausted) << c.error().message;
        ++exhausted;
        return;
      }
      std::lock_guard lock(mu);
      got.push_back(c->pci);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()).size(), 4u);
  EXPECT_EQ(got.size(), 4u);
  EXPECT_EQ(exhausted, 4);
}

TEST(VfClaims, ATakeoverKeepsTheOriginalAndALateReleaseChangesNothing) {
  testing::TempDir dir;
  auto store = std::move(core::Store::open(dir.path())).value();
  VfClaims claims(*store);
  VfClaim a;
  a.pci = "0000:03:02.1";
  a.pf = "pf0";
  a.vf = 1;
  a.owner = {"net", "old", "net1"};
  auto held = claims.claim(a);
  ASSERT_TRUE(held.ok());
  ASSERT_TRUE(claims.saveOriginal(held->id, "{\"vf\":{}}").ok());
  VfClaim b = a;
  b.owner = {"net", "new", "net1"};
  auto refused = claims.claim(b);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error().message, "VF 0000:03:02.1 is held by attachment net/old/net1");
  auto taken = claims.claim(b, held->id);
  ASSERT_TRUE(taken.ok());
  EXPECT_NE(taken->id, held->id) << "a new generation";
  EXPECT_EQ(taken->original, "{\"vf\":{}}") << "the state from before the first holder";
  ASSERT_TRUE(claims.release(held->id).ok());  // the old holder's late DEL
  auto still = claims.find(a.pci);
  ASSERT_TRUE(still.ok() && *still);
  EXPECT_EQ((*still)->owner.container_id, "new");
}

}  // namespace

namespace core {
namespace {

using testing::FakeKernel;

constexpr const char* kNetns = "/run/netns/ctr1";

struct SriovWorld {
  plumb::testing::TempDir dir;
  std::unique_ptr<Store> store = std::move(Store::open(dir.path())).value();
  FakeKernel kernel;
  SriovWorld() {
    kernel.addNetns(kNetns);
    kernel.addSriovPf(
        "pf0", "0000:03:00.0",
        {{"0000:03:02.0"}, {"0000:03:02.1"}, {"0000:03:02.2"}, {"0000:03:02.3", "vfio-pci"}});
  }
  std::string snapshot() {
    return kernel.snapshot() +
           plumb::testing::storeDumpOf(dir.path() + "/plumb.db", {"sqlite_sequence"});
  }
};

AttachRequest vfRequest(const std::string& cid, const std::string& netns, SriovPlan plan) {
  AttachRequest r;
  r.key = {"net1", cid, "net1"};
  r.netns = netns;
  r.plan = std::move(plan);
  r.frontend = "test";
  r.addresses = {{*IpPrefix::parse("198.18.90.5/24"), std::nullopt}};
  return r;
}

SriovPlan byPci(const std::string& pci) {
  SriovPlan p;
  p.pci_address = pci;
  return p;
}

// The kernel hands a physical device back to the host when its netns dies, as devN.
void netnsDies(FakeKernel& k, const std::string& ifname, const std::string& as) {
  auto ns = k.openNetns(kNetns);
  ASSERT_TRUE(ns.ok());
  auto moved = k.getLink(*ns, ifname);
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE(k.moveLink(*ns, moved->index, Kernel::kHost).ok());
  nl::LinkChange c;
  c.name = as;
  ASSERT_TRUE(k.changeLink(Kernel::kHost, moved->index, c).ok());
}

TEST(SriovEngine, SettingsAreSetInOrderAndRestoredInReverse) {
  SriovWorld w;
  SriovPlan p = byPci("0000:03:02.1");
  p.settings.vlan = 10;
  p.settings.trust = true;
  p.settings.link_state = "disable";
  AttachRequest req = vfRequest("c1", kNetns, p);
  req.mac = *MacAddr::parse("02:00:00:00:0c:01");
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  ASSERT_TRUE(engine.attach(req).ok());
  EXPECT_EQ(w.kernel.moves, 1) << "one move, renamed on arrival: the kernel's floor";
  ASSERT_TRUE(engine.detach({req.key, req.netns, {}, {}}).ok());
  EXPECT_EQ(w.kernel.moves, 2);
  EXPECT_EQ(w.kernel.vf_calls, (std::vector<std::string>{
                                   "pf0 vf 1 mac=02:00:00:00:0c:01", "pf0 vf 1 vlan=10/0/33024",
                                   "pf0 vf 1 trust=1", "pf0 vf 1 link_state=2",
                                   // DEL: the reverse order, to what the PF reported before.
                                   "pf0 vf 1 link_state=0", "pf0 vf 1 trust=0",
                                   "pf0 vf 1 vlan=0/0/33024", "pf0 vf 1 mac=00:00:00:00:00:00"}));
  EXPECT_EQ(w.snapshot(), before);
}

TEST(SriovEngine, ANameTakenInTheContainerGoesThroughATemporaryNetns) {
  SriovWorld w;
  auto ns = w.kernel.openNetns(kNetns);
  ASSERT_TRUE(ns.ok());
  ASSERT_TRUE(w.kernel.createVeth(*ns, {"pf0v1", "other", nullptr, 0, {}, {}}, *ns).ok());
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  AttachRequest req = vfRequest("c1", kNetns, byPci("0000:03:02.1"));
  ASSERT_TRUE(engine.attach(req).ok());
  EXPECT_EQ(w.kernel.moves, 2) << "into a temporary netns, renamed there, then on";
  EXPECT_TRUE(w.kernel.getLink(*ns, "net1").ok());
  EXPECT_TRUE(w.kernel.getLink(*ns, "pf0v1").ok()) << "the container's own link untouched";
  ASSERT_TRUE(engine.detach({req.key, req.netns, {}, {}}).ok());
  EXPECT_EQ(w.snapshot(), before);
}

TEST(SriovEngine, ASettingTheDriverRefusesIsNamedAndUndoesTheRest) {
  SriovWorld w;
  w.kernel.refused_vf_settings = {"trust"};
  SriovPlan p = byPci("0000:03:02.1");
  p.settings.vlan = 10;
  p.settings.trust = true;
  std::string before = w.snapshot();
  auto r = Engine(*w.store, w.kernel).attach(vfRequest("c1", kNetns, p));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().message,
            "failed to attach net1 of container c1: PF pf0 refused trust on for VF 1 "
            "(0000:03:02.1): Operation not supported");
  EXPECT_EQ(w.snapshot(), before) << "the VLAN set before it is put back, the claim gone";
}

TEST(SriovEngine, DelAfterTheNetnsDiedFindsTheVfByPciAndRestoresIt) {
  SriovWorld w;
  SriovPlan p = byPci("0000:03:02.0");
  p.settings.vlan = 10;
  AttachRequest req = vfRequest("c1", kNetns, p);
  req.mtu = 9000;
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  ASSERT_TRUE(engine.attach(req).ok());
  netnsDies(w.kernel, "net1", "dev7");
  if (HasFatalFailure()) return;
  ASSERT_TRUE(engine.detach({req.key, "/run/netns/gone", {}, {}}).ok());
  EXPECT_EQ(w.snapshot(), before) << "name, MTU, MAC, altname and VLAN as before";
}

TEST(SriovEngine, ADelWhileTheVfIsStillInAnUnreachableNetnsIsRetried) {
  SriovWorld w;
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  AttachRequest req = vfRequest("c1", kNetns, byPci("0000:03:02.0"));
  ASSERT_TRUE(engine.attach(req).ok());
  Kernel::Ns lingering = w.kernel.unlinkNetns(kNetns);  // its path gone, the netns not yet
  auto early = engine.detach({req.key, kNetns, {}, {}});
  ASSERT_FALSE(early.ok()) << "the VF is nowhere plumb can reach: nothing is restored yet";
  EXPECT_EQ(early.error().code, Errc::kTryAgain) << early.error().message;
  EXPECT_NE(early.error().message.find("not back on the host yet"), std::string::npos);
  w.kernel.killNetns(lingering);  // the kernel hands the VF back, as devN
  ASSERT_TRUE(engine.detach({req.key, kNetns, {}, {}}).ok());
  w.kernel.addNetns(kNetns);
  EXPECT_EQ(w.snapshot(), before);
}

TEST(SriovEngine, ALateDelLeavesAVfANewerAttachmentTookOver) {
  SriovWorld w;
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  SriovPlan old_plan = byPci("0000:03:02.2");
  old_plan.settings.vlan = 30;
  old_plan.settings.trust = true;
  AttachRequest old_req = vfRequest("old", kNetns, old_plan);
  old_req.mtu = 9000;
  ASSERT_TRUE(engine.attach(old_req).ok());
  // The old container dies; the device plugin gives the VF to a new pod before its DEL came.
  netnsDies(w.kernel, "net1", "dev9");
  if (HasFatalFailure()) return;
  w.kernel.addNetns("/run/netns/ctr2");
  AttachRequest new_req = vfRequest("new", "/run/netns/ctr2", byPci("0000:03:02.2"));
  auto busy = engine.attach(new_req);
  ASSERT_FALSE(busy.ok()) << "the old holder's netns is still there";
  EXPECT_NE(busy.error().message.find("held by attachment net1/old/net1"), std::string::npos)
      << busy.error().message;
  w.kernel.removeNetns(kNetns);
  auto taken = engine.attach(new_req);
  ASSERT_TRUE(taken.ok()) << taken.error().message;
  EXPECT_EQ(taken->container.mtu, 1500) << "not the old holder's MTU";
  EXPECT_NE(w.kernel.snapshot().find("pf pf0 vf 2 mac=00:00:00:00:00:00 vlan=0/0/33024 "
                                     "spoofchk=1 trust=0"),
            std::string::npos)
      << "not the old holder's VLAN or trust: " << w.kernel.snapshot();
  std::string held = w.snapshot();
  ASSERT_TRUE(engine.detach({old_req.key, kNetns, {}, {}}).ok());
  EXPECT_EQ(w.snapshot().find("net1/old"), std::string::npos);
  auto ns2 = w.kernel.openNetns("/run/netns/ctr2");
  ASSERT_TRUE(ns2.ok());
  EXPECT_TRUE(w.kernel.getLink(*ns2, "net1").ok()) << "the new pod keeps its VF";
  ASSERT_TRUE(engine.detach({new_req.key, new_req.netns, {}, {}}).ok());
  w.kernel.removeNetns("/run/netns/ctr2");
  w.kernel.addNetns(kNetns);
  EXPECT_EQ(w.snapshot(), before) << "given back as it was before the first holder";
  (void)held;
}

TEST(SriovEngine, AVfUnderVfioIsNotMovedAndTheResultNamesItsPciAddress) {
  SriovWorld w;
  SriovPlan p = byPci("0000:03:02.3");
  p.settings.vlan = 12;
  std::string before = w.snapshot();
  Engine engine(*w.store, w.kernel);
  AttachRequest req = vfRequest("c1", kNetns, p);
  auto r = engine.attach(req);
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->container.pci, "0000:03:02.3");
  EXPECT_EQ(r->container.name, "net1");
  EXPECT_EQ(r->addresses.size(), 1u) << "the addresses are the userspace driver's to use";
  auto checked = engine.check(req);
  EXPECT_TRUE(checked.ok()) << "no interface to look at: the hold and the VLAN are checked";
  auto pf = w.kernel.getLink(Kernel::kHost, "pf0");
  ASSERT_TRUE(pf.ok());
  nl::VfConfig changed;
  changed.vlan = nl::VfVlan{99, 0, nl::kVlanProto8021Q};
  ASSERT_TRUE(w.kernel.setVf(pf->index, 3, changed).ok());  // behind plumb's back
  auto drift = engine.check(req);
  ASSERT_FALSE(drift.ok());
  EXPECT_EQ(drift.error().message, "VF 0000:03:02.3's vlan is not 12 (qos 0, 802.1q) on PF pf0");
  changed.vlan = nl::VfVlan{12, 0, nl::kVlanProto8021Q};
  ASSERT_TRUE(w.kernel.setVf(pf->index, 3, changed).ok());
  ASSERT_TRUE(engine.detach({req.key, req.netns, {}, {}}).ok());
  EXPECT_EQ(w.snapshot(), before);
}

TEST(SriovEngine, EveryVfWithANetdevHeldMeansNoFreeVf) {
  SriovWorld w;
  Engine engine(*w.store, w.kernel);
  SriovPlan p;
  p.pf = "pf0";
  // Three VFs with netdevs; the one under vfio-pci is a device plugin's, by deviceID only.
  for (int i = 0; i < 3; ++i) {
    AttachRequest r = vfRequest("c" + std::to_string(i), kNetns, p);
    r.key.ifname = "net" + std::to_string(i);
    ASSERT_TRUE(engine.attach(r).ok()) << i;
  }
  AttachRequest fifth = vfRequest("c9", kNetns, p);
  auto r = engine.attach(fifth);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kExhausted);
  EXPECT_NE(r.error().message.find("no free VF on PF pf0"), std::string::npos);
  EXPECT_FALSE(modes::sriovReady(w.kernel, *w.store, p).ok());
}

}  // namespace
}  // namespace core
}  // namespace plumb
