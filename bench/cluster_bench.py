#!/usr/bin/python3
"""Cluster IPAM benchmark (bench/cluster_bench.sh runs it; see bench/README.md).

  master   sets up the wire namespace (a bridge, three etcd 3.4 members on 198.18.251.254),
           two host namespaces joined to it and the container namespaces, then runs the
           phases below, interleaved over rounds, and prints the report.
  worker   runs inside one host netns (`ip netns exec`) and execs plumb for a list of calls,
           `concurrency` at a time, timing each exec from spawn to exit.

Phases (one host unless said; macvlan on the host's wire interface in every phase, so only
the IPAM differs):
  local      plumb's own IPAM (a /20 in the local store): the reference;
  cluster    the same subnet size shared through etcd with blockSize 26: ADDs that need no
             new block are reported apart from the few that claim one;
  claims     blockSize 29 (a block every 8 addresses), so that many ADDs claim a block;
  spread     500 ADDs over two hosts at once (16 at a time on each), cluster vs local.
"""
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time

PREFIX = "plumb-cbench"
WIRE_IP = "198.18.251.254"


def spawn(path, env, data):
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
               (os.POSIX_SPAWN_DUP2, out_w, 2)]
    t0 = time.perf_counter_ns()
    pid = os.posix_spawn(path, [path], env, file_actions=actions)
    os.close(in_r)
    os.close(out_w)
    os.write(in_w, data)
    os.close(in_w)
    return {"pid": pid, "pidfd": os.pidfd_open(pid), "t0": t0, "out": out_r, "buf": b""}


