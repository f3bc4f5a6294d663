// Each mode's attach against the fake kernel: the ordered steps, and a failure injected at
// every change the attach makes, in turn, each leaving the kernel and the store exactly as
// they were. Then detach, which must leave them as they were before the attach.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <memory>

#include "base/process.h"
#include "fake_kernel.h"
#include "plugin/core/engine.h"
#include "plugin/core/ipam.h"
#include "store_dump.h"
#include "test_dir.h"

namespace plumb::core {
namespace {

using testing::FakeKernel;

const MacAddr kDeviceMac = *MacAddr::parse("02:00:00:00:09:09");
constexpr const char* kNetns = "/run/netns/ctr1";

// Every table of the store but IPAM's memory of addresses once handed out: its round-robin
// cursor moves on past a released address by design (as host-local's does), and ip_released
// keeps every address that was given back (a neighbour may have cached it), whatever undid it.
// SQLite's sqlite_sequence only grows: VF claims' ids are generations, never reused.
std::string storeDump(const std::string& dir) {
  return plumb::testing::storeDumpOf(dir + "/plumb.db",
                                     {"ip_cursor", "ip_released", "sqlite_sequence"});
}

// One attach's world: a store in a temp dir, a fake kernel, and what the request points at.
struct World {
  plumb::testing::TempDir dir;
  std::unique_ptr<Store> store;
  FakeKernel kernel;
  std::unique_ptr<AddressSource> source;
  std::string snapshot() { return kernel.snapshot() + storeDump(dir.path()); }
};

struct Scenario {
  std::string name;
  // The host and the container as the test starts; may attach others through the engine.
  std::function<void(World&)> setup;
  std::function<AttachRequest(World&)> request;
};

AttachRequest base(const std::string& cid, Plan plan) {
  AttachRequest r;
  r.key = {"net1", cid, "eth1"};
  r.netns = kNetns;
  r.plan = std::move(plan);
  r.frontend = "test";
  return r;
}

void containerHost(World& w) {
  w.kernel.addNetns(kNetns);
  w.kernel.setSysctl(Kernel::kHost, "net.ipv4.ip_forward", "1");
}

VethBridgePlan bridgePlan() {
  VethBridgePlan p;
  p.bridge = "br-t";
  p.hairpin = true;
  return p;
}

// CNI's shape: the built-in IPAM allocates as a step; isGateway, ipMasq, isDefaultGateway.
AttachRequest cniBridge(World& w, const std::string& cid) {
  AttachRequest r = base(cid, bridgePlan());
  IpamRequest ir;
  ir.owner = r.key;
  IpRange range{*IpPrefix::parse("198.18.80.0/24"), std::nullopt, std::nullopt, std::nullopt};
  EXPECT_TRUE(range.normalise().ok());
  ir.range_sets = {{range}};
  RouteSpec extra;
  extra.dst = *IpPrefix::parse("198.19.0.0/16");
  w.source = std::make_unique<IpamAddresses>(*w.store, ir, std::vector<RouteSpec>{extra});
  r.address_source = w.source.get();
  r.address_use = {true, true, true};
  r.mac = *MacAddr::parse("02:00:00:00:01:01");
  return r;
}

AttachRequest withStatic(AttachRequest r) {
  r.addresses = {{*IpPrefix::parse("198.18.81.5/24"), *IpAddr::parse("198.18.81.1")},
                 {*IpPrefix::parse("2001:db8:81::5/64"), std::nullopt}};
  RouteSpec def;
  def.dst = *IpPrefix::parse("0.0.0.0/0");
  def.gateway = *IpAddr::parse("198.18.81.1");
  r.routes = {def};
  r.mtu = 1400;
  return r;
}

// An SR-IOV PF with four VFs: three with netdevs (pf0v0..pf0v2, each with an altname), the
// last bound to vfio-pci.
void sriovHost(World& w) {
  containerHost(w);
  w.kernel.addSriovPf(
      "pf0", "0000:03:00.0",
      {{"0000:03:02.0"}, {"0000:03:02.1"}, {"0000:03:02.2"}, {"0000:03:02.3", "vfio-pci"}});
}

SriovPlan sriovPlanAll(const std::string& pf, const std::string& pci) {
  SriovPlan p;
  p.pf = pf;
  p.pci_address = pci;
  p.settings.vlan = 100;
  p.settings.vlan_qos = 3;
  p.settings.vlan_proto = "802.1ad";
  p.settings.spoofchk = false;
  p.settings.trust = true;
  p.settings.link_state = "enable";
  p.settings.min_tx_rate = 10;
  p.settings.max_tx_rate = 1000;
  return p;
}

std::vector<Scenario> scenarios() {
  std::vector<Scenario> out;
  out.push_back({"bridge, first attach: the bridge is made", containerHost,
                 [](World& w) { return cniBridge(w, "ctr1"); }});
  out.push_back({"bridge, second attach: the bridge and its rules are there",
                 [](World& w) {
                   containerHost(w);
                   w.kernel.addNetns("/run/netns/other");
                   World* pw = &w;
                   AttachRequest first = cniBridge(*pw, "other");
                   first.netns = "/run/netns/other";
                   ASSERT_TRUE(Engine(*w.store, w.kernel).attach(first).ok());
                 },
                 [](World& w) { return cniBridge(w, "ctr1"); }});
  out.push_back({"bridge, left on the host for Docker", containerHost, [](World&) {
                   AttachRequest r = withStatic(base("ctr1", bridgePlan()));
                   r.routes.clear();
                   r.placement = Placement::kHostSide;
                   r.netns = "";
                   return r;
                 }});
  out.push_back({"macvlan in the container",
                 [](World& w) {
                   containerHost(w);
                   w.kernel.addDevice("phys0", *MacAddr::parse("02:00:00:00:00:0a"));
                 },
                 [](World&) {
                   return withStatic(base("ctr1", MacvlanPlan{"phys0", MacvlanMode::kPrivate}));
                 }});
  out.push_back({"macvlan left on the host for Docker",
                 [](World& w) {
                   containerHost(w);
                   w.kernel.addDevice("phys0", *MacAddr::parse("02:00:00:00:00:0a"));
                 },
                 [](World&) {
                   AttachRequest r = base("ctr1", MacvlanPlan{"phys0", MacvlanMode::kBridge});
                   r.placement = Placement::kHostSide;
                   r.netns = "";
                   return r;
                 }});
  out.push_back({"passthrough into the container",
                 [](World& w) {
                   containerHost(w);
                   int eth9 = w.kernel.addDevice("eth9", kDeviceMac, "0000:03:00.1");
                   // As udev names a NIC: an altname, dropped while away, put back after.
                   ASSERT_TRUE(w.kernel.addAltnames(Kernel::kHost, eth9, {"enp3s0f1"}).ok());
                 },
                 [](World&) {
                   AttachRequest r = withStatic(base("ctr1", PassthroughPlan{"eth9", {}, ""}));
                   r.mac = *MacAddr::parse("02:00:00:00:09:0a");
                   return r;
                 }});
  out.push_back({"passthrough by PCI address, left on the host for Docker",
                 [](World& w) {
                   containerHost(w);
                   int eth9 = w.kernel.addDevice("eth9", kDeviceMac, "0000:03:00.1");
                   // As udev names a NIC: an altname, dropped while away, put back after.
                   ASSERT_TRUE(w.kernel.addAltnames(Kernel::kHost, eth9, {"enp3s0f1"}).ok());
                 },
                 [](World&) {
                   AttachRequest r = base("ctr1", PassthroughPlan{"", {}, "0000:03:00.1"});
                   r.placement = Placement::kHostSide;
                   r.netns = "";
                   r.mtu = 9000;
                   return r;
                 }});
  out.push_back(
      {"sriov VF by PCI address into the container, every VF setting", sriovHost, [](World&) {
         AttachRequest r = withStatic(base("ctr1", sriovPlanAll("", "0000:03:02.1")));
         r.mac = *MacAddr::parse("02:00:00:00:0b:01");
         return r;
       }});
  out.push_back({"sriov free VF of a PF, left on the host for Docker", sriovHost, [](World&) {
                   SriovPlan p;
                   p.pf = "pf0";
                   p.settings.vlan = 7;
                   AttachRequest r = base("ctr1", p);
                   r.placement = Placement::kHostSide;
                   r.netns = "";
                   r.mtu = 9000;
                   return r;
                 }});
  out.push_back({"sriov VF bound to vfio-pci: PF settings only", sriovHost, [](World&) {
                   SriovPlan p;
                   p.pci_address = "0000:03:02.3";
                   p.settings.vlan = 9;
                   p.settings.trust = true;
                   return base("ctr1", p);
                 }});
  return out;
}

void prepare(World& w, const Scenario& s) {
  auto store = Store::open(w.dir.path());
  ASSERT_TRUE(store.ok()) << store.error().message;
  w.store = std::move(store).value();
  // The subnet known to the store, as after any earlier attachment on it.
  IpamRequest warm;
  warm.owner = {"net1", "warm", "eth0"};
  IpRange range{*IpPrefix::parse("198.18.80.0/24"), std::nullopt, std::nullopt, std::nullopt};
  ASSERT_TRUE(range.normalise().ok());
  warm.range_sets = {{range}};
  ASSERT_TRUE(Ipam(*w.store).allocate(warm).ok());
  ASSERT_TRUE(Ipam(*w.store).release(warm.owner).ok());
  s.setup(w);
}

class EngineOnFakeKernel : public ::testing::TestWithParam<size_t> {};

TEST_P(EngineOnFakeKernel, AFailureAtEveryChangeLeavesNothingAndDetachUndoesAll) {
  const Scenario s = scenarios()[GetParam()];
  SCOPED_TRACE(s.name);
  int changes = 0;
  {
    World w;
    prepare(w, s);
    if (HasFatalFailure()) return;
    std::string before = w.snapshot();
    AttachRequest req = s.request(w);
    w.kernel.changes = 0;
    Engine engine(*w.store, w.kernel);
    auto done = engine.attach(req);
    ASSERT_TRUE(done.ok()) << done.error().message;
    changes = w.kernel.changes;
    EXPECT_NE(w.snapshot(), before);
    auto rec = w.store->findAttachment(req.key);
    ASSERT_TRUE(rec.ok() && rec->has_value());
    EXPECT_EQ((*rec)->state, "ready");
    EXPECT_EQ((*rec)->mode, modeName(req.plan));
    EXPECT_EQ((*rec)->addresses.size(), done->addresses.size());
    // Removal gives everything back: DEL as the CNI front end makes it (the network's
    // masquerade goes with its last attachment, IPAM's addresses are released), then, for a
    // bridge this attach made, the network's removal (bridges outlive their last attachment,
    // as the reference plugin's do; Docker's DeleteNetwork removes them).
    std::vector<IpPrefix> masq;
    if (const auto* b = std::get_if<VethBridgePlan>(&req.plan)) masq = b->masquerade;
    if (req.address_use.masquerade) masq.push_back(*IpPrefix::parse("198.18.80.0/24"));
    ASSERT_TRUE(engine.detach({req.key, req.netns, masq, {}}).ok());
    if (before.find("br-t kind=bridge") == std::string::npos &&
        std::holds_alternative<VethBridgePlan>(req.plan)) {
      ASSERT_TRUE(engine.removeNetwork({"net1", "br-t", {}}).ok());
    }
    if (w.source) {
      ASSERT_TRUE(w.source->release().ok());
    }
    EXPECT_EQ(w.snapshot(), before) << "detach left something";
    EXPECT_TRUE(engine.detach({req.key, req.netns, {}, {}}).ok()) << "a second detach succeeds";
  }
  ASSERT_GT(changes, 0);
  for (int k = 1; k <= changes; ++k) {
    SCOPED_TRACE("failure injected at change " + std::to_string(k) + " of " +
                 std::to_string(changes));
    World w;
    prepare(w, s);
    if (HasFatalFailure()) return;
    std::string before = w.snapshot();
    AttachRequest req = s.request(w);
    w.kernel.changes = 0;
    w.kernel.fail_at = k;
    auto done = Engine(*w.store, w.kernel).attach(req);
    ASSERT_FALSE(done.ok());
    EXPECT_NE(done.error().message.find("injected failure at change " + std::to_string(k)),
              std::string::npos)
        << done.error().message;
    EXPECT_EQ(w.snapshot(), before);
  }
}

INSTANTIATE_TEST_SUITE_P(Modes, EngineOnFakeKernel, ::testing::Range<size_t>(0, 10));

// Only an address that may be in a neighbour's cache with another MAC is announced: one IPAM
// hands out for the first time is not, one that changed hands is, and static addresses (whose
// history plumb does not know) always are.
TEST(EngineAnnounces, OnlyAddressesThatChangedHands) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  Engine engine(*w.store, w.kernel);
  AttachRequest first = cniBridge(w, "ctr1");
  auto one = engine.attach(first);
  ASSERT_TRUE(one.ok()) << one.error().message;
  EXPECT_TRUE(w.kernel.announced.empty()) << w.kernel.announced[0];
  ASSERT_TRUE(engine.detach({first.key, first.netns, {}, {}}).ok());
  ASSERT_TRUE(w.source->release().ok());  // as CNI's DEL does after the detach

