# Sourced by the e2e scripts that test SR-IOV mode. No NIC here has SR-IOV: a directory tree
# of sysfs's shape (what PLUMB_SYSFS_ROOT points plumb at) holds a PF and its VFs, whose
# netdevs are veth ends in namespace HOSTNS (the root one when empty); each VF's peer is a
# port of bridge lanbr in namespace LAN, which holds ADDR.
#
#   sriov_tree SYS PF N VFPREFIX HOSTNS LAN ADDR/LEN   the tree under SYS, the links made
#   sriov_links_del                                    the PF's and VFs' links removed

SRIOV_NS=""
SRIOV_PF=""
SRIOV_VFS=()

sriov_ip() { if [ -n "$SRIOV_NS" ]; then ip -n "$SRIOV_NS" "$@"; else ip "$@"; fi; }

sriov_tree() {
  local sys=$1 pf=$2 n=$3 prefix=$4 lan=$6 addr=$7 i pci pfpci=0000:3b:00.0
  SRIOV_NS=$5
  SRIOV_PF=$pf
  SRIOV_VFS=()
  _sriov_dev() { # IFNAME BDF: the function's directory and class/net's link to it
    mkdir -p "$sys/bus/pci/devices/$2/net/$1" "$sys/class/net/$1"
    ln -s "../../../bus/pci/devices/$2" "$sys/class/net/$1/device"
  }
  mkdir -p "$sys/bus/pci/drivers/iavf"
  sriov_ip link add "$pf" type veth peer name "${pf}p" || return 1
  sriov_ip link set "$pf" up
  _sriov_dev "$pf" "$pfpci"
  echo "$n" >"$sys/bus/pci/devices/$pfpci/sriov_totalvfs"
  echo "$n" >"$sys/bus/pci/devices/$pfpci/sriov_numvfs"
  ip -n "$lan" link add lanbr type bridge
  ip -n "$lan" link set lanbr up
  ip -n "$lan" addr add "$addr" dev lanbr
  for i in $(seq 0 $((n - 1))); do
    pci=0000:3b:02.$i
    sriov_ip link add "$prefix$i" type veth peer name "${prefix}q$i" || return 1
    SRIOV_VFS+=("$prefix$i")
    sriov_ip link set "${prefix}q$i" netns "$lan"
    ip -n "$lan" link set "${prefix}q$i" master lanbr up
    sriov_ip link set "$prefix$i" up
    _sriov_dev "$prefix$i" "$pci"
    ln -s "../$pci" "$sys/bus/pci/devices/$pfpci/virtfn$i"
    ln -s "../$pfpci" "$sys/bus/pci/devices/$pci/physfn"
    ln -s "../../drivers/iavf" "$sys/bus/pci/devices/$pci/driver"
  done
}

sriov_links_del() {
  local v
  [ -n "$SRIOV_PF" ] && sriov_ip link del "$SRIOV_PF" 2>/dev/null
  for v in "${SRIOV_VFS[@]}"; do sriov_ip link del "$v" 2>/dev/null; done
  SRIOV_PF=""
  SRIOV_VFS=()
  return 0
}