def worker(spec):
    calls = spec["calls"]
    conf = json.dumps(spec["conf"]).encode()
    concurrency = spec["concurrency"]
    results = [None] * len(calls)
    running = {}
    poller = select.poll()
    nxt = 0
    t_start = time.perf_counter_ns()
    while nxt < len(calls) or running:
        while nxt < len(calls) and len(running) < concurrency:
            c = calls[nxt]
            env = {"CNI_COMMAND": c["cmd"], "CNI_CONTAINERID": c["cid"], "CNI_NETNS": c["netns"],
                   "CNI_IFNAME": c.get("ifname", "eth0"), "CNI_PATH": "/usr/lib/cni", "PLUMB_HOST": spec["host"],
                   "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
            ch = spawn(spec["plumb"], env, conf)
            ch["i"] = nxt
            running[ch["pidfd"]] = ch
            poller.register(ch["pidfd"], select.POLLIN)
            nxt += 1
        for fd, _ in poller.poll():
            ch = running.pop(fd)
            t1 = time.perf_counter_ns()
            poller.unregister(fd)
            _, status = os.waitpid(ch["pid"], 0)
            os.close(fd)
            out = b""
            while True:
                b = os.read(ch["out"], 65536)
                if not b:
                    break
                out += b
            os.close(ch["out"])
            rc = os.waitstatus_to_exitcode(status)
            results[ch["i"]] = {"ms": (t1 - ch["t0"]) / 1e6, "rc": rc, "out": out.decode()}
    wall = (time.perf_counter_ns() - t_start) / 1e6
    print(json.dumps({"results": results, "wall_ms": wall}))


def etcd_floor(spec):
    """One etcd write and one read through the JSON gateway, on a kept-alive connection: what
    a block claim cannot do without (it writes once and reads twice)."""
    # Loading libcurl (and what it links: TLS, HTTP/2, ...) as the plugin does on its first
    # etcd call, before this process has loaded any of it (http.client pulls in libssl).
    import ctypes
    t0 = time.perf_counter_ns()
    curl = ctypes.CDLL("libcurl.so.4")
    curl.curl_global_init(3)
    load_ms = (time.perf_counter_ns() - t0) / 1e6
    import base64
    import http.client
    host, port = spec["endpoint"].split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    out = {"put": [], "range": [], "libcurl_load_ms": load_ms}
    for i in range(spec["count"]):
        for kind, path, body in (
                ("put", "/v3/kv/put", {"key": base64.b64encode(b"/floor/k").decode(),
                                       "value": base64.b64encode(str(i).encode()).decode()}),
                ("range", "/v3/kv/range", {"key": base64.b64encode(b"/floor/k").decode()})):
            t0 = time.perf_counter_ns()
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            conn.getresponse().read()
            out[kind].append((time.perf_counter_ns() - t0) / 1e6)
    print(json.dumps(out))


def service_worker(spec):
    """Runs in the linking guest's netns: exposes and withdraws a service on the other host
    (`plumb expose` there), timing how long after each command returns the link here starts
    and stops reaching it."""
    import socket

    def reply():
        try:
            c = socket.create_connection(("127.0.0.1", spec["port"]), timeout=1)
            c.settimeout(1)
            data = c.recv(64)
            c.close()
            return data
        except OSError:
            return b""

    def until(want, limit_s=15):
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < limit_s:
            if (reply() == b"ok") == want:
                return (time.perf_counter() - t0) * 1000
            time.sleep(0.002)
        raise SystemExit("cluster_bench: the link never " + ("reached" if want else "lost") +
                         " the service")

    # Measured from the moment the command starts (it returns once etcd holds the change).
    out = {"up": [], "down": [], "cmd": []}
    for _ in range(spec["rounds"]):
        t0 = time.perf_counter()
        subprocess.run(spec["expose"], check=True, capture_output=True)
        t1 = time.perf_counter()
        out["cmd"].append((t1 - t0) * 1000)
        out["up"].append(until(True) + (t1 - t0) * 1000)
        t0 = time.perf_counter()
        subprocess.run(spec["unexpose"], check=True, capture_output=True)
        out["down"].append(until(False) + (time.perf_counter() - t0) * 1000)
    print(json.dumps(out))


def sh(cmd, check=True):
    r = subprocess.run(cmd, shell=True, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise SystemExit(f"cluster_bench: `{cmd}` failed: {r.stderr.strip()}")
    return r


def pct(values, p):
    v = sorted(values)
    if not v:
        return float("nan")
    k = min(len(v) - 1, max(0, int(round(p / 100 * (len(v) - 1)))))
    return v[k]


class Bench:
    def __init__(self, plumb, tmp, count, rounds):
        self.plumb, self.tmp, self.count, self.rounds = plumb, tmp, count, rounds
        self.etcd = []
        self.warm_dirs = set()
        self.endpoints = [f"http://{WIRE_IP}:{23379 + 10 * i}" for i in range(3)]

    def ns(self, name):
        return f"{PREFIX}-{name}"

    def setup(self):
        wire = self.ns("wire")
        sh(f"ip netns add {wire}")
        sh(f"ip -n {wire} link set lo up")
        sh(f"ip -n {wire} link add wire type bridge && ip -n {wire} link set wire up && "
           f"ip -n {wire} addr add {WIRE_IP}/24 dev wire")
        for n, h in ((1, "ha"), (2, "hb")):
            sh(f"ip netns add {self.ns(h)}")
            sh(f"ip -n {self.ns(h)} link set lo up")
            sh(f"ip -n {wire} link add w{h} type veth peer name wire0 netns {self.ns(h)}")
            sh(f"ip -n {wire} link set w{h} master wire up")
            sh(f"ip -n {self.ns(h)} link set wire0 up && "
               f"ip -n {self.ns(h)} addr add 198.18.251.{n}/24 dev wire0")
        for i in range(max(self.count, 250)):
            sh(f"ip netns add {self.ns('c' + str(i))}")
        cluster = ",".join(f"m{i}=http://{WIRE_IP}:{23380 + 10 * i}" for i in range(3))
        for i in range(3):
            d = f"{self.tmp}/etcd{i}"
            log = open(f"{d}.log", "w")
            self.etcd.append(subprocess.Popen(
                ["ip", "netns", "exec", wire, "etcd", "--name", f"m{i}", "--data-dir", d,
                 "--listen-client-urls", self.endpoints[i], "--advertise-client-urls",
                 self.endpoints[i], "--listen-peer-urls", f"http://{WIRE_IP}:{23380 + 10 * i}",
                 "--initial-advertise-peer-urls", f"http://{WIRE_IP}:{23380 + 10 * i}",
                 "--initial-cluster", cluster, "--initial-cluster-token", PREFIX],
                stdout=log, stderr=log))
        deadline = time.time() + 30
        while sh(f"ip netns exec {wire} etcdctl --endpoints={','.join(self.endpoints)} "
                 "put /up 1", check=False).returncode != 0:
            if time.time() > deadline:
                raise SystemExit("cluster_bench: etcd did not come up")
            time.sleep(0.2)

    def teardown(self):
        for p in self.etcd:
            p.kill()
            p.wait()
        for line in sh("ip netns list", check=False).stdout.splitlines():
            name = line.split()[0] if line.split() else ""
            if name.startswith(PREFIX + "-"):
                sh(f"ip netns del {name}", check=False)

    def in_host(self, host):
        """A worker in the host's netns and in this process's mount namespace, as a runtime
        (containerd, CRI-O) runs the plugin: every call from the same long-lived process. (`ip
        netns exec` would give every worker a mount namespace of its own, and plumb's resident
        CNI service serves only callers in its own namespaces.)"""
        return ["nsenter", f"--net=/run/netns/{self.ns(host)}"]

    def warm(self, conf, add, samples):
        """The ADDs made with the state dir's resident CNI service started. The first ADD in a
        state dir finds none: it is made in its process (loading what it needs, libcurl for
        etcd) and starts the service, so it is reported on a row of its own."""
        results = add["results"]
        if conf["dataDir"] in self.warm_dirs:
            return results
        self.warm_dirs.add(conf["dataDir"])
        kind = "cluster" if "etcd" in conf["ipam"] else "local"
        samples[f"first_{kind}"].append(results[0]["ms"])
        return results[1:]

    def conf(self, host, subnet, block=None):
        ipam = {"type": "plumb", "subnet": subnet}
        if block:
            ipam["etcd"] = {"endpoints": self.endpoints, "blockSize": block}
        return {"cniVersion": "1.0.0", "name": "bench", "type": "plumb", "master": "wire0",
                "dataDir": f"{self.tmp}/state-{host}-{'cluster' if block else 'local'}",
                "ipam": ipam}

    def run(self, host, conf, calls, concurrency=1):
        spec = {"plumb": self.plumb, "host": host, "conf": conf, "calls": calls,
                "concurrency": concurrency}
        path = f"{self.tmp}/spec.json"
        with open(path, "w") as f:
            json.dump(spec, f)
        r = subprocess.run(self.in_host(host) + [sys.executable,
                            os.path.abspath(__file__), "worker", path],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"cluster_bench: worker failed: {r.stderr}")
        out = json.loads(r.stdout)
        for c, res in zip(calls, out["results"]):
            if res["rc"] != 0:
                raise SystemExit(f"cluster_bench: {c['cmd']} {c['cid']} failed: {res['out']}")
        return out

    def calls(self, cmd, ids):
        return [{"cmd": cmd, "cid": f"b{i}", "netns": f"/run/netns/{self.ns('c' + str(i))}"}
                for i in ids]

    def blocks(self):
        r = sh(f"ip netns exec {self.ns('wire')} etcdctl --endpoints={','.join(self.endpoints)} "
               "get --prefix --keys-only /plumb/ipam/")
        return [l for l in r.stdout.splitlines() if l]

    def main(self):
        samples = {k: [] for k in ("first_local", "first_cluster", "local", "cluster_noblock", "cluster_claim", "claims_noblock",
                                   "claims_claim", "local_del", "cluster_del")}
        spread = {"local": [], "cluster": []}
        ids = list(range(self.count))
        for rnd in range(self.rounds):
            order = ["local", "cluster", "claims"]
            order = order[rnd % 3:] + order[:rnd % 3]
            for phase in order:
                if phase == "local":
                    conf = self.conf("ha", "198.18.128.0/20")
                    add = self.run("ha", conf, self.calls("ADD", ids))
                    samples["local"] += [r["ms"] for r in self.warm(conf, add, samples)]
                    d = self.run("ha", conf, self.calls("DEL", ids))
                    samples["local_del"] += [r["ms"] for r in d["results"]]
                    continue
                block = 26 if phase == "cluster" else 29
                conf = self.conf("ha", "198.18.112.0/20", block)
                add = self.run("ha", conf, self.calls("ADD", ids))
                seen = set()
                warm = {id(r) for r in self.warm(conf, add, samples)}
                for r in add["results"]:
                    addr = json.loads(r["out"])["ips"][0]["address"].split("/")[0]
                    last = int(addr.split(".")[2]) * 256 + int(addr.split(".")[3])
                    b = last >> (32 - block)
                    kind = "noblock" if b in seen else "claim"
                    seen.add(b)
                    if id(r) in warm:
                        samples[f"{phase}_{kind}"].append(r["ms"])
                d = self.run("ha", conf, self.calls("DEL", ids))
                if phase == "cluster":
                    samples["cluster_del"] += [r["ms"] for r in d["results"]]
                if self.blocks():
                    raise SystemExit(f"cluster_bench: blocks left in etcd: {self.blocks()}")
        # 500 ADDs over two hosts at once, 16 at a time on each, cluster against local.
        half = 250
        for rnd in range(self.rounds):
            for kind in (["local", "cluster"] if rnd % 2 == 0 else ["cluster", "local"]):
                block = 26 if kind == "cluster" else None
                subnet = "198.18.112.0/20" if block else None
                procs = []
                t0 = time.perf_counter()
                for h, base in (("ha", 0), ("hb", 0)):
                    # Local: each host its own /20 (no sharing is possible without etcd).
                    sn = subnet or ("198.18.128.0/20" if h == "ha" else "198.18.144.0/20")
                    conf = self.conf(h, sn, block)
                    spec = {"plumb": self.plumb, "host": h, "conf": conf,
                            "calls": [{"cmd": "ADD", "cid": f"s{h}{i}",
                                       "netns": f"/run/netns/{self.ns('c' + str(i))}",
                                       "ifname": "eth0" if h == "ha" else "eth1"}
                                      for i in range(base, base + half)],
                            "concurrency": 16}
                    path = f"{self.tmp}/spec-{h}.json"
                    with open(path, "w") as f:
                        json.dump(spec, f)
                    procs.append((h, conf, spec, subprocess.Popen(
                        self.in_host(h) + [sys.executable,
                         os.path.abspath(__file__), "worker", path],
                        stdout=subprocess.PIPE, text=True)))
                addrs = set()
                for h, conf, spec, p in procs:
                    out, _ = p.communicate()
                    res = json.loads(out)
                    for r in res["results"]:
                        if r["rc"] != 0:
                            raise SystemExit(f"cluster_bench: spread ADD failed: {r['out']}")
                        addrs.add((h if not block else "") +
                                  json.loads(r["out"])["ips"][0]["address"])
                wall = (time.perf_counter() - t0) * 1000
                if len(addrs) != 2 * half:
                    raise SystemExit(f"cluster_bench: {2 * half - len(addrs)} addresses twice")
                spread[kind].append(wall)
                for h, conf, spec, p in procs:
                    for c in spec["calls"]:
                        c["cmd"] = "DEL"
                    self.run(h, conf, spec["calls"], 16)
                if self.blocks():
                    raise SystemExit(f"cluster_bench: blocks left in etcd: {self.blocks()}")
        # The floor: etcd's own write and read, from host ha, measured in this run.
        path = f"{self.tmp}/floor.json"
        with open(path, "w") as f:
            json.dump({"endpoint": self.endpoints[0], "count": 100}, f)
        r = subprocess.run(["ip", "netns", "exec", self.ns("ha"), sys.executable,
                            os.path.abspath(__file__), "floor", path],
                           capture_output=True, text=True, check=True)
        floor = json.loads(r.stdout)
        sh(f"ip netns exec {self.ns('wire')} etcdctl --endpoints={','.join(self.endpoints)} "
           "del /floor/k")
        svc = self.services()
        self.report(samples, spread, half, floor)
        print(f"  service change seen on the other host (n={len(svc['up'])}), from the start "
              f"of the command on the first: a new endpoint used p50 {pct(svc['up'], 50):.0f} ms, "
              f"max {max(svc['up']):.0f} ms; a withdrawn one gone p50 "
              f"{pct(svc['down'], 50):.0f} ms, max {max(svc['down']):.0f} ms (`plumb expose` "
              f"itself: p50 {pct(svc['cmd'], 50):.0f} ms)")

    def services(self):
        """Host hb exposes a guest's service, host ha's guest links to it by name: how long
        after `plumb expose` (and `unexpose`) returns on hb the link on ha follows."""
        daemons = []
        try:
            for n, h in ((1, "ha"), (2, "hb")):
                state = f"{self.tmp}/svc-{h}"
                os.makedirs(state, exist_ok=True)
                log = open(f"{state}.log", "w")
                daemons.append(subprocess.Popen(
                    ["ip", "netns", "exec", self.ns(h), self.plumb, "daemon", "--state-dir", state,
                     "--socket", f"{state}/docker.sock", "--docker-socket", "off",
                     "--etcd-endpoints", ",".join(self.endpoints), "--advertise-address",
                     f"198.18.251.{n}", "--host", h], stdout=log, stderr=log))
            for h in ("ha", "hb"):
                deadline = time.time() + 10
                while not os.path.exists(f"{self.tmp}/svc-{h}/control.sock"):
                    if time.time() > deadline:
                        raise SystemExit(f"cluster_bench: the daemon on {h} did not start")
                    time.sleep(0.02)
            sb, ca = self.ns("sb"), self.ns("ca")
            for g in (sb, ca):
                sh(f"ip netns add {g} && ip -n {g} link set lo up")
            plumb_b = f"ip netns exec {self.ns('hb')} {self.plumb} --state-dir {self.tmp}/svc-hb"
            plumb_a = f"ip netns exec {self.ns('ha')} {self.plumb} --state-dir {self.tmp}/svc-ha"
            sh(f"{plumb_b} br-sb {sb} 198.18.252.2/24")
            sh(f"ip -n {self.ns('hb')} addr add 198.18.252.1/24 dev br-sb")
            server = subprocess.Popen(
                ["ip", "netns", "exec", sb, sys.executable, "-c",
                 "import socket\n"
                 "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                 "s.bind(('0.0.0.0', 8080)); s.listen(64)\n"
                 "while True:\n c,_=s.accept(); c.sendall(b'ok'); c.close()\n"])
            daemons.append(server)
            sh(f"{plumb_b} expose {sb} web 8080")
            deadline = time.time() + 10
            while sh(f"{plumb_a} link {ca} web", check=False).returncode != 0:
                if time.time() > deadline:
                    raise SystemExit("cluster_bench: ha never learnt of hb's service")
                time.sleep(0.05)
            sh(f"{plumb_b} unexpose {sb} web")
            spec = {"port": 8080, "rounds": 3 * self.rounds,
                    "expose": plumb_b.split() + ["expose", sb, "web", "8080"],
                    "unexpose": plumb_b.split() + ["unexpose", sb, "web"]}
            path = f"{self.tmp}/svc-spec.json"
            with open(path, "w") as f:
                json.dump(spec, f)
            r = subprocess.run(["ip", "netns", "exec", ca, sys.executable,
                                os.path.abspath(__file__), "services", path],
                               capture_output=True, text=True)
            if r.returncode != 0:
                raise SystemExit(f"cluster_bench: services: {r.stderr.strip()}")
            return json.loads(r.stdout)
        finally:
            for p in daemons:
                p.terminate()
                p.wait()

    def report(self, s, spread, half, floor):
        def row(name, v, ref=None):
            p50, p99 = pct(v, 50), pct(v, 99)
            rel = ""
            if ref:
                rel = f"  ({p50 / pct(ref, 50):.2f}x local p50, p99 {p99 - pct(ref, 99):+.1f} ms)"
            print(f"  {name:<34} n={len(v):<4} p50 {p50:6.2f} ms  p99 {p99:6.2f} ms{rel}")
        print(f"cluster IPAM: {self.count} sequential ADDs then DELs per phase, {self.rounds} "
              "rounds interleaved, macvlan on the host's wire interface; 3 etcd 3.4 members")
        row("ADD, local IPAM (reference)", s["local"])
        row("ADD, cluster /26, no new block", s["cluster_noblock"], s["local"])
        row("ADD, cluster /26, claims a block", s["cluster_claim"], s["local"])
        row("ADD, cluster /29, no new block", s["claims_noblock"], s["local"])
        row("ADD, cluster /29, claims a block", s["claims_claim"], s["local"])
        if s["first_local"] and s["first_cluster"]:
            print(f"  first ADD in a state dir (no resident service yet, made in its process): "
                  f"local {s['first_local'][0]:.2f} ms, cluster {s['first_cluster'][0]:.2f} ms "
                  f"(claims a block; loads libcurl)")
        row("DEL, local IPAM", s["local_del"])
        row("DEL, cluster /26", s["cluster_del"], s["local_del"])
        row("floor: one etcd write (put)", floor["put"])
        row("floor: one etcd read (range)", floor["range"])
        print(f"  loading libcurl (dlopen + curl_global_init, once per plugin run that calls "
              f"etcd): {floor['libcurl_load_ms']:.1f} ms")
        lw, cw = pct(spread["local"], 50), pct(spread["cluster"], 50)
        print(f"  {2 * half} ADDs over two hosts (16 at a time each), median of {self.rounds}: "
              f"cluster {cw:.0f} ms, local {lw:.0f} ms ({cw / lw:.2f}x)")


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "services":
        with open(sys.argv[2]) as f:
            service_worker(json.load(f))
        return
    if len(sys.argv) >= 3 and sys.argv[1] == "floor":
        with open(sys.argv[2]) as f:
            etcd_floor(json.load(f))
        return
    if len(sys.argv) >= 3 and sys.argv[1] == "worker":
        with open(sys.argv[2]) as f:
            worker(json.load(f))
        return
    plumb = os.path.abspath(sys.argv[1])
    count = int(os.environ.get("CLUSTER_BENCH_COUNT", "200"))
    rounds = int(os.environ.get("CLUSTER_BENCH_ROUNDS", "3"))
    tmp = tempfile.mkdtemp(prefix="plumb-cbench-")
    b = Bench(plumb, tmp, count, rounds)
    try:
        b.setup()
        b.main()
    finally:
        b.teardown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
