// NetworkDriver.*: networks and endpoints recorded in the store, kernel work by the engine.
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/json.h"
#include "base/log.h"
#include "base/names.h"
#include "plugin/core/engine.h"
#include "plugin/core/host.h"
#include "plugin/docker/driver.h"

namespace plumb::docker {

namespace jr = plumb::json_read;

namespace {

// The attachment key's ifname: Docker names the interface itself (DstPrefix + a number).
constexpr const char* kIfname = "eth";

std::string shortId(const std::string& id) { return id.substr(0, 12); }

Result<NetworkConfig> loadNetwork(core::Store& store, const std::string& id) {
  PLUMB_TRY(validateId("NetworkID", id));
  PLUMB_ASSIGN(auto rec, store.findNetwork(id));
  if (!rec || rec->frontend != kFrontend)
    return fail(Errc::kNotFound, "network " + shortId(id) + " is not a plumb network");
  auto j = jr::parse(rec->config);
  if (!j.ok()) return fail(Errc::kIo, "network " + shortId(id) + " has a damaged record");
  return NetworkConfig::fromJson(*j);
}

struct Ids {
  std::string network, endpoint;
};

Result<Ids> idsOf(const json& req) {
  Ids ids;
  PLUMB_TRY(jr::str(req, "NetworkID", ids.network));
  PLUMB_TRY(jr::str(req, "EndpointID", ids.endpoint));
  PLUMB_TRY(validateId("NetworkID", ids.network));
  PLUMB_TRY(validateId("EndpointID", ids.endpoint));
  return ids;
}

Result<EndpointConfig> loadEndpoint(core::Store& store, const Ids& ids) {
  PLUMB_ASSIGN(auto rec, store.findEndpoint(ids.network, ids.endpoint));
  if (!rec) {
    return fail(Errc::kNotFound, "endpoint " + shortId(ids.endpoint) + " of network " +
                                     shortId(ids.network) + " is unknown");
  }
  auto j = jr::parse(rec->config);
  if (!j.ok())
    return fail(Errc::kIo, "endpoint " + shortId(ids.endpoint) + " has a damaged record");
  return EndpointConfig::fromJson(*j);
}

Status saveEndpoint(core::Store& store, const EndpointConfig& ep) {
  return store.updateEndpoint({ep.network, ep.id, ep.toJson().dump(), 0});
}

core::VethBridgePlan bridgePlan(const NetworkConfig& n) {
  core::VethBridgePlan plan;
  plan.bridge = n.bridge;
  plan.create_bridge = true;
  plan.internal = n.internal;
  plan.ipv6_forwarding = n.ipv6_forwarding;
  for (const auto* list : {&n.v4, &n.v6}) {
    for (const auto& s : *list) {
      if (s.gateway) plan.gateway_addresses.emplace_back(*s.gateway, s.pool.len());
      if (n.masquerade && s.pool.isV4()) plan.masquerade.push_back(s.pool);
    }
  }
  return plan;
}

core::PassthroughPlan passthroughPlan(const NetworkConfig& n) {
  core::PassthroughPlan p;
  p.device = n.device;
  if (!n.hwaddr.empty()) p.hwaddr = *MacAddr::parse(n.hwaddr);
  p.pci_address = n.pci;
  return p;
}

core::SriovPlan sriovPlan(const NetworkConfig& n) {
  core::SriovPlan p;
  p.pf = n.pf;
  p.settings = n.vf;
  p.settings.vlan = n.vlan;
  return p;
}

core::OvsPlan ovsPlan(const NetworkConfig& n) {
  core::OvsPlan p;
  p.bridge = n.bridge;
  p.vlan = n.vlan;
  p.ovsdb = n.ovsdb;
  return p;
}

core::AttachmentKey keyOf(const Ids& ids) { return {ids.network, ids.endpoint, kIfname}; }

// A host port for a mapping that names none: one the kernel says is free now.
Result<uint16_t> freePort(const std::string& proto) {
  int type = proto == "udp" ? SOCK_DGRAM : SOCK_STREAM;
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return failErrno(errno, "failed to find a free " + proto + " port");
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  socklen_t len = sizeof(sa);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
    return failErrno(errno, "failed to find a free " + proto + " port");
  }
  return ntohs(sa.sin_port);
}

}  // namespace

