// The one set of rules for names that reach the kernel or the store: interface names, the ids
// that key attachments (container ids, network names, Docker's ids) and unicast MACs. Every
// front end and the engine check with these, so a name one accepts the others accept too.
#pragma once

#include <string>

#include "base/ip.h"
#include "base/result.h"

namespace plumb {

// Interface names: 1..15 printable ASCII bytes, none of '/', ':' or a blank, not "." or "..".
Status validateIfname(const std::string& name);

// Ids that key attachments and networks: 1..128 of [A-Za-z0-9_.-], starting with a letter or
// digit, without "..". Checked byte by byte (no regex): any length is rejected in linear time.
Status validateId(const std::string& what, const std::string& id);

// A PCI address as sysfs names devices: DOMAIN:BUS:DEVICE.FUNCTION in hex, "0000:03:00.1"
// (a domain of 4 to 8 digits). Anything else never reaches a sysfs path.
Status validatePciAddress(const std::string& pci);

// A MAC an interface may take: neither multicast nor all zeros.
Status checkUnicast(const MacAddr& mac);

}  // namespace plumb
