// The Docker front end's handlers fed the requests a real dockerd sent (tests/fixtures/
// docker-remote). No root: everything here stays in the store or only reads the kernel; the
// netns tier replays the same session against a daemon that changes the kernel.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "../fixtures/fixtures.h"
#include "base/names.h"
#include "plugin/core/ipam.h"
#include "plugin/docker/driver.h"
#include "plugin/docker/http.h"
#include "plugin/docker/labels.h"
#include "plugin/docker/network.h"
#include "store_dump.h"
#include "test_dir.h"

namespace plumb::docker {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

using plumb::testing::Fixture;
std::vector<Fixture> fixtures(const std::string& dir) {
  return plumb::testing::dockerFixtures(dir);
}

class DockerDriverTest : public ::testing::Test {
 protected:
  DockerDriverTest() : driver_(config()) {}
  DriverConfig config() {
    DriverConfig c;
    c.state_dir = dir_.path();
    // Where the recorded session's pool came from, so the addresses come out the same.
    c.default_pools = {{*IpPrefix::parse("198.18.6.0/24"), 24}};
    return c;
  }
  // One call; the reply's status and body.
  std::pair<int, json> call(const std::string& method, const json& request) {
    auto reply = driver_.handle("POST", "/" + method, request.is_null() ? "" : request.dump());
    return {reply.status, json::parse(reply.body)};
  }
  // Everything the store holds, every table and column, for "bad input changes nothing".
  // (IPAM's round-robin cursor and its list of addresses once given back left out: both move
  // on by design when an address is released, and hold nothing.)
  std::string storeDump() {
    return plumb::testing::storeDumpOf(dir_.path() + "/plumb.db", {"ip_cursor", "ip_released"});
  }

  plumb::testing::TempDir dir_;
  Driver driver_;
};

TEST_F(DockerDriverTest, FirstContactAnswersWhatDockerdExpects) {
  for (const auto& f : fixtures("first-contact")) {
    if (f.method == "NetworkDriver.CreateNetwork") continue;  // needs a bridge: netns tier
    auto [status, body] = call(f.method, f.request);
    EXPECT_EQ(status, 200) << f.file << ": " << body;
    if (f.method == "Plugin.Activate") {
      EXPECT_EQ(body["Implements"], json({"NetworkDriver", "IpamDriver"}));
    } else if (f.method == "NetworkDriver.GetCapabilities") {
      EXPECT_EQ(body["Scope"], "local");
      EXPECT_EQ(body["ConnectivityScope"], "local");
    } else if (f.method == "IpamDriver.GetCapabilities") {
      EXPECT_EQ(body["RequiresMACAddress"], true);
    } else {
      EXPECT_TRUE(body["LocalDefaultAddressSpace"].is_string()) << body;
      EXPECT_TRUE(body["GlobalDefaultAddressSpace"].is_string()) << body;
    }
  }
}

TEST_F(DockerDriverTest, MetricsCountEveryCallInItsHistogram) {
  for (int i = 0; i < 3; ++i) EXPECT_EQ(call("NetworkDriver.GetCapabilities", nullptr).first, 200);
  EXPECT_EQ(call("NetworkDriver.Join", json{{"NetworkID", "nosuch"}}).first, 500);
  std::string text = driver_.metrics();
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("# TYPE plumb_docker_call_duration_seconds histogram")) << text;
  EXPECT_TRUE(
      has(R"(plumb_docker_call_duration_seconds_count{call="NetworkDriver.GetCapabilities"} 3)"))
      << text;
  EXPECT_TRUE(has(
      R"(plumb_docker_call_duration_seconds_bucket{call="NetworkDriver.GetCapabilities",le="+Inf"} 3)"))
      << text;
  EXPECT_TRUE(has(R"(plumb_docker_call_errors_total{call="NetworkDriver.GetCapabilities"} 0)"))
      << text;
  EXPECT_TRUE(has(R"(plumb_docker_call_errors_total{call="NetworkDriver.Join"} 1)")) << text;
}

