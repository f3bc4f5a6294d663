#!/usr/bin/env bash
# End-to-end tests of plumb's Docker front end against a real dockerd (Debian's docker.io):
# `plumb daemon` serves the remote network and IPAM drivers, and real containers (an image
# imported from busybox-static) are attached, published, restarted and removed.
#
#   sudo bash tests/e2e/docker_e2e.sh build/plugin/plumb
#
# dockerd is started here when none answers, and stopped afterwards. The driver is registered
# under a name of this run's own (plumbe2e<pid>), so an installed plumb daemon is left alone.
# Containers live in dockerd's namespaces; plumb's bridges and rules in the root namespace, as
# for any Docker network; every name carries this run's id and is removed at the end, and the
# leak checks look for anything plumb-shaped that is left. Addresses: 198.18.0.0/15 only; the
# macvlan parent is a veth whose peer sits in a namespace made here, never eth0.
#
# Needs root, docker (docker.io), curl, jq, sqlite3, nft, busybox (busybox-static). Exits 77
# (skip) when one is missing. Prints "N passed, M failed" last and fails when M > 0.
set -euo pipefail

PLUMB_ARG=${1:?usage: docker_e2e.sh PATH-TO-PLUMB-BINARY}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=report.sh
. "$HERE/report.sh"
needs docker dockerd curl jq sqlite3 nft busybox ip timeout
[ -x "$PLUMB_ARG" ] || { echo "error: $PLUMB_ARG is not an executable" >&2; exit 2; }
PLUMB=$(readlink -f "$PLUMB_ARG")
# shellcheck source=../../scripts/docker-env.sh
. "$HERE/../../scripts/docker-env.sh"
# shellcheck source=ovs_env.sh
. "$HERE/ovs_env.sh"
# shellcheck source=sriov_env.sh
. "$HERE/sriov_env.sh"
needs ovsdb-server ovs-vswitchd ovsdb-tool ovs-vsctl

ID=$$
DRV="plumbe2e$ID"                      # the driver's name: its socket's
SOCK="/run/docker/plugins/$DRV.sock"
P="pe2e$ID"                            # prefix of containers, networks, links, namespaces
TMP=$(mktemp -d /tmp/plumb-docker-e2e.XXXXXX)
STATE="$TMP/state"
IMAGE="plumb-e2e-bb:$ID"
LAN="$P-lan"                           # the macvlan parent's far side
PARENT="pmv$ID"
DAEMON_PID=""
ROOT_HAD_PLUMB_TABLE=no
nft list table inet plumb >/dev/null 2>&1 && ROOT_HAD_PLUMB_TABLE=yes

start_plugin() {
  PLUMB_SYSFS_ROOT="$TMP/sys" "$PLUMB" daemon --socket "$SOCK" --state-dir "$STATE" --log-level info \
    --default-pool base=198.19.128.0/17,size=24 --ovsdb "unix:$TMP/ovs/db.sock" \
    >>"$TMP/plumb.log" 2>&1 &
  DAEMON_PID=$!
  local i
  for i in $(seq 100); do
    [ -S "$SOCK" ] && return 0
    sleep 0.05
  done
  return 1
}

cleanup() {
  set +e
  if [ -n "${OWN_PID:-}" ]; then
    # The restart section's own dockerd, emptied and stopped first.
    local own_ids
    own_ids=$(docker ps -aq --filter "name=^$P-")
    [ -n "$own_ids" ] && docker rm -f $own_ids >/dev/null 2>&1
    docker network rm "$P-own" >/dev/null 2>&1
    kill "$OWN_PID" 2>/dev/null
    wait "$OWN_PID" 2>/dev/null
    OWN_PID=
    unset DOCKER_HOST
  fi
  if docker info >/dev/null 2>&1; then
    local ids
    ids=$(docker ps -aq --filter "name=^$P-")
    [ -n "$ids" ] && docker rm -f $ids >/dev/null 2>&1
    for n in $(docker network ls -q --filter "name=^$P-"); do docker network rm "$n" >/dev/null 2>&1; done
    docker rmi "$IMAGE" >/dev/null 2>&1
  fi
  if [ -n "$DAEMON_PID" ]; then
    kill "$DAEMON_PID" 2>/dev/null
    wait "$DAEMON_PID" 2>/dev/null
    DAEMON_PID=""
  fi
  rm -f "$SOCK"
  release_dockerd
  restore_sysctls
  ovs_stop
  sriov_links_del
  ip link del "$PARENT" 2>/dev/null
  ip link del "pmw$ID" 2>/dev/null
  ip link del "pmz$ID" 2>/dev/null
  [ -e "/run/netns/$LAN" ] && ip netns del "$LAN"
  [ -e "/run/netns/$P-cni" ] && ip netns del "$P-cni"
  [ -e "/run/netns/$P-cnihost" ] && ip netns del "$P-cnihost"
  # A dockerd of this run's own leaves its data root bind-mounted on itself.
  umount_under "$TMP"
  rm -rf "$TMP"
}
# On an abort, the daemon's last words before its log is removed.
before_cleanup() {
  if [ -s "$TMP/plumb.log" ]; then
    echo "# plumb daemon log (last lines):"
    tail -15 "$TMP/plumb.log" | sed 's/^/#   /'
  fi
}
trap on_exit EXIT
trap 'exit 130' INT TERM

T0=$SECONDS


# --- helpers ----------------------------------------------------------------------------------