Result<json> Driver::capabilities(core::Store&, const json&) {
  return json{{"Scope", "local"}, {"ConnectivityScope", "local"}};
}

Result<json> Driver::createNetwork(core::Store& store, const json& req) {
  auto parsed = parseCreateNetwork(req);
  if (!parsed.ok()) {
    std::string id;
    (void)jr::str(req, "NetworkID", id);
    return std::move(parsed).error().wrap("failed to create network " + shortId(id));
  }
  NetworkConfig n = std::move(parsed).value();
  auto failed = [&](const Error& e) {
    return Error(e).wrap("failed to create network " + shortId(n.id));
  };
  std::lock_guard lock(networks_mu_);
  PLUMB_ASSIGN(auto existing, store.findNetwork(n.id));
  if (existing) {
    // dockerd retrying a call whose answer it lost: the same request is success.
    if (existing->config == n.toJson().dump()) return json::object();
    return failed(makeError(Errc::kExists, "a network with this id exists"));
  }
  PLUMB_ASSIGN(auto others, store.listNetworks(kFrontend));
  for (const auto& rec : others) {
    auto j = jr::parse(rec.config);
    if (!j.ok()) continue;
    auto other = NetworkConfig::fromJson(*j);
    if (!other.ok()) continue;
    for (const auto& mine : n.subnets()) {
      for (const auto& theirs : other->subnets()) {
        if (mine.overlaps(theirs)) {
          return failed(makeError(Errc::kExists, "subnet " + mine.str() + " overlaps " +
                                                     theirs.str() + " of network " +
                                                     shortId(other->id)));
        }
      }
    }
    if (n.mode == "bridge" && other->mode == "bridge" && other->bridge == n.bridge) {
      return failed(makeError(Errc::kExists,
                              "bridge " + n.bridge + " belongs to network " + shortId(other->id)));
    }
  }
  bool made_bridge = false;
  if (n.mode == "bridge") {
    auto made = core::Engine(store).prepareBridge(n.id, bridgePlan(n), n.mtu);
    if (!made.ok()) return failed(made.error());
    made_bridge = *made;
  } else if (n.mode == "passthrough") {
    auto dev = core::checkPassthroughDevice(passthroughPlan(n));
    if (!dev.ok()) return failed(dev.error());
  } else if (n.mode == "ovs") {
    auto ready = core::checkOvsBridge(ovsPlan(n));
    if (!ready.ok()) return failed(ready.error());
  } else if (n.mode == "sriov") {
    // The settings as the engine checks them, and the PF with a VF free now.
    core::AttachRequest probe;
    probe.key = {n.id, "probe", kIfname};
    probe.plan = sriovPlan(n);
    probe.placement = core::Placement::kHostSide;
    auto valid = core::Engine::validate(probe);
    if (!valid.ok()) return failed(valid.error());
    auto ready = core::checkSriov(sriovPlan(n), store);
    if (!ready.ok()) return failed(ready.error());
  } else {
    auto parent = core::findHostLink(n.parent);
    if (!parent.ok()) return failed(parent.error());
    if (!*parent)
      return failed(makeError(Errc::kNotFound, "parent interface " + n.parent + " does not exist"));
  }
  auto st = store.insertNetwork({n.id, kFrontend, n.toJson().dump(), 0});
  if (!st.ok()) {
    if (made_bridge) (void)core::Engine(store).removeBridge(n.bridge);
    return failed(st.error());
  }
  log::get("docker")->info("network {} created ({} {})", shortId(n.id), n.mode,
                           n.mode == "bridge" || n.mode == "ovs" ? n.bridge
                           : n.mode == "sriov"                   ? n.pf
                                                                 : n.parent);
  return json::object();
}

Result<json> Driver::deleteNetwork(core::Store& store, const json& req) {
  std::string id;
  PLUMB_TRY(jr::str(req, "NetworkID", id));
  std::lock_guard lock(networks_mu_);
  PLUMB_ASSIGN(auto n, loadNetwork(store, id));
  core::Engine engine(store);
  // dockerd deletes endpoints first; whatever is left (a dockerd that crashed) goes too.
  PLUMB_ASSIGN(auto endpoints, store.listEndpoints(id));
  for (const auto& ep : endpoints) {
    PLUMB_TRY(engine.unpublish(ep.id));
    PLUMB_TRY(engine.detach({keyOf({id, ep.id}), "", {}, {}}));
  }
  core::NetworkRemoval removal{id, "", {}};
  if (n.mode == "bridge") {
    removal.bridge = n.bridge;
    if (n.masquerade) {
      for (const auto& s : n.v4) removal.masquerade.push_back(s.pool);
    }
  }
  PLUMB_TRY(engine.removeNetwork(removal));
  PLUMB_TRY(store.deleteNetwork(id));
  log::get("docker")->info("network {} deleted", shortId(id));
  return json::object();
}

