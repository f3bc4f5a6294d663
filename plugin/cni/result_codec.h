// The CNI result codec: one model of a CNI result, decoded from any supported version
// (prevResult, delegated IPAM output) and encoded in the version the runtime asked for.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/json.h"
#include "base/result.h"

namespace plumb::cni {

using json = nlohmann::json;

inline const std::vector<std::string>& supportedVersions() {
  static const std::vector<std::string> v = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  return v;
}
bool isSupported(const std::string& version);
// -1, 0, 1 as semantic versions compare; unparsable sorts first.
int compareVersions(const std::string& a, const std::string& b);

struct Interface {
  std::string name;
  std::string mac;
  std::string sandbox;
  int mtu = 0;
  std::string pci_id;  // CNI 1.1 "pciID": a VF without a netdev (vfio-pci)
};

struct IpConfig {
  IpPrefix address;
  std::optional<IpAddr> gateway;
  std::optional<int> interface;  // index into interfaces
};

struct RouteConfig {
  IpPrefix dst;
  std::optional<IpAddr> gw;
  int mtu = 0;
  int priority = 0;
};

struct Dns {
  std::vector<std::string> nameservers;
  std::string domain;
  std::vector<std::string> search;
  std::vector<std::string> options;
  bool empty() const {
    return nameservers.empty() && domain.empty() && search.empty() && options.empty();
  }
};

struct CniResult {
  std::vector<Interface> interfaces;
  std::vector<IpConfig> ips;
  std::vector<RouteConfig> routes;
  Dns dns;
};

Status fromJson(const json& j, Dns& out);
Status fromJson(const json& j, RouteConfig& out);
Status fromJson(const json& j, CniResult& out);
json toJson(const Dns& dns);
// Encodes for version: 0.3.x/0.4.0 carry "version" on each IP; 1.1.0 adds interface MTU.
json toJson(const CniResult& r, const std::string& version);

}  // namespace plumb::cni
