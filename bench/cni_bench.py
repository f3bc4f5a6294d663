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
        with open(args.config) as f:
            self.conf = json.load(f)
        self.prev = {}  # (cid, ifname) -> ADD result, sent back as prevResult on DEL (as libcni does)

    def build(self, call):
        cmd = call["cmd"]
        env = {"PATH": CHILD_PATH, "CNI_COMMAND": cmd, "CNI_PATH": "/usr/lib/cni"}
        if cmd == "VERSION":
            env["CNI_NETNS"] = "dummy"
            return env, json.dumps({"cniVersion": CNI_VERSION}).encode()
        env["CNI_CONTAINERID"] = call["cid"]
        env["CNI_NETNS"] = call["netns"]
        env["CNI_IFNAME"] = call["ifname"]
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
            if cmd == "ADD":
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

    def run_batch(self, calls):
        """Starts every call at once (as fast as posix_spawn allows) and waits for all."""
        built = [self.build(call) for call in calls]
        t0 = time.perf_counter_ns()
        children = [spawn(self.plugin, env, data, call) for call, (env, data) in zip(calls, built)]
        wait_all(children)
        wall = max(c.t1 for c in children) - t0
        return {"wall_ns": wall, "results": [self.finish(c) for c in children]}

    def run_one(self, call):
        env, data = self.build(call)
        c = spawn(self.plugin, env, data, call)
        wait_all([c])
        return self.finish(c)

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

    def __init__(self, key, label, host_ns, bridge, plugin, config_path, script):
        self.key, self.label, self.host_ns, self.bridge = key, label, host_ns, bridge
        argv = ["ip", "netns", "exec", host_ns, sys.executable, script, "worker",
                "--name", key, "--plugin", plugin, "--config", config_path]
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


