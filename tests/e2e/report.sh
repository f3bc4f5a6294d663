# Sourced by the e2e scripts: TAP-like assertions and the "N passed, M failed" count.
PASS=0
FAIL=0

# skip WHY: the script cannot run here (ctest's SKIP_RETURN_CODE 77).
skip() {
  echo "SKIP: $*"
  echo "0 passed, 0 failed"
  exit 77
}
# needs TOOL...: root and every tool, or skip.
needs() {
  [ "$(id -u)" = 0 ] || skip "needs root"
  local tool
  for tool in "$@"; do
    command -v "$tool" >/dev/null 2>&1 || skip "'$tool' is not installed"
  done
}

pass() {
  PASS=$((PASS + 1))
  echo "ok   - $1"
}
failed() {
  FAIL=$((FAIL + 1))
  echo "FAIL - $1"
  local line
  if [ -n "${2:-}" ]; then
    while IFS= read -r line; do echo "       | $line"; done <<<"$2"
  fi
}
# t DESC CMD...: one assertion; CMD's output is shown only when it fails.
t() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then pass "$desc"; else failed "$desc" "$out"; fi
}
# tnot DESC CMD...: CMD must fail.
tnot() {
  local desc=$1 out
  shift
  if out=$("$@" 2>&1); then failed "$desc (succeeded, must fail)" "$out"; else pass "$desc"; fi
}
# terr DESC REGEX CMD...: CMD must fail and say REGEX.
terr() {
  local desc=$1 want=$2 out
  shift 2
  if out=$("$@" 2>&1); then
    failed "$desc (succeeded, must fail)" "$out"
  elif grep -qE -- "$want" <<<"$out"; then
    pass "$desc"
  else
    failed "$desc (wrong message, want /$want/)" "$out"
  fi
}
section() { echo "# $*"; }

# on_exit (trap on_exit EXIT): an abort (set -e, a signal, the ctest timeout) still runs the
# script's own before_cleanup (when it defines one) and cleanup, and still ends with the count.
on_exit() {
  local rc=$?
  if declare -F before_cleanup >/dev/null; then before_cleanup; fi
  cleanup
  echo "FAIL - aborted (exit $rc)"
  echo "$PASS passed, $((FAIL + 1)) failed"
}

# private_mounts SCRIPT ARGS...: for a script whose daemons write under /run and /var/lib
# (podman, containerd, runc). The first call runs the script again in a mount namespace of its
# own (mounts propagate into it, none out), checks afterwards that /etc/resolv.conf,
# /etc/hostname and the hostname are unchanged, and exits with the script's status. In that
# second run it returns, with private tmpfs on /run and /var/lib.
private_mounts() {
  if [ -z "${PLUMB_E2E_PRIVATE_MOUNTS:-}" ]; then
    # The machine's files the script must not change, read before and after.
    local before after rc=0
    before=$(md5sum /etc/resolv.conf /etc/hostname 2>/dev/null; hostname)
    PLUMB_E2E_PRIVATE_MOUNTS=1 unshare -m --propagation slave bash "$@" || rc=$?
    after=$(md5sum /etc/resolv.conf /etc/hostname 2>/dev/null; hostname)
    if [ "$before" != "$after" ]; then
      echo "FAIL - /etc/resolv.conf, /etc/hostname or the hostname changed"
      exit 1
    fi
    echo "ok   - /etc/resolv.conf, /etc/hostname and the hostname are unchanged"
    exit "$rc"
  fi
  # -n: no utab entry (libmount would write one under the machine's /run/mount).
  mount -n -t tmpfs -o mode=755 tmpfs /run
  mount -n -t tmpfs -o mode=755 tmpfs /var/lib
}
