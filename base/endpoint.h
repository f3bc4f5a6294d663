// An IP address and a port ("198.18.0.5:80", "[2001:db8::1]:53"), and its sockaddr form.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "base/ip.h"
#include "base/result.h"

namespace plumb {

struct Endpoint {
  IpAddr addr;
  uint16_t port = 0;

  // "ADDR:PORT", IPv6 in brackets. Port 0 is allowed (a listener's "pick one").
  static Result<Endpoint> parse(std::string_view text);
  static Endpoint fromSockaddr(const sockaddr* sa);
  // Fills storage; returns the length to pass to bind/connect.
  socklen_t toSockaddr(sockaddr_storage* storage) const;
  std::string str() const;

  auto operator<=>(const Endpoint&) const = default;
};

// A port number in text, 0-65535 ("PORT" in a command line).
Result<uint16_t> parsePort(std::string_view text);

}  // namespace plumb
