#!/usr/bin/env bash
# TSI connected UDP: a guest UDP socket connect()ed to the host's echo server receives only
# that peer's datagrams, as on Linux: the server first sends "INTRUDER" from another port to
# the guest's address, then the real reply; the guest's first recv must be the reply. The
# guest kernel's TSI datagram receive (kernelfw/patches/0002, tsi_frame_next) drops frames
# whose source is not the connected peer; the VMM cannot tell a connected socket, so it
# forwards both. Before that filter this failed with "P udpconn_first=[INTRUDER]".
source "$(dirname "$0")/85-tsi-lib.sh"
cat >"$work/intruder.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
other.bind(("127.0.0.1", 0))
open(sys.argv[2], "w").close()
while True:
    d, a = s.recvfrom(65535)
    # Loopback delivery is synchronous: the intruder is queued on the guest's host socket first.
    other.sendto(b"INTRUDER", a)
    s.sendto(d.upper(), a)
PY
E=$(free_port)
python3 "$work/intruder.py" "$E" "$work/ready" & pids+=($!)
for _ in $(seq 100); do [[ -e $work/ready ]] && break; sleep 0.1; done
[[ -e $work/ready ]] || { echo "FAIL: the UDP server on 127.0.0.1:$E did not start"; exit 1; }
vm -- "
tsi-probe udpconn $HOST $E
$guest_oops_check
"
if has "P udpconn_send=ENETUNREACH"; then
  skip "the TSI host side is not there (a guest UDP send to the host says ENETUNREACH)"
fi
expect "a connected UDP socket gets its peer's reply, not another port's datagram" 'has "P udpconn_first=[PEER]"' "$out"
expect "no kernel oops" '! has "P kernel=oops"' "$out"
echo "$fails failed"
[[ $fails == 0 ]]
