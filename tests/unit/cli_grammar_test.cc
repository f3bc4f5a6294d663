// pipework's grammar: every form in its README, and the bad input the issue lists.
#include "plugin/cli/grammar.h"

#include <gtest/gtest.h>

namespace plumb::cli {
namespace {

// The command args parse as, which must be a T: parsed as anything else fails the test.
template <typename T>
T parsedAs(const std::vector<std::string>& args) {
  auto c = parseCommand(args);
  EXPECT_TRUE(c.ok()) << (c.ok() ? "" : c.error().message);
  if (!c.ok()) return {};
  EXPECT_TRUE(std::holds_alternative<T>(*c))
      << "parsed as another command (index " << c->index() << ")";
  if (!std::holds_alternative<T>(*c)) return {};
  return std::get<T>(*c);
}

AttachCommand attach(const std::vector<std::string>& args) { return parsedAs<AttachCommand>(args); }

std::string error(const std::vector<std::string>& args) {
  auto c = parseCommand(args);
  return c.ok() ? "(parsed)" : c.error().message;
}

TEST(Grammar, BridgeWithStaticAddress) {
  auto c = attach({"br1", "web1", "198.18.0.5/24"});
  EXPECT_EQ(c.host_if, "br1");
  EXPECT_EQ(c.guest, "web1");
  EXPECT_EQ(c.container_if, "eth1") << "pipework's default";
  EXPECT_EQ(c.address.kind, AddressSpec::Kind::kStatic);
  EXPECT_EQ(c.address.address->str(), "198.18.0.5/24");
  EXPECT_FALSE(c.address.gateway);
  EXPECT_FALSE(c.mac);
  EXPECT_FALSE(c.vlan);
}

TEST(Grammar, GatewayInterfaceNamesMacAndVlan) {
  auto c = attach({"br1", "-i", "eth2", "-l", "vethweb", "web1", "198.18.4.25/20@198.18.4.1",
                   "26:2e:71:98:60:8f"});
  EXPECT_EQ(c.container_if, "eth2");
  EXPECT_EQ(c.local_if, "vethweb");
  EXPECT_EQ(c.address.gateway->str(), "198.18.4.1");
  EXPECT_EQ(c.mac->str(), "26:2e:71:98:60:8f");
  auto v = attach({"ovsbr0", "web1", "198.18.4.25/20@198.18.4.1", "@10"});
  EXPECT_FALSE(v.mac);
  EXPECT_EQ(v.vlan, 10);
  auto both = attach({"ovsbr0", "web1", "198.18.4.26/20", "26:2e:71:98:60:8f@30"});
  EXPECT_EQ(both.vlan, 30);
  EXPECT_TRUE(both.mac);
}

TEST(Grammar, StableMacFromANameIsPipeworks) {
  // pipework: echo "web1" | md5sum -> 66ee606d50..., MAC 02:66:ee:60:6d:50.
  auto c = attach({"br1", "web1", "198.18.0.5/24", "U:web1"});
  EXPECT_EQ(c.mac_name, "web1");
  EXPECT_EQ(c.mac->str(), "02:66:ee:60:6d:50");
  EXPECT_EQ(attach({"br1", "web1", "198.18.0.5/24", "U:web"}).mac->str(), "02:64:d4:20:24:f1");
}

TEST(Grammar, Ipv6AndFamily) {
  auto c = attach({"br1", "-a", "6", "web1", "2001:db8::beef/64@2001:db8::1"});
  EXPECT_EQ(c.family, 6);
  EXPECT_EQ(c.address.address->str(), "2001:db8::beef/64");
  EXPECT_NE(error({"br1", "-a", "4", "web1", "2001:db8::beef/64"}).find("does not match"),
            std::string::npos);
  EXPECT_NE(error({"br1", "web1", "198.18.0.5/24@2001:db8::1"}).find("same family"),
            std::string::npos);
}

TEST(Grammar, DhcpClientsAndOptions) {
  auto c = attach({"eth2", "web1", "dhcp"});
  EXPECT_EQ(c.address.kind, AddressSpec::Kind::kDhcp);
  EXPECT_EQ(c.address.dhcp_client, "dhcp");
  auto u = attach({"eth2", "-f", "web1", "udhcpc:-f -q -x hostname:web1"});
  EXPECT_EQ(u.address.dhcp_client, "udhcpc");
  EXPECT_EQ(u.address.dhcp_options, "-f -q -x hostname:web1");
  EXPECT_TRUE(u.keep_dhcp_client);
  EXPECT_EQ(attach({"eth2", "web1", "dhclient"}).address.dhcp_client, "dhclient");
  EXPECT_EQ(attach({"eth2", "web1", "dhcpcd:-4"}).address.dhcp_options, "-4");
}

TEST(Grammar, NoAddressHostByMacDirectPhysAndMacvlanMode) {
  EXPECT_EQ(attach({"br1", "web1", "0/0"}).address.kind, AddressSpec::Kind::kNone);
  auto m = attach({"mac:02:00:00:00:00:01", "web1", "198.18.0.5/24"});
  EXPECT_TRUE(m.host_if.empty());
  EXPECT_EQ(m.host_mac->str(), "02:00:00:00:00:01");
  auto d = attach({"--direct-phys", "eth1", "web1", "198.18.0.6/24"});
  EXPECT_TRUE(d.direct_phys);
  EXPECT_EQ(d.host_if, "eth1");
  EXPECT_EQ(attach({"eth2", "-m", "private", "web1", "198.18.0.7/24"}).macvlan_mode, "private");
}

TEST(Grammar, RouteRuleTcWaitDel) {
  auto pass = parsedAs<PassCommand>({"route", "web1", "add", "198.19.0.0/16", "via", "198.18.0.1"});
  EXPECT_EQ(pass.what, "route");
  EXPECT_EQ(pass.guest, "web1");
  EXPECT_EQ(pass.args, (std::vector<std::string>{"add", "198.19.0.0/16", "via", "198.18.0.1"}));
  EXPECT_EQ(parsedAs<PassCommand>({"tc", "web1", "qdisc", "show"}).what, "tc");
  EXPECT_EQ(parsedAs<WaitCommand>({"--wait"}).container_if, "eth1");
  EXPECT_EQ(parsedAs<WaitCommand>({"--wait", "-i", "eth2"}).container_if, "eth2");
  auto d = parsedAs<DelCommand>({"del", "web1", "-i", "eth2"});
  EXPECT_EQ(d.guest, "web1");
  EXPECT_EQ(d.container_if, "eth2");
  EXPECT_FALSE(parseCommand({"route", "web1"}).ok());
}

TEST(Grammar, BadInputIsOneClearLine) {
  EXPECT_EQ(error({"br1", "web1", "198.18.0.5"}),
            "the address 198.18.0.5 needs a prefix length: did you mean 198.18.0.5/24?");
  EXPECT_EQ(error({"br1", "web1", "2001:db8::5"}),
            "the address 2001:db8::5 needs a prefix length: did you mean 2001:db8::5/64?");
  EXPECT_EQ(error({"lo", "web1", "198.18.0.5/24"}), "lo cannot be the host interface");
  EXPECT_EQ(error({"br1", "web1", "198.18.0.5/24", "01:00:5e:00:00:01"}),
            "MAC address 01:00:5e:00:00:01 is a multicast address");
  EXPECT_NE(
      error({"br1", "-i", "abcdefghijklmnop", "web1", "198.18.0.5/24"}).find("longer than 15"),
      std::string::npos);
  EXPECT_NE(error({"abcdefghijklmnop", "web1", "198.18.0.5/24"}).find("longer than 15"),
            std::string::npos);
  EXPECT_NE(error({"br1", "web1", "198.18.0.5/24", "@5000"}).find("1 to 4094"), std::string::npos);
  EXPECT_EQ(error({"br1", "-z", "web1", "198.18.0.5/24"}), "unknown option -z");
  EXPECT_NE(error({"br1", "web1"}).find("usage"), std::string::npos);
  EXPECT_NE(error({"br1", "web1", "bogus"}).find("not <ip>/<prefix>"), std::string::npos);
  EXPECT_NE(error({"eth2", "-m", "sideways", "web1", "dhcp"}).find("unknown macvlan mode"),
            std::string::npos);
  for (const auto& args : std::vector<std::vector<std::string>>{{"br1", "web1", "198.18.0.5"},
                                                                {"lo", "web1", "198.18.0.5/24"}}) {
    EXPECT_EQ(error(args).find('\n'), std::string::npos);
  }
}

TEST(Grammar, RouteArguments) {
  auto r = parseRouteArgs({"add", "198.19.0.0/16", "via", "198.18.0.1", "metric", "5"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->action, "add");
  EXPECT_EQ(r->dst.str(), "198.19.0.0/16");
  EXPECT_EQ(r->via->str(), "198.18.0.1");
  EXPECT_EQ(r->metric, 5);
  auto d = parseRouteArgs({"replace", "default", "via", "2001:db8::1", "dev", "eth1"});
  ASSERT_TRUE(d.ok()) << d.error().message;
  EXPECT_EQ(d->dst.str(), "::/0");
  EXPECT_EQ(d->dev, "eth1");
  EXPECT_EQ(parseRouteArgs({"delete", "default"})->action, "del");
  EXPECT_EQ(parseRouteArgs({"add", "198.19.0.0/16", "dev", "eth1"})->via, std::nullopt);
  EXPECT_FALSE(parseRouteArgs({"flush", "default"}).ok());
  EXPECT_FALSE(parseRouteArgs({"add", "198.19.0.0/16"}).ok()) << "needs via or dev";
  EXPECT_FALSE(parseRouteArgs({"add", "198.19.0.0/16", "via", "2001:db8::1"}).ok());
  EXPECT_FALSE(parseRouteArgs({"add", "default", "via", "198.18.0.1", "metric", "x"}).ok());
  EXPECT_FALSE(parseRouteArgs({"add", "default", "via", "198.18.0.1", "proto", "kernel"}).ok());
  EXPECT_EQ(parseRouteArgs({"add", "default", "via", "198.18.0.1"})->table, 254u) << "main";
  EXPECT_EQ(parseRouteArgs({"add", "default", "via", "198.18.0.1", "table", "141"})->table, 141u);
  EXPECT_EQ(parseRouteArgs({"add", "default", "via", "198.18.0.1", "table", "local"})->table, 255u);
  EXPECT_FALSE(parseRouteArgs({"add", "default", "via", "198.18.0.1", "table", "0"}).ok());
  EXPECT_FALSE(parseRouteArgs({"add", "default", "via", "198.18.0.1", "table", "x"}).ok());
}

TEST(Grammar, TellsPipeworkFormsFromSubcommands) {
  EXPECT_TRUE(isPipeworkForm({"br1", "web1", "198.18.0.5/24"}));
  EXPECT_TRUE(isPipeworkForm({"--wait"}));
  EXPECT_TRUE(isPipeworkForm({"route", "web1", "show"}));
  EXPECT_FALSE(isPipeworkForm({"ls"}));
  EXPECT_FALSE(isPipeworkForm({"--help"}));
  EXPECT_FALSE(isPipeworkForm({}));
}

}  // namespace
}  // namespace plumb::cli

namespace plumb::cli {
namespace {

TEST(Grammar, RuleArguments) {
  auto r = parseRuleArgs({"add", "from", "198.18.50.0/24", "to", "198.19.0.0/16", "iif", "eth1",
                          "fwmark", "0x10", "priority", "1000", "table", "100"});
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->family, 4);
  EXPECT_EQ(r->from->str(), "198.18.50.0/24");
  EXPECT_EQ(r->to->str(), "198.19.0.0/16");
  EXPECT_EQ(r->iif, "eth1");
  EXPECT_EQ(*r->fwmark, 16u);
  EXPECT_EQ(*r->priority, 1000u);
  EXPECT_EQ(r->table, 100u);
  auto six = parseRuleArgs({"-6", "add", "from", "all", "lookup", "main"});
  ASSERT_TRUE(six.ok()) << six.error().message;
  EXPECT_EQ(six->family, 6);
  EXPECT_FALSE(six->from);
  EXPECT_EQ(six->table, 254u);
  auto inferred = parseRuleArgs({"del", "from", "fd00::/64"});
  ASSERT_TRUE(inferred.ok());
  EXPECT_EQ(inferred->family, 6);
  EXPECT_EQ(parseRuleArgs({"add", "from", "10.0.0.0/8"}).error().message, "a rule needs table <n>");
  EXPECT_NE(parseRuleArgs({"-4", "add", "from", "fd00::/64", "table", "5"})
                .error()
                .message.find("is not IPv4"),
            std::string::npos);
  EXPECT_NE(parseRuleArgs({"flush"}).error().message.find("is not add or del"), std::string::npos);
  EXPECT_NE(
      parseRuleArgs({"add", "table", "x1"}).error().message.find("table 'x1' is not a number"),
      std::string::npos);
  EXPECT_NE(parseRuleArgs({"add", "nat", "1.2.3.4", "table", "1"})
                .error()
                .message.find("unexpected rule argument 'nat'"),
            std::string::npos);
  EXPECT_NE(parseRuleArgs({"add", "table"}).error().message.find("table needs a value"),
            std::string::npos);
}

}  // namespace
}  // namespace plumb::cli
