#include "plugin/cli/execute.h"

#include <sys/stat.h>

#include <cctype>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "netlink/link.h"
#include "netlink/netns.h"
#include "netlink/route.h"
#include "netlink/rule.h"
#include "netlink/socket.h"
#include "plugin/cli/dhcp.h"
#include "plugin/cli/guest.h"
#include "plugin/core/engine.h"
#include "plugin/core/store.h"

namespace plumb::cli {
namespace {

using json = nlohmann::json;

int failWith(const Error& e, const Options& opts) {
  if (opts.json) {
    std::cout << json{{"error", e.message}}.dump() << "\n";
  } else {
    std::cerr << "plumb: " << e.message << "\n";
  }
  return 1;
}

// Which host interface, and what it decides (pipework's rules): an existing Linux bridge gets a
// veth; a missing name starting "br" becomes a new bridge; any other existing interface gets a
// macvlan child; OVS and --direct-phys are their own modes.
Result<core::AttachRequest> requestFor(const AttachCommand& c, const Guest& guest) {
  PLUMB_ASSIGN(auto sock, netlink::NlSocket::open());
  std::string host_if = c.host_if;
  std::optional<netlink::LinkInfo> link;
  if (c.host_mac) {
    PLUMB_ASSIGN(auto links, netlink::listLinks(sock));
    for (const auto& l : links) {
      if ((l.mac && *l.mac == *c.host_mac) || (l.perm_mac && *l.perm_mac == *c.host_mac)) link = l;
    }
    if (!link) return fail(Errc::kNotFound, "no host interface has MAC " + c.host_mac->str());
    host_if = link->name;
  } else {
    auto l = netlink::getLink(sock, host_if);
    if (l.ok()) {
      link = *l;
    } else if (l.error().code != Errc::kNotFound) {
      return std::move(l).error();
    }
  }

  core::AttachRequest req;
  req.key = {host_if, guest.id, c.container_if};
  req.netns = guest.netns;
  req.frontend = "cli";
  req.mac = c.mac;
  req.host_ifname = c.local_if;   // -l
  if (link) req.mtu = link->mtu;  // pipework: the MTU of the host interface
  bool ovs = (link && link->kind == "openvswitch") || (!link && host_if.rfind("ovs", 0) == 0);
  if (c.direct_phys) {
    req.plan = core::PassthroughPlan{host_if, std::nullopt, ""};
  } else if (ovs) {
    req.plan = core::OvsPlan{host_if, c.vlan};
  } else if ((link && link->kind == "bridge") || (!link && host_if.rfind("br", 0) == 0)) {
    if (c.vlan)
      return fail(Errc::kUnsupported, "VLAN configuration is not supported for a Linux bridge");
    core::VethBridgePlan plan;
    plan.bridge = host_if;
    req.plan = plan;
  } else if (link) {
    if (c.vlan) {
      return fail(Errc::kUnsupported,
                  "@" + std::to_string(*c.vlan) + " on " + host_if +
                      " needs an 802.1q sub-interface, and this kernel has no 8021q support");
    }
    req.plan = core::MacvlanPlan{host_if, c.macvlan_mode.empty() ? "bridge" : c.macvlan_mode};
  } else {
    return fail(Errc::kNotFound,
                "host interface " + host_if +
                    " does not exist (only names starting with br or ovs are created)");
  }
  if (c.address.kind == AddressSpec::Kind::kStatic) {
    req.addresses.push_back({*c.address.address, c.address.gateway});
    if (c.address.gateway) {
      core::RouteSpec def;
      def.dst = IpPrefix(IpAddr::fromNumber(c.address.gateway->isV6(), 0), 0);
      def.gateway = c.address.gateway;
      def.replace = true;  // pipework replaces the guest's default route
      req.routes.push_back(def);
    }
  }
  return req;
}

// The same command again is a no-op; the same interface with other settings is an error that
// says what differs.
Result<bool> alreadyAttached(core::Store& store, const core::AttachRequest& req, bool dhcp) {
  PLUMB_ASSIGN(auto record, store.findAttachment(req.key));
  if (!record) return false;
  std::vector<std::string> diffs;
  if (record->netns != req.netns)
    diffs.push_back("netns " + record->netns + " (asked " + req.netns + ")");
  if (record->mode != core::modeName(req.plan))
    diffs.push_back("mode " + record->mode + " (asked " + core::modeName(req.plan) + ")");
  if (!req.host_ifname.empty() && record->host_ifname != req.host_ifname) {
    diffs.push_back("host interface " + record->host_ifname + " (asked " + req.host_ifname + ")");
  }
  if (req.mac && record->mac != req.mac->str())
    diffs.push_back("MAC " + record->mac + " (asked " + req.mac->str() + ")");
  auto text = [](const std::vector<core::AddressSpec>& addrs) {
    std::string out;
    for (const auto& a : addrs) {
      out += (out.empty() ? "" : ",") + a.address.str() + (a.gateway ? "@" + a.gateway->str() : "");
    }
    return out;
  };
  auto detail = json::parse(record->detail, nullptr, false);
  bool had_dhcp = detail.is_object() && detail.contains("dhcp");
  if (dhcp != had_dhcp)
    diffs.push_back(std::string("addressing ") + (had_dhcp ? "DHCP" : "static") + " (asked " +
                    (dhcp ? "DHCP" : "static") + ")");
  std::string have = text(core::Engine::recordedAddresses(*record)), want = text(req.addresses);
  if (!dhcp && !had_dhcp && have != want)
    diffs.push_back("address " + (have.empty() ? "none" : have) + " (asked " +
                    (want.empty() ? "none" : want) + ")");
  if (diffs.empty()) return true;
  std::string msg;
  for (const auto& d : diffs) msg += (msg.empty() ? "" : ", ") + d;
  return fail(Errc::kExists, req.key.ifname + " of " + req.key.container_id +
                                 " is already attached to " + req.key.network +
                                 " with other settings: " + msg);
}

std::string runDir() {
  ::mkdir("/run/plumb", 0700);
  ::mkdir("/run/plumb/dhcp", 0700);
  return "/run/plumb/dhcp";
}

// How a DHCP client names the guest (its hostname option): the name the user gave, made safe.
std::string guestName(const std::string& guest) {
  std::string out;
  for (char ch : guest) out += std::isalnum(static_cast<unsigned char>(ch)) || ch == '-' ? ch : '-';
  while (!out.empty() && out.front() == '-') out.erase(0, 1);
  return out.empty() ? "plumb" : out.substr(0, 63);
}

// A DHCP client's file or directory of state.
void removeAll(const std::string& path) {
  std::error_code ec;
  std::filesystem::remove_all(path, ec);
}

// The lease for a new attachment: the client keeps running to renew it and is recorded with
// the attachment (del stops it); -f keeps it in the foreground instead. No lease: the
// attachment is undone.
Result<IpPrefix> runDhcp(core::Engine& engine, core::Store& store, const core::AttachRequest& req,
                         const DhcpClient& client, bool foreground) {
  PLUMB_ASSIGN(auto ns, netlink::Netns::fromPath(req.netns));
  auto undo = [&](Error e) -> Error {
    (void)engine.detach({req.key, req.netns, {}});
    return e;
  };
  if (foreground) {
    auto rc = runDhcpForeground(ns, client);  // with udhcpc -f: until it is stopped
    if (!rc.ok()) return undo(std::move(rc).error());
    return undo(makeError(Errc::kInvalid, client.name + " ended in the foreground"));
  }
  std::string log = runDir() + "/" + stableHex8(req.key.str()) + ".log";
  auto lease = startDhcp(ns, client, req.key.ifname, log, 30000);
  if (!lease.ok()) {
    ::unlink(log.c_str());
    for (const auto& f : client.files) removeAll(f);
    return undo(std::move(lease).error());
  }
  PLUMB_ASSIGN(auto record, store.findAttachment(req.key));
  if (record) {
    auto detail = json::parse(record->detail, nullptr, false);
    if (!detail.is_object()) detail = json::object();
    detail["addresses"] = json::array({{{"address", lease->address.str()}, {"gateway", ""}}});
    std::vector<std::string> files = client.files;
    files.push_back(log);
    detail["dhcp"] = {{"client", client.name}, {"pid", lease->pid}, {"files", files}};
    record->detail = detail.dump();
    PLUMB_TRY(store.updateAttachment(*record));
  }
  return lease->address;
}

int attach(const AttachCommand& c, const Options& opts) {
  auto guest = resolveGuest(c.guest);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto req = requestFor(c, *guest);
  if (!req.ok())
    return failWith(
        std::move(req).error().wrap("failed to attach " + c.container_if + " of " + c.guest), opts);
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error(), opts);
  core::Engine engine(**store);
  if (opts.dry_run) {
    auto steps = engine.describe(*req);
    if (!steps.ok()) return failWith(steps.error(), opts);
    if (opts.json) {
      std::cout << json{{"plan", *steps}}.dump() << "\n";
    } else {
      for (const auto& s : *steps) std::cout << s << "\n";
    }
    return 0;
  }
  bool dhcp = c.address.kind == AddressSpec::Kind::kDhcp;
  auto same = alreadyAttached(**store, *req, dhcp);
  if (!same.ok()) return failWith(same.error(), opts);
  if (*same) {
    if (opts.json) {
      std::cout << json{{"attached", req->key.str()}, {"changed", false}}.dump() << "\n";
    } else {
      std::cout << req->key.ifname << " of " << c.guest << " is already attached to "
                << req->key.network << "\n";
    }
    return 0;
  }
  std::optional<DhcpClient> client;
  if (dhcp) {
    // Found before anything is made: a missing client changes nothing.
    auto found = dhcpClient(c.address.dhcp_client, c.address.dhcp_options, c.container_if,
                            guestName(c.guest), runDir());
    if (!found.ok()) return failWith(found.error(), opts);
    client = std::move(found).value();
  }
  auto done = engine.attach(*req);
  if (!done.ok()) return failWith(done.error(), opts);
  if (client) {
    auto leased = runDhcp(engine, **store, *req, *client, c.keep_dhcp_client);
    if (!leased.ok()) return failWith(leased.error(), opts);
    done->addresses = {{*leased, std::nullopt}};
  }
  std::string addrs;
  for (const auto& a : done->addresses) addrs += (addrs.empty() ? "" : ",") + a.address.str();
  if (opts.json) {
    std::cout << json{{"attached", req->key.str()},
                      {"changed", true},
                      {"mode", core::modeName(req->plan)},
                      {"interface", done->container.name},
                      {"mac", done->container.mac},
                      {"netns", done->container.sandbox},
                      {"addresses", addrs}}
                     .dump()
              << "\n";
  } else {
    std::cout << "attached " << done->container.name << " of " << c.guest << " to "
              << req->key.network << " (" << core::modeName(req->plan) << ")"
              << (addrs.empty() ? "" : ": " + addrs) << ", mac " << done->container.mac << "\n";
  }
  return 0;
}

int del(const DelCommand& c, const Options& opts) {
  auto guest = resolveGuest(c.guest, /*must_exist=*/false);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error(), opts);
  auto records = (*store)->listAttachments();
  if (!records.ok()) return failWith(records.error(), opts);
  core::Engine engine(**store);
  int removed = 0;
  for (const auto& r : *records) {
    if (r.key.container_id != guest->id || r.key.ifname != c.container_if) continue;
    auto detail = json::parse(r.detail, nullptr, false);
    if (detail.is_object() && detail.contains("dhcp") && detail["dhcp"].is_object()) {
      const auto& d = detail["dhcp"];
      if (d.contains("pid") && d["pid"].is_number_integer() && d.contains("client") &&
          d["client"].is_string()) {
        stopDhcp(d["pid"].get<pid_t>(), d["client"].get<std::string>());
      }
      if (d.contains("files") && d["files"].is_array()) {
        for (const auto& f : d["files"]) {
          if (f.is_string()) removeAll(f.get<std::string>());
        }
      }
    }
    auto st = engine.detach({r.key, r.netns, {}});
    if (!st.ok())
      return failWith(std::move(st).error().wrap("failed to remove " + r.key.str()), opts);
    ++removed;
  }
  if (opts.json) {
    std::cout << json{{"removed", removed}}.dump() << "\n";
  } else {
    std::cout << (removed ? "removed " : "nothing to remove for ") << c.container_if << " of "
              << c.guest << "\n";
  }
  return 0;
}