run_bg() { # NAME NETWORK [docker run flags...]: a long-running container (a failure is reported)
  local name=$1 net=$2 out
  shift 2
  out=$(docker run -d --name "$P-$name" --network "$P-$net" "$@" "$IMAGE" sleep 600 2>&1) ||
    failed "docker run $name on $net" "$out"
}
ip_of() { # NAME NETWORK
  docker inspect -f "{{(index .NetworkSettings.Networks \"$P-$2\").IPAddress}}" "$P-$1"
}
ip6_of() {
  docker inspect -f "{{(index .NetworkSettings.Networks \"$P-$2\").GlobalIPv6Address}}" "$P-$1"
}
in_ctr() { local name=$1; shift; docker exec "$P-$name" "$@"; }
ping_from() { in_ctr "$1" ping -c1 -W2 "$2"; }
# A one-off container on NETWORK pinging ADDR.
ping_once() { docker run --rm --network "$P-$1" "$IMAGE" ping -c1 -W2 "$2"; }
net_id() { docker network inspect -f '{{.Id}}' "$P-$1"; }
store() { sqlite3 "$STATE/plumb.db" "$1"; }
call() { # METHOD BODY: raw plugin call; prints the body, then the status on its own line
  curl -s --unix-socket "$SOCK" -X POST "http://plugin/$1" --data-binary "$2" -w '\n%{http_code}'
}
snapshot() { # everything bad input must not change
  {
    ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort
    nft list table inet plumb 2>/dev/null || true
    for tbl in networks endpoints attachments ip_pools ip_allocs; do
      echo "== $tbl"
      store "SELECT * FROM $tbl ORDER BY 1, 2"
    done
  }
}
unchanged() { # FILE: the snapshot still matches
  diff "$1" <(snapshot)
}
http_get() { curl -s -m 5 "$1"; }
root_links() { ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | grep -E "$1" || true; }
no_root_links() {
  local left
  left=$(root_links "$1")
  [ -z "$left" ] || { echo "left: $left"; return 1; }
}
store_empty() {
  local tbl n bad=0
  for tbl in networks endpoints attachments ip_pools ip_allocs; do
    n=$(store "SELECT count(*) FROM $tbl")
    [ "$n" = 0 ] || { echo "$tbl: $n rows"; store "SELECT * FROM $tbl"; bad=1; }
  done
  return $bad
}
wait_running() { # NAME
  local i
  for i in $(seq 100); do
    [ "$(docker inspect -f '{{.State.Running}}' "$P-$1" 2>/dev/null)" = true ] && return 0
    sleep 0.2
  done
  return 1
}

# --- set-up -----------------------------------------------------------------------------------

section "set-up"
save_sysctls
ensure_dockerd
import_busybox "$IMAGE"
start_plugin
t "plumb daemon is up on $SOCK" test -S "$SOCK"
t "the socket is root's only (0600)" test "$(stat -c %a "$SOCK")" = 600
t "Plugin.Activate lists NetworkDriver and IpamDriver" \
  bash -c "call() { curl -s --unix-socket '$SOCK' -X POST http://plugin/\$1; }; \
    call Plugin.Activate | jq -e '.Implements | index(\"NetworkDriver\") and index(\"IpamDriver\")'"

# --- bridge mode ------------------------------------------------------------------------------

section "bridge mode"
t "network create (bridge, --subnet)" docker network create -d "$DRV" --subnet 198.18.20.0/24 \
  -o plumb.bridge="$P-br" -o plumb.routes=198.19.250.0/24 "$P-br"
t "the bridge $P-br exists with the gateway address" \
  bash -c "ip -4 -o addr show dev '$P-br' | grep -q 198.18.20.1/24"
run_bg a br
run_bg b br --ip 198.18.20.50
A=$(ip_of a br)
t "a got an address in 198.18.20.0/24" grep -q '^198\.18\.20\.' <<<"$A"
t "--ip: b is 198.18.20.50" test "$(ip_of b br)" = 198.18.20.50
t "b has 198.18.20.50/24 on eth0" bash -c "docker exec $P-b ip -4 addr show eth0 | grep -q 198.18.20.50/24"
t "b's default route is via the gateway" bash -c "docker exec $P-b ip route | grep -q 'default via 198.18.20.1'"
t "plumb.routes: b routes 198.19.250.0/24 via the gateway" \
  bash -c "docker exec $P-b ip route | grep -q '198.19.250.0/24 via 198.18.20.1'"
t "b pings a" ping_from b "$A"
t "a pings b" ping_from a 198.18.20.50
t "a pings its gateway" ping_from a 198.18.20.1
t "dockerd added no docker_gwbridge (its list has $P-br)" bash -c \
  "l=\$(docker network ls --format '{{.Name}}') && grep -qx '$P-br' <<<\"\$l\" && ! grep -qx docker_gwbridge <<<\"\$l\""
t "a's host end is a port of $P-br" \
  bash -c "ip -o link show master '$P-br' | grep -q plm"
t "plumb ls shows a's attachment, made by docker" \
  bash -c "'$PLUMB' --state-dir '$STATE' ls --json | jq -e 'map(select(.frontend == \"docker\" and .via == \"$P-br\")) | length == 2'"

