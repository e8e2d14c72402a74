#!/usr/bin/env bash
# TSI UDP: an echo from the guest to a server on the test host's loopback (reply source shown
# as 203.0.113.2, MSG_PEEK, MSG_TRUNC with the real length); an echo from the test host to a
# guest that bound a UDP port (exposed on the host's loopback, no port map); a name lookup by
# the guest's nslookup against a tiny resolver on the test host's 127.0.0.1:53.
source "$(dirname "$0")/85-tsi-lib.sh"
probe_port=$(free_port)
http_server "$work" "$probe_port"
need_tsi_host "$probe_port"
cat >"$work/udp.py" <<'PY'
import socket, struct, sys
mode, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
if mode == "echo":
    s.bind(("127.0.0.1", port))
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d.upper(), a)
elif mode == "dns":
    s.bind(("127.0.0.1", port))
    while True:
        q, a = s.recvfrom(512)
        if len(q) < 12: continue
        i = 12
        while i < len(q) and q[i] != 0: i += q[i] + 1
        qend = i + 5
        qtype = struct.unpack(">H", q[i+1:i+3])[0]
        ans = b""
        n = 0
        if qtype == 1:
            ans = b"\xc0\x0c" + struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 55]); n = 1
        hdr = q[:2] + struct.pack(">HHHHH", 0x8180, 1, n, 0, 0)
        s.sendto(hdr + q[12:qend] + ans, a)
elif mode == "call":
    s.settimeout(30)
    s.sendto(b"ping", ("127.0.0.1", port))
    d, a = s.recvfrom(100)
    print(d.decode(), a[0], a[1] == port)
PY
E=$(free_port)
python3 "$work/udp.py" echo "$E" & pids+=($!)
python3 "$work/udp.py" dns 53 & pids+=($!)
sleep 1
printf 'nameserver %s\n' "$HOST" >"$ROOTFS/etc/resolv.conf"

vm -- "
tsi-probe udpcall $HOST $E hello
nslookup host.zkrun.test $HOST
$guest_oops_check
"
ctx=$out
expect "guest -> host UDP echo, reply from $HOST:$E" 'has "P reply=[HELLO] from=$HOST:$E"' "$ctx"
expect "MSG_PEEK leaves the datagram; the socket has a real local port" 'has "P peek=4" && has "P localport_nonzero=1"' "$ctx"
expect "MSG_TRUNC returns the real length of a 3000-byte datagram" 'has "P trunc=3000"' "$ctx"
expect "nslookup against the test host's resolver gets 192.0.2.55" 'grep -aq "192.0.2.55" <<<"$out"' "$ctx"
expect "no kernel oops (guest -> host)" '! has "P kernel=oops"' "$ctx"

G=$(free_port)
vm_bg -- "
tsi-probe udpserve $G 1
waitdone
"
if wait_line '^P udpserve=ready' 300; then
  sleep 1
  got=$(python3 "$work/udp.py" call "$G" 2>&1)
fi
vm_end
ctx=$out
expect "host -> guest UDP echo on the guest's bound port $G" '[[ ${got:-} == "PING 127.0.0.1 True" ]]' "${got:-}
$ctx"
echo "$fails failed"
[[ $fails == 0 ]]
