// IpamDriver.*: pools and addresses in the store's IPAM, which the CNI plugin uses too, so a
// Docker network and a CNI conflist on one subnet never hand out the same address.
#include <fmt/format.h>

#include <random>

#include "base/json.h"
#include "base/log.h"
#include "plugin/core/host.h"
#include "plugin/core/ipam.h"
#include "plugin/docker/driver.h"

namespace plumb::docker {

namespace jr = plumb::json_read;

namespace {

constexpr const char* kLocalSpace = "plumb-local";
constexpr const char* kGlobalSpace = "plumb-global";
constexpr const char* kGatewayRequest = "com.docker.network.gateway";
constexpr const char* kMacOption = "com.docker.network.endpoint.macaddress";

struct PoolConfig {
  bool v6 = false;
  std::optional<IpPrefix> sub_pool;  // where addresses come from (--ip-range)
  bool cluster = false;              // shared with other hosts through etcd
  std::optional<IpAddr> gateway;     // a cluster pool's: never handed out by any host
  std::string space;
};

json poolRecord(const PoolConfig& c) {
  json j = {{"v6", c.v6}, {"sub_pool", c.sub_pool ? c.sub_pool->str() : ""}, {"space", c.space}};
  if (c.cluster) j["cluster"] = true;
  if (c.gateway) j["gateway"] = c.gateway->str();
  return j;
}

Result<PoolConfig> poolConfig(const core::Pool& pool) {
  PoolConfig c;
  auto j = jr::parse(pool.config);
  if (!j.ok()) return fail(Errc::kIo, "pool " + pool.id + " has a damaged record");
  std::string sub, gateway;
  PLUMB_TRY(jr::boolean(*j, "v6", c.v6));
  PLUMB_TRY(jr::str(*j, "sub_pool", sub));
  PLUMB_TRY(jr::boolean(*j, "cluster", c.cluster));
  PLUMB_TRY(jr::str(*j, "gateway", gateway));
  PLUMB_TRY(jr::str(*j, "space", c.space));
  if (!gateway.empty()) {
    PLUMB_ASSIGN(auto g, IpAddr::parse(gateway));
    c.gateway = g;
  }
  if (!sub.empty()) {
    PLUMB_ASSIGN(auto p, IpPrefix::parse(sub));
    c.sub_pool = p;
  }
  return c;
}

Result<core::Pool> loadPool(core::Ipam& ipam, const json& req) {
  std::string id;
  PLUMB_TRY(jr::str(req, "PoolID", id));
  if (id.empty()) return fail(Errc::kInvalid, "PoolID is missing");
  PLUMB_ASSIGN(auto pool, ipam.findPool(id));
  if (!pool) return fail(Errc::kNotFound, "pool " + id + " is unknown");
  return *pool;
}

// A pool shared through etcd needs a daemon that reaches it.
Status clusterReady(const core::Pool& pool, const PoolConfig& c, bool configured) {
  if (c.cluster && !configured)
    return fail(Errc::kInvalid, "pool " + pool.id +
                                    " is shared through etcd: start plumb daemon with "
                                    "--etcd-endpoints");
  return {};
}

// Each Docker address is its own owner: dockerd releases addresses one by one.
core::AttachmentKey addressOwner(const std::string& mac) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  return {"docker-ipam", fmt::format("{:016x}", rng()), mac};
}

}  // namespace

Result<json> Driver::ipamCapabilities(core::Store&, const json&) {
  // The MAC is kept with the address, for `plumb ls` and for whoever reads the store.
  return json{{"RequiresMACAddress", true}, {"RequiresRequestReplay", false}};
}

Result<json> Driver::defaultAddressSpaces(core::Store&, const json&) {
  return json{{"LocalDefaultAddressSpace", kLocalSpace},
              {"GlobalDefaultAddressSpace", kGlobalSpace}};
}