TEST_F(DockerDriverTest, EveryRecordedNetworkAndEndpointRequestParses) {
  int networks = 0, endpoints = 0, ports = 0;
  for (const auto& dir : {"first-contact", "run-latest"}) {
    for (const auto& f : fixtures(dir)) {
      if (f.method == "NetworkDriver.CreateNetwork") {
        auto n = parseCreateNetwork(f.request);
        ASSERT_TRUE(n.ok()) << f.file << ": " << n.error().message;
        EXPECT_EQ(n->id, f.request["NetworkID"]);
        EXPECT_EQ(n->mode, "bridge");
        ASSERT_EQ(n->v4.size(), 1u) << f.file;
        EXPECT_EQ(n->v4[0].pool.str(), f.request["IPv4Data"][0]["Pool"]);
        std::string gw = f.request["IPv4Data"][0]["Gateway"];
        EXPECT_EQ(n->v4[0].gateway->str(), gw.substr(0, gw.find('/')));
        EXPECT_EQ(n->bridge, "pbr-" + n->id.substr(0, 11));
        EXPECT_TRUE(n->masquerade);
        EXPECT_TRUE(n->routes.empty());
        ++networks;
      } else if (f.method == "NetworkDriver.CreateEndpoint") {
        auto e = parseCreateEndpoint(f.request);
        ASSERT_TRUE(e.ok()) << f.file << ": " << e.error().message;
        EXPECT_EQ(e->address->str(), f.request["Interface"]["Address"]);
        EXPECT_EQ(e->ports.size(), f.request["Options"]["com.docker.network.portmap"].size());
        for (const auto& p : e->ports) {
          EXPECT_EQ(p.container_ip, e->address->addr());
          EXPECT_EQ(p.proto, "tcp");
          ++ports;
        }
        ++endpoints;
      } else if (f.method.rfind("NetworkDriver.", 0) == 0 && f.request.contains("EndpointID")) {
        EXPECT_TRUE(plumb::validateId("EndpointID", f.request["EndpointID"]).ok()) << f.file;
        EXPECT_TRUE(plumb::validateId("NetworkID", f.request["NetworkID"]).ok()) << f.file;
      }
    }
  }
  EXPECT_EQ(networks, 5);
  EXPECT_EQ(endpoints, 6);
  EXPECT_EQ(ports, 2);  // 18080 -> 80 twice: once on CreateEndpoint in each recorded run
}

