#!/usr/bin/env bash
# Two containers talking over plumb, through the CNI front end.
# A network namespace stands in for the host (so this machine's own network is left alone);
# two more stand in for containers. The plugin is the installed /opt/cni/bin/plumb.
set -euo pipefail

PLUGIN=${1:-/opt/cni/bin/plumb}
HOST=plumb-demo-host
STATE=$(mktemp -d /tmp/plumb-demo.XXXXXX)

cleanup() {
  set +e
  for c in c1 c2; do
    [ -e /run/netns/plumb-demo-$c ] && run DEL "$c" >/dev/null
    ip netns del plumb-demo-$c 2>/dev/null
  done
  ip netns del $HOST 2>/dev/null
  rm -rf "$STATE"
}
trap cleanup EXIT

CONF=$(cat <<JSON
{
  "cniVersion": "1.0.0",
  "name": "demo",
  "type": "plumb",
  "bridge": "plumb-demo0",
  "isGateway": true,
  "dataDir": "$STATE",
  "ipam": { "type": "plumb", "subnet": "198.18.100.0/24" }
}
JSON
)

run() {  # run VERB CONTAINER
  echo "$CONF" | ip netns exec $HOST env CNI_COMMAND="$1" CNI_CONTAINERID="demo-$2" \
    CNI_NETNS=/run/netns/plumb-demo-$2 CNI_IFNAME=eth0 CNI_PATH=/opt/cni/bin:/usr/lib/cni "$PLUGIN"
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "network config (what a runtime hands the plugin on stdin)"
echo "$CONF"
ip netns add $HOST
ip netns exec $HOST ip link set lo up
for c in c1 c2; do
  ip netns add plumb-demo-$c
  say "CNI ADD for container $c"
  run ADD "$c" | jq .
done

say "inside c1"
ip netns exec plumb-demo-c1 ip -br addr show eth0
ip netns exec plumb-demo-c1 ip route
say "on the (stand-in) host: the bridge and its ports"
ip netns exec $HOST ip -br link show master plumb-demo0
say "c1 pings c2"
ip netns exec plumb-demo-c1 busybox ping -c 3 -W 2 198.18.100.3
say "what plumb knows"
plumb --state-dir "$STATE" ls
for c in c1 c2; do
  say "CNI DEL for container $c"
  run DEL "$c" && echo "ok"
done
say "done: namespaces and state are removed on exit"
