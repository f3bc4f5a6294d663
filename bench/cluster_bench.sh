#!/bin/bash
# Cluster IPAM benchmark: ADDs with the cluster IPAM (blocks claimed in a real three-member
# etcd 3.4) against plumb's local IPAM, in one run; see bench/README.md.
#
#   bench/cluster_bench.sh [path-to-plumb]     (default: build/plugin/plumb of this checkout)
#
# Needs root. Everything happens in namespaces named plumb-cbench-* (the wire with the etcd
# members on 198.18.251.254, two hosts, the containers), removed at the end; etcd's data lives
# in a temp dir. Knobs: CLUSTER_BENCH_COUNT (200 sequential ADDs per phase),
# CLUSTER_BENCH_ROUNDS (3).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=${1:-$HERE/../build/plugin/plumb}
[[ $(id -u) == 0 ]] || { echo "cluster_bench: must run as root" >&2; exit 2; }
[[ -x $PLUMB ]] || { echo "cluster_bench: no plumb binary at $PLUMB" >&2; exit 2; }
command -v etcd >/dev/null || { echo "cluster_bench: etcd missing (apt-get install etcd-server)" >&2; exit 2; }
command -v etcdctl >/dev/null || { echo "cluster_bench: etcdctl missing (apt-get install etcd-client)" >&2; exit 2; }
if ip netns list | awk '{print $1}' | grep -q '^plumb-cbench-'; then
  echo "cluster_bench: plumb-cbench-* namespaces exist (another run?)" >&2
  exit 2
fi
/usr/bin/python3 "$HERE/cluster_bench.py" "$(readlink -f "$PLUMB")"
left=$(ip netns list | awk '{print $1}' | grep -c '^plumb-cbench-' || true)
[[ $left == 0 ]] || { echo "cluster_bench: $left namespaces leaked" >&2; exit 1; }
