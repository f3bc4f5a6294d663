// The etcd client's codec (etcd's JSON gateway: base64 keys, decimal-string numbers), its
// endpoint checks, and how it fails against peers that are not etcd: a port nobody listens
// on, a server that never answers, one that answers garbage. The real etcd is in the netns
// tier (tests/netns/etcd_test.cc).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "etcd/client.h"
#include "etcd/codec.h"
#include "fake_etcd.h"
#include "kv_contract.h"

namespace plumb::etcd {
namespace {

using json = nlohmann::json;

TEST(EtcdCodec, Base64RoundTripsEveryByte) {
  EXPECT_EQ(codec::base64("foo"), "Zm9v");
  EXPECT_EQ(codec::base64("fo"), "Zm8=");
  EXPECT_EQ(codec::base64("f"), "Zg==");
  EXPECT_EQ(codec::base64(""), "");
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t n = 0; n <= all.size(); n += 37) {
    auto back = codec::unbase64(codec::base64(all.substr(0, n)));
    ASSERT_TRUE(back.ok()) << n;
    EXPECT_EQ(*back, all.substr(0, n));
  }
  for (const char* bad : {"Zm9", "Zm9v!", "Z=9v", "Zg==Zg==", "===="})
    EXPECT_FALSE(codec::unbase64(bad).ok()) << bad;
}

TEST(EtcdCodec, PrefixEndCoversThePrefix) {
  EXPECT_EQ(prefixEnd("/plumb/"), "/plumb0");
  EXPECT_EQ(prefixEnd(std::string("a\xff")), "b");
  EXPECT_EQ(prefixEnd(std::string("\xff\xff")), std::string(1, '\0'));
}

TEST(EtcdCodec, RequestsAreWhatTheGatewayTakes) {
  auto txn = codec::txnRequest({Compare::absent("/k"), Compare::unchangedSince("/m", 7)},
                               {TxnOp::put("/k", "v", 42)}, {TxnOp::get("/k")});
  EXPECT_EQ(
      txn["compare"][0],
      json::parse(R"({"key":"L2s=","target":"CREATE","result":"EQUAL","create_revision":"0"})"));
  EXPECT_EQ(txn["compare"][1]["mod_revision"], "7");
  EXPECT_EQ(txn["success"][0]["request_put"],
            json::parse(R"({"key":"L2s=","value":"dg==","lease":"42"})"));
  EXPECT_EQ(txn["failure"][0]["request_range"], json::parse(R"({"key":"L2s="})"));
  EXPECT_EQ(
      codec::watchRequest("/p/", prefixEnd("/p/"), 5),
      json::parse(R"({"create_request":{"key":"L3Av","range_end":"L3Aw","start_revision":"5"}})"));
}

TEST(EtcdCodec, AnswersAsEtcdSendsThem) {
  // Recorded from etcd 3.4.23's gateway.
  auto range = codec::rangeResult(json::parse(
      R"({"header":{"cluster_id":"2037210783374497686","member_id":"13195394291058371180","revision":"2","raft_term":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"})"));
  ASSERT_TRUE(range.ok()) << range.error().message;
  EXPECT_EQ(range->revision, 2);
  ASSERT_EQ(range->kvs.size(), 1u);
  EXPECT_EQ(range->kvs[0].key, "foo");
  EXPECT_EQ(range->kvs[0].value, "bar");
  EXPECT_EQ(range->kvs[0].create_revision, 2);
  auto empty = codec::rangeResult(json::parse(R"({"header":{"revision":"9"}})"));
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->kvs.empty());
  // A txn that failed: no "succeeded" at all, the failure branch's range inside.
  auto txn = codec::txnResult(json::parse(
      R"({"header":{"revision":"2"},"responses":[{"response_range":{"header":{"revision":"2"},"kvs":[{"key":"Zm9v","create_revision":"2","mod_revision":"2","version":"1","value":"YmFy"}],"count":"1"}}]})"));
  ASSERT_TRUE(txn.ok()) << txn.error().message;
  EXPECT_FALSE(txn->succeeded);
  ASSERT_EQ(txn->ranges.size(), 1u);
  EXPECT_EQ(txn->ranges[0].kvs[0].value, "bar");
  auto w = codec::watchLine(
      R"({"result":{"header":{"revision":"4"},"events":[{"type":"DELETE","kv":{"key":"Zm9vMQ==","mod_revision":"4"}}]}})");
  ASSERT_TRUE(w.ok()) << w.error().message;
  ASSERT_EQ(w->events.size(), 1u);
  EXPECT_TRUE(w->events[0].deleted);
  EXPECT_EQ(w->events[0].kv.key, "foo1");
  EXPECT_EQ(w->events[0].kv.mod_revision, 4);
  auto compacted = codec::watchLine(
      R"({"result":{"header":{"revision":"9"},"canceled":true,"compact_revision":"6"}})");
  ASSERT_TRUE(compacted.ok());
  EXPECT_EQ(compacted->compact_revision, 6);
  auto lost = codec::errorOf(json::parse(
      R"({"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5})"));
  ASSERT_FALSE(lost.ok());
  EXPECT_EQ(lost.error().code, Errc::kNotFound);
  EXPECT_EQ(codec::errorOf(
                json::parse(R"({"error":"x","message":"etcdserver: request timed out","code":14})"))
                .error()
                .code,
            Errc::kTryAgain);
  for (const char* bad : {R"({"header":{"revision":"x"}})", R"({"kvs":[]})",
                          R"({"header":{"revision":"1"},"kvs":[{"key":"!!"}]})"})
    EXPECT_FALSE(codec::rangeResult(json::parse(bad)).ok()) << bad;
}