Result<json> Driver::createEndpoint(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ep, parseCreateEndpoint(req));
  PLUMB_ASSIGN(auto n, loadNetwork(store, ep.network));
  json iface = json::object();
  // The device keeps its own MAC (a passthru macvlan takes its parent's): none is made up.
  // A VF keeps its own too: one set through its PF is the user's (--mac-address) only.
  bool own_mac = (n.mode == "macvlan" && n.macvlan_mode == "passthru") || n.mode == "passthrough" ||
                 n.mode == "sriov";
  // Only what dockerd left empty is filled in: it refuses a driver changing its fields.
  if (ep.mac.empty() && !own_mac) {
    // As Docker's bridge driver: 02:42 and the IPv4 address, else one derived from the id.
    MacAddr mac = MacAddr::fromName("docker:" + ep.id);
    if (ep.address) {
      const uint8_t* a = ep.address->addr().data();
      mac = MacAddr({0x02, 0x42, a[0], a[1], a[2], a[3]});
    }
    ep.mac = mac.str();
    iface["MacAddress"] = ep.mac;
  }
  auto st = store.insertEndpoint({ep.network, ep.id, ep.toJson().dump(), 0});
  if (!st.ok()) return std::move(st).error().wrap("failed to create endpoint " + shortId(ep.id));
  return json{{"Interface", iface}};
}

Result<json> Driver::endpointOperInfo(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  PLUMB_ASSIGN(auto n, loadNetwork(store, ids.network));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  PLUMB_ASSIGN(auto rec, store.findAttachment(keyOf(ids)));
  json value = {{"plumb.mode", n.mode},
                {"plumb.via", n.mode == "bridge"    ? n.bridge
                              : n.mode == "macvlan" ? n.parent
                              : n.mode == "sriov"   ? n.pf
                                                    : n.device},
                {"com.docker.network.endpoint.macaddress", ep.mac},
                {"com.docker.network.portmap", portmapJson(ep.published)}};
  if (rec) value["plumb.host_ifname"] = rec->host_ifname;
  if (rec && !rec->pci.empty()) value["plumb.pci"] = rec->pci;
  return json{{"Value", value}};
}

