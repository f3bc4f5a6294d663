// The OVSDB client (ovs/): framing, values, the transactions plumb sends (golden JSON), and how
// replies, errors, echo requests and silence are handled. The wire tests talk to a scripted
// peer on a unix socket that writes exactly the bytes a test gives it; everything against a
// real ovsdb-server and ovs-vswitchd is in tests/netns/ovs_test.cc.
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "ovs/jsonrpc.h"
#include "ovs/ovsdb.h"
#include "ovs/vswitch.h"
#include "test_dir.h"

namespace plumb::ovs {
namespace {

// ovsdb-server's answers of the wrong shape are errors, never exceptions (json::value throws
// on a wrong type; the readers do not use it).
TEST(OvsRows, AnswersOfTheWrongShapeAreErrorsNotExceptions) {
  EXPECT_EQ(rowsOf(json{{"rows", "x"}}).error().code, Errc::kDecode);
  EXPECT_EQ(rowsOf(json::array()).value(), json::array());
  EXPECT_FALSE(portRow(json("not a row")).ok());
  auto p = portRow(json{{"_uuid", uuid("0b1c1e7e-0000-4000-8000-000000000001")}, {"name", 7}});
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->name, "");
  auto i = interfaceRow(json{{"name", "plm1"}, {"type", json::array()}, {"ofport", 3}});
  ASSERT_TRUE(i.ok());
  EXPECT_EQ(i->name, "plm1");
  EXPECT_EQ(i->ofport, 3);
}

using namespace std::chrono_literals;

std::vector<std::string> scanAll(Scanner& s) {
  std::vector<std::string> out;
  for (;;) {
    auto next = s.next();
    EXPECT_TRUE(next.ok());
    if (!next.ok() || !*next) return out;
    out.push_back(**next);
  }
}

TEST(OvsScanner, SplitsMessagesSentBackToBack) {
  Scanner s;
  s.feed(R"({"id":1,"result":[]}{"id":2,"result":{"a":[1,{"b":2}]}}  [1,2])");
  auto got = scanAll(s);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0], R"({"id":1,"result":[]})");
  EXPECT_EQ(got[1], R"({"id":2,"result":{"a":[1,{"b":2}]}})");
  EXPECT_EQ(got[2], "[1,2]");
  EXPECT_EQ(s.buffered(), 0u);
}

TEST(OvsScanner, JoinsAMessageThatArrivesInPieces) {
  std::string msg = R"({"id":7,"result":[{"rows":[{"name":"br-a"}]}],"error":null})";
  Scanner s;
  for (size_t i = 0; i + 1 < msg.size(); ++i) {
    s.feed(msg.substr(i, 1));
    auto next = s.next();
    ASSERT_TRUE(next.ok());
    ASSERT_FALSE(*next) << "complete after " << i + 1 << " bytes";
  }
  s.feed(msg.substr(msg.size() - 1));
  auto got = scanAll(s);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0], msg);
}

TEST(OvsScanner, BracesAndQuotesInsideStringsDoNotCount) {
  Scanner s;
  s.feed(R"({"s":"}{]["}{"s":"a\"}{"}{"s":"back\\"}{"s":"\\\"{"})");
  auto got = scanAll(s);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], R"({"s":"}{]["})");
  EXPECT_EQ(got[1], R"({"s":"a\"}{"})");
  EXPECT_EQ(got[2], R"({"s":"back\\"})");
  EXPECT_EQ(got[3], R"({"s":"\\\"{"})");
  for (const auto& g : got) EXPECT_FALSE(json::parse(g, nullptr, false).is_discarded()) << g;
}

TEST(OvsScanner, SomethingThatIsNotAMessageIsAnError) {
  Scanner s;
  s.feed("{\"a\":1} x");
  auto first = s.next();
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(*first);
  auto bad = s.next();
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.error().message.find("unexpected 'x'"), std::string::npos);
}

