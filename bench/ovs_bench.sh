#!/bin/bash
# OVS benchmark: plumb's OVS mode against pipework's way of doing the same, in one run.
#
#   bench/ovs_bench.sh [path-to-plumb]        (default: build/plugin/plumb in this checkout)
#
# Needs root and openvswitch-switch. A private ovsdb-server and ovs-vswitchd (netdev datapath:
# these machines have no openvswitch module) run in a "host" netns made here, on a database
# and sockets in a temp dir; container namespaces plumb-obench-c<N>. Only 198.18.0.0/15 is
# used; the root netns and eth0 are never touched. The EXIT trap stops the daemons by pid
# and removes everything. See bench/README.md.
#
# Knobs (environment): OVS_BENCH_COUNT (200), OVS_BENCH_SCALE_HIGH (1000; 0 skips part 2),
# OVS_BENCH_SCALE_SAMPLES (50).
set -euo pipefail

PREFIX=plumb-obench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=${1:-$HERE/../build/plugin/plumb}
COUNT=${OVS_BENCH_COUNT:-200}
HIGH=${OVS_BENCH_SCALE_HIGH:-1000}
SAMPLES=${OVS_BENCH_SCALE_SAMPLES:-50}
HOST=$PREFIX-host

die() { echo "ovs_bench: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "must run as root (it creates network namespaces)"
[[ -x $PLUMB ]] || die "plumb binary not found or not executable: $PLUMB"
PLUMB=$(readlink -f "$PLUMB")
for t in ovsdb-server ovs-vswitchd ovs-vsctl ovsdb-tool ip python3; do
  command -v "$t" >/dev/null || die "$t missing (apt-get install openvswitch-switch iproute2)"
done
if ip netns list | awk '{print $1}' | grep -q "^${PREFIX}-"; then
  die "namespaces named ${PREFIX}-* already exist (another run, or a crashed one)"
fi

TMP=$(mktemp -d "/tmp/${PREFIX}.XXXXXX")
# shellcheck source=../tests/e2e/ovs_env.sh
. "$HERE/../tests/e2e/ovs_env.sh"

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  ovs_stop
  local batch
  batch=$(ip netns list | awk '{print $1}' | grep "^${PREFIX}-" | sed 's/^/netns del /' || true)
  [[ -z $batch ]] || ip -force -batch - <<<"$batch" >/dev/null 2>&1
  rm -rf -- "$TMP"
  if ip netns list | awk '{print $1}' | grep -q "^${PREFIX}-"; then
    echo "ovs_bench: ERROR: namespaces left behind" >&2
    rc=3
  else
    echo "ovs_bench: cleaned up: daemons stopped, no ${PREFIX}-* namespace left" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

N=$COUNT
((SAMPLES > N)) && N=$SAMPLES
{
  echo "netns add $HOST"
  echo "netns add ${PREFIX}-floor"
  for ((i = 0; i < N; i++)); do echo "netns add ${PREFIX}-c$i"; done
} | ip -batch -
ip -n "$HOST" link set lo up
ovs_start "$TMP/ovs" "$HOST" 2>/dev/null || die "Open vSwitch did not start: $(cat "$TMP/ovs/start.log")"
OVS_VERSION=$(ovs-vswitchd --version | head -1)

set +e
ip netns exec "$HOST" python3 "$HERE/ovs_bench.py" --plumb "$PLUMB" --tmp "$TMP" \
  --prefix "$PREFIX" --count "$COUNT" --high "$HIGH" --samples "$SAMPLES" \
  --ovs-version "$OVS_VERSION"
rc=$?
set -e
exit $rc