TEST(DockerNetworkConfig, OptionsParseAndSurviveTheStore) {
  json req = {{"NetworkID", "abc123"},
              {"Options",
               {{"com.docker.network.enable_ipv6", true},
                {"com.docker.network.internal", true},
                {"com.docker.network.generic",
                 {{"plumb.bridge", "br-x"},
                  {"plumb.mtu", "9000"},
                  {"plumb.routes", "10.50.0.0/16,fd00:50::/48"},
                  {"plumb.ipv6_forwarding", "false"},
                  {"com.docker.network.bridge.name", "ignored"}}}}},
              {"IPv4Data", {{{"Pool", "198.18.40.0/24"}, {"Gateway", "198.18.40.1/24"}}}},
              {"IPv6Data", {{{"Pool", "fd00:40::/64"}, {"Gateway", "fd00:40::1/64"}}}}};
  auto n = parseCreateNetwork(req);
  ASSERT_TRUE(n.ok()) << n.error().message;
  EXPECT_EQ(n->bridge, "br-x");
  EXPECT_EQ(n->mtu, 9000);
  EXPECT_TRUE(n->internal);
  EXPECT_FALSE(n->masquerade) << "--internal never masquerades";
  EXPECT_TRUE(n->ipv6);
  EXPECT_FALSE(n->ipv6_forwarding);
  ASSERT_EQ(n->routes.size(), 2u);
  EXPECT_EQ(n->routes[1].str(), "fd00:50::/48");
  auto back = NetworkConfig::fromJson(n->toJson());
  ASSERT_TRUE(back.ok()) << back.error().message;
  EXPECT_EQ(back->toJson(), n->toJson());
  EXPECT_FALSE(back->ipv6_forwarding);
  // An OVS network: bridge, tag and socket survive too; its options need its mode.
  json ovs = {{"NetworkID", "ovs1"},
              {"Options",
               {{"com.docker.network.generic",
                 {{"plumb.mode", "ovs"},
                  {"plumb.bridge", "br-int"},
                  {"plumb.vlan", "100"},
                  {"plumb.ovsdb", "unix:/run/ovs/db.sock"}}}}}};
  auto o = parseCreateNetwork(ovs);
  ASSERT_TRUE(o.ok()) << o.error().message;
  auto o_back = NetworkConfig::fromJson(o->toJson());
  ASSERT_TRUE(o_back.ok());
  EXPECT_EQ(o_back->vlan, 100);
  EXPECT_EQ(o_back->ovsdb, "unix:/run/ovs/db.sock");
  EXPECT_FALSE(o_back->masquerade);
  ovs["Options"]["com.docker.network.generic"]["plumb.vlan"] = "4096";
  EXPECT_FALSE(parseCreateNetwork(ovs).ok());
  ovs["Options"]["com.docker.network.generic"]["plumb.vlan"] = "10";
  ovs["Options"]["com.docker.network.generic"]["plumb.mode"] = "bridge";
  auto wrong = parseCreateNetwork(ovs);
  ASSERT_FALSE(wrong.ok());
  EXPECT_NE(wrong.error().message.find("needs plumb.mode=ovs"), std::string::npos)
      << wrong.error().message;
  // An SR-IOV network: the PF and every VF setting survive the store.
  json vf = {{"NetworkID", "vf1"},
             {"Options",
              {{"com.docker.network.generic",
                {{"plumb.mode", "sriov"},
                 {"plumb.pf", "pf0"},
                 {"plumb.vlan", "100"},
                 {"plumb.vlan_qos", "2"},
                 {"plumb.vlan_proto", "802.1ad"},
                 {"plumb.spoofchk", "off"},
                 {"plumb.trust", "on"},
                 {"plumb.link_state", "enable"},
                 {"plumb.min_tx_rate", "10"},
                 {"plumb.max_tx_rate", "100"}}}}}};
  auto v = parseCreateNetwork(vf);
  ASSERT_TRUE(v.ok()) << v.error().message;
  auto v_back = NetworkConfig::fromJson(v->toJson());
  ASSERT_TRUE(v_back.ok());
  EXPECT_EQ(v_back->toJson(), v->toJson());
  EXPECT_EQ(v_back->pf, "pf0");
  EXPECT_EQ(v_back->vf.spoofchk, false);
  EXPECT_EQ(v_back->vf.trust, true);
  EXPECT_EQ(v_back->vf.max_tx_rate, 100);
  vf["Options"]["com.docker.network.generic"].erase("plumb.pf");
  auto no_pf = parseCreateNetwork(vf);
  ASSERT_FALSE(no_pf.ok());
  EXPECT_NE(no_pf.error().message.find("plumb.mode=sriov needs plumb.pf"), std::string::npos);
  vf["Options"]["com.docker.network.generic"]["plumb.pf"] = "pf0";
  vf["Options"]["com.docker.network.generic"]["plumb.mode"] = "bridge";
  vf["Options"]["com.docker.network.generic"].erase("plumb.vlan");
  auto vf_wrong = parseCreateNetwork(vf);
  ASSERT_FALSE(vf_wrong.ok());
  EXPECT_NE(vf_wrong.error().message.find("need plumb.mode=sriov"), std::string::npos)
      << vf_wrong.error().message;
  req["Options"]["com.docker.network.generic"] = {{"plumb.masquerade", "true"}};
  auto contradiction = parseCreateNetwork(req);
  ASSERT_FALSE(contradiction.ok());
  EXPECT_NE(contradiction.error().message.find("--internal network cannot masquerade"),
            std::string::npos);
}

TEST_F(DockerDriverTest, IpamReplayGivesTheRecordedAddressesAndReleasesThemAll) {
  std::map<std::string, std::string> pool_ids;  // the recorded driver's ids -> plumb's
  int calls = 0;
  for (const auto& f : fixtures("run-latest")) {
    if (f.method.rfind("IpamDriver.", 0) != 0) continue;
    json req = f.request;
    if (req.contains("PoolID")) {
      ASSERT_TRUE(pool_ids.count(req["PoolID"])) << f.file;
      req["PoolID"] = pool_ids[req["PoolID"]];
    }
    auto [status, body] = call(f.method, req);
    ASSERT_EQ(status, 200) << f.file;
    ASSERT_FALSE(body.contains("Error")) << f.file << ": " << body;
    if (f.method == "IpamDriver.RequestPool") {
      EXPECT_EQ(body["Pool"], f.response["Pool"]) << f.file;
      pool_ids[f.response["PoolID"]] = body["PoolID"];
    } else if (f.method == "IpamDriver.RequestAddress") {
      EXPECT_EQ(body["Address"], f.response["Address"]) << f.file;
      // The control for the check at the end: while held, the address is in the store.
      std::string held = body.value("Address", std::string());
      held = held.substr(0, held.find('/'));
      EXPECT_NE(storeDump().find(held), std::string::npos) << held << ": " << storeDump();
    }
    ++calls;
  }
  EXPECT_EQ(calls, 6);
  auto store = core::Store::open(dir_.path());
  core::Ipam ipam(**store);
  EXPECT_TRUE(ipam.listPools()->empty());
  EXPECT_EQ(storeDump().find("198.18.6"), std::string::npos) << storeDump();
}

