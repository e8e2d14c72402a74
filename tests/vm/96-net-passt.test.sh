#!/usr/bin/env bash
# virtio-net over Debian's passt, started as crun starts it (socketpair, `passt --fd`), with
# NET_FLAG_DHCP_CLIENT: init configures eth0 by DHCP (address, default route via passt's
# gateway); the guest fetches 1 MiB from busybox httpd on the test host's loopback (through
# passt's gateway mapping, checksum compared) and serves a file back that the test host fetches
# through passt's port forward (-t F: 127.0.0.1:F on the test host reaches the guest's F).
# Also the legacy krun_set_passt_fd NIC (no DHCP: the guest sets the address itself) and checks
# that TSI is off (no tsi_hijack, no 203.0.113.1 on dummy0).
source "$(dirname "$0")/96-net-lib.sh"
command -v passt >/dev/null || skip "no passt in the test host (scripts/setup.sh installs Debian's)"

mkdir -p "$work/www" && head -c 1048576 /dev/urandom >"$work/www/blob"
sum=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
W=$(free_port)
F=$(free_port)
echo index >"$work/www/index.html"
httpd "$work/www" "$W"
mkdir -p "$ROOTFS/www" && echo "served by the guest over virtio-net" >"$ROOTFS/www/index.html"

vm_bg -d -p "-t $F" -- "$(net_guest_script "http://$GW:$W/blob" "$F" '
echo "P cmdline_tsi=$(grep -c tsi_hijack /proc/cmdline)"
echo "P dummy0_tsi_addr=$(ip -4 addr show dev dummy0 2>/dev/null | grep -c 203.0.113.1)"')"
fetch_from_guest "http://127.0.0.1:$F/index.html"
vm_end
ctx="rc=$rc
$out"
expect "DHCP: eth0 has passt's copy of the host address (192.0.2.1/24)" 'has "P addr=192.0.2.1/24"' "$ctx"
expect "DHCP: default route via passt's gateway $GW on eth0" 'has "P route=$GW eth0"' "$ctx"
expect "guest wget of 1 MiB from the test host's 127.0.0.1:$W through passt: checksum matches" 'has "P wget_sum=$sum"' "$ctx"
expect "test host wget of the guest's httpd through passt's -t $F forward" '[[ $got == "served by the guest over virtio-net" ]]' "got='$got'
$ctx"
expect "TSI is off with a NIC: no tsi_hijack on the command line, dummy0 without TSI's 203.0.113.1" 'has "P cmdline_tsi=0" && has "P dummy0_tsi_addr=0"' "$ctx"
expect "no kernel oops" '! has "P kernel=oops"' "$ctx"
expect "the VM exits 0" '[[ $rc == 0 ]]' "$ctx"

# The legacy NIC (krun_set_passt_fd): COMPAT features, default MAC, no DHCP.
vm_bg -L -p "" -- "
echo \"P mac=\$(cat /sys/class/net/eth0/address)\"
ip link set eth0 up && ip addr add 192.0.2.1/24 dev eth0 && ip route add default via $GW
echo \"P wget_sum=\$(wget -q -O - http://$GW:$W/blob | sha256sum | cut -d' ' -f1)\"
"
vm_end
ctx="rc=$rc
$out"
expect "legacy krun_set_passt_fd: eth0 has MAC 5a:94:ef:e4:0c:ee" 'has "P mac=5a:94:ef:e4:0c:ee"' "$ctx"
expect "legacy NIC: static address, wget through passt, checksum matches" 'has "P wget_sum=$sum"' "$ctx"
echo "$fails failed"
[[ $fails == 0 ]]
