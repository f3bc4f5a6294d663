#!/usr/bin/env bash
# plumb under podman 4.3 with its CNI backend (Debian's podman; `network_backend = "cni"` in a
# private containers.conf, runc, containers from --rootfs): `podman run --network` on a plumb
# conflist with a static IP and MAC (podman passes them in CNI_ARGS), `podman network
# connect/disconnect`, the command line's `podman:NAME` guests, and nothing left after `podman
# rm`.
#
#   sudo bash tests/e2e/podman_e2e.sh build/plugin/plumb
#
# podman and runc write under /run and /var/lib (runc's state, libcni's result cache): the
# script runs in a mount namespace of its own with private tmpfs there, so the machine's own
# are never touched. podman runs in the test's "host" network namespace (nsenter, which leaves
# /sys and its cgroup mounts as they are; `ip netns exec` would remount /sys without them).
# Storage, run and temp directories are under the test's temp dir. Addresses come from
# 198.18.0.0/15. Exits 77 (skip) when podman is missing.
set -euo pipefail

PLUMB_ARG=${1:?usage: podman_e2e.sh PATH-TO-PLUMB-BINARY}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=report.sh
. "$HERE/report.sh"
needs podman runc conmon nsenter unshare busybox jq ip sqlite3 md5sum
[ -x "$PLUMB_ARG" ] || { echo "error: $PLUMB_ARG is not an executable" >&2; exit 2; }
PLUMB=$(readlink -f "$PLUMB_ARG")

private_mounts "$0" "$@"

PREFIX="plumb-pod-$$"
HOST="$PREFIX-host"
TMP=$(mktemp -d /tmp/plumb-podman.XXXXXX)
ROOTFS="$TMP/rootfs"
DATA="$TMP/data"  # the conflists' dataDir
CLI_STATE="$TMP/cli"

cleanup() {
  set +e
  [ -e "/run/netns/$HOST" ] && pod rm -a -f -t 0 >/dev/null 2>&1
  [ -e "/run/netns/$HOST" ] && ip netns del "$HOST"
  rm -rf "$TMP"
}
trap on_exit EXIT
trap 'exit 130' INT TERM
T0=$SECONDS

