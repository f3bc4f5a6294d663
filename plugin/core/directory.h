// The ambassadors' records, in the store: which guest exposes which service (name, protocol,
// the address and port the host reaches it on) and which guest links to which service (the
// port it listens on inside the guest). `plumb daemon` serves them (plugin/core/ambassadors.h);
// every front end may read them (`plumb ls --links`).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "plugin/core/store.h"

namespace plumb::core {

struct ServiceRecord {
  std::string name;
  bool udp = false;
  std::string guest;    // the exposing guest's id (as attachments name it)
  std::string netns;    // its netns path when it was exposed
  std::string address;  // where the host reaches it (one of its attachments' addresses)
  int port = 0;
  long long created = 0;
};

struct LinkRecord {
  std::string guest;  // the linking guest's id
  std::string name;   // the service it reaches
  bool udp = false;
  std::string netns;  // where its listener lives (127.0.0.1:port in there)
  int port = 0;
  long long created = 0;
};

// How records, requests and listings name a protocol.
inline const char* protoName(bool udp) { return udp ? "udp" : "tcp"; }

// A service name: what goes in a guest's /etc/hosts, so a DNS label's characters (letters,
// digits, '-', '_', '.'), 1-63 of them, starting with a letter or digit.
Status validateServiceName(const std::string& name);

class Directory {
 public:
  explicit Directory(Store& store) : store_(store) {}

  // Adds or replaces (name, proto, guest).
  Status expose(const ServiceRecord& r);
  // kNotFound when the guest exposes no such service (either protocol when both is set).
  Status unexpose(const std::string& guest, const std::string& name, std::optional<bool> udp);
  // Every service, or the endpoints of one name and protocol.
  Result<std::vector<ServiceRecord>> services();
  Result<std::vector<ServiceRecord>> endpoints(const std::string& name, bool udp);

  // Adds or replaces (guest, name, proto).
  Status link(const LinkRecord& r);
  Status unlink(const std::string& guest, const std::string& name, std::optional<bool> udp);
  Result<std::vector<LinkRecord>> links();
  Result<std::optional<LinkRecord>> findLink(const std::string& guest, const std::string& name,
                                             bool udp);

  // Everything of one guest goes (its attachment was removed, its netns died).
  Status forgetGuest(const std::string& guest);

 private:
  Store& store_;
};

}  // namespace plumb::core