// route and rule: through netlink in the guest's netns; tc: the tc program run inside it, with
// an argv.
// Whether the guest already has exactly this route (a re-run), not merely one to dst.
bool sameRoute(netlink::NlSocket& s, const netlink::Route& want) {
  auto routes = netlink::listRoutes(s, want.dst.isV4() ? AF_INET : AF_INET6, want.table);
  if (!routes.ok()) return false;
  for (const auto& r : *routes) {
    if (r.dst == want.dst && r.gateway == want.gateway && (!want.oif || r.oif == want.oif) &&
        (!want.metric || r.metric == want.metric))
      return true;
  }
  return false;
}

int rule(const PassCommand& p, const Options& opts) {
  auto args = parseRuleArgs(p.args);
  if (!args.ok()) return failWith(args.error(), opts);
  auto guest = resolveGuest(p.guest);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto ns = netlink::Netns::fromPath(guest->netns);
  if (!ns.ok()) return failWith(ns.error(), opts);
  auto sock = netlink::NlSocket::openIn(*ns);
  if (!sock.ok()) return failWith(sock.error(), opts);
  netlink::Rule r;
  r.family = args->family == 6 ? AF_INET6 : AF_INET;
  r.from = args->from;
  r.to = args->to;
  r.iif = args->iif;
  r.oif = args->oif;
  r.fwmark = args->fwmark;
  r.priority = args->priority;
  r.table = args->table;
  Status st = args->action == "del" ? netlink::deleteRule(*sock, r) : netlink::addRule(*sock, r);
  // Re-running a command is a no-op: the same rule added again is there already.
  if (!st.ok() && !(args->action == "add" && st.error().code == Errc::kExists))
    return failWith(std::move(st).error().wrap("in guest " + p.guest), opts);
  if (opts.json)
    std::cout << json{{"rule", netlink::describe(r)}, {"action", args->action}}.dump() << "\n";
  return 0;
}

