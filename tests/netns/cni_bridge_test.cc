// Bridge mode against the real kernel: every option, DEL semantics, CHECK, GC, rollback,
// concurrency, and bad input that must change nothing.
#include <future>
#include <set>

#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "harness.h"
#include "neigh_monitor.h"

namespace plumb::testing {
namespace {

class Bridge : public NetnsTest {};

TEST_F(Bridge, TwoContainersTalkAndDelCleansUp) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto conf = bridgeConf("net1", "br-t1", "198.18.1.0/24");
  auto r1 = add(conf, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  auto r2 = add(conf, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  auto res = json::parse(r1.out);
  EXPECT_EQ(res["cniVersion"], "1.0.0");
  ASSERT_EQ(res["interfaces"].size(), 2u);
  EXPECT_EQ(res["interfaces"][1]["name"], "eth0");
  EXPECT_EQ(res["interfaces"][1]["sandbox"], c1);
  EXPECT_EQ(res["ips"][0]["address"], "198.18.1.2/24");
  EXPECT_EQ(res["ips"][0]["gateway"], "198.18.1.1");
  EXPECT_EQ(res["ips"][0]["interface"], 1);
  // The result's MAC is the interface's.
  auto mac = in(nsName("c1"), "cat /sys/class/net/eth0/address").out;
  EXPECT_EQ(res["interfaces"][1]["mac"].get<std::string>() + "\n", mac);
  EXPECT_TRUE(ping(nsName("c1"), "198.18.1.3"));
  EXPECT_TRUE(ping(nsName("c2"), "198.18.1.1"));
  // The host veth is on the bridge; the bridge holds the gateway.
  auto host_if = res["interfaces"][0]["name"].get<std::string>();
  EXPECT_NE(inHost("ip -o link show " + host_if).out.find("master br-t1"), std::string::npos);
  EXPECT_NE(inHost("ip -o addr show br-t1").out.find("198.18.1.1/24"), std::string::npos);

  EXPECT_EQ(inHost("ip -6 -o addr show dev " + host_if).out, "")
      << "a bridge port's host end needs no IPv6 address (no DAD or MLD flooded to every port)";
  auto bridge_mac = inHost("cat /sys/class/net/br-t1/address").out;
  // The control for the checks after DEL: the store names both while they are attached.
  auto attached = storeDump();
  EXPECT_NE(attached.find("|c1|"), std::string::npos) << attached;
  EXPECT_NE(attached.find("|c2|"), std::string::npos) << attached;
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(inHost("cat /sys/class/net/br-t1/address").out, bridge_mac)
      << "the gateway's MAC stays put as ports leave";
  EXPECT_EQ(del(conf, "c1", c1).rc, 0) << "DEL twice";
  EXPECT_EQ(del(conf, "c1", "").rc, 0) << "DEL with an empty CNI_NETNS";
  EXPECT_EQ(in(nsName("c1"), "ip -o link show eth0").rc, 1) << "eth0 gone from c1";
  EXPECT_EQ(inHost("ip -o link show " + host_if).rc, 1) << "host end gone";
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -c plm || true").out, "0\n");
  auto dump = storeDump();
  EXPECT_EQ(dump.find("|c1|"), std::string::npos) << dump;
  EXPECT_EQ(dump.find("|c2|"), std::string::npos) << dump;
}

TEST_F(Bridge, DelAfterTheNetnsIsGone) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("net1", "br-t1", "198.18.2.0/24");
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);
  EXPECT_NE(storeDump().find("|c1|"), std::string::npos) << "the control: c1 is recorded";
  ASSERT_EQ(sh("ip netns del " + nsName("c1")).rc, 0);
  auto r = del(conf, "c1", c1);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(del(conf, "c1", "").rc, 0);
  EXPECT_EQ(storeDump().find("|c1|"), std::string::npos) << "address released";
  // The address is free again.
  auto c2 = makeNetns("c2");
  auto r2 = add(conf, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  EXPECT_EQ(json::parse(r2.out)["ips"][0]["address"], "198.18.2.3/24")
      << "round-robin after the released .2";
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
}

TEST_F(Bridge, CheckCatchesARemovedAddressOrRoute) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("net1", "br-t1", "198.18.3.0/24");
  conf["isDefaultGateway"] = true;
  auto r = add(conf, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto check = conf;
  check["prevResult"] = json::parse(r.out);
  auto ok = cni("CHECK", check, "c1", c1);
  EXPECT_EQ(ok.rc, 0) << ok.out;
  in(nsName("c1"), "ip route del default");
  auto no_route = cni("CHECK", check, "c1", c1);
  EXPECT_EQ(no_route.rc, 1);
  EXPECT_NE(no_route.out.find("route 0.0.0.0/0 via 198.18.3.1 is missing"), std::string::npos)
      << no_route.out;
  in(nsName("c1"), "ip addr flush dev eth0");
  auto no_addr = cni("CHECK", check, "c1", c1);
  EXPECT_EQ(no_addr.rc, 1);
  EXPECT_NE(no_addr.out.find("address 198.18.3.2/24 is missing"), std::string::npos) << no_addr.out;
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
}

TEST_F(Bridge, OptionsReachTheKernel) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("net1", "br-opt", "198.18.4.0/24", "0.3.1");
  conf["mtu"] = 1400;
  conf["mac"] = "02:11:22:33:44:55";
  conf["hairpinMode"] = true;
  conf["promiscMode"] = true;
  conf["isDefaultGateway"] = true;
  conf["ipMasq"] = true;
  auto r = add(conf, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto res = json::parse(r.out);
  EXPECT_EQ(res["cniVersion"], "0.3.1");
  EXPECT_EQ(res["ips"][0]["version"], "4");
  auto host_if = res["interfaces"][0]["name"].get<std::string>();
  auto link = in(nsName("c1"), "ip -o link show eth0").out;
  EXPECT_NE(link.find("mtu 1400"), std::string::npos) << link;
  EXPECT_NE(link.find("02:11:22:33:44:55"), std::string::npos) << link;
  EXPECT_NE(inHost("ip -o link show " + host_if).out.find("mtu 1400"), std::string::npos);
  EXPECT_EQ(inHost("cat /sys/class/net/" + host_if + "/brport/hairpin_mode").out, "1\n");
  EXPECT_NE(inHost("ip -o link show br-opt").out.find("PROMISC"), std::string::npos);
  EXPECT_NE(in(nsName("c1"), "ip route show default").out.find("via 198.18.4.1 dev eth0"),
            std::string::npos);
  EXPECT_EQ(inHost("cat /proc/sys/net/ipv4/ip_forward").out, "1\n");
  auto rules = inHost("nft list table inet plumb").out;
  EXPECT_NE(rules.find("ip saddr 198.18.4.0/24 ip daddr != 198.18.4.0/24 masquerade"),
            std::string::npos)
      << rules;
  EXPECT_NE(rules.find("iifname \"br-opt\" accept"), std::string::npos) << rules;
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(inHost("nft list table inet plumb").out.find("masquerade"), std::string::npos)
      << "the network's last DEL takes its masquerade rule along";
}

// An address that changes hands (a container replaced under the same IP) is announced: the
// gateway's neighbour entries for it, which still hold the old MAC, take the new one without
// any traffic from it: a gratuitous ARP for IPv4, an unsolicited NA for IPv6. (An address
// handed out for the first time is in no neighbour's cache and is not announced.)
TEST_F(Bridge, AnAddressThatChangedHandsIsAnnounced) {
  auto keeper = makeNetns("c2"), c0 = makeNetns("c0"), c1 = makeNetns("c1");
  auto conf = bridgeConf("netgarp", "br-garp", "198.18.90.0/24", "1.0.0");
  conf["ipam"] = {
      {"type", "plumb"},
      {"ranges", {{{{"subnet", "198.18.90.0/24"}}}, {{{"subnet", "2001:db8:90::/64"}}}}}};
  ASSERT_EQ(inHost("ip link add br-garp address 02:00:00:00:00:01 type bridge && ip link set "
                   "br-garp up && ip addr add 198.18.90.1/24 dev br-garp && ip addr add "
                   "2001:db8:90::1/64 dev br-garp nodad")
                .rc,
            0);
  // Two neighbours: the gateway, and a container that stays on the bridge throughout (which
  // also keeps the bridge's carrier up: a bridge without a port drops its neighbour entries).
  auto kept = add(conf, "c2", keeper);
  ASSERT_EQ(kept.rc, 0) << kept.out;
  // c0 holds an address first and gives it back; both neighbours still have c0's MAC for it
  // (planted as stale entries: what a neighbour that talked to c0 keeps).
  auto first = add(conf, "c0", c0);
  ASSERT_EQ(first.rc, 0) << first.out;
  std::string v4 = json::parse(first.out)["ips"][0]["address"];
  std::string v6 = json::parse(first.out)["ips"][1]["address"];
  ASSERT_EQ(v4, "198.18.90.3/24");
  ASSERT_EQ(v6, "2001:db8:90::3/64");
  ASSERT_EQ(del(conf, "c0", c0).rc, 0);
  for (const std::string a : {"198.18.90.3", "2001:db8:90::3"}) {
    ASSERT_EQ(
        inHost("ip neigh replace " + a + " lladdr 02:00:00:00:00:99 dev br-garp nud stale").rc, 0);
    ASSERT_EQ(
        in(nsName("c2"), "ip neigh replace " + a + " lladdr 02:00:00:00:00:99 dev eth0 nud stale")
            .rc,
        0);
  }
  // Each neighbour's notifications are watched from before the ADD, so the test waits for the
  // announcements themselves. `ip monitor` subscribes some time after it starts (long under
  // load), so an entry is planted under a new MAC each round until the monitor reports one.
  NeighMonitor gateway(host()), other(nsName("c2"));
  ASSERT_TRUE(gateway.listening([&](const std::string& plant) {
    return inHost(plant + " 198.18.90.250 dev br-garp").rc == 0;
  }));
  ASSERT_TRUE(other.listening([&](const std::string& plant) {
    return in(nsName("c2"), plant + " 198.18.90.250 dev eth0").rc == 0;
  }));
  // c1 gets c0's addresses (asked for), under a MAC of its own.
  conf["mac"] = "02:11:22:33:44:66";
  conf["runtimeConfig"] = {{"ips", {v4, v6}}};
  auto r = add(conf, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto res = json::parse(r.out);
  ASSERT_EQ(res["ips"][0]["address"], v4);
  ASSERT_EQ(res["ips"][1]["address"], v6);
  // Both addresses' entries change on each neighbour (bounded: the announcer gives up after 3 s).
  gateway.waitFor("lladdr 02:11:22:33:44:66", 2);
  other.waitFor("lladdr 02:11:22:33:44:66", 2);
  for (const std::string addr : {"198.18.90.3", "2001:db8:90::3"}) {
    for (const auto& [where, dev] : {std::pair<std::string, std::string>{"", "br-garp"},
                                     std::pair<std::string, std::string>{nsName("c2"), "eth0"}}) {
      std::string cmd = "ip neigh show " + addr + " dev " + dev;
      std::string neigh = where.empty() ? inHost(cmd).out : in(where, cmd).out;
      EXPECT_NE(neigh.find("lladdr 02:11:22:33:44:66"), std::string::npos)
          << addr << " on " << (where.empty() ? "the gateway" : where) << ": " << neigh;
    }
  }
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(del(conf, "c2", keeper).rc, 0);
}

TEST_F(Bridge, MacFromCniArgsAndRuntimeConfig) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto conf = bridgeConf("net1", "br-mac", "198.18.5.0/24");
  auto r = cni("ADD", conf, "c1", c1, "eth0",
               "CNI_ARGS='IgnoreUnknown=1;MAC=02:aa:00:00:00:01;IP=198.18.5.50'");
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(json::parse(r.out)["ips"][0]["address"], "198.18.5.50/24");
  EXPECT_EQ(in(nsName("c1"), "cat /sys/class/net/eth0/address").out, "02:aa:00:00:00:01\n");
  auto rc = conf;
  rc["runtimeConfig"] = {{"mac", "02:bb:00:00:00:02"}, {"ips", {"198.18.5.60/24"}}};
  auto r2 = add(rc, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  EXPECT_EQ(json::parse(r2.out)["ips"][0]["address"], "198.18.5.60/24");
  EXPECT_EQ(in(nsName("c2"), "cat /sys/class/net/eth0/address").out, "02:bb:00:00:00:02\n");
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(del(rc, "c2", c2).rc, 0);
}

TEST_F(Bridge, DualStack) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto conf = bridgeConf("net6", "br-v6", "198.18.6.0/24", "1.1.0");
  conf["ipam"] = {{"type", "plumb"},
                  {"ranges", {{{{"subnet", "198.18.6.0/24"}}}, {{{"subnet", "2001:db8:6::/64"}}}}}};
  auto r1 = add(conf, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  ASSERT_EQ(add(conf, "c2", c2).rc, 0);
  auto res = json::parse(r1.out);
  ASSERT_EQ(res["ips"].size(), 2u);
  EXPECT_EQ(res["ips"][1]["address"], "2001:db8:6::2/64");
  EXPECT_EQ(res["interfaces"][1]["mtu"], 1500) << "1.1.0 results carry the MTU";
  // No DAD wait: the address is usable at once.
  EXPECT_EQ(
      in(nsName("c1"), "ip -6 -o addr show dev eth0 scope global | grep -c tentative || true").out,
      "0\n");
  EXPECT_TRUE(ping(nsName("c1"), "2001:db8:6::3", true));
  EXPECT_TRUE(ping(nsName("c1"), "198.18.6.3"));
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
}

TEST_F(Bridge, ForwardingSurvivesADroppingForwardPolicyAndMasquerades) {
  // An "outside" network the host routes to, which knows no route back to the containers:
  // replies only come back if plumb masquerades, and only pass if plumb accepted forwarding.
  auto outside = makeNetns("out");
  (void)outside;
  ASSERT_EQ(inHost("ip link add up0 type veth peer name up1 && ip link set up1 netns " +
                   nsName("out") + " && ip addr add 198.19.0.2/24 dev up0 && ip link set up0 up")
                .rc,
            0);
  ASSERT_EQ(in(nsName("out"), "ip addr add 198.19.0.1/24 dev up1 && ip link set up1 up").rc, 0);
  // What dockerd does to the host: iptables FORWARD policy DROP.
  ASSERT_EQ(inHost("iptables -P FORWARD DROP").rc, 0);
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("netfw", "br-fw", "198.18.7.0/24");
  conf["isDefaultGateway"] = true;
  conf["ipMasq"] = true;
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);
  EXPECT_TRUE(ping(nsName("c1"), "198.19.0.1"));
  auto forward = inHost("iptables -S FORWARD").out;
  EXPECT_NE(forward.find("-i br-fw"), std::string::npos) << forward;
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
}

TEST_F(Bridge, Ipv6ForwardingIsTurnedOnUnlessTheConfigSaysNo) {
  auto c1 = makeNetns("c1");
  auto sysctl = [&] { return inHost("sysctl -n net.ipv6.conf.all.forwarding").out; };
  ASSERT_EQ(sysctl(), "0\n");
  auto off = bridgeConf("v6off", "br-v6off", "2001:db8:61::/64");
  off["ipv6Forwarding"] = false;
  auto r = add(off, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_NE(inHost("ip -6 addr show dev br-v6off").out.find("2001:db8:61::1/64"), std::string::npos)
      << "the gateway is on the bridge all the same";
  EXPECT_EQ(sysctl(), "0\n") << "ipv6Forwarding false leaves it off";
  EXPECT_EQ(del(off, "c1", c1).rc, 0);
  auto on = bridgeConf("v6on", "br-v6on", "2001:db8:62::/64");
  r = add(on, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(sysctl(), "1\n") << "the default turns it on, as Docker's bridge driver does";
  EXPECT_EQ(del(on, "c1", c1).rc, 0);
}

TEST_F(Bridge, ALongNetworkNameStillGetsItsMasqueradeRuleAndLosesIt) {
  // nft takes comments of up to 128 characters; the rule's tag names the network.
  auto c1 = makeNetns("c1");
  std::string name(120, 'n');
  auto conf = bridgeConf(name, "br-long", "198.18.9.0/24");
  conf["ipMasq"] = true;
  auto r = add(conf, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto rules = inHost("nft list table inet plumb").out;
  EXPECT_NE(rules.find("ip saddr 198.18.9.0/24 ip daddr != 198.18.9.0/24 masquerade"),
            std::string::npos)
      << rules;
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(inHost("nft list ruleset | grep -c masquerade || true").out, "0\n")
      << "the rule went with the network's last DEL";
}

TEST_F(Bridge, TheMasqueradeRuleStaysWhileTheNetworkHasAnAttachment) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto conf = bridgeConf("net-masq", "br-masq", "198.18.10.0/24");
  conf["ipMasq"] = true;
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);
  ASSERT_EQ(add(conf, "c2", c2).rc, 0);
  auto count = [&] { return inHost("nft list ruleset | grep -c masquerade || true").out; };
  EXPECT_EQ(count(), "1\n");
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(count(), "1\n") << "c2 still needs it";
  EXPECT_TRUE(ping(nsName("c2"), "198.18.10.1"));
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
  EXPECT_EQ(count(), "0\n") << "the rule went with the network's last DEL";
}

TEST_F(Bridge, RollsBackWhenTheContainerAlreadyHasTheInterface) {
  auto c1 = makeNetns("c1");
  ASSERT_EQ(in(nsName("c1"), "ip link add eth0 type veth peer name other0").rc, 0);
  auto conf = bridgeConf("net1", "br-rb", "198.18.8.0/24");
  ASSERT_EQ(add(conf, "seed", makeNetns("seed")).rc, 0);  // the network's own set-up exists
  auto links = [&] { return inHost("ip -o link 2>/dev/null | cut -d: -f2 | sort").out; };
  auto before = links();
  auto store_before = storeDump();
  auto r = add(conf, "c1", c1);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("interface eth0 already exists in netns"), std::string::npos) << r.out;
  EXPECT_EQ(links(), before) << "no host link left behind";
  EXPECT_EQ(storeDump(), store_before) << "no record or address left behind";
  EXPECT_EQ(in(nsName("c1"), "ip -o link 2>/dev/null | grep -c plt || true").out, "0\n");
  // The runtime sends DEL after a failed ADD: the other plugin's eth0 must survive it.
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(in(nsName("c1"), "ip -o link show eth0").rc, 0)
      << "DEL removed an interface plumb does not own";
  EXPECT_EQ(del(conf, "seed", "/run/netns/" + nsName("seed")).rc, 0);
}

TEST_F(Bridge, AFailedFirstAddTakesBackTheBridgeItMade) {
  auto c1 = makeNetns("c1");
  ASSERT_EQ(in(nsName("c1"), "ip link add eth0 type veth peer name other0").rc, 0);
  auto conf = bridgeConf("net1", "br-new", "198.18.9.0/24");
  auto r = add(conf, "c1", c1);
  EXPECT_EQ(r.rc, 1);
  EXPECT_NE(r.out.find("interface eth0 already exists in netns"), std::string::npos) << r.out;
  EXPECT_NE(inHost("ip link show br-new").rc, 0) << "the bridge this ADD made is gone again";
  EXPECT_EQ(inHost("nft list table inet plumb 2>/dev/null | grep -c 'fwd:br-new' || true").out,
            "0\n")
      << "with its forwarding rules";
  EXPECT_EQ(storeDump(), "");
}

TEST_F(Bridge, ConcurrentAddsAndDels) {
  constexpr int kCount = 64;
  std::vector<std::string> paths;
  for (int i = 0; i < kCount; ++i) paths.push_back(makeNetns("c" + std::to_string(i)));
  auto conf = bridgeConf("netc", "br-cc", "198.18.64.0/20");
  std::vector<std::future<Cmd>> adds;
  for (int i = 0; i < kCount; ++i) {
    adds.push_back(std::async(std::launch::async,
                              [&, i] { return add(conf, "c" + std::to_string(i), paths[i]); }));
  }
  std::set<std::string> addrs;
  for (auto& f : adds) {
    auto r = f.get();
    ASSERT_EQ(r.rc, 0) << r.out;
    addrs.insert(json::parse(r.out)["ips"][0]["address"].get<std::string>());
  }
  EXPECT_EQ(addrs.size(), static_cast<size_t>(kCount)) << "no address handed out twice";
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -c 'master br-cc'").out,
            std::to_string(kCount) + "\n");
  std::vector<std::future<Cmd>> dels;
  for (int i = 0; i < kCount; ++i) {
    dels.push_back(std::async(std::launch::async,
                              [&, i] { return del(conf, "c" + std::to_string(i), paths[i]); }));
  }
  for (auto& f : dels) EXPECT_EQ(f.get().rc, 0);
  EXPECT_EQ(inHost("ip -o link 2>/dev/null | grep -c plm || true").out, "0\n");
  auto allocs =
      sh("sqlite3 " + state_.path() +
         "/state/plumb.db \"SELECT count(*) FROM ip_allocs WHERE container_id<>'gateway'; SELECT "
         "count(*) FROM attachments; SELECT count(*) FROM ip_free\"")
          .out;
  EXPECT_EQ(allocs, "0\n0\n0\n")
      << "no allocation or record left; the subnet, wholly free again, is forgotten";
}

// A runtime retrying ADD while the first is still running: one wins, the others fail with
// "already exists", and the winner keeps its interface and its address.
TEST_F(Bridge, DuplicateAddsRacingForOneKeyLeaveTheWinnerWhole) {
  auto path = makeNetns("dup");
  auto conf = bridgeConf("netdup", "br-dup", "198.18.80.0/24");
  for (int round = 0; round < 3; ++round) {
    std::vector<std::future<Cmd>> adds;
    for (int i = 0; i < 6; ++i)
      adds.push_back(std::async(std::launch::async, [&] { return add(conf, "dup", path); }));
    int won = 0;
    std::string addr;
    for (auto& f : adds) {
      auto r = f.get();
      if (r.rc == 0) {
        ++won;
        addr = json::parse(r.out)["ips"][0]["address"].get<std::string>();
      } else {
        EXPECT_NE(r.out.find("already has interface eth0"), std::string::npos) << r.out;
      }
    }
    ASSERT_EQ(won, 1) << "round " << round;
    EXPECT_NE(in(nsName("dup"), "ip -4 -o addr show eth0").out.find(addr), std::string::npos);
    auto owner = sh("sqlite3 " + state_.path() +
                    "/state/plumb.db \"SELECT addr || '/' || prefix FROM ip_allocs WHERE "
                    "container_id='dup'\"")
                     .out;
    EXPECT_EQ(owner, addr + "\n") << "the winner's address is still allocated to it";
    ASSERT_EQ(del(conf, "dup", path).rc, 0);
  }
}

TEST_F(Bridge, GcRemovesWhatIsNotValidAndNothingElse) {
  auto c1 = makeNetns("c1"), c2 = makeNetns("c2");
  auto conf = bridgeConf("netgc", "br-gc", "198.18.9.0/24", "1.1.0");
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);
  ASSERT_EQ(add(conf, "c2", c2).rc, 0);
  auto gc = conf;
  gc["cni.dev/valid-attachments"] = {{{"containerID", "c1"}, {"ifname", "eth0"}}};
  auto r = cni("GC", gc, "", "");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(in(nsName("c2"), "ip -o link show eth0").rc, 1) << "c2 collected";
  EXPECT_TRUE(ping(nsName("c1"), "198.18.9.1")) << "c1 untouched";
  auto dump = storeDump();
  EXPECT_NE(dump.find("|c1|"), std::string::npos);
  EXPECT_EQ(dump.find("|c2|"), std::string::npos);
  // The older key name works too, and an empty list with no records is fine.
  auto gc2 = conf;
  gc2["cni.dev/attachments"] = json::array();
  EXPECT_EQ(cni("GC", gc2, "", "").rc, 0);
  EXPECT_EQ(storeDump().find("|c1|"), std::string::npos);
  auto empty = conf;
  empty["name"] = "netgc-empty";
  empty["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(cni("GC", empty, "", "").rc, 0);
}

TEST_F(Bridge, StatusSaysWhenTheBridgeCannotBeUsed) {
  auto conf = bridgeConf("netst", "br-st", "198.18.10.0/24", "1.1.0");
  EXPECT_EQ(cni("STATUS", conf, "", "").rc, 0);
  ASSERT_EQ(inHost("ip link add br-st type veth peer name br-st-peer").rc, 0);
  auto r = cni("STATUS", conf, "", "");
  EXPECT_EQ(cniCode(r), 50) << r.out;
  EXPECT_NE(r.out.find("br-st exists and is not a bridge"), std::string::npos) << r.out;
  // A store that cannot be used (its directory is a file): 50 as well, saying why.
  auto unusable = bridgeConf("netst2", "br-st2", "198.18.10.0/24", "1.1.0");
  ASSERT_EQ(sh("touch " + state_.path() + "/not-a-dir").rc, 0);
  unusable["dataDir"] = state_.path() + "/not-a-dir";
  auto u = cni("STATUS", unusable, "", "");
  EXPECT_EQ(cniCode(u), 50) << u.out;
  EXPECT_NE(u.out.find("is not a directory"), std::string::npos) << u.out;
}

TEST_F(Bridge, DelegatedIpamGetsItsDelWhenALaterStepFails) {
  auto c1 = makeNetns("c1");
  ASSERT_EQ(in(nsName("c1"), "ip link add eth0 type veth peer name other0").rc, 0);
  auto conf = bridgeConf("netdl", "br-dl", "198.18.13.0/24");
  std::string hl_dir = state_.path() + "/host-local";
  conf["ipam"] = {{"type", "host-local"}, {"subnet", "198.18.13.0/24"}, {"dataDir", hl_dir}};
  auto r = add(conf, "c1", c1);
  EXPECT_EQ(r.rc, 1) << r.out;
  EXPECT_NE(r.out.find("already exists"), std::string::npos) << r.out;
  // host-local keeps one file per reserved address; the failed ADD's DEL removed it.
  EXPECT_EQ(sh("ls " + hl_dir + "/netdl 2>/dev/null | grep -c '^198' || true").out, "0\n");
  // And the success path: host-local's address in plumb's result, released on DEL.
  auto c2 = makeNetns("c2");
  auto ok = add(conf, "c2", c2);
  ASSERT_EQ(ok.rc, 0) << ok.out;
  // host-local's round-robin: .2 was handed out (and given back) by the failed ADD.
  EXPECT_EQ(json::parse(ok.out)["ips"][0]["address"], "198.18.13.3/24");
  EXPECT_EQ(sh("ls " + hl_dir + "/netdl | grep -c '^198'").out, "1\n");
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
  EXPECT_EQ(sh("ls " + hl_dir + "/netdl | grep -c '^198' || true").out, "0\n");
}

// A delegated IPAM plugin that hangs is killed at the deadline ($PLUMB_DELEGATE_TIMEOUT_MS
// here; 2 minutes by default), and the ADD fails with code 11 (try again later), nothing left.
TEST_F(Bridge, AHangingDelegatedIpamIsKilledAndTheAddSaysTryAgain) {
  auto c1 = makeNetns("c1");
  std::string bin = state_.path() + "/bin";
  ASSERT_EQ(sh("mkdir -p " + bin +
               " && printf '#!/bin/sh\\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\\n"
               "exec sleep 30 # plumb-hang-" +
               nsName("x") + "\\n' > " + bin + "/hangipam && chmod +x " + bin + "/hangipam")
                .rc,
            0);
  auto conf = bridgeConf("netto", "br-to", "198.18.15.0/24");
  conf["ipam"] = {{"type", "hangipam"}};
  std::string before = hostSnapshot();
  auto t0 = std::chrono::steady_clock::now();
  auto r = cni("ADD", conf, "c1", c1, "eth0",
               "CNI_PATH=" + bin + ":/usr/lib/cni PLUMB_DELEGATE_TIMEOUT_MS=300");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(cniCode(r), 11) << r.out;
  EXPECT_NE(r.out.find("did not finish within 300 ms and was killed"), std::string::npos) << r.out;
  EXPECT_LT(took, std::chrono::seconds(20)) << "not the plugin's own 30 s";
  EXPECT_EQ(sh("pgrep -f '[p]lumb-hang-" + nsName("x") + "'").rc, 1) << "the plugin is gone";
  EXPECT_EQ(hostSnapshot(), before);
}

// A link a crashed ADD left, stamped with the attachment's key, is replaced by the retry; one
// stamped for another attachment is not touched.
TEST_F(Bridge, AStampedLeftoverOfACrashedAddIsReplacedOnRetry) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("netlo", "br-lo", "198.18.16.0/24");
  auto first = add(conf, "c1", c1);
  ASSERT_EQ(first.rc, 0) << first.out;
  std::string host_if = json::parse(first.out)["interfaces"][0]["name"];
  // The crash: the record and its address gone (as if the ADD died before it committed), the
  // links left, the container's end still unnamed as a crashed run leaves it.
  ASSERT_EQ(sh("sqlite3 " + state_.path() +
               "/state/plumb.db \"DELETE FROM attachments; DELETE "
               "FROM ip_allocs\"")
                .rc,
            0);
  ASSERT_EQ(in(nsName("c1"), "ip link set eth0 down && ip link set eth0 name plx0").rc, 0);
  auto alias = inHost("ip -o link show " + host_if).out;
  ASSERT_NE(alias.find("alias"), std::string::npos) << "the leftover carries the stamp: " << alias;
  auto retry = add(conf, "c1", c1);
  ASSERT_EQ(retry.rc, 0) << retry.out;
  EXPECT_NE(in(nsName("c1"), "ip link show plx0").rc, 0) << "the leftover pair went";
  EXPECT_EQ(in(nsName("c1"), "ip link show eth0").rc, 0);
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  // Another attachment's stamp on a link of that name: refused, left alone.
  auto c2 = makeNetns("c2");
  ASSERT_EQ(inHost("ip link add " + host_if + " type veth peer name plx1 && ip link set " +
                   host_if + " alias 'plumb:someone/else/eth0'")
                .rc,
            0);
  auto other = add(conf, "c1", c2);
  EXPECT_NE(other.rc, 0);
  EXPECT_NE(other.out.find("already exists and is not this attachment's"), std::string::npos)
      << other.out;
  EXPECT_EQ(inHost("ip link show plx1").rc, 0) << "not ours: not deleted";
  EXPECT_EQ(inHost("ip link del " + host_if).rc, 0);  // the test's own, made above
}

