#!/usr/bin/env bash
# End-to-end tests of plumb's command line (pipework's grammar) against real containers:
# Docker containers from a real dockerd, and containerd tasks run with ctr, both by a
# containerd started here (its own root, state and socket) and by the one dockerd runs.
# pipework's README forms are run on Docker containers: bridge with a gateway, -i, a MAC and
# U:, IPv6 with -a 6, route, rule, tc, macvlan with DHCP from dnsmasq, mac: host interfaces,
# --direct-phys (a veth end standing in for a NIC), re-runs, ls and del.
#
#   sudo bash tests/e2e/cli_e2e.sh build/plugin/plumb
#
# dockerd is started here when none answers, and stopped afterwards. plumb's bridges, the
# macvlan parent, the stand-in NIC and dnsmasq live in a namespace made here (the "host" the
# command line runs in); containers live in their runtimes' namespaces. Addresses:
# 198.18.0.0/15 and fd00:198:18::/48 only. Every name carries this run's id; the leak checks
# look for anything left.
#
# Needs root, docker (docker.io), containerd, ctr, jq, sqlite3, busybox (busybox-static),
# dnsmasq, nsenter. Exits 77 (skip) when one is missing. Prints "N passed, M failed" last.
set -euo pipefail

PLUMB_ARG=${1:?usage: cli_e2e.sh PATH-TO-PLUMB-BINARY}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=report.sh
. "$HERE/report.sh"
# shellcheck source=sriov_env.sh
. "$HERE/sriov_env.sh"
needs docker dockerd containerd ctr jq sqlite3 busybox dnsmasq nsenter ip timeout time
[ -x "$PLUMB_ARG" ] || { echo "error: $PLUMB_ARG is not an executable" >&2; exit 2; }
PLUMB=$(readlink -f "$PLUMB_ARG")
# shellcheck source=../../scripts/docker-env.sh
. "$HERE/../../scripts/docker-env.sh"

ID=$$
P="pc$ID"                          # prefix of containers, namespaces and links
TMP=$(mktemp -d /tmp/plumb-cli-e2e.XXXXXX)
STATE="$TMP/state"
IMAGE="plumb-cli-bb:$ID"
HOSTNS="$P-host"                   # where the command line runs: bridges, parents, dnsmasq
LAN="$P-lan"                       # the far side of the macvlan parent and the stand-in NIC
BR="brp$ID"                        # bridges
BR2="brq$ID"
BR6="brs$ID"
PARENT="pcm$ID"                    # macvlan parent (a veth end; its peer serves DHCP)
NIC="pcn$ID"                       # the stand-in NIC for --direct-phys
CTRD="$TMP/containerd"             # the containerd started here
CTRD_PID=""
CTR_NS="plumbe2e$ID"
DNSMASQ_PID=""
DAEMON_PID=""                      # plumb daemon, for the ambassadors' section
SVC_HTTPD=""

cleanup() {
  set +e
  if [ -n "$CTRD_PID" ]; then
    ctr -a "$CTRD/sock" -n "$CTR_NS" task kill -s KILL c1 >/dev/null 2>&1
    ctr -a "$CTRD/sock" -n "$CTR_NS" task kill -s KILL c2 >/dev/null 2>&1
    sleep 0.3
    for c in c1 c2; do
      ctr -a "$CTRD/sock" -n "$CTR_NS" task delete "$c" >/dev/null 2>&1
      ctr -a "$CTRD/sock" -n "$CTR_NS" container delete "$c" >/dev/null 2>&1
    done
    kill "$CTRD_PID" 2>/dev/null
    wait "$CTRD_PID" 2>/dev/null
    CTRD_PID=""
    # The shims' runc state and the snapshots' mounts go with the dirs.
    grep -o " ${CTRD}[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
  fi
  if docker info >/dev/null 2>&1; then
    local ids
    ids=$(docker ps -aq --filter "name=^$P-")
    # shellcheck disable=SC2086  # one id a word
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    docker rmi "$IMAGE" >/dev/null 2>&1
  fi
  [ -n "$DNSMASQ_PID" ] && kill "$DNSMASQ_PID" 2>/dev/null
  [ -n "$DAEMON_PID" ] && kill "$DAEMON_PID" 2>/dev/null && wait "$DAEMON_PID" 2>/dev/null
  [ -n "$SVC_HTTPD" ] && kill "$SVC_HTTPD" 2>/dev/null
  [ -e "/run/netns/$P-svc" ] && ip netns del "$P-svc"
  release_dockerd
  restore_sysctls
  for ns in "$HOSTNS" "$LAN"; do [ -e "/run/netns/$ns" ] && ip netns del "$ns"; done
  rm -rf "$TMP"
}
before_cleanup() {
  [ -s "$TMP/containerd.log" ] && { echo "# containerd log (last lines):"; tail -5 "$TMP/containerd.log" | sed 's/^/#   /'; }
  return 0
}
trap on_exit EXIT
trap 'exit 130' INT TERM

