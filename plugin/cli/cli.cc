#include "plugin/cli/cli.h"

// Before CLI11, which includes <iostream>: the streams are built only when used.
#include "base/standard_streams.h"

#include <algorithm>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "base/json.h"
#include "plugin/cli/cluster.h"
#include "plugin/cli/doctor.h"
#include "plugin/cli/execute.h"
#include "plugin/cli/forward.h"
#include "plugin/cli/grammar.h"
#include "plugin/cli/links.h"
#include "plugin/core/engine.h"
#include "plugin/core/store.h"

namespace plumb::cli {
namespace {

std::string defaultStateDir() {
  const char* env = std::getenv("PLUMB_STATE_DIR");
  return env && *env ? env : "/var/lib/plumb";
}

int list(const std::string& state_dir, bool as_json) {
  auto store = core::Store::open(state_dir);
  if (!store.ok()) {
    std::cerr << "plumb: " << store.error().message << "\n";
    return 1;
  }
  auto records = (*store)->listAttachments();
  if (!records.ok()) {
    std::cerr << "plumb: failed to list attachments: " << records.error().message << "\n";
    return 1;
  }
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : *records) {
    nlohmann::json addrs = nlohmann::json::array();
    for (const auto& a : r.addresses) addrs.push_back(a.address.str());
    out.push_back({{"network", r.key.network},
                   {"container", r.key.container_id},
                   {"ifname", r.key.ifname},
                   {"netns", r.netns},
                   {"mode", r.mode},
                   {"via", r.via},
                   {"pci", r.pci},
                   {"vlan", r.vlan ? nlohmann::json(*r.vlan) : nlohmann::json(nullptr)},
                   {"hostIfname", r.host_ifname},
                   {"mac", r.mac},
                   {"addresses", addrs},
                   {"frontend", r.frontend},
                   {"state", r.state}});
  }
  if (as_json) {
    std::cout << json_read::text(out, 2) << "\n";
    return 0;
  }
  // pipework's notation for an OVS port's tag (bridge@vlan); an SR-IOV VF's PCI address on
  // its PF. The column is as wide as its widest entry.
  std::vector<std::string> vias;
  size_t via_width = 12;
  for (const auto& e : out) {
    std::string via = e["via"].get<std::string>();
    if (e["vlan"].is_number_integer()) via += "@" + std::to_string(e["vlan"].get<int>());
    if (!e["pci"].get<std::string>().empty()) via = e["pci"].get<std::string>() + " on " + via;
    via_width = std::max(via_width, via.size());
    vias.push_back(via);
  }
  int w = static_cast<int>(via_width);
  std::printf("%-16s %-24s %-8s %-8s %-*s %-18s %s\n", "NETWORK", "CONTAINER", "IFNAME", "MODE", w,
              "VIA", "MAC", "ADDRESSES");
  for (size_t i = 0; i < out.size(); ++i) {
    const auto& e = out[i];
    std::string addrs;
    for (const auto& a : e["addresses"]) addrs += (addrs.empty() ? "" : ",") + a.get<std::string>();
    std::printf("%-16s %-24.24s %-8s %-8s %-*s %-18s %s\n", e["network"].get<std::string>().c_str(),
                e["container"].get<std::string>().c_str(), e["ifname"].get<std::string>().c_str(),
                e["mode"].get<std::string>().c_str(), w, vias[i].c_str(),
                e["mac"].get<std::string>().c_str(), addrs.c_str());
  }
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  standardStreams();
  // pipework's forms first: global flags may stand anywhere among them.
  std::vector<std::string> args(argv + 1, argv + argc);
  Options opts;
  opts.state_dir = defaultStateDir();
  std::vector<std::string> rest;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") {
      opts.json = true;
    } else if (args[i] == "--dry-run") {
      opts.dry_run = true;
    } else if (args[i] == "--state-dir" && i + 1 < args.size()) {
      opts.state_dir = args[++i];
    } else if (args[i] == "--ovsdb" && i + 1 < args.size()) {
      opts.ovsdb = args[++i];
    } else if (args[i] == "--ovs-datapath" && i + 1 < args.size()) {
      opts.ovs_datapath = args[++i];
    } else {
      rest.push_back(args[i]);
    }
  }
  if (isPipeworkForm(rest)) {
    auto cmd = parseCommand(rest);
    if (!cmd.ok()) {
      std::cerr << "plumb: " << cmd.error().message << "\n";
      return 1;
    }
    return execute(*cmd, opts);
  }

  CLI::App app{"plumb: container networking (CNI plugin, Docker driver, pipework-style CLI)",
               "plumb"};
  app.set_version_flag("--version", "plumb 0.1.0");
  app.footer(
      "\npipework's forms (flags --json, --dry-run, --state-dir, --ovsdb, --ovs-datapath may "
      "stand anywhere):\n"
      "  plumb <hostif> [-i ctif] [-a 4|6] [-m mode] <guest> <ip>/<prefix>[@<gateway>] "
      "[<mac>|U:<name>]\n"
      "  plumb <hostif> ... <guest> 0/0          the link only\n"
      "  plumb mac:<host NIC mac> <guest> ...    pick the host interface by its MAC\n"
      "  plumb --direct-phys <NIC> <guest> ...   move the NIC itself into the guest\n"
      "  plumb --vf <PF> <guest> <ip>/<prefix>[@<gateway>] [<mac>][@<vlan>]\n"
      "                                          a free SR-IOV VF of PF (MAC, VLAN set through\n"
      "                                          the PF)\n"
      "  plumb del <guest> [-i ctif]\n"
      "  --ovsdb unix:PATH        ovsdb-server's socket (else $PLUMB_OVSDB, then\n"
      "                           /var/run/openvswitch/db.sock)\n"
      "  --ovs-datapath D         system (default) or netdev, for an ovs* bridge plumb creates\n"
      "guest: a netns name, a netns path or a PID. See docs/cli.md.");
  // The global flags taken out above (--json, --state-dir DIR, ...) hold wherever they stood.
  std::string state_dir = opts.state_dir;
  app.add_option("--state-dir", state_dir, "where plumb keeps its state")->capture_default_str();
  std::string ovsdb, ovs_datapath;  // for pipework's forms; accepted here too
  app.add_option("--ovsdb", ovsdb, "ovsdb-server's socket, unix:PATH");
  app.add_option("--ovs-datapath", ovs_datapath,
                 "system or netdev, for an ovs* bridge plumb creates");
  app.require_subcommand(1);
  bool as_json = false;
  app.fallthrough();  // global options may also follow the subcommand
  auto* ls =
      app.add_subcommand("ls", "list every attachment plumb knows, whichever front end made it");
  ls->add_flag("--json", as_json, "print JSON");
  bool links_only = false;
  ls->add_flag("--links", links_only, "list the exposed services and the links to them instead");
  bool cluster_only = false;
  ClusterQuery cluster_query;
  ls->add_flag("--cluster", cluster_only,
               "list this host's lease, address blocks and registered services, as its store "
               "and etcd hold them");
  ls->add_option("--etcd-endpoints", cluster_query.endpoints,
                 "etcd members for --cluster (default $PLUMB_ETCD_ENDPOINTS)");
  ls->add_option("--etcd-prefix", cluster_query.prefix, "where plumb's keys live in etcd")
      ->capture_default_str();
  ls->add_option("--host", cluster_query.host,
                 "this host's name in the cluster (default $PLUMB_HOST, else the hostname)");
  DoctorCommand doctor_cmd;
  auto* doctor_sub = app.add_subcommand(
      "doctor",
      "reconcile the store with the kernel: one line per difference (stale records, leaked "
      "links, rules, DHCP clients, OVS ports, VF claims, addresses)");
  doctor_sub->add_flag("--fix", doctor_cmd.fix,
                       "remove what belongs to no attachment (only what carries plumb's stamp)");
  doctor_sub->add_flag("--json", as_json, "print JSON");
  doctor_sub->add_option("--etcd-endpoints", doctor_cmd.cluster.endpoints,
                         "also compare this host's address blocks with etcd's (default "
                         "$PLUMB_ETCD_ENDPOINTS)");
  doctor_sub
      ->add_option("--etcd-prefix", doctor_cmd.cluster.prefix, "where plumb's keys live in etcd")
      ->capture_default_str();
  doctor_sub->add_option("--host", doctor_cmd.cluster.host,
                         "this host's name in the cluster (default $PLUMB_HOST, else the "
                         "hostname)");
  // The ambassadors (docs/proxy.md): carried out by the running plumb daemon.
  LinkCommand link_cmd;
  auto add_link_verb = [&](const char* verb, const char* help, const char* port_help,
                           bool port_required) {
    auto* sub = app.add_subcommand(verb, help);
    sub->add_option("guest", link_cmd.guest, "netns name or path, PID or container")->required();
    sub->add_option("name", link_cmd.name, "the service's name")->required();
    if (port_help) {
      auto* opt = sub->add_option("port", link_cmd.port, port_help);
      if (port_required) opt->required();
    }
    sub->callback([&link_cmd, verb] { link_cmd.verb = verb; });
    return sub;
  };
  add_link_verb("expose", "publish a guest's port as service NAME", "PORT[/udp]", true);
  add_link_verb("unexpose", "withdraw service NAME of a guest", nullptr, false);
  add_link_verb("link", "inside GUEST, listen on 127.0.0.1:PORT and forward to NAME's endpoints",
                "PORT[/udp] (default: the service's port)", false);
  add_link_verb("unlink", "remove GUEST's link to NAME", nullptr, false);
  ProxyCommand proxy_cmd;
  auto* proxy = app.add_subcommand(
      "proxy",
      "forward one TCP or UDP listener to its backends, in the foreground (docs/proxy.md)");
  proxy->add_flag("--udp", proxy_cmd.udp, "forward UDP (default: TCP)");
  proxy->add_option("--listen", proxy_cmd.listen, "ADDR:PORT to listen on (port 0: any free one)")
      ->required();
  proxy->add_option("--backend", proxy_cmd.backends, "ADDR:PORT to forward to (repeatable)")
      ->required();
  proxy->add_option("--netns", proxy_cmd.netns,
                    "listen inside this guest's netns (name, path, PID or container)");
  proxy
      ->add_option("--health-interval", proxy_cmd.health_interval_ms,
                   "ms between active health checks; 0: passive only")
      ->check(CLI::Range(0, 3600 * 1000))
      ->capture_default_str();
  proxy
      ->add_option("--health-port", proxy_cmd.health_port,
                   "UDP: a TCP port on each backend to check it by")
      ->check(CLI::Range(1, 65535));
  proxy->add_option("--threads", proxy_cmd.threads, "event loops (default: one per core)")
      ->check(CLI::Range(1, 256));
  proxy
      ->add_option("--idle-timeout", proxy_cmd.idle_timeout_s,
                   "seconds a TCP connection may carry nothing before it is closed")
      ->check(CLI::Range(1, 7 * 24 * 3600))
      ->capture_default_str();
  proxy
      ->add_option("--drain-timeout", proxy_cmd.drain_timeout_s,
                   "seconds open connections get to finish on SIGTERM")
      ->check(CLI::Range(0, 3600))
      ->capture_default_str();
  try {
    std::vector<std::string> reversed(rest.rbegin(), rest.rend());  // CLI11 takes them so
    app.parse(reversed);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::Success& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::cerr << "plumb: " << e.what() << " (plumb --help)\n";  // one line, not CLI11's two
    return 2;
  }
  Options link_opts = opts;
  link_opts.state_dir = state_dir;
  link_opts.json = opts.json || as_json;
  if (doctor_sub->parsed()) return doctor(doctor_cmd, link_opts);
  if (ls->parsed() && cluster_only) return listCluster(cluster_query, link_opts);
  if (ls->parsed() && links_only) return listLinks(link_opts);
  if (ls->parsed()) return list(state_dir, as_json || opts.json);
  if (!link_cmd.verb.empty()) return runLinkCommand(link_cmd, link_opts);
  if (proxy->parsed()) return runProxy(proxy_cmd);
  return 2;
}

}  // namespace plumb::cli