  AttachRequest second = cniBridge(w, "ctr2");
  IpamRequest ir;
  ir.owner = second.key;
  IpRange range{*IpPrefix::parse("198.18.80.0/24"), std::nullopt, std::nullopt, std::nullopt};
  ASSERT_TRUE(range.normalise().ok());
  ir.range_sets = {{range}};
  ir.requested = {one->addresses[0].address.addr()};
  w.source = std::make_unique<IpamAddresses>(*w.store, ir, std::vector<RouteSpec>{});
  second.address_source = w.source.get();
  auto two = engine.attach(second);
  ASSERT_TRUE(two.ok()) << two.error().message;
  ASSERT_EQ(w.kernel.announced.size(), 1u);
  EXPECT_EQ(w.kernel.announced[0].rfind(
                one->addresses[0].address.addr().str() + " is at " + two->container.mac, 0),
            0u)
      << w.kernel.announced[0];
  ASSERT_TRUE(engine.detach({second.key, second.netns, {}, {}}).ok());

  w.kernel.announced.clear();
  AttachRequest fixed = withStatic(base("ctr3", bridgePlan()));
  ASSERT_TRUE(engine.attach(fixed).ok());
  EXPECT_EQ(w.kernel.announced.size(), 2u) << "both static addresses";
}

// The order each mode's attach takes, as docs/modes.md describes it.
TEST(EngineSteps, BridgeStepsInOrder) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  AttachRequest req = cniBridge(w, "ctr1");
  auto steps = Engine(*w.store, w.kernel).describe(req);
  ASSERT_TRUE(steps.ok()) << steps.error().message;
  std::string host = Engine::hostIfname(req.key);
  // The peer is born in the netns under its final name: no rename, stamped when set up.
  EXPECT_EQ(*steps, (std::vector<std::string>{
                        "open the host netns and netns /run/netns/ctr1",
                        "record attachment net1/ctr1/eth1 and allocate addresses in "
                        "198.18.80.0/24",
                        "ensure bridge br-t",
                        "create veth " + host + " with peer eth1",
                        "attach " + host + " to bridge br-t",
                        "enable IPv6 on eth1 if it gets an IPv6 address",
                        "add the allocated addresses to eth1",
                        "set eth1 up and stamp it",
                        "add the allocated routes",
                        "set " + host + " up",
                        "record the result",
                    }));
  EXPECT_EQ(w.kernel.changes, 0) << "describing changes nothing";
}

