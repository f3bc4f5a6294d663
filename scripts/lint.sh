#!/usr/bin/env bash
# clang-format (check only) and clang-tidy over plumb's own sources.
set -euo pipefail
build=${1:-build}
files=$(git ls-files '*.cc' '*.h')
echo "== clang-format"
clang-format --dry-run -Werror $files
echo "== clang-tidy"
git ls-files 'base/*.cc' 'netlink/*.cc' 'ovs/*.cc' 'etcd/*.cc' 'plugin/*.cc' | xargs -P "$(nproc)" -n 4 clang-tidy -p "$build" --quiet
echo "lint clean"