Result<json> Driver::join(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  std::string sandbox;
  PLUMB_TRY(jr::str(req, "SandboxKey", sandbox));
  PLUMB_ASSIGN(auto n, loadNetwork(store, ids.network));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  core::AttachRequest ar;
  ar.key = keyOf(ids);
  ar.netns = sandbox;
  ar.placement = core::Placement::kHostSide;
  ar.frontend = kFrontend;
  ar.mtu = n.mtu;
  if (!ep.mac.empty()) ar.mac = *MacAddr::parse(ep.mac);
  if (n.mode == "bridge") {
    ar.plan = bridgePlan(n);
  } else if (n.mode == "ovs") {
    ar.plan = ovsPlan(n);
  } else if (n.mode == "passthrough") {
    ar.plan = passthroughPlan(n);
    ar.mac.reset();
  } else if (n.mode == "sriov") {
    ar.plan = sriovPlan(n);
  } else {
    PLUMB_ASSIGN(auto mode, core::parseMacvlanMode(n.macvlan_mode));
    ar.plan = core::MacvlanPlan{n.parent, mode};
    if (n.macvlan_mode == "passthru") ar.mac.reset();
  }
  for (const auto& a : {ep.address, ep.address6}) {
    if (a) ar.addresses.push_back({*a, std::nullopt});
  }
  core::Engine engine(store);
  auto result = engine.attach(ar);
  if (!result.ok() && result.error().code == Errc::kExists) {
    // A Join whose answer dockerd never got: start again from nothing.
    PLUMB_TRY(engine.detach({ar.key, "", {}, {}}));
    result = engine.attach(ar);
  }
  if (!result.ok())
    return std::move(result).error().wrap("failed to join endpoint " + shortId(ids.endpoint));
  json out = {{"InterfaceName", {{"SrcName", result->container.name}, {"DstPrefix", kIfname}}}};
  bool gateway = false;
  if (!n.internal) {
    if (!n.v4.empty() && n.v4[0].gateway && ep.address) {
      out["Gateway"] = n.v4[0].gateway->str();
      gateway = true;
    }
    if (!n.v6.empty() && n.v6[0].gateway && ep.address6) {
      out["GatewayIPv6"] = n.v6[0].gateway->str();
      gateway = true;
    }
  }
  // Without it dockerd would add a docker_gwbridge interface to reach out.
  if (!gateway) out["DisableGatewayService"] = true;
  // The network's other subnets are on the same link; plumb.routes go through the gateway
  // (on-link when there is none). RouteType: 0 through NextHop, 1 connected.
  json routes = json::array();
  for (const auto* list : {&n.v4, &n.v6}) {
    for (const auto& s : *list) {
      const auto& mine = s.pool.isV4() ? ep.address : ep.address6;
      if (!mine || s.pool.contains(mine->addr())) continue;
      routes.push_back({{"Destination", s.pool.str()}, {"RouteType", 1}});
    }
  }
  for (const auto& r : n.routes) {
    const auto& subnets = r.isV4() ? n.v4 : n.v6;
    if (!(r.isV4() ? ep.address : ep.address6)) continue;
    if (!n.internal && !subnets.empty() && subnets[0].gateway) {
      routes.push_back(
          {{"Destination", r.str()}, {"RouteType", 0}, {"NextHop", subnets[0].gateway->str()}});
    } else {
      routes.push_back({{"Destination", r.str()}, {"RouteType", 1}});
    }
  }
  if (!routes.empty()) out["StaticRoutes"] = routes;
  return out;
}

Result<json> Driver::leave(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  (void)ep;
  // The interface goes with DeleteEndpoint, after dockerd has taken it out of the sandbox.
  return json::object();
}

Result<json> Driver::deleteEndpoint(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  (void)ep;
  core::Engine engine(store);
  PLUMB_TRY(engine.unpublish(ids.endpoint));
  auto st = engine.detach({keyOf(ids), "", {}, {}});
  if (!st.ok())
    return std::move(st).error().wrap("failed to delete endpoint " + shortId(ids.endpoint));
  PLUMB_TRY(store.deleteEndpoint(ids.network, ids.endpoint));
  return json::object();
}

Result<json> Driver::programExternalConnectivity(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  PLUMB_ASSIGN(auto n, loadNetwork(store, ids.network));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  PLUMB_ASSIGN(const json* options, jr::object(req, "Options"));
  std::vector<core::PortMapping> ports = ep.ports;
  if (options && options->contains("com.docker.network.portmap"))
    PLUMB_ASSIGN(ports, parsePortmap(*options, ep));
  if (ports.empty()) return json::object();
  if (n.internal || n.mode != "bridge") {
    // As Docker's own drivers: an internal network publishes nothing, and a macvlan
    // container is reached on its own address, not through the host.
    log::get("docker")->info("endpoint {}: ports not published on {} network {}", shortId(ep.id),
                             n.internal ? "internal" : "macvlan", shortId(n.id));
    return json::object();
  }
  for (auto& p : ports) {
    if (p.host_port == 0) PLUMB_ASSIGN(p.host_port, freePort(p.proto));
  }
  auto st = core::Engine(store).publish(ep.id, n.bridge, ports);
  if (!st.ok()) {
    return std::move(st).error().wrap("failed to publish ports of endpoint " + shortId(ep.id));
  }
  ep.published = ports;
  PLUMB_TRY(saveEndpoint(store, ep));
  return json::object();
}

Result<json> Driver::revokeExternalConnectivity(core::Store& store, const json& req) {
  PLUMB_ASSIGN(auto ids, idsOf(req));
  PLUMB_ASSIGN(auto ep, loadEndpoint(store, ids));
  PLUMB_TRY(core::Engine(store).unpublish(ep.id));
  if (!ep.published.empty()) {
    ep.published.clear();
    PLUMB_TRY(saveEndpoint(store, ep));
  }
  return json::object();
}

}  // namespace plumb::docker
