// The ambassadors' records and the daemon's control requests, without root: the store's
// services and links, service names, and what Ambassadors::handle answers to bad requests and
// to an expose (which needs no listener).
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "plugin/core/ambassadors.h"
#include "plugin/core/directory.h"
#include "plugin/core/store.h"
#include "store_dump.h"
#include "test_dir.h"

namespace plumb::core {
namespace {

using json = nlohmann::json;

TEST(ServiceNameTest, IsADnsLabelsCharacters) {
  for (const char* ok : {"web", "db-1", "pg_main", "a.b", "9lives"})
    EXPECT_TRUE(validateServiceName(ok).ok()) << ok;
  for (const char* bad : {"", "we/b", "-web", ".web", "web!", "a b", "é"}) {
    auto st = validateServiceName(bad);
    EXPECT_FALSE(st.ok()) << bad;
    if (!st.ok()) {
      EXPECT_EQ(st.error().code, Errc::kInvalid);
    }
  }
  EXPECT_FALSE(validateServiceName(std::string(64, 'a')).ok());
  EXPECT_TRUE(validateServiceName(std::string(63, 'a')).ok());
}

TEST(DirectoryTest, ServicesAndLinksRoundTripAndGoWithTheirGuest) {
  testing::TempDir dir;
  auto store = Store::open(dir.path());
  ASSERT_TRUE(store.ok());
  Directory d(**store);
  ASSERT_TRUE(d.expose({"web", false, "g1", "/run/netns/g1", "198.18.0.2", 80, 0}).ok());
  ASSERT_TRUE(d.expose({"web", false, "g2", "/run/netns/g2", "198.18.0.3", 8080, 0}).ok());
  ASSERT_TRUE(d.expose({"web", true, "g1", "/run/netns/g1", "198.18.0.2", 53, 0}).ok());
  ASSERT_TRUE(d.expose({"web", false, "g1", "/run/netns/g1", "198.18.0.2", 81, 0}).ok())
      << "the same guest again replaces";
  auto tcp = d.endpoints("web", false);
  ASSERT_TRUE(tcp.ok());
  ASSERT_EQ(tcp->size(), 2u);
  EXPECT_EQ((*tcp)[0].port, 81);
  EXPECT_EQ((*tcp)[1].address, "198.18.0.3");
  EXPECT_EQ(d.endpoints("web", true)->size(), 1u);

  ASSERT_TRUE(d.link({"g3", "web", false, "/run/netns/g3", 80, 0}).ok());
  auto found = d.findLink("g3", "web", false);
  ASSERT_TRUE(found.ok() && found->has_value());
  EXPECT_EQ((*found)->port, 80);
  EXPECT_FALSE(d.findLink("g3", "web", true)->has_value());

  auto gone = d.unlink("g3", "nosuch", std::nullopt);
  ASSERT_FALSE(gone.ok());
  EXPECT_EQ(gone.error().code, Errc::kNotFound);
  EXPECT_EQ(d.unexpose("g9", "web", std::nullopt).error().code, Errc::kNotFound);

  ASSERT_TRUE(d.forgetGuest("g1").ok());
  EXPECT_EQ(d.endpoints("web", false)->size(), 1u);
  EXPECT_EQ(d.endpoints("web", true)->size(), 0u);
  EXPECT_EQ(d.links()->size(), 1u) << "another guest's link stays";
  ASSERT_TRUE(d.unlink("g3", "web", std::nullopt).ok());
  EXPECT_TRUE(d.links()->empty());
}

class AmbassadorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto a = Ambassadors::start(dir_.path(), ForwarderOptions{});
    ASSERT_TRUE(a.ok()) << a.error().message;
    amb_ = std::move(*a);
  }
  json ask(const json& req) { return json::parse(amb_->handle(req.dump())); }
  json ask(const std::string& text) { return json::parse(amb_->handle(text)); }
  std::string dump() { return testing::storeDumpOf(dir_.path() + "/plumb.db", {}); }

  testing::TempDir dir_;
  std::unique_ptr<Ambassadors> amb_;
};