section "connect / disconnect"
t "second network (plumb-chosen bridge name)" docker network create -d "$DRV" --subnet 198.18.21.0/24 "$P-br2"
BR2=$(sqlite3 "$STATE/plumb.db" "SELECT json_extract(config, '$.bridge') FROM networks WHERE name='$(net_id br2)'")
t "its bridge is pbr-<id>" grep -q '^pbr-' <<<"$BR2"
t "docker network connect a" docker network connect "$P-br2" "$P-a"
t "a has a second interface with 198.18.21.x" bash -c "docker exec $P-a ip -4 addr | grep -q 'inet 198\.18\.21\.'"
t "a one-off container on br2 pings a there" ping_once br2 "$(ip_of a br2)"
t "docker network disconnect a" docker network disconnect "$P-br2" "$P-a"
t "a no longer has a 198.18.21.x address" bash -c "! docker exec $P-a ip -4 addr | grep -q 'inet 198\.18\.21\.'"
t "br2 has no port left" bash -c "[ -z \"\$(ip -o link show master '$BR2')\" ]"
t "br2's endpoint is gone from the store" \
  test "$(store "SELECT count(*) FROM endpoints WHERE network='$(net_id br2)'")" = 0

section "published ports"
docker run -d --name "$P-web" --network "$P-br" -p 127.0.0.1:18181:80 -p 18182:80 \
  -p 127.0.0.1::80 "$IMAGE" httpd -f -p 80 -h /www >/dev/null
wait_running web
# -p 127.0.0.1::80 names no host port (0 in the request): plumb picks a free one. dockerd
# cannot show it (`docker port` reads a remote driver's port map through a Go type assertion
# that JSON never satisfies), so it is read from plumb's store.
WEB_EP0=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$P-br\").EndpointID}}" "$P-web")
WEB_ANY=$(store "SELECT config FROM endpoints WHERE id='$WEB_EP0'" |
  jq -r '.published[] | select(.host_ip == "127.0.0.1" and .host_port != 18181) | .host_port')
t "-p 127.0.0.1::80 got a host port of plumb's choosing (${WEB_ANY:-none})" \
  bash -c "[ -n '$WEB_ANY' ] && [ '$WEB_ANY' -gt 0 ] && [ '$WEB_ANY' != 18182 ]"
t "...and it reaches the container" \
  bash -c "[ \"\$(curl -s -m 5 http://127.0.0.1:$WEB_ANY/)\" = plumb-ok ]"
t "-p 127.0.0.1:18181:80 reaches the container from the host" \
  bash -c "[ \"\$(curl -s -m 5 http://127.0.0.1:18181/)\" = plumb-ok ]"
t "-p 18182:80 reaches it on the host's bridge address" \
  bash -c "[ \"\$(curl -s -m 5 http://198.18.20.1:18182/)\" = plumb-ok ]"
t "-p 18182:80 reaches it on 127.0.0.1 too" \
  bash -c "[ \"\$(curl -s -m 5 http://127.0.0.1:18182/)\" = plumb-ok ]"
WEB_EP=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$P-br\").EndpointID}}" "$P-web")
t "DNAT rules tagged with web's endpoint exist" bash -c "nft list table inet plumb | grep -q 'plumb:port:$WEB_EP'"
t "docker rm -f web" docker rm -f "$P-web"
t "web's DNAT rules are gone" bash -c "! nft list table inet plumb | grep -q 'plumb:port:$WEB_EP'"
# It answered above; now nothing listens there (refused, not a timeout of a DNAT to nowhere).
terr "port 18181 no longer answers: refused" "Connection refused|Couldn't connect" \
  curl -sS -m 2 http://127.0.0.1:18181/

section "internal network"
t "network create --internal" docker network create -d "$DRV" --internal --subnet 198.18.22.0/24 "$P-int"
run_bg i1 int --cap-add NET_ADMIN
run_bg i2 int
t "i1 pings i2 on the internal network" ping_from i1 "$(ip_of i2 int)"
t "i1 has no default route (its subnet's route it has)" bash -c \
  "r=\$(docker exec $P-i1 ip route) && grep -q 198.18.22.0/24 <<<\"\$r\" && ! grep -q default <<<\"\$r\""
t "no masquerade for 198.18.22.0/24 (198.18.20.0/24's is there)" bash -c \
  "r=\$(nft list table inet plumb) && grep -q 'saddr 198.18.20.0/24' <<<\"\$r\" && ! grep -q 'saddr 198.18.22.0/24' <<<\"\$r\""
# Even with a route added by hand, nothing is forwarded out of the internal bridge.
docker exec "$P-i1" ip route add default via 198.18.22.1 >/dev/null 2>&1 || true
t "i1 has a default route added by hand" bash -c "docker exec $P-i1 ip route | grep -q default"
# The same ping from a container on a's own kind of network arrives: what stops i1's is the
# internal network, not a, and i1's packets leave (a route) and get no answer.
t "a one-off container on br reaches a (the positive control)" ping_once br "$A"
terr "i1 cannot reach a on another network, even so: no answer" "100% packet loss" \
  ping_from i1 "$A"

section "IPv6"
t "network create --ipv6" docker network create -d "$DRV" --ipv6 --subnet 198.18.23.0/24 \
  --subnet fd00:198:18:23::/64 "$P-v6"
run_bg s1 v6
run_bg s2 v6
S2_6=$(ip6_of s2 v6)
t "s2 has an IPv6 address in fd00:198:18:23::/64" grep -q '^fd00:198:18:23:' <<<"$S2_6"
t "s1 pings s2 over IPv6" in_ctr s1 ping -6 -c1 -W2 "$S2_6"
t "s1's IPv6 default route is via the gateway" bash -c "docker exec $P-s1 ip -6 route | grep -q 'default via fd00:198:18:23::1'"