TEST(EngineSteps, MacvlanAndPassthroughStepsInOrder) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  AttachRequest mv = withStatic(base("ctr1", MacvlanPlan{"phys0", MacvlanMode::kVepa}));
  std::string tmp = Engine::tempIfname(mv.key);
  EXPECT_EQ(*Engine(*w.store, w.kernel).describe(mv),
            (std::vector<std::string>{
                "open the host netns and netns /run/netns/ctr1",
                "record attachment net1/ctr1/eth1",
                "create macvlan " + tmp + " on phys0 (vepa)",
                "name the container interface eth1",
                "enable IPv6 on eth1 if it gets an IPv6 address",
                "add address 198.18.81.5/24 to eth1",
                "add address 2001:db8:81::5/64 to eth1",
                "set eth1 up",
                "add route 0.0.0.0/0 via 198.18.81.1",
                "record the result",
            }));
  AttachRequest pt = base("ctr1", PassthroughPlan{"eth9", {}, ""});
  EXPECT_EQ(*Engine(*w.store, w.kernel).describe(pt),
            (std::vector<std::string>{
                "open the host netns and netns /run/netns/ctr1",
                "record attachment net1/ctr1/eth1",
                "find device eth9",
                "move the device into netns /run/netns/ctr1",
                "set eth1 up and stamp it",
                "record the result",
            }));
}

