// The CNI dispatcher with injected environment and stdin: error codes, versions, encoding.
#include "plugin/cni/cni.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <nlohmann/json.hpp>

#include "base/json.h"
#include "plugin/cni/config.h"
#include "plugin/cni/result_codec.h"
#include "plugin/core/ipam.h"
#include "plugin/core/store.h"
#include "test_dir.h"

namespace plumb::cni {
namespace {

using json = nlohmann::json;

class CniTest : public ::testing::Test {
 protected:
  json conf(const std::string& version = "1.0.0") {
    return {{"cniVersion", version},  {"name", "unit-net"},
            {"type", "plumb"},        {"bridge", "br-unit"},
            {"dataDir", dir_.path()}, {"ipam", {{"type", "plumb"}, {"subnet", "198.18.0.0/24"}}}};
  }
  std::map<std::string, std::string> env(const std::string& command) {
    return {{"CNI_COMMAND", command},
            {"CNI_CONTAINERID", "ctr1"},
            {"CNI_NETNS", "/proc/self/ns/net"},
            {"CNI_IFNAME", "eth0"},
            {"CNI_PATH", "/usr/lib/cni"}};
  }
  Output call(std::map<std::string, std::string> e, const std::string& input) {
    return run({std::move(e), input});
  }
  int code(const Output& o) {
    auto j = json::parse(o.text, nullptr, false);
    if (!j.is_object() || !j.contains("code")) return 0;
    return j["code"].get<int>();
  }
  std::string msg(const Output& o) {
    auto j = json::parse(o.text, nullptr, false);
    return j.is_object() && j.contains("msg") ? j["msg"].get<std::string>() : "";
  }
  size_t allocations() {
    auto store = core::Store::open(dir_.path());
    if (!store.ok()) {
      ADD_FAILURE() << store.error().message;
      return 0;
    }
    auto owners = core::Ipam(**store).owners("unit-net");
    if (!owners.ok()) ADD_FAILURE() << owners.error().message;
    return owners.ok() ? owners->size() : 0;
  }
  testing::TempDir dir_;
};

// Issue 15: the host's own netns (plumb's) as the container's would put the container's
// address and default route on the host; a FIFO as CNI_NETNS used to block the open forever.
TEST_F(CniTest, ANetnsThatIsNoContainersIsRefusedBeforeAnything) {
  auto own = call(env("ADD"), conf().dump());
  EXPECT_EQ(code(own), kInvalidEnvironment) << own.text;
  EXPECT_NE(msg(own).find("is the namespace plumb runs in"), std::string::npos) << own.text;
  std::string fifo = dir_.path() + "/fifo";
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  for (const std::string& path : {fifo, std::string("/dev/null"), dir_.path()}) {
    auto e = env("ADD");
    e["CNI_NETNS"] = path;
    auto out = call(e, conf().dump());
    EXPECT_EQ(code(out), kInvalidEnvironment) << path << ": " << out.text;
    EXPECT_NE(msg(out).find("not a network namespace"), std::string::npos) << out.text;
  }
  EXPECT_EQ(allocations(), 0u);
}

TEST_F(CniTest, BytesThatAreNotUtf8AreRefusedUpFrontAndAnsweredInValidJson) {
  for (const char* key : {"CNI_COMMAND", "CNI_CONTAINERID", "CNI_IFNAME", "CNI_ARGS"}) {
    auto e = env("ADD");
    e[key] = std::string(key) == "CNI_ARGS" ? "\xff=1" : "x\xff";
    auto out = call(e, conf().dump());
    EXPECT_EQ(out.exit_code, 1) << key;
    auto j = json::parse(out.text, nullptr, false);
    ASSERT_TRUE(j.is_object()) << key << ": the answer is valid JSON";
    EXPECT_EQ(j["code"], kInvalidEnvironment) << key << ": " << out.text;
  }
  EXPECT_EQ(allocations(), 0u) << "nothing was allocated";
}

// Issue 15: a prevResult nested 100,000 deep overflowed the stack after the attach was made.
// Refused as malformed before anything is parsed or changed; a shallow one still reads.
TEST_F(CniTest, JsonNestedTooDeepIsRefusedUpFront) {
  std::string deep = conf().dump();
  deep.pop_back();
  deep += ",\"prevResult\":{\"x\":" + std::string(100000, '[') + std::string(100000, ']') + "}}";
  auto out = call(env("ADD"), deep);
  EXPECT_EQ(code(out), kDecodeFailure) << out.text.substr(0, 200);
  EXPECT_NE(msg(out).find("nested deeper than 128 levels"), std::string::npos) << msg(out);
  EXPECT_EQ(allocations(), 0u);
  // Brackets inside strings are not nesting.
  auto c = conf();
  c["args"] = {{"note", std::string(1000, '[')}};
  EXPECT_TRUE(json_read::parse(c.dump()).ok());
}

TEST_F(CniTest, VersionListsEverySupportedVersion) {
  auto out =
      call({{"CNI_COMMAND", "VERSION"}, {"CNI_NETNS", "dummy"}}, R"({"cniVersion":"0.4.0"})");
  EXPECT_EQ(out.exit_code, 0);
  auto j = json::parse(out.text);
  EXPECT_EQ(j["cniVersion"], "0.4.0");
  EXPECT_EQ(j["supportedVersions"], json({"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}));
  auto bare = call({{"CNI_COMMAND", "VERSION"}}, "");
  EXPECT_EQ(json::parse(bare.text)["cniVersion"], "1.1.0");
}

TEST_F(CniTest, EnvironmentErrors) {
  EXPECT_EQ(code(call({}, conf().dump())), kInvalidEnvironment);
  EXPECT_EQ(code(call({{"CNI_COMMAND", "FROB"}}, conf().dump())), kInvalidEnvironment);
  auto e = env("ADD");
  e.erase("CNI_NETNS");
  auto out = call(e, conf().dump());
  EXPECT_EQ(out.exit_code, 1);
  EXPECT_EQ(code(out), kInvalidEnvironment);
  EXPECT_EQ(msg(out), "CNI_NETNS is not set");
  for (const char* bad : {"../etc", "a/b", "..", "-lead"}) {
    auto e2 = env("ADD");
    e2["CNI_CONTAINERID"] = bad;
    EXPECT_EQ(code(call(e2, conf().dump())), kInvalidEnvironment) << bad;
  }
  auto e3 = env("ADD");
  e3["CNI_IFNAME"] = "abcdefghijklmnop";  // 16 characters
  auto long_if = call(e3, conf().dump());
  EXPECT_EQ(code(long_if), kInvalidEnvironment);
  EXPECT_NE(msg(long_if).find("longer than 15"), std::string::npos);
  auto e4 = env("ADD");
  e4["CNI_ARGS"] = "FOO=bar";
  EXPECT_EQ(code(call(e4, conf().dump())), kInvalidEnvironment);
  e4["CNI_ARGS"] = "IgnoreUnknown=1;FOO=bar;MAC=zz";
  EXPECT_EQ(code(call(e4, conf().dump())),
            kInvalidConfig);  // passes env checks, then the MAC is bad
  // Empty entries and a trailing ';' are nothing; an entry without '=' is refused by name.
  e4["CNI_ARGS"] = ";;IgnoreUnknown=1;;MAC=zz;";
  EXPECT_EQ(code(call(e4, conf().dump())), kInvalidConfig);
  e4["CNI_ARGS"] = "IgnoreUnknown=1;K8S_POD_NAME";
  auto no_eq = call(e4, conf().dump());
  EXPECT_EQ(code(no_eq), kInvalidEnvironment);
  EXPECT_EQ(msg(no_eq), "CNI_ARGS entry 'K8S_POD_NAME' is not KEY=VALUE");
  EXPECT_EQ(allocations(), 0u) << "a failed ADD must release what IPAM handed out";
}

TEST_F(CniTest, ConfigErrors) {
  auto malformed = call(env("ADD"), "{\"cniVersion\": ");
  EXPECT_EQ(code(malformed), kDecodeFailure);
  EXPECT_EQ(code(call(env("ADD"), conf("9.9.9").dump())), kIncompatibleVersion);
  EXPECT_EQ(code(call(env("ADD"), conf("").dump())), kIncompatibleVersion);
  EXPECT_EQ(code(call(env("GC"), conf("1.0.0").dump())), kIncompatibleVersion);
  EXPECT_EQ(code(call(env("CHECK"), conf("0.3.1").dump())), kIncompatibleVersion);
  auto c = conf();
  c["name"] = "a/b";
  EXPECT_EQ(code(call(env("ADD"), c.dump())), kInvalidConfig);
  c = conf();
  c["ipam"]["subnet"] = "198.18.0.0/33";
  EXPECT_EQ(code(call(env("ADD"), c.dump())), kInvalidConfig);
  c = conf();
  c["mtu"] = "big";
  auto typed = call(env("ADD"), c.dump());
  EXPECT_EQ(code(typed), kInvalidConfig);
  EXPECT_NE(msg(typed).find("field 'mtu' must be an integer"), std::string::npos) << msg(typed);
  c = conf();
  c["mode"] = "teleport";
  EXPECT_EQ(code(call(env("ADD"), c.dump())), kInvalidConfig);
}

TEST_F(CniTest, MissingOrBogusNetns) {
  auto e = env("ADD");
  e["CNI_NETNS"] = "/run/netns/plumb-no-such-netns";
  auto out = call(e, conf().dump());
  EXPECT_EQ(code(out), kUnknownContainer);
  e["CNI_NETNS"] = "/etc/hostname";  // exists, not a netns
  EXPECT_EQ(code(call(e, conf().dump())), kInvalidEnvironment);
  e["CNI_NETNS"] = "/proc/self/ns/mnt";  // a namespace, not a network one
  EXPECT_EQ(code(call(e, conf().dump())), kInvalidEnvironment);
  EXPECT_EQ(allocations(), 0u);
}

TEST_F(CniTest, SriovFieldsAreReadAsSriovCniWritesThem) {
  auto c = conf();
  c["mode"] = "sriov";
  c.erase("bridge");
  struct Case {
    json patch;
    std::string message;
  };
  for (const auto& [patch, message] : {
           Case{json::object(), "sriov needs a VF's PCI address (deviceID) or a PF"},
           Case{{{"deviceID", "0000:03:02.0"}, {"spoofchk", "yes"}},
                "\"spoofchk\" must be \"on\" or \"off\", not \"yes\""},
           Case{{{"deviceID", "0000:03:02.0"}, {"trust", true}}, "trust"},
           Case{{{"deviceID", "../../etc"}}, "PCI address '../../etc' is not valid"},
           Case{{{"deviceID", "0000:03:02.0"}, {"vlan", 4096}}, "vlan 4096 is out of range 0-4095"},
           Case{{{"deviceID", "0000:03:02.0"}, {"vlanQoS", 3}},
                "vlanQoS and vlanProto need a vlan"},
           Case{{{"deviceID", "0000:03:02.0"}, {"vlan", 5}, {"vlanQoS", 8}}, "out of range 0-7"},
           Case{{{"deviceID", "0000:03:02.0"}, {"vlan", 5}, {"vlanProto", "802.1x"}},
                "vlanProto '802.1x' is not 802.1q or 802.1ad"},
           Case{{{"deviceID", "0000:03:02.0"}, {"link_state", "up"}},
                "link_state 'up' is not auto, enable or disable"},
           Case{{{"deviceID", "0000:03:02.0"}, {"min_tx_rate", 100}, {"max_tx_rate", 10}},
                "min_tx_rate 100 is above max_tx_rate 10"},
           Case{{{"pf", "bad/name"}}, "interface name"},
       }) {
    auto bad = c;
    bad.update(patch);
    auto out = call(env("ADD"), bad.dump());
    EXPECT_EQ(code(out), kInvalidConfig) << out.text;
    EXPECT_NE(msg(out).find(message), std::string::npos) << message << ": " << out.text;
  }
  EXPECT_EQ(allocations(), 0u);
}

TEST_F(CniTest, OvsFieldsAreReadAsOvsCniWritesThem) {
  auto c = conf();
  c["mode"] = "ovs";
  c.erase("bridge");
  struct Case {
    json patch;
    std::string message;
  };
  for (const auto& [patch, message] : {
           Case{json::object(), "ovs mode needs \"bridge\""},
           Case{{{"bridge", "br-a"}, {"vlan", "10"}}, "vlan"},
           Case{{{"bridge", "br-a"}, {"trunk", json::array({{{"id", 1}, {"minID", 2}}})}},
                "trunk[0] needs \"id\", or \"minID\" and \"maxID\""},
           Case{{{"bridge", "br-a"}, {"trunk", json::array({5})}}, "trunk[0] must be an object"},
           Case{{{"bridge", "br-a"}, {"ofport_request", 70000}},
                "ofport_request 70000 is out of range"},
           Case{{{"bridge", "br-a"}, {"interface_type", "internal"}}, "does not fit a veth"},
           Case{{{"bridge", "br-a"}, {"socket_file", "tcp:127.0.0.1:6640"}}, "not a unix socket"},
       }) {
    auto bad = c;
    bad.update(patch);
    auto out = call(env("ADD"), bad.dump());
    EXPECT_EQ(code(out), kInvalidConfig) << out.text;
    EXPECT_NE(msg(out).find(message), std::string::npos) << message << ": " << out.text;
  }
  EXPECT_EQ(allocations(), 0u);
}

// What the resident service's client reads before handing a call over: the state directory
// by parseNetConf's own rule, and what keeps a call in its process.
TEST(CniPlacement, TheStateDirectoryIsTheOneTheCallWouldUse) {
  struct Case {
    json conf;
    std::string dir;
    bool delegated;
  };
  for (const auto& [conf, dir, delegated] : {
           Case{{{"name", "n"}}, "/var/lib/plumb", false},
           Case{{{"dataDir", "/x"}, {"ipam", {{"dataDir", "/y"}}}}, "/x", false},
           Case{{{"ipam", {{"type", "plumb"}, {"dataDir", "/y"}}}}, "/y", false},
           Case{{{"ipam", {{"dataDir", "/y"}}}}, "/y", false},
           // host-local's dataDir is its own: plumb's state stays in the default.
           Case{{{"ipam", {{"type", "host-local"}, {"dataDir", "/y"}}}}, "/var/lib/plumb", true},
       }) {
    auto p = placementOf(conf.dump());
    ASSERT_TRUE(p.ok()) << conf.dump();
    EXPECT_EQ(p->data_dir, dir) << conf.dump();
    EXPECT_EQ(p->delegated_ipam, delegated) << conf.dump();
    json whole = conf;
    whole.update({{"cniVersion", "1.0.0"}, {"name", "n"}, {"type", "plumb"}});
    if (whole.contains("ipam")) whole["ipam"]["subnet"] = "198.18.0.0/24";
    auto full = parseNetConf(whole.dump());
    ASSERT_TRUE(full.ok()) << whole.dump() << ": " << full.error().message;
    EXPECT_EQ(full->data_dir, dir) << conf.dump();
  }
  auto logged = placementOf(R"({"logLevel": "debug", "logFile": "/tmp/l"})");
  ASSERT_TRUE(logged.ok());
  EXPECT_EQ(logged->log_level, "debug");
  EXPECT_EQ(logged->log_file, "/tmp/l");
  EXPECT_FALSE(placementOf("[1]").ok());
  EXPECT_FALSE(placementOf(R"({"dataDir": 5})").ok());
}

TEST_F(CniTest, DelWithoutAnythingRecordedSucceeds) {
  auto e = env("DEL");
  e["CNI_NETNS"] = "";
  auto out = call(e, conf().dump());
  EXPECT_EQ(out.exit_code, 0) << out.text;
  EXPECT_EQ(out.text, "");
}

TEST_F(CniTest, DelReportsAnAddressItCouldNotRelease) {
  auto c = conf();
  c["ipam"] = {{"type", "no-such-ipam-plugin"}};
  auto e = env("DEL");
  e["CNI_NETNS"] = "";
  auto out = call(e, c.dump());
  EXPECT_EQ(out.exit_code, 1) << "the runtime must retry rather than leak the address";
  EXPECT_NE(msg(out).find("failed to release addresses"), std::string::npos) << out.text;
}

TEST_F(CniTest, GcNeedsTheValidList) {
  auto out = call(env("GC"), conf("1.1.0").dump());
  EXPECT_EQ(code(out), kInvalidConfig);
  auto c = conf("1.1.0");
  c["cni.dev/valid-attachments"] = json::array();
  EXPECT_EQ(call(env("GC"), c.dump()).exit_code, 0);
}

TEST(CniResult, EncodesPerVersion) {
  CniResult r;
  r.interfaces = {{"plm1", "02:00:00:00:00:01", "", 1500, ""},
                  {"eth0", "02:00:00:00:00:02", "/run/netns/x", 1500, ""},
                  {"net1", "", "/run/netns/x", 0, "0000:03:02.1"}};
  r.ips = {{*IpPrefix::parse("198.18.0.2/24"), *IpAddr::parse("198.18.0.1"), 1},
           {*IpPrefix::parse("2001:db8::2/64"), std::nullopt, 1}};
  r.routes = {{*IpPrefix::parse("0.0.0.0/0"), *IpAddr::parse("198.18.0.1"), 0, 0}};
  auto legacy = toJson(r, "0.3.1");
  EXPECT_EQ(legacy["cniVersion"], "0.3.1");
  EXPECT_EQ(legacy["ips"][0]["version"], "4");
  EXPECT_EQ(legacy["ips"][1]["version"], "6");
  EXPECT_FALSE(legacy["interfaces"][0].contains("mtu"));
  auto v1 = toJson(r, "1.0.0");
  EXPECT_FALSE(v1["ips"][0].contains("version"));
  EXPECT_EQ(v1["ips"][0]["interface"], 1);
  EXPECT_EQ(v1["routes"][0]["gw"], "198.18.0.1");
  auto v11 = toJson(r, "1.1.0");
  EXPECT_EQ(v11["interfaces"][1]["mtu"], 1500);
  EXPECT_EQ(v11["interfaces"][2]["pciID"], "0000:03:02.1");  // a VF under vfio-pci
  EXPECT_FALSE(v1["interfaces"][2].contains("pciID"));
  // Read back what we wrote, in every version.
  for (const char* v : {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"}) {
    CniResult back;
    ASSERT_TRUE(fromJson(toJson(r, v), back).ok()) << v;
    EXPECT_EQ(back.ips.size(), 2u);
    EXPECT_EQ(back.ips[0].address, r.ips[0].address);
    EXPECT_EQ(back.interfaces[1].sandbox, "/run/netns/x");
  }
}

TEST(CniConfig, InfersModesAndRanges) {
  auto macvlan = parseNetConf(
      R"({"cniVersion":"1.0.0","name":"m","type":"plumb","master":"ens3","mode":"vepa"})");
  ASSERT_TRUE(macvlan.ok());
  EXPECT_EQ(macvlan->mode, "macvlan");
  EXPECT_EQ(macvlan->macvlan_mode, "vepa");
  auto bridge =
      parseNetConf(R"({"cniVersion":"1.0.0","name":"b","type":"plumb","isDefaultGateway":true,
      "ipam":{"ranges":[[{"subnet":"198.18.0.0/24","rangeStart":"198.18.0.10"}],[{"subnet":"2001:db8::/64"}]]}})");
  ASSERT_TRUE(bridge.ok()) << bridge.error().message;
  EXPECT_EQ(bridge->mode, "bridge");
  EXPECT_TRUE(bridge->is_gateway);
  ASSERT_EQ(bridge->ipam.ranges.size(), 2u);
  EXPECT_EQ(bridge->ipam.ranges[0][0].start->str(), "198.18.0.10");
  EXPECT_EQ(bridge->ipam.ranges[0][0].gateway->str(), "198.18.0.1");
  auto pass = parseNetConf(R"({"cniVersion":"1.0.0","name":"p","type":"plumb","device":"ens4"})");
  EXPECT_EQ(pass->mode, "passthrough");
  auto versions =
      parseNetConf(R"({"cniVersions":["0.4.0","1.1.0","9.0.0"],"name":"v","type":"plumb"})");
  EXPECT_EQ(versions->cni_version, "1.1.0");
  auto mixed = parseNetConf(R"({"cniVersion":"1.0.0","name":"x","type":"plumb",
      "ipam":{"ranges":[[{"subnet":"198.18.0.0/24"},{"subnet":"2001:db8::/64"}]]}})");
  EXPECT_FALSE(mixed.ok());
}

}  // namespace
}  // namespace plumb::cni