section "plumb IPAM"
t "network create --ipam-driver $DRV" docker network create -d "$DRV" --ipam-driver "$DRV" \
  --subnet 198.18.24.0/24 "$P-ipam"
t "the pool is in plumb's store" test "$(store "SELECT subnet FROM ip_pools")" = 198.18.24.0/24
t "its gateway 198.18.24.1 is allocated in plumb's store" \
  test "$(store "SELECT count(*) FROM ip_allocs WHERE addr='198.18.24.1'")" = 1
run_bg p1 ipam
P1=$(ip_of p1 ipam)
t "p1's address came from plumb's IPAM" \
  test "$(store "SELECT count(*) FROM ip_allocs WHERE addr='$P1'")" = 1
t "a one-off container pings p1" ping_once ipam "$P1"
# A CNI conflist on the same subnet shares the pool: a different address, never p1's.
ip netns add "$P-cnihost"
ip netns add "$P-cni"
CNI_CONF=$(jq -nc --arg st "$STATE" '{cniVersion:"1.0.0", name:"e2e-shared", type:"plumb",
  bridge:"e2eshared", dataDir:$st, ipam:{type:"plumb", subnet:"198.18.24.0/24"}}')
CNI_RC=0
CNI_OUT=$(ip netns exec "$P-cnihost" env CNI_COMMAND=ADD CNI_CONTAINERID=shared1 \
  CNI_NETNS="/run/netns/$P-cni" CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin "$PLUMB" <<<"$CNI_CONF") || CNI_RC=$?
t "a CNI ADD on the same subnet succeeds" test "$CNI_RC" = 0
CNI_IP=$(jq -r '.ips[0].address // empty' <<<"$CNI_OUT" | cut -d/ -f1)
t "a CNI ADD on the same subnet got an address" test -n "$CNI_IP"
t "...neither p1's nor the gateway" bash -c "[ '$CNI_IP' != '$P1' ] && [ '$CNI_IP' != 198.18.24.1 ]"
t "plumb ls shows the CNI attachment and the Docker ones side by side" \
  bash -c "'$PLUMB' --state-dir '$STATE' ls --json | jq -e '(map(select(.frontend == \"cni\" and .container == \"shared1\")) | length == 1) and (map(select(.frontend == \"docker\")) | length >= 1)'"
t "CNI DEL" bash -c "ip netns exec '$P-cnihost' env CNI_COMMAND=DEL CNI_CONTAINERID=shared1 \
  CNI_NETNS=/run/netns/$P-cni CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin '$PLUMB' <<<'$CNI_CONF'"
ip netns del "$P-cni"
ip netns del "$P-cnihost"
t "network create without --subnet takes a pool from --default-pool" \
  docker network create -d "$DRV" --ipam-driver "$DRV" "$P-auto"
t "...198.19.128.0/24" bash -c "docker network inspect -f '{{(index .IPAM.Config 0).Subnet}}' $P-auto | grep -qx 198.19.128.0/24"
t "network rm (plumb IPAM)" docker network rm "$P-auto"

section "macvlan mode"
ip netns add "$LAN"
ip link add "$PARENT" type veth peer name "pmx$ID"
ip link set "pmx$ID" netns "$LAN"
ip -n "$LAN" addr add 198.18.25.254/24 dev "pmx$ID"
ip -n "$LAN" link set "pmx$ID" up
ip link set "$PARENT" up
t "network create (macvlan on a veth parent)" docker network create -d "$DRV" \
  -o plumb.mode=macvlan -o plumb.parent="$PARENT" --subnet 198.18.25.0/24 --gateway 198.18.25.254 "$P-mv"
run_bg m1 mv
run_bg m2 mv
t "m1's eth0 is a macvlan" \
  bash -c "nsenter -n -t \$(docker inspect -f '{{.State.Pid}}' $P-m1) ip -d link show eth0 | grep -q 'macvlan mode bridge'"
t "m1 pings m2" ping_from m1 "$(ip_of m2 mv)"
t "m1 pings the LAN side of the parent" ping_from m1 198.18.25.254
t "the LAN side pings m2" ip netns exec "$LAN" busybox ping -c1 -W2 "$(ip_of m2 mv)"
# passthru: the one child takes over the parent (a second veth pair, its peer in the LAN too).
ip link add "pmw$ID" type veth peer name "pmy$ID"
ip link set "pmy$ID" netns "$LAN"
ip -n "$LAN" addr add 198.18.27.254/24 dev "pmy$ID"
ip -n "$LAN" link set "pmy$ID" up
ip link set "pmw$ID" up
t "network create (macvlan passthru)" docker network create -d "$DRV" -o plumb.mode=macvlan \
  -o plumb.parent="pmw$ID" -o plumb.macvlan_mode=passthru --subnet 198.18.27.0/24 \
  --gateway 198.18.27.254 "$P-pt"
run_bg pt1 pt
t "pt1's eth0 is a passthru macvlan" \
  bash -c "nsenter -n -t \$(docker inspect -f '{{.State.Pid}}' $P-pt1) ip -d link show eth0 | grep -q 'macvlan mode passthru'"
t "pt1 pings the LAN side" ping_from pt1 198.18.27.254