T0=$SECONDS

# --- helpers ----------------------------------------------------------------------------------

cli() { ip netns exec "$HOSTNS" "$PLUMB" --state-dir "$STATE" "$@"; }
in_host() { ip netns exec "$HOSTNS" "$@"; }
dx() { local name=$1; shift; docker exec "$P-$name" "$@"; }
pid_of() { docker inspect -f '{{.State.Pid}}' "$P-$1"; }
# A command in a container's netns with the host's tools (ip rule, tc: not in busybox).
in_net() { local pid=$1; shift; nsenter -t "$pid" -n "$@"; }
ls_json() { "$PLUMB" --state-dir "$STATE" ls --json; }
ctr_() { ctr -a "$CTRD/sock" -n "$CTR_NS" "$@"; }
links() { ip -n "$1" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort; }
store_empty() {
  local tbl n bad=0
  for tbl in attachments ip_allocs services links; do
    n=$(sqlite3 "$STATE/plumb.db" "SELECT count(*) FROM $tbl")
    [ "$n" = 0 ] || { echo "$tbl: $n rows"; bad=1; }
  done
  return $bad
}

# --- set-up -----------------------------------------------------------------------------------

section "set-up"
save_sysctls
ensure_dockerd
import_busybox "$IMAGE"
ip netns add "$HOSTNS"
ip netns add "$LAN"
in_host ip link set lo up
ip -n "$HOSTNS" link add "$PARENT" type veth peer name lan0 netns "$LAN"
ip -n "$HOSTNS" link add "$NIC" mtu 1450 type veth peer name lan1 netns "$LAN"
ip -n "$HOSTNS" link set "$NIC" up  # so that "back up" is what the restore must show
ip -n "$HOSTNS" link set "$PARENT" up
ip -n "$LAN" link set lan0 up
ip -n "$LAN" addr add 198.18.44.1/24 dev lan0
ip -n "$LAN" link set lan1 up
ip -n "$LAN" addr add 198.18.45.1/24 dev lan1
ip netns exec "$LAN" dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=lan0 \
  --bind-interfaces --dhcp-range=198.18.44.100,198.18.44.150,255.255.255.0,2m \
  --dhcp-option=3,198.18.44.1 --dhcp-leasefile="$TMP/leases" --log-dhcp >"$TMP/dnsmasq.log" 2>&1 &
DNSMASQ_PID=$!
for n in d1 d2; do docker run -d --name "$P-$n" --network none "$IMAGE" sleep 600 >/dev/null; done
D1=$(docker inspect -f '{{.Id}}' "$P-d1")
HOST_LINKS_BEFORE=$(links "$HOSTNS")
t "two Docker containers run with --network none" test -n "$(pid_of d2)"

# --- pipework's forms on Docker containers ----------------------------------------------------

