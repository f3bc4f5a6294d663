#include "plugin/core/ambassadors.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include <set>

#include "base/endpoint.h"
#include "base/json.h"
#include "base/log.h"
#include "base/names.h"
#include "etcd/client.h"
#include "plugin/core/cluster_blocks.h"
#include "plugin/core/cluster_services.h"
#include "plugin/core/control.h"
#include "plugin/core/directory.h"
#include "plugin/core/netns_watch.h"
#include "plugin/core/store.h"

namespace plumb::core {
namespace {

using json = nlohmann::json;

// A Docker container's /etc/hosts names a linked service as --link did: NAME on 127.0.0.1,
// where the link listens. The file is bind-mounted into the container, so it is edited in
// place (a renamed file would not be the one the container sees). plumb's lines end with a
// marker, so unlink removes only those.
constexpr const char* kHostsMark = "# plumb link";

std::string hostsLine(const std::string& name) { return "127.0.0.1\t" + name + "\t" + kHostsMark; }

Status editHosts(const std::string& path, const std::string& name, bool add) {
  std::FILE* f = std::fopen(path.c_str(), "r+e");
  if (!f) return failErrno(errno, "failed to update " + path);
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::string line = hostsLine(name);
  std::string out;
  bool present = false;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    std::string l = text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    start = end == std::string::npos ? text.size() : end + 1;
    if (l == line) {
      present = true;
      if (!add) continue;
    }
    out += l + "\n";
  }
  if (add && !present) out += line + "\n";
  bool ok =
      out == text ||
      (std::fseek(f, 0, SEEK_SET) == 0 && std::fwrite(out.data(), 1, out.size(), f) == out.size() &&
       std::fflush(f) == 0 && ::ftruncate(fileno(f), static_cast<off_t>(out.size())) == 0);
  int e = errno;
  (void)std::fclose(f);  // written and flushed above, or already failed
  if (!ok) return failErrno(e, "failed to update " + path);
  return {};
}

// The host reaches a guest at an address of its attachments: the first IPv4 one of a bridge
// attachment if it has one, else the first address it has; "" when it has none.
Result<std::string> attachedAddress(Store& store, const std::string& guest) {
  PLUMB_ASSIGN(auto records, store.listAttachments());
  std::string address;
  int best = 0;
  for (const auto& r : records) {
    if (r.key.container_id != guest) continue;
    for (const auto& a : r.addresses) {
      int score = 1 + (a.address.isV4() ? 2 : 0) + (r.mode == "bridge" ? 4 : 0);
      if (score > best) {
        best = score;
        address = a.address.addr().str();
      }
    }
  }
  return address;
}

bool netnsThere(const std::string& path) {
  struct stat st {};
  return !path.empty() && ::stat(path.c_str(), &st) == 0;
}

}  // namespace

Ambassadors::Ambassadors(std::unique_ptr<Store> store, std::unique_ptr<Forwarder> forwarder)
    : store_(std::move(store)),
      directory_(std::make_unique<Directory>(*store_)),
      forwarder_(std::move(forwarder)) {}

Status validateClusterServices(const ClusterServicesConfig& config) {
  if (config.endpoints.empty())
    return fail(Errc::kInvalid, "etcd needs at least one endpoint (\"http://HOST:PORT\")");
  for (const auto& e : config.endpoints) PLUMB_TRY(etcd::validateEndpoint(e));
  PLUMB_TRY(validateClusterSpec({config.prefix, config.host, config.lease_ttl_s}));
  auto ip = IpAddr::parse(config.advertise);
  if (!ip.ok() || ip->isUnspecified())
    return fail(Errc::kInvalid, "--advertise-address '" + config.advertise +
                                    "' is not an address of this host's other hosts reach");
  return {};
}

Ambassadors::~Ambassadors() {
  cluster_.reset();  // no follow from here on; this host's registrations go
  watch_.reset();    // no netnsGone from here on
  forwarder_->drain();
}

Result<std::unique_ptr<Ambassadors>> Ambassadors::start(
    const std::string& state_dir, const ForwarderOptions& options,
    const std::optional<ClusterServicesConfig>& cluster) {
  if (cluster) PLUMB_TRY(validateClusterServices(*cluster));
  PLUMB_ASSIGN(auto store, Store::open(state_dir));
  raiseOpenFileLimit();
  PLUMB_ASSIGN(auto forwarder, Forwarder::start(options));
  std::unique_ptr<Ambassadors> a(new Ambassadors(std::move(store), std::move(forwarder)));
  PLUMB_ASSIGN(a->watch_,
               NetnsWatch::start([p = a.get()](const std::string& path) { p->netnsGone(path); }));
  if (cluster) {
    PLUMB_ASSIGN(a->cluster_,
                 ClusterServices::start(*cluster, [p = a.get()](const std::string& name, bool udp) {
                   std::lock_guard lock(p->mu_);
                   auto st = p->follow(name, udp);
                   if (!st.ok()) log::get("proxy")->warn("{}: {}", name, st.error().message);
                 }));
  }
  PLUMB_TRY(a->restore());
  return a;
}

