#!/usr/bin/env bash
# clang-format (check only) and clang-tidy over plumb's own sources.
set -euo pipefail
build=${1:-build}  # its compile database; the second argument: the fuzz build's
files=$(git ls-files '*.cc' '*.h')
echo "== clang-format"
clang-format --dry-run -Werror $files
echo "== clang-tidy"
git ls-files 'base/*.cc' 'netlink/*.cc' 'ovs/*.cc' 'etcd/*.cc' 'plugin/*.cc' | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet
# The fuzz targets exist only in the clang build (-DPLUMB_FUZZ=ON): its compile database.
fuzz_build=${2:-}
if [ -n "$fuzz_build" ] && [ -f "$fuzz_build/compile_commands.json" ]; then
  git ls-files 'fuzz/*.cc' | xargs -P "$(nproc)" -n 4 clang-tidy -p "$fuzz_build" --quiet
else
  echo "lint: fuzz/*.cc not checked by clang-tidy (no fuzz build's compile database given)"
fi
echo "lint clean"
