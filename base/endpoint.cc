#include "base/endpoint.h"

#include <charconv>
#include <cstring>

namespace plumb {

Result<uint16_t> parsePort(std::string_view text) {
  unsigned long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    return fail(Errc::kInvalid, "'" + std::string(text) + "' is not a port number");
  if (v > 65535)
    return fail(Errc::kInvalid, "port " + std::string(text) + " is out of range (0-65535)");
  return static_cast<uint16_t>(v);
}

Result<Endpoint> Endpoint::parse(std::string_view text) {
  std::string_view host, port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return fail(Errc::kInvalid,
                  "'" + std::string(text) + "' is not ADDR:PORT ([ADDR]:PORT for IPv6)");
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return fail(Errc::kInvalid,
                  "'" + std::string(text) + "' is not ADDR:PORT ([ADDR]:PORT for IPv6)");
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  auto addr = IpAddr::parse(host);
  if (!addr.ok())
    return fail(Errc::kInvalid, "'" + std::string(text) + "': " + addr.error().message);
  auto p = parsePort(port);
  if (!p.ok()) return fail(Errc::kInvalid, "'" + std::string(text) + "': " + p.error().message);
  return Endpoint{*addr, *p};
}

Endpoint Endpoint::fromSockaddr(const sockaddr* sa) {
  Endpoint e;
  if (sa->sa_family == AF_INET6) {
    const auto* s6 = reinterpret_cast<const sockaddr_in6*>(sa);
    e.addr = IpAddr::fromBytes(AF_INET6, &s6->sin6_addr);
    e.port = ntohs(s6->sin6_port);
  } else {
    const auto* s4 = reinterpret_cast<const sockaddr_in*>(sa);
    e.addr = IpAddr::fromBytes(AF_INET, &s4->sin_addr);
    e.port = ntohs(s4->sin_port);
  }
  return e;
}

socklen_t Endpoint::toSockaddr(sockaddr_storage* storage) const {
  std::memset(storage, 0, sizeof(*storage));
  if (addr.isV6()) {
    auto* s6 = reinterpret_cast<sockaddr_in6*>(storage);
    s6->sin6_family = AF_INET6;
    s6->sin6_port = htons(port);
    std::memcpy(&s6->sin6_addr, addr.data(), 16);
    return sizeof(sockaddr_in6);
  }
  auto* s4 = reinterpret_cast<sockaddr_in*>(storage);
  s4->sin_family = AF_INET;
  s4->sin_port = htons(port);
  std::memcpy(&s4->sin_addr, addr.data(), 4);
  return sizeof(sockaddr_in);
}

std::string Endpoint::str() const {
  return (addr.isV6() ? "[" + addr.str() + "]" : addr.str()) + ":" + std::to_string(port);
}

}  // namespace plumb