Status Ambassadors::restore() {
  std::lock_guard lock(mu_);
  PLUMB_ASSIGN(auto links, directory_->links());
  auto log = log::get("proxy");
  std::map<std::pair<std::string, bool>, bool> names;
  for (const auto& l : links) {
    LinkKey key{l.guest, l.name, l.udp};
    if (!netnsThere(l.netns)) {
      log->warn("link {} -> {}/{}: netns {} is gone: forgotten", l.guest, l.name, protoName(l.udp),
                l.netns);
      (void)directory_->unlink(l.guest, l.name, l.udp);
      continue;
    }
    Status st = listen(key, l.netns, l.port);
    if (!st.ok()) {
      log->warn("link {} -> {}/{}: {}", l.guest, l.name, protoName(l.udp), st.error().message);
      continue;
    }
    names[{l.name, l.udp}] = true;
  }
  for (const auto& [n, _] : names) PLUMB_TRY(follow(n.first, n.second));
  if (!links.empty()) log->info("{} link(s) listening again", listeners_.size());
  PLUMB_ASSIGN(auto services, directory_->services());
  for (const auto& s : services) {
    if (!s.netns.empty()) (void)watch_->watch(s.netns);  // one gone already is reported now
    Status st = advertise(s.guest, s.name, s.udp, s.address, s.port, /*restoring=*/true);
    if (!st.ok())
      log->warn("{}/{} of {}: {}", s.name, protoName(s.udp), s.guest, st.error().message);
  }
  return {};
}

Status Ambassadors::advertise(const std::string& guest, const std::string& name, bool udp,
                              const std::string& address, int port, bool restoring) {
  if (!cluster_) return {};
  LinkKey key{guest, name, udp};
  PLUMB_ASSIGN(auto ip, IpAddr::parse(address));
  std::string backend = Endpoint{ip, static_cast<uint16_t>(port)}.str();
  auto it = advertised_.find(key);
  if (it == advertised_.end()) {
    Forward fwd;
    fwd.name = name + "/" + protoName(udp) + " of " + guest + " for other hosts";
    fwd.udp = udp;
    PLUMB_ASSIGN(auto adv, IpAddr::parse(cluster_->config().advertise));
    fwd.listen = Endpoint{adv, 0}.str();
    PLUMB_ASSIGN(auto l, forwarder_->add(fwd));
    it = advertised_.emplace(key, std::make_pair(l.id, l.address)).first;
  }
  PLUMB_TRY(forwarder_->setBackends(it->second.first, {backend}));
  const std::string listening = it->second.second;
  Status st = cluster_->publish(name, udp, guest, listening, port, restoring);
  if (!st.ok() && !restoring) {
    forwarder_->remove(it->second.first);
    advertised_.erase(it);
  }
  return st;
}

void Ambassadors::unadvertise(const std::string& guest, const std::string& name, bool udp) {
  if (!cluster_) return;
  auto it = advertised_.find({guest, name, udp});
  if (it == advertised_.end()) return;
  forwarder_->remove(it->second.first);
  advertised_.erase(it);
  cluster_->withdraw(name, udp, guest);
}

Status Ambassadors::listen(const LinkKey& key, const std::string& netns, int port) {
  Forward fwd;
  fwd.name = std::get<1>(key) + "/" + protoName(std::get<2>(key)) + " in " + std::get<0>(key);
  fwd.udp = std::get<2>(key);
  fwd.listen = "127.0.0.1:" + std::to_string(port);
  fwd.netns = netns;
  PLUMB_ASSIGN(auto l, forwarder_->add(fwd));
  listeners_[key] = l.id;
  (void)watch_->watch(netns);
  return {};
}