TEST(OvsScanner, AValueNestedTooDeepIsRefusedAsJsonReadRefusesIt) {
  Scanner s;
  s.feed(std::string(json_read::kMaxDepth, '[') + std::string(json_read::kMaxDepth, ']'));
  auto ok = s.next();
  ASSERT_TRUE(ok.ok());
  EXPECT_TRUE(*ok) << "kMaxDepth levels are fine";
  s.feed(std::string(json_read::kMaxDepth + 1, '['));
  auto deep = s.next();
  ASSERT_FALSE(deep.ok());
  EXPECT_NE(deep.error().message.find("nested deeper than"), std::string::npos);
}

TEST(OvsValues, EncodeAsRfc7047Says) {
  EXPECT_EQ(uuid("abc").dump(), R"(["uuid","abc"])");
  EXPECT_EQ(namedUuid("port").dump(), R"(["named-uuid","port"])");
  EXPECT_EQ(set({1, 2}).dump(), R"(["set",[1,2]])");
  EXPECT_EQ(set({}).dump(), R"(["set",[]])");
  EXPECT_EQ(map({{"owner", "plumb"}, {"a", "b"}}).dump(),
            R"(["map",[["a","b"],["owner","plumb"]]])");
}

TEST(OvsValues, DecodeSetsMapsUuidsAndBareAtoms) {
  auto bare = setAtoms(json(10));
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, std::vector<json>{10}) << "a one-element set comes back bare";
  auto many = setAtoms(json::parse(R"(["set",[1,2,3]])"));
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->size(), 3u);
  auto one_uuid = setAtoms(json::parse(R"(["uuid","u-1"])"));
  ASSERT_TRUE(one_uuid.ok());
  ASSERT_EQ(one_uuid->size(), 1u);
  EXPECT_EQ(*uuidOf((*one_uuid)[0]), "u-1");
  EXPECT_FALSE(setAtoms(json::parse(R"(["map",[]])")).ok());
  auto m = stringMap(json::parse(R"(["map",[["owner","plumb"],["k","v"]]])"));
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->at("owner"), "plumb");
  EXPECT_FALSE(stringMap(json::parse(R"(["map",[["k",1]]])")).ok());
  EXPECT_FALSE(uuidOf(json("u-1")).ok());
  auto none = optionalInt(json::parse(R"(["set",[]])"));
  ASSERT_TRUE(none.ok());
  EXPECT_FALSE(*none);
  auto some = optionalInt(json(-1));
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(**some, -1);
}

TEST(OvsTransactions, AddPortIsOneTransactionThatMutatesThePortSet) {
  PortSpec spec;
  spec.bridge = "br-a";
  spec.name = "plm01234567";
  spec.tag = 10;
  spec.trunks = {42, 1000};
  spec.ofport_request = 5;
  spec.external_ids = {{"owner", "plumb"}, {"plumb_network", "n"}};
  auto golden = json::parse(R"([
    {"op":"wait","table":"Bridge","where":[["name","==","br-a"]],"columns":["name"],
     "until":"==","rows":[{"name":"br-a"}],"timeout":0},
    {"op":"insert","table":"Interface","uuid-name":"iface",
     "row":{"name":"plm01234567","ofport_request":5,
            "external_ids":["map",[["owner","plumb"],["plumb_network","n"]]]}},
    {"op":"insert","table":"Port","uuid-name":"port",
     "row":{"name":"plm01234567","interfaces":["named-uuid","iface"],"tag":10,
            "trunks":["set",[42,1000]],
            "external_ids":["map",[["owner","plumb"],["plumb_network","n"]]]}},
    {"op":"mutate","table":"Bridge","where":[["name","==","br-a"]],
     "mutations":[["ports","insert",["named-uuid","port"]]]},
    {"op":"mutate","table":"Open_vSwitch","where":[],"mutations":[["next_cfg","+=",1]]},
    {"op":"select","table":"Open_vSwitch","where":[],"columns":["next_cfg"]}
  ])");
  EXPECT_EQ(Switch::addPortOps(spec), golden) << Switch::addPortOps(spec).dump(1);
}

