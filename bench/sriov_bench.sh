#!/bin/bash
# SR-IOV benchmark: plumb's sriov mode against the reference host-device plugin moving the same
# VF stand-in, in one run.
#
#   bench/sriov_bench.sh [path-to-plumb]        (default: build/plugin/plumb in this checkout)
#
# Needs root and the reference CNI plugins (containernetworking-plugins: host-device,
# host-local). No NIC here has SR-IOV: a sysfs-shaped tree (PLUMB_SYSFS_ROOT) describes a PF
# and its VF, whose netdev is a veth end in a "host" netns made here; containers are
# namespaces plumb-sbench-c<N>. host-device is given the same netdev by name (it reads the
# real /sys for PCI addresses). No VF setting is asked of either (host-device sets none, and
# this kernel's veths refuse them). Only 198.18.0.0/15 is used; the root netns and eth0 are
# never touched. The EXIT trap removes everything. See bench/README.md.
#
# The kernel's floor is measured in the same run: kernel_floor with FLOOR_DEVICE moves the same
# device in (renamed on arrival) and gives it an address and up, and moves it back on DEL.
#
# Knobs (environment): SRIOV_BENCH_COUNT (200 ADD/DEL pairs per plugin), SRIOV_BENCH_FLOOR,
# SRIOV_BENCH_PLUMB_LOG (a file for plumb's debug log with its step timings).
set -euo pipefail

PREFIX=plumb-sbench
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=${1:-$HERE/../build/plugin/plumb}
COUNT=${SRIOV_BENCH_COUNT:-200}
HOST=$PREFIX-host
LAN=$PREFIX-lan
CNI_DIR=/usr/lib/cni

die() { echo "sriov_bench: $*" >&2; exit 2; }
[[ $(id -u) == 0 ]] || die "must run as root (it creates network namespaces)"
[[ -x $PLUMB ]] || die "plumb binary not found or not executable: $PLUMB"
PLUMB=$(readlink -f "$PLUMB")
for p in host-device host-local; do
  [[ -x $CNI_DIR/$p ]] || die "$CNI_DIR/$p missing (apt-get install containernetworking-plugins)"
done
command -v python3 >/dev/null || die "python3 missing"
# The floor (bench/floor/kernel_floor.c, built with plumb): next to the binary's build tree.
FLOOR=${SRIOV_BENCH_FLOOR:-$(dirname "$PLUMB")/../bench/kernel_floor}
[[ -x $FLOOR ]] || die "floor program $FLOOR missing (it is built with plumb; or set SRIOV_BENCH_FLOOR)"
FLOOR=$(readlink -f "$FLOOR")
if ip netns list | awk '{print $1}' | grep -q "^${PREFIX}-"; then
  die "namespaces named ${PREFIX}-* already exist (another run, or a crashed one)"
fi

TMP=$(mktemp -d "/tmp/${PREFIX}.XXXXXX")
# shellcheck source=../tests/e2e/sriov_env.sh
. "$HERE/../tests/e2e/sriov_env.sh"

# shellcheck disable=SC2317  # the EXIT trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  set +e
  local batch
  batch=$(ip netns list | awk '{print $1}' | grep "^${PREFIX}-" | sed 's/^/netns del /' || true)
  [[ -z $batch ]] || ip -force -batch - <<<"$batch" >/dev/null 2>&1
  rm -rf -- "$TMP"
  if ip netns list | awk '{print $1}' | grep -q "^${PREFIX}-"; then
    echo "sriov_bench: ERROR: namespaces left behind" >&2
    rc=3
  else
    echo "sriov_bench: cleaned up: no ${PREFIX}-* namespace left" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
  echo "netns add $HOST"
  echo "netns add $LAN"
  for ((i = 0; i < COUNT; i++)); do echo "netns add ${PREFIX}-c$i"; done
} | ip -batch -
ip -n "$HOST" link set lo up
sriov_tree "$TMP/sys" pf0 1 sbvf "$HOST" "$LAN" 198.18.95.1/24 || die "the VF stand-in"

set +e
ip netns exec "$HOST" python3 "$HERE/sriov_bench.py" --plumb "$PLUMB" --tmp "$TMP" \
  --prefix "$PREFIX" --count "$COUNT" --cni-dir "$CNI_DIR" --floor "$FLOOR"
rc=$?
set -e
exit $rc