TEST_F(DockerDriverTest, IpamHonoursRequestedAddressesAndRefusesOverlaps) {
  auto [s1, pool] = call("IpamDriver.RequestPool", {{"AddressSpace", "plumb-local"},
                                                    {"Pool", "198.18.7.0/24"},
                                                    {"SubPool", "198.18.7.128/25"},
                                                    {"V6", false}});
  ASSERT_EQ(pool["PoolID"], "198.18.7.0/24") << pool;
  std::string id = pool["PoolID"];
  auto [s2, gw] = call("IpamDriver.RequestAddress",
                       {{"PoolID", id},
                        {"Address", ""},
                        {"Options", {{"RequestAddressType", "com.docker.network.gateway"}}}});
  EXPECT_EQ(gw["Address"], "198.18.7.1/24");  // the pool's first, not the sub-pool's
  auto [s3, any] = call("IpamDriver.RequestAddress", {{"PoolID", id}, {"Address", ""}});
  EXPECT_EQ(any["Address"], "198.18.7.129/24");  // from the sub-pool (--ip-range)
  auto [s4, wanted] =
      call("IpamDriver.RequestAddress", {{"PoolID", id}, {"Address", "198.18.7.9"}});
  EXPECT_EQ(wanted["Address"], "198.18.7.9/24");
  std::string before = storeDump();
  auto [s5, taken] = call("IpamDriver.RequestAddress", {{"PoolID", id}, {"Address", "198.18.7.9"}});
  EXPECT_EQ(s5, 200);
  EXPECT_NE(taken["Error"].get<std::string>().find("already in use"), std::string::npos) << taken;
  auto [s6, overlap] =
      call("IpamDriver.RequestPool", {{"AddressSpace", "plumb-local"}, {"Pool", "198.18.7.64/26"}});
  EXPECT_NE(overlap["Error"].get<std::string>().find("overlaps pool 198.18.7.0/24"),
            std::string::npos)
      << overlap;
  auto [s7, v6] = call("IpamDriver.RequestPool",
                       {{"AddressSpace", "plumb-local"}, {"Pool", "198.18.8.0/24"}, {"V6", true}});
  EXPECT_NE(v6["Error"].get<std::string>().find("not an IPv6 subnet"), std::string::npos) << v6;
  auto [s8, unknown] =
      call("IpamDriver.ReleaseAddress", {{"PoolID", "nosuch"}, {"Address", "1.2.3.4"}});
  EXPECT_EQ(unknown["Error"], "pool nosuch is unknown");
  EXPECT_EQ(storeDump(), before);
}