Result<IpPrefix> Driver::pickSubnet(core::Store& store, bool v6) {
  core::Ipam ipam(store);
  PLUMB_ASSIGN(auto pools, ipam.listPools());
  std::vector<IpPrefix> taken;
  for (const auto& p : pools) taken.push_back(p.subnet);
  // Subnets the host already routes (its own LAN, a VPN) are never handed out.
  PLUMB_ASSIGN(auto routed, core::routedSubnets(v6));
  taken.insert(taken.end(), routed.begin(), routed.end());
  for (const auto& [base, size] : cfg_.default_pools) {
    if (base.isV4() == v6 || size < base.len()) continue;
    unsigned bits = static_cast<unsigned>(size - base.len());
    unsigned long long count = bits >= 16 ? (1ULL << 16) : (1ULL << bits);
    for (unsigned long long i = 0; i < count; ++i) {
      unsigned shift = static_cast<unsigned>((v6 ? 128 : 32) - size);
      IpAddr a = base.network().addr();
      unsigned __int128 step = static_cast<unsigned __int128>(i) << shift;
      IpPrefix candidate(IpAddr::fromNumber(v6, a.number() + step), size);
      bool clash = false;
      for (const auto& t : taken) clash |= t.overlaps(candidate);
      if (!clash) return candidate;
    }
  }
  return fail(Errc::kExhausted, std::string("no free IPv") + (v6 ? "6" : "4") +
                                    " subnet is left in the default pools; name one with --subnet");
}

Result<json> Driver::requestPool(core::Store& store, const json& req) {
  std::string space, pool_text, sub_text;
  bool v6 = false;
  PLUMB_TRY(jr::str(req, "AddressSpace", space));
  PLUMB_TRY(jr::str(req, "Pool", pool_text));
  PLUMB_TRY(jr::str(req, "SubPool", sub_text));
  PLUMB_TRY(jr::boolean(req, "V6", v6));
  core::Ipam ipam(store);
  PoolConfig c;
  c.v6 = v6;
  c.space = space;
  core::Pool pool;
  pool.frontend = kFrontend;
  if (!sub_text.empty()) {
    auto sub = IpPrefix::parse(sub_text);
    if (!sub.ok()) return fail(Errc::kInvalid, "SubPool: " + sub.error().message);
    c.sub_pool = sub->network();
  }
  if (!pool_text.empty()) {
    auto p = IpPrefix::parse(pool_text);
    if (!p.ok()) return fail(Errc::kInvalid, "Pool: " + p.error().message);
    if (p->isV4() == v6) {
      return fail(Errc::kInvalid,
                  "pool " + pool_text + " is not an IPv" + std::string(v6 ? "6" : "4") + " subnet");
    }
    if (c.sub_pool && !(p->contains(c.sub_pool->addr()) && c.sub_pool->len() >= p->len()))
      return fail(Errc::kInvalid, "SubPool " + sub_text + " is outside pool " + pool_text);
    pool.subnet = p->network();
    pool.id = pool.subnet.str();
    // A subnet given by name is the same on every host's `docker network create`: with etcd,
    // it is shared (an automatic one may differ from host to host, and stays local).
    if (cfg_.cluster) {
      c.cluster = true;
      core::IpRange whole{pool.subnet, std::nullopt, std::nullopt, std::nullopt};
      auto valid = core::validateClusterIpam(*cfg_.cluster, {{whole}});
      if (!valid.ok()) return std::move(valid).error().wrap("failed to share pool " + pool_text);
    }
    pool.config = poolRecord(c).dump();
    auto st = ipam.addPool(pool);
    if (!st.ok()) return std::move(st).error().wrap("failed to claim pool " + pool_text);
  } else {
    if (c.sub_pool) return fail(Errc::kInvalid, "SubPool needs a Pool");
    // Another daemon thread may claim the same subnet between the pick and the claim.
    for (int attempt = 0;; ++attempt) {
      PLUMB_ASSIGN(pool.subnet, pickSubnet(store, v6));
      pool.id = pool.subnet.str();
      pool.config = poolRecord(c).dump();
      auto st = ipam.addPool(pool);
      if (st.ok()) break;
      if (st.error().code != Errc::kExists || attempt == 8)
        return std::move(st).error().wrap("failed to claim a pool");
    }
  }
  log::get("docker")->info("pool {} claimed", pool.id);
  return json{{"PoolID", pool.id}, {"Pool", pool.subnet.str()}, {"Data", json::object()}};
}

Result<json> Driver::releasePool(core::Store& store, const json& req) {
  core::Ipam ipam(store);
  PLUMB_ASSIGN(auto pool, loadPool(ipam, req));
  PLUMB_TRY(ipam.removePool(pool.id));
  log::get("docker")->info("pool {} released", pool.id);
  return json::object();
}

