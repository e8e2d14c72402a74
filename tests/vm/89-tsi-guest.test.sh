#!/usr/bin/env bash
# TSI in the guest alone (no host side needed): with tsi_hijack, user sockets are TSI sockets
# (real family/type/protocol, options, socketpair), guest loopback stays in the guest (TCP via
# busybox httpd + wget with a checksum, non-blocking connect + poll, UDP echo), init gives dummy0
# 203.0.113.1 and the default route, generates /etc/resolv.conf and /etc/hosts through an overlay
# when the root has none (the root directory itself is never written), and a destination outside
# the guest with no vsock device is a clean ENETUNREACH. Without tsi_hijack nothing is hijacked.
source "$(dirname "$0")/85-tsi-lib.sh"

head -c 1048576 /dev/urandom >"$ROOTFS/blob"
sum=$(sha256sum <"$ROOTFS/blob" | cut -d' ' -f1)
mkdir -p "$ROOTFS/www" && mv "$ROOTFS/blob" "$ROOTFS/www/blob" && echo hi >"$ROOTFS/www/index.html"
rm -f "$ROOTFS/etc/resolv.conf" "$ROOTFS/etc/hosts"

vm -k tsi_hijack -n -- '
dmesg | grep -q "tsi: hijacking user sockets: inet" && echo "P dmesg=hijack"
tsi-probe sockinfo
httpd -p 127.0.0.1:8080 -h /www
sleep 1
echo "P wget_sum=$(wget -q -O - http://127.0.0.1:8080/blob | sha256sum | cut -d" " -f1)"
tsi-probe nbconnect 127.0.0.1 8080
tsi-probe udpserve 9999 1 >/tmp/udp.log &
sleep 1
tsi-probe udpcall 127.0.0.1 9999 hello | grep -E "reply|trunc=" | sed "s/trunc=.*/trunc=skipped/" | grep reply
tsi-probe connect 203.0.113.2 80
tsi-probe connect 192.0.2.1 80
ip -4 addr show dummy0 | grep -q "inet 203.0.113.1/24" && echo "P dummy0=203.0.113.1/24"
ip route | grep -q "^default dev dummy0" && echo "P route=default"
grep -q "^nameserver 1.1.1.1" /etc/resolv.conf && echo "P resolv=generated"
grep -q "^203.0.113.2.*host.zkrun.internal" /etc/hosts && echo "P hosts=generated"
grep -q "^127.0.0.1.*localhost" /etc/hosts && echo "P hosts=localhost"
echo edited >/etc/zkrun-test && echo "P etc=writable"
if dmesg | sed -n "/Run \/init.krun/,\$p" | grep -qE "BUG:|Oops|general protection|WARNING:|Call Trace"; then echo "P kernel=oops"; dmesg | sed -n "/Run \/init.krun/,\$p" | tail -40; fi
'
ctx=$out
expect "the kernel hijacks user inet sockets (tsi_hijack)" 'has "P dmesg=hijack"' "$ctx"
expect "a hijacked TCP socket reports AF_INET/SOCK_STREAM/IPPROTO_TCP" 'has "P domain=2" && has "P type=1" && has "P protocol=6"' "$ctx"
expect "TCP_NODELAY and SO_REUSEADDR are accepted and read back" 'has "P nodelay=OK" && has "P reuseaddr=OK" && has "P nodelay_get=1"' "$ctx"
expect "UDP (v4, v6) sockets and socketpair are created" 'has "P udp=OK" && has "P udp6=OK" && has "P socketpair=OK"' "$ctx"
expect "guest loopback TCP: wget of 1 MiB from the guest's httpd, checksum matches" 'has "P wget_sum=$sum"' "$ctx"
expect "guest loopback non-blocking connect + poll + SO_ERROR + GET" 'has "P so_error=OK" && grep -aq "P status=\[HTTP/1.[01] 200" <<<"$p"' "$ctx"
expect "guest loopback UDP echo (recvfrom source 127.0.0.1)" 'grep -aq "P reply=\[HELLO\] from=127.0.0.1:9999" <<<"$p"' "$ctx"
expect "no vsock device: a host destination is a clean ENETUNREACH" '[[ $(grep -ac "P connect=ENETUNREACH" <<<"$p") == 2 ]]' "$ctx"
expect "init: dummy0 203.0.113.1/24 and a default route" 'has "P dummy0=203.0.113.1/24" && has "P route=default"' "$ctx"
expect "init: resolv.conf and hosts generated when the root has none" 'has "P resolv=generated" && has "P hosts=generated" && has "P hosts=localhost"' "$ctx"
expect "init: /etc stays writable (overlay)" 'has "P etc=writable"' "$ctx"
expect "the root directory was not written (no resolv.conf, hosts, test file)" '[[ ! -e $ROOTFS/etc/resolv.conf && ! -e $ROOTFS/etc/hosts && ! -e $ROOTFS/etc/zkrun-test ]]' "$(ls -la "$ROOTFS/etc")"
expect "no kernel oops or warning in the guest" '! has "P kernel=oops"' "$ctx"
expect "the workload exited 0" '[[ $rc == 0 ]]' "$ctx"

cp "$base/etc/hosts" "$ROOTFS/etc/hosts"
cp "$base/etc/resolv.conf" "$ROOTFS/etc/resolv.conf"
vm -n -- '
dmesg | grep -q "tsi: hijacking" && echo "P dmesg=hijack"
tsi-probe sockinfo
tsi-probe connect 192.0.2.1 80
ip -4 addr show dummy0 | grep -q "inet 203.0.113.1" && echo "P dummy0=up"
mount | grep -q " /etc type overlay" && echo "P etc=overlay"
'
ctx=$out
expect "without tsi_hijack: nothing hijacked, no dummy0 address, no /etc overlay" '! has "P dmesg=hijack" && ! has "P dummy0=up" && ! has "P etc=overlay" && has "P domain=2"' "$ctx"
expect "without tsi_hijack: a connect outside the guest fails as plain Linux does (no route)" 'has "P connect=ENETUNREACH"' "$ctx"

echo "$fails failed"
[[ $fails == 0 ]]