section "bridge, gateway, -i (pipework br1 \$CID 198.18.40.2/24@198.18.40.1)"
t "plumb $BR <name> 198.18.40.2/24@198.18.40.1" cli "$BR" "$P-d1" 198.18.40.2/24@198.18.40.1
in_host ip addr add 198.18.40.1/24 dev "$BR"
t "d1 has eth1 with 198.18.40.2/24" bash -c "docker exec $P-d1 ip -4 addr show eth1 | grep -q 198.18.40.2/24"
t "d1's default route is via 198.18.40.1" bash -c "docker exec $P-d1 ip route | grep -q 'default via 198.18.40.1 dev eth1'"
t "d1's eth1 takes the bridge's MTU" bash -c "[ \$(docker exec $P-d1 cat /sys/class/net/eth1/mtu) = \$(ip -n $HOSTNS -o link show $BR | sed 's/.*mtu \([0-9]*\).*/\1/') ]"
t "plumb $BR -i eth2 <full id> 198.18.40.3/24" cli "$BR" -i eth2 "$P-d2" 198.18.40.3/24
t "the host pings d1" in_host busybox ping -c1 -W2 198.18.40.2
t "d1 pings d2 across the bridge" dx d1 ping -c1 -W2 198.18.40.3
t "re-run by short id is a no-op success" cli "$BR" "${D1:0:12}" 198.18.40.2/24@198.18.40.1
terr "the same interface with another address says what differs" "198.18.40.2/24.*198.18.40.9/24|198.18.40.9/24.*198.18.40.2/24" \
  cli "$BR" "docker:$P-d1" 198.18.40.9/24
terr "an address without a prefix asks about /24" "did you mean 198.18.40.9/24" cli "$BR" "$P-d1" 198.18.40.9

section "a container that is still starting is waited for (on dockerd's events)"
docker create --name "$P-late" --network none "$IMAGE" sleep 600 >/dev/null
(sleep 1.5; docker start "$P-late") >/dev/null 2>&1 &
t "plumb $BR -i eth9 <created container> 198.18.40.30/24 succeeds once it starts" \
  ip netns exec "$HOSTNS" "$PLUMB" --state-dir "$STATE" "$BR" -i eth9 "$P-late" 198.18.40.30/24
# Succeeding at all shows the wait: a container that is not running has no netns to attach to.
# How long it takes and the CPU it uses are figures: bench/docker_bench.sh part 3.
t "...and the container has eth9" bash -c "docker exec $P-late ip -4 addr show eth9 | grep -q 198.18.40.30/24"
t "plumb del <it> -i eth9" cli del "$P-late" -i eth9
docker rm -f "$P-late" >/dev/null

section "MAC and U:name (pipework br1 \$CID 198.18.41.2/24 26:2e:71:98:60:8f)"
t "a given MAC" cli "$BR2" -i eth3 "$P-d1" 198.18.41.2/24 26:2e:71:98:60:8f
t "...is eth3's" bash -c "docker exec $P-d1 cat /sys/class/net/eth3/address | grep -qx 26:2e:71:98:60:8f"
t "U:web derives a MAC from the name" cli "$BR2" -i eth3 "$P-d2" 198.18.41.3/24 U:web
U_MAC=$(dx d2 cat /sys/class/net/eth3/address)
t "...locally administered and unicast ($U_MAC)" bash -c "[[ '$U_MAC' =~ ^[0-9a-f][26ae]: ]]"
t "d1 and d2 talk on the second bridge" dx d1 ping -c1 -W2 198.18.41.3

section "IPv6 (pipework -a 6)"
t "plumb $BR6 -a 6 -i eth4 d1 fd00:198:18:46::2/64@fd00:198:18:46::1" \
  cli "$BR6" -a 6 -i eth4 "$P-d1" fd00:198:18:46::2/64@fd00:198:18:46::1
t "plumb $BR6 -a 6 -i eth4 d2 fd00:198:18:46::3/64" cli "$BR6" -a 6 -i eth4 "$P-d2" fd00:198:18:46::3/64
t "d1 has the IPv6 address" bash -c "docker exec $P-d1 ip -6 addr show eth4 | grep -q fd00:198:18:46::2/64"
t "...and an IPv6 default route via the gateway" bash -c "docker exec $P-d1 ip -6 route | grep -q 'default via fd00:198:18:46::1'"
t "d1 pings d2 over IPv6 (no DAD wait)" dx d1 ping -6 -c1 -W2 fd00:198:18:46::3