TEST_F(AmbassadorsTest, BadRequestsAreOneLineAndChangeNothing) {
  std::string before = dump();
  for (const auto& [req, says] : std::vector<std::pair<std::string, std::string>>{
           {"", "malformed"},
           {"[1]", "JSON object"},
           {R"({"op": 7})", "op"},
           {R"({"op": "frobnicate", "guest": "g", "name": "web"})", "unknown control request"},
           {R"({"op": "link", "guest": "g/1", "name": "web", "port": 80})", "g/1"},
           {R"({"op": "link", "guest": "g", "name": "we/b", "port": 80})", "not a service name"},
           {R"({"op": "expose", "guest": "g", "name": "web", "port": 70000})", "out of range"},
           {R"({"op": "expose", "guest": "g", "name": "web"})", "port"},
           {R"({"op": "link", "guest": "g", "name": "web", "port": 80})", "netns"},
           {R"({"op": "link", "guest": "g", "name": "web", "port": 80, "netns": "/nonexistent"})",
            "/nonexistent"},
           {R"({"op": "link", "guest": "g", "name": "web", "netns": "/run/netns/x"})",
            "no guest exposes it yet"},
           {R"({"op": "expose", "guest": "g", "name": "web", "port": 80})",
            "no address plumb attached"},
           {R"({"op": "expose", "guest": "g", "name": "web", "port": 80, "address": "1.2.3"})",
            "1.2.3"},
           {R"({"op": "link", "guest": "g", "name": "web", "port": 80, "netns": "/run/netns/x",
                "hosts": "etc/hosts"})",
            "not an absolute path"},
       }) {
    auto answer = ask(req);
    ASSERT_TRUE(answer.contains("error")) << req << " -> " << answer;
    std::string msg = answer["error"];
    EXPECT_NE(msg.find(says), std::string::npos) << req << " -> " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
  EXPECT_EQ(dump(), before);
}

TEST_F(AmbassadorsTest, ExposeTakesTheGuestsBridgeIpv4Address) {
  auto store = Store::open(dir_.path());
  ASSERT_TRUE(store.ok());
  AttachmentRecord mac;
  mac.key = {"net-m", "g", "eth2"};
  mac.netns = "/run/netns/g";
  mac.mode = "macvlan";
  mac.state = "ready";
  mac.addresses = {{*IpPrefix::parse("198.18.1.5/24"), std::nullopt, false}};
  AttachmentRecord br = mac;
  br.key = {"net-b", "g", "eth1"};
  br.mode = "bridge";
  br.addresses = {{*IpPrefix::parse("2001:db8::5/64"), std::nullopt, false},
                  {*IpPrefix::parse("198.18.0.5/24"), std::nullopt, false}};
  ASSERT_TRUE((*store)->insertAttachment(mac).ok());
  ASSERT_TRUE((*store)->insertAttachment(br).ok());
  // The netns path only has to exist for the daemon's watch: a file here stands in for it
  // (one that does not exist counts as gone at once, and takes the service with it).
  std::string netns = dir_.path() + "/netns-g";
  std::ofstream(netns).put('\n');
  json req = {{"op", "expose"}, {"guest", "g"}, {"netns", netns}, {"name", "web"}, {"port", 80}};
  auto answer = ask(req);
  EXPECT_EQ(answer["endpoint"], "198.18.0.5:80") << answer;
  auto list = ask(json{{"op", "list"}});
  ASSERT_EQ(list["services"].size(), 1u) << list;
  EXPECT_EQ(list["services"][0]["address"], "198.18.0.5");
  auto un = ask(json{{"op", "unexpose"}, {"guest", "g"}, {"name", "web"}});
  EXPECT_EQ(un["ok"], true) << un;
  EXPECT_TRUE(ask(json{{"op", "list"}})["services"].empty());
  // The netns path going away takes the guest's services with it (inotify in the daemon;
  // this test waits for the answer to change).
  ASSERT_EQ(ask(req)["endpoint"], "198.18.0.5:80");
  std::filesystem::remove(netns);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  size_t left = 1;
  while (left > 0 && std::chrono::steady_clock::now() < deadline) {
    left = ask(json{{"op", "list"}})["services"].size();
    if (left > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(left, 0u);
}

TEST_F(AmbassadorsTest, ExposeTakesTheAddressTheFrontEndNames) {
  // A Docker container on a plumb network has no attachment under its guest id: the Docker
  // front end names the address of its endpoint.
  std::string netns = dir_.path() + "/netns-d";
  std::ofstream(netns).put('\n');
  json req = {{"op", "expose"}, {"guest", "docker-ab12"}, {"netns", netns},
              {"name", "db"},   {"port", 5432},           {"address", "198.18.7.9"}};
  auto answer = ask(req);
  EXPECT_EQ(answer["endpoint"], "198.18.7.9:5432") << answer;
  EXPECT_EQ(ask(json{{"op", "list"}})["services"][0]["address"], "198.18.7.9");
  EXPECT_EQ(ask(json{{"op", "forget"}, {"guest", "docker-ab12"}})["ok"], true);
  EXPECT_TRUE(ask(json{{"op", "list"}})["services"].empty());
}

}  // namespace
}  // namespace plumb::core