// plumb's forwarding rules, flushed by someone (an iptables -F, a firewall reload), are put
// back by the next ADD on the bridge.
TEST_F(Bridge, FlushedForwardingRulesAreRepairedByTheNextAdd) {
  auto outside = makeNetns("out");
  (void)outside;
  ASSERT_EQ(inHost("ip link add up0 type veth peer name up1 && ip link set up1 netns " +
                   nsName("out") + " && ip addr add 198.19.1.2/24 dev up0 && ip link set up0 up")
                .rc,
            0);
  ASSERT_EQ(in(nsName("out"), "ip addr add 198.19.1.1/24 dev up1 && ip link set up1 up").rc, 0);
  ASSERT_EQ(inHost("iptables -P FORWARD DROP").rc, 0);
  auto c1 = makeNetns("c1");
  auto c2 = makeNetns("c2");
  auto conf = bridgeConf("netrp", "br-rp", "198.18.17.0/24");
  conf["isDefaultGateway"] = true;
  conf["ipMasq"] = true;
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);
  ASSERT_TRUE(ping(nsName("c1"), "198.19.1.1")) << "the positive control";
  ASSERT_EQ(inHost("iptables -F FORWARD && nft flush table inet plumb").rc, 0);
  EXPECT_FALSE(ping(nsName("c1"), "198.19.1.1")) << "flushed: the DROP policy stops it";
  ASSERT_EQ(add(conf, "c2", c2).rc, 0);
  EXPECT_TRUE(ping(nsName("c1"), "198.19.1.1")) << "the next ADD put the rules back";
  EXPECT_TRUE(ping(nsName("c2"), "198.19.1.1"));
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
  EXPECT_EQ(del(conf, "c2", c2).rc, 0);
}