Status Ambassadors::follow(const std::string& name, bool udp) {
  PLUMB_ASSIGN(auto endpoints, directory_->endpoints(name, udp));
  std::vector<std::string> backends;
  for (const auto& e : endpoints) {
    auto addr = IpAddr::parse(e.address);
    if (addr.ok()) backends.push_back(Endpoint{*addr, static_cast<uint16_t>(e.port)}.str());
  }
  if (cluster_)
    for (const auto& r : cluster_->remote(name, udp)) backends.push_back(r.address);
  for (const auto& [key, id] : listeners_) {
    if (std::get<1>(key) == name && std::get<2>(key) == udp)
      PLUMB_TRY(forwarder_->setBackends(id, backends));
  }
  return {};
}

Result<std::string> Ambassadors::expose(const std::string& guest, const std::string& netns,
                                        const std::string& name, int port, bool udp,
                                        std::string address) {
  if (address.empty()) PLUMB_ASSIGN(address, attachedAddress(*store_, guest));
  if (address.empty())
    return fail(Errc::kNotFound, "failed to expose " + name + " of guest " + guest +
                                     ": it has no address plumb attached (expose needs one the "
                                     "host reaches)");
  ServiceRecord r;
  r.name = name;
  r.udp = udp;
  r.guest = guest;
  r.netns = netns;
  r.address = address;
  r.port = port;
  PLUMB_ASSIGN(auto before, directory_->endpoints(name, udp));
  PLUMB_TRY(directory_->expose(r));
  // Registered in etcd before it is followed here: a registration that fails (no quorum)
  // leaves nothing behind.
  Status registered = advertise(guest, name, udp, address, port, /*restoring=*/false);
  if (!registered.ok()) {
    bool had = false;
    for (const auto& e : before) had |= e.guest == guest;
    if (!had) (void)directory_->unexpose(guest, name, udp);
    return registered.error();
  }
  if (!netns.empty()) (void)watch_->watch(netns);
  PLUMB_TRY(follow(name, udp));
  return Endpoint{*IpAddr::parse(address), static_cast<uint16_t>(port)}.str();
}

Status Ambassadors::unexpose(const std::string& guest, const std::string& name) {
  PLUMB_ASSIGN(auto services, directory_->services());
  PLUMB_TRY(directory_->unexpose(guest, name, std::nullopt));
  for (const auto& s : services) {
    if (s.guest != guest || s.name != name) continue;
    unadvertise(guest, name, s.udp);
    unwatchUnused(s.netns);
  }
  PLUMB_TRY(follow(name, false));
  return follow(name, true);
}

void Ambassadors::unwatchUnused(const std::string& netns) {
  if (netns.empty()) return;
  auto links = directory_->links();
  auto services = directory_->services();
  if (!links.ok() || !services.ok()) return;  // watching one path too many is harmless
  for (const auto& l : *links)
    if (l.netns == netns) return;
  for (const auto& s : *services)
    if (s.netns == netns) return;
  watch_->unwatch(netns);
}

void Ambassadors::netnsGone(const std::string& path) {
  std::lock_guard lock(mu_);
  std::set<std::string> guests;
  if (auto links = directory_->links(); links.ok()) {
    for (const auto& l : *links)
      if (l.netns == path) guests.insert(l.guest);
  }
  if (auto services = directory_->services(); services.ok()) {
    for (const auto& s : *services)
      if (s.netns == path) guests.insert(s.guest);
  }
  for (const auto& g : guests) {
    log::get("proxy")->info("guest {}: netns {} is gone: its links and services go", g, path);
    Status st = forgetGuestLocked(g);
    if (!st.ok()) log::get("proxy")->warn("guest {}: {}", g, st.error().message);
  }
}

Result<std::string> Ambassadors::link(const std::string& guest, const std::string& netns,
                                      const std::string& name, int port, bool udp,
                                      const std::string& hosts) {
  if (port == 0) {
    PLUMB_ASSIGN(auto endpoints, directory_->endpoints(name, udp));
    if (endpoints.empty() && cluster_) {
      auto remote = cluster_->remote(name, udp);
      if (!remote.empty()) port = remote.front().port;
    }
    if (endpoints.empty() && port == 0)
      return fail(Errc::kNotFound, "failed to link " + guest + " to " + name + "/" +
                                       protoName(udp) +
                                       ": no guest exposes it yet, so give the port to listen "
                                       "on (plumb link GUEST NAME PORT)");
    if (port == 0) port = endpoints.front().port;
  }
  LinkKey key{guest, name, udp};
  PLUMB_ASSIGN(auto existing, directory_->findLink(guest, name, udp));
  if (existing && existing->port == port && listeners_.count(key)) {
    if (!hosts.empty()) PLUMB_TRY(editHosts(hosts, name, true));
    return "127.0.0.1:" + std::to_string(port);  // a re-run: nothing else to do
  }
  if (auto it = listeners_.find(key); it != listeners_.end()) {
    forwarder_->remove(it->second);
    listeners_.erase(it);
  }
  PLUMB_TRY(listen(key, netns, port));
  LinkRecord r;
  r.guest = guest;
  r.name = name;
  r.udp = udp;
  r.netns = netns;
  r.port = port;
  Status st = directory_->link(r);
  if (!st.ok()) {
    forwarder_->remove(listeners_[key]);
    listeners_.erase(key);
    return st.error();
  }
  PLUMB_TRY(follow(name, udp));
  if (!hosts.empty()) PLUMB_TRY(editHosts(hosts, name, true));
  return "127.0.0.1:" + std::to_string(port);
}

