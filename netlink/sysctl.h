// Per-namespace sysctls (/proc/sys/net is resolved in the namespace of whoever opens it).
#pragma once

#ifdef PLUMB_FRONT_END
#error "front ends speak only to the engine: include plugin/core/{engine,host,in_guest}.h"
#endif

#include <string>

#include "base/result.h"
#include "netlink/netns.h"

namespace plumb::netlink {

// key in dotted or slashed form: "net.ipv4.ip_forward". ns nullptr: the caller's namespace.
Status writeSysctl(const Netns* ns, const std::string& key, const std::string& value);
Result<std::string> readSysctl(const Netns* ns, const std::string& key);

}  // namespace plumb::netlink