// The runtime's choice of address: CNI_ARGS/args.cni.ips, and the ipRanges capability.
TEST_F(Bridge, AddressesFromArgsAndTheIpRangesCapability) {
  auto c1 = makeNetns("c1");
  auto c2 = makeNetns("c2");
  auto conf = bridgeConf("netar", "br-ar", "198.18.18.0/24");
  auto with_args = conf;
  with_args["args"] = {{"cni", {{"ips", {"198.18.18.77"}}}}};
  auto r1 = add(with_args, "c1", c1);
  ASSERT_EQ(r1.rc, 0) << r1.out;
  EXPECT_EQ(json::parse(r1.out)["ips"][0]["address"], "198.18.18.77/24");
  EXPECT_NE(in(nsName("c1"), "ip -o addr show eth0").out.find("198.18.18.77/24"),
            std::string::npos);
  auto taken = add(with_args, "c2", c2);
  EXPECT_NE(taken.rc, 0) << "the same address for another container";
  auto with_ranges = conf;
  with_ranges["runtimeConfig"] = {
      {"ipRanges", {{{{"subnet", "198.18.19.0/24"}, {"rangeStart", "198.18.19.40"}}}}}};
  auto r2 = add(with_ranges, "c2", c2);
  ASSERT_EQ(r2.rc, 0) << r2.out;
  EXPECT_EQ(json::parse(r2.out)["ips"][0]["address"], "198.18.19.40/24")
      << "the runtime's range wins over the configured subnet";
  EXPECT_EQ(del(with_args, "c1", c1).rc, 0);
  EXPECT_EQ(del(with_ranges, "c2", c2).rc, 0);
}