Status Ambassadors::unlink(const std::string& guest, const std::string& name,
                           const std::string& hosts) {
  PLUMB_ASSIGN(auto links, directory_->links());
  PLUMB_TRY(directory_->unlink(guest, name, std::nullopt));
  if (!hosts.empty()) PLUMB_TRY(editHosts(hosts, name, false));
  for (bool udp : {false, true}) {
    if (auto it = listeners_.find({guest, name, udp}); it != listeners_.end()) {
      forwarder_->remove(it->second);
      listeners_.erase(it);
    }
  }
  for (const auto& l : links)
    if (l.guest == guest && l.name == name) unwatchUnused(l.netns);
  return {};
}

Status Ambassadors::forgetGuest(const std::string& guest) {
  std::lock_guard lock(mu_);
  return forgetGuestLocked(guest);
}

Status Ambassadors::forgetGuestLocked(const std::string& guest) {
  PLUMB_ASSIGN(auto services, directory_->services());
  PLUMB_ASSIGN(auto links, directory_->links());
  PLUMB_TRY(directory_->forgetGuest(guest));
  for (auto it = listeners_.begin(); it != listeners_.end();) {
    if (std::get<0>(it->first) == guest) {
      forwarder_->remove(it->second);
      it = listeners_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& s : services) {
    if (s.guest != guest) continue;
    unadvertise(guest, s.name, s.udp);
    PLUMB_TRY(follow(s.name, s.udp));
    unwatchUnused(s.netns);
  }
  for (const auto& l : links)
    if (l.guest == guest) unwatchUnused(l.netns);
  return {};
}

std::string Ambassadors::metrics() {
  std::map<uint64_t, LinkKey> by_id;
  {
    std::lock_guard lock(mu_);
    for (const auto& [key, id] : listeners_) by_id[id] = key;
  }
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    std::string lines;
  };
  Family open{"plumb_link_connections_open", "gauge", "Connections (UDP: flows) open now.", ""},
      total{"plumb_link_connections_total", "counter", "Connections (UDP: flows) ever.", ""},
      bytes{"plumb_link_bytes_total", "counter", "Bytes forwarded, by direction.", ""},
      errors{"plumb_link_connect_errors_total", "counter",
             "Connects refused, unreachable or timed out.", ""},
      up{"plumb_link_backend_up", "gauge", "1 while the backend is healthy.", ""};
  auto esc = [](const std::string& v) {
    std::string o;
    for (char c : v) {
      if (c == '\\' || c == '"') o += '\\';
      o += c;
    }
    return o;
  };
  for (const auto& f : forwarder_->stats()) {
    auto it = by_id.find(f.id);
    if (it == by_id.end()) continue;
    const auto& [guest, name, udp] = it->second;
    for (const auto& b : f.backends) {
      std::string l = "guest=\"" + esc(guest) + "\",service=\"" + esc(name) + "\",proto=\"" +
                      protoName(udp) + "\",backend=\"" + esc(b.endpoint) + "\"";
      open.lines += std::string(open.name) + "{" + l + "} " + std::to_string(b.open) + "\n";
      total.lines += std::string(total.name) + "{" + l + "} " + std::to_string(b.total) + "\n";
      bytes.lines += std::string(bytes.name) + "{" + l + ",direction=\"to_backend\"} " +
                     std::to_string(b.bytes_to) + "\n";
      bytes.lines += std::string(bytes.name) + "{" + l + ",direction=\"from_backend\"} " +
                     std::to_string(b.bytes_from) + "\n";
      errors.lines +=
          std::string(errors.name) + "{" + l + "} " + std::to_string(b.connect_errors) + "\n";
      up.lines += std::string(up.name) + "{" + l + "} " + (b.up ? "1" : "0") + "\n";
    }
  }
  std::string out;
  for (const Family* f : {&open, &total, &bytes, &errors, &up}) {
    out += std::string("# HELP ") + f->name + " " + f->help + "\n# TYPE " + f->name + " " +
           f->type + "\n" + f->lines;
  }
  return out;
}

