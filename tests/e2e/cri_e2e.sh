#!/usr/bin/env bash
# plumb under containerd's CRI plugin, the path Kubernetes takes: RunPodSandbox,
# PodSandboxStatus, StopPodSandbox and RemovePodSandbox through a small CRI client
# (tests/e2e/criclient, built here with Debian's golang-google-grpc-dev) against a containerd
# 1.6 started here with its own root, state, socket, CNI directories and a plumb conflist.
#
#   sudo bash tests/e2e/cri_e2e.sh build/plugin/plumb
#
# containerd and runc write under /run and /var/lib (netns mounts, libcni's result cache): the
# script runs in a mount namespace of its own with private tmpfs there, so the machine's own
# are never touched. containerd runs in the test's "host" network namespace (nsenter, which
# leaves /sys and its cgroup mounts as they are). The pod sandbox's image is built here from
# busybox-static (no registry). Addresses come from 198.18.0.0/15. Exits 77 (skip) when
# containerd or Go's gRPC is missing.
set -euo pipefail

PLUMB_ARG=${1:?usage: cri_e2e.sh PATH-TO-PLUMB-BINARY}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=report.sh
. "$HERE/report.sh"
needs containerd ctr runc go nsenter unshare busybox jq ip sqlite3 md5sum sha256sum tar
[ -d /usr/share/gocode/src/google.golang.org/grpc ] || skip "golang-google-grpc-dev is missing"
[ -x /usr/lib/cni/loopback ] || skip "/usr/lib/cni/loopback is missing (containernetworking-plugins)"
[ -x "$PLUMB_ARG" ] || { echo "error: $PLUMB_ARG is not an executable" >&2; exit 2; }
PLUMB=$(readlink -f "$PLUMB_ARG")

private_mounts "$0" "$@"

PREFIX="plumb-cri-$$"
HOST="$PREFIX-host"
TMP=$(mktemp -d /tmp/plumb-cri.XXXXXX)
CTRD="$TMP/containerd"
DATA="$TMP/data"  # the conflist's dataDir
SOCK="$CTRD/containerd.sock"
CTRD_PID=

