#include "plugin/cli/links.h"

#include <cstdio>
#include <nlohmann/json.hpp>

#include "base/endpoint.h"
#include "base/json.h"
#include "base/standard_streams.h"
#include "plugin/cli/guest.h"
#include "plugin/core/ambassadors.h"
#include "plugin/core/control.h"
#include "plugin/core/directory.h"
#include "plugin/core/store.h"

namespace plumb::cli {
namespace {

using json = nlohmann::json;

// "80", "53/udp", "80/tcp".
Result<std::pair<int, bool>> parsePortProto(const std::string& text) {
  std::string port = text;
  bool udp = false;
  if (auto slash = text.find('/'); slash != std::string::npos) {
    std::string proto = text.substr(slash + 1);
    if (proto != "udp" && proto != "tcp")
      return fail(Errc::kInvalid, "'" + text + "': the protocol is tcp or udp");
    udp = proto == "udp";
    port = text.substr(0, slash);
  }
  if (port.empty()) return std::make_pair(0, udp);  // "/udp": the service's port
  PLUMB_ASSIGN(uint16_t p, parsePort(port));
  if (p == 0) return fail(Errc::kInvalid, "'" + text + "': port 0");
  return std::make_pair(static_cast<int>(p), udp);
}

}  // namespace

int runLinkCommand(const LinkCommand& cmd, const Options& opts) {
  // Input first, then the guest, then the daemon: bad input fails the same with or without one.
  if (auto st = core::validateServiceName(cmd.name); !st.ok())
    return failWith(st.error().message, opts);
  int port = 0;
  bool udp = false;
  if (!cmd.port.empty()) {
    auto pp = parsePortProto(cmd.port);
    if (!pp.ok()) return failWith(pp.error().message, opts);
    std::tie(port, udp) = *pp;
  }
  if (cmd.verb == "expose" && port == 0)
    return failWith("usage: plumb expose GUEST NAME PORT[/udp]", opts);
  bool gone_ok = cmd.verb == "unlink" || cmd.verb == "unexpose";
  auto guest = resolveGuest(cmd.guest, /*must_exist=*/!gone_ok);
  if (!guest.ok()) return failWith(guest.error().message, opts);
  json req = {{"op", cmd.verb},   {"guest", guest->id}, {"netns", guest->netns},
              {"name", cmd.name}, {"port", port},       {"udp", udp}};
  // A Docker guest finds the service by name too, as with --link: the daemon edits its hosts.
  if (!guest->hosts_path.empty()) req["hosts"] = guest->hosts_path;
  std::string path = core::controlSocketPath(opts.state_dir);
  auto answer = core::controlCall(path, req.dump());
  if (!answer.ok()) {
    if (answer.error().code == Errc::kNotFound)
      return failWith("failed to " + cmd.verb + " " + cmd.name + ": no plumb daemon answers on " +
                          path + " (start one: plumb daemon --state-dir " + opts.state_dir + ")",
                      opts);
    return failWith(answer.error().message, opts);
  }
  auto parsed = json_read::parse(*answer);
  if (!parsed.ok() || !parsed->is_object())
    return failWith("the plumb daemon on " + path + " answered something that is not JSON", opts);
  if (parsed->contains("error") && (*parsed)["error"].is_string())
    return failWith((*parsed)["error"].get<std::string>(), opts);
  if (opts.json) {
    std::cout << json_read::text(*parsed) << "\n";
  } else if (cmd.verb == "expose") {
    std::cout << cmd.name << "/" << core::protoName(udp) << " of " << cmd.guest << " is "
              << json_read::valueOr(*parsed, "endpoint", std::string()) << "\n";
  } else if (cmd.verb == "link") {
    std::cout << cmd.name << " is " << json_read::valueOr(*parsed, "listening", std::string())
              << " in " << cmd.guest << "\n";
  } else {
    std::cout << cmd.verb << " " << cmd.name << " of " << cmd.guest << ": done\n";
  }
  return 0;
}

int listLinks(const Options& opts) {
  auto store = core::Store::open(opts.state_dir);
  if (!store.ok()) return failWith(store.error().message, opts);
  core::Directory dir(**store);
  auto services = dir.services();
  if (!services.ok()) return failWith(services.error().message, opts);
  auto links = dir.links();
  if (!links.ok()) return failWith(links.error().message, opts);
  if (opts.json) {
    json out = {{"services", json::array()}, {"links", json::array()}};
    for (const auto& s : *services)
      out["services"].push_back({{"name", s.name},
                                 {"proto", core::protoName(s.udp)},
                                 {"guest", s.guest},
                                 {"address", s.address},
                                 {"port", s.port}});
    for (const auto& l : *links)
      out["links"].push_back({{"guest", l.guest},
                              {"name", l.name},
                              {"proto", core::protoName(l.udp)},
                              {"listen", "127.0.0.1:" + std::to_string(l.port)}});
    std::cout << json_read::text(out, 2) << "\n";
    return 0;
  }
  std::printf("%-24s %-5s %-24s %s\n", "SERVICE", "PROTO", "EXPOSED BY", "ENDPOINT");
  for (const auto& s : *services) {
    auto addr = IpAddr::parse(s.address);
    std::string ep = addr.ok() ? Endpoint{*addr, static_cast<uint16_t>(s.port)}.str() : s.address;
    std::printf("%-24s %-5s %-24.24s %s\n", s.name.c_str(), core::protoName(s.udp), s.guest.c_str(),
                ep.c_str());
  }
  std::printf("\n%-24s %-5s %-24s %s\n", "LINKED BY", "PROTO", "SERVICE", "LISTENS ON");
  for (const auto& l : *links)
    std::printf("%-24.24s %-5s %-24s 127.0.0.1:%d\n", l.guest.c_str(), core::protoName(l.udp),
                l.name.c_str(), l.port);
  return 0;
}

}  // namespace plumb::cli