// A macvlan network on lo: creating it only reads the kernel, so the endpoint calls that
// stay in the store run here with the recorded requests.
TEST_F(DockerDriverTest, EndpointCallsOnARecordedSession) {
  auto all = fixtures("run-latest");
  json create = all[0].request;  // 001: CreateNetwork 198.18.5.0/24
  ASSERT_EQ(all[0].method, "NetworkDriver.CreateNetwork");
  create["Options"]["com.docker.network.generic"] = {{"plumb.mode", "macvlan"},
                                                     {"plumb.parent", "lo"}};
  auto [status, body] = call("NetworkDriver.CreateNetwork", create);
  ASSERT_EQ(status, 200) << body;
  // The same request again (dockerd retrying) is success; another config under the id is not.
  EXPECT_EQ(call("NetworkDriver.CreateNetwork", create).first, 200);
  json other = create;
  other["Options"]["com.docker.network.generic"]["plumb.macvlan_mode"] = "vepa";
  EXPECT_EQ(call("NetworkDriver.CreateNetwork", other).first, 500);

  for (const auto& f : all) {
    if (f.request.is_null() || f.request.value("NetworkID", "") != create["NetworkID"]) continue;
    if (f.method == "NetworkDriver.CreateEndpoint") {
      auto [s, b] = call(f.method, f.request);
      ASSERT_EQ(s, 200) << f.file << ": " << b;
      // Docker left the MAC empty: plumb fills it in, as Docker's bridge driver would.
      EXPECT_EQ(b["Interface"]["MacAddress"], f.response["Interface"]["MacAddress"]) << f.file;
      EXPECT_FALSE(b["Interface"].contains("Address")) << "never change what Docker supplied";
    } else if (f.method == "NetworkDriver.EndpointOperInfo") {
      auto [s, b] = call(f.method, f.request);
      ASSERT_EQ(s, 200) << f.file << ": " << b;
      EXPECT_EQ(b["Value"]["plumb.mode"], "macvlan");
      EXPECT_EQ(b["Value"]["plumb.via"], "lo");
      EXPECT_EQ(b["Value"]["com.docker.network.endpoint.macaddress"],
                f.response["Value"]["ha.mac"]);
    } else if (f.method == "NetworkDriver.Leave") {
      auto [s, b] = call(f.method, f.request);
      EXPECT_EQ(s, 200) << f.file << ": " << b;
    }
  }
  // A MAC Docker supplied is left alone (028's request, moved onto this network).
  json with_mac = all[27].request;
  ASSERT_EQ(all[27].method, "NetworkDriver.CreateEndpoint");
  with_mac["NetworkID"] = create["NetworkID"];
  auto [s, b] = call("NetworkDriver.CreateEndpoint", with_mac);
  ASSERT_EQ(s, 200) << b;
  EXPECT_TRUE(b["Interface"].empty()) << b;
  // Ports on a macvlan network are not published through the host (as Docker's macvlan).
  json program = all[28].request;  // 029: Join, whose Options carry the portmap
  program.erase("SandboxKey");
  program["NetworkID"] = create["NetworkID"];
  auto [ps, pb] = call("NetworkDriver.ProgramExternalConnectivity", program);
  EXPECT_EQ(ps, 200) << pb;
  EXPECT_TRUE(pb.empty()) << pb;
}

TEST_F(DockerDriverTest, BadInputIsAClearErrorAndChangesNothing) {
  std::string before = storeDump();
  auto reply = driver_.handle("POST", "/NetworkDriver.CreateNetwork", "{\"NetworkID\":");
  EXPECT_EQ(reply.status, 400);
  EXPECT_NE(json::parse(reply.body)["Err"].get<std::string>().find("malformed JSON"),
            std::string::npos);
  reply = driver_.handle("GET", "/Plugin.Activate", "");
  EXPECT_EQ(reply.status, 405);
  reply = driver_.handle("POST", "/NetworkDriver.Frobnicate", "{}");
  EXPECT_EQ(reply.status, 404);
  EXPECT_NE(reply.body.find("does not implement NetworkDriver.Frobnicate"), std::string::npos);

  json create = fixtures("run-latest")[0].request;
  create["Options"]["com.docker.network.generic"] = {{"plumb.bogus", "1"}};
  auto [s1, b1] = call("NetworkDriver.CreateNetwork", create);
  EXPECT_EQ(s1, 500);
  EXPECT_NE(b1["Err"].get<std::string>().find("unknown option plumb.bogus"), std::string::npos)
      << b1;
  create["Options"]["com.docker.network.generic"] = {{"plumb.mode", "macvlan"},
                                                     {"plumb.parent", "nosuch0"}};
  auto [s2, b2] = call("NetworkDriver.CreateNetwork", create);
  EXPECT_NE(b2["Err"].get<std::string>().find("parent interface nosuch0 does not exist"),
            std::string::npos)
      << b2;
  create["Options"]["com.docker.network.generic"] = {{"plumb.mtu", "9x"}};
  auto [s3, b3] = call("NetworkDriver.CreateNetwork", create);
  EXPECT_NE(b3["Err"].get<std::string>().find("plumb.mtu must be an MTU"), std::string::npos) << b3;
  create["Options"]["com.docker.network.generic"] = {{"plumb.routes", "10.0.0.0/8,nonsense"}};
  auto [s6, b6] = call("NetworkDriver.CreateNetwork", create);
  EXPECT_NE(b6["Err"].get<std::string>().find("option plumb.routes"), std::string::npos) << b6;
  create["Options"]["com.docker.network.generic"] = {{"plumb.mode", "macvlan"}};
  auto [s4, b4] = call("NetworkDriver.CreateNetwork", create);
  EXPECT_NE(b4["Err"].get<std::string>().find("needs plumb.parent"), std::string::npos) << b4;

  for (const auto& f : fixtures("run-latest")) {
    if (f.method == "NetworkDriver.CreateNetwork" || f.request.is_null()) continue;
    if (f.method.rfind("NetworkDriver.", 0) != 0) continue;
    // Nothing was created: every endpoint call names an unknown network or endpoint.
    auto [s, b] = call(f.method, f.request);
    EXPECT_EQ(s, 500) << f.file;
    std::string err = b["Err"];
    bool clear = err.find("is not a plumb network") != std::string::npos ||
                 err.find("is unknown") != std::string::npos;
    EXPECT_TRUE(clear) << f.file << ": " << err;
  }
  json bad_id = {{"NetworkID", "../../etc"}, {"EndpointID", "x"}};
  auto [s5, b5] = call("NetworkDriver.Join", bad_id);
  EXPECT_NE(b5["Err"].get<std::string>().find("NetworkID '../../etc'"), std::string::npos) << b5;
  EXPECT_EQ(storeDump(), before);
}

