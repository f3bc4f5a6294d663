#!/usr/bin/env python3
"""Driver of bench/proxy_bench.sh: runs inside the benchmark's own network namespace.

Bulk TCP (iperf3, 1 and 8 streams), new connections per second (wrk with Connection: close
against HAProxy answering 200 itself), idle connections held (fds and memory of the proxy)
and UDP flows (memory per flow): no proxy, plumb, HAProxy 2.6 (TCP mode, splice-auto) and
socat (fork per connection), interleaved round by round; medians reported. Bulk runs also
go through the floor (bench/floor/splice_proxy.c: a thread per direction and blocking
splice, the least any proxy can do), and each proxy's CPU time is counted while they run.
"""
import argparse
import json
import os
import re
import resource
import selectors
import socket
import statistics
import subprocess
import sys
import threading
import time

procs = []
TMP = "/tmp"


def start(argv, **kw):
    p = subprocess.Popen(argv, stdout=kw.pop("stdout", subprocess.DEVNULL),
                         stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    procs.append(p)
    return p


def stop_all():
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


LOGS = []


def plumb_proxy(plumb, backend, *extra):
    log = open(os.path.join(TMP, f"plumb-proxy-{len(LOGS)}.log"), "w")
    LOGS.append(log.name)
    p = start([plumb, "proxy", "--listen", "127.0.0.1:0", "--backend", backend, *extra],
              stdout=subprocess.PIPE, stderr=log, text=True)
    line = p.stdout.readline()
    m = re.match(r"listening on 127\.0\.0\.1:(\d+)", line)
    if not m:
        raise RuntimeError(f"plumb proxy did not start: {line!r}")
    return p, int(m.group(1))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def fds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def family(pid):
    """pid and every descendant (socat forks a child per connection)."""
    out = [pid]
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == pid:
            out.append(int(d))
    return out


def haproxy(name, mode, sections, timeout="60s"):
    """Starts HAProxy on TMP/<name>.cfg: maxconn 4000, the given mode (tcp: splice-auto, its
    zero-copy path) and client/server timeouts, then the frontends and backends given."""
    path = os.path.join(TMP, f"{name}.cfg")
    splice = "  option splice-auto\n" if mode == "tcp" else ""
    with open(path, "w") as f:
        f.write(f"""global
  maxconn 4000
defaults
  mode {mode}
  timeout connect 5s
  timeout client {timeout}
  timeout server {timeout}
{splice}{sections}""")
    return start(["haproxy", "-db", "-f", path])


def cpu_seconds(pid):
    """CPU time of pid, its threads and the children it has reaped (socat's per connection)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # utime, stime, cutime, cstime: fields 14-17 of stat(5), 12-15 after the name.
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def iperf(name, port, seconds, streams):
    r = subprocess.run(["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(seconds),
                        "-P", str(streams), "-J"], capture_output=True, text=True, timeout=seconds + 30)
    data = json.loads(r.stdout)
    if "error" in data:
        dead = [f"{' '.join(p.args[:2])} (exit {p.returncode})" for p in procs if p.poll() is not None]
        raise RuntimeError(f"iperf3 through {name} (port {port}), {streams} stream(s): "
                           f"{data['error']}; processes that ended: {dead or 'none'}")
    return data["end"]["sum_received"]["bits_per_second"] / 1e9


def wrk(port, seconds):
    r = subprocess.run(["wrk", "-t1", "-c16", f"-d{seconds}s", "-H", "Connection: close",
                        f"http://127.0.0.1:{port}/"], capture_output=True, text=True,
                       timeout=seconds + 30)
    m = re.search(r"Requests/sec:\s+([\d.]+)", r.stdout)
    if not m:
        raise RuntimeError(f"wrk through port {port}: {r.stdout} {r.stderr}")
    errors = re.search(r"Socket errors: (.*)", r.stdout)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout)
    if errors or non2xx:
        print(f"  note: wrk through {port}: {errors.group(0) if errors else ''} "
              f"{non2xx.group(0) if non2xx else ''}")
    return float(m.group(1))


class Holder:
    """Accepts and holds connections (the idle test's backend)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4096)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.done = False
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(c)

    def drop(self):
        for c in self.held:
            c.close()
        self.held = []


def hold(port, n, holder, pids):
    """Opens n idle connections through the proxy on port; returns (fds, KiB) per connection."""
    before_fds = sum(fds(p) for p in pids())
    before_mem = sum(pss_kib(p) for p in pids())
    base = len(holder.held)
    clients = []
    for _ in range(n):
        clients.append(socket.create_connection(("127.0.0.1", port)))
    deadline = time.time() + 60
    while len(holder.held) - base < n and time.time() < deadline:
        time.sleep(0.05)
    if len(holder.held) - base < n:
        raise RuntimeError(f"only {len(holder.held) - base} of {n} connections reached the backend")
    time.sleep(0.5)
    after_fds = sum(fds(p) for p in pids())
    after_mem = sum(pss_kib(p) for p in pids())
    for c in clients:
        c.close()
    holder.drop()
    return (after_fds - before_fds) / n, (after_mem - before_mem) * 1024 / n


def udp_flows(plumb, n):
    """n UDP flows through one plumb proxy to an echo server; bytes and fds per flow."""
    echo = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    echo.bind(("127.0.0.1", 0))
    echo_port = echo.getsockname()[1]
    stop = [False]

    def serve():
        echo.settimeout(0.2)
        while not stop[0]:
            try:
                data, addr = echo.recvfrom(2048)
            except socket.timeout:
                continue
            echo.sendto(data, addr)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    p, port = plumb_proxy(plumb, f"127.0.0.1:{echo_port}", "--udp")
    # One flow first: what a UDP loop allocates once (its datagram batch) is not per flow.
    warm = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    warm.connect(("127.0.0.1", port))
    warm.settimeout(5)
    warm.send(b"warm")
    warm.recv(100)
    time.sleep(0.2)
    before_fds, before_mem = fds(p.pid), pss_kib(p.pid)
    clients = []
    for start_i in range(0, n, 500):
        batch = []
        for _ in range(min(500, n - start_i)):
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            c.connect(("127.0.0.1", port))
            batch.append(c)
        pending = set(batch)
        sel = selectors.DefaultSelector()  # epoll: descriptors past 1024
        for c in batch:
            sel.register(c, selectors.EVENT_READ)
        for attempt in range(5):
            for c in pending:
                c.send(b"ping")
            deadline = time.time() + 1
            while pending and time.time() < deadline:
                for key, _ in sel.select(0.1):
                    key.fileobj.recv(100)
                    if key.fileobj in pending:
                        pending.discard(key.fileobj)
            if not pending:
                break
        sel.close()
        if pending:
            raise RuntimeError(f"{len(pending)} UDP flows got no reply")
        clients.extend(batch)
    time.sleep(0.5)
    after_fds, after_mem = fds(p.pid), pss_kib(p.pid)
    for c in clients:
        c.close()
    warm.close()
    stop[0] = True
    t.join()
    echo.close()
    p.terminate()
    p.wait()
    return (after_fds - before_fds) / n, (after_mem - before_mem) * 1024 / n


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--floor", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--seconds", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--idle", type=int, default=9000)
    ap.add_argument("--flows", type=int, default=9000)
    a = ap.parse_args()
    global TMP
    TMP = a.tmp
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    # Backends: iperf3 for bulk, HAProxy answering 200 itself for new connections.
    iperf_port, web_port = free_port(), free_port()
    start(["iperf3", "-s", "-p", str(iperf_port)])
    haproxy("web", "http", f"""frontend web
  bind 127.0.0.1:{web_port}
  http-request return status 200 content-type text/plain string ok
""")

    # The proxies, each in front of both backends.
    hap_bulk, hap_web, socat_bulk, socat_web = free_port(), free_port(), free_port(), free_port()
    hap = haproxy("proxy", "tcp", f"""frontend bulk
  bind 127.0.0.1:{hap_bulk}
  default_backend iperf
frontend web
  bind 127.0.0.1:{hap_web}
  default_backend web
backend iperf
  server s1 127.0.0.1:{iperf_port}
backend web
  server s1 127.0.0.1:{web_port}
""")
    socat_b = start(["socat", f"TCP-LISTEN:{socat_bulk},fork,reuseaddr", f"TCP:127.0.0.1:{iperf_port}"])
    start(["socat", f"TCP-LISTEN:{socat_web},fork,reuseaddr", f"TCP:127.0.0.1:{web_port}"])
    floor_port = free_port()
    floor = start([a.floor, str(floor_port), str(iperf_port)], stdout=subprocess.PIPE, text=True)
    if floor.stdout.readline().strip() != "listening":
        raise RuntimeError(f"{a.floor} did not start")
    plumb_b, plumb_bulk = plumb_proxy(a.plumb, f"127.0.0.1:{iperf_port}")
    _, plumb_web = plumb_proxy(a.plumb, f"127.0.0.1:{web_port}")
    for port in (iperf_port, web_port, hap_bulk, hap_web, socat_bulk, socat_web):
        wait_port(port) if port not in (iperf_port,) else time.sleep(0.3)

    haproxy_version = subprocess.run(["haproxy", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    print(f"proxy benchmark: {os.cpu_count()} cores, {haproxy_version}, "
          f"{a.rounds} rounds of {a.seconds} s per figure, medians")

    bulk_targets = {"direct": iperf_port, "plumb": plumb_bulk, "haproxy": hap_bulk,
                    "socat": socat_bulk, "floor": floor_port}
    web_targets = {"direct": web_port, "plumb": plumb_web, "haproxy": hap_web, "socat": socat_web}
    # The process whose CPU time a bulk run through each proxy costs (HAProxy's one serves
    # both frontends; the web one is idle meanwhile).
    pids = {"plumb": plumb_b.pid, "haproxy": hap.pid, "socat": socat_b.pid, "floor": floor.pid}
    keys = ("bulk1", "bulk8", "cps", "cpu1", "cpu8")
    results = {k: {key: [] for key in keys} for k in bulk_targets}
    names = list(bulk_targets)
    for r in range(a.rounds):
        # The order rotates each round: a run leaves tens of thousands of TIME_WAIT sockets
        # toward the backend's port behind it, which the next run's connects walk past.
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            for streams in (1, 8):
                before = cpu_seconds(pids[name]) if name in pids else 0.0
                results[name][f"bulk{streams}"].append(
                    iperf(name, bulk_targets[name], a.seconds, streams))
                if name in pids:
                    results[name][f"cpu{streams}"].append((cpu_seconds(pids[name]) - before) / a.seconds)
        for name in order:
            if name in web_targets:
                results[name]["cps"].append(wrk(web_targets[name], a.seconds))
        print(f"  round {r + 1}: " + ", ".join(
            f"{n} {v['bulk1'][-1]:.1f}/{v['bulk8'][-1]:.1f} Gbit/s"
            + (f" {v['cps'][-1]:.0f} conn/s" if v["cps"] else "")
            for n, v in results.items()))
    med = {n: {k: statistics.median(v) if v else None for k, v in d.items()} for n, d in results.items()}

    print()
    print("| | direct | floor | plumb | HAProxy (splice) | socat | plumb / floor | "
          "plumb / HAProxy (target) | plumb / socat (target) |")
    print("|---|---|---|---|---|---|---|---|---|")
    rows = [("TCP bulk, 1 stream (Gbit/s)", "bulk1", 1.1, 2.0),
            ("TCP bulk, 8 streams (Gbit/s)", "bulk8", 1.1, 2.0),
            ("new connections/s", "cps", 1.0, 4.0)]
    for label, key, t_hap, t_socat in rows:
        p, h, s, fl = med["plumb"][key], med["haproxy"][key], med["socat"][key], med["floor"][key]
        fmt = "{:.0f}" if key == "cps" else "{:.2f}"
        print(f"| {label} | {fmt.format(med['direct'][key])} | "
              f"{fmt.format(fl) if fl else '-'} | {fmt.format(p)} | {fmt.format(h)} | "
              f"{fmt.format(s)} | {f'{p / fl:.2f}x' if fl else '-'} | "
              f"{p / h:.2f}x (>= {t_hap}x: {'met' if p / h >= t_hap else 'MISS'}) | "
              f"{p / s:.2f}x (>= {t_socat}x: {'met' if p / s >= t_socat else 'MISS'}) |")
    print()
    print("| proxy CPU during bulk (cores of 2) | floor | plumb | HAProxy | socat |")
    print("|---|---|---|---|---|")
    for label, key in (("1 stream", "cpu1"), ("8 streams", "cpu8")):
        print(f"| {label} | " + " | ".join(f"{med[n][key]:.2f}" for n in ("floor", "plumb", "haproxy", "socat")) + " |")
    print("(The floor: bench/floor/splice_proxy.c, a thread per direction and blocking splice, "
          "no plumb code; it has no new-connection figure: a thread per direction is not how "
          "one serves many.)")

    # Idle connections: a fresh proxy of each kind in front of a backend that only holds them.
    holder = Holder()
    pp, pport = plumb_proxy(a.plumb, f"127.0.0.1:{holder.port}")
    hidle = free_port()
    hp = haproxy("idle", "tcp", f"""frontend idle
  bind 127.0.0.1:{hidle}
  default_backend hold
backend hold
  server s1 127.0.0.1:{holder.port}
""", timeout="1h")
    sidle = free_port()
    sp = start(["socat", f"TCP-LISTEN:{sidle},fork,reuseaddr", f"TCP:127.0.0.1:{holder.port}"])
    wait_port(hidle)
    wait_port(sidle)
    holder.drop()
    time.sleep(0.3)
    n_hap = min(a.idle, 3000)  # HAProxy's maxconn here is 4000 (the open-file limit is 20,000)
    n_socat = min(a.idle, 300)  # a process per connection
    p_fd, p_mem = hold(pport, a.idle, holder, lambda: [pp.pid])
    h_fd, h_mem = hold(hidle, n_hap, holder, lambda: [hp.pid])
    s_fd, s_mem = hold(sidle, n_socat, holder, lambda: family(sp.pid))
    print()
    print("| idle TCP connections held | connections | fds per connection | memory per connection (PSS) | target |")
    print("|---|---|---|---|---|")
    print(f"| plumb | {a.idle} | {p_fd:.2f} | {p_mem:.0f} bytes | 2 fds: {'met' if round(p_fd, 2) <= 2 else 'MISS'}, "
          f"<= 1024 bytes: {'met' if p_mem <= 1024 else 'MISS'} |")
    print(f"| HAProxy | {n_hap} | {h_fd:.2f} | {h_mem:.0f} bytes | |")
    print(f"| socat | {n_socat} | {s_fd:.2f} | {s_mem:.0f} bytes (a process each) | |")

    u_fd, u_mem = udp_flows(a.plumb, a.flows)
    print()
    print("| UDP flows through plumb | flows | fds per flow | memory per flow (PSS) | target |")
    print("|---|---|---|---|---|")
    print(f"| plumb | {a.flows} | {u_fd:.2f} | {u_mem:.0f} bytes | <= 256 bytes: "
          f"{'met' if u_mem <= 256 else 'MISS'} |")
    print("(HAProxy's free edition has no UDP; socat forks a process per UDP peer.)")
    return 0


if __name__ == "__main__":
    try:
        rc = main()
    except Exception as e:  # noqa: BLE001 - a report, then a non-zero exit
        print(f"proxy_bench: {e}", file=sys.stderr)
        for path in LOGS:
            with open(path) as f:
                tail = f.read().strip().splitlines()[-5:]
            if tail:
                print(f"proxy_bench: {os.path.basename(path)}:\n  " + "\n  ".join(tail), file=sys.stderr)
        rc = 1
    finally:
        stop_all()
    sys.exit(rc)
