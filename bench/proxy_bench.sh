#!/bin/bash
# Proxy benchmark: plumb's forwarder against socat (what Docker's ambassadors ran) and HAProxy
# 2.6 in TCP mode with splice, and against no proxy at all, in one run.
#
#   bench/proxy_bench.sh [path-to-plumb]        (default: build/plugin/plumb in this checkout)
#
# Everything runs on the loopback of one network namespace made here (plumb-pbench), so the
# machine's own loopback and ports are never used; the EXIT trap stops every process and
# removes it. Needs root, iperf3, wrk, socat, haproxy (scripts/install-deps.sh installs them).
# See bench/README.md for what each part measures.
#
# Knobs (environment): PROXY_BENCH_SECONDS (3: length of each iperf3 and wrk run),
# PROXY_BENCH_ROUNDS (3: runs per configuration, interleaved; medians are reported),
# PROXY_BENCH_IDLE (9000: idle connections held through plumb), PROXY_BENCH_FLOWS (9000 UDP flows),
# PROXY_BENCH_FLOOR (the floor program; default: bench/splice_proxy beside the plumb build).
set -euo pipefail

NS=plumb-pbench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=${1:-$HERE/../build/plugin/plumb}

die() { echo "proxy_bench: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "must run as root (it creates a network namespace)"
[[ -x $PLUMB ]] || die "plumb binary not found or not executable: $PLUMB"
PLUMB=$(readlink -f "$PLUMB")
FLOOR=${PROXY_BENCH_FLOOR:-$(dirname "$PLUMB")/../bench/splice_proxy}
[[ -x $FLOOR ]] || die "floor program $FLOOR missing (it is built with plumb; or set PROXY_BENCH_FLOOR)"
FLOOR=$(readlink -f "$FLOOR")
for t in iperf3 wrk socat haproxy python3; do
  command -v "$t" >/dev/null || die "$t missing (scripts/install-deps.sh installs it)"
done
if ip netns list | awk '{print $1}' | grep -qx "$NS"; then
  die "namespace $NS already exists (another run, or a crashed one)"
fi

TMP=$(mktemp -d /tmp/plumb-pbench.XXXXXX)
# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  # Whatever the driver started runs in the namespace: stop it by pid, then remove it.
  for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
  ip netns del "$NS" 2>/dev/null
  rm -rf -- "$TMP"
  if ip netns list | awk '{print $1}' | grep -qx "$NS"; then
    echo "proxy_bench: ERROR: namespace $NS left behind" >&2
    rc=3
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NS"
ip -n "$NS" link set lo up

set +e
ip netns exec "$NS" python3 "$HERE/proxy_bench.py" --plumb "$PLUMB" --floor "$FLOOR" --tmp "$TMP" \
  --seconds "${PROXY_BENCH_SECONDS:-3}" --rounds "${PROXY_BENCH_ROUNDS:-3}" \
  --idle "${PROXY_BENCH_IDLE:-9000}" --flows "${PROXY_BENCH_FLOWS:-9000}"
rc=$?
set -e
exit $rc