TEST(EngineSteps, AnMtuTheKernelWouldTakeBadlyIsRefused) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  for (int mtu : {-1, 1, 67, 65536}) {
    AttachRequest r = withStatic(base("ctr1", bridgePlan()));
    r.mtu = mtu;
    auto st = Engine(*w.store, w.kernel).attach(r);
    ASSERT_FALSE(st.ok()) << mtu;
    EXPECT_EQ(st.error().message, "mtu " + std::to_string(mtu) + " is out of range (68-65535)");
  }
  EXPECT_EQ(w.kernel.changes, 0);
}

// Issue 15: a bridge name the kernel takes but nft's rule text cannot quote left rules with no
// verdict, added again on every ADD. Refused before anything is made.
TEST(EngineSteps, ABridgeNameRulesCannotQuoteIsRefused) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  std::string before = w.snapshot();
  for (const char* name : {"rp\"#", "br\\x"}) {
    VethBridgePlan plan;
    plan.bridge = name;
    auto st = Engine(*w.store, w.kernel).attach(withStatic(base("ctr1", plan)));
    ASSERT_FALSE(st.ok()) << name;
    EXPECT_EQ(st.error().code, Errc::kInvalid);
    EXPECT_NE(st.error().message.find("nftables rules cannot quote"), std::string::npos)
        << st.error().message;
  }
  EXPECT_EQ(w.kernel.changes, 0);
  EXPECT_EQ(w.snapshot(), before);
}

