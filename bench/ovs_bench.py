#!/usr/bin/env python3
"""OVS benchmark driver (run by ovs_bench.sh inside the host netns, OVSDB at TMP/ovs/db.sock).

Part 1: ADD and DEL of COUNT containers on one netdev bridge, VLAN 10, three ways, each way
in turn (COUNT ADDs, then COUNT DELs), so each sees the bridge grow from 0 to COUNT ports:
  plumb-cni  plumb's CNI ADD/DEL, mode ovs, built-in IPAM;
  plumb-cli  plumb's command line in pipework's grammar: `plumb BR NETNS ip/24@gw @10`;
  pipework   what pipework runs for the same (a bash script of ip and ovs-vsctl commands:
             veth, ovs-vsctl add-port ... tag=10, peer into the netns, rename, address, up,
             default route; DEL: ovs-vsctl del-port and ip link del).
Each is exec'd by the same launcher (subprocess); wall time per call.
Part 2: plumb's CNI ADD p50 with 10 ports on a fresh bridge and with HIGH ports (veths added
in one ovs-vsctl transaction), SAMPLES each.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import time


def pct(values, p):
    s = sorted(values)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run(argv, env=None, stdin=None, check=True):
    t0 = time.perf_counter()
    r = subprocess.run(argv, env=env, input=stdin, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE)
    dt = (time.perf_counter() - t0) * 1000.0
    if check and r.returncode != 0:
        sys.exit("ovs_bench: %s failed (%d): %s %s" % (" ".join(argv[:4]), r.returncode,
                                                       r.stdout.decode()[-300:],
                                                       r.stderr.decode()[-300:]))
    return dt


PIPEWORK_ADD = r"""
set -e
ip link add name "$L" mtu 1500 type veth peer name "$G" mtu 1500
ovs-vsctl --db="$DB" add-port "$BR" "$L" tag="$VLAN"
ip link set "$L" up
ip link set "$G" netns "$NS"
ip netns exec "$NS" ip link set "$G" name "$IF"
ip netns exec "$NS" ip addr add "$IP" dev "$IF"
ip netns exec "$NS" ip link set "$IF" up
ip netns exec "$NS" ip route delete default 2>/dev/null || true
ip netns exec "$NS" ip route add default via "$GW"
"""
PIPEWORK_DEL = r"""
set -e
ovs-vsctl --db="$DB" --if-exists del-port "$BR" "$L"
ip link del "$L"
"""


FLOOR_LINK = "flr0"  # the standing veth whose port the switch's floor adds and removes


class Ovsdb:
    """The switch's floor: a bare JSON-RPC client sending the OVSDB work of one ADD (the same
    two transactions plumb sends: insert Interface and Port, mutate the bridge's ports,
    next_cfg += 1; then a wait for cur_cfg and the ofport read), nothing else."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = ""
        self.dec = json.JSONDecoder()
        self.id = 0

    def call(self, method, params):
        self.id += 1
        self.s.sendall(json.dumps({"method": method, "params": params, "id": self.id}).encode())
        while True:
            self.buf = self.buf.lstrip()
            if self.buf:
                try:
                    msg, end = self.dec.raw_decode(self.buf)
                    self.buf = self.buf[end:]
                    if msg.get("id") == self.id:
                        return msg["result"]
                    if msg.get("method") == "echo":
                        self.s.sendall(json.dumps({"result": msg["params"], "error": None,
                                                   "id": msg["id"]}).encode())
                    continue
                except ValueError:
                    pass
            self.buf += self.s.recv(65536).decode()

    def add_port(self, bridge, name):
        ops = [{"op": "insert", "table": "Interface", "row": {"name": name}, "uuid-name": "i"},
               {"op": "insert", "table": "Port", "uuid-name": "p",
                "row": {"name": name, "interfaces": ["named-uuid", "i"], "tag": 10}},
               {"op": "mutate", "table": "Bridge", "where": [["name", "==", bridge]],
                "mutations": [["ports", "insert", ["named-uuid", "p"]]]},
               {"op": "mutate", "table": "Open_vSwitch", "where": [],
                "mutations": [["next_cfg", "+=", 1]]},
               {"op": "select", "table": "Open_vSwitch", "where": [], "columns": ["next_cfg"]}]
        r = self.call("transact", ["Open_vSwitch"] + ops)
        cfg = r[4]["rows"][0]["next_cfg"]
        iface, port = r[0]["uuid"], r[1]["uuid"]
        w = self.call("transact", ["Open_vSwitch",
                                   {"op": "wait", "table": "Open_vSwitch",
                                    "where": [["cur_cfg", ">=", cfg]], "columns": ["cur_cfg"],
                                    "until": "!=", "rows": [], "timeout": 30000},
                                   {"op": "select", "table": "Interface",
                                    "where": [["_uuid", "==", iface]], "columns": ["ofport"]}])
        if "error" in w[0] or not isinstance(w[1]["rows"][0]["ofport"], int):
            sys.exit("ovs_bench: the floor's port was not applied: %s" % w)
        return port

    def floor_ms(self, bridge, name):
        """One floor sample: the port of the standing veth NAME added (timed), then removed and
        waited for (untimed), so the bridge keeps its size."""
        t0 = time.perf_counter()
        port = self.add_port(bridge, name)
        ms = (time.perf_counter() - t0) * 1000.0
        self.remove_port(port)
        return ms

    def fresh_floor_ms(self, bridge, n, peer_ns):
        """One floor sample for a port whose veth is new: the veth made (its peer in peer_ns)
        and set up just before (untimed), as any plugin must, then the same timed OVSDB work.
        ovs-vswitchd reconfigures on every link event in its netns, so the new veth costs the
        switch a reconfiguration before it gets to the port. The veth stays (its deletion
        would be one more event, landing on the next sample)."""
        name = "flx%d" % n
        subprocess.run(["ip", "link", "add", name, "type", "veth", "peer", "name", name + "p",
                        "netns", peer_ns], check=True)
        subprocess.run(["ip", "link", "set", name, "up"], check=True)
        t0 = time.perf_counter()
        port = self.add_port(bridge, name)
        ms = (time.perf_counter() - t0) * 1000.0
        self.remove_port(port)
        return ms

    def remove_port(self, port):
        """Untimed; waits until ovs-vswitchd has applied it, so that the next ADD does not."""
        r = self.call("transact", ["Open_vSwitch",
                                   {"op": "mutate", "table": "Bridge",
                                    "where": [["ports", "includes", port]],
                                    "mutations": [["ports", "delete", port]]},
                                   {"op": "mutate", "table": "Open_vSwitch", "where": [],
                                    "mutations": [["next_cfg", "+=", 1]]},
                                   {"op": "select", "table": "Open_vSwitch", "where": [],
                                    "columns": ["next_cfg"]}])
        cfg = r[2]["rows"][0]["next_cfg"]
        self.call("transact", ["Open_vSwitch",
                               {"op": "wait", "table": "Open_vSwitch",
                                "where": [["cur_cfg", ">=", cfg]], "columns": ["cur_cfg"],
                                "until": "!=", "rows": [], "timeout": 30000}])