section "passthrough mode (a veth end stands in for a NIC)"
ip link add "pmz$ID" mtu 1450 type veth peer name "pmq$ID"
ip link set "pmq$ID" netns "$LAN"
ip -n "$LAN" addr add 198.18.19.254/24 dev "pmq$ID"
ip -n "$LAN" link set "pmq$ID" up
ip link set "pmz$ID" up
PT_BEFORE=$(ip -o link show "pmz$ID" | sed 's/ state [A-Z]*//')
t "network create -o plumb.mode=passthrough -o plumb.device=pmz$ID" docker network create \
  -d "$DRV" -o plumb.mode=passthrough -o plumb.device="pmz$ID" --subnet 198.18.19.0/24 \
  --gateway 198.18.19.254 "$P-pth"
run_bg th1 pth
t "the device left the host" bash -c "! ip link show pmz$ID"
t "th1's eth0 is the device (MTU 1450)" bash -c "docker exec $P-th1 cat /sys/class/net/eth0/mtu | grep -qx 1450"
t "th1 pings the LAN side" ping_from th1 198.18.19.254
t "docker rm -f th1" docker rm -f "$P-th1"
t "the device is back on the host as it was" \
  bash -c "[ \"\$(ip -o link show pmz$ID | sed 's/ state [A-Z]*//')\" = \"$PT_BEFORE\" ]"

section "sriov mode (a sysfs-shaped tree under PLUMB_SYSFS_ROOT; the VFs are veth ends)"
sriov_tree "$TMP/sys" "${P}pf" 2 "${P}v" "" "$LAN" 198.18.29.254/24
vfs_now() { for v in "${P}v0" "${P}v1"; do ip -o link show "$v" 2>/dev/null | sed 's/ state [A-Z]*//'; done; }
VF_BEFORE=$(vfs_now)
terr "network create without plumb.pf: a clear error" "plumb.mode=sriov needs plumb.pf" \
  docker network create -d "$DRV" -o plumb.mode=sriov --subnet 198.18.29.0/24 "$P-vfbad"
terr "network create on a PF that does not exist: a clear error" "PF nosuch does not exist" \
  docker network create -d "$DRV" -o plumb.mode=sriov -o plumb.pf=nosuch --subnet 198.18.29.0/24 "$P-vfbad"
t "network create -o plumb.mode=sriov -o plumb.pf=${P}pf" docker network create -d "$DRV" \
  -o plumb.mode=sriov -o plumb.pf="${P}pf" --subnet 198.18.29.0/24 --gateway 198.18.29.254 "$P-vf"
run_bg v1 vf
run_bg v2 vf
t "both VFs left the host" bash -c "[ -z \"\$(ip -o link show | grep -E ' ${P}v[01][@:]')\" ]"
t "v1 pings the LAN side through its VF" ping_from v1 198.18.29.254
t "v1 pings v2" ping_from v1 "$(ip_of v2 vf)"
t "the endpoints hold the VFs by PCI address" \
  bash -c "[ \$(sqlite3 '$STATE/plumb.db' 'SELECT pci FROM vf_claims' | grep -c '^0000:3b:02\.[01]\$') = 2 ]"
terr "a third container: no free VF, said so" "no free VF on PF ${P}pf" \
  docker run --rm --network "$P-vf" "$IMAGE" true
t "docker rm -f v1 v2" docker rm -f "$P-v1" "$P-v2"
t "the VFs are back on the host with their names, MTU and MAC" \
  bash -c "[ \"\$(for v in ${P}v0 ${P}v1; do ip -o link show \$v | sed 's/ state [A-Z]*//'; done)\" = \"$VF_BEFORE\" ]"
t "docker network rm vf" docker network rm "$P-vf"
t "no VF is held in the store" test "$(store "SELECT count(*) FROM vf_claims")" = 0
sriov_links_del

section "ovs mode (a private ovsdb-server and ovs-vswitchd, netdev datapath)"
OVSBR="pov$ID"
# Not under t: that runs its command in a subshell, and ovs_stop needs what ovs_start sets.
if ovs_start "$TMP/ovs"; then pass "Open vSwitch is up"; else failed "Open vSwitch is up" "$(cat "$TMP/ovs/start.log")"; fi
t "an OVS bridge $OVSBR (ovs-vsctl)" ovs_vsctl add-br "$OVSBR" -- set bridge "$OVSBR" datapath_type=netdev
terr "network create on a bridge OVS lacks: a clear error" "no Open vSwitch bridge nosuch" \
  docker network create -d "$DRV" -o plumb.mode=ovs -o plumb.bridge=nosuch \
  -o plumb.ovsdb="unix:$TMP/ovs/db.sock" --subnet 198.18.17.0/24 "$P-ovsbad"
terr "plumb.vlan=4096: a clear error" "VLAN from 0 to 4095" \
  docker network create -d "$DRV" -o plumb.mode=ovs -o plumb.bridge="$OVSBR" -o plumb.vlan=4096 \
  -o plumb.ovsdb="unix:$TMP/ovs/db.sock" --subnet 198.18.17.0/24 "$P-ovsbad"
t "network create -o plumb.mode=ovs -o plumb.vlan=10" docker network create -d "$DRV" \
  -o plumb.mode=ovs -o plumb.bridge="$OVSBR" -o plumb.vlan=10 \
  -o plumb.ovsdb="unix:$TMP/ovs/db.sock" --subnet 198.18.17.0/24 "$P-ovs"
