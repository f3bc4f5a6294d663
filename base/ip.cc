#include "base/ip.h"

#include <arpa/inet.h>
#include <sys/socket.h>

#include <charconv>
#include <cstdio>
#include <cstring>

namespace plumb {

Result<IpAddr> IpAddr::parse(std::string_view text) {
  std::string s(text);
  IpAddr a;
  if (s.find(':') == std::string::npos) {
    if (inet_pton(AF_INET, s.c_str(), a.bytes_.data()) == 1) return a;
  } else if (inet_pton(AF_INET6, s.c_str(), a.bytes_.data()) == 1) {
    a.v6_ = true;
    return a;
  }
  return fail(Errc::kInvalid, "'" + s + "' is not an IP address");
}

IpAddr IpAddr::v4(uint32_t host_order) {
  IpAddr a;
  uint32_t n = htonl(host_order);
  std::memcpy(a.bytes_.data(), &n, 4);
  return a;
}

IpAddr IpAddr::fromBytes(int family, const void* bytes) {
  IpAddr a;
  a.v6_ = family == AF_INET6;
  std::memcpy(a.bytes_.data(), bytes, a.size());
  return a;
}

int IpAddr::family() const { return v6_ ? AF_INET6 : AF_INET; }

unsigned __int128 IpAddr::number() const {
  unsigned __int128 n = 0;
  for (size_t i = 0; i < size(); ++i) n = (n << 8) | bytes_[i];
  return n;
}

IpAddr IpAddr::fromNumber(bool is_v6, unsigned __int128 n) {
  IpAddr a;
  a.v6_ = is_v6;
  for (size_t i = a.size(); i-- > 0;) {
    a.bytes_[i] = static_cast<uint8_t>(n & 0xff);
    n >>= 8;
  }
  return a;
}

IpAddr IpAddr::plus(long long delta) const {
  unsigned __int128 n = number();
  if (delta >= 0) {
    n += static_cast<unsigned __int128>(delta);
  } else {
    n -= static_cast<unsigned __int128>(-delta);
  }
  if (!v6_) n &= 0xffffffffu;
  return fromNumber(v6_, n);
}

bool IpAddr::isUnspecified() const { return number() == 0; }

bool IpAddr::isLinkLocal() const {
  if (v6_) return bytes_[0] == 0xfe && (bytes_[1] & 0xc0) == 0x80;
  return bytes_[0] == 169 && bytes_[1] == 254;
}

std::string IpAddr::str() const {
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(family(), bytes_.data(), buf, sizeof(buf));
  return buf;
}

Result<IpPrefix> IpPrefix::parse(std::string_view text, bool allow_bare) {
  auto slash = text.find('/');
  std::string_view addr_part = text.substr(0, slash);
  auto addr = IpAddr::parse(addr_part);
  if (!addr.ok()) return fail(Errc::kInvalid, "'" + std::string(text) + "' is not a CIDR");
  int len = addr->bits();
  if (slash == std::string_view::npos) {
    if (!allow_bare) {
      return fail(Errc::kInvalid, "'" + std::string(text) + "' has no prefix length");
    }
  } else {
    auto len_part = text.substr(slash + 1);
    auto [p, ec] = std::from_chars(len_part.data(), len_part.data() + len_part.size(), len);
    if (ec != std::errc() || p != len_part.data() + len_part.size() || len_part.empty() ||
        len < 0 || len > addr->bits()) {
      return fail(Errc::kInvalid, "'" + std::string(text) + "' has a bad prefix length");
    }
  }
  return IpPrefix(*addr, len);
}

static unsigned __int128 hostMask(int bits, int len) {
  if (len >= bits) return 0;
  // ::/0: all 128 bits are host bits, and a shift by 128 is undefined.
  if (bits - len >= 128) return ~static_cast<unsigned __int128>(0);
  unsigned __int128 one = 1;
  return (one << (bits - len)) - 1;
}

IpPrefix IpPrefix::network() const {
  unsigned __int128 n = addr_.number() & ~hostMask(addr_.bits(), len_);
  return {IpAddr::fromNumber(addr_.isV6(), n), len_};
}

IpAddr IpPrefix::last() const {
  return IpAddr::fromNumber(addr_.isV6(), network().addr().number() | hostMask(addr_.bits(), len_));
}

bool IpPrefix::contains(const IpAddr& a) const {
  if (a.isV6() != addr_.isV6()) return false;
  return (a.number() & ~hostMask(a.bits(), len_)) == network().addr().number();
}

bool IpPrefix::overlaps(const IpPrefix& o) const {
  if (isV4() != o.isV4()) return false;
  return contains(o.addr()) || o.contains(addr_);
}

std::string IpPrefix::str() const { return addr_.str() + "/" + std::to_string(len_); }

Result<MacAddr> MacAddr::parse(std::string_view text) {
  std::array<uint8_t, 6> b{};
  if (text.size() != 17)
    return fail(Errc::kInvalid, "'" + std::string(text) + "' is not a MAC address");
  for (size_t i = 0; i < 6; ++i) {
    auto part = text.substr(i * 3, 2);
    if (i < 5 && text[i * 3 + 2] != ':' && text[i * 3 + 2] != '-') {
      return fail(Errc::kInvalid, "'" + std::string(text) + "' is not a MAC address");
    }
    auto [p, ec] = std::from_chars(part.data(), part.data() + 2, b[i], 16);
    if (ec != std::errc() || p != part.data() + 2) {
      return fail(Errc::kInvalid, "'" + std::string(text) + "' is not a MAC address");
    }
  }
  return MacAddr(b);
}

MacAddr MacAddr::fromName(std::string_view name) {
  uint64_t h = stableHash(name);
  std::array<uint8_t, 6> b{};
  for (int i = 0; i < 6; ++i) b[i] = static_cast<uint8_t>(h >> (8 * i));
  b[0] = static_cast<uint8_t>((b[0] & 0xfe) | 0x02);  // unicast, locally administered
  return MacAddr(b);
}

bool MacAddr::isZero() const {
  for (auto x : bytes_) {
    if (x != 0) return false;
  }
  return true;
}

std::string MacAddr::str() const {
  char buf[18];
  (void)std::snprintf(buf, sizeof(buf), "%02x:%02x:%02x:%02x:%02x:%02x", bytes_[0], bytes_[1],
                      bytes_[2], bytes_[3], bytes_[4], bytes_[5]);
  return buf;
}

std::string stableHex8(std::string_view text) {
  char buf[9];
  (void)std::snprintf(buf, sizeof(buf), "%08x",
                      static_cast<unsigned>(stableHash(text) & 0xffffffffu));
  return buf;
}

uint64_t stableHash(std::string_view text) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

}  // namespace plumb
