#include "base/names.h"

#include <cctype>

namespace plumb {

namespace {
constexpr size_t kIfnameMax = 15;  // IFNAMSIZ - 1
constexpr size_t kIdMax = 128;

bool idChar(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' ||
         c == '_' || c == '.';
}

// What an error may quote of a rejected name: short and printable, so the message stays one
// line of valid UTF-8 whatever the input held.
std::string quoted(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 64)) {
    auto u = static_cast<unsigned char>(c);
    out += u >= 0x20 && u < 0x7f ? c : '?';
  }
  return "'" + out + (s.size() > 64 ? "...'" : "'");
}
}  // namespace

Status validateIfname(const std::string& name) {
  if (name.empty()) return fail(Errc::kInvalid, "interface name is empty");
  if (name.size() > kIfnameMax)
    return fail(Errc::kInvalid, "interface name " + quoted(name) + " is longer than 15 characters");
  if (name == "." || name == "..")
    return fail(Errc::kInvalid, "interface name " + quoted(name) + " is not allowed");
  for (char c : name) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u >= 0x7f || c == '/' || c == ':')
      return fail(Errc::kInvalid,
                  "interface name " + quoted(name) + " holds a character not allowed");
  }
  return {};
}

Status validatePciAddress(const std::string& pci) {
  auto bad = [&] {
    return fail(Errc::kInvalid, "PCI address " + quoted(pci) +
                                    " is not valid (DOMAIN:BUS:DEVICE.FUNCTION, as 0000:03:00.1)");
  };
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  auto colon = pci.find(':');
  if (colon == std::string::npos || colon < 4 || colon > 8) return bad();
  // After the domain: "BB:DD.F".
  std::string rest = pci.substr(colon + 1);
  if (rest.size() != 7 || rest[2] != ':' || rest[5] != '.' || rest[6] < '0' || rest[6] > '7')
    return bad();
  for (size_t i = 0; i < colon; ++i) {
    if (!hex(pci[i])) return bad();
  }
  for (size_t i : {0, 1, 3, 4}) {
    if (!hex(rest[i])) return bad();
  }
  return {};
}

Status validateId(const std::string& what, const std::string& id) {
  if (id.empty()) return fail(Errc::kInvalid, what + " is empty");
  if (id.size() > kIdMax)
    return fail(Errc::kInvalid, what + " " + quoted(id) + " is longer than 128 characters");
  bool chars_ok = true;
  for (char c : id) chars_ok &= idChar(c);
  bool alnum_first = idChar(id[0]) && id[0] != '-' && id[0] != '_' && id[0] != '.';
  if (!chars_ok || !alnum_first || id.find("..") != std::string::npos) {
    return fail(Errc::kInvalid, what + " " + quoted(id) +
                                    " is not valid (letters, digits, '_', '.', '-', starting "
                                    "with a letter or digit, no '..')");
  }
  return {};
}

Status checkUnicast(const MacAddr& mac) {
  if (mac.isMulticast())
    return fail(Errc::kInvalid, "MAC address " + mac.str() + " is a multicast address");
  if (mac.isZero()) return fail(Errc::kInvalid, "MAC address " + mac.str() + " is all zeros");
  return {};
}

}  // namespace plumb