int pass(const PassCommand& p, const Options& opts) {
  if (p.what == "rule") return rule(p, opts);
  auto guest = resolveGuest(p.guest);
  if (!guest.ok()) return failWith(guest.error(), opts);
  auto ns = netlink::Netns::fromPath(guest->netns);
  if (!ns.ok()) return failWith(ns.error(), opts);
  if (p.what == "tc") {
    std::vector<std::string> argv = {"tc"};
    argv.insert(argv.end(), p.args.begin(), p.args.end());
    auto rc = netlink::execIn(*ns, argv);
    if (!rc.ok()) return failWith(rc.error(), opts);
    return *rc;
  }
  auto args = parseRouteArgs(p.args);
  if (!args.ok()) return failWith(args.error(), opts);
  auto sock = netlink::NlSocket::openIn(*ns);
  if (!sock.ok()) return failWith(sock.error(), opts);
  netlink::Route r;
  r.dst = args->dst.network();
  r.gateway = args->via;
  r.metric = static_cast<uint32_t>(args->metric);
  r.table = args->table;
  if (!args->dev.empty()) {
    auto link = netlink::getLink(*sock, args->dev);
    if (!link.ok()) return failWith(link.error(), opts);
    r.oif = link->index;
  }
  if (!r.gateway) r.scope = RT_SCOPE_LINK;
  Status st = args->action == "del" ? netlink::deleteRoute(*sock, r)
                                    : netlink::addRoute(*sock, r, args->action == "replace");
  bool rerun =
      !st.ok() && args->action == "add" && st.error().code == Errc::kExists && sameRoute(*sock, r);
  if (!st.ok() && !rerun) return failWith(std::move(st).error().wrap("in guest " + p.guest), opts);
  if (opts.json)
    std::cout << json{{"route", netlink::describe(r)}, {"action", args->action}}.dump() << "\n";
  return 0;
}

}  // namespace

int execute(const Command& cmd, const Options& opts) {
  if (const auto* a = std::get_if<AttachCommand>(&cmd)) return attach(*a, opts);
  if (const auto* d = std::get_if<DelCommand>(&cmd)) return del(*d, opts);
  if (const auto* p = std::get_if<PassCommand>(&cmd)) return pass(*p, opts);
  const auto& w = std::get<WaitCommand>(cmd);
  auto st = netlink::waitForCarrier(w.container_if);
  if (!st.ok())
    return failWith(std::move(st).error().wrap("failed to wait for " + w.container_if), opts);
  return 0;
}

}  // namespace plumb::cli