# No plumb.ovsdb: the daemon's --ovsdb applies.
t "network create on the same bridge, VLAN 20 (OVSDB from plumb daemon --ovsdb)" \
  docker network create -d "$DRV" -o plumb.mode=ovs -o plumb.bridge="$OVSBR" -o plumb.vlan=20 \
  --subnet 198.18.18.0/24 "$P-ovs20"
run_bg o1 ovs
run_bg o2 ovs
run_bg o3 ovs20
t "two ports on $OVSBR with tag 10" bash -c "[ \$(for p in \$(ovs-vsctl --db=unix:$TMP/ovs/db.sock list-ports $OVSBR); do ovs-vsctl --db=unix:$TMP/ovs/db.sock get port \$p tag; done | grep -cx 10) = 2 ]"
t "o1 pings o2 (VLAN 10)" ping_from o1 "$(ip_of o2 ovs)"
# o3 on VLAN 20, given an address in o1's subnet by hand: the VLAN alone keeps them apart.
t "o3 gets a second address in VLAN 10's subnet" \
  nsenter -n -t "$(docker inspect -f '{{.State.Pid}}' "$P-o3")" ip addr add 198.18.17.200/24 dev eth0
# o1 reached o2 above (same VLAN); o3 holds the address (it answers itself): only the VLAN
# is between them.
t "o3 answers on 198.18.17.200 itself (the positive control)" ping_from o3 198.18.17.200
terr "o1 cannot reach o3 (VLAN 20): no answer" "100% packet loss" ping_from o1 198.18.17.200
t "docker rm -f o1 o2 o3" docker rm -f "$P-o1" "$P-o2" "$P-o3"
t "their ports are gone from $OVSBR" bash -c "[ -z \"\$(ovs-vsctl --db=unix:$TMP/ovs/db.sock list-ports $OVSBR)\" ]"
t "docker network rm ovs ovs20" docker network rm "$P-ovs" "$P-ovs20"
t "Open vSwitch stopped, its taps removed" ovs_stop

section "plumb.mtu and plumb.masquerade"
t "network create -o plumb.mtu=1400 -o plumb.masquerade=false" docker network create -d "$DRV" \
  -o plumb.mtu=1400 -o plumb.masquerade=false --subnet 198.18.28.0/24 "$P-mtu"
run_bg u1 mtu
t "u1's eth0 has MTU 1400" bash -c "docker exec $P-u1 cat /sys/class/net/eth0/mtu | grep -qx 1400"
t "so has the network's bridge" bash -c "ip -o link show dev pbr-$(net_id mtu | cut -c1-11) | grep -q 'mtu 1400'"
t "no masquerade for 198.18.28.0/24" bash -c "! nft list table inet plumb | grep -q 'saddr 198.18.28.0/24'"
t "the default network masquerades 198.18.20.0/24" bash -c "nft list table inet plumb | grep -q 'ip saddr 198.18.20.0/24 ip daddr != 198.18.20.0/24 masquerade'"

section "bad input: a clear error and no change"
snapshot >"$TMP/before"
terr "unknown plumb.* option" "unknown option plumb.bogus" \
  docker network create -d "$DRV" --subnet 198.18.26.0/24 -o plumb.bogus=1 "$P-bad1"
terr "macvlan parent that does not exist" "parent interface nosuch0 does not exist" \
  docker network create -d "$DRV" -o plumb.mode=macvlan -o plumb.parent=nosuch0 --subnet 198.18.26.0/24 "$P-bad2"
terr "bad plumb.mtu" "plumb.mtu must be an MTU" \
  docker network create -d "$DRV" -o plumb.mtu=huge --subnet 198.18.26.0/24 "$P-bad3"
terr "overlapping subnet through plumb's IPAM" "overlaps" \
  docker network create -d "$DRV" --ipam-driver "$DRV" --subnet 198.18.24.128/25 "$P-bad4"
BR_ID=$(net_id br)
OVL=$(jq -nc '{NetworkID:"feedfacefeedface", Options:{"com.docker.network.generic":{}},
  IPv4Data:[{AddressSpace:"LocalDefault", Pool:"198.18.20.0/25", Gateway:"198.18.20.1/25"}], IPv6Data:[]}')
terr "CreateNetwork overlapping another plumb network" "overlaps 198.18.20.0/24 of network" \
  bash -c "out=\$(curl -s --unix-socket '$SOCK' -X POST http://plugin/NetworkDriver.CreateNetwork --data-binary '$OVL' -w ' %{http_code}'); echo \"\$out\"; [[ \$out == *' 200' ]]"
terr "malformed JSON" "malformed JSON.* 400$" \
  bash -c "out=\$(curl -s --unix-socket '$SOCK' -X POST http://plugin/NetworkDriver.CreateEndpoint --data-binary '{\"NetworkID\":' -w ' %{http_code}'); echo \"\$out\"; [[ \$out == *' 200' ]]"
terr "unknown NetworkID" "is not a plumb network.* 500$" \
  bash -c "out=\$(curl -s --unix-socket '$SOCK' -X POST http://plugin/NetworkDriver.CreateEndpoint --data-binary '{\"NetworkID\":\"0123abcd\",\"EndpointID\":\"42\"}' -w ' %{http_code}'); echo \"\$out\"; [[ \$out == *' 200' ]]"