TEST_F(Bridge, ExtendsAPrevResult) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("netpr", "br-pr", "198.18.14.0/24");
  conf["prevResult"] = {
      {"cniVersion", "1.0.0"},
      {"interfaces", {{{"name", "lo"}, {"sandbox", c1}, {"socketPath", "/run/vhost.sock"}}}},
      {"ips", {{{"address", "127.0.0.1/8"}, {"interface", 0}}}},
      {"dns", {{"nameservers", {"198.18.14.53"}}}}};
  auto r = add(conf, "c1", c1);
  ASSERT_EQ(r.rc, 0) << r.out;
  auto res = json::parse(r.out);
  ASSERT_EQ(res["interfaces"].size(), 3u);
  EXPECT_EQ(res["interfaces"][0]["name"], "lo");
  EXPECT_EQ(res["interfaces"][2]["name"], "eth0");
  ASSERT_EQ(res["ips"].size(), 2u);
  EXPECT_EQ(res["ips"][0]["address"], "127.0.0.1/8");
  EXPECT_EQ(res["ips"][1]["interface"], 2) << "our address points at our interface";
  EXPECT_EQ(res["dns"]["nameservers"][0], "198.18.14.53");
  EXPECT_EQ(res["interfaces"][0]["socketPath"], "/run/vhost.sock")
      << "fields plumb does not model pass through";
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
}