TEST(OvsTransactions, AppliedWaitsServerSideAndRemovalMutates) {
  auto applied = json::parse(R"([
    {"op":"wait","table":"Open_vSwitch","where":[["cur_cfg",">=",12]],"columns":["cur_cfg"],
     "until":"!=","rows":[],"timeout":5000},
    {"op":"select","table":"Interface","where":[["_uuid","==",["uuid","i-1"]]],
     "columns":["ofport","error"]}
  ])");
  EXPECT_EQ(Switch::appliedOps(12, "i-1", 5000), applied);
  auto removal = json::parse(R"([
    {"op":"mutate","table":"Bridge","where":[["ports","includes",["uuid","p-1"]]],
     "mutations":[["ports","delete",["uuid","p-1"]]]}
  ])");
  EXPECT_EQ(Switch::removePortsOps({"p-1"}), removal);
}

TEST(OvsAddress, OnlyALocalUnixSocket) {
  EXPECT_EQ(*socketPath("unix:/run/db.sock"), "/run/db.sock");
  EXPECT_EQ(*socketPath("/run/db.sock"), "/run/db.sock");
  auto tcp = socketPath("tcp:127.0.0.1:6640");
  ASSERT_FALSE(tcp.ok());
  EXPECT_NE(tcp.error().message.find("not a unix socket"), std::string::npos);
  EXPECT_FALSE(socketPath("unix:" + std::string(200, 'a')).ok());
}

// A peer on a unix socket that reads one request and writes what script makes of it, in the
// pieces it returns (each written separately).
class ScriptedPeer {
 public:
  using Script = std::function<std::vector<std::string>(const json& request)>;
  explicit ScriptedPeer(Script script) : path_(dir_.path() + "/db.sock") {
    listen_ = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sa{};
    sa.sun_family = AF_UNIX;
    path_.copy(sa.sun_path, sizeof(sa.sun_path) - 1);
    EXPECT_EQ(::bind(listen_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(listen_, 1), 0);
    thread_ = std::thread([this, script] {
      int c = ::accept(listen_, nullptr, nullptr);
      if (c < 0) return;
      Scanner s;
      char buf[4096];
      bool answered = false;
      while (!answered) {
        ssize_t n = ::read(c, buf, sizeof(buf));
        if (n <= 0) break;
        s.feed(std::string_view(buf, static_cast<size_t>(n)));
        auto msg = s.next();
        if (!msg.ok() || !*msg) continue;
        auto req = json::parse(**msg);
        for (const auto& piece : script(req)) {
          (void)!::write(c, piece.data(), piece.size());
          std::this_thread::sleep_for(2ms);  // separate reads on the other side
        }
        answered = true;
      }
      // Keep reading (an echo reply, say) until the client hangs up.
      for (ssize_t n; (n = ::read(c, buf, sizeof(buf))) > 0;)
        received_.append(buf, static_cast<size_t>(n));
      ::close(c);
    });
  }
  ~ScriptedPeer() {
    ::shutdown(listen_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(listen_);
  }
  const std::string& path() const { return path_; }
  // What the client sent after the first request, once it has hung up.
  const std::string& received() {
    if (thread_.joinable()) thread_.join();
    return received_;
  }

 private:
  testing::TempDir dir_;
  std::string path_;
  std::string received_;
  int listen_ = -1;
  std::thread thread_;
};

TEST(OvsConnection, AnswersEchoAndMatchesTheReplyById) {
  ScriptedPeer peer([](const json& req) -> std::vector<std::string> {
    std::string id = req["id"].dump();
    json reply = {{"id", req["id"]}, {"result", {"Open_vSwitch"}}, {"error", nullptr}};
    std::string text = reply.dump();
    return {R"({"method":"echo","params":["x"],"id":"echo"})",
            R"({"method":"update","params":[null,{}],"id":null}{"id":999,"result":[],)",
            R"("error":null})" + text.substr(0, 10), text.substr(10)};
  });
  {
    auto conn = Connection::open("unix:" + peer.path(), 1000ms);
    ASSERT_TRUE(conn.ok()) << conn.error().message;
    auto r = conn->call("list_dbs", json::array(), 1000ms);
    ASSERT_TRUE(r.ok()) << r.error().message;
    EXPECT_EQ(*r, json({"Open_vSwitch"}));
    EXPECT_EQ(conn->notifications().size(), 1u);
  }
  EXPECT_NE(peer.received().find(R"("id":"echo")"), std::string::npos) << peer.received();
}

TEST(OvsConnection, AnErrorReplyNamesTheMethodAndWhatTheServerSaid) {
  ScriptedPeer peer([](const json& req) -> std::vector<std::string> {
    return {json({{"id", req["id"]}, {"result", nullptr}, {"error", "unknown database"}}).dump()};
  });
  auto conn = Connection::open(peer.path(), 1000ms);
  ASSERT_TRUE(conn.ok());
  auto r = conn->call("get_schema", json::array({"Nope"}), 1000ms);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.error().message.find("refused get_schema: unknown database"), std::string::npos)
      << r.error().message;
}

TEST(OvsConnection, SilenceTimesOutWithTheTimeoutInTheMessage) {
  ScriptedPeer peer([](const json&) -> std::vector<std::string> { return {}; });
  auto conn = Connection::open(peer.path(), 1000ms);
  ASSERT_TRUE(conn.ok());
  auto r = conn->call("transact", json::array({"Open_vSwitch"}), 100ms);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::kTryAgain);
  EXPECT_NE(r.error().message.find("did not answer transact within 100 ms"), std::string::npos)
      << r.error().message;
}