terr "unknown EndpointID" "endpoint 4242 of network .* is unknown.* 500$" \
  bash -c "out=\$(curl -s --unix-socket '$SOCK' -X POST http://plugin/NetworkDriver.Join --data-binary '{\"NetworkID\":\"$BR_ID\",\"EndpointID\":\"4242\",\"SandboxKey\":\"/nonexistent\"}' -w ' %{http_code}'); echo \"\$out\"; [[ \$out == *' 200' ]]"
t "unknown PoolID: IPAM's Error field says so" \
  bash -c "curl -s --unix-socket '$SOCK' -X POST http://plugin/IpamDriver.RequestAddress --data-binary '{\"PoolID\":\"nosuch\"}' | jq -e '.Error == \"pool nosuch is unknown\"'"
t "none of it changed a link, a rule or a row" unchanged "$TMP/before"
t "no network named $P-bad* exists" bash -c "! docker network ls --format '{{.Name}}' | grep -q '^$P-bad'"

section "concurrency: 20 docker run at once"
PIDS=()
for i in $(seq 20); do
  docker run --rm --network "$P-br" "$IMAGE" ping -c1 -W3 198.18.20.1 >"$TMP/run$i.log" 2>&1 &
  PIDS+=($!)
done
OKS=0
BAD=""
for i in $(seq 20); do
  if wait "${PIDS[$((i - 1))]}"; then OKS=$((OKS + 1)); else BAD+="run $i: $(tail -3 "$TMP/run$i.log")"$'\n'; fi
done
if [ "$OKS" = 20 ]; then pass "20 of 20 concurrent containers came up and pinged the gateway"
else failed "20 of 20 concurrent containers came up and pinged the gateway ($OKS did)" "$BAD"; fi
t "their endpoints are all gone again" \
  test "$(store "SELECT count(*) FROM endpoints WHERE network='$BR_ID'")" = 2

section "plugin kill -9 and restart"
kill -9 "$DAEMON_PID"
wait "$DAEMON_PID" 2>/dev/null || true
DAEMON_PID=""
t "with the plugin dead, a still pings b" ping_from a 198.18.20.50
start_plugin
t "the restarted plugin serves again" test -S "$SOCK"
run_bg c br
t "a container started after the restart joins and pings a" ping_from c "$A"
t "...and b pings it" ping_from b "$(ip_of c br)"
t "docker rm -f c after the restart" docker rm -f "$P-c"

section "container labels: plumb.expose and plumb.link (the daemon follows dockerd's start events)"
# NAME PORT: an HTTP GET to 127.0.0.1:PORT inside NAME answers plumb-ok (through nc:
# busybox-static's wget crashes in these containers).
served() {
  local out
  out=$(docker exec "$P-$1" sh -c "printf 'GET / HTTP/1.0\r\n\r\n' | nc -w 5 127.0.0.1 $2" 2>&1)
  echo "$out"
  [ "${out##*$'\n'}" = plumb-ok ]
}
soon() { # COMMAND...: true within 5 s (the daemon acts on the start event, after docker run returns)
  local i
  for i in $(seq 100); do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; done
  "$@"
}
docker run -d --name "$P-lsrv" --network "$P-br" --label plumb.expose=lweb:80 "$IMAGE" \
  httpd -f -p 80 -h /www >/dev/null
wait_running lsrv
LSRV=$(ip_of lsrv br)
run_bg lcli br --label plumb.link=lweb:8080,lweb2:8081
LCLI_ID=$(docker inspect -f '{{.Id}}' "$P-lcli")
run_bg lbad br --label 'plumb.link=web!:80' --label plumb.expose=lbad
t "plumb.expose=lweb:80 exposes lsrv's address on the plumb network ($LSRV)" soon bash -c \
  "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '.services | map(select(.name == \"lweb\" and .address == \"$LSRV\" and .port == 80)) | length == 1'"
t "plumb.link=lweb:8080,lweb2:8081 makes two links, guest docker-<id>" soon bash -c \
  "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '.links | map(select(.guest == \"docker-$LCLI_ID\")) | map(.name) == [\"lweb\", \"lweb2\"]'"
t "lcli's /etc/hosts names lweb on 127.0.0.1, as --link did" \
  soon docker exec "$P-lcli" grep -qE '^127.0.0.1[[:space:]]+lweb[[:space:]]' /etc/hosts
t "lcli reaches lsrv's httpd through its link" served lcli 8080
t "a bad plumb.link value is one warning in the daemon's log" \
  soon grep -qE "container $P-lbad: label plumb.link: failed to link web!/tcp: .*not a service name" "$TMP/plumb.log"
t "a plumb.expose without a port is one warning too" \
  soon grep -qE "container $P-lbad: label plumb.expose=lbad: 'lbad' has no port" "$TMP/plumb.log"
t "...and neither made anything" bash -c \
  "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '[.services[], .links[]] | map(select(.name == \"lbad\" or .guest == \"docker-$(docker inspect -f '{{.Id}}' "$P-lbad")\")) | length == 0'"
t "plumb unlink lcli lweb2 undoes one label's link" "$PLUMB" --state-dir "$STATE" unlink "$P-lcli" lweb2
t "plumb unlink lcli lweb takes its /etc/hosts line too" bash -c \
  "'$PLUMB' --state-dir '$STATE' unlink $P-lcli lweb >/dev/null && ! docker exec $P-lcli grep -qw lweb /etc/hosts"