// Found by the etcd_reader fuzzer: an error answer whose "code" was a string threw out of
// errorOf and ended the process. Answers of the wrong shape are errors, never exceptions.
TEST(EtcdCodec, AnswersOfTheWrongShapeAreErrorsNotExceptions) {
  auto e = codec::errorOf(json{{"error", "x"}, {"code", "5"}, {"message", 7}});
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.error().message, "x");
  EXPECT_EQ(codec::errorOf(json{{"error", "gone"}, {"code", 5}}).error().code, Errc::kNotFound);
  EXPECT_NO_THROW((void)codec::watchLine(
      R"({"result": {"header": {"revision": "3"}, "created": "yes", "events": [{"type": 1}]}})"));
  auto w = codec::watchLine(R"({"result": {"header": {"revision": "3"}, "created": 1}})");
  ASSERT_TRUE(w.ok());
  EXPECT_FALSE(w->created);
}

TEST(EtcdEndpoints, MalformedOnesAreOneLineErrors) {
  for (const char* good :
       {"http://198.18.0.1:2379", "http://etcd-1.example:2379/", "http://[fd00::1]:2379"})
    EXPECT_TRUE(validateEndpoint(good).ok()) << good;
  for (const auto& [bad, says] : std::vector<std::pair<std::string, std::string>>{
           {"198.18.0.1:2379", "not an http:// URL"},
           {"https://198.18.0.1:2379", "TLS"},
           {"http://198.18.0.1", "no port"},
           {"http://198.18.0.1:99999", "no valid port"},
           {"http://198.18.0.1:2379/v3", "no valid port"},
           {"http://a b:2379", "malformed host"},
           {"http://:2379", "no port"},
       }) {
    auto st = validateEndpoint(bad);
    ASSERT_FALSE(st.ok()) << bad;
    EXPECT_NE(st.error().message.find(says), std::string::npos) << st.error().message;
    EXPECT_EQ(st.error().message.find('\n'), std::string::npos);
  }
  auto list = parseEndpoints("http://198.18.0.1:2379,http://198.18.0.2:2379/");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->at(1), "http://198.18.0.2:2379");
  EXPECT_FALSE(parseEndpoints("").ok());
  EXPECT_FALSE(parseEndpoints("http://198.18.0.1:2379,bogus").ok());
  EXPECT_FALSE(Client::create({{}, 5000}).ok());
}

// A TCP server on 127.0.0.1 that is not etcd: it answers every connection with reply (or,
// with reply empty, reads and never answers).
class BadPeer {
 public:
  explicit BadPeer(std::string reply) : reply_(std::move(reply)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof(sa);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&sa), &len);
    port_ = ntohs(sa.sin_port);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        char buf[4096];
        (void)::recv(c, buf, sizeof(buf), 0);
        if (!reply_.empty()) {
          (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
          ::close(c);
        } else {
          held_.push_back(c);
        }
      }
    });
  }
  ~BadPeer() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
    for (int c : held_) ::close(c);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::string reply_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::thread thread_;
  std::vector<int> held_;
};

// A port on 127.0.0.1 that nobody listens on (bound, then closed).
std::string closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa));
  socklen_t len = sizeof(sa);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len);
  ::close(fd);
  return "http://127.0.0.1:" + std::to_string(ntohs(sa.sin_port));
}

TEST(EtcdClient, PeersThatAreNotEtcdGiveOneLineNamingEachEndpoint) {
  BadPeer garbage("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\ngarbage");
  BadPeer silent("");
  std::string refused = closedPort();
  auto client = Client::create({{refused, garbage.url(), silent.url()}, 600});
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto start = std::chrono::steady_clock::now();
  auto r = (*client)->put("/plumb/x", "y");
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_FALSE(r.ok());
  const std::string& msg = r.error().message;
  EXPECT_EQ(r.error().code, Errc::kTryAgain);
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_NE(msg.find(refused + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find(garbage.url() + ": answered something that is not etcd's JSON"),
            std::string::npos)
      << msg;
  EXPECT_NE(msg.find(silent.url() + ": "), std::string::npos) << msg;
  EXPECT_NE(msg.find("within 600 ms"), std::string::npos) << msg;
  // Bounded by the timeout (and some slack for a loaded machine), not by the silent peer.
  EXPECT_LT(took, std::chrono::milliseconds(600 + 1500));
}

TEST(FakeEtcd, KeepsTheContractARealEtcdKeeps) {
  testing::FakeEtcd fake;
  testing::kvContractTransactions(fake, "/t/");
  testing::kvContractWatch(fake, "/w/");
  testing::kvContractLeases(fake, "/l/", [&] { fake.advance(1); });
}

TEST(FakeEtcd, OutagesAndCompaction) {
  testing::FakeEtcd fake;
  ASSERT_TRUE(fake.put("/a", "1").ok());
  fake.setDown(true);
  auto down = fake.put("/a", "2");
  ASSERT_FALSE(down.ok());
  EXPECT_EQ(down.error().code, Errc::kTryAgain);
  fake.setDown(false);
  int64_t rev = *fake.put("/a", "3");
  fake.compact(rev);
  auto w = fake.watcher();
  auto st = w->run("/a", "", rev - 1, [](const std::vector<WatchEvent>&, int64_t) {});
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.error().code, Errc::kExhausted);
}

}  // namespace
}  // namespace plumb::etcd
