# Sourced by the e2e scripts that need Open vSwitch: a private ovsdb-server and ovs-vswitchd
# (Debian's openvswitch-switch) on a database, sockets, pidfiles and logs under DIR, stopped
# by pid. Without the openvswitch kernel module bridges use the netdev datapath, whose
# ovs-vswitchd makes tap devices (ovs-netdev and one per bridge) in the namespace it runs in:
# ovs_stop removes them.
#
#   ovs_start DIR [NETNS]   start both (in NETNS when given); OVSDB at unix:DIR/db.sock
#   ovs_vsctl ARGS...       ovs-vsctl on that database (reading back only)
#   ovs_stop                bridges deleted, daemons stopped, taps removed

OVS_DIR=""
OVS_NS=""
OVS_HAD_NETDEV=no

ovs_in() { if [ -n "$OVS_NS" ]; then ip netns exec "$OVS_NS" "$@"; else "$@"; fi; }
ovs_vsctl() { ovs-vsctl --db="unix:$OVS_DIR/db.sock" --timeout=10 "$@"; }

ovs_start() {
  OVS_DIR=$1
  OVS_NS=${2:-}
  mkdir -p "$OVS_DIR"
  ovs_in ip link show ovs-netdev >/dev/null 2>&1 && OVS_HAD_NETDEV=yes
  export OVS_RUNDIR=$OVS_DIR OVS_LOGDIR=$OVS_DIR OVS_DBDIR=$OVS_DIR OVS_SYSCONFDIR=$OVS_DIR
  ovsdb-tool create "$OVS_DIR/conf.db" /usr/share/openvswitch/vswitch.ovsschema || return 1
  ovs_in ovsdb-server "$OVS_DIR/conf.db" --remote="punix:$OVS_DIR/db.sock" \
    --unixctl="$OVS_DIR/ovsdb.ctl" --pidfile="$OVS_DIR/ovsdb.pid" \
    --log-file="$OVS_DIR/ovsdb.log" --detach --no-chdir 2>>"$OVS_DIR/start.log" || return 1
  ovs_vsctl --no-wait init || return 1
  ovs_in ovs-vswitchd "unix:$OVS_DIR/db.sock" --unixctl="$OVS_DIR/vswitchd.ctl" \
    --pidfile="$OVS_DIR/vswitchd.pid" --log-file="$OVS_DIR/vswitchd.log" --detach --no-chdir \
    2>>"$OVS_DIR/start.log"
}

# Whether a process is still running (a detached daemon's zombie counts as gone).
ovs_running() { [ -r "/proc/$1/stat" ] && ! awk '{print $3}' "/proc/$1/stat" | grep -qx Z; }

ovs_stop() {
  [ -n "$OVS_DIR" ] || return 0
  local br pid which i
  if [ -S "$OVS_DIR/db.sock" ]; then
    for br in $(ovs_vsctl --no-wait list-br 2>/dev/null); do ovs_vsctl del-br "$br" 2>/dev/null; done
  fi
  for which in vswitchd ovsdb; do
    pid=$(cat "$OVS_DIR/$which.pid" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null
    for i in $(seq 200); do ovs_running "$pid" || break; sleep 0.01; done
  done
  [ "$OVS_HAD_NETDEV" = no ] && ovs_in ip link del ovs-netdev 2>/dev/null
  OVS_DIR=""
  return 0
}
