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
  docker rmi "$IMAGE" >/dev/null 2>&1
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
  rm -f "$SOCK"
  [ -e "/run/netns/$NS" ] && ip netns del "$NS"
  release_dockerd
  restore_sysctls
  rm -rf "$TMP"
}
trap cleanup EXIT

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