section "route, rule, tc inside a Docker container"
P1=$(pid_of d1)
t "plumb route d1 add 198.19.40.0/24 via 198.18.40.1" cli route "$P-d1" add 198.19.40.0/24 via 198.18.40.1
t "...is in d1's table" bash -c "docker exec $P-d1 ip route | grep -q '198.19.40.0/24 via 198.18.40.1 dev eth1'"
t "the same route again is a no-op" cli route "$P-d1" add 198.19.40.0/24 via 198.18.40.1
t "plumb rule d1 add from 198.18.41.2 table 141 priority 141" cli rule "$P-d1" add from 198.18.41.2 table 141 priority 141
t "...is d1's rule" bash -c "nsenter -t $P1 -n ip rule show | grep -q '^141:.*from 198.18.41.2 lookup 141'"
t "plumb route d1 add default via 198.18.41.1 dev eth3 table 141" cli route "$P-d1" add default via 198.18.41.1 dev eth3 table 141
t "...is in table 141" bash -c "nsenter -t $P1 -n ip route show table 141 | grep -q 'default via 198.18.41.1 dev eth3'"
t "plumb tc d1 qdisc add dev eth1 root tbf ..." cli tc "$P-d1" qdisc add dev eth1 root tbf rate 10mbit burst 32kbit latency 400ms
t "...is on d1's eth1" bash -c "nsenter -t $P1 -n tc qdisc show dev eth1 | grep -q tbf"
t "plumb route d1 del 198.19.40.0/24 via 198.18.40.1" cli route "$P-d1" del 198.19.40.0/24 via 198.18.40.1
t "...is gone" bash -c "! docker exec $P-d1 ip route | grep -q 198.19.40.0/24"