Status forgetGuestLinks(const std::string& state_dir, Store& store, const std::string& guest) {
  auto answer =
      controlCall(controlSocketPath(state_dir), json{{"op", "forget"}, {"guest", guest}}.dump());
  if (!answer.ok()) {
    if (answer.error().code != Errc::kNotFound) return answer.error();
    return Directory(store).forgetGuest(guest);  // no daemon: nothing listens, only records
  }
  auto parsed = json_read::parse(*answer);
  if (parsed.ok() && parsed->is_object() && parsed->contains("error"))
    return fail(Errc::kIo,
                "the plumb daemon: " + json_read::valueOr(*parsed, "error", std::string()));
  return {};
}

std::string Ambassadors::handle(const std::string& request) {
  auto answer = [&]() -> Result<json> {
    PLUMB_ASSIGN(json req, json_read::parse(request));
    if (!req.is_object()) return fail(Errc::kDecode, "a control request is a JSON object");
    std::string op, guest, netns, name, hosts, address;
    int port = 0;
    bool udp = false;
    PLUMB_TRY(json_read::str(req, "op", op));
    if (op == "list") {
      PLUMB_ASSIGN(auto services, directory_->services());
      PLUMB_ASSIGN(auto links, directory_->links());
      json out = {{"ok", true}, {"services", json::array()}, {"links", json::array()}};
      for (const auto& s : services)
        out["services"].push_back({{"name", s.name},
                                   {"proto", protoName(s.udp)},
                                   {"guest", s.guest},
                                   {"address", s.address},
                                   {"port", s.port}});
      for (const auto& l : links)
        out["links"].push_back(
            {{"guest", l.guest}, {"name", l.name}, {"proto", protoName(l.udp)}, {"port", l.port}});
      return out;
    }
    PLUMB_TRY(json_read::str(req, "guest", guest));
    PLUMB_TRY(validateId("guest", guest));
    if (op == "forget") {
      PLUMB_TRY(forgetGuest(guest));  // takes mu_ itself
      return json{{"ok", true}};
    }
    PLUMB_TRY(json_read::str(req, "name", name));
    PLUMB_TRY(validateServiceName(name));
    if (req.contains("netns")) PLUMB_TRY(json_read::str(req, "netns", netns));
    if (req.contains("port")) PLUMB_TRY(json_read::integer(req, "port", port));
    if (req.contains("udp")) PLUMB_TRY(json_read::boolean(req, "udp", udp));
    if (req.contains("hosts")) PLUMB_TRY(json_read::str(req, "hosts", hosts));
    if (req.contains("address")) {
      PLUMB_TRY(json_read::str(req, "address", address));
      auto ip = IpAddr::parse(address);
      if (!ip.ok()) return fail(Errc::kInvalid, "address: " + ip.error().message);
      address = ip->str();
    }
    if (!hosts.empty() && hosts[0] != '/')
      return fail(Errc::kInvalid, "hosts '" + hosts + "' is not an absolute path");
    if (port < 0 || port > 65535)
      return fail(Errc::kInvalid, "port " + std::to_string(port) + " is out of range (0-65535)");
    std::lock_guard lock(mu_);
    if (op == "expose") {
      if (port == 0) return fail(Errc::kInvalid, "expose needs the service's port (1-65535)");
      PLUMB_ASSIGN(auto endpoint, expose(guest, netns, name, port, udp, address));
      return json{{"ok", true}, {"endpoint", endpoint}};
    }
    if (op == "unexpose") {
      PLUMB_TRY(unexpose(guest, name));
      return json{{"ok", true}};
    }
    if (op == "link") {
      if (netns.empty()) return fail(Errc::kInvalid, "link needs the guest's netns");
      PLUMB_ASSIGN(auto listening, link(guest, netns, name, port, udp, hosts));
      return json{{"ok", true}, {"listening", listening}};
    }
    if (op == "unlink") {
      PLUMB_TRY(unlink(guest, name, hosts));
      return json{{"ok", true}};
    }
    return fail(Errc::kInvalid, "unknown control request '" + op + "'");
  }();
  if (!answer.ok()) return json{{"error", answer.error().message}}.dump();
  return answer->dump();
}

}  // namespace plumb::core