TEST(OvsConnection, NoServerIsAClearError) {
  testing::TempDir dir;
  auto conn = Connection::open("unix:" + dir.path() + "/none.sock", 100ms);
  ASSERT_FALSE(conn.ok());
  EXPECT_NE(conn.error().message.find("cannot connect to OVSDB at unix:" + dir.path()),
            std::string::npos)
      << conn.error().message;
}

TEST(OvsTransact, AnOperationErrorNamesTheOperationAndItsDetails) {
  ScriptedPeer peer([](const json& req) -> std::vector<std::string> {
    json results = json::array({json::object({{"count", 1}}),
                                {{"error", "constraint violation"},
                                 {"details",
                                  "Transaction causes multiple rows in \"Port\" "
                                  "table to have identical values"}},
                                nullptr});
    return {json({{"id", req["id"]}, {"result", results}, {"error", nullptr}}).dump()};
  });
  auto conn = Connection::open(peer.path(), 1000ms);
  ASSERT_TRUE(conn.ok());
  json ops = json::array({{{"op", "mutate"}}, {{"op", "insert"}}, {{"op", "select"}}});
  size_t failed = 99;
  auto r = transact(*conn, "Open_vSwitch", ops, 1000ms, &failed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(failed, 1u);
  EXPECT_NE(r.error().message.find("operation 2 (insert): constraint violation (Transaction "
                                   "causes multiple rows"),
            std::string::npos)
      << r.error().message;
}

TEST(OvsTransact, ACommitErrorComesAfterTheOperations) {
  ScriptedPeer peer([](const json& req) -> std::vector<std::string> {
    json results =
        json::array({json::object({{"count", 1}}), {{"error", "referential integrity violation"}}});
    return {json({{"id", req["id"]}, {"result", results}, {"error", nullptr}}).dump()};
  });
  auto conn = Connection::open(peer.path(), 1000ms);
  ASSERT_TRUE(conn.ok());
  size_t failed = 99;
  auto r = transact(*conn, "Open_vSwitch", json::array({{{"op", "delete"}}}), 1000ms, &failed);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(failed, 1u);
  EXPECT_NE(r.error().message.find("at the commit: referential integrity violation"),
            std::string::npos)
      << r.error().message;
}

}  // namespace
}  // namespace plumb::ovs
