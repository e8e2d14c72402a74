#!/usr/bin/env bash
# TSI inbound TCP: with a port map "H:80" a guest httpd on port 80 answers on the test host's
# port H; an unmapped guest listener is not exposed (guest-only, still reachable inside the
# guest); without any port map a guest listener is exposed on the host's loopback only, on the
# same port, never on a wildcard address (PROTOCOL.md, the exposure rule).
source "$(dirname "$0")/85-tsi-lib.sh"
mkdir -p "$ROOTFS/www" && echo "served by the guest" >"$ROOTFS/www/index.html"
probe_port=$(free_port)
http_server "$work" "$probe_port"
need_tsi_host "$probe_port"

# 1. A port map: guest 80 -> host H; guest 81 unmapped.
H=$(free_port)
U=$(free_port)
vm_bg -p "$H:80" -- "
httpd -p 80 -h /www && httpd -p $U -h /www && echo 'P servers=up'
wget -q -O - http://127.0.0.1:$U/index.html | grep -q 'served by the guest' && echo 'P unmapped_guest_local=ok'
waitdone
$guest_oops_check
"
if wait_line '^P servers=up' 300; then
  for _ in $(seq 100); do tcp_listening_any_addr "$H" && break; sleep 0.3; done
  got=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$H/index.html', timeout=30).read().decode().strip())" 2>&1)
  sleep 1
  if tcp_listening_any_addr "$U"; then unmapped_on_host=yes; else unmapped_on_host=no; fi
fi
vm_end
ctx=$out
expect "mapped guest port 80 answers on host port $H" '[[ ${got:-} == "served by the guest" ]]' "${got:-}
$ctx"
expect "an unmapped guest listener is not exposed on the host" '[[ ${unmapped_on_host:-} == no ]]' "$ctx"
expect "an unmapped guest listener still works inside the guest" 'has "P unmapped_guest_local=ok"' "$ctx"
expect "no kernel oops (port-map run)" '! has "P kernel=oops"' "$ctx"

# 2. No port map at all: exposed on the host's loopback only, same port.
G=$(free_port)
vm_bg -- "
httpd -p $G -h /www && echo 'P server=up'
waitdone
"
if wait_line '^P server=up' 300; then
  for _ in $(seq 100); do tcp_listening_any_addr "$G" && break; sleep 0.3; done
  got2=$(python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$G/index.html', timeout=30).read().decode().strip())" 2>&1)
  tcp_listening 0100007F "$G" && lo_only=yes || lo_only=no
  tcp_listening 00000000 "$G" && wildcard=yes || wildcard=no
fi
vm_end
ctx=$out
expect "no port map: the guest listener answers on the host's 127.0.0.1:$G" '[[ ${got2:-} == "served by the guest" ]]' "${got2:-}
$ctx"
expect "no port map: bound on 127.0.0.1, never on 0.0.0.0" '[[ ${lo_only:-} == yes && ${wildcard:-} == no ]]' "$(cat /proc/net/tcp)"
echo "$fails failed"
[[ $fails == 0 ]]
