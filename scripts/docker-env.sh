# Sourced by the Docker e2e test and the Docker benchmark: a dockerd to talk to (started when
# none answers) and a busybox image made with `docker import` (no registry here).
# Needs TMP (a scratch dir) set by the caller.

DOCKERD_PID=""
STARTED_DOCKERD=no
# The dockerd the caller talks to: the running one's default socket, or the one started here,
# whose state (data root, exec root, socket, pidfile) is all under $TMP/dockerd. Then docker
# (DOCKER_HOST) and plumb (PLUMB_DOCKER_SOCK) are pointed at it, and DOCKER_CONTAINERD_STATE
# names where its containerd keeps its tasks (plumb's containerd:moby/<id> guests).
DOCKER_SOCK=/var/run/docker.sock
DOCKER_CONTAINERD_STATE=/run/docker/containerd/daemon/io.containerd.runtime.v2.task
HAD_DOCKER0=no
NEW_TABLES=()
SAVED_SYSCTLS=()

# The root namespace's forwarding sysctls, as they are now: dockerd turns them on when it
# starts, and plumb's daemon for its IPv4 and IPv6 networks. restore_sysctls puts back what
# save_sysctls saw (all.forwarding first: writing it resets every interface's own).
FORWARDING_SYSCTLS=(net.ipv6.conf.all.forwarding net.ipv6.conf.default.forwarding
  net.ipv4.ip_forward net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables)
save_sysctls() {
  local k v
  SAVED_SYSCTLS=()
  for k in "${FORWARDING_SYSCTLS[@]}"; do
    v=$(sysctl -n "$k" 2>/dev/null) && SAVED_SYSCTLS+=("$k=$v")
  done
}
restore_sysctls() {
  local kv
  for kv in "${SAVED_SYSCTLS[@]}"; do sysctl -qw "$kv" >/dev/null 2>&1 || true; done
}

# umount_under DIR: every mount at or below DIR, deepest first (a dockerd leaves its data root
# bind-mounted on itself).
umount_under() {
  grep -o " $1[^ ]*" /proc/mounts | sort -r | while read -r m; do umount -l "$m"; done
}

# Starts dockerd unless one answers; STARTED_DOCKERD=yes when this did.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  ip link show docker0 >/dev/null 2>&1 && HAD_DOCKER0=yes
  # dockerd's iptables(-nft) tables outlive it: those it creates now go when it is released.
  local t
  for t in "ip filter" "ip nat" "ip6 filter" "ip6 nat"; do
    # shellcheck disable=SC2086  # "family table" is two words on purpose
    nft list table $t >/dev/null 2>&1 || NEW_TABLES+=("$t")
  done
  start_dockerd
  STARTED_DOCKERD=yes
}
start_dockerd() {
  local d="$TMP/dockerd"
  mkdir -p "$d"
  dockerd --data-root "$d/data" --exec-root "$d/exec" --pidfile "$d/pid" -H "unix://$d/docker.sock" \
    >>"$TMP/dockerd.log" 2>&1 &
  DOCKERD_PID=$!
  DOCKER_SOCK="$d/docker.sock"
  DOCKER_CONTAINERD_STATE="$d/exec/containerd/daemon/io.containerd.runtime.v2.task"
  export DOCKER_HOST="unix://$DOCKER_SOCK" PLUMB_DOCKER_SOCK="$DOCKER_SOCK"
  local i
  for i in $(seq 150); do
    docker info >/dev/null 2>&1 && return 0
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  echo "dockerd did not start:" >&2
  tail -20 "$TMP/dockerd.log" >&2
  return 1
}
stop_dockerd() {
  [ -n "$DOCKERD_PID" ] || return 0
  kill "$DOCKERD_PID" 2>/dev/null || true
  local i
  for i in $(seq 150); do
    kill -0 "$DOCKERD_PID" 2>/dev/null || break
    sleep 0.2
  done
  wait "$DOCKERD_PID" 2>/dev/null || true
  DOCKERD_PID=""
}
# Stops the dockerd ensure_dockerd started, and removes the docker0 bridge and the
# iptables tables it made (its FORWARD DROP policy among them).
release_dockerd() {
  [ "$STARTED_DOCKERD" = yes ] || return 0
  stop_dockerd
  # Its data root stays bind-mounted on itself; its state goes with $TMP.
  umount_under "$TMP/dockerd"
  unset DOCKER_HOST PLUMB_DOCKER_SOCK
  [ "$HAD_DOCKER0" = yes ] || ip link del docker0 2>/dev/null || true
  local t
  for t in "${NEW_TABLES[@]}"; do
    # shellcheck disable=SC2086
    nft delete table $t 2>/dev/null || true
  done
}
# import_busybox IMAGE: busybox-static's binary and its applet links, plus /www/index.html.
import_busybox() {
  local root="$TMP/image-root" a
  mkdir -p "$root/bin" "$root/tmp" "$root/www"
  cp "$(readlink -f "$(command -v busybox)")" "$root/bin/busybox"
  for a in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
  done
  echo plumb-ok >"$root/www/index.html"
  tar -C "$root" -c . | docker import - "$1" >/dev/null
}