cleanup() {
  set +e
  if [ -n "$CTRD_PID" ]; then
    # Pods left by a failed run go first, so their shims and netns go too.
    for id in $(ctr -a "$SOCK" -n k8s.io containers ls -q 2>/dev/null); do
      ctr -a "$SOCK" -n k8s.io task kill -s KILL "$id" >/dev/null 2>&1
      ctr -a "$SOCK" -n k8s.io task delete -f "$id" >/dev/null 2>&1
    done
    kill "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
  fi
  pkill -f "containerd-shim-runc-v2 -namespace k8s.io -address $SOCK" 2>/dev/null
  [ -e "/run/netns/$HOST" ] && ip netns del "$HOST"
  grep -o " $TMP[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  rm -rf "$TMP"
}
before_cleanup() {
  [ -s "$TMP/containerd.log" ] && { echo "# containerd log (last lines):"; tail -8 "$TMP/containerd.log" | sed 's/^/#   /'; }
  return 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM
T0=$SECONDS

mkdir -p "$CTRD" "$TMP/cni-bin" "$TMP/cni-conf" "$TMP/image/rootfs/bin"
cp "$PLUMB" "$TMP/cni-bin/plumb"
cp /usr/lib/cni/loopback "$TMP/cni-bin/loopback"
cat >"$TMP/cni-conf/10-plumb.conflist" <<EOF
{"cniVersion": "1.0.0", "name": "podnet", "plugins": [{"type": "plumb", "bridge": "cbr0",
 "isGateway": true, "ipMasq": true, "dataDir": "$DATA",
 "ipam": {"type": "plumb", "subnet": "198.18.120.0/24", "routes": [{"dst": "0.0.0.0/0"}]}}]}
EOF

# The sandbox ("pause") image: busybox's sleep, as a docker-archive ctr imports.
cp "$(command -v busybox)" "$TMP/image/rootfs/bin/busybox"
ln -s busybox "$TMP/image/rootfs/bin/sleep"
tar -C "$TMP/image/rootfs" -cf "$TMP/image/layer.tar" .
diff_id=$(sha256sum "$TMP/image/layer.tar" | cut -d' ' -f1)
cat >"$TMP/image/config.json" <<EOF
{"architecture": "amd64", "os": "linux", "config": {"Entrypoint": ["/bin/sleep", "1000000"]},
 "rootfs": {"type": "layers", "diff_ids": ["sha256:$diff_id"]}}
EOF
cat >"$TMP/image/manifest.json" <<EOF
[{"Config": "config.json", "RepoTags": ["plumb.test/pause:1"], "Layers": ["layer.tar"]}]
EOF
tar -C "$TMP/image" -cf "$TMP/pause.tar" manifest.json config.json layer.tar

cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$SOCK"
[plugins."io.containerd.internal.v1.opt"]
  path = "$CTRD/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "plumb.test/pause:1"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$TMP/cni-bin"
    conf_dir = "$TMP/cni-conf"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
EOF

ip netns add "$HOST"
ip -n "$HOST" link set lo up

section "setup: containerd with its CRI plugin, $TMP"
# Go's build cache in the temp dir (not root's home), unless the caller keeps one.
gocache=${GOCACHE:-$TMP/gocache}
if ! out=$(cd "$HERE" && env ${gocache:+GOCACHE="$gocache"} GO111MODULE=off GOPATH=/usr/share/gocode GOFLAGS= \
  go build -o "$TMP/criclient" ./criclient 2>&1); then
  failed "build the CRI client (tests/e2e/criclient)" "$out"
  exit 1
fi
pass "build the CRI client (tests/e2e/criclient)"
nsenter --net="/run/netns/$HOST" containerd --config "$CTRD/config.toml" >>"$TMP/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do ctr -a "$SOCK" version >/dev/null 2>&1 && break; sleep 0.1; done
t "containerd answers" ctr -a "$SOCK" version
t "the sandbox image is imported" ctr -a "$SOCK" -n k8s.io images import --snapshotter native "$TMP/pause.tar"

cri() { "$TMP/criclient" -socket "$SOCK" "$@"; }
in_host() { ip netns exec "$HOST" "$@"; }
host_links() { in_host ip -o link | grep -cE ': (plm|plt|plc)[0-9a-f]{8}' || true; }
expect_eq() { # WANT CMD...
  local want=$1 got
  shift
  got=$("$@" 2>&1) || { echo "$got"; return 1; }
  [ "$got" = "$want" ] || { echo "got '$got', want '$want'"; return 1; }
}
# The pod's netns, as containerd's sandbox task holds it.
pod_ns() { echo "/proc/$(ctr -a "$SOCK" -n k8s.io task ls | awk -v id="$1" '$1 == id {print $2}')/ns/net"; }

section "RunPodSandbox: the pod gets its address from plumb"
POD1=$(cri run pod1 uid-1 default) || POD1=
t "RunPodSandbox pod1" test -n "$POD1"
POD2=$(cri run pod2 uid-2 default) || POD2=
t "RunPodSandbox pod2" test -n "$POD2"
IP1=$(cri ip "$POD1" 2>&1) || IP1=
IP2=$(cri ip "$POD2" 2>&1) || IP2=
t "PodSandboxStatus gives pod1 an address in the subnet" sh -c "case '$IP1' in 198.18.120.*) exit 0;; *) echo '$IP1'; exit 1;; esac"
t "and pod2 another" sh -c "case '$IP2' in 198.18.120.*) [ '$IP2' != '$IP1' ];; *) echo '$IP2'; exit 1;; esac"
t "pod1's eth0 has it" sh -c "nsenter --net='$(pod_ns "$POD1")' ip -o -4 addr show eth0 | grep -q ' $IP1/24 '"
t "the host reaches pod1 over the bridge" in_host busybox ping -c 1 -W 2 "$IP1"
t "pod1 reaches pod2" nsenter --net="$(pod_ns "$POD1")" busybox ping -c 1 -W 2 "$IP2"
t "pod1's default route goes through the gateway" sh -c \
  "nsenter --net='$(pod_ns "$POD1")' ip route | grep -q 'default via 198.18.120.1 dev eth0'"
t "plumb ls shows both pods, by sandbox id" expect_eq 2 sh -c \
  "'$PLUMB' --state-dir '$DATA' ls --json | jq '[.[] | select(.container == \"$POD1\" or .container == \"$POD2\")] | length'"

section "StopPodSandbox and RemovePodSandbox leave nothing"
t "StopPodSandbox pod1" cri stop "$POD1"
t "pod1's record and address are gone" expect_eq 0 sqlite3 "$DATA/plumb.db" \
  "SELECT count(*) FROM attachments WHERE container_id='$POD1'"
t "a second StopPodSandbox is fine" cri stop "$POD1"
t "RemovePodSandbox pod1" cri remove "$POD1"
t "one host end is left (pod2's)" expect_eq 1 host_links
t "StopPodSandbox pod2" cri stop "$POD2"
t "RemovePodSandbox pod2" cri remove "$POD2"
t "no host end is left" expect_eq 0 host_links
t "no record is left" expect_eq "[]" sh -c "'$PLUMB' --state-dir '$DATA' ls --json | jq -c ."
t "no address is held" expect_eq 0 sqlite3 "$DATA/plumb.db" "SELECT count(*) FROM ip_allocs"
t "no pod netns is left" expect_eq "$HOST" sh -c "ls /run/netns"
t "the masquerade went with the last pod" sh -c \
  "! ip netns exec '$HOST' nft list chain inet plumb postrouting 2>/dev/null | grep -q 198.18.120.0"

section "teardown"
trap - EXIT
cleanup
t "the temp dir is gone" test ! -e "$TMP"
t "no containerd or shim of this run is left" sh -c "! pgrep -f '^(containerd --config|/usr/bin/containerd-shim-runc-v2 .*-address) $CTRD'"
echo "# $((SECONDS - T0)) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
