#!/usr/bin/env python3
"""Reports docker_bench.sh's figures: part 1 from the samples it wrote, part 2 by calling the
daemon on TMP/direct.sock (HTTP/1.1 over a unix socket, one keep-alive connection, as dockerd)."""
import http.client
import json
import socket
import statistics
import sys
import time

tmp, calls = sys.argv[1], int(sys.argv[2])


def read(name):
    with open(f"{tmp}/{name}") as f:
        return [int(x) / 1000.0 for x in f.read().split()]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


plumb, ref = read("plumb.us"), read("ref.us")
mp, mr = statistics.median(plumb), statistics.median(ref)
print(f"docker run median: plumb {mp:.0f} ms, bridge driver {mr:.0f} ms, "
      f"ratio {mp / mr:.3f} (target <= 1.05) -> {'PASS' if mp / mr <= 1.05 else 'MISS'}")
print(f"  plumb p10/p90 {pct(plumb, 10):.0f}/{pct(plumb, 90):.0f} ms; "
      f"bridge p10/p90 {pct(ref, 10):.0f}/{pct(ref, 90):.0f} ms; {len(plumb)} runs each")


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("plugin")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


conn = UnixConnection(f"{tmp}/direct.sock")


def call(method, body):
    conn.request("POST", "/" + method, json.dumps(body))
    r = conn.getresponse()
    data = r.read()
    if r.status != 200:
        raise SystemExit(f"{method}: {r.status} {data!r}")
    return json.loads(data)


net = "b" * 64
call("NetworkDriver.CreateNetwork", {
    "NetworkID": net, "Options": {"com.docker.network.generic": {}},
    "IPv4Data": [{"AddressSpace": "LocalDefault", "Pool": "198.18.32.0/22",
                  "Gateway": "198.18.32.1/22"}], "IPv6Data": []})
create_ms, join_ms, both_ms = [], [], []
for i in range(calls):
    ep = f"{i:064x}"
    addr = f"198.18.{32 + (i + 2) // 256}.{(i + 2) % 256}/22"
    t0 = time.perf_counter()
    call("NetworkDriver.CreateEndpoint", {"NetworkID": net, "EndpointID": ep,
                                          "Interface": {"Address": addr, "AddressIPv6": "",
                                                        "MacAddress": ""}, "Options": {}})
    t1 = time.perf_counter()
    call("NetworkDriver.Join", {"NetworkID": net, "EndpointID": ep,
                                "SandboxKey": "/var/run/docker/netns/bench", "Options": {}})
    t2 = time.perf_counter()
    call("NetworkDriver.Leave", {"NetworkID": net, "EndpointID": ep})
    call("NetworkDriver.DeleteEndpoint", {"NetworkID": net, "EndpointID": ep})
    create_ms.append((t1 - t0) * 1000)
    join_ms.append((t2 - t1) * 1000)
    both_ms.append((t2 - t0) * 1000)
call("NetworkDriver.DeleteNetwork", {"NetworkID": net})
for name, xs in (("CreateEndpoint", create_ms), ("Join", join_ms),
                 ("CreateEndpoint + Join", both_ms)):
    print(f"{name}: p50 {pct(xs, 50):.2f} ms, p99 {pct(xs, 99):.2f} ms ({len(xs)} calls)")