class Bench:
    def __init__(self, args):
        self.a = args
        self.t_start = time.monotonic()
        self.failures = []  # (plugin, phase, cmd, cid, ifname, error)
        self.samples = {}   # (plugin key, metric) -> list of ns
        self.info = {}
        self.notes = []
        self.loads = []  # (elapsed s, 1-min load average, phase) at each progress line
        script = os.path.abspath(__file__)
        tmp = args.tmp
        # plumb and the reference get the same shape of config. The "-big" instances are the
        # same plugins on a second bridge (own host netns, own state) that part 3 fills with
        # 1,000 attachments, so ADD@10 and ADD@1000 can be measured side by side in time.
        def plumb_conf(name, bridge, subnet, state):
            return {"cniVersion": CNI_VERSION, "name": name, "type": "plumb", "bridge": bridge,
                    "isGateway": True, "ipMasq": True, "dataDir": os.path.join(tmp, state),
                    "ipam": {"type": "plumb", "subnet": subnet}}

        def ref_conf(name, bridge, subnet, state):
            return {"cniVersion": CNI_VERSION, "name": name, "type": "bridge", "bridge": bridge,
                    "isGateway": True, "ipMasq": True,
                    "ipam": {"type": "host-local", "subnet": subnet, "dataDir": os.path.join(tmp, state)}}

        confs = {
            "plumb": plumb_conf("plumb-bench", "plumbbr0", "198.18.0.0/20", "plumb-state"),
            "ref": ref_conf("plumb-bench-ref", "refbr0", "198.19.0.0/20", "host-local-state"),
            "plumb-big": plumb_conf("plumb-bench-big", "plumbbr1", "198.18.16.0/20", "plumb-big-state"),
            "ref-big": ref_conf("plumb-bench-ref-big", "refbr1", "198.19.16.0/20", "host-local-big-state"),
        }
        self.confs = confs
        self.p = {}
        keys = ["plumb", "ref"] + (["plumb-big", "ref-big"] if args.scale_high > 0 else [])
        for key in keys:
            label = "plumb" if key.startswith("plumb") else "reference"
            binary = args.plumb if key.startswith("plumb") else os.path.join(args.ref_dir, "bridge")
            path = os.path.join(tmp, f"{key}.conf")
            with open(path, "w") as f:
                json.dump(confs[key], f)
            self.p[key] = Plugin(key, label, f"{args.prefix}-host-{key}", confs[key]["bridge"],
                                 binary, path, script)
        self.order = ["plumb", "ref"]

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
        return True

    def pair(self, i, keys=None):
        """Plugin order for iteration i: alternates (two plugins) or rotates (more) so that no
        plugin always goes first."""
        keys = list(keys or self.order)
        if len(keys) == 2:
            return keys if i % 2 == 0 else keys[::-1]
        r = i % len(keys)
        return keys[r:] + keys[:r]

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

    @staticmethod
    def ifname(key, base):
        # All plugin instances attach into the same container namespaces, under different names.
        return {"plumb": "p", "ref": "r", "plumb-big": "P", "ref-big": "R"}[key] + base

    # -- phases -------------------------------------------------------------------------------

    def warmup(self):
        self.log("warm-up: VERSION x5, then one ADD+DEL per plugin (creates the bridge)")
        floor = self.p["plumb"].request({"op": "floor", "n": 50})["ns"]
        self.info["floor_ns"] = pct(floor, 50)
        for key in self.order:
            for _ in range(5):
                self.one(key, "warm-up", {"cmd": "VERSION"})
            call = {"cmd": "ADD", "cid": "warmup", "netns": self.netns(0), "ifname": self.ifname(key, "w0")}
            res = self.one(key, "warm-up", call)
            self.info[(key, "first_add_ns")] = res["ns"] if res["ok"] else None
            self.one(key, "warm-up", dict(call, cmd="DEL"))

    def sequential(self):
        n = self.a.count
        self.log(f"part 1: {n} sequential ADDs per plugin (interleaved)")
        for i in range(n):
            for key in self.pair(i):
                self.one(key, "seq", {"cmd": "ADD", "cid": f"seq-{i}", "netns": self.netns(i),
                                      "ifname": self.ifname(key, "eth0")}, "add")
        self.log(f"part 1: {n} VERSIONs per plugin")
        for i in range(n):
            for key in self.pair(i):
                self.one(key, "seq", {"cmd": "VERSION"}, "version")
        for key in self.order:
            self.info[(key, "ports_after_add")] = self.p[key].ports()
        self.log(f"part 1: {n} sequential DELs per plugin")
        for i in range(n):
            for key in self.pair(i):
                self.one(key, "seq", {"cmd": "DEL", "cid": f"seq-{i}", "netns": self.netns(i),
                                      "ifname": self.ifname(key, "eth0")}, "del")
        for key in self.order:
            self.info[(key, "ports_after_del")] = self.p[key].ports()

    def concurrent(self):
        n, rounds = self.a.concurrency, self.a.rounds
        self.log(f"part 2: {rounds} rounds of {n} concurrent ADDs (then {n} concurrent DELs) per plugin")
        for r in range(rounds):
            for key in self.pair(r):
                calls = [{"cmd": "ADD", "cid": f"conc-{r}-{i}", "netns": self.netns(i),
                          "ifname": self.ifname(key, "eth0")} for i in range(n)]
                wall, ok = self.batch(key, "concurrent", calls)
                self.samples.setdefault((key, "conc_add"), []).append(wall)
                if not ok:
                    self.info[(key, "conc_add_failed")] = True
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
            calls = []
            for j in range(k, min(end, k + batch)):
                calls.append({"cmd": "ADD", "cid": f"fill-{j}", "netns": self.netns(j % self.a.count),
                              "ifname": self.ifname(key, f"f{j // self.a.count}")})
            self.batch(key, "fill", calls)
            k += len(calls)
        return k

    def scale(self):
        """Part 3. plumb/ref carry `low` attachments, plumb-big/ref-big `high`; the ADDs at both
        levels are then measured interleaved, so load drift on the machine cannot pose as growth."""
        low, high, m = self.a.scale_low, self.a.scale_high, self.a.scale_samples
        with_ref = bool(self.a.ref_scale)
        for key in ["plumb"] + (["ref"] if with_ref else []):
            self.fill(key, 0, low)
        self.log(f"part 3: filling a second plumb bridge with {high} attachments (untimed)")
        t = time.monotonic()
        self.fill("plumb-big", 0, high)
        self.info[("plumb-big", "fill_s")] = time.monotonic() - t
        keys = ["plumb", "plumb-big"] + (["ref"] if with_ref else [])
        if with_ref:
            deadline = self.t_start + self.a.budget
            self.log(f"part 3: filling a second reference bridge with {high} attachments (untimed, "
                     f"gives up {max(0, deadline - time.monotonic()):.0f}s from now)")
            t = time.monotonic()
            reached = self.fill("ref-big", 0, high, deadline)
            self.info[("ref-big", "fill_s")] = time.monotonic() - t
            if reached >= high:
                keys.append("ref-big")
            else:
                self.notes.append(f"reference ADD@{high} skipped: its bridge only reached {reached} "
                                  f"attachments within the time budget ({self.a.budget:.0f}s)")
        else:
            self.notes.append("reference part 3 skipped (CNI_BENCH_REF_SCALE=0)")
        for key in keys:
            self.info[(key, "ports_before_scale")] = self.p[key].ports()
        self.log(f"part 3: {m} ADDs (each DELed again) per instance, interleaved: "
                 + ", ".join(f"{k}@{high if k.endswith('-big') else low}" for k in keys))
        for i in range(m):
            for key in self.pair(i, keys):
                level = high if key.endswith("-big") else low
                call = {"cmd": "ADD", "cid": f"scale-{i}", "netns": self.netns(i % self.a.count),
                        "ifname": self.ifname(key, "s0")}
                self.one(key, f"scale@{level}", call, f"add@{level}")
                self.one(key, f"scale@{level}", dict(call, cmd="DEL"), f"del@{level}")

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

        def fmt(v, unit="ms"):
            if v is None:
                return "n/a"
            return f"{v:.2f} {unit}" if unit == "ms" else f"{v:.2f}x"

        rows = []  # (label, plumb, ref, ratio, target text, verdict, unit)

        def ratio_row(label, p, r, target, unit="ms"):
            ratio = p / r if (p is not None and r) else None
            if target is None:
                verdict, ttext = "info", ""
            elif ratio is None:
                verdict, ttext = "n/a", f"<= {target:.2f}x"
            else:
                verdict, ttext = ("PASS" if ratio <= target else "MISS"), f"<= {target:.2f}x"
            rows.append((label, fmt(p, unit), fmt(r, unit), fmt(ratio, "x") if ratio is not None else "n/a",
                         ttext, verdict))

        n = a.count
        for metric, name, target in (("add", "ADD", 0.25), ("del", "DEL", 0.7), ("version", "VERSION", 0.3)):
            for p_ in (50, 99):
                ratio_row(f"{name} p{p_} ({n} sequential)", ms(pct(S("plumb", metric), p_)),
                          ms(pct(S("ref", metric), p_)), target)
        c = a.concurrency
        ratio_row(f"{c} concurrent ADDs, wall (median of {a.rounds})",
                  ms(pct(S("plumb", "conc_add"), 50)), ms(pct(S("ref", "conc_add"), 50)), 0.3)
        ratio_row(f"{c} concurrent DELs, wall (median of {a.rounds})",
                  ms(pct(S("plumb", "conc_del"), 50)), ms(pct(S("ref", "conc_del"), 50)), None)
        lo, hi = a.scale_low, a.scale_high
        scale_rows = []
        if hi > 0:
            m = a.scale_samples
            p_lo, r_lo = ms(pct(S("plumb", f"add@{lo}"), 50)), ms(pct(S("ref", f"add@{lo}"), 50))
            p_hi, r_hi = ms(pct(S("plumb-big", f"add@{hi}"), 50)), ms(pct(S("ref-big", f"add@{hi}"), 50))
            ratio_row(f"ADD p50 with {lo} attached ({m} ADDs)", p_lo, r_lo, None)
            ratio_row(f"ADD p50 with {hi} attached ({m} ADDs)", p_hi, r_hi, None)
            ratio_row(f"DEL p50 with {lo} attached (info)", ms(pct(S("plumb", f"del@{lo}"), 50)),
                      ms(pct(S("ref", f"del@{lo}"), 50)), None)
            ratio_row(f"DEL p50 with {hi} attached (info)", ms(pct(S("plumb-big", f"del@{hi}"), 50)),
                      ms(pct(S("ref-big", f"del@{hi}"), 50)), None)
            gp = p_hi / p_lo if (p_hi and p_lo) else None
            gr = r_hi / r_lo if (r_hi and r_lo) else None
            verdict = "n/a" if gp is None else ("PASS" if gp <= 1.2 else "MISS")
            scale_rows.append((f"ADD@{hi} / ADD@{lo} (growth of each)", fmt(gp, "x"), fmt(gr, "x"),
                               "", "plumb <= 1.20x", verdict))

        head = ("metric", "plumb", "reference", "plumb/ref", "target", "result")
        allrows = [head] + rows + scale_rows
        w = [max(len(r[i]) for r in allrows) for i in range(len(head))]
        line = lambda r: "  ".join([r[0].ljust(w[0])] + [r[i].rjust(w[i]) for i in range(1, 5)] + [r[5]])
        out = []
        out.append("")
        out.append("plumb CNI benchmark: plumb (built-in IPAM) vs reference bridge + host-local")
        out.append(f"  plumb:     {a.plumb}")
        out.append(f"  reference: {os.path.join(a.ref_dir, 'bridge')} + host-local ({a.ref_version})")
        out.append("  config:    bridge mode, isGateway, ipMasq, a /20 each (plumb 198.18.0.0/20, reference "
                   "198.19.0.0/20; part 3's 1,000-attachment bridges 198.18.16.0/20 and 198.19.16.0/20), "
                   "cniVersion " + CNI_VERSION)
        out.append(f"  host:      {os.cpu_count()} CPUs, load average {a.load_start} at start, "
                   f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at end")
        out.append("")
        out.append(line(head))
        out.append("  ".join("-" * x for x in w))
        for r in rows:
            out.append(line(r))
        if scale_rows:
            out.append("  ".join("-" * x for x in w))
            for r in scale_rows:
                out.append(line(r))
        out.append("")
        p_ = lambda k: self.info.get(k)
        out.append("notes:")
        out.append(f"  launcher floor (same spawn/wait path running /bin/true): "
                   f"{fmt(ms(p_('floor_ns')))} p50; it is included in every figure above")
        out.append(f"  first ADD of the run (creates the bridge and NAT rules): plumb "
                   f"{fmt(ms(p_(('plumb', 'first_add_ns'))))}, reference {fmt(ms(p_(('ref', 'first_add_ns'))))}")
        for key in self.order:
            after_add, after_del = p_((key, "ports_after_add")), p_((key, "ports_after_del"))
            extra = ""
            if after_del:
                extra = f"  <-- {after_del} port(s) left behind after DEL"
            out.append(f"  {self.p[key].label}: bridge ports after the {n} ADDs: {after_add}, "
                       f"after the DELs: {after_del}{extra}")
        for key in ("plumb", "ref", "plumb-big", "ref-big"):
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
                   "rows": rows + scale_rows, "failures": self.failures, "notes": self.notes}
            with open(a.json, "w") as f:
                json.dump(raw, f, indent=1)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        ap = argparse.ArgumentParser()
        ap.add_argument("role")
        ap.add_argument("--name", required=True)
        ap.add_argument("--plugin", required=True)
        ap.add_argument("--config", required=True)
        Worker(ap.parse_args()).serve()
        return 0
    ap = argparse.ArgumentParser(description="plumb vs reference CNI benchmark (run via cni_bench.sh)")
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--ref-dir", default="/usr/lib/cni")
    ap.add_argument("--ref-version", default="")
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--prefix", default="plumb-bench")
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--scale-low", type=int, default=10)
    ap.add_argument("--scale-high", type=int, default=1000)
    ap.add_argument("--scale-samples", type=int, default=50)
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
