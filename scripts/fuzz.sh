#!/usr/bin/env bash
# Runs every libFuzzer target of a build made with -DPLUMB_FUZZ=ON (the sanitizer build
# `make test` makes) for SECONDS each (default 60), as many at once as there are cores, each
# from a copy of its seed corpus in fuzz/corpus/ (the repository's seeds are not changed).
# Prints each target's executions and corpus sizes; fails when any target crashes, leaks,
# times out or runs out of memory, naming the input that did it (kept under the work dir).
# Usage: scripts/fuzz.sh BUILD_DIR [SECONDS]
set -euo pipefail
build=$(realpath "${1:?usage: fuzz.sh BUILD_DIR [SECONDS]}")
seconds=${2:-60}
src=$(cd "$(dirname "$0")/.." && pwd)
targets=$(find "$build/fuzz" -maxdepth 1 -type f -name 'fuzz_*' -perm -u+x 2>/dev/null | sort)
if [ -z "$targets" ]; then
  echo "fuzz: no fuzz targets in $build/fuzz (configure with CXX=clang++ -DPLUMB_FUZZ=ON)" >&2
  exit 1
fi
work=${PLUMB_FUZZ_WORK:-$(mktemp -d /tmp/plumb-fuzz.XXXXXX)}
mkdir -p "$work"
jobs=$(nproc)

run_one() {
  local bin=$1 name corpus seeds out rc
  name=$(basename "$bin" | sed 's/^fuzz_//')
  seeds="$src/fuzz/corpus/$name"
  corpus="$work/$name/corpus"
  out="$work/$name/log"
  mkdir -p "$corpus" "$work/$name/artifacts"
  [ -d "$seeds" ] && cp -r "$seeds/." "$corpus/"
  set +e
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$work/$name/artifacts/" "$corpus" >"$out" 2>&1
  rc=$?
  set -e
  local runs seeds_n now_n
  runs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$out" | tail -1)
  seeds_n=$(find "$seeds" -type f 2>/dev/null | wc -l)
  now_n=$(find "$corpus" -type f | wc -l)
  if [ "$rc" = 0 ]; then
    echo "fuzz $name: ${runs:-?} executions in ${seconds} s, corpus $seeds_n seeds -> $now_n inputs, no failure"
  else
    echo "fuzz $name: FAILED (exit $rc) after ${runs:-?} executions; input: $(ls "$work/$name/artifacts"/* 2>/dev/null | head -1)"
    grep -E "ERROR|SUMMARY|runtime error|==[0-9]+==" "$out" | head -20 | sed 's/^/  /'
    echo "  full log: $out"
    return 1
  fi
}

failed=0
pids=()
names=()
for bin in $targets; do
  run_one "$bin" >"$work/$(basename "$bin").result" 2>&1 &
  pids+=($!)
  names+=("$(basename "$bin")")
  if [ "${#pids[@]}" -ge "$jobs" ]; then
    wait "${pids[0]}" || failed=1
    cat "$work/${names[0]}.result"
    pids=("${pids[@]:1}")
    names=("${names[@]:1}")
  fi
done
for i in "${!pids[@]}"; do
  wait "${pids[$i]}" || failed=1
  cat "$work/${names[$i]}.result"
done
if [ "$failed" != 0 ]; then
  echo "fuzz: a target failed; its input and log are under $work" >&2
  exit 1
fi
[ -z "${PLUMB_FUZZ_WORK:-}" ] && rm -rf "$work"
echo "fuzz: every target ran ${seconds} s without failure"
