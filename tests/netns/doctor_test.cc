// `plumb doctor [--fix]` (plugin/core/doctor.h): what the store and the kernel disagree on,
// one line each; --fix removes what belongs to no attachment and carries plumb's mark, and
// nothing else: a live attachment, a link, rule or process plumb did not make stay as they were.
#include "harness.h"

namespace plumb::testing {
namespace {

class Doctor : public NetnsTest {
 protected:
  Cmd plumb(const std::string& args) {
    return inHost(std::string(PLUMB_BIN) + " --state-dir " + state_.path() + "/state " + args);
  }
  static bool alive(const std::string& pid) { return running(std::stoi(pid)); }
  Cmd sql(const std::string& statement) {
    return sh("sqlite3 " + shq(state_.path() + "/state/plumb.db") + " " + shq(statement));
  }
  json conf() {
    json c = bridgeConf("dnet", "dbr0", "198.18.70.0/24");
    c["ipMasq"] = true;
    return c;
  }
};

TEST_F(Doctor, AHealthyHostHasNoDifferences) {
  auto c0 = makeNetns("c0");
  ASSERT_EQ(add(conf(), "c0", c0).rc, 0);
  ASSERT_EQ(plumb("brcli0 " + nsName("c0") + " 198.18.71.2/24").rc, 0);
  // A network name too long for nft's comments: its masquerade's tag keeps its start and a
  // hash, and is still known for its own.
  json long_conf = bridgeConf(std::string(110, 'n'), "dbr1", "198.18.72.0/24");
  long_conf["ipMasq"] = true;
  ASSERT_EQ(cni("ADD", long_conf, "c0", c0, "eth2").rc, 0);
  ASSERT_NE(inHost("nft list chain inet plumb postrouting").out.find("~"), std::string::npos);
  const std::string before = hostSnapshot();
  auto r = plumb("doctor");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(r.out, "no differences: the store and the kernel agree\n");
  auto fixed = plumb("doctor --fix --json");
  EXPECT_EQ(fixed.rc, 0) << fixed.out;
  auto j = json::parse(fixed.out, nullptr, false);
  ASSERT_TRUE(j.is_object()) << fixed.out;
  EXPECT_TRUE(j["clean"].get<bool>());
  EXPECT_TRUE(j["findings"].empty());
  EXPECT_EQ(hostSnapshot(), before);
  EXPECT_TRUE(ping(nsName("c0"), "198.18.70.1"));
  ASSERT_EQ(del(conf(), "c0", c0).rc, 0);
  ASSERT_EQ(cni("DEL", long_conf, "c0", c0, "eth2").rc, 0);
  ASSERT_EQ(plumb("del " + nsName("c0")).rc, 0);
  ASSERT_EQ(inHost("ip link del brcli0").rc, 0);
}

TEST_F(Doctor, FindsWhatNoRecordAccountsForAndFixesOnlyThat) {
  auto c0 = makeNetns("c0");
  auto c1 = makeNetns("c1");
  auto c2 = makeNetns("c2");
  ASSERT_EQ(add(conf(), "c0", c0).rc, 0);  // live: must not change
  ASSERT_EQ(add(conf(), "c1", c1).rc, 0);
  ASSERT_EQ(add(conf(), "c2", c2).rc, 0);
  // c1's netns deleted without DEL: its record is stale (its veth went with the netns).
  ASSERT_EQ(sh("ip netns del " + nsName("c1")).rc, 0);
  // c2's records lost: its host veths, its addresses and the masquerade of its second network
  // (whose name is too long for nft's comments: the tag holds its start and a hash) are
  // plumb's but no record's.
  json long_conf = bridgeConf(std::string(110, 'n'), "dbr1", "198.18.72.0/24");
  long_conf["ipMasq"] = true;
  ASSERT_EQ(cni("ADD", long_conf, "c2", c2, "eth2").rc, 0);
  ASSERT_EQ(sql("DELETE FROM attachments WHERE container_id='c2'").rc, 0);
  // Left behind by hand, as a crash would: a stamped veth, a masquerade of a network no
  // longer there, accepts for a bridge that is gone, a DHCP client nobody records.
  ASSERT_EQ(inHost("ip link add plmghost type veth peer name plmghost-p && ip link set plmghost "
                   "alias plumb:dnet/ghost/eth0")
                .rc,
            0);
  // Stamped for a network this store does not know (another dataDir's): reported, not removed.
  ASSERT_EQ(inHost("ip link add plmother type veth peer name plmother-p && ip link set plmother "
                   "alias plumb:other/x/eth0")
                .rc,
            0);
  ASSERT_EQ(inHost("nft add rule inet plumb postrouting ip saddr 198.18.99.0/24 masquerade "
                   "comment '\"plumb:masq:gone:198.18.99.0/24\"' && nft add rule inet plumb "
                   "forward iifname nobr accept comment '\"plumb:fwd:nobr\"'")
                .rc,
            0);
  auto client = inHost(
      "PLUMB_DHCP_HOOK=udhcpc PLUMB_DHCP_KEY=dnet/ghost/eth1 PLUMB_DHCP_STORE=" + state_.path() +
      "/state/plumb.db setsid bash -c 'exec -a udhcpc sleep 600' >/dev/null 2>&1 "
      "& echo $!");
  // Another store's client, under a network name this store knows too: not this doctor's.
  auto other = inHost(
      "PLUMB_DHCP_HOOK=udhcpc PLUMB_DHCP_KEY=dnet/elsewhere/eth1 PLUMB_DHCP_STORE=/elsewhere/"
      "plumb.db setsid bash -c 'exec -a udhcpc sleep 600' >/dev/null 2>&1 & echo $!");
  const std::string other_pid = other.out.substr(0, other.out.find('\n'));
  ASSERT_FALSE(client.out.empty());
  const std::string pid = client.out.substr(0, client.out.find('\n'));
  // Not plumb's, so never touched: an unstamped veth, an untagged rule, a like-named process.
  ASSERT_EQ(inHost("ip link add mine type veth peer name mine-p && nft add table inet mine && nft "
                   "add chain inet mine c '{ type filter hook forward priority 0; }' && nft add "
                   "rule inet mine c iifname nobr accept comment '\"plumb:fwd:nobr2\"'")
                .rc,
            0);

  auto r = plumb("doctor");
  EXPECT_EQ(r.rc, 1) << r.out;
  auto has = [&](const std::string& text) { return r.out.find(text) != std::string::npos; };
  EXPECT_TRUE(has("stale-record dnet/c1/eth0: its netns " + c1 + " is gone [--fix removes it]"))
      << r.out;
  EXPECT_TRUE(has("orphan-link plmghost: a veth plumb made for dnet/ghost/eth0")) << r.out;
  EXPECT_TRUE(
      has("orphan-link plmother: a veth plumb made for other/x/eth0, which has no "
          "record; no network other is in this store (another state dir's or "
          "dataDir's?): not removed\n"))
      << r.out;
  EXPECT_TRUE(has(": a veth plumb made for dnet/c2/eth0, which has no record")) << r.out;
  EXPECT_TRUE(has("orphan-address 198.18.70.")) << r.out;
  EXPECT_TRUE(
      has("orphan-rule plumb:masq:gone:198.18.99.0/24: masquerade for network gone, "
          "which has no attachment here; no network gone is in this store"))
      << r.out;
  EXPECT_TRUE(has("orphan-rule plumb:fwd:nobr: forwarding accepts for bridge nobr")) << r.out;
  EXPECT_TRUE(has("orphan-rule plumb:masq:nnnnn")) << r.out;
  EXPECT_TRUE(has(": a veth plumb made for " + std::string(110, 'n') + "/c2/eth2")) << r.out;
  EXPECT_TRUE(has("orphan-dhcp-client udhcpc pid " + pid +
                  ": a DHCP client plumb started for dnet/ghost/eth1, which has no record"))
      << r.out;
  EXPECT_FALSE(has("c0")) << r.out;
  EXPECT_FALSE(has("mine")) << r.out;
  EXPECT_FALSE(has("nobr2")) << r.out;
  EXPECT_FALSE(has("pid " + other_pid)) << r.out;
  // Reporting changed nothing.
  EXPECT_TRUE(alive(pid));
  EXPECT_EQ(inHost("ip link show plmghost").rc, 0);

  auto fixed = plumb("doctor --fix");
  EXPECT_EQ(fixed.rc, 1) << "another store's are left: " << fixed.out;
  EXPECT_EQ(fixed.out.find("not fixed"), std::string::npos) << fixed.out;
  auto again = plumb("doctor");
  EXPECT_EQ(again.rc, 1) << again.out;
  EXPECT_EQ(again.out,
            "orphan-link plmother: a veth plumb made for other/x/eth0, which has no record; no "
            "network other is in this store (another state dir's or dataDir's?): not removed\n"
            "orphan-rule plumb:masq:gone:198.18.99.0/24: masquerade for network gone, which has "
            "no attachment here; no network gone is in this store (another state dir's or "
            "dataDir's?): not removed\n"
            "2 differences\n");
  EXPECT_EQ(inHost("ip link show plmother").rc, 0);
  // Once removed by hand, nothing is left to say.
  ASSERT_EQ(inHost("ip link del plmother && nft -a list chain inet plumb postrouting | grep "
                   "'plumb:masq:gone' | sed -E 's/.*handle ([0-9]+).*/\\1/' | xargs -I{} nft "
                   "delete rule inet plumb postrouting handle {}")
                .rc,
            0);
  EXPECT_EQ(plumb("doctor").out, "no differences: the store and the kernel agree\n");

  EXPECT_NE(inHost("ip link show plmghost").rc, 0);
  EXPECT_FALSE(alive(pid));
  EXPECT_TRUE(alive(other_pid)) << "another store's client stays";
  sh("kill " + other_pid);
  EXPECT_EQ(inHost("ip link show mine").rc, 0);
  EXPECT_EQ(inHost("nft list table inet mine").out.find("nobr2") != std::string::npos, true);
  auto rules = inHost("nft list table inet plumb").out;
  EXPECT_EQ(rules.find("198.18.99.0"), std::string::npos) << rules;
  EXPECT_EQ(rules.find("nobr\""), std::string::npos) << rules;
  EXPECT_NE(rules.find("plumb:masq:dnet:198.18.70.0/24"), std::string::npos) << rules;
  EXPECT_EQ(rules.find("198.18.72.0"), std::string::npos) << rules;
  // c0 as it was; c1's and c2's addresses free again; the store holds c0 alone.
  EXPECT_TRUE(ping(nsName("c0"), "198.18.70.1"));
  EXPECT_EQ(sql("SELECT container_id FROM attachments").out, "c0\n");
  EXPECT_EQ(sql("SELECT container_id FROM ip_allocs").out, "c0\n");

  ASSERT_EQ(del(conf(), "c0", c0).rc, 0);
  sh("kill " + pid + " 2>/dev/null");
  EXPECT_EQ(inHost("nft list table inet mine >/dev/null && nft delete table inet mine && ip link "
                   "del mine")
                .rc,
            0);
}

}  // namespace
}  // namespace plumb::testing