TEST_F(Bridge, BadInputChangesNothing) {
  auto c1 = makeNetns("c1");
  auto conf = bridgeConf("netbad", "br-bad", "198.18.11.0/30");
  conf["ipam"]["rangeStart"] = "198.18.11.2";
  conf["ipam"]["rangeEnd"] = "198.18.11.2";
  ASSERT_EQ(add(conf, "c1", c1).rc, 0);  // takes the only address
  auto c2 = makeNetns("c2");
  auto before = hostSnapshot();
  struct Case {
    std::string what;
    std::function<Cmd()> call;
    int code;
  };
  std::vector<Case> cases = {
      {"no free address", [&] { return add(conf, "c2", c2); }, 101},
      {"malformed JSON",
       [&] {
         return sh("printf '{\"cniVersion\":' | ip netns exec " + host() +
                   " env CNI_COMMAND=ADD CNI_CONTAINERID=c2 CNI_NETNS=" + c2 +
                   " CNI_IFNAME=eth0 CNI_PATH=/usr/lib/cni " PLUMB_BIN);
       },
       6},
      {"unknown version",
       [&] {
         auto c = conf;
         c["cniVersion"] = "0.9.9";
         return add(c, "c2", c2);
       },
       1},
      {"missing netns", [&] { return cni("ADD", conf, "c2", ""); }, 4},
      {"netns path that does not exist",
       [&] { return add(conf, "c2", "/run/netns/plumb-nowhere"); }, 3},
      {"container id with /", [&] { return add(conf, "c/2", c2); }, 4},
      {"container id with ..", [&] { return add(conf, "..", c2); }, 4},
      {"network name with /",
       [&] {
         auto c = conf;
         c["name"] = "net/x";
         return add(c, "c2", c2);
       },
       7},
      {"16-character ifname", [&] { return add(conf, "c2", c2, "abcdefghijklmnop"); }, 4},
      {"bad CIDR",
       [&] {
         auto c = conf;
         c["ipam"]["subnet"] = "198.18.11.0/40";
         return add(c, "c2", c2);
       },
       7},
      {"master that does not exist",
       [&] {
         auto c = conf;
         c["master"] = "nosuch0";
         c["ipam"]["subnet"] = "198.18.12.0/24";
         c["ipam"].erase("rangeStart");
         c["ipam"].erase("rangeEnd");
         return add(c, "c2", c2);
       },
       100},
  };
  for (const auto& c : cases) {
    auto r = c.call();
    EXPECT_EQ(r.rc, 1) << c.what << ": " << r.out;
    EXPECT_EQ(cniCode(r), c.code) << c.what << ": " << r.out;
    auto msg = json::parse(r.out, nullptr, false);
    ASSERT_TRUE(msg.is_object()) << c.what;
    EXPECT_EQ(msg["msg"].get<std::string>().find('\n'), std::string::npos)
        << "one line: " << c.what;
    EXPECT_EQ(hostSnapshot(), before) << c.what << " changed the host";
    EXPECT_EQ(in(nsName("c2"), "ip -o link 2>/dev/null | wc -l").out, "1\n")
        << c.what << " changed the container";
  }
  EXPECT_EQ(del(conf, "c1", c1).rc, 0);
}

}  // namespace
}  // namespace plumb::testing
