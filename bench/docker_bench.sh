#!/bin/bash
# Docker benchmark: `docker run --rm --network N busybox true` on a plumb network against the
# same on Docker's built-in bridge driver, alternated in one run; then plumb's own handler
# latency for CreateEndpoint + Join, called directly on a daemon in a namespace of its own.
#
#   bench/docker_bench.sh [path-to-plumb]        (default: build/plugin/plumb in this checkout)
#
# Needs root, docker.io, busybox-static, python3. dockerd is started when none answers (and
# stopped after). The driver is registered under this run's own name; the networks use
# 198.18.30.0/24 (plumb) and 198.18.31.0/24 (bridge); everything is removed at the end.
# Knobs: DOCKER_BENCH_RUNS (20), DOCKER_BENCH_CALLS (300).
# Exit status: 0 when the benchmark ran (a report, whether targets are met or not).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PLUMB=$(readlink -f "${1:-$HERE/../build/plugin/plumb}")
RUNS=${DOCKER_BENCH_RUNS:-20}
CALLS=${DOCKER_BENCH_CALLS:-300}
[[ $(id -u) == 0 ]] || { echo "docker_bench: must run as root" >&2; exit 2; }
[[ -x $PLUMB ]] || { echo "docker_bench: $PLUMB is not executable" >&2; exit 2; }

TMP=$(mktemp -d /tmp/plumb-docker-bench.XXXXXX)
# shellcheck source=../scripts/docker-env.sh
. "$HERE/../scripts/docker-env.sh"
DRV="plumbbench$$"
SOCK="/run/docker/plugins/$DRV.sock"
IMAGE="plumb-bench-bb:$$"
NS="plumb-bench-docker$$"
PIDS=()

cleanup() {
  set +e
  docker network rm pbench-plumb pbench-ref >/dev/null 2>&1
  for i in 1 2 3 4 5; do docker rm -f "pbench-late$i" >/dev/null 2>&1; done
  ip link del "brb$$" 2>/dev/null && "$PLUMB" --state-dir "$TMP/cli" doctor --fix >/dev/null 2>&1
  docker rmi "$IMAGE" >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -f "$SOCK"
  [ -e "/run/netns/$NS" ] && ip netns del "$NS"
  release_dockerd
  restore_sysctls
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

save_sysctls
ensure_dockerd
import_busybox "$IMAGE"
"$PLUMB" daemon --socket "$SOCK" --state-dir "$TMP/state" --log-level warn 2>"$TMP/plumb.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$SOCK" ] && break; sleep 0.05; done
docker network create -d "$DRV" --subnet 198.18.30.0/24 pbench-plumb >/dev/null
docker network create -d bridge --subnet 198.18.31.0/24 pbench-ref >/dev/null

echo "# part 1: docker run --rm --network N $IMAGE true, $RUNS runs each, alternated"
run_once() { # NETWORK -> milliseconds
  local t0 t1
  t0=$(date +%s%N)
  docker run --rm --network "$1" "$IMAGE" true >/dev/null
  t1=$(date +%s%N)
  echo $(((t1 - t0) / 1000))
}
for _ in 1 2; do run_once pbench-plumb >/dev/null; run_once pbench-ref >/dev/null; done
for _ in $(seq "$RUNS"); do
  run_once pbench-plumb >>"$TMP/plumb.us"
  run_once pbench-ref >>"$TMP/ref.us"
done

echo "# part 2: handler latency, $CALLS x (CreateEndpoint + Join + Leave + DeleteEndpoint)"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip netns exec "$NS" "$PLUMB" daemon --socket "$TMP/direct.sock" --state-dir "$TMP/direct" \
  --log-level warn 2>"$TMP/direct.log" &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$TMP/direct.sock" ] && break; sleep 0.05; done
python3 "$HERE/docker_bench.py" "$TMP" "$CALLS"

# The command line's wait for a container that is still starting is on dockerd's event stream,
# not a polling loop: what it costs while it waits is CPU time, a figure (not a test's check).
echo "# part 3: plumb <bridge> <container> <ip> for a container started 1.5 s later, 5 runs"
BR="brb$$"
for i in 1 2 3 4 5; do
  docker create --name "pbench-late$i" --network none "$IMAGE" sleep 60 >/dev/null
  (sleep 1.5; docker start "pbench-late$i" >/dev/null) &
  starter=$!
  /usr/bin/time -f '%e %U %S' -o "$TMP/late$i.time" \
    "$PLUMB" --state-dir "$TMP/cli" "$BR" "pbench-late$i" "198.18.33.$((i + 1))/24" >/dev/null
  wait "$starter"
  "$PLUMB" --state-dir "$TMP/cli" del "pbench-late$i" >/dev/null
  docker rm -f "pbench-late$i" >/dev/null
done
cat "$TMP"/late*.time | python3 -c '
import statistics, sys
rows = [[float(x) for x in line.split()] for line in sys.stdin if line.strip()]
wall = statistics.median(r[0] for r in rows)
cpu = statistics.median(r[1] + r[2] for r in rows)
used = f"{cpu * 1000:.0f} ms" if cpu > 0 else "under 10 ms (the resolution of time(1))"
print(f"  waited (wall) median {wall:.2f} s for a start 1.5 s later; CPU (user+sys) median "
      f"{used}: {100 * cpu / wall:.1f}% of one core while waiting")'
# The command line leaves its bridge as pipework does: it goes, and doctor takes its rules.
ip link del "$BR" 2>/dev/null || true
"$PLUMB" --state-dir "$TMP/cli" doctor --fix >/dev/null || true