section "macvlan with DHCP (pipework eth2 \$CID dhcp)"
t "plumb $PARENT -i eth5 d2 udhcpc (the parent is no bridge: macvlan)" cli "$PARENT" -i eth5 "$P-d2" udhcpc
t "d2's eth5 is a macvlan" bash -c "nsenter -t $(pid_of d2) -n ip -d link show eth5 | grep -q 'macvlan mode bridge'"
t "...with a lease from dnsmasq" bash -c "docker exec $P-d2 ip -4 addr show eth5 | grep -Eq 'inet 198.18.44.1([0-4][0-9]|50)/24'"
t "d2 pings the DHCP server's side" dx d2 ping -c1 -W2 198.18.44.1
t "dnsmasq acked the guest's name" grep -q "DHCPACK.*$P-d2" "$TMP/dnsmasq.log"
PMAC=$(ip -n "$HOSTNS" -o link show "$PARENT" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
t "plumb mac:$PMAC -i eth6 d1 198.18.44.9/24 (the host interface by its MAC)" cli "mac:$PMAC" -i eth6 "$P-d1" 198.18.44.9/24
t "d1 reaches the LAN through the macvlan" dx d1 ping -c1 -W2 198.18.44.1

section "--direct-phys (a veth end stands in for the NIC)"
t "plumb --direct-phys $NIC -i eth7 d1 198.18.45.2/24" cli --direct-phys "$NIC" -i eth7 "$P-d1" 198.18.45.2/24
t "the NIC left the host" bash -c "! ip -n $HOSTNS link show $NIC"
t "d1 has it as eth7, MTU kept" bash -c "docker exec $P-d1 cat /sys/class/net/eth7/mtu | grep -qx 1450"
t "d1 reaches the far side through it" dx d1 ping -c1 -W2 198.18.45.1

section "plumb ls"
LS=$(ls_json)
# shellcheck disable=SC2016  # $d1 is jq's
t "ls lists d1's and d2's attachments by full id" \
  jq -e --arg d1 "docker-$D1" 'map(select(.container == $d1)) | length == 5' <<<"$LS"
t "ls shows the modes" jq -e 'map(.mode) | (index("bridge") != null) and (index("macvlan") != null) and (index("passthrough") != null)' <<<"$LS"

section "--vf (SR-IOV: a sysfs-shaped tree under PLUMB_SYSFS_ROOT, the VFs veth ends)"
sriov_tree "$TMP/sys" "${P}pf" 2 "${P}v" "$HOSTNS" "$LAN" 198.18.46.1/24
cli_vf() { ip netns exec "$HOSTNS" env PLUMB_SYSFS_ROOT="$TMP/sys" "$PLUMB" --state-dir "$STATE" "$@"; }
VF_BEFORE=$(ip -n "$HOSTNS" -o link show "${P}v0" | sed 's/ state [A-Z]*//')
t "plumb --vf ${P}pf -i eth8 d1 198.18.46.2/24" cli_vf --vf "${P}pf" -i eth8 "$P-d1" 198.18.46.2/24
t "the first VF left the host" bash -c "! ip -n $HOSTNS link show ${P}v0"
t "d1 reaches the far side through the VF" dx d1 ping -c1 -W2 198.18.46.1
t "the same command again: nothing to do" cli_vf --vf "${P}pf" -i eth8 "$P-d1" 198.18.46.2/24
t "ls: VF 0000:3b:02.0 on ${P}pf" bash -c "ip netns exec $HOSTNS env PLUMB_SYSFS_ROOT=$TMP/sys $PLUMB --state-dir $STATE ls | grep -q '0000:3b:02.0 on ${P}pf'"
terr "@7 on a VF: this kernel's PF refuses the VLAN, said so" "PF ${P}pf refused vlan 7" \
  cli_vf --vf "${P}pf" -i eth9 "$P-d1" 198.18.46.3/24 @7
t "plumb del d1 -i eth8" cli_vf del "$P-d1" -i eth8
t "the VF is back with its name, MTU and MAC" \
  bash -c "[ \"\$(ip -n $HOSTNS -o link show ${P}v0 | sed 's/ state [A-Z]*//')\" = \"$VF_BEFORE\" ]"
sriov_links_del
ip -n "$LAN" link del lanbr

# --- containerd -------------------------------------------------------------------------------

section "containerd tasks (a containerd of this run's own, run with ctr)"
mkdir -p "$CTRD"
cat >"$CTRD/config.toml" <<EOF
version = 2
root = "$CTRD/root"
state = "$CTRD/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTRD/sock"
EOF
containerd --config "$CTRD/config.toml" >>"$TMP/containerd.log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do ctr -a "$CTRD/sock" version >/dev/null 2>&1 && break; sleep 0.1; done
docker save "$IMAGE" | ctr_ images import - >/dev/null
CIMG=$(ctr_ images ls -q | head -1)
t "ctr runs task c1" ctr_ run -d --snapshotter native "$CIMG" c1 sleep 600
export PLUMB_CONTAINERD_STATE="$CTRD/state/io.containerd.runtime.v2.task"
t "plumb $BR containerd:$CTR_NS/c1 198.18.40.20/24" cli "$BR" "containerd:$CTR_NS/c1" 198.18.40.20/24
t "c1 has eth1 with 198.18.40.20/24" bash -c "ctr -a $CTRD/sock -n $CTR_NS task exec --exec-id e1 c1 ip -4 addr show eth1 | grep -q 198.18.40.20/24"
t "d1 (Docker) pings c1 (containerd) on the same bridge" dx d1 ping -c1 -W2 198.18.40.20
t "re-run is a no-op" cli "$BR" "containerd:$CTR_NS/c1" 198.18.40.20/24
t "ls shows it" bash -c "'$PLUMB' --state-dir '$STATE' ls --json | jq -e 'map(select(.container == \"containerd-c1\")) | length == 1'"
t "plumb del containerd:$CTR_NS/c1" cli del "containerd:$CTR_NS/c1"
t "c1's eth1 is gone" bash -c "! ctr -a $CTRD/sock -n $CTR_NS task exec --exec-id e2 c1 ip link show eth1"
ctr_ container create --snapshotter native "$CIMG" c2 sleep 600 >/dev/null
terr "a container with no task is a clear error" "containerd task c2 in namespace $CTR_NS is not running" \
  cli "$BR" "containerd:$CTR_NS/c2" 198.18.40.21/24
terr "a malformed reference is a clear error" "is not \[namespace/\]id" cli "$BR" "containerd:a/b/c" 198.18.40.21/24
unset PLUMB_CONTAINERD_STATE

section "dockerd's own containerd (namespace moby)"
export PLUMB_CONTAINERD_STATE="$DOCKER_CONTAINERD_STATE"
t "plumb $BR -i eth8 containerd:moby/<d2's id> 198.18.40.22/24" \
  cli "$BR" -i eth8 "containerd:moby/$(docker inspect -f '{{.Id}}' "$P-d2")" 198.18.40.22/24
t "d2 has eth8 with 198.18.40.22/24" bash -c "docker exec $P-d2 ip -4 addr show eth8 | grep -q 198.18.40.22/24"
t "plumb del containerd:moby/<id> -i eth8" cli del "containerd:moby/$(docker inspect -f '{{.Id}}' "$P-d2")" -i eth8
unset PLUMB_CONTAINERD_STATE

# --- ambassadors ------------------------------------------------------------------------------

section "expose and link between a netns and a Docker container (plumb daemon holds the links)"
SVC="$P-svc"
ip netns add "$SVC"
ip -n "$SVC" link set lo up
# Not through in_host: a function in the background is a subshell, and $! would be its pid.
ip netns exec "$HOSTNS" "$PLUMB" daemon --state-dir "$STATE" --socket "$TMP/docker.sock" \
  >"$TMP/daemon.log" 2>&1 &
DAEMON_PID=$!
for _ in $(seq 100); do cli ls --links >/dev/null 2>&1 && [ -S "$STATE/control.sock" ] && break; sleep 0.05; done
t "plumb $BR <netns> 198.18.40.50/24" cli "$BR" "$SVC" 198.18.40.50/24
mkdir -p "$TMP/svc-www" && echo from-svc >"$TMP/svc-www/index.html"
ip netns exec "$SVC" busybox httpd -f -p 8080 -h "$TMP/svc-www" &
SVC_HTTPD=$!
t "expose <netns> web 8080" cli expose "$SVC" web 8080
t "link <Docker container d2> web" cli link "$P-d2" web
t "d2's /etc/hosts names web on 127.0.0.1, as --link did" bash -c "docker exec $P-d2 grep -qE '^127.0.0.1[[:space:]]+web[[:space:]]' /etc/hosts"
t "a re-run adds no second line" bash -c "cli() { ip netns exec $HOSTNS $PLUMB --state-dir $STATE \"\$@\"; }; cli link $P-d2 web >/dev/null && [ \$(docker exec $P-d2 grep -cw web /etc/hosts) = 1 ]"
t "d2 reaches web on its own 127.0.0.1:8080" bash -c "[ \"\$(docker exec $P-d2 wget -qO- http://127.0.0.1:8080/)\" = from-svc ]"
dx d1 httpd -p 8081 -h /www
t "expose <Docker container d1> web1 8081" cli expose "$P-d1" web1 8081
t "link <netns> web1 9000" cli link "$SVC" web1 9000
t "the netns reaches d1's httpd on its 127.0.0.1:9000" bash -c "[ \"\$(ip netns exec $SVC busybox wget -qO- http://127.0.0.1:9000/)\" = plumb-ok ]"
t "ls --links lists both services and both links" bash -c "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '(.services | length) == 2 and (.links | length) == 2'"
terr "a link name with / is refused" "is not a service name" cli link "$P-d2" "we/b" 80
t "unlink d2 web" cli unlink "$P-d2" web
t "d2's /etc/hosts no longer names web" bash -c "! docker exec $P-d2 grep -qw web /etc/hosts"
t "d2's listener is gone" bash -c "! docker exec $P-d2 wget -qO- -T 2 http://127.0.0.1:8080/ 2>/dev/null"
kill "$DAEMON_PID"
DAEMON_RC=0
wait "$DAEMON_PID" || DAEMON_RC=$?
DAEMON_PID=""
t "the daemon stops on SIGTERM with status 0" test "$DAEMON_RC" = 0
t "link without a daemon says how to start one" bash -c "cli() { ip netns exec $HOSTNS $PLUMB --state-dir $STATE \"\$@\"; }; cli link $P-d2 web 2>&1 | grep -q 'no plumb daemon answers on'"
kill "$SVC_HTTPD" 2>/dev/null
wait "$SVC_HTTPD" 2>/dev/null || true  # killed: 143
SVC_HTTPD=""
t "plumb del <netns> takes its links and services with it" cli del "$SVC"
t "only d1's service is left" bash -c "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '(.services | map(.name)) == [\"web1\"] and (.links | length) == 0'"
ip netns del "$SVC"

# --- removal ----------------------------------------------------------------------------------

section "del"
for ifc in eth1 eth3 eth4 eth6 eth7; do
  t "plumb del d1 -i $ifc" cli del "$P-d1" -i "$ifc"
done
# It was up (administratively) before it went: the flags between <> must say UP again.
t "the NIC is back in the host under its name, MTU and up state" \
  bash -c "ip -n $HOSTNS -o link show $NIC | grep -q 'mtu 1450' && ip -n $HOSTNS -o link show $NIC | grep -oE '<[^>]*>' | tr ',<>' '   ' | grep -qw UP"
t "d1 has only lo left" bash -c "[ \"\$(docker exec $P-d1 ls /sys/class/net | tr '\n' ' ')\" = 'lo ' ]"
for ifc in eth2 eth3 eth4 eth5; do
  t "plumb del d2 -i $ifc" cli del "$P-d2" -i "$ifc"
done
for _ in $(seq 50); do grep -q DHCPRELEASE "$TMP/dnsmasq.log" && break; sleep 0.1; done
t "del stopped d2's DHCP client, which released the lease" grep -q DHCPRELEASE "$TMP/dnsmasq.log"
t "plumb del again: nothing to remove, success" cli del "$P-d1"
docker stop -t 0 "$P-d1" >/dev/null
terr "a stopped container is a clear error" "is not running \(status exited\)" cli "$BR" "$P-d1" 198.18.40.2/24
terr "a container that does not exist is a clear error" "neither a netns name.*nor a Docker container" \
  cli "$BR" "$P-nosuch" 198.18.40.2/24
t "no attachment or address is left in the store" store_empty
host_links_left() { # the host namespace's links now, less plumb's bridges (pipework keeps those)
  links "$HOSTNS" | grep -vx -e "$BR" -e "$BR2" -e "$BR6"
}
t "the host namespace has the links it had, the NIC back among them" \
  diff <(echo "$HOST_LINKS_BEFORE") <(host_links_left)
t "no DHCP client of this run is left" bash -c "! pgrep -f '[u]dhcpc.*hostname:$P-'"

t "the run's containers are removed" bash -c "ids=\$(docker ps -aq --filter name=^$P-) && { [ -z \"\$ids\" ] || docker rm -f \$ids >/dev/null; }"
# Asked while dockerd still runs: the listing must succeed and be empty.
t "no docker container named $P-* is left" bash -c "c=\$(docker ps -aq --filter name=^$P-) && [ -z \"\$c\" ]"
trap - EXIT
cleanup
t "no netns named $P-* remains" bash -c "! ip netns list | grep -q '^$P-'"
t "containerd's mounts are gone" bash -c "! grep -q plumb-cli-e2e /proc/mounts"

echo "# $((SECONDS - T0)) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
