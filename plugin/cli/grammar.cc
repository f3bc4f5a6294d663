#include "plugin/cli/grammar.h"

#include <charconv>
#include <cstdio>

#include "base/dl.h"
#include "base/names.h"
#include "plugin/core/types.h"

namespace plumb::cli {
namespace {

Status checkIfname(const std::string& what, const std::string& name) {
  auto st = validateIfname(name);
  if (!st.ok()) return fail(Errc::kInvalid, what + ": " + st.error().message);
  return {};
}

Result<MacAddr> parseUnicastMac(const std::string& text) {
  PLUMB_ASSIGN(MacAddr mac, MacAddr::parse(text));
  PLUMB_TRY(checkUnicast(mac));
  return mac;
}

Result<AddressSpec> parseAddress(const std::string& text) {
  AddressSpec a;
  if (text == "0/0") return a;  // no address: pipework's way of asking for a bare link
  std::string head = text.substr(0, text.find(':'));
  if (head == "dhcp" || head == "udhcpc" || head == "dhclient" || head == "dhcpcd") {
    a.kind = AddressSpec::Kind::kDhcp;
    a.dhcp_client = head;
    if (text.size() > head.size()) a.dhcp_options = text.substr(head.size() + 1);
    return a;
  }
  std::string cidr = text, gw;
  if (auto at = text.find('@'); at != std::string::npos) {
    cidr = text.substr(0, at);
    gw = text.substr(at + 1);
  }
  if (cidr.find('/') == std::string::npos) {
    auto bare = IpAddr::parse(cidr);
    if (bare.ok()) {
      return fail(Errc::kInvalid, "the address " + cidr + " needs a prefix length: did you mean " +
                                      cidr + (bare->isV4() ? "/24" : "/64") + "?");
    }
  }
  auto prefix = IpPrefix::parse(cidr);
  if (!prefix.ok())
    return fail(Errc::kInvalid, "'" + text + "' is not <ip>/<prefix>[@<gateway>], dhcp or 0/0");
  a.kind = AddressSpec::Kind::kStatic;
  a.address = *prefix;
  if (!gw.empty()) {
    auto g = IpAddr::parse(gw);
    if (!g.ok()) return fail(Errc::kInvalid, "gateway '" + gw + "' is not an IP address");
    if (g->isV4() != prefix->isV4()) {
      return fail(Errc::kInvalid, "gateway " + gw + " is not of the same family as " + cidr);
    }
    a.gateway = *g;
  }
  return a;
}

// libcrypto's MD5, loaded for U:<name> only (libssl3, which libcurl pulls in anyway).
struct Md5Lib {
  unsigned char* (*md5)(const unsigned char*, size_t, unsigned char*) = nullptr;
  bool resolve(const DynamicLibrary& lib) { return lib.resolve("MD5", md5); }
};

// The MAC pipework gives U:<name>: `echo "$name" | md5sum`, "02:" and its first five bytes.
// Users' DHCP reservations carry it over from pipework.
Result<MacAddr> pipeworkMac(const std::string& name) {
  PLUMB_ASSIGN(const Md5Lib* lib, loadOnce<Md5Lib>("libcrypto.so.3", "libssl3"));
  std::string line = name + "\n";
  unsigned char d[16];
  lib->md5(reinterpret_cast<const unsigned char*>(line.data()), line.size(), d);
  char text[18];
  (void)std::snprintf(text, sizeof(text), "02:%02x:%02x:%02x:%02x:%02x", d[0], d[1], d[2], d[3],
                      d[4]);
  return MacAddr::parse(text);
}

// [<mac>][@<vlan>], <mac> may be U:<name>.
Status parseMacVlan(const std::string& text, AttachCommand& cmd) {
  std::string mac = text, vlan;
  if (auto at = text.find('@'); at != std::string::npos) {
    mac = text.substr(0, at);
    vlan = text.substr(at + 1);
  }
  if (mac.rfind("U:", 0) == 0) {
    cmd.mac_name = mac.substr(2);
    if (cmd.mac_name.empty()) return fail(Errc::kInvalid, "U: needs a name to derive the MAC from");
    PLUMB_ASSIGN(cmd.mac, pipeworkMac(cmd.mac_name));
  } else if (!mac.empty()) {
    PLUMB_ASSIGN(cmd.mac, parseUnicastMac(mac));
  }
  if (!vlan.empty()) {
    int id = 0;
    auto [p, ec] = std::from_chars(vlan.data(), vlan.data() + vlan.size(), id);
    if (ec != std::errc() || p != vlan.data() + vlan.size() || id < 1 || id > 4094) {
      return fail(Errc::kInvalid, "VLAN '" + vlan + "' is not a number from 1 to 4094");
    }
    cmd.vlan = id;
  }
  return {};
}

Result<int> parseFamily(const std::string& v) {
  if (v == "4" || v == "ip" || v == "ip4" || v == "inet") return 4;
  if (v == "6" || v == "ip6" || v == "inet6") return 6;
  return fail(Errc::kInvalid, "-a takes 4 or 6, not '" + v + "'");
}

Result<Command> parseAttach(const std::vector<std::string>& args) {
  AttachCommand cmd;
  std::vector<std::string> positional;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    auto value = [&](const char* flag) -> Result<std::string> {
      if (i + 1 >= args.size()) return fail(Errc::kInvalid, std::string(flag) + " needs a value");
      return args[++i];
    };
    if (a == "--direct-phys") {
      cmd.direct_phys = true;
    } else if (a == "--force") {
      cmd.force = true;
    } else if (a == "--vf") {
      cmd.vf = true;
    } else if (a == "-i") {
      PLUMB_ASSIGN(cmd.container_if, value("-i"));
    } else if (a == "-l") {
      PLUMB_ASSIGN(cmd.local_if, value("-l"));
    } else if (a == "-a") {
      auto v = value("-a");
      if (!v.ok()) return std::move(v).error();
      PLUMB_ASSIGN(cmd.family, parseFamily(*v));
    } else if (a == "-m") {
      PLUMB_ASSIGN(cmd.macvlan_mode, value("-m"));
      PLUMB_TRY(core::parseMacvlanMode(cmd.macvlan_mode));
    } else if (a == "-f") {
      cmd.keep_dhcp_client = true;
    } else if (a.size() > 1 && a[0] == '-' && positional.size() < 2) {
      return fail(Errc::kInvalid, "unknown option " + a);
    } else {
      positional.push_back(a);
    }
  }
  if (positional.size() < 3) {
    return fail(
        Errc::kInvalid,
        "usage: plumb <hostif> [-i ctif] <guest> <ip>/<prefix>[@<gateway>] [<mac>][@<vlan>]");
  }
  if (positional.size() > 4)
    return fail(Errc::kInvalid, "unexpected argument '" + positional[4] + "'");
  if (cmd.vf && cmd.direct_phys)
    return fail(Errc::kInvalid, "--vf and --direct-phys do not go together");
  if (cmd.force && !cmd.direct_phys)
    return fail(Errc::kInvalid,
                "--force is for --direct-phys (a NIC that carries the host's "
                "addresses or routes)");
  const std::string& host = positional[0];
  if (host.rfind("mac:", 0) == 0) {
    PLUMB_ASSIGN(cmd.host_mac, MacAddr::parse(host.substr(4)));
  } else {
    if (host == "lo") return fail(Errc::kInvalid, "lo cannot be the host interface");
    PLUMB_TRY(checkIfname("host interface", host));
    cmd.host_if = host;
  }
  PLUMB_TRY(checkIfname("container interface (-i)", cmd.container_if));
  if (!cmd.local_if.empty()) PLUMB_TRY(checkIfname("local interface (-l)", cmd.local_if));
  cmd.guest = positional[1];
  if (cmd.guest.empty()) return fail(Errc::kInvalid, "the guest is empty");
  PLUMB_ASSIGN(cmd.address, parseAddress(positional[2]));
  if (cmd.family != 0 && cmd.address.address && (cmd.family == 4) != cmd.address.address->isV4()) {
    return fail(Errc::kInvalid, "-a " + std::to_string(cmd.family) +
                                    " does not match the address " + cmd.address.address->str());
  }
  if (positional.size() == 4) PLUMB_TRY(parseMacVlan(positional[3], cmd));
  return Command(cmd);
}

// A number as ip(8) takes it: decimal, or hex with 0x.
Result<uint32_t> number(const std::string& what, const std::string& v) {
  uint32_t n = 0;
  int base = v.rfind("0x", 0) == 0 ? 16 : 10;
  const char* start = v.data() + (base == 16 ? 2 : 0);
  auto [p, ec] = std::from_chars(start, v.data() + v.size(), n, base);
  if (v.empty() || ec != std::errc() || p != v.data() + v.size())
    return fail(Errc::kInvalid, what + " '" + v + "' is not a number");
  return n;
}

// A routing table by number or by the names ip(8) knows without rt_tables.
Result<uint32_t> tableNumber(const std::string& v) {
  if (v == "main") return 254u;
  if (v == "local") return 255u;
  if (v == "default") return 253u;
  PLUMB_ASSIGN(uint32_t n, number("table", v));
  if (n == 0) return fail(Errc::kInvalid, "table 0 is not a routing table");
  return n;
}

}  // namespace

