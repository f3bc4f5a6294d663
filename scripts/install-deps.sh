#!/usr/bin/env bash
# Installs, with apt, whatever plumb needs to build, test, lint, benchmark and demo that this
# machine lacks. Debian 12 packages only; run as root. Does nothing when all is present.
set -euo pipefail

packages=(
  # build
  cmake make g++ pkg-config
  libmnl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libnftables-dev libsqlite3-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # the Docker driver's HTTP server (dlopen'd by `plumb daemon` only; see docs/architecture.md)
  libmicrohttpd-dev
  # the command line's Docker/podman guests (Engine API over a unix socket; dlopen'd), and
  # libcrypto's MD5 for U:<name> MACs as pipework derives them (dlopen'd)
  libcurl4-openssl-dev libssl3
  # run: the kernel-side tools plumb itself does not use but tests and the demo read back with
  iproute2 nftables iptables busybox-static sqlite3 jq procps kmod time
  # e2e: a real libcni consumer and the reference plugins plumb is chained with and compared to
  golang-go golang-github-appc-cni-dev containernetworking-plugins
  # e2e: a real dockerd for the remote network and IPAM drivers, curl for raw plugin calls
  docker.io curl
  # e2e: the command line's containerd guests (ctr comes with containerd)
  containerd
  # e2e: podman with its CNI backend running plumb's conflists (runc, conmon come with it)
  podman
  # e2e: containerd's CRI plugin driven by a small CRI client built on Go's gRPC
  golang-google-grpc-dev
  # the command line's DHCP tests: a real DHCP server
  dnsmasq-base isc-dhcp-client dhcpcd-base
  # the netns tests' crash injection: an ADD SIGKILLed at its Nth netlink send
  strace
  # OVS mode tests: a real ovsdb-server and ovs-vswitchd (started by the tests on private paths)
  openvswitch-switch
  # the proxy's benchmark: the references it is measured against (socat, HAProxy) and the
  # load generators (iperf3 for bulk, wrk for new connections per second)
  iperf3 socat haproxy wrk
  # across hosts: a real etcd v3 cluster (members started by the tests in their namespaces)
  etcd-server etcd-client
  # the sanitizer build and the fuzzers (libFuzzer comes with clang's runtime libraries)
  clang libclang-rt-14-dev
  # lint
  clang-format clang-tidy
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-deps: missing packages (${missing[*]}); run as root to install them" >&2
  exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
