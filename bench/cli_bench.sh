#!/bin/bash
# Command-line benchmark: attaching a running guest to a bridge with a static address, with
# `plumb <bridge> <guest> <ip>/<len>` against the same done by `ip` commands one after another
# (pipework's way: veth pair, master, up, move, rename, address, up), alternated, in one run.
#
#   bench/cli_bench.sh [path-to-plumb]       (default: build/plugin/plumb in this checkout)
#
# Needs root, iproute2, python3. Everything happens in namespaces made here (plumb-bench-cli-*):
# a "host" holding the bridges, and one guest namespace per attachment. Addresses: 198.18.64.0/18.
# Knob: CLI_BENCH_COUNT (50). Exit status 0 when it ran (a report, targets met or not).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=$(readlink -f "${1:-$HERE/../build/plugin/plumb}")
COUNT=${CLI_BENCH_COUNT:-50}
[[ $(id -u) == 0 ]] || { echo "cli_bench: must run as root" >&2; exit 2; }
[[ -x $PLUMB ]] || { echo "cli_bench: $PLUMB is not executable" >&2; exit 2; }
P=plumb-bench-cli
HOST=$P-host
TMP=$(mktemp -d /tmp/$P.XXXXXX)

cleanup() {
  set +e
  ip netns list | awk '{print $1}' | grep "^$P-" | sed 's/^/netns del /' | ip -force -batch - >/dev/null 2>&1
  rm -rf "$TMP"
}
trap cleanup EXIT
cleanup
mkdir -p "$TMP"

ip netns add "$HOST"
ip -n "$HOST" link set lo up
for br in brplumb brip; do
  ip -n "$HOST" link add "$br" type bridge
  ip -n "$HOST" link set "$br" up
done
for i in $(seq 0 $((COUNT + 1))); do
  ip netns add "$P-p$i"
  ip netns add "$P-i$i"
done
# The measured loop runs inside the stand-in host, as both tools would run on a real one:
# plumb and the host-side `ip` commands directly, the guest-side ones through `ip netns exec`
# (pipework's way). Two warm-up rounds, then COUNT measured; which side goes first alternates
# from round to round. plumb may leave a helper behind (its store's checkpoint): it is waited
# for, untimed, before the next measurement.
ip netns exec "$HOST" bash -s "$PLUMB" "$TMP" "$P" "$COUNT" <<'LOOP'
set -euo pipefail
PLUMB=$1 TMP=$2 P=$3 COUNT=$4
# Times: bash's EPOCHREALTIME in microseconds (no date process in the measurement).
ip_attach() { # GUEST ADDR N: pipework's sequence
  local g=$1 a=$2 h="vh$3" c="vc$3"
  ip link add name "$h" mtu 1500 type veth peer name "$c" mtu 1500
  ip link set "$h" master brip
  ip link set "$h" up
  ip link set "$c" netns "$g"
  ip netns exec "$g" ip link set "$c" name eth1
  ip netns exec "$g" ip addr add "$a" dev eth1
  ip netns exec "$g" ip link set eth1 up
}
plumb_side() { # I A
  local t0 t1
  t0=${EPOCHREALTIME/./}
  "$PLUMB" --state-dir "$TMP/state" brplumb "$P-p$1" "198.18.$((64 + $2)).$3/18" >/dev/null
  t1=${EPOCHREALTIME/./}
  while pgrep -x plumb >/dev/null; do sleep 0.001; done
  [ "$1" -lt 2 ] || echo $((t1 - t0)) >>"$TMP/plumb.us"
}
ip_side() { # I A
  local t0 t1
  t0=${EPOCHREALTIME/./}
  ip_attach "$P-i$1" "198.18.$((96 + $2)).$3/18" "$1"
  t1=${EPOCHREALTIME/./}
  [ "$1" -lt 2 ] || echo $((t1 - t0)) >>"$TMP/ip.us"
}
for i in $(seq 0 $((COUNT + 1))); do
  a=$((i / 200))
  b=$((i % 200 + 2))
  if [ $((i % 2)) = 0 ]; then
    plumb_side "$i" "$a" "$b"
    ip_side "$i" "$a" "$b"
  else
    ip_side "$i" "$a" "$b"
    plumb_side "$i" "$a" "$b"
  fi
done
LOOP
# Both did the same, every time: each guest has its address on an eth1 that is up.
for i in $(seq 0 $((COUNT + 1))); do
  a=$((i / 200))
  b=$((i % 200 + 2))
  for side in "p:$((64 + a))" "i:$((96 + a))"; do
    g="$P-${side%%:*}$i" want="198.18.${side#*:}.$b/18"
    ip -n "$g" -4 -o addr show dev eth1 up | grep -q " $want " ||
      { echo "cli_bench: $g has no $want on an up eth1" >&2; exit 1; }
  done
done

python3 - "$TMP" "$COUNT" <<'PY'
import statistics, sys
tmp, n = sys.argv[1], int(sys.argv[2])
def read(name):
    return [int(x) / 1000.0 for x in open(f"{tmp}/{name}").read().split()]
p, i = read("plumb.us"), read("ip.us")
mp, mi = statistics.median(p), statistics.median(i)
print(f"attach a guest to a bridge, static address, median of {n}:")
print(f"  plumb {mp:.2f} ms, ip sequence (7 commands) {mi:.2f} ms, ratio {mp / mi:.3f} "
      f"(target <= 0.2) -> {'PASS' if mp / mi <= 0.2 else 'MISS'}")
print(f"  plumb p10/p90 {sorted(p)[n // 10]:.2f}/{sorted(p)[n * 9 // 10]:.2f} ms; "
      f"ip p10/p90 {sorted(i)[n // 10]:.2f}/{sorted(i)[n * 9 // 10]:.2f} ms")
PY