t "docker restart lcli links it again" docker restart -t 1 "$P-lcli"
t "...lweb listens again in lcli" soon served lcli 8080
t "docker stop lsrv: its service goes with its netns" docker stop -t 1 "$P-lsrv"
t "...lweb has no endpoint left" soon bash -c \
  "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '.services | map(select(.name == \"lweb\")) | length == 0'"
t "docker rm -f lcli lbad lsrv" docker rm -f "$P-lcli" "$P-lbad" "$P-lsrv"
t "...and no link or service is left" soon bash -c \
  "'$PLUMB' --state-dir '$STATE' --json ls --links | jq -e '(.services | length) == 0 and (.links | length) == 0'"

section "dockerd restart with a --restart always container"
if [ "$STARTED_DOCKERD" = yes ]; then
  run_bg r br --restart always
  stop_dockerd
  start_dockerd
  t "r is running again after dockerd restarted" wait_running r
  R=$(ip_of r br)
  t "r has an address on the plumb network again" grep -q '^198\.18\.20\.' <<<"$R"
  t "r pings its gateway" ping_from r 198.18.20.1
  t "a one-off container pings r" ping_once br "$R"
  for n in a b i1 i2 s1 s2 p1 m1 m2 pt1 u1; do docker rm -f "$P-$n" >/dev/null 2>&1 || true; done
else
  # dockerd was already running and is not this script's to restart: a dockerd of this run's own
  # beside it (its own data root, exec root, socket and pidfile; no bridge and no iptables of
  # its own, so the running one's are left alone) is restarted instead.
  OWN="$TMP/own-dockerd"
  own_dockerd() {
    dockerd --data-root "$OWN/data" --exec-root "$OWN/exec" --pidfile "$OWN/pid" \
      -H "unix://$OWN/sock" --bridge none --iptables=false --ip6tables=false \
      >>"$TMP/own-dockerd.log" 2>&1 &
    OWN_PID=$!
    local i
    for i in $(seq 150); do
      DOCKER_HOST="unix://$OWN/sock" docker info >/dev/null 2>&1 && return 0
      sleep 0.2
    done
    tail -5 "$TMP/own-dockerd.log"
    return 1
  }
  stop_own_dockerd() {
    [ -n "${OWN_PID:-}" ] || return 0
    kill "$OWN_PID" 2>/dev/null
    wait "$OWN_PID" 2>/dev/null
    OWN_PID=
  }
  mkdir -p "$OWN"
  # Started here, not inside `t` (a command substitution: its pid would be lost with it).
  if own_dockerd; then pass "a dockerd of this run's own starts beside the running one"; else
    failed "a dockerd of this run's own starts beside the running one"; fi
  FIRST_OWN_PID=$OWN_PID
  export DOCKER_HOST="unix://$OWN/sock"
  import_busybox "$IMAGE"
  t "network create on it with plumb's driver" docker network create -d "$DRV" \
    --subnet 198.18.26.0/24 -o plumb.bridge="$P-obr" "$P-own"
  run_bg r own --restart always
  stop_own_dockerd
  t "that dockerd stopped" bash -c "! kill -0 $FIRST_OWN_PID 2>/dev/null"
  terr "...and answers no more" "Cannot connect to the Docker daemon" docker info
  if own_dockerd; then pass "it starts again"; else failed "it starts again"; fi
  t "...as a new process" test "$OWN_PID" != "$FIRST_OWN_PID"
  t "r is running again after that dockerd restarted" wait_running r
  R=$(ip_of r own)
  t "r has an address on the plumb network again" grep -q '^198\.18\.26\.' <<<"$R"
  t "r pings its gateway" ping_from r 198.18.26.1
  t "a one-off container pings r" ping_once own "$R"
  t "docker rm -f r" docker rm -f "$P-r"
  t "docker network rm own" docker network rm "$P-own"
  docker rmi "$IMAGE" >/dev/null 2>&1
  stop_own_dockerd
  t "no dockerd of this run's own is left" bash -c "! pgrep -f '^dockerd --data-root $OWN/'"
  unset DOCKER_HOST
fi

section "teardown"
ids=$(docker ps -aq --filter "name=^$P-")
[ -n "$ids" ] && docker rm -f $ids >/dev/null
for n in br br2 int v6 ipam mv pt pth mtu; do
  t "docker network rm $n" docker network rm "$P-$n"
done
t "plumb's store holds no network, endpoint, attachment, pool or address" store_empty
t "no plumb link is left (bridges, veth ends)" no_root_links "^($P|pbr-|plm|plc|plt)"
if [ "$ROOT_HAD_PLUMB_TABLE" = no ]; then
  terr "the nft table inet plumb is gone" "No such file or directory" nft list table inet plumb
else
  t "the nft table inet plumb is still there, as at the start" nft list table inet plumb
fi
t "the daemon logged no error" bash -c "! grep -E ' (error|critical) ' '$TMP/plumb.log'"
# Asked while dockerd still runs: each listing must succeed, and both be empty.
t "no docker container or network named $P-* is left" \
  bash -c "c=\$(docker ps -aq --filter name=^$P-) && n=\$(docker network ls -q --filter name=^$P-) && [ -z \"\$c\$n\" ]"
trap - EXIT
cleanup
t "the socket is gone" test ! -e "$SOCK"
t "the temp dir is gone (no mount left in it)" test ! -e "$TMP"
t "no netns named $P-* remains" bash -c "! ip netns list | grep -q '^$P-'"

echo "# $((SECONDS - T0)) s"
echo "$PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
