#!/usr/bin/env bash
# Runs every test tier from a build directory: unit (as an unprivileged user when we are root,
# to prove it needs no privilege), then netns and e2e (root). Then the same unit and netns
# tiers under ASan/UBSan. Usage: scripts/test.sh BUILD_DIR [ASAN_BUILD_DIR]
set -euo pipefail
build=$(realpath "${1:?usage: test.sh BUILD_DIR [ASAN_BUILD_DIR]}")
asan=${2:+$(realpath "$2")}
jobs=$(nproc)

# A skipped test is not a pass: every test's prerequisites are installed by
# scripts/install-deps.sh, so under `make test` (and CI) a skip means coverage silently went
# missing. Skips are counted and fail the run; PLUMB_ALLOW_SKIPS=1 lets a developer without
# docker or dnsmasq see the rest pass.
skipped=""  # their names
counted() {
  local log rc
  log=$(mktemp)
  set +e
  "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  set -e
  skipped+=" $(grep -E '\*\*\*Skipped|\*\*\*Not Run' "$log" |
    sed -E 's/.*Test +#[0-9]+: ([^ ]+).*/\1/' | tr '\n' ' ' || true)"
  rm -f "$log"
  return "$rc"
}

echo "== unit"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  # ctest writes into the build tree; run the unit binary itself as nobody.
  chmod -R o+rX "$build/tests/unit" 2>/dev/null || true
  su nobody -s /bin/sh -c "cd /tmp && '$build/tests/unit/unit_tests' --gtest_brief=1"
fi
counted ctest --test-dir "$build" -L unit --output-on-failure -j "$jobs"
echo "== netns"
counted ctest --test-dir "$build" -L netns --output-on-failure -j "$jobs"
echo "== e2e"
counted ctest --test-dir "$build" -L e2e --output-on-failure
if [ -n "$asan" ]; then
  echo "== unit and netns under ASan/UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    counted ctest --test-dir "$asan" -L 'unit|netns' --output-on-failure -j "$jobs"
fi
read -r -a skipped_list <<<"$skipped"
echo "== skipped tests: ${#skipped_list[@]}${skipped_list[*]:+ (${skipped_list[*]})}"
if [ "${#skipped_list[@]}" != 0 ] && [ "${PLUMB_ALLOW_SKIPS:-0}" != 1 ]; then
  echo "tests were skipped: install what they need (scripts/install-deps.sh) or set PLUMB_ALLOW_SKIPS=1" >&2
  exit 1
fi
echo "== leak check: the root namespace holds nothing a test made"
left=$(ip -o link | grep -cE ': ((plm|plt|plc)[0-9a-f]{8}|pbr-)' || true)
ns=$(ip netns list | grep -cE '^plumb-(t|e2e)' || true)
if [ "$left" != 0 ] || [ "$ns" != 0 ]; then
  echo "leaked: $left links, $ns namespaces" >&2
  exit 1
fi
echo "all tiers passed"
