# Sourced by tests/vm/96..99-net-*.test.sh (inside the test host): the busybox rootfs, the runner
# (96-net-vm.c), and a dummy interface zk0 (192.0.2.1/24, default route via 192.0.2.2) so that
# passt finds a host interface to copy; the test host has no NIC, so nothing leaves it: passt
# maps the guest's gateway address (192.0.2.2) to the test host's loopback, where the test's
# servers listen (127.0.0.1 only). Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
# Built on the machine by 96-net.prepare.sh (vm-prog-build.sh), or here when that did not run.
RUN=$(tests/vm/vm-prog-build.sh 96-net-vm) || { echo "FAIL: tests/vm/vm-prog-build.sh 96-net-vm"; exit 1; }
command -v busybox >/dev/null || skip "no busybox in the test host (httpd, wget)"
command -v ip >/dev/null || skip "no ip(8) in the test host"
work=$(mktemp -d /tmp/zkrun-net-vm.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; ip link del zk0 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
ip link add zk0 type dummy 2>/dev/null || skip "cannot create a dummy interface in the test host (not root, or no CONFIG_DUMMY)"
ip addr add 192.0.2.1/24 dev zk0 && ip link set zk0 up && ip route add default via 192.0.2.2 dev zk0 ||
  { echo "FAIL: zk0 setup"; exit 1; }
ip link set lo up 2>/dev/null
base=$PWD/.tools/init-vm-rootfs
[[ -x $base/bin/busybox ]] || scripts/mkrootfs.sh "$base" >/dev/null || { echo "FAIL: scripts/mkrootfs.sh"; exit 1; }
ROOTFS=$work/rootfs
cp -a "$base" "$ROOTFS" || { echo "FAIL: copy of the rootfs"; exit 1; }
GW=192.0.2.2
has() { grep -aqxF -- "$1" <<<"$p"; }
command -v python3 >/dev/null || skip "no python3 in the test host (free ports)"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# httpd DIR PORT: busybox httpd on the test host's 127.0.0.1:PORT.
httpd() {
  busybox httpd -f -p "127.0.0.1:$2" -h "$1" & pids+=($!)
  for _ in $(seq 50); do busybox wget -q -O /dev/null "http://127.0.0.1:$2/" 2>/dev/null && return 0; sleep 0.2; done
  echo "FAIL: httpd on 127.0.0.1:$2 did not start"; exit 1
}
# vm_bg, wait_line, vm_end: the VM in the background.
source "$(dirname "${BASH_SOURCE[0]}")/bg-vm-lib.sh"
guest_oops_check='if dmesg | sed -n "/Run \/init.krun/,\$p" | grep -qE "BUG:|Oops|general protection|WARNING:|Call Trace"; then echo "P kernel=oops"; dmesg | sed -n "/Run \/init.krun/,\$p" | tail -40; fi'
# net_guest_script URL PORT [MORE]: the guest side both NIC tests run: eth0's address and
# default route as P lines, the checksum of URL fetched over the NIC, MORE (extra guest lines),
# then httpd on PORT serving /www, waiting for vm_end.
net_guest_script() {
  cat <<EOF
echo "P addr=\$(ip -4 addr show dev eth0 | sed -n 's/.*inet \([0-9.]*\/[0-9]*\).*/\1/p')"
echo "P route=\$(ip route | sed -n 's/^default via \([0-9.]*\) dev \(.*\)/\1 \2/p' | cut -d' ' -f1,2)"
echo "P wget_sum=\$(wget -q -O - $1 | sha256sum | cut -d' ' -f1)"
${3:-}
httpd -p $2 -h /www && echo 'P serving=yes'
$guest_oops_check
waitdone
EOF
}
# fetch_from_guest URL: once the guest serves, the test host fetches URL (3 tries) into $got.
# timeout(1), not wget -T: Debian's busybox-static 1.35 wget segfaults with -T.
fetch_from_guest() {
  got="(the guest never said P serving=yes)"
  wait_line 'P serving=yes' 300 || return 0
  for _ in 1 2 3; do got=$(timeout 20 busybox wget -q -O - "$1" 2>&1) && break; sleep 1; done
}
