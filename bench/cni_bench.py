#!/usr/bin/python3
"""CNI latency benchmark: plumb against the reference bridge + host-local plugins.

Run through bench/cni_bench.sh, which creates the network namespaces and the temp dir and
removes them again. This file has two roles:

  master  (default)  orchestrates the run and prints the report;
  worker             runs inside one "host" netns (started by the master through
                     `ip netns exec`) and execs one plugin, timing every exec.

The master drives the two workers in lock step, alternating which plugin goes first, so any
background load on the machine hits both plugins alike. Each worker times one exec with
time.perf_counter_ns() (CLOCK_MONOTONIC) from just before posix_spawn() to the moment the
child's pidfd reports its exit; the launcher is the same code for both plugins.
"""

import argparse
import json
import os
import select
import subprocess
import sys
import time

CNI_VERSION = "1.0.0"
CHILD_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


# --------------------------------------------------------------------------------------------
# worker


class Child:
    __slots__ = ("pid", "pidfd", "out_fd", "err_fd", "out", "err", "t0", "t1", "rc", "call")


def spawn(path, env, stdin_bytes, call):
    """Starts one plugin exec. The clock starts before posix_spawn."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    actions = [
        (os.POSIX_SPAWN_DUP2, in_r, 0),
        (os.POSIX_SPAWN_DUP2, out_w, 1),
        (os.POSIX_SPAWN_DUP2, err_w, 2),
    ]
    c = Child()
    c.call = call
    c.t0 = time.perf_counter_ns()
    c.pid = os.posix_spawn(path, [path], env, file_actions=actions)
    c.pidfd = os.pidfd_open(c.pid)
    os.close(in_r)
    os.close(out_w)
    os.close(err_w)
    try:
        os.write(in_w, stdin_bytes)  # a few hundred bytes: always fits the pipe buffer
    except BrokenPipeError:
        pass
    os.close(in_w)
    c.out_fd, c.err_fd = out_r, err_r
    c.out, c.err = [], []
    c.t1 = None
    c.rc = None
    return c


def wait_all(children):
    """Polls until every child has exited and its pipes are drained. The clock of a child
    stops when its pidfd becomes readable (the process has exited)."""
    poller = select.poll()
    owner = {}
    for c in children:
        for fd in (c.out_fd, c.err_fd, c.pidfd):
            poller.register(fd, select.POLLIN)
            owner[fd] = c
    open_fds = len(owner)
    while open_fds:
        for fd, _ in poller.poll():
            now = time.perf_counter_ns()
            c = owner[fd]
            if fd == c.pidfd:
                if c.t1 is None:
                    c.t1 = now
                poller.unregister(fd)
                open_fds -= 1
                continue
            chunk = os.read(fd, 65536)
            if chunk:
                (c.out if fd == c.out_fd else c.err).append(chunk)
            else:
                poller.unregister(fd)
                open_fds -= 1
    for c in children:
        _, status = os.waitpid(c.pid, 0)
        c.rc = os.waitstatus_to_exitcode(status)
        for fd in (c.out_fd, c.err_fd, c.pidfd):
            os.close(fd)


class Worker:
    def __init__(self, args):
        self.name = args.name
        self.plugin = args.plugin
        self.version_plugin = args.version_plugin or args.plugin
        with open(args.config) as f:
            self.conf = json.load(f)
        self.prev = {}  # (cid, ifname) -> ADD result, sent back as prevResult on DEL (as libcni does)

    def build(self, call):
        cmd = call["cmd"]
        env = {"PATH": CHILD_PATH, "CNI_COMMAND": cmd, "CNI_PATH": "/usr/lib/cni"}
        if os.environ.get("CNI_BENCH_RESIDENT") == "off":
            env["PLUMB_RESIDENT"] = "off"  # every plumb call in its own process
        if cmd == "VERSION":
            env["CNI_NETNS"] = "dummy"
            return env, json.dumps({"cniVersion": CNI_VERSION}).encode()
        env["CNI_CONTAINERID"] = call["cid"]
        env["CNI_NETNS"] = call["netns"]
        env["CNI_IFNAME"] = call["ifname"]
        for k, v in call.get("env", {}).items():  # the kernel floor's own variables
            env[k] = v
        conf = self.conf
        prev = self.prev.get((call["cid"], call["ifname"])) if cmd == "DEL" else None
        if prev is not None:
            conf = dict(conf, prevResult=prev)
        return env, json.dumps(conf).encode()

    def finish(self, c):
        call = c.call
        out = b"".join(c.out).decode(errors="replace")
        err = b"".join(c.err).decode(errors="replace")
        res = {"ns": c.t1 - c.t0, "rc": c.rc, "ok": c.rc == 0}
        cmd = call["cmd"]
        if c.rc == 0:
            try:
                j = json.loads(out) if out.strip() else {}
            except ValueError:
                j = None
            if self.name.startswith("floor"):
                pass  # the floor prints nothing; its exit status is its answer
            elif cmd == "ADD":
                if not isinstance(j, dict) or not j.get("ips"):
                    res["ok"] = False
                else:
                    self.prev[(call["cid"], call["ifname"])] = j
            elif cmd == "VERSION":
                res["ok"] = isinstance(j, dict) and "supportedVersions" in j
            elif cmd == "DEL":
                self.prev.pop((call["cid"], call["ifname"]), None)
        if not res["ok"]:
            res["error"] = (out.strip() + (" | stderr: " + err.strip() if err.strip() else ""))[:2000]
        return res

    def binary(self, call):
        return self.version_plugin if call["cmd"] == "VERSION" else self.plugin

    def run_batch(self, calls):
        """Starts every call at once (as fast as posix_spawn allows) and waits for all."""
        built = [self.build(call) for call in calls]
        t0 = time.perf_counter_ns()
        children = [spawn(self.binary(call), env, data, call) for call, (env, data) in zip(calls, built)]
        wait_all(children)
        wall = max(c.t1 for c in children) - t0
        return {"wall_ns": wall, "results": [self.finish(c) for c in children]}

    def run_one(self, call):
        env, data = self.build(call)
        c = spawn(self.binary(call), env, data, call)
        wait_all([c])
        res = self.finish(c)
        # plumb leaves work to processes of its own after it exits: a DEL's sitting out the
        # kernel's freeing of the link (an RCU barrier), an ADD's announcing an address that
        # changed hands, either's WAL checkpoint. That work would land on whatever is measured
        # next, so the worker waits for it (untimed) and reports when it ended, measured from
        # the same start.
        if call["cmd"] in ("ADD", "DEL") and self.name.startswith("plumb"):
            res["settled_ns"] = self.settle(c.t0)
        return res

    def settle(self, t0):
        """Waits (up to 2 s) until no process runs this worker's plugin binary (its resident
        service aside); returns when, in ns since t0."""
        deadline = time.perf_counter_ns() + 2_000_000_000
        while time.perf_counter_ns() < deadline:
            busy = False
            for pid in os.listdir("/proc"):
                if not pid.isdigit():
                    continue
                try:
                    if os.readlink(f"/proc/{pid}/exe") != self.plugin:
                        continue
                    # plumb's resident CNI service stays by design; its helpers do not.
                    with open(f"/proc/{pid}/cmdline", "rb") as f:
                        if b"cni-resident" not in f.read():
                            busy = True
                            break
                except OSError:
                    continue
            if not busy:
                break
            time.sleep(0.0005)
        return time.perf_counter_ns() - t0

    def floor(self, n):
        """Launcher floor: the same spawn/wait path timing /bin/true."""
        times = []
        for _ in range(n):
            c = spawn("/bin/true", {"PATH": CHILD_PATH}, b"", {"cmd": "TRUE"})
            wait_all([c])
            times.append(c.t1 - c.t0)
        return {"ns": times}

    def serve(self):
        for line in sys.stdin:
            req = json.loads(line)
            op = req["op"]
            if op == "exit":
                break
            if op == "run":
                reply = self.run_one(req["call"])
            elif op == "batch":
                reply = self.run_batch(req["calls"])
            elif op == "floor":
                reply = self.floor(req["n"])
            else:
                reply = {"error": "unknown op " + op}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# master


class Plugin:
    """Master-side handle of one worker."""

    def __init__(self, key, label, host_ns, bridge, plugin, config_path, script, version_plugin=""):
        self.key, self.label, self.host_ns, self.bridge = key, label, host_ns, bridge
        argv = ["ip", "netns", "exec", host_ns, sys.executable, script, "worker",
                "--name", key, "--plugin", plugin, "--config", config_path,
                "--version-plugin", version_plugin]
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True, close_fds=True)

    def request(self, req):
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.key} worker died (exit {self.proc.wait()})")
        return json.loads(line)

    def close(self):
        try:
            self.proc.stdin.write(json.dumps({"op": "exit"}) + "\n")
            self.proc.stdin.close()
        except (BrokenPipeError, ValueError):
            pass
        self.proc.wait(timeout=30)

    def ports(self):
        out = subprocess.run(["ip", "-n", self.host_ns, "-o", "link", "show", "master", self.bridge],
                             capture_output=True, text=True).stdout
        return len([l for l in out.splitlines() if l.strip()])


def pct(values, p):
    """Nearest-rank percentile (p99 of 200 samples is the 198th smallest)."""
    if not values:
        return None
    s = sorted(values)
    k = max(0, -(-len(s) * p // 100) - 1)
    return s[int(k)]


# The instances of one run. Each has its own host netns, bridge, state and subnet; all attach
# into the same container namespaces, under interface names starting with their letter.
#   key            label        ipMasq  what
INSTANCES = [
    ("plumb-nm",     "plumb",     False, "q", "198.18.32.0/20"),
    ("ref-nm",       "reference", False, "s", "198.19.32.0/20"),
    ("plumb",        "plumb",     True,  "p", "198.18.0.0/20"),
    ("ref",          "reference", True,  "r", "198.19.0.0/20"),
    ("floor",        "floor",     False, "k", "198.18.64.0/20"),
    # plumb doing the reference's IPAM work: host-local, delegated (ipMasq off, part 1 only)
    ("plumb-hl",     "plumb",     False, "h", "198.18.80.0/20"),
    ("plumb-nm-big", "plumb",     False, "Q", "198.18.48.0/20"),
    ("plumb-big",    "plumb",     True,  "P", "198.18.16.0/20"),
    ("ref-nm-big",   "reference", False, "S", "198.19.48.0/20"),
    # the kernel floor on a bridge of 1,000 ports: how much of the growth is the kernel's
    ("floor-big",    "floor",     False, "K", "198.18.96.0/20"),
]
BIG = ["plumb-nm-big", "plumb-big", "ref-nm-big", "floor-big"]
# Part 3's twins: (on 10 ports, on 1,000 ports, growth target). The reference's comes last: its
# fill is the slow one, and gives up at the time budget.
SCALE_PAIRS = [("plumb-nm", "plumb-nm-big", 1.3), ("plumb", "plumb-big", 1.3),
               ("floor", "floor-big", None), ("ref-nm", "ref-nm-big", None)]
CONFIGS = [("ipMasq off", "plumb-nm", "ref-nm"), ("ipMasq on", "plumb", "ref")]


def gateway_of(subnet):
    base = subnet.split("/")[0].rsplit(".", 1)[0]
    return base + ".1"


class Bench:
    def __init__(self, args):
        self.a = args
        self.t_start = time.monotonic()
        self.failures = []  # (plugin, phase, cmd, cid, ifname, error)
        self.samples = {}   # (instance key, metric) -> list of ns
        self.info = {}
        self.notes = []
        self.loads = []  # (elapsed s, 1-min load average, phase) at each progress line
        self.floor_n = 0
        script = os.path.abspath(__file__)
        tmp = args.tmp
        self.confs, self.p, self.letter, self.subnet = {}, {}, {}, {}
        keys = [k for k, *_ in INSTANCES if args.scale_high > 0 or k not in BIG]
        for n, (key, label, masq, letter, subnet) in enumerate(INSTANCES):
            if key not in keys:
                continue
            bridge = f"{letter.lower()}br{'1' if key in BIG else '0'}"
            # The same shape of config for both plugins: a gateway on the bridge, masquerade as
            # the instance says, and one route (its own destination: the container namespaces
            # are shared, so each instance's route must differ from the others').
            route = {"dst": f"198.19.{240 + n}.0/24"}
            if label == "plumb":
                conf = {"cniVersion": CNI_VERSION, "name": f"bench-{key}", "type": "plumb",
                        "bridge": bridge, "isGateway": True, "ipMasq": masq,
                        "dataDir": os.path.join(tmp, key + "-state"),
                        "ipam": {"type": "plumb", "subnet": subnet, "routes": [route]}}
                if key == "plumb-hl":
                    conf["ipam"] = {"type": "host-local", "subnet": subnet, "routes": [route],
                                    "dataDir": os.path.join(tmp, key + "-hl-state")}
                if args.plumb_log:
                    # plumb's own step timings (debug level costs a little itself).
                    conf.update(logLevel="debug", logFile=f"{args.plumb_log}.{key}")
                binary = args.plumb
            elif label == "reference":
                conf = {"cniVersion": CNI_VERSION, "name": f"bench-{key}", "type": "bridge",
                        "bridge": bridge, "isGateway": True, "ipMasq": masq,
                        "ipam": {"type": "host-local", "subnet": subnet, "routes": [route],
                                 "dataDir": os.path.join(tmp, key + "-state")}}
                binary = os.path.join(args.ref_dir, "bridge")
            else:
                conf = {"bridge": bridge, "route": route["dst"]}
                binary = os.path.join(args.floor_dir, "kernel_floor")
            self.confs[key] = conf
            self.letter[key] = letter
            self.subnet[key] = subnet
            path = os.path.join(tmp, f"{key}.conf")
            with open(path, "w") as f:
                json.dump(conf, f)
            version = os.path.join(args.floor_dir, "empty_cxx") if key == "floor" else ""
            self.p[key] = Plugin(key, label, f"{args.prefix}-host-{key}", bridge, binary, path,
                                 script, version)
        for key in self.p:
            if self.p[key].label == "floor":
                self.setup_floor_bridge(key)

    def setup_floor_bridge(self, key):
        """The floor's bridge is made once, untimed, as plumb's and the reference's first ADD
        makes theirs: with the gateway address, up."""
        ns, br = self.p[key].host_ns, self.confs[key]["bridge"]
        gw = gateway_of(self.subnet[key]) + "/20"
        for cmd in (["link", "add", br, "type", "bridge"], ["addr", "add", gw, "dev", br],
                    ["link", "set", br, "up"]):
            subprocess.run(["ip", "-n", ns] + cmd, check=True)

    # -- helpers ------------------------------------------------------------------------------

    def elapsed(self):
        return time.monotonic() - self.t_start

    def log(self, msg):
        load = os.getloadavg()[0]
        self.loads.append((self.elapsed(), load, msg.split(":")[0]))
        print(f"[{self.elapsed():6.1f}s load {load:4.2f}] {msg}", file=sys.stderr, flush=True)

    def netns(self, i):
        return f"/run/netns/{self.a.prefix}-c{i}"

    def record(self, key, phase, call, res, metric=None):
        if not res["ok"]:
            self.failures.append((key, phase, call["cmd"], call.get("cid", ""), call.get("ifname", ""),
                                  res["rc"], res.get("error", "")))
            return False
        if metric:
            self.samples.setdefault((key, metric), []).append(res["ns"])
            if "settled_ns" in res:
                self.samples.setdefault((key, metric + "_settled"), []).append(res["settled_ns"])
        return True

    @staticmethod
    def rotate(i, keys):
        """Instance order for iteration i: rotates so that none always goes first."""
        keys = list(keys)
        r = i % len(keys)
        return keys[r:] + keys[:r]

    def call(self, key, cmd, cid, netns_i, base):
        c = {"cmd": cmd, "cid": cid, "netns": self.netns(netns_i), "ifname": self.letter[key] + base}
        if self.p[key].label == "floor":
            # The floor takes what a plugin would work out from its config and state.
            if cmd == "ADD":
                self.floor_n += 1
                n = self.floor_n % 4000 + 2
                prefix = self.subnet[key].split(".")
                addr = f"{prefix[0]}.{prefix[1]}.{int(prefix[2]) + n // 256}.{n % 256}/20"
                c["env"] = {"FLOOR_HOSTIF": f"kf{self.floor_n}", "FLOOR_BRIDGE": self.p[key].bridge,
                            "FLOOR_ADDR": addr, "FLOOR_GW": gateway_of(self.subnet[key]),
                            "FLOOR_ROUTE": self.confs[key]["route"]}
        return c

    def one(self, key, phase, call, metric=None):
        res = self.p[key].request({"op": "run", "call": call})
        self.record(key, phase, call, res, metric)
        return res

    def batch(self, key, phase, calls):
        rep = self.p[key].request({"op": "batch", "calls": calls})
        ok = True
        for call, res in zip(calls, rep["results"]):
            ok &= self.record(key, phase, call, res)
        return rep["wall_ns"], ok

    # -- phases -------------------------------------------------------------------------------

    def warmup(self):
        self.log("warm-up: VERSION x5, then one ADD+DEL per instance (creates the bridges)")
        floor = self.p["plumb"].request({"op": "floor", "n": 50})["ns"]
        self.info["floor_ns"] = pct(floor, 50)
        for key in self.p:
            if key in BIG:
                continue
            for _ in range(5):
                self.one(key, "warm-up", {"cmd": "VERSION"})
            res = self.one(key, "warm-up", self.call(key, "ADD", "warmup", 0, "w0"))
            self.info[(key, "first_add_ns")] = res["ns"] if res["ok"] else None
            self.one(key, "warm-up", self.call(key, "DEL", "warmup", 0, "w0"))

    def sequential(self):
        n = self.a.count
        keys = ["plumb-nm", "ref-nm", "plumb", "ref", "floor", "plumb-hl"]
        self.log(f"part 1: {n} sequential ADDs per instance ({', '.join(keys)}; interleaved)")
        for i in range(n):
            for key in self.rotate(i, keys):
                self.one(key, "seq", self.call(key, "ADD", f"seq-{i}", i, "eth0"), "add")
        self.log(f"part 1: {n} VERSIONs per plugin, and of the empty C++ program")
        for i in range(n):
            for key in self.rotate(i, ["plumb", "ref", "floor"]):
                self.one(key, "seq", {"cmd": "VERSION"}, "version")
        for key in keys:
            self.info[(key, "ports_after_add")] = self.p[key].ports()
        self.log(f"part 1: {n} sequential DELs per instance")
        for i in range(n):
            for key in self.rotate(i, keys):
                self.one(key, "seq", self.call(key, "DEL", f"seq-{i}", i, "eth0"), "del")
        for key in keys:
            self.info[(key, "ports_after_del")] = self.p[key].ports()
        # Which calls plumb's resident CNI service answered (docs/cni.md), and its own time
        # for each: the rest of a plumb figure is the plugin process and the handover.
        for key in ("plumb-nm", "plumb", "plumb-hl"):
            state = self.confs[key].get("dataDir", "")
            r = subprocess.run([self.a.plumb, "cni-resident", "status", state],
                               capture_output=True, text=True)
            status = r.stdout.strip().replace(state + "/", "") or "none (every call in its process)"
            self.notes.append(f"{key}: resident CNI service after part 1: {status}")

    def concurrent(self):
        n, rounds = self.a.concurrency, self.a.rounds
        keys = ["plumb-nm", "ref-nm", "plumb", "ref"]
        self.log(f"part 2: {rounds} rounds of {n} concurrent ADDs (then {n} concurrent DELs) per plugin and config")
        for r in range(rounds):
            for key in self.rotate(r, keys):
                calls = [self.call(key, "ADD", f"conc-{r}-{i}", i, "eth0") for i in range(n)]
                wall, ok = self.batch(key, "concurrent", calls)
                self.samples.setdefault((key, "conc_add"), []).append(wall)
                wall, ok = self.batch(key, "concurrent", [dict(c, cmd="DEL") for c in calls])
                self.samples.setdefault((key, "conc_del"), []).append(wall)

    def fill(self, key, start, end, deadline=None):
        """Untimed filler attachments start..end-1 (concurrently, in batches), so the bridge
        carries `end` of them. Filler k lives in container netns k % count as "f<k/count>"."""
        k = start
        batch = self.a.fill_batch
        while k < end:
            if deadline is not None and time.monotonic() > deadline:
                return k
            calls = [self.call(key, "ADD", f"fill-{j}", j % self.a.count, f"f{j // self.a.count}")
                     for j in range(k, min(end, k + batch))]
            self.batch(key, "fill", calls)
            k += len(calls)
        return k

    def scale(self):
        """Part 3. Each small bridge carries `low` attachments, its big twin `high`; the ADDs at
        both levels are then measured interleaved, so load drift cannot pose as growth."""
        low, high, m = self.a.scale_low, self.a.scale_high, self.a.scale_samples
        with_ref = bool(self.a.ref_scale)
        pairs = [(small, big) for small, big, _ in SCALE_PAIRS if with_ref or not big.startswith("ref")]
        if not with_ref:
            self.notes.append("reference part 3 skipped (CNI_BENCH_REF_SCALE=0)")
        for small, _ in pairs:
            self.fill(small, 0, low)
        keys = []
        for small, big in pairs:
            deadline = self.t_start + self.a.budget if big.startswith("ref") else None
            self.log(f"part 3: filling {big} with {high} attachments (untimed)")
            t = time.monotonic()
            reached = self.fill(big, 0, high, deadline)
            self.info[(big, "fill_s")] = time.monotonic() - t
            keys.append(small)
            if reached >= high:
                keys.append(big)
            else:
                self.notes.append(f"{big} ADD@{high} skipped: its bridge only reached {reached} "
                                  f"attachments within the time budget ({self.a.budget:.0f}s)")
        # A link that comes up sends IPv6 router solicitations for about 12 s (three, 4 s
        # apart), and each one a bridge floods to every port: a 1,000-port bridge just filled
        # would load whatever is measured next. Untimed.
        self.log(f"part 3: {self.a.scale_settle} s for the filled bridges to go quiet (untimed)")
        time.sleep(self.a.scale_settle)
        for key in keys:
            self.info[(key, "ports_before_scale")] = self.p[key].ports()
        self.log(f"part 3: {m} ADDs (each DELed again) per instance, interleaved: "
                 + ", ".join(f"{k}@{high if k in BIG else low}" for k in keys))
        for i in range(m):
            for key in self.rotate(i, keys):
                level = high if key in BIG else low
                self.one(key, f"scale@{level}", self.call(key, "ADD", f"scale-{i}", i % self.a.count, "s0"),
                         f"add@{level}")
                self.one(key, f"scale@{level}", self.call(key, "DEL", f"scale-{i}", i % self.a.count, "s0"),
                         f"del@{level}")

    def run(self):
        try:
            self.warmup()
            self.sequential()
            self.concurrent()
            if self.a.scale_high > 0:
                self.scale()
        finally:
            for p in self.p.values():
                try:
                    p.close()
                except Exception as e:  # a worker that died already
                    self.notes.append(f"{p.key} worker did not exit cleanly: {e}")

    # -- report -------------------------------------------------------------------------------

    def report(self):
        a = self.a
        ms = lambda ns: None if ns is None else ns / 1e6
        S = lambda key, metric: self.samples.get((key, metric), [])
        P = lambda key, metric, p=50: ms(pct(S(key, metric), p))

        def fmt(v, unit="ms"):
            if v is None:
                return "n/a"
            return f"{v:.2f} {unit}" if unit == "ms" else f"{v:.2f}x"

        def verdict(v, limit):
            if limit is None:
                return "info"
            return "n/a" if v is None else ("PASS" if v <= limit else "MISS")

        def table(head, rows):
            w = [max(len(r[i]) for r in [head] + rows) for i in range(len(head))]
            line = lambda r: "  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in range(1, len(r) - 1)]
                                       + [r[-1]])
            return [line(head), "  ".join("-" * x for x in w)] + [line(r) for r in rows]

        ratio_rows = []  # (label, plumb, ref, ratio, target, verdict)

        def ratio_row(label, p, r, target):
            ratio = p / r if (p is not None and r) else None
            ratio_rows.append((label, fmt(p), fmt(r), fmt(ratio, "x") if ratio is not None else "n/a",
                               f"<= {target:.2f}x" if target else "", verdict(ratio, target)))

        n, c = a.count, a.concurrency
        targets = {"ipMasq off": {"add50": 0.25, "add99": 0.35, "conc": 0.3},
                   "ipMasq on": {"add50": 0.2, "add99": None, "conc": 0.3}}
        for cfg, pk, rk in CONFIGS:
            t = targets[cfg]
            ratio_row(f"[{cfg}] ADD p50 ({n} sequential)", P(pk, "add"), P(rk, "add"), t["add50"])
            ratio_row(f"[{cfg}] ADD p99", P(pk, "add", 99), P(rk, "add", 99), t["add99"])
            ratio_row(f"[{cfg}] ADD p50 until plumb's background work ended", P(pk, "add_settled"),
                      P(rk, "add"), None)
            ratio_row(f"[{cfg}] DEL p50 ({n} sequential)", P(pk, "del"), P(rk, "del"), None)
            ratio_row(f"[{cfg}] DEL p99", P(pk, "del", 99), P(rk, "del", 99), None)
            ratio_row(f"[{cfg}] DEL p50 until the kernel freed the link", P(pk, "del_settled"),
                      P(rk, "del"), None)
            ratio_row(f"[{cfg}] {c} concurrent ADDs, wall (median of {a.rounds})",
                      P(pk, "conc_add"), P(rk, "conc_add"), t["conc"])
            ratio_row(f"[{cfg}] {c} concurrent DELs, wall", P(pk, "conc_del"), P(rk, "conc_del"), None)
        ratio_row("VERSION p50", P("plumb", "version"), P("ref", "version"), None)
        ratio_row("[ipMasq off] ADD p50, plumb with delegated host-local (same work)",
                  P("plumb-hl", "add"), P("ref-nm", "add"), None)
        ratio_row("[ipMasq off] ADD p50, delegated host-local, until plumb's background work ended",
                  P("plumb-hl", "add_settled"), P("ref-nm", "add"), None)
        ratio_row("[ipMasq off] DEL p50, plumb with delegated host-local (same work)",
                  P("plumb-hl", "del"), P("ref-nm", "del"), None)

        floor_rows = []  # (label, plumb, floor, plumb - floor, target, verdict)

        def floor_row(label, p, f, limit):
            over = p - f if (p is not None and f is not None) else None
            floor_rows.append((label, fmt(p), fmt(f), fmt(over), f"<= {limit:.2f} ms" if limit else "",
                               verdict(over, limit)))

        floor_row("ADD p50 [ipMasq off] over the kernel floor", P("plumb-nm", "add"), P("floor", "add"), 1.0)
        floor_row("ADD p50 [ipMasq on] over the kernel floor", P("plumb", "add"), P("floor", "add"), None)
        floor_row("DEL p50 [ipMasq off] over a bare RTM_DELLINK", P("plumb-nm", "del"), P("floor", "del"), 1.0)
        floor_row("DEL p50 [ipMasq on] over a bare RTM_DELLINK", P("plumb", "del"), P("floor", "del"), None)
        floor_row("VERSION p50 over an empty C++ program", P("plumb", "version"), P("floor", "version"), 0.25)
        floor_row("reference ADD p50 [ipMasq off] over the floor", P("ref-nm", "add"), P("floor", "add"), None)
        floor_row("reference DEL p50 [ipMasq off] over RTM_DELLINK", P("ref-nm", "del"), P("floor", "del"), None)
        floor_row("reference VERSION p50 over an empty C++ program", P("ref", "version"),
                  P("floor", "version"), None)

        growth_rows = []  # (label, @low, @high, growth, target, verdict)
        lo, hi = a.scale_low, a.scale_high
        # The growth target is a ratio: milliseconds the kernel adds with the ports count
        # against it. What plumb and the floor each add goes in a note, side by side.
        added = {}
        if hi > 0:
            for small, big, limit in SCALE_PAIRS:
                p_lo, p_hi = P(small, f"add@{lo}"), P(big, f"add@{hi}")
                g = p_hi / p_lo if (p_hi and p_lo) else None
                if g and self.p[small].label != "reference":
                    added[small] = p_hi - p_lo
                cfg = ("kernel" if self.p[small].label == "floor"
                       else "ipMasq on" if small in ("plumb", "ref") else "ipMasq off")
                growth_rows.append((f"{self.p[small].label} [{cfg}] ADD p50 @{lo} -> @{hi} ({a.scale_samples} each)",
                                    fmt(p_lo), fmt(p_hi), fmt(g, "x") if g else "n/a",
                                    f"<= {limit:.2f}x" if limit else "", verdict(g, limit)))
                growth_rows.append((f"  DEL p50 @{lo} -> @{hi}", fmt(P(small, f"del@{lo}")),
                                    fmt(P(big, f"del@{hi}")), "", "", "info"))
            if added:
                self.notes.append(f"part 3: ADD p50 added from @{lo} to @{hi} ports: "
                                  + ", ".join(f"{k} {v:+.2f} ms" for k, v in added.items()))

        out = ["", "plumb CNI benchmark: plumb (built-in IPAM) vs reference bridge + host-local, "
                   "and the floors under both"]
        out.append(f"  plumb:     {a.plumb}")
        out.append(f"  reference: {os.path.join(a.ref_dir, 'bridge')} + host-local ({a.ref_version})")
        out.append(f"  floors:    {os.path.join(a.floor_dir, 'kernel_floor')} (the kernel work of one ADD in the "
                   f"fewest round trips; DEL: one RTM_DELLINK), {os.path.join(a.floor_dir, 'empty_cxx')} "
                   "(an empty dynamically linked C++ program)")
        out.append("  config:    bridge mode, isGateway, one route, a /20 each, with ipMasq off and on; "
                   "cniVersion " + CNI_VERSION)
        out.append(f"  host:      {os.cpu_count()} CPUs, load average {a.load_start} at start, "
                   f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
        out.append("")
        out += table(("metric", "plumb", "reference", "plumb/ref", "target", "result"), ratio_rows)
        out.append("")
        out += table(("against the floor", "measured", "floor", "over floor", "target", "result"), floor_rows)
        if growth_rows:
            out.append("")
            out += table(("growth with ports on the bridge", f"@{lo}", f"@{hi}", "growth", "target", "result"),
                         growth_rows)
        out.append("")
        p_ = lambda k: self.info.get(k)
        out.append("notes:")
        out.append(f"  launcher floor (same spawn/wait path running /bin/true): "
                   f"{fmt(ms(p_('floor_ns')))} p50; it is included in every figure above")
        for key in self.p:
            if p_((key, "first_add_ns")) is not None:
                out.append(f"  {key}: first ADD of the run (creates the bridge) {fmt(ms(p_((key, 'first_add_ns'))))}")
        for key in self.p:
            after_add, after_del = p_((key, "ports_after_add")), p_((key, "ports_after_del"))
            if after_add is None:
                continue
            extra = f"  <-- {after_del} port(s) left behind after DEL" if after_del else ""
            out.append(f"  {key}: bridge ports after the {n} ADDs: {after_add}, after the DELs: {after_del}{extra}")
        for key in self.p:
            if p_((key, "ports_before_scale")) is not None:
                fill = p_((key, "fill_s"))
                out.append(f"  part 3, {key} ({self.confs[key]['bridge']}): {p_((key, 'ports_before_scale'))} "
                           f"ports before the measured ADDs" + (f"; filling took {fill:.1f}s" if fill else ""))
        for note in self.notes:
            out.append("  " + note)
        seen, loads = set(), []
        for t, load, phase in self.loads:
            if phase not in seen:
                seen.add(phase)
                loads.append(f"{phase} {load:.2f}")
        out.append("  1-min load average when each part began: " + ", ".join(loads)
                   + " (the sequential parts alone account for about 1; much more means other work was running)")
        out.append(f"  elapsed: {self.elapsed():.0f}s")
        if self.failures:
            out.append("")
            out.append(f"FAILED invocations: {len(self.failures)}")
            for key, phase, cmd, cid, ifn, rc, err in self.failures[:20]:
                out.append(f"  {key} {phase} {cmd} cid={cid} ifname={ifn} exit={rc}: {err}")
            if len(self.failures) > 20:
                out.append(f"  ... and {len(self.failures) - 20} more")
        print("\n".join(out), flush=True)
        if a.json:
            raw = {"samples_ns": {f"{k}:{m}": v for (k, m), v in self.samples.items()},
                   "rows": ratio_rows + floor_rows + growth_rows, "failures": self.failures,
                   "notes": self.notes}
            with open(a.json, "w") as f:
                json.dump(raw, f, indent=1)



def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("role")
        ap.add_argument("--name", required=True)
        ap.add_argument("--plugin", required=True)
        ap.add_argument("--config", required=True)
        ap.add_argument("--version-plugin", default="")
        Worker(ap.parse_args()).serve()
        return 0
    ap = argparse.ArgumentParser(description="plumb vs reference CNI benchmark (run via cni_bench.sh)")
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--ref-dir", default="/usr/lib/cni")
    ap.add_argument("--ref-version", default="")
    ap.add_argument("--floor-dir", required=True, help="where kernel_floor and empty_cxx are")
    ap.add_argument("--plumb-log", default="", help="path prefix: plumb logs its steps at debug level")
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--prefix", default="plumb-bench")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale-low", type=int, default=10)
    ap.add_argument("--scale-high", type=int, default=1000)
    ap.add_argument("--scale-samples", type=int, default=50)
    ap.add_argument("--scale-settle", type=int, default=15)
    ap.add_argument("--fill-batch", type=int, default=8)
    ap.add_argument("--ref-scale", type=int, default=1)
    ap.add_argument("--budget", type=float, default=240, help="seconds after which the reference fill gives up")
    ap.add_argument("--load-start", default="")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if args.concurrency > args.count:
        ap.error("--concurrency cannot exceed --count (the container namespaces)")
    bench = Bench(args)
    broken = None
    try:
        bench.run()
    except Exception as e:  # report what we have, then fail
        broken = e
        bench.notes.append(f"benchmark aborted: {type(e).__name__}: {e}")
    bench.report()
    if broken is not None or bench.failures:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
