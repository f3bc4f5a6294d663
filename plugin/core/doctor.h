// `plumb doctor [--fix]`: the store reconciled with the kernel, whichever front end made what.
// Each difference is one finding: a record the kernel no longer backs (its netns or interface
// gone, or an attach killed mid-way), or something of plumb's the store does not account for
// (a stamped link, a tagged firewall rule, a DHCP client, an OVS port, a VF claim, an address).
// Fixing removes only what belongs to no attachment and carries plumb's mark (an IFLA_IFALIAS
// stamp, a rule comment, an OVS owner id, the DHCP hook's marker in a client's environment):
// nothing plumb did not make is touched, and a live attachment is never changed.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "base/result.h"
#include "plugin/core/store.h"

namespace plumb::core {

struct Finding {
  Finding(std::string k, std::string s, std::string d)
      : kind(std::move(k)), subject(std::move(s)), detail(std::move(d)) {}
  std::string kind;     // stale-record, abandoned-attach, orphan-link, ... (docs/cli.md lists them)
  std::string subject;  // what it is about: an attachment key, a link, a rule's tag, a pid
  std::string detail;   // what is wrong, in one line
  bool fixable = false;  // --fix would remove it (a device, say, is only reported)
  bool fixed = false;
  std::string fix_error;  // why --fix could not
};

struct DoctorOptions {
  bool fix = false;
  // OVSDB sockets to look for plumb's ports in, besides those its records name; empty: the
  // default ($PLUMB_OVSDB, else OVS's), when that socket exists.
  std::vector<std::string> ovsdb;
};

// Reads the kernel before the store, so an attach under way (recorded before it makes
// anything) is never taken for a leak. With fix, records go first (their detach takes their
// links, port, VF and addresses), then whatever is left of plumb's that no record accounts for.
Result<std::vector<Finding>> doctor(Store& store, const DoctorOptions& options);

}  // namespace plumb::core
