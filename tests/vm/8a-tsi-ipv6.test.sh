#!/usr/bin/env bash
# TSI over IPv6 (AF_INET6): the test host gets a dummy interface with fd00:7a::1/64 (it has no
# NIC); the guest fetches 1 MiB from a server there with busybox wget (checksum compared) and
# with an AF_INET6 connect (peer and local family as Linux shows them); an AF_INET6 socket
# reaches the host's 127.0.0.1 through the v4-mapped ::ffff:203.0.113.2; a UDP echo over IPv6
# (reply source is the host's address); guest IPv6 listeners under the exposure rule: no port
# map, IPV6_V6ONLY → the host's ::1 only; dual-stack [::] → 127.0.0.1; a mapped port on [::]
# stays a wildcard on the host (reachable at fd00:7a::1).
source "$(dirname "$0")/85-tsi-lib.sh"
command -v ip >/dev/null || skip "no ip(8) in the test host"
ip link add zk6 type dummy 2>/dev/null || ip link show zk6 >/dev/null 2>&1 || skip "cannot create a dummy interface in the test host (not root, or no CONFIG_DUMMY)"
ip -6 addr add fd00:7a::1/64 dev zk6 nodad 2>/dev/null
ip link set zk6 up
ip -6 addr show dev zk6 | grep -q fd00:7a::1 || skip "the test host has no IPv6 (fd00:7a::1 could not be added)"
ip -6 addr show dev lo | grep -q '::1/128' || ip -6 addr add ::1/128 dev lo 2>/dev/null
trap 'ip link del zk6 2>/dev/null; cleanup' EXIT
V6=fd00:7a::1
probe_port=$(free_port)
http_server "$work" "$probe_port"
need_tsi_host "$probe_port"

mkdir -p "$work/www6" && head -c 1048576 /dev/urandom >"$work/www6/blob" && echo "over ipv6" >"$work/www6/index.html"
sum=$(sha256sum <"$work/www6/blob" | cut -d' ' -f1)
W=$(free_port)
python3 -m http.server --bind "$V6" --directory "$work/www6" "$W" >"$work/http6.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do python3 -c "import socket; socket.create_connection(('$V6',$W),1)" 2>/dev/null && break; sleep 0.2; done
cat >"$work/udp6.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((sys.argv[1], int(sys.argv[2])))
while True:
    d, a = s.recvfrom(65535)
    s.sendto(d.upper(), a)
PY
E=$(free_port)
python3 "$work/udp6.py" "$V6" "$E" & pids+=($!)
sleep 1

vm -- "
echo \"P wget6_sum=\$(wget -q -O - http://[$V6]:$W/blob | sha256sum | cut -d' ' -f1)\"
tsi-probe get $V6 $W
tsi-probe get ::ffff:$HOST $probe_port | sed 's/^P get/P mapped/'
tsi-probe udpcall6 $V6 $E hello6
$guest_oops_check
"
ctx=$out
expect "guest wget over IPv6 from [$V6]:$W: 1 MiB, checksum matches" 'has "P wget6_sum=$sum"' "$ctx"
expect "AF_INET6 connect: peer [$V6]:$W, local family AF_INET6, HTTP 200" 'has "P get_peer=[$V6]:$W" && has "P get_local_family=10" && grep -aq "P get_status=\[HTTP/1.[01] 200" <<<"$p"' "$ctx"
expect "AF_INET6 to ::ffff:$HOST reaches the host's 127.0.0.1 (peer shown as the guest's name)" 'has "P mapped_peer=[::ffff:$HOST]:$probe_port" && grep -aq "P mapped_status=\[HTTP/1.[01] 200" <<<"$p"' "$ctx"
expect "UDP over IPv6: echo from [$V6]:$E" 'has "P reply6=[HELLO6] from=[$V6]:$E"' "$ctx"
expect "no kernel oops (outbound)" '! has "P kernel=oops"' "$ctx"

# Inbound: three guest listeners, one VM each (the probe serves one connection).
# hello PORT HOSTADDR: what a host client reads from HOSTADDR:PORT ("" if it cannot connect).
hello() { python3 - "$1" "$2" <<'PY'
import socket, sys
try:
    c = socket.create_connection((sys.argv[2], int(sys.argv[1])), 10)
    c.settimeout(20)
    print(c.recv(100).decode().strip())
except OSError as e:
    print("ERR", e.__class__.__name__)
PY
}
listener() { # DESCRIPTION RUNNER-OPTS GUEST-PORT V6ONLY HOSTPORT GOOD-ADDR BAD-ADDR
  vm_bg $2 -- "
tsi-probe listen6 $3 $4
waitdone
"
  local good="" bad=""
  if wait_line '^P listen6=ready' 300; then
    sleep 1
    [[ -n $7 ]] && bad=$(hello "$5" "$7")
    good=$(hello "$5" "$6")
  fi
  vm_end
  expect "$1: a host client at [$6]:$5 is greeted" '[[ $good == "hello over ipv6" ]] && grep -aq "^P accepted6=" <<<"$p"' "good=$good
$out"
  [[ -n $7 ]] && expect "$1: not reachable at $7" '[[ $bad == ERR* ]]' "bad=$bad"
}
P1=$(free_port)
listener "no port map, IPV6_V6ONLY [::]:$P1" "" "$P1" 1 "$P1" ::1 "$V6"
P2=$(free_port)
listener "no port map, dual-stack [::]:$P2" "" "$P2" 0 "$P2" 127.0.0.1 "$V6"
H=$(free_port)
listener "port map $H:8080, IPV6_V6ONLY [::]:8080" "-p $H:8080" 8080 1 "$H" "$V6" ""
echo "$fails failed"
[[ $fails == 0 ]]