Result<RouteArgs> parseRouteArgs(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: plumb route <guest> add|del|replace <prefix>|default [via <gw>] [dev <if>] [metric "
      "<n>] [table <n>]";
  if (args.size() < 2) return fail(Errc::kInvalid, usage);
  RouteArgs r;
  r.action = args[0];
  if (r.action != "add" && r.action != "del" && r.action != "delete" && r.action != "replace") {
    return fail(Errc::kInvalid, "route action '" + r.action + "' is not add, del or replace");
  }
  if (r.action == "delete") r.action = "del";
  std::optional<bool> v6;
  size_t i = 1;
  std::string dst = args[i++];
  for (; i < args.size(); ++i) {
    auto value = [&]() -> Result<std::string> {
      if (i + 1 >= args.size()) return fail(Errc::kInvalid, args[i] + " needs a value");
      return args[++i];
    };
    if (args[i] == "via") {
      PLUMB_ASSIGN(std::string gw, value());
      PLUMB_ASSIGN(r.via, IpAddr::parse(gw));
      v6 = r.via->isV6();
    } else if (args[i] == "dev") {
      PLUMB_ASSIGN(r.dev, value());
      PLUMB_TRY(checkIfname("dev", r.dev));
    } else if (args[i] == "metric") {
      PLUMB_ASSIGN(std::string m, value());
      auto [p, ec] = std::from_chars(m.data(), m.data() + m.size(), r.metric);
      if (ec != std::errc() || p != m.data() + m.size() || r.metric < 0) {
        return fail(Errc::kInvalid, "metric '" + m + "' is not a number");
      }
    } else if (args[i] == "table") {
      PLUMB_ASSIGN(std::string t, value());
      PLUMB_ASSIGN(r.table, tableNumber(t));
    } else {
      return fail(Errc::kInvalid, "unexpected route argument '" + args[i] + "' (" + usage + ")");
    }
  }
  if (dst == "default") {
    r.dst = IpPrefix(IpAddr::fromNumber(v6.value_or(false), 0), 0);
  } else {
    PLUMB_ASSIGN(r.dst, IpPrefix::parse(dst, /*allow_bare=*/true));
  }
  if (r.via && r.via->isV6() != r.dst.addr().isV6()) {
    return fail(Errc::kInvalid,
                "gateway " + r.via->str() + " is not of the same family as " + r.dst.str());
  }
  if (r.action != "del" && !r.via && r.dev.empty())
    return fail(Errc::kInvalid, "a route needs via <gw> or dev <if>");
  return r;
}

Result<RuleArgs> parseRuleArgs(const std::vector<std::string>& args) {
  const std::string usage =
      "usage: plumb rule <guest> [-4|-6] add|del [from <prefix>|all] [to <prefix>] [iif <if>] "
      "[oif <if>] [fwmark <n>] [priority <n>] table <n>|main|local|default";
  RuleArgs r;
  size_t i = 0;
  std::optional<int> family;
  if (i < args.size() && (args[i] == "-4" || args[i] == "-6")) family = args[i++] == "-4" ? 4 : 6;
  if (i >= args.size()) return fail(Errc::kInvalid, usage);
  r.action = args[i++];
  if (r.action == "delete") r.action = "del";
  if (r.action != "add" && r.action != "del")
    return fail(Errc::kInvalid, "rule action '" + r.action + "' is not add or del");
  bool has_table = false;
  for (; i < args.size(); ++i) {
    if (i + 1 >= args.size())
      return fail(Errc::kInvalid, args[i] + " needs a value (" + usage + ")");
    const std::string& k = args[i];
    const std::string& v = args[i + 1];
    ++i;
    if (k == "from" || k == "to") {
      std::optional<IpPrefix> p;
      if (v != "all") {
        PLUMB_ASSIGN(auto parsed, IpPrefix::parse(v, /*allow_bare=*/true));
        p = parsed;
        int f = parsed.isV4() ? 4 : 6;
        if (family && *family != f)
          return fail(Errc::kInvalid, k + " " + v + " is not IPv" + std::to_string(*family));
        family = f;
      }
      (k == "from" ? r.from : r.to) = p;
    } else if (k == "iif" || k == "oif") {
      PLUMB_TRY(checkIfname(k, v));
      (k == "iif" ? r.iif : r.oif) = v;
    } else if (k == "fwmark") {
      PLUMB_ASSIGN(r.fwmark, number("fwmark", v));
    } else if (k == "priority" || k == "pref" || k == "preference") {
      PLUMB_ASSIGN(r.priority, number("priority", v));
    } else if (k == "table" || k == "lookup") {
      has_table = true;
      PLUMB_ASSIGN(r.table, tableNumber(v));
    } else {
      return fail(Errc::kInvalid, "unexpected rule argument '" + k + "' (" + usage + ")");
    }
  }
  if (!has_table && r.action == "add") return fail(Errc::kInvalid, "a rule needs table <n>");
  r.family = family.value_or(4);
  return r;
}

bool isPipeworkForm(const std::vector<std::string>& args) {
  if (args.empty()) return false;
  const std::string& first = args[0];
  return !(first == "ls" || first == "proxy" || first == "expose" || first == "unexpose" ||
           first == "link" || first == "unlink" || first == "doctor" || first == "help" ||
           first == "--help" || first == "-h" || first == "--version" || first == "--state-dir" ||
           first == "--json");
}

// The "[-i ctif]" that may close a command after `from` words; pipework's default otherwise.
static Result<std::string> trailingIfname(const std::vector<std::string>& args, size_t from,
                                          const std::string& usage) {
  std::string ifname = "eth1";
  if (args.size() == from + 2 && args[from] == "-i") {
    ifname = args[from + 1];
  } else if (args.size() != from) {
    return fail(Errc::kInvalid, "usage: " + usage);
  }
  PLUMB_TRY(checkIfname("container interface (-i)", ifname));
  return ifname;
}

Result<Command> parseCommand(const std::vector<std::string>& args) {
  if (args.empty()) return fail(Errc::kInvalid, "nothing to do (plumb --help)");
  const std::string& first = args[0];
  if (first == "--wait") {
    PLUMB_ASSIGN(std::string ifname, trailingIfname(args, 1, "plumb --wait [-i ctif]"));
    return Command(WaitCommand{ifname});
  }
  if (first == "route" || first == "rule" || first == "tc") {
    if (args.size() < 3)
      return fail(Errc::kInvalid,
                  "usage: plumb " + first + " <guest> <" + first + " arguments...>");
    return Command(PassCommand{first, args[1], {args.begin() + 2, args.end()}});
  }
  if (first == "del") {
    if (args.size() < 2) return fail(Errc::kInvalid, "usage: plumb del <guest> [-i ctif]");
    PLUMB_ASSIGN(std::string ifname, trailingIfname(args, 2, "plumb del <guest> [-i ctif]"));
    return Command(DelCommand{args[1], ifname});
  }
  return parseAttach(args);
}

}  // namespace plumb::cli