mkdir -p "$ROOTFS/bin" "$TMP/conf" "$TMP/net" "$TMP/bin" "$TMP/tmp"
cp "$(command -v busybox)" "$ROOTFS/bin/busybox"
for applet in sh ip sleep cat; do ln -s busybox "$ROOTFS/bin/$applet"; done
cp "$PLUMB" "$TMP/bin/plumb"
cat >"$TMP/conf/containers.conf" <<EOF
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "$TMP/tmp/events.log"
runtime = "runc"
tmp_dir = "$TMP/tmp"
volume_path = "$TMP/storage/volumes"
static_dir = "$TMP/storage/libpod"
[network]
network_backend = "cni"
cni_plugin_dirs = ["$TMP/bin"]
network_config_dir = "$TMP/net"
EOF
conflist() { # NAME BRIDGE SUBNET
  cat >"$TMP/net/$1.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "$1", "plugins": [{"type": "plumb", "bridge": "$2",
 "isGateway": true, "ipMasq": true, "dataDir": "$DATA",
 "ipam": {"type": "plumb", "subnet": "$3", "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF
}
conflist pnet pbr0 198.18.110.0/24
conflist pnet2 pbr1 198.18.111.0/24
# What the command line runs as podman: the same storage.
cat >"$TMP/podman" <<EOF
#!/bin/sh
exec podman --root "$TMP/storage" --runroot "$TMP/runroot" --storage-driver vfs "\$@"
EOF
chmod +x "$TMP/podman"
export CONTAINERS_CONF="$TMP/conf/containers.conf"

ip netns add "$HOST"
ip -n "$HOST" link set lo up

pod() { nsenter --net="/run/netns/$HOST" "$TMP/podman" "$@"; }
in_host() { ip netns exec "$HOST" "$@"; }
plumb_cli() {
  nsenter --net="/run/netns/$HOST" env PLUMB_PODMAN="$TMP/podman" "$PLUMB" --state-dir "$CLI_STATE" "$@"
}
ctr_addr() { # CONTAINER IFACE: its IPv4 address/prefix
  pod exec "$1" ip -o -4 addr show dev "$2" | awk '{print $4}'
}
ctr_mac() { pod exec "$1" cat "/sys/class/net/$2/address"; }
records() {
  "$PLUMB" --state-dir "$DATA" ls --json | jq -c '[.[] | [.network, .addresses[0], .frontend]] | sort'
}
expect_eq() { # WANT CMD...
  local want=$1 got
  shift
  got=$("$@" 2>&1) || { echo "$got"; return 1; }
  [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}
host_links() { in_host ip -o link | grep -cE ': (plm|plt|plc)[0-9a-f]{8}' || true; }

section "podman run --network on a plumb conflist"
t "podman lists the conflist as a network" sh -c "'$TMP/podman' network ls --format '{{.Name}}' | grep -qx pnet"
t "run c1 with a static IP and MAC" pod run -d --name c1 --network pnet --ip 198.18.110.7 \
  --mac-address 02:42:c6:12:6e:07 --rootfs "$ROOTFS" sleep 600
t "c1's eth0 has the static IP" expect_eq 198.18.110.7/24 ctr_addr c1 eth0
t "c1's eth0 has the static MAC" expect_eq 02:42:c6:12:6e:07 ctr_mac c1 eth0
t "run c2 with an address from plumb's IPAM" pod run -d --name c2 --network pnet --rootfs "$ROOTFS" sleep 600
C2_ADDR=$(ctr_addr c2 eth0 || true)
t "c2's address is in the subnet and not c1's" sh -c "case '$C2_ADDR' in 198.18.110.7/*) exit 1;; 198.18.110.*/24) exit 0;; *) exit 1;; esac"
t "the host reaches c1 over the bridge" in_host busybox ping -c 1 -W 2 198.18.110.7
t "c1 reaches c2" pod exec c1 busybox ping -c 1 -W 2 "${C2_ADDR%/*}"
t "c1's default route goes through the gateway" sh -c "'$TMP/podman' exec c1 ip route | grep -q 'default via 198.18.110.1'"
t "plumb ls shows both, as CNI attachments" expect_eq \
  "[[\"pnet\",\"$C2_ADDR\",\"cni\"],[\"pnet\",\"198.18.110.7/24\",\"cni\"]]" records

section "podman network connect and disconnect"
t "connect c1 to pnet2 with a static IP" pod network connect --ip 198.18.111.9 pnet2 c1
t "c1's eth1 has it" expect_eq 198.18.111.9/24 ctr_addr c1 eth1
t "the host reaches c1 on pnet2" in_host busybox ping -c 1 -W 2 198.18.111.9
t "disconnect c1 from pnet2" pod network disconnect pnet2 c1
tnot "c1's eth1 is gone" pod exec c1 ip link show eth1
t "pnet2's record and address are gone" expect_eq 0 sqlite3 "$DATA/plumb.db" \
  "SELECT count(*) FROM attachments WHERE network='pnet2'"
t "no pnet2 address is held" expect_eq 0 sqlite3 "$DATA/plumb.db" \
  "SELECT count(*) FROM ip_allocs WHERE network='pnet2'"
t "two host ends are left (c1's and c2's on pnet)" expect_eq 2 host_links

section "the command line's podman:NAME guests"
t "plumb brpod podman:c1 198.18.112.5/24" plumb_cli brpod podman:c1 198.18.112.5/24
t "c1's eth1 has the address" expect_eq 198.18.112.5/24 ctr_addr c1 eth1
# As pipework's, the bridge it creates has no address of its own: the host gets one by hand.
t "the host reaches it" sh -c "ip -n '$HOST' addr add 198.18.112.1/24 dev brpod &&
  ip netns exec '$HOST' busybox ping -c 1 -W 2 198.18.112.5"
t "a re-run changes nothing" plumb_cli brpod podman:c1 198.18.112.5/24
t "plumb ls names the container by its full id" expect_eq \
  "podman-$("$TMP/podman" container inspect --format '{{.Id}}' c1)" sh -c \
  "'$PLUMB' --state-dir '$CLI_STATE' ls --json | jq -r '.[0].container'"
t "plumb del podman:c1" plumb_cli del podman:c1
tnot "c1's eth1 is gone again" pod exec c1 ip link show eth1
terr "a container podman does not know is one clear line" "podman container nosuch" \
  plumb_cli brpod podman:nosuch 198.18.112.6/24

section "podman rm leaves nothing"
t "podman rm -f c1 c2" pod rm -f -t 0 c1 c2
t "no host end is left" expect_eq 0 host_links
t "no record is left" expect_eq "[]" records
t "no address is held" expect_eq 0 sqlite3 "$DATA/plumb.db" "SELECT count(*) FROM ip_allocs"
t "no container netns is left" expect_eq "$HOST" sh -c "ls /run/netns"
t "pnet's masquerade went with its last container" sh -c \
  "! ip netns exec '$HOST' nft list chain inet plumb postrouting 2>/dev/null | grep -q 198.18.110.0"
t "the command line's store is empty" expect_eq "[]" sh -c "'$PLUMB' --state-dir '$CLI_STATE' ls --json | jq -c ."

section "teardown"
trap - EXIT
cleanup
t "the temp dir is gone" test ! -e "$TMP"
echo "# $((SECONDS - T0)) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
