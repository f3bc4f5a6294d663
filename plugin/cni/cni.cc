#include "plugin/cni/cni.h"

#include <set>
#include <string_view>
#include <vector>

#include "base/log.h"
#include "base/names.h"
#include "plugin/cni/config.h"
#include "plugin/cni/exec.h"
#include "plugin/cni/result_codec.h"
#include "plugin/core/engine.h"
#include "plugin/core/host.h"
#include "plugin/core/ipam.h"
#include "plugin/core/store.h"

namespace plumb::cni {
namespace {

constexpr const char* kLatest = "1.1.0";

struct CniError {
  int code;
  std::string msg;
  std::string details;
};

using Outcome = std::variant<std::string, CniError>;  // stdout text or an error

CniError fromError(const Error& e, int fallback = kFailed) {
  int code = fallback;
  switch (e.code) {
    case Errc::kDecode:
      code = kDecodeFailure;
      break;
    case Errc::kInvalid:
      code = kInvalidConfig;
      break;
    case Errc::kIo:
      code = kIoFailure;
      break;
    case Errc::kTryAgain:
      code = kTryAgainLater;
      break;
    case Errc::kExists:
      code = kAlreadyExists;
      break;
    default:
      break;
  }
  return {code, e.message, ""};
}

Output errorOutput(const CniError& e, const std::string& version) {
  json j = {{"cniVersion", version.empty() ? kLatest : version}, {"code", e.code}, {"msg", e.msg}};
  if (!e.details.empty()) j["details"] = e.details;
  return {1, json_read::text(j)};
}

std::string envOr(const Invocation& in, const char* key) {
  auto it = in.env.find(key);
  return it == in.env.end() ? "" : it->second;
}

struct CniArgs {
  std::vector<std::string> ips;
  std::string mac;
};

// The non-empty parts of text between seps, in order.
std::vector<std::string_view> partsOf(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  while (!text.empty()) {
    size_t end = text.find(sep);
    std::string_view part = text.substr(0, end);
    if (!part.empty()) out.push_back(part);
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return out;
}

Result<CniArgs> parseCniArgs(const std::string& text) {
  CniArgs out;
  bool ignore_unknown = false;
  std::vector<std::pair<std::string_view, std::string_view>> pairs;
  for (std::string_view item : partsOf(text, ';')) {
    auto eq = item.find('=');
    if (eq == std::string_view::npos)
      return fail(Errc::kInvalid, "CNI_ARGS entry '" + std::string(item) + "' is not KEY=VALUE");
    pairs.emplace_back(item.substr(0, eq), item.substr(eq + 1));
  }
  for (const auto& [k, v] : pairs) {
    if (k == "IgnoreUnknown") ignore_unknown = v == "1" || v == "true" || v == "True";
  }
  for (const auto& [k, v] : pairs) {
    if (k == "IP") {
      for (std::string_view ip : partsOf(v, ',')) out.ips.emplace_back(ip);
    } else if (k == "MAC") {
      out.mac = v;
    } else if (k != "IgnoreUnknown" && !ignore_unknown) {
      return fail(Errc::kInvalid, "CNI_ARGS has unknown key '" + std::string(k) + "'");
    }
  }
  return out;
}

// Everything one invocation needs, derived from env and config.
struct Call {
  const Invocation& in;
  NetConf conf;
  std::string command, container_id, netns, ifname, cni_path;
  CniArgs args;
  core::Store* store = nullptr;  // the connection opened for this call, or one from a pool
  std::optional<core::AttachRequest> request;  // ADD's, built and validated up front
  core::AttachmentKey key() const { return {conf.name, container_id, ifname}; }
  bool builtinIpam() const {
    return conf.has_ipam && (conf.ipam.type.empty() || conf.ipam.type == "plumb");
  }
  bool delegatedIpam() const { return conf.has_ipam && !builtinIpam(); }
};

Result<PluginRun> delegate(const Call& c, const std::string& command) {
  auto env = c.in.env;
  env["CNI_COMMAND"] = command;
  return execPlugin(c.cni_path, c.conf.ipam.type, env, c.in.input);
}

// A delegated plugin's failure, passed on as it reported it.
CniError delegatedFailure(const Call& c, const PluginRun& run) {
  auto j = json_read::parse(run.out);
  if (j.ok() && j->is_object()) {
    int code = kFailed;
    std::string msg, details;
    (void)json_read::integer(*j, "code", code);
    (void)json_read::str(*j, "msg", msg);
    (void)json_read::str(*j, "details", details);
    return {code, "ipam plugin " + c.conf.ipam.type + ": " + msg, details};
  }
  return {
      kFailed,
      "ipam plugin " + c.conf.ipam.type + " failed with exit code " + std::to_string(run.exit_code),
      ""};
}

Result<IpAddr> parseRequestedIp(const std::string& text) {
  auto p = IpPrefix::parse(text, /*allow_bare=*/true);
  if (!p.ok()) return fail(Errc::kInvalid, "requested IP '" + text + "' is not an address");
  return p->addr();
}

// A delegated IPAM plugin (any ipam.type but plumb's own) as the attachment's address
// source: ADD when the engine allocates, DEL when it rolls back or the container goes. Its own
// error (code, msg, details) is kept to be passed on as it reported it.
class DelegatedIpam : public core::AddressSource {
 public:
  explicit DelegatedIpam(const Call& c) : c_(c) {}
  std::string describe() const override {
    return "allocate addresses through ipam plugin " + c_.conf.ipam.type;
  }
  Result<core::Addressing> allocate() override {
    auto run = delegate(c_, "ADD");
    if (!run.ok()) return std::move(run).error();
    if (run->exit_code != 0) return failure(delegatedFailure(c_, *run));
    auto j = json_read::parse(run->out);
    if (!j.ok())
      return failure(
          {kDecodeFailure, "ipam plugin " + c_.conf.ipam.type + " returned malformed JSON", ""});
    PLUMB_TRY(fromJson(*j, result_));
    core::Addressing out;
    for (const auto& ip : result_.ips) out.addresses.push_back({ip.address, ip.gateway});
    for (const auto& r : result_.routes)
      out.routes.push_back({r.dst, r.gw, r.mtu, r.priority, std::nullopt, false});
    return out;
  }
  Status release() override {
    auto run = delegate(c_, "DEL");
    if (!run.ok())
      return std::move(run).error().wrap("failed to release addresses through " +
                                         c_.conf.ipam.type);
    if (run->exit_code != 0)
      return fail(Errc::kIo, "failed to release addresses: " + delegatedFailure(c_, *run).msg);
    return {};
  }
  const std::optional<CniError>& failed() const { return failed_; }
  const Dns& dns() const { return result_.dns; }

 private:
  Error failure(const CniError& e) {
    failed_ = e;
    return makeError(Errc::kIo, e.msg);
  }
  const Call& c_;
  CniResult result_;
  std::optional<CniError> failed_;
};

// The built-in IPAM's request: the configured ranges (or the runtime's), and the addresses
// asked for in CNI_ARGS, args and runtimeConfig.
Result<core::IpamRequest> ipamRequest(const Call& c) {
  core::IpamRequest req;
  req.owner = c.key();
  req.range_sets = c.conf.runtime_ip_ranges ? *c.conf.runtime_ip_ranges : c.conf.ipam.ranges;
  if (req.range_sets.empty()) return fail(Errc::kInvalid, "ipam needs \"ranges\" or \"subnet\"");
  std::vector<std::string> wanted = c.args.ips;
  wanted.insert(wanted.end(), c.conf.args_ips.begin(), c.conf.args_ips.end());
  wanted.insert(wanted.end(), c.conf.runtime_ips.begin(), c.conf.runtime_ips.end());
  for (const auto& w : wanted) PLUMB_ASSIGN(req.requested.emplace_back(), parseRequestedIp(w));
  return req;
}

// Gives back what IPAM handed out for this attachment (DEL). An error here means the address
// may stay taken, so DEL reports it and the runtime retries.
Status releaseIpam(const Call& c) {
  if (c.builtinIpam() && c.conf.ipam.etcd) {
    core::IpamRequest req;
    req.owner = c.key();
    req.range_sets = c.conf.ipam.ranges;
    return core::ClusterAddresses(*c.store, *c.conf.ipam.etcd, std::move(req), {}).release();
  }
  if (c.builtinIpam()) return core::Ipam(*c.store).release(c.key());
  if (c.delegatedIpam()) return DelegatedIpam(c).release();
  return {};
}

// The attachment's address source, as the config says: none, the built-in IPAM or a plugin.
Result<std::unique_ptr<core::AddressSource>> addressSource(const Call& c) {
  if (c.delegatedIpam()) return std::unique_ptr<core::AddressSource>(new DelegatedIpam(c));
  if (!c.builtinIpam()) return std::unique_ptr<core::AddressSource>();
  PLUMB_ASSIGN(auto req, ipamRequest(c));
  std::vector<core::RouteSpec> routes;
  for (const auto& r : c.conf.ipam.routes)
    routes.push_back({r.dst, r.gw, r.mtu, r.priority, std::nullopt, false});
  if (c.conf.ipam.etcd) {
    return std::unique_ptr<core::AddressSource>(
        new core::ClusterAddresses(*c.store, *c.conf.ipam.etcd, std::move(req), std::move(routes)));
  }
  return std::unique_ptr<core::AddressSource>(
      new core::IpamAddresses(*c.store, std::move(req), std::move(routes)));
}

// The plan: a bridge's gateway addresses and masquerade come from the allocated addresses
// (core::AddressUse), so the same plan serves ADD, CHECK and DEL.
Result<core::Plan> planFor(const NetConf& conf) {
  if (conf.mode == "bridge") {
    core::VethBridgePlan p;
    p.bridge = conf.bridge;
    p.hairpin = conf.hairpin_mode;
    p.promisc = conf.promisc_mode;
    p.ipv6_forwarding = conf.ipv6_forwarding;
    return core::Plan(p);
  }
  if (conf.mode == "macvlan") {
    if (conf.master.empty()) return fail(Errc::kInvalid, "macvlan mode needs \"master\"");
    PLUMB_ASSIGN(auto mode, core::parseMacvlanMode(conf.macvlan_mode));
    return core::Plan(core::MacvlanPlan{conf.master, mode});
  }
  if (conf.mode == "ovs") {
    if (!conf.bridge_given) return fail(Errc::kInvalid, "ovs mode needs \"bridge\"");
    core::OvsPlan p;
    p.bridge = conf.bridge;
    p.vlan = conf.vlan;
    p.trunks = conf.trunks;
    p.ofport_request = conf.ofport_request;
    p.interface_type = conf.interface_type;
    p.ovsdb = conf.socket_file;
    return core::Plan(p);
  }
  if (conf.mode == "sriov") {
    core::SriovPlan p;
    p.pf = conf.pf;
    p.pci_address = conf.device_id;
    p.settings = conf.vf;
    p.settings.vlan = conf.vlan;
    return core::Plan(p);
  }
  std::optional<MacAddr> hwaddr;
  if (!conf.hwaddr.empty()) {
    auto m = MacAddr::parse(conf.hwaddr);
    if (!m.ok()) return fail(Errc::kInvalid, "hwaddr: " + m.error().message);
    hwaddr = *m;
  }
  return core::Plan(core::PassthroughPlan{conf.device, hwaddr, conf.pci_bus_id, conf.force});
}

// The request without its address source, which cmdAdd gives it once the store is open.
Result<core::AttachRequest> requestFor(const Call& c) {
  core::AttachRequest req;
  req.key = c.key();
  req.netns = c.netns;
  req.mtu = c.conf.mtu;
  req.frontend = "cni";
  PLUMB_ASSIGN(req.plan, planFor(c.conf));
  std::string mac = c.conf.mac;
  if (!c.args.mac.empty()) mac = c.args.mac;
  if (!c.conf.runtime_mac.empty()) mac = c.conf.runtime_mac;
  if (!mac.empty()) {
    auto m = MacAddr::parse(mac);
    if (!m.ok()) return std::move(m).error();
    req.mac = *m;
  }
  req.address_use = {c.conf.is_gateway, c.conf.ip_masq, c.conf.is_default_gateway};
  return req;
}

// What DEL does: the attachment's links, record and rules, and its addresses given back.
Status removeAttachment(Call& c) {
  core::Engine engine(*c.store);
  core::DetachRequest req{c.key(), c.netns, {}, {}};
  // What to look for when the record is gone (an OVS port by its external_ids).
  if (auto plan = planFor(c.conf); plan.ok()) req.plan = *plan;
  if (c.conf.ip_masq) {
    // The subnets the network masquerades: its ranges, and what a prevResult says it got.
    for (const auto& set :
         c.conf.runtime_ip_ranges ? *c.conf.runtime_ip_ranges : c.conf.ipam.ranges) {
      for (const auto& r : set) req.masquerade.push_back(r.subnet.network());
    }
    if (c.conf.prev_result) {
      for (const auto& ip : c.conf.prev_result->ips) req.masquerade.push_back(ip.address.network());
    }
  }
  auto st = engine.detach(req);
  // The addresses go back whatever happened to the links.
  auto released = releaseIpam(c);
  if (!st.ok()) return st;
  return released;
}

Outcome cmdAdd(Call& c) {
  // A duplicate ADD fails here, or at the engine's record step, before anything is allocated.
  auto existing = c.store->findAttachment(c.key());
  if (!existing.ok()) return fromError(existing.error());
  auto abandoned = *existing ? core::Engine::stillAbandoned(*c.store, **existing) : false;
  if (!abandoned.ok()) return fromError(abandoned.error());
  if (*abandoned) {
    // An ADD that was killed part-way: cleaned as its DEL would, then made anew.
    log::get("cni")->info("cleaning {}, left by an ADD that did not finish", c.key().str());
    auto st = removeAttachment(c);
    if (!st.ok())
      return fromError(std::move(st).error().wrap("failed to clean what an unfinished ADD left"));
    *existing = std::nullopt;
  }
  if (*existing) {
    return CniError{kAlreadyExists,
                    "container " + c.container_id + " already has interface " + c.ifname +
                        " on network " + c.conf.name + " (DEL it first)",
                    ""};
  }
  auto source = addressSource(c);
  if (!source.ok()) return fromError(source.error());
  const auto* delegated = dynamic_cast<const DelegatedIpam*>(source->get());
  core::AttachRequest req = *c.request;
  req.address_source = source->get();
  core::Engine engine(*c.store);
  auto attached = engine.attach(req);
  if (!attached.ok()) {
    // What IPAM handed out went back in the engine's rollback (the spec's IPAM DEL).
    if (delegated && delegated->failed()) return *delegated->failed();
    const Error& e = attached.error();
    if (e.code == Errc::kNoNetns) return CniError{kUnknownContainer, e.message, ""};
    // A busy store is kTryAgain (code 11, try again later), not an exhausted range.
    if (e.code == Errc::kExhausted) return CniError{kAddressExhausted, e.message, ""};
    return fromError(e);
  }
  log::get("cni")->debug("attached");
  // Only plumb's own part is built here; a prevResult is extended as the JSON it came in, so
  // fields plumb does not model (socketPath, pciID, a route's table...) pass through.
  CniResult out;
  int base = c.conf.prev_result ? static_cast<int>(c.conf.prev_result->interfaces.size()) : 0;
  int ctr_index = base;
  if (attached->host) {
    out.interfaces.push_back(
        {attached->host->name, attached->host->mac, "", attached->host->mtu, ""});
    ctr_index = base + 1;
  }
  out.interfaces.push_back({attached->container.name, attached->container.mac,
                            attached->container.sandbox, attached->container.mtu,
                            attached->container.pci});
  for (const auto& a : attached->addresses) out.ips.push_back({a.address, a.gateway, ctr_index});
  for (const auto& r : attached->routes) out.routes.push_back({r.dst, r.gateway, r.mtu, r.metric});
  if (!c.conf.dns.empty()) out.dns = c.conf.dns;
  if (delegated && !delegated->dns().empty()) out.dns = delegated->dns();
  json ours = toJson(out, c.conf.cni_version);
  if (!c.conf.prev_result) return json_read::text(ours);
  json merged = c.conf.raw["prevResult"];
  merged["cniVersion"] = c.conf.cni_version;
  for (const char* list : {"interfaces", "ips", "routes"}) {
    if (!ours.contains(list)) continue;
    if (!merged.contains(list) || !merged[list].is_array()) merged[list] = json::array();
    for (const auto& item : ours[list]) merged[list].push_back(item);
  }
  if (!out.dns.empty() || !merged.contains("dns")) merged["dns"] = ours["dns"];
  return json_read::text(merged);
}

Outcome cmdDel(Call& c) {
  auto st = removeAttachment(c);
  if (!st.ok()) return fromError(st.error());
  return std::string();
}

Outcome cmdCheck(Call& c) {
  if (!c.conf.prev_result) return CniError{kInvalidConfig, "CHECK needs a prevResult", ""};
  core::AttachRequest req;
  req.key = c.key();
  req.netns = c.netns;
  auto plan = planFor(c.conf);
  if (!plan.ok()) return fromError(plan.error());
  req.plan = *plan;
  const auto& prev = *c.conf.prev_result;
  for (const auto& ip : prev.ips) {
    // Only the addresses on our interface in this sandbox are ours to check.
    if (ip.interface && *ip.interface < static_cast<int>(prev.interfaces.size())) {
      const auto& iface = prev.interfaces[static_cast<size_t>(*ip.interface)];
      if (iface.name != c.ifname || iface.sandbox.empty()) continue;
    }
    req.addresses.push_back({ip.address, ip.gateway});
  }
  for (const auto& r : prev.routes)
    req.routes.push_back({r.dst, r.gw, r.mtu, r.priority, std::nullopt, false});
  core::Engine engine(*c.store);
  auto st = engine.check(req);
  if (!st.ok())
    return CniError{kFailed, "check of " + c.ifname + " failed: " + st.error().message, ""};
  if (c.builtinIpam()) {
    auto held = core::Ipam(*c.store).lookup(c.key());
    if (!held.ok()) return fromError(held.error());
    for (const auto& a : req.addresses) {
      bool found = false;
      for (const auto& h : *held) found |= h.address.addr() == a.address.addr();
      if (!found)
        return CniError{kFailed,
                        "address " + a.address.str() + " is not allocated to this container", ""};
    }
  } else if (c.delegatedIpam()) {
    auto run = delegate(c, "CHECK");
    if (!run.ok()) return fromError(run.error());
    if (run->exit_code != 0) return delegatedFailure(c, *run);
  }
  return std::string();
}

Outcome cmdGc(Call& c) {
  if (!c.conf.valid_attachments) {
    return CniError{kInvalidConfig, "GC needs cni.dev/valid-attachments", ""};
  }
  std::set<std::pair<std::string, std::string>> valid;
  for (const auto& a : *c.conf.valid_attachments) valid.insert({a.container_id, a.ifname});
  core::Engine engine(*c.store);
  auto records = c.store->listAttachments(c.conf.name);
  if (!records.ok()) return fromError(records.error());
  core::Ipam ipam(*c.store);
  std::string failures;
  for (const auto& r : *records) {
    if (valid.count({r.key.container_id, r.key.ifname})) continue;
    auto st = engine.detach({r.key, r.netns, {}, {}});
    if (!st.ok()) failures += (failures.empty() ? "" : "; ") + st.error().message;
    if (c.builtinIpam()) (void)ipam.release(r.key);
  }
  if (c.builtinIpam()) {
    auto owners = ipam.owners(c.conf.name);
    if (!owners.ok()) return fromError(owners.error());
    for (const auto& o : *owners) {
      if (!valid.count({o.container_id, o.ifname})) (void)ipam.release(o);
    }
  } else if (c.delegatedIpam()) {
    auto run = delegate(c, "GC");
    if (!run.ok()) return fromError(run.error());
    if (run->exit_code != 0) return delegatedFailure(c, *run);
  }
  // Past the store: what plumb made for this network that no record names (OVS ports).
  if (auto plan = planFor(c.conf); plan.ok()) {
    std::vector<core::AttachmentKey> keep;
    for (const auto& [cid, ifname] : valid) keep.push_back({c.conf.name, cid, ifname});
    auto st = engine.sweep(c.conf.name, *plan, keep);
    if (!st.ok()) failures += (failures.empty() ? "" : "; ") + st.error().message;
  }
  if (!failures.empty()) return CniError{kFailed, "GC left some attachments: " + failures, ""};
  return std::string();
}

Outcome cmdStatus(Call& c) {
  // A read of the network's records answers whether the store can be used (one index lookup,
  // however many attachments the network has).
  auto probe = c.store->hasAttachments(c.conf.name);
  if (!probe.ok())
    return CniError{kPluginNotAvailable,
                    "store " + c.store->path() + " cannot be used: " + probe.error().message, ""};
  if (c.conf.mode == "bridge") {
    auto br = core::findHostLink(c.conf.bridge);
    if (!br.ok()) return CniError{kPluginNotAvailable, br.error().message, ""};
    if (*br && (*br)->kind != "bridge") {
      return CniError{kPluginNotAvailable, c.conf.bridge + " exists and is not a bridge", ""};
    }
  } else if (c.conf.mode == "ovs") {
    auto plan = planFor(c.conf);
    if (!plan.ok()) return CniError{kInvalidConfig, plan.error().message, ""};
    auto st = core::checkOvsBridge(std::get<core::OvsPlan>(*plan));
    if (!st.ok()) return CniError{kPluginNotAvailable, st.error().message, ""};
  } else if (c.conf.mode == "sriov" && (!c.conf.pf.empty() || !c.conf.device_id.empty())) {
    // Without either, the VF comes with each ADD (a device plugin's runtimeConfig.deviceID).
    auto plan = planFor(c.conf);
    if (!plan.ok()) return CniError{kInvalidConfig, plan.error().message, ""};
    auto st = core::checkSriov(std::get<core::SriovPlan>(*plan), *c.store);
    if (!st.ok()) return CniError{kPluginNotAvailable, st.error().message, ""};
  } else if (c.conf.mode == "macvlan") {
    auto m = core::findHostLink(c.conf.master);
    if (!m.ok() || !*m) {
      return CniError{kPluginNotAvailable,
                      "master " + c.conf.master +
                          " cannot be used: " + (m.ok() ? "no such interface" : m.error().message),
                      ""};
    }
  }
  if (c.delegatedIpam()) {
    auto run = delegate(c, "STATUS");
    if (!run.ok()) return CniError{kPluginNotAvailable, run.error().message, ""};
    if (run->exit_code != 0) return delegatedFailure(c, *run);
  }
  return std::string();
}

Output versionInfo(const Invocation& in) {
  std::string version = kLatest;
  if (!in.input.empty()) {
    auto j = json_read::parse(in.input);
    std::string asked;
    if (j.ok() && j->is_object() && json_read::str(*j, "cniVersion", asked).ok() &&
        isSupported(asked))
      version = asked;
  }
  json out = {{"cniVersion", version}, {"supportedVersions", supportedVersions()}};
  return {0, out.dump()};
}

// Everything about an invocation that can be checked without looking at the host: the
// command, the configuration, the environment and (for ADD) the request as a whole. Either the
// call to carry out or the answer refusing it; nothing is read from or written to the host.
std::variant<Call, Output> prepare(const Invocation& in) {
  std::string command = envOr(in, "CNI_COMMAND");
  if (command == "VERSION") return versionInfo(in);
  static const std::set<std::string> kCommands = {"ADD", "DEL", "CHECK", "GC", "STATUS"};
  if (command.empty()) return errorOutput({kInvalidEnvironment, "CNI_COMMAND is not set", ""}, "");
  if (!kCommands.count(command))
    return errorOutput({kInvalidEnvironment, "unknown CNI_COMMAND " + command, ""}, "");

  auto conf = parseNetConf(in.input);
  if (!conf.ok()) {
    const Error& e = conf.error();
    int code = e.code == Errc::kDecode ? kDecodeFailure : kInvalidConfig;
    return errorOutput({code, "failed to read the network configuration: " + e.message, ""}, "");
  }
  Call c{in,
         std::move(conf).value(),
         command,
         envOr(in, "CNI_CONTAINERID"),
         envOr(in, "CNI_NETNS"),
         envOr(in, "CNI_IFNAME"),
         envOr(in, "CNI_PATH"),
         {},
         nullptr,
         std::nullopt};
  const std::string& v = c.conf.cni_version;
  if (!isSupported(v)) {
    std::string list;
    for (const auto& s : supportedVersions()) list += (list.empty() ? "" : ", ") + s;
    return errorOutput(
        {kIncompatibleVersion,
         "incompatible CNI versions: config is \"" + v + "\", plumb supports [" + list + "]", ""},
        "");
  }
  if ((command == "GC" || command == "STATUS") && compareVersions(v, "1.1.0") < 0) {
    return errorOutput(
        {kIncompatibleVersion, "config version " + v + " does not allow " + command, ""}, v);
  }
  if (command == "CHECK" && compareVersions(v, "0.4.0") < 0) {
    return errorOutput({kIncompatibleVersion, "config version " + v + " does not allow CHECK", ""},
                       v);
  }
  if (auto named = validateId("network name", c.conf.name); !named.ok())
    return errorOutput({kInvalidConfig, named.error().message, ""}, v);
  if (c.builtinIpam() && c.conf.ipam.etcd) {
    // The cluster's: this host's name, the endpoints, the prefix and each subnet's blocks.
    auto& etcd = *c.conf.ipam.etcd;
    if (etcd.host.empty()) etcd.host = envOr(in, "PLUMB_HOST");
    if (etcd.host.empty()) etcd.host = core::clusterHostName();
    auto ok = core::validateClusterIpam(etcd, c.conf.ipam.ranges);
    if (!ok.ok()) return errorOutput({kInvalidConfig, ok.error().message, ""}, v);
  }
  bool per_container = command == "ADD" || command == "DEL" || command == "CHECK";
  if (per_container) {
    if (c.container_id.empty())
      return errorOutput({kInvalidEnvironment, "CNI_CONTAINERID is not set", ""}, v);
    if (auto id = validateId("CNI_CONTAINERID", c.container_id); !id.ok())
      return errorOutput({kInvalidEnvironment, id.error().message, ""}, v);
    if (c.ifname.empty()) return errorOutput({kInvalidEnvironment, "CNI_IFNAME is not set", ""}, v);
    auto ifname_ok = validateIfname(c.ifname);
    if (!ifname_ok.ok())
      return errorOutput({kInvalidEnvironment, "CNI_IFNAME: " + ifname_ok.error().message, ""}, v);
    if (command != "DEL" && c.netns.empty())
      return errorOutput({kInvalidEnvironment, "CNI_NETNS is not set", ""}, v);
    if (c.cni_path.empty() && command != "DEL")
      return errorOutput({kInvalidEnvironment, "CNI_PATH is not set", ""}, v);
    auto args = parseCniArgs(envOr(in, "CNI_ARGS"));
    if (!args.ok()) return errorOutput({kInvalidEnvironment, args.error().message, ""}, v);
    c.args = std::move(args).value();
  }
  if (command == "ADD") {
    // The request as a whole (mode, MAC, names) is checked before anything is looked at.
    auto req = requestFor(c);
    Status valid = req.ok() ? core::Engine::validate(*req) : Status(req.error());
    if (!valid.ok()) return errorOutput(fromError(valid.error()), v);
    c.request = std::move(req).value();
  }
  return c;
}

}  // namespace

Output check(const Invocation& in) {
  auto prepared = prepare(in);
  if (auto* out = std::get_if<Output>(&prepared)) return *out;
  return {0, ""};
}

Output run(const Invocation& in, core::StorePool* stores) {
  auto prepared = prepare(in);
  if (auto* out = std::get_if<Output>(&prepared)) return *out;
  Call& c = std::get<Call>(prepared);
  const std::string& command = c.command;
  const std::string& v = c.conf.cni_version;
  // Only when the config asks: the resident service runs calls side by side, and re-applying
  // the sinks under a logger in use is a race (a fresh process has the defaults anyway).
  if (!c.conf.log_file.empty() || !c.conf.log_level.empty())
    log::configure(c.conf.log_file, c.conf.log_level);
  log::get("cni")->debug("{} {}/{}/{} netns {}", command, c.conf.name, c.container_id, c.ifname,
                         c.netns);
  if (command == "ADD" || command == "CHECK") {
    // Checked before anything changes: a netns that is gone means the container is.
    auto ns = core::checkNetns(c.netns);
    if (!ns.ok()) {
      int code = ns.error().code == Errc::kNoNetns ? kUnknownContainer : kInvalidEnvironment;
      return errorOutput({code, ns.error().message, ""}, v);
    }
  }
  std::unique_ptr<core::Store> own;
  std::optional<core::StorePool::Lease> lease;
  Status opened;
  if (stores && stores->dir() == c.conf.data_dir) {
    auto got = stores->acquire();
    if (got.ok()) {
      lease.emplace(std::move(got).value());
      c.store = &**lease;
    } else {
      opened = fail(got.error());
    }
  } else {
    auto got = core::Store::open(c.conf.data_dir);
    if (got.ok()) {
      own = std::move(got).value();
      // A process that exits after this call leaves the WAL's checkpoint to a helper.
      own->checkpointInBackground();
      c.store = own.get();
    } else {
      opened = fail(got.error());
    }
  }
  if (!opened.ok()) {
    int code = command == "STATUS" ? kPluginNotAvailable : kIoFailure;
    return errorOutput({code, opened.error().message, ""}, v);
  }
  log::get("cni")->debug("store {} open", c.store->path());

  Outcome out;
  if (command == "ADD") {
    out = cmdAdd(c);
  } else if (command == "DEL") {
    out = cmdDel(c);
  } else if (command == "CHECK") {
    out = cmdCheck(c);
  } else if (command == "GC") {
    out = cmdGc(c);
  } else {
    out = cmdStatus(c);
  }
  if (const auto* err = std::get_if<CniError>(&out)) return errorOutput(*err, v);
  return {0, std::get<std::string>(out)};
}

}  // namespace plumb::cni