TEST(EngineSteps, AGoneNetnsIsTyped) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  auto r = Engine(*w.store, w.kernel).attach(withStatic(base("ctr1", bridgePlan())));
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kNoNetns) << r.error().message;
}

TEST(EngineSteps, PassthroughDetachAfterTheNetnsDiedRestoresTheDevice) {
  World w;
  w.store = std::move(Store::open(w.dir.path())).value();
  containerHost(w);
  w.kernel.addDevice("eth9", kDeviceMac, "0000:03:00.1");
  std::string before = w.kernel.snapshot();
  Engine engine(*w.store, w.kernel);
  AttachRequest req = base("ctr1", PassthroughPlan{"eth9", {}, ""});
  req.mtu = 1400;
  ASSERT_TRUE(engine.attach(req).ok());
  // The netns dies: the kernel hands the device back to the host, as devN, down.
  auto ns = w.kernel.openNetns(kNetns);
  ASSERT_TRUE(ns.ok());
  auto moved = w.kernel.getLink(*ns, "eth1");
  ASSERT_TRUE(moved.ok());
  ASSERT_TRUE(w.kernel.moveLink(*ns, moved->index, Kernel::kHost).ok());
  ASSERT_TRUE(w.kernel
                  .changeLink(Kernel::kHost, moved->index,
                              [] {
                                nl::LinkChange c;
                                c.name = "dev7";
                                return c;
                              }())
                  .ok());
  ASSERT_TRUE(engine.detach({req.key, "/run/netns/gone", {}, {}}).ok());
  EXPECT_EQ(w.kernel.snapshot(), before);
}

// An attach is abandoned only if the store still holds the record its dead owner left: one
// that finished and exited after the caller read it is not (two ADDs of one key once both
// "won" that way, the second deleting the first's interface).
TEST(EngineAbandoned, OnlyWhileTheStoreStillHoldsWhatTheDeadOwnerLeft) {
  plumb::testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  ASSERT_GT(child, 0);
  ASSERT_EQ(::waitpid(child, nullptr, 0), child);  // a pid that no longer runs
  AttachmentRecord seen;
  seen.key = {"net", "c", "eth0"};
  seen.netns = "/run/netns/c";
  seen.mode = "bridge";
  seen.state = "adding";
  seen.owner_pid = child;
  seen.owner_start = 12345;
  ASSERT_TRUE((*store)->insertAttachment(seen).ok());
  EXPECT_TRUE(Engine::abandoned(seen));
  auto still = Engine::stillAbandoned(**store, seen);
  ASSERT_TRUE(still.ok());
  EXPECT_TRUE(*still);
  // Its owner finished it before exiting: the same stale read is no longer abandoned.
  AttachmentRecord done = seen;
  done.state = "ready";
  ASSERT_TRUE((*store)->updateAttachment(done).ok());
  EXPECT_TRUE(Engine::abandoned(seen)) << "the stale read alone still looks abandoned";
  still = Engine::stillAbandoned(**store, seen);
  ASSERT_TRUE(still.ok());
  EXPECT_FALSE(*still);
  // Nor one whose record is gone, nor one of a live owner.
  ASSERT_TRUE((*store)->deleteAttachment(seen.key).ok());
  EXPECT_FALSE(*Engine::stillAbandoned(**store, seen));
  AttachmentRecord live = seen;
  live.owner_pid = ::getpid();
  live.owner_start = processStartTime(::getpid());
  EXPECT_FALSE(*Engine::stillAbandoned(**store, live));
}

}  // namespace
}  // namespace plumb::core
