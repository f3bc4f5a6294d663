// Built-in IPAM on the shared store. Free space is kept as spans per subnet, so allocating,
// releasing and reserving are a few index look-ups whatever the number of addresses in use.
// Free space is kept per subnet, not per network: a Docker network and a CNI conflist on the
// same subnet never hand out the same address. Nor do different but overlapping subnets
// (10.88.0.0/16 and 10.88.1.0/24, two networks or two ranges of one config): an address
// allocated in one is skipped in every other. The Docker front end refuses overlapping
// networks.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/ip.h"
#include "base/result.h"
#include "plugin/core/store.h"
#include "plugin/core/types.h"

namespace plumb::core {

struct IpRange {
  IpPrefix subnet;
  std::optional<IpAddr> start;  // default: first usable address
  std::optional<IpAddr> end;    // default: last usable address
  std::optional<IpAddr> gateway;

  // Fills defaults and checks that start, end and gateway fit the subnet.
  Status normalise();
  IpAddr firstUsable() const;
  IpAddr lastUsable() const;
  std::string describe() const;
};

// One address is taken from each range set (host-local's "ranges": one set per family).
using RangeSet = std::vector<IpRange>;

struct IpamRequest {
  AttachmentKey owner;
  std::vector<RangeSet> range_sets;
  std::vector<IpAddr> requested;  // each must fall in one range set
};

struct Allocation {
  IpPrefix address;  // address with the subnet's prefix length
  std::optional<IpAddr> gateway;
  // Never handed out before by this store: no neighbour can hold a stale entry for it.
  bool fresh = false;
};

// A subnet handed out as a whole (Docker's RequestPool). Pools never overlap one another;
// addresses within one are allocated like any other subnet's, shared with CNI configs.
struct Pool {
  std::string id;
  IpPrefix subnet;
  std::string frontend;
  std::string config;  // the front end's own JSON
};

class Ipam {
 public:
  explicit Ipam(Store& store) : store_(store) {}

  // Idempotent: an owner that already holds addresses gets the same ones back.
  Result<std::vector<Allocation>> allocate(const IpamRequest& req);
  // Releases everything the owner holds; nothing held is success.
  Status release(const AttachmentKey& owner);
  Result<std::vector<Allocation>> lookup(const AttachmentKey& owner);
  // Takes one specific address for an owner (Docker's gateway, a static request).
  Status reserve(const IpPrefix& subnet, const IpAddr& addr, const AttachmentKey& owner,
                 const std::optional<IpAddr>& gateway = std::nullopt);
  // Releases one address of a subnet, whoever holds it.
  Status releaseAddress(const IpPrefix& subnet, const IpAddr& addr);
  // Claims a pool; kExists when its id is taken or its subnet overlaps another's.
  Status addPool(const Pool& pool);
  Result<std::optional<Pool>> findPool(const std::string& id);
  Result<std::vector<Pool>> listPools();
  Status removePool(const std::string& id);  // missing is success
  Status updatePoolConfig(const std::string& id, const std::string& config);
  // How many addresses of subnet between lo and hi (inclusive) are held.
  Result<long long> countHeld(const IpPrefix& subnet, const IpAddr& lo, const IpAddr& hi);
  // Every owner that holds addresses (for GC).
  Result<std::vector<AttachmentKey>> owners(const std::string& network);
  // Every address held, with its owner, whatever the network (plumb doctor).
  Result<std::vector<std::pair<AttachmentKey, std::string>>> held();

 private:
  Store& store_;
};

// The engine's own IPAM as an attachment's address source: allocate takes one address from
// each range set (idempotent for its owner), release gives back all the owner holds.
class IpamAddresses : public AddressSource {
 public:
  IpamAddresses(Store& store, IpamRequest req, std::vector<RouteSpec> routes)
      : store_(store), req_(std::move(req)), routes_(std::move(routes)) {}
  std::string describe() const override;
  Result<Addressing> allocate() override;
  Status release() override;
  bool inStore() const override { return true; }

 private:
  Store& store_;
  IpamRequest req_;
  std::vector<RouteSpec> routes_;
};

}  // namespace plumb::core
