#!/bin/bash
# No static initializer in plumb builds the standard streams (base/standard_streams.h): a file
# that includes <iostream> (or a header that does) before that header brings back libstdc++'s
# std::ios_base::Init at every exec, CNI calls included. Run by ctest (label unit) as
# `tests/startup_streams.sh <plumb binary>`.
set -euo pipefail
bin=$1
# The functions that call std::ios_base::Init::Init() (GCC names a file's static initializer
# _GLOBAL__sub_I_..., clang __cxx_global_var_init...).
callers=$(objdump -d --no-show-raw-insn "$bin" |
  awk '/^[0-9a-f]+ <.*>:$/ {fn = $2} /call/ && /<_ZNSt8ios_base4InitC1Ev(@plt)?>/ {print fn}' |
  sort -u)
static=$(grep -E '_GLOBAL__sub_I|__cxx_global_var_init' <<<"$callers" || true)
if [ -n "$static" ]; then
  echo "plumb builds the standard streams at start-up, in: $static" >&2
  echo "(include base/standard_streams.h before <iostream> and the headers that include it)" >&2
  exit 1
fi
# The check sees what it looks for: plumb::standardStreams() builds them (inlined into
# cli::run and daemonMain in an optimised build).
if ! grep -qE '_ZN5plumb15standardStreamsEv|_ZN5plumb3cli3runEiPPc' <<<"$callers"; then
  echo "nothing in plumb builds the standard streams: this check sees nothing" >&2
  exit 1
fi