Result<json> Driver::requestAddress(core::Store& store, const json& req) {
  core::Ipam ipam(store);
  PLUMB_ASSIGN(auto pool, loadPool(ipam, req));
  PLUMB_ASSIGN(auto c, poolConfig(pool));
  PLUMB_TRY(clusterReady(pool, c, cfg_.cluster.has_value()));
  std::string address_text, type, mac;
  PLUMB_TRY(jr::str(req, "Address", address_text));
  PLUMB_ASSIGN(const json* options, jr::object(req, "Options"));
  if (options) {
    PLUMB_TRY(jr::str(*options, "RequestAddressType", type, "Options"));
    PLUMB_TRY(jr::str(*options, kMacOption, mac, "Options"));
  }
  auto owner = addressOwner(mac);
  auto answer = [&](const IpAddr& a) -> json {
    return {{"Address", IpPrefix(a, pool.subnet.len()).str()}, {"Data", json::object()}};
  };
  std::optional<IpAddr> wanted;
  if (!address_text.empty()) {
    auto a = IpAddr::parse(address_text);
    if (!a.ok()) return fail(Errc::kInvalid, "Address: " + a.error().message);
    wanted = *a;
  }
  // The gateway, reserved on this host: in a cluster pool every host's network has it (each
  // host's `docker network create` names the same one), and it is outside every block.
  if (type == kGatewayRequest && c.cluster) {
    core::IpRange whole{pool.subnet, std::nullopt, std::nullopt, std::nullopt};
    IpAddr gw = wanted ? *wanted : whole.firstUsable();
    auto st = ipam.reserve(pool.subnet, gw, owner);
    if (!st.ok() && st.error().code != Errc::kExists) return std::move(st).error();
    c.gateway = gw;
    PLUMB_TRY(ipam.updatePoolConfig(pool.id, poolRecord(c).dump()));
    return answer(gw);
  }
  if (wanted && !c.cluster) {
    auto st = ipam.reserve(pool.subnet, *wanted, owner);
    if (!st.ok())
      return std::move(st).error().wrap("failed to reserve " + wanted->str() + " in pool " +
                                        pool.id);
    return answer(*wanted);
  }
  core::IpRange range{c.sub_pool ? *c.sub_pool : pool.subnet, std::nullopt, std::nullopt,
                      std::nullopt};
  PLUMB_TRY(range.normalise());
  range.subnet = pool.subnet;  // the sub-pool bounds the range; the subnet stays the pool's
  if (type == kGatewayRequest) {
    // The pool's first address, as Docker's own IPAM, unless something else holds it.
    core::IpRange whole{pool.subnet, std::nullopt, std::nullopt, std::nullopt};
    IpAddr first = whole.firstUsable();
    auto st = ipam.reserve(pool.subnet, first, owner);
    if (st.ok()) return answer(first);
    if (st.error().code != Errc::kExists) return std::move(st).error();
  }
  core::IpamRequest ir;
  ir.owner = owner;
  if (c.cluster) {
    range.gateway = c.gateway;
    ir.range_sets = {{range}};
    if (wanted) ir.requested = {*wanted};
    auto got = core::ClusterAddresses(store, *cfg_.cluster, ir, {}).allocate();
    if (!got.ok())
      return std::move(got).error().wrap("failed to allocate an address in pool " + pool.id);
    return answer(got->addresses.front().address.addr());
  }
  ir.range_sets = {{range}};
  auto got = ipam.allocate(ir);
  if (!got.ok())
    return std::move(got).error().wrap("failed to allocate an address in pool " + pool.id);
  return answer(got->front().address.addr());
}

Result<json> Driver::releaseAddress(core::Store& store, const json& req) {
  core::Ipam ipam(store);
  PLUMB_ASSIGN(auto pool, loadPool(ipam, req));
  std::string address_text;
  PLUMB_TRY(jr::str(req, "Address", address_text));
  // "a.b.c.d" from dockerd; "a.b.c.d/len" is taken too.
  auto a = IpPrefix::parse(address_text, true);
  if (!a.ok()) return fail(Errc::kInvalid, "Address: " + a.error().message);
  if (!pool.subnet.contains(a->addr()))
    return fail(Errc::kInvalid, "address " + address_text + " is outside pool " + pool.id);
  PLUMB_ASSIGN(auto c, poolConfig(pool));
  PLUMB_TRY(clusterReady(pool, c, cfg_.cluster.has_value()));
  if (c.cluster) {
    // Given back here; a block it leaves empty goes back to etcd.
    core::IpamRequest ir;
    ir.owner = addressOwner("");
    ir.range_sets = {{core::IpRange{pool.subnet, std::nullopt, std::nullopt, c.gateway}}};
    PLUMB_TRY(ir.range_sets[0][0].normalise());
    PLUMB_TRY(core::ClusterAddresses(store, *cfg_.cluster, ir, {}).releaseAddress(a->addr()));
    return json::object();
  }
  PLUMB_TRY(ipam.releaseAddress(pool.subnet, a->addr()));
  return json::object();
}

}  // namespace plumb::docker
