#!/usr/bin/env bash
# virtio-net on a tap device (krun_add_net_tap) that the test creates inside the test host:
# zktap0 with 198.51.100.1/24 (a documentation range; the test host has no NIC, so nothing
# leaves it), busybox udhcpd on it handing out 198.51.100.2, NET_FLAG_DHCP_CLIENT in the
# guest. The guest fetches 256 KiB from busybox httpd on 198.51.100.1 (checksum compared) and
# serves a file back that the test host fetches from 198.51.100.2.
# The test host boots zkrun's own guest kernel, which has CONFIG_TUN (kernelfw/config-x86_64.fragment),
# so a tap that cannot be created is a failure, not a skip. The tap backend is also tested
# natively, against the machine kernel's IPv4 stack in a private network namespace
# (libkrun-c/virtio/net/net_tests.zig, "net: a real tap device", `zig build test` as root).
source "$(dirname "$0")/96-net-lib.sh"
TAP=zktap0
HA=198.51.100.1
GA=198.51.100.2
ip tuntap add dev $TAP mode tap || { echo "FAIL: cannot create a tap device in the test host$( [[ -e /dev/net/tun ]] || echo ': no /dev/net/tun (kernelfw/config-x86_64.fragment must keep CONFIG_TUN=y)')"; exit 1; }
cleanup_tap() { cleanup; ip link del $TAP 2>/dev/null; }
trap cleanup_tap EXIT
ip addr add $HA/24 dev $TAP && ip link set $TAP up || { echo "FAIL: $TAP setup"; exit 1; }

mkdir -p "$work/www" && head -c 262144 /dev/urandom >"$work/www/blob"
sum=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
W=$(free_port)
F=$(free_port)
busybox httpd -f -p "$HA:$W" -h "$work/www" & pids+=($!)
for _ in $(seq 50); do busybox wget -q -O /dev/null "http://$HA:$W/blob" 2>/dev/null && break; sleep 0.2; done
# udhcpd: one lease, a short ARP probe of the address it offers (nobody answers on zktap0).
cat >"$work/udhcpd.conf" <<EOF
start $GA
end $GA
max_leases 1
interface $TAP
lease_file $work/udhcpd.leases
option subnet 255.255.255.0
option router $HA
option lease 600
EOF
touch "$work/udhcpd.leases"
busybox udhcpd -f -a 100 "$work/udhcpd.conf" >"$work/udhcpd.log" 2>&1 & pids+=($!)
mkdir -p "$ROOTFS/www" && echo "served by the guest over a tap" >"$ROOTFS/www/index.html"

vm_bg -d -t $TAP -- "$(net_guest_script "http://$HA:$W/blob" "$F")"
fetch_from_guest "http://$GA:$F/index.html"
vm_end
ctx="rc=$rc
$out
udhcpd: $(tail -5 "$work/udhcpd.log")"
expect "DHCP from udhcpd on $TAP: eth0 has $GA/24" 'has "P addr=$GA/24"' "$ctx"
expect "DHCP: default route via $HA on eth0" 'has "P route=$HA eth0"' "$ctx"
expect "guest wget of 256 KiB from httpd on $HA:$W over the tap: checksum matches" 'has "P wget_sum=$sum"' "$ctx"
expect "test host wget from the guest's httpd on $GA:$F over the tap" '[[ $got == "served by the guest over a tap" ]]' "got='$got'
$ctx"
expect "no kernel oops" '! has "P kernel=oops"' "$ctx"
expect "the VM exits 0" '[[ $rc == 0 ]]' "$ctx"
echo "$fails failed"
[[ $fails == 0 ]]
