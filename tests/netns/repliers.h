// Plain TCP in a netns for the tests of links: a server that answers each connection with a
// fixed reply, and a client that reads what 127.0.0.1:PORT answers.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>

#include <gtest/gtest.h>

#include "netlink/netns.h"

namespace plumb::testing {

// A server inside a netns: answers every connection with its reply and closes.
class Replier {
 public:
  Replier(const std::string& netns_path, uint16_t port, std::string reply)
      : reply_(std::move(reply)) {
    auto ns = netlink::Netns::fromPath(netns_path);
    EXPECT_TRUE(ns.ok());
    auto s = netlink::socketIn(*ns, AF_INET, SOCK_STREAM, 0);
    EXPECT_TRUE(s.ok());
    fd_ = s->release();
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in sa{};
    sa.sin_family = AF_INET;
    sa.sin_port = htons(port);
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)), 0);
    EXPECT_EQ(::listen(fd_, 64), 0);
    thread_ = std::thread([this] {
      for (;;) {
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c < 0) return;
        (void)::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
        ::close(c);
      }
    });
  }
  ~Replier() {
    ::shutdown(fd_, SHUT_RDWR);
    thread_.join();
    ::close(fd_);
  }

 private:
  std::string reply_;
  int fd_ = -1;
  std::thread thread_;
};

// What a client inside netns_path reads from 127.0.0.1:port; "" when refused or reset.
inline std::string askIn(const std::string& netns_path, uint16_t port) {
  auto ns = netlink::Netns::fromPath(netns_path);
  if (!ns.ok()) return "";
  auto s = netlink::socketIn(*ns, AF_INET, SOCK_STREAM, 0);
  if (!s.ok()) return "";
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(s->get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) return "";
  timeval tv{5, 0};
  ::setsockopt(s->get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  std::string out;
  char buf[256];
  ssize_t n;
  while ((n = ::recv(s->get(), buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
  return out;
}

}  // namespace plumb::testing