class Bench:
    def __init__(self, a):
        self.a = a
        self.db = "unix:" + os.path.join(a.tmp, "ovs", "db.sock")
        self.state = os.path.join(a.tmp, "state")
        self.cli_state = os.path.join(a.tmp, "cli-state")
        self.fresh_links = 0  # the new-veth floor's veths, each used once

    def vsctl(self, *args):
        subprocess.run(["ovs-vsctl", "--db=" + self.db, "--timeout=30"] + list(args), check=True,
                       stdout=subprocess.DEVNULL)

    def ports(self, bridge):
        return subprocess.run(["ovs-vsctl", "--db=" + self.db, "list-ports", bridge],
                              stdout=subprocess.PIPE, check=True).stdout.split()

    def netns(self, i):
        return "%s-c%d" % (self.a.prefix, i)

    def conf(self, bridge, subnet, name):
        return json.dumps({"cniVersion": "1.1.0", "name": name, "type": "plumb", "mode": "ovs",
                           "bridge": bridge, "vlan": 10, "socket_file": self.db,
                           "dataDir": self.state,
                           "ipam": {"type": "plumb", "subnet": subnet}}).encode()

    def cni(self, cmd, conf, i, ifname="eth0"):
        env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID="c%d" % i,
                   CNI_NETNS="/run/netns/" + self.netns(i), CNI_IFNAME=ifname,
                   CNI_PATH="/usr/lib/cni")
        return run([self.a.plumb], env=env, stdin=conf)

    def cli_add(self, bridge, i):
        return run([self.a.plumb, "--state-dir", self.cli_state, "--ovsdb", self.db, bridge,
                    self.netns(i), "-i", "eth1", "198.18.%d.%d/16@198.18.0.1" %
                    (120 + i // 250, 2 + i % 250), "@10"])

    def cli_del(self, i):
        return run([self.a.plumb, "--state-dir", self.cli_state, "del", self.netns(i), "-i",
                    "eth1"])

    def pipework_env(self, bridge, i):
        return dict(os.environ, L="pwv%d" % i, G="pwg%d" % i, NS=self.netns(i), IF="eth2",
                    BR=bridge, VLAN="10", DB=self.db,
                    IP="198.18.%d.%d/16" % (130 + i // 250, 2 + i % 250), GW="198.18.0.1")

    def part1(self):
        """Each way on its own, COUNT ADDs then COUNT DELs, one after the other on one bridge:
        each sees the bridge grow from 0 to COUNT ports (ovs-vswitchd's work per port grows
        with every port it has, so three ways at once would triple what each is charged)."""
        bridge = "obr0"
        self.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
        conf = self.conf(bridge, "198.18.64.0/18", "ovsbench")
        ways = {
            "plumb-cni": (lambda i: self.cni("ADD", conf, i), lambda i: self.cni("DEL", conf, i)),
            "pipework": (lambda i: run(["bash", "-c", PIPEWORK_ADD],
                                       env=self.pipework_env(bridge, i)),
                         lambda i: run(["bash", "-c", PIPEWORK_DEL],
                                       env=self.pipework_env(bridge, i))),
            "plumb-cli": (lambda i: self.cli_add(bridge, i), self.cli_del),
        }
        add = {n: [] for n in ways}
        add["switch floor"] = []
        add["switch floor, new veth"] = []
        dele = {n: [] for n in ways}
        ports = 0
        client = Ovsdb(self.db[len("unix:"):])
        for n, (do_add, do_del) in ways.items():
            for i in range(self.a.count):
                add[n].append(do_add(i))
                if n == "plumb-cni":
                    # The switch's floor at this bridge size (see part 2).
                    add["switch floor"].append(client.floor_ms(bridge, FLOOR_LINK))
                    add["switch floor, new veth"].append(
                        client.fresh_floor_ms(bridge, self.fresh(), self.floor_ns()))
            ports = max(ports, len(self.ports(bridge)))
            for i in range(self.a.count):
                dele[n].append(do_del(i))
            left = self.ports(bridge)
            if left:
                sys.exit("ovs_bench: ports left on %s: %s" % (bridge, left[:5]))
        self.vsctl("del-br", bridge)
        return add, dele, ports

    def scale_point(self, bridge, subnet, name):
        conf = self.conf(bridge, subnet, name)
        adds, dels, floor, fresh = [], [], [], []
        client = Ovsdb(self.db[len("unix:"):])
        for i in range(self.a.samples):
            # Alternating: plumb's ADD, then the floor's OVSDB work at the same bridge size.
            adds.append(self.cni("ADD", conf, i))
            floor.append(client.floor_ms(bridge, FLOOR_LINK))
            fresh.append(client.fresh_floor_ms(bridge, self.fresh(), self.floor_ns()))
        for i in range(self.a.samples):
            dels.append(self.cni("DEL", conf, i))
        return adds, dels, floor, fresh

    def fresh(self):
        self.fresh_links += 1
        return self.fresh_links

    def floor_ns(self):
        return "%s-floor" % self.a.prefix

    def part2(self):
        out = {}
        for label, n in (("10", 10), (str(self.a.high), self.a.high)):
            bridge = "obr%s" % label
            self.vsctl("add-br", bridge, "--", "set", "bridge", bridge, "datapath_type=netdev")
            fill = max(0, n - 1)  # the samples' own port makes n
            if fill:
                batch = "".join("link add sc%d type veth peer name sp%d\nlink set sc%d up\n" %
                                (j, j, j) for j in range(fill))
                subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True)
                args = []
                for j in range(fill):
                    args += ["--", "add-port", bridge, "sc%d" % j]
                self.vsctl(*args)
            out[label] = self.scale_point(bridge, "198.18.%d.0/24" % (100 + len(out)),
                                          "scale" + label)
            self.vsctl("del-br", bridge)
            if fill:
                batch = "".join("link del sc%d\n" % j for j in range(fill))
                subprocess.run(["ip", "-batch", "-"], input=batch.encode(), check=True)
        return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--high", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--ovs-version", default="")
    a = ap.parse_args()
    b = Bench(a)
    load = open("/proc/loadavg").read().split()[:3]
    print("# OVS benchmark: plumb %s, %s, netdev datapath; %d containers; load %s" %
          (a.plumb, a.ovs_version, a.count, " ".join(load)))
    subprocess.run(["ip", "link", "add", FLOOR_LINK, "type", "veth", "peer", "name", "flr1"],
                   check=True)
    add, dele, ports = b.part1()
    print("\n## Part 1: %d ADDs then %d DELs, each way in turn on one bridge (0 to %d ports)" %
          (a.count, a.count, ports))
    print("| | p50 ms | p99 ms | p50 vs pipework | p99 vs pipework |")
    print("|---|---|---|---|---|")
    for verb, d in (("ADD", add), ("DEL", dele)):
        ref50, ref99 = pct(d["pipework"], 50), pct(d["pipework"], 99)
        for n in ("plumb-cni", "plumb-cli", "pipework", "switch floor",
                  "switch floor, new veth"):
            if n not in d:
                continue
            p50, p99 = pct(d[n], 50), pct(d[n], 99)
            print("| %s %s | %.2f | %.2f | %.2fx | %.2fx |" % (verb, n, p50, p99, p50 / ref50,
                                                             p99 / ref99))
    for n in ("switch floor", "switch floor, new veth"):
        over = [x - y for x, y in zip(add["plumb-cni"], add[n])]
        print("ADD plumb-cni minus the %s (same bridge size): p50 %.2f ms" % (n, pct(over, 50)))
    print("Targets: ADD <= 0.2x pipework, DEL <= 0.7x (p50). The switch floor: a bare client's "
          "two OVSDB transactions for one port, measured after each plumb-cni ADD, for a "
          "standing veth, and for a veth made and set up just before (untimed), as every ADD "
          "must: ovs-vswitchd reconfigures on that link event first.")
    if a.high > 0:
        sc = b.part2()
        low, high = sc["10"], sc[str(a.high)]
        l50, h50 = pct(low[0], 50), pct(high[0], 50)
        print("\n## Part 2: plumb CNI ADD by bridge size (%d samples each)" % a.samples)
        print("The switch's floor: the same two OVSDB transactions from a bare client, no "
              "kernel work (ovs-vswitchd applying the port is most of it).")
        print("| ports | ADD p50 ms | ADD p99 ms | switch floor p50 ms | new-veth floor p50 ms "
              "| ADD - new-veth floor p50 ms | DEL p50 ms |")
        print("|---|---|---|---|---|---|---|")
        for label, (adds, dels, floor, fresh) in (("10", low), (str(a.high), high)):
            over = [x - y for x, y in zip(adds, fresh)]
            print("| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |" % (
                label, pct(adds, 50), pct(adds, 99), pct(floor, 50), pct(fresh, 50),
                pct(over, 50), pct(dels, 50)))
        print("ADD p50 at %d / at 10: %.2fx (target <= 1.3x); the floors': %.2fx, new veth "
              "%.2fx" % (a.high, h50 / l50, pct(high[2], 50) / pct(low[2], 50),
                         pct(high[3], 50) / pct(low[3], 50)))
    subprocess.run(["ip", "link", "del", FLOOR_LINK], check=True)


if __name__ == "__main__":
    main()
