// Address value types shared by every layer: IPv4/IPv6 addresses, prefixes and MAC addresses.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "base/result.h"

namespace plumb {

class IpAddr {
 public:
  IpAddr() = default;
  static Result<IpAddr> parse(std::string_view text);
  static IpAddr v4(uint32_t host_order);
  static IpAddr fromBytes(int family, const void* bytes);  // family AF_INET or AF_INET6
  // 128-bit arithmetic for range walks; v4 lives in the low 32 bits.
  static IpAddr fromNumber(bool is_v6, unsigned __int128 n);

  bool isV4() const { return !v6_; }
  bool isV6() const { return v6_; }
  int family() const;  // AF_INET or AF_INET6
  int bits() const { return v6_ ? 128 : 32; }
  const uint8_t* data() const { return bytes_.data(); }  // 4 or 16 bytes, network order
  size_t size() const { return v6_ ? 16 : 4; }
  unsigned __int128 number() const;
  IpAddr plus(long long delta) const;  // wraps within the family
  bool isUnspecified() const;
  bool isLinkLocal() const;
  std::string str() const;

  auto operator<=>(const IpAddr&) const = default;

 private:
  bool v6_ = false;
  std::array<uint8_t, 16> bytes_{};
};

class IpPrefix {
 public:
  IpPrefix() = default;
  IpPrefix(IpAddr addr, int len) : addr_(addr), len_(len) {}
  // "198.18.0.5/24", "2001:db8::1/64". A bare address is an error unless allow_bare, in which
  // case it becomes a host prefix (/32 or /128).
  static Result<IpPrefix> parse(std::string_view text, bool allow_bare = false);

  const IpAddr& addr() const { return addr_; }
  int len() const { return len_; }
  bool isV4() const { return addr_.isV4(); }
  IpPrefix network() const;  // host bits cleared
  IpAddr first() const { return network().addr(); }
  IpAddr last() const;  // broadcast for v4
  bool contains(const IpAddr& a) const;
  bool overlaps(const IpPrefix& o) const;
  bool isDefault() const { return len_ == 0; }
  std::string str() const;

  auto operator<=>(const IpPrefix&) const = default;

 private:
  IpAddr addr_;
  int len_ = 0;
};

class MacAddr {
 public:
  MacAddr() = default;
  explicit MacAddr(const std::array<uint8_t, 6>& b) : bytes_(b) {}
  static Result<MacAddr> parse(std::string_view text);
  // A locally administered unicast MAC derived from a name (pipework's U:name, plumb's stable
  // veth MACs): the same name always gives the same MAC.
  static MacAddr fromName(std::string_view name);

  const uint8_t* data() const { return bytes_.data(); }
  bool isMulticast() const { return (bytes_[0] & 1) != 0; }
  bool isZero() const;
  std::string str() const;

  auto operator<=>(const MacAddr&) const = default;

 private:
  std::array<uint8_t, 6> bytes_{};
};

// One published port: traffic to a local address on host_port is sent to the container
// (Docker's -p). host_ip unset: every local address of the family.
struct PortMapping {
  std::string proto;  // tcp, udp, sctp
  std::optional<IpAddr> host_ip;
  uint16_t host_port = 0;
  IpAddr container_ip;
  uint16_t container_port = 0;
};

// FNV-1a, for short stable names derived from ids (host veth names, MACs).
uint64_t stableHash(std::string_view text);
// The low 32 bits of stableHash as 8 hex digits (for names that must fit in 15 characters).
std::string stableHex8(std::string_view text);

}  // namespace plumb
