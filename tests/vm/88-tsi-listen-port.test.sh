#!/usr/bin/env bash
# TSI bind(port 0) + listen + getsockname: the guest learns a real port, and the test host
# reaches the guest listener on that port of its loopback (libkrun #818 reported port 0).
source "$(dirname "$0")/85-tsi-lib.sh"
probe_port=$(free_port)
http_server "$work" "$probe_port"
need_tsi_host "$probe_port"
vm_bg -- "
tsi-probe listen0
$guest_oops_check
waitdone
"
port=
if wait_line '^P port=' 300; then
  port=$(grep -a '^P port=' "$work/bg.out" | head -1 | tr -d '\r' | cut -d= -f2)
  got=$(python3 -c "import socket; s=socket.create_connection(('127.0.0.1',$port),30); s.settimeout(30); print(s.recv(100).decode().strip())" 2>&1)
fi
vm_end
ctx=$out
expect "getsockname after bind(0)+listen reports a non-zero port" '[[ -n $port && $port != 0 ]]' "$ctx"
expect "the test host connects to that port and the guest answers" '[[ ${got:-} == "hello from the guest" ]]' "${got:-}
$ctx"
expect "the guest's accept shows the peer as $HOST" 'has "P accepted=$HOST"' "$ctx"
expect "no kernel oops" '! has "P kernel=oops"' "$ctx"
echo "$fails failed"
[[ $fails == 0 ]]