// Issue 15, item 13: --socket names where the daemon listens; whatever else is there under
// that name is not plumb's to delete. A socket no daemon listens on any more is.
TEST(DaemonSocket, OnlyAStaleSocketIsReplaced) {
  plumb::testing::TempDir dir;
  std::string file = dir.path() + "/not-a-socket";
  { std::ofstream(file) << "precious\n"; }
  auto refused = listenUnix(file);
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.error().message.find("exists and is not a socket"), std::string::npos)
      << refused.error().message;
  std::ifstream in(file);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "precious") << "the file is untouched";

  std::string sock = dir.path() + "/plumb.sock";
  {
    auto first = listenUnix(sock);
    ASSERT_TRUE(first.ok()) << first.error().message;
    auto second = listenUnix(sock);
    ASSERT_FALSE(second.ok()) << "a socket a daemon listens on is not taken over";
  }
  // The first daemon is gone (its socket closed) and left the socket file behind.
  ASSERT_TRUE(fs::exists(sock));
  auto again = listenUnix(sock);
  EXPECT_TRUE(again.ok()) << again.error().message;
}

TEST(DockerLabels, LinkAndExposeValuesParse) {
  auto one = parseLabel("web", false);
  ASSERT_TRUE(one.ok()) << one.error().message;
  ASSERT_EQ(one->size(), 1u);
  EXPECT_EQ((*one)[0].name, "web");
  EXPECT_EQ((*one)[0].port, 0);
  EXPECT_FALSE((*one)[0].udp);
  auto many = parseLabel("web:8080,dns:53/udp,db:5432/tcp", true);
  ASSERT_TRUE(many.ok()) << many.error().message;
  ASSERT_EQ(many->size(), 3u);
  EXPECT_EQ((*many)[0].port, 8080);
  EXPECT_EQ((*many)[1].name, "dns");
  EXPECT_EQ((*many)[1].port, 53);
  EXPECT_TRUE((*many)[1].udp);
  EXPECT_FALSE((*many)[2].udp);
  for (const auto& [value, need_port, says] :
       std::vector<std::tuple<std::string, bool, std::string>>{
           {"web", true, "no port"},
           {"web:0", false, "port 0"},
           {"web:70000", false, "70000"},
           {"web:80/sctp", false, "tcp or udp"},
           {":80", false, "no name"},
           {"web:80,", false, "no name"},
           {"", false, "no name"},
           {"web:http", false, "http"},
       }) {
    auto r = parseLabel(value, need_port);
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_NE(r.error().message.find(says), std::string::npos)
        << value << ": " << r.error().message;
  }
}

}  // namespace
}  // namespace plumb::docker
