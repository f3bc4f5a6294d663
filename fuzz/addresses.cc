// Every text form of an address, prefix, MAC, endpoint, port, interface name, id and PCI
// address that a user or a peer hands plumb: parsed, and what parses prints back the same way.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "base/endpoint.h"
#include "base/ip.h"
#include "base/names.h"

using namespace plumb;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  if (auto a = IpAddr::parse(text); a.ok()) {
    // An address parses back from its own text to itself.
    auto again = IpAddr::parse(a->str());
    if (!again.ok() || again->str() != a->str()) std::abort();
  }
  for (bool bare : {false, true}) {
    if (auto p = IpPrefix::parse(text, bare); p.ok()) {
      auto again = IpPrefix::parse(p->str());
      if (!again.ok() || again->str() != p->str()) std::abort();
    }
  }
  if (auto m = MacAddr::parse(text); m.ok()) {
    auto again = MacAddr::parse(m->str());
    if (!again.ok() || again->str() != m->str()) std::abort();
    (void)checkUnicast(*m);
  }
  if (auto e = Endpoint::parse(text); e.ok()) (void)Endpoint::parse(e->str());
  (void)parsePort(text);
  (void)validateIfname(text);
  (void)validateId("id", text);
  (void)validatePciAddress(text);
  return 0;
}
