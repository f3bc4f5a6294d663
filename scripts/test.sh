#!/usr/bin/env bash
# Runs every test tier from a build directory: unit (as an unprivileged user when we are root,
# to prove it needs no privilege), then netns and e2e (root). Then the same unit and netns
# tiers under ASan/UBSan. Usage: scripts/test.sh BUILD_DIR [ASAN_BUILD_DIR]
set -euo pipefail
build=$(realpath "${1:?usage: test.sh BUILD_DIR [ASAN_BUILD_DIR]}")
asan=${2:+$(realpath "$2")}
jobs=$(nproc)
# The netns tests wait (on daemons, a DHCP lease's renewal, etcd, the kernel) far more than they
# compute: two at a time on two cores, the CPU was a third busy, and the two netns tiers took
# 95 and 252 s; four at a time, 68 and 184 s. So twice as many run as there are cores.
wait_jobs=$((jobs * 2))

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

# What the tests must leave as they found it, in the root namespace and on the host: links,
# namespaces, addresses, routes and rules, nftables' and iptables' rules, the forwarding sysctls,
# plumb's runtime directory, the hostname and resolv.conf, and the daemons the tests start. Taken now
# and after; any difference fails the run. (IPv6 routes lose their RA lifetimes, which count
# down by themselves.)
snapshot() {
  echo "-- links"; ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort
  echo "-- namespaces"; ip netns list | awk '{print $1}' | sort
  echo "-- addresses"; ip -o addr show | awk '{print $2, $3, $4}' | sort
  echo "-- routes"; { ip route show table all; ip -6 route show table all; } |
    sed -E 's/ expires [0-9]+sec//' | sort
  echo "-- rules"; ip rule; ip -6 rule
  # Every table's chains and rules (no handles or counters are printed), and iptables' own.
  echo "-- nftables"; nft list ruleset 2>/dev/null
  echo "-- iptables"
  { iptables-save 2>/dev/null; ip6tables-save 2>/dev/null; } | grep -v '^#' |
    sed -E 's/\[[0-9]+:[0-9]+\]//'

  echo "-- sysctls"
  local k
  for k in net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding \
    net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
    echo "$k=$(sysctl -n "$k" 2>/dev/null || echo absent)"
  done
  echo "-- /run/plumb"; find /run/plumb 2>/dev/null | sort
  echo "-- host"; hostname; md5sum /etc/resolv.conf
  # Running processes by name (a zombie has ended: init here may reap it late or never).
  echo "-- daemons"
  local procs
  procs=$(ps -e -o stat=,comm= | awk '$1 !~ /^Z/ {print $2}')
  for k in dockerd containerd containerd-shim runc conmon podman ovsdb-server ovs-vswitchd etcd \
    dnsmasq udhcpc dhcpcd dhclient haproxy socat iperf3; do
    echo "$k $(grep -cx -- "$k" <<<"$procs" || true)"
  done
  # plumb's own long-running forms: a daemon or a proxy a test forgot, a resident CNI service
  # whose state directory is still there.
  echo "plumb daemon/proxy $(pgrep -fc '^[^ ]*plumb (daemon|proxy)( |$)' || true)"
  echo "plumb cni-resident $(pgrep -fc '^plumb cni-resident ' || true)"
}
host_before=$(snapshot)
had_run_plumb=no
[ -e /run/plumb ] && had_run_plumb=yes

# Every tier runs, and the skip count and the leak check after them, whatever failed: a
# failing tier must not hide a skip or a leak.
failed_tiers=""
tier() { # NAME COMMAND...
  local name=$1
  shift
  "$@" || failed_tiers+=" $name"
}
echo "== unit"
if [ "$(id -u)" = 0 ] && id nobody >/dev/null 2>&1; then
  # ctest writes into the build tree; run the unit binary itself as nobody.
  chmod -R o+rX "$build/tests/unit" 2>/dev/null || true
  tier "unit(as nobody)" su nobody -s /bin/sh -c "cd /tmp && '$build/tests/unit/unit_tests' --gtest_brief=1"
fi
tier unit counted ctest --test-dir "$build" -L unit --output-on-failure -j "$jobs"
echo "== netns"
tier netns counted ctest --test-dir "$build" -L netns --output-on-failure -j "$wait_jobs"
echo "== e2e"
tier e2e counted ctest --test-dir "$build" -L e2e --output-on-failure
if [ -n "$asan" ]; then
  echo "== unit and netns under ASan/UBSan"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    tier "unit+netns(ASan/UBSan)" counted ctest --test-dir "$asan" -L 'unit|netns' --output-on-failure -j "$wait_jobs"
fi
status=0
read -r -a skipped_list <<<"$skipped"
echo "== skipped tests: ${#skipped_list[@]}${skipped_list[*]:+ (${skipped_list[*]})}"
if [ "${#skipped_list[@]}" != 0 ] && [ "${PLUMB_ALLOW_SKIPS:-0}" != 1 ]; then
  echo "tests were skipped: install what they need (scripts/install-deps.sh) or set PLUMB_ALLOW_SKIPS=1" >&2
  status=1
fi
echo "== leak check: the host as it was before the tests"
# /run/plumb itself (its firewall lock, its empty dhcp directory) is plumb's to make once; when
# the tests made it, it goes now, and only leftovers inside it count.
if [ "$had_run_plumb" = no ] && [ -d /run/plumb ]; then
  rmdir /run/plumb/dhcp 2>/dev/null || true
  rm -f /run/plumb/firewall.lock
  rmdir /run/plumb 2>/dev/null || true
fi
# A resident CNI service leaves within a second of its state directory's removal (its socket
# gone); one still running after 10 s has a directory a test left behind, and is a leak.
for _ in $(seq 100); do
  pgrep -f '^plumb cni-resident ' >/dev/null || break
  sleep 0.1
done
host_after=$(snapshot)
# A sysctl "absent" before and present after is a module loaded (br_netfilter): not compared.
changed=$(diff <(echo "$host_before") <(echo "$host_after") |
  grep -vE '^[<>] net\.bridge\.bridge-nf-call-ip6?tables=' | grep -E '^[<>]' || true)
for k in net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables; do
  b=$(grep "^$k=" <<<"$host_before")
  a=$(grep "^$k=" <<<"$host_after")
  [ "$b" = "$a" ] || [ "$b" = "$k=absent" ] || changed+=$'\n'"< $b"$'\n'"> $a"
done
if [ -n "$changed" ]; then
  echo "the tests left the host changed (< before, > after):" >&2
  echo "$changed" >&2
  status=1
else
  echo "the host is as it was"
fi
if [ -n "$failed_tiers" ]; then
  echo "tiers that failed:$failed_tiers" >&2
  exit 1
fi
[ "$status" = 0 ] || exit 1
echo "all tiers passed"
