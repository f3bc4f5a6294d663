#!/usr/bin/env python3
"""SR-IOV benchmark driver (run by sriov_bench.sh inside the host netns).

COUNT rounds; in each, one ADD then one DEL of the same VF stand-in (sbvf0, PCI 0000:3b:02.0
in the tree at TMP/sys) into container netns PREFIX-c<round>, by each plugin in turn:
  plumb        plumb's CNI ADD/DEL, mode sriov, "deviceID" as a device plugin hands it over,
               built-in IPAM;
  host-device  the reference plugin, "device": "sbvf0", IPAM host-local;
  floor        kernel_floor with FLOOR_DEVICE: one RTM_NEWLINK moving the device in, renamed on
               arrival, then its address and up in one sendmsg; DEL one RTM_NEWLINK moving it
               back renamed. The kernel's share, measured through the same launcher.
Each is exec'd by the same launcher (subprocess); wall time per call. Both give the device
an address in the container and give it back on DEL; neither sets a VF setting.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def pct(values, p):
    s = sorted(values)
    k = (len(s) - 1) * p / 100.0
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--plumb", required=True)
    ap.add_argument("--tmp", required=True)
    ap.add_argument("--prefix", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--cni-dir", required=True)
    ap.add_argument("--floor", required=True)
    a = ap.parse_args()

    confs = {
        "plumb": {"cniVersion": "1.0.0", "name": "sbench", "type": "plumb", "mode": "sriov",
                  "deviceID": "0000:3b:02.0", "dataDir": a.tmp + "/plumb",
                  "ipam": {"type": "plumb", "subnet": "198.18.95.0/24"}},
        "host-device": {"cniVersion": "1.0.0", "name": "sbench", "type": "host-device",
                        "device": "sbvf0",
                        "ipam": {"type": "host-local", "subnet": "198.18.95.0/24",
                                 "dataDir": a.tmp + "/host-local"}},
        "floor": {},
    }
    if os.environ.get("SRIOV_BENCH_PLUMB_LOG"):
        # plumb's step timings, for finding where its time goes.
        confs["plumb"]["logFile"] = os.environ["SRIOV_BENCH_PLUMB_LOG"]
        confs["plumb"]["logLevel"] = "debug"
    binary = {"plumb": a.plumb, "host-device": os.path.join(a.cni_dir, "host-device"),
              "floor": a.floor}
    times = {(w, c): [] for w in confs for c in ("ADD", "DEL")}

    def call(way, cmd, i):
        env = dict(os.environ, CNI_COMMAND=cmd, CNI_CONTAINERID="c%d" % i,
                   CNI_NETNS="/run/netns/%s-c%d" % (a.prefix, i), CNI_IFNAME="net1",
                   CNI_PATH=a.cni_dir, PLUMB_SYSFS_ROOT=a.tmp + "/sys")
        if way == "floor":
            # Only the floor's: what differs between calls (beyond CNI_*) would make each
            # plumb call a caller of its own, which no resident service could serve, as no
            # runtime's calls are.
            env.update(FLOOR_DEVICE="sbvf0", FLOOR_ADDR="198.18.95.%d/24" % (100 + i % 100))
        data = json.dumps(confs[way]).encode()
        t0 = time.perf_counter()
        r = subprocess.run([binary[way]], env=env, input=data, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
        ms = (time.perf_counter() - t0) * 1000.0
        if r.returncode != 0:
            sys.exit("sriov_bench: %s %s failed: %s %s" % (way, cmd, r.stdout.decode()[-300:],
                                                          r.stderr.decode()[-300:]))
        times[(way, cmd)].append(ms)

    for i in range(a.count):
        # Alternating which goes first: neither always meets the other's leftovers.
        order = ["plumb", "host-device", "floor"]
        order = order[i % 3:] + order[:i % 3]
        for way in order:
            call(way, "ADD", i)
            call(way, "DEL", i)
    print("SR-IOV: %d ADD/DEL rounds of one VF stand-in (veth) into a fresh netns each, "
          "no VF settings, IPAM on both (plumb built-in, host-device host-local)" % a.count)
    print("%-6s %-12s %9s %9s %9s" % ("", "plugin", "p50 ms", "p99 ms", "mean ms"))
    for cmd in ("ADD", "DEL"):
        for way in ("plumb", "host-device", "floor"):
            v = times[(way, cmd)]
            print("%-6s %-12s %9.2f %9.2f %9.2f" % (cmd, way, pct(v, 50), pct(v, 99),
                                                   sum(v) / len(v)))
    for cmd, target in (("ADD", 0.3), ("DEL", 0.7)):
        r50 = pct(times[("plumb", cmd)], 50) / pct(times[("host-device", cmd)], 50)
        r99 = pct(times[("plumb", cmd)], 99) / pct(times[("host-device", cmd)], 99)
        floor = pct(times[("floor", cmd)], 50)
        print("%s plumb/host-device: p50 %.2fx, p99 %.2fx (target <= %.1fx: %s); floor/host-device "
              "%.2fx, plumb over the floor %+.2f ms p50" %
              (cmd, r50, r99, target, "PASS" if r50 <= target else "MISS",
               floor / pct(times[("host-device", cmd)], 50),
               pct(times[("plumb", cmd)], 50) - floor))


if __name__ == "__main__":
    main()
