#!/bin/bash
# CNI benchmark: plumb against Debian's reference bridge + host-local, side by side in one run.
#
#   bench/cni_bench.sh [path-to-plumb]        (default: build/plugin/plumb in this checkout)
#
# Needs root. Everything happens inside namespaces this script creates: one "host" netns per
# instance (plumb and the reference with ipMasq off and on, the kernel floor, and the
# 1,000-attachment bridges of part 3; every exec runs inside its host netns) and
# container namespaces plumb-bench-c<N>. Only 198.18.0.0/15 addresses are used; the root netns
# and eth0 are never touched. State (plumb's dataDir, host-local's dataDir) lives in a temp dir.
# The EXIT trap removes all of it. See bench/README.md.
#
# Knobs (environment): CNI_BENCH_COUNT (200), CNI_BENCH_CONCURRENCY (32), CNI_BENCH_ROUNDS (3),
# CNI_BENCH_SCALE_HIGH (1000; 0 skips part 3), CNI_BENCH_SCALE_SAMPLES (50),
# CNI_BENCH_REF_SCALE (1; 0 measures part 3 for plumb only), CNI_BENCH_BUDGET (480 s from the
# start: the reference fill to 1,000 gives up after this), CNI_BENCH_JSON (path: raw samples as
# JSON), CNI_BENCH_REF_DIR (/usr/lib/cni), CNI_BENCH_FLOOR_DIR (where kernel_floor and
# empty_cxx are; default: the bench/ folder of plumb's build tree), CNI_BENCH_PLUMB_LOG (path
# prefix: plumb writes its debug log, with each step's time, to PREFIX.<instance>).
#
# Exit status: 0 when the benchmark ran (whether targets are met or not: it is a report);
# non-zero when something broke (a plugin invocation failed, setup failed, or namespaces leaked).
set -euo pipefail

PREFIX=plumb-bench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=${1:-$HERE/../build/plugin/plumb}
REF_DIR=${CNI_BENCH_REF_DIR:-/usr/lib/cni}
COUNT=${CNI_BENCH_COUNT:-200}
PY=/usr/bin/python3

die() { echo "cni_bench: $*" >&2; exit 2; }

[[ $(id -u) == 0 ]] || die "must run as root (it creates network namespaces)"
[[ -x $PLUMB ]] || die "plumb binary not found or not executable: $PLUMB"
PLUMB=$(readlink -f "$PLUMB")
# The floors (bench/floor/, built with plumb): next to the binary's build tree by default.
FLOOR_DIR=${CNI_BENCH_FLOOR_DIR:-$(dirname "$PLUMB")/../bench}
for f in kernel_floor empty_cxx; do
  [[ -x $FLOOR_DIR/$f ]] || die "floor program $FLOOR_DIR/$f missing (it is built with plumb; or set CNI_BENCH_FLOOR_DIR)"
done
FLOOR_DIR=$(readlink -f "$FLOOR_DIR")
for p in bridge host-local; do
  [[ -x $REF_DIR/$p ]] || die "reference plugin $REF_DIR/$p missing (apt-get install containernetworking-plugins)"
done
[[ -x $PY ]] || die "$PY missing"
command -v ip >/dev/null || die "ip (iproute2) missing"
command -v iptables >/dev/null || die "iptables missing (the reference bridge plugin's ipMasq needs it)"

if ip netns list | awk '{print $1}' | grep -q "^${PREFIX}-"; then
  die "namespaces named ${PREFIX}-* already exist (another run, or a crashed one). Remove them with:
  ip netns list | awk '{print \$1}' | grep '^${PREFIX}-' | xargs -rn1 ip netns del"
fi

TMP=$(mktemp -d "/tmp/${PREFIX}.XXXXXX")

# shellcheck disable=SC2317  # called from the EXIT trap
delete_namespaces() {
  local batch
  batch=$(ip netns list | awk '{print $1}' | grep "^${PREFIX}-" | sed 's/^/netns del /' || true)
  [[ -z $batch ]] || ip -force -batch - <<<"$batch" >/dev/null 2>&1 || true
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  if [[ -n ${DRIVER_PID:-} ]] && kill -0 "$DRIVER_PID" 2>/dev/null; then
    # Interrupted: stop the driver (its workers exit when their stdin closes), then clean up.
    kill -TERM "$DRIVER_PID" 2>/dev/null
    wait "$DRIVER_PID" 2>/dev/null
    sleep 0.5
  fi
  delete_namespaces
  rm -rf -- "$TMP"
  local left
  left=$(ip netns list | awk '{print $1}' | grep "^${PREFIX}-" || true)
  if [[ -n $left ]]; then
    echo "cni_bench: ERROR: namespaces left behind: ${left//$'\n'/ }" >&2
    rc=3
  else
    echo "cni_bench: cleaned up: no ${PREFIX}-* namespace left, temp dir removed" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Namespaces (not timed): a host per instance (see INSTANCES in cni_bench.py), COUNT
# containers, created in one `ip -batch`.
HOSTS="plumb-nm ref-nm plumb ref floor plumb-hl plumb-nm-big plumb-big ref-nm-big floor-big"
{
  for h in $HOSTS; do echo "netns add ${PREFIX}-host-$h"; done
  for ((i = 0; i < COUNT; i++)); do echo "netns add ${PREFIX}-c$i"; done
} | ip -batch -
for h in $HOSTS; do ip -n "${PREFIX}-host-$h" link set lo up; done

REF_VERSION=$(dpkg-query -W -f='containernetworking-plugins ${Version}' containernetworking-plugins 2>/dev/null || echo "version unknown")
LOAD=$(cut -d' ' -f1-3 /proc/loadavg)

echo "cni_bench: plumb=$PLUMB reference=$REF_DIR/bridge+host-local ($REF_VERSION); $COUNT container namespaces ready; temp dir $TMP" >&2

# The driver runs in the background so that a signal to this script runs the EXIT trap at once.
set +e
"$PY" "$HERE/cni_bench.py" \
  --plumb "$PLUMB" --ref-dir "$REF_DIR" --ref-version "$REF_VERSION" --floor-dir "$FLOOR_DIR" \
  --tmp "$TMP" --prefix "$PREFIX" \
  --count "$COUNT" \
  --concurrency "${CNI_BENCH_CONCURRENCY:-32}" \
  --rounds "${CNI_BENCH_ROUNDS:-3}" \
  --scale-high "${CNI_BENCH_SCALE_HIGH:-1000}" \
  --scale-samples "${CNI_BENCH_SCALE_SAMPLES:-50}" \
  --ref-scale "${CNI_BENCH_REF_SCALE:-1}" \
  --budget "${CNI_BENCH_BUDGET:-480}" \
  --load-start "$LOAD" \
  --json "${CNI_BENCH_JSON:-}" \
  --plumb-log "${CNI_BENCH_PLUMB_LOG:-}" </dev/null &
DRIVER_PID=$!
wait "$DRIVER_PID"
rc=$?
DRIVER_PID=
set -e
exit "$rc"
