#!/usr/bin/env bash
# TSI outbound TCP through the VMM: the guest's busybox wget fetches a 1 MiB file from a server
# on the test host's loopback (reached as 203.0.113.2) with its checksum; 50 sequential and 20
# concurrent connections all succeed; a non-blocking connect + poll + SO_ERROR; a refused
# connect gives ECONNREFUSED; getpeername shows the guest's name for the host.
source "$(dirname "$0")/85-tsi-lib.sh"
www=$work/www
mkdir -p "$www"
head -c 1048576 /dev/urandom >"$www/blob"
sum=$(sha256sum <"$www/blob" | cut -d' ' -f1)
echo "small file" >"$www/small"
port=$(free_port)
http_server "$www" "$port"
need_tsi_host "$port"
closed=$(free_port)

vm -- "
echo \"P wget_sum=\$(wget -q -O - http://$HOST:$port/blob | sha256sum | cut -d' ' -f1)\"
i=0; ok=0
while [ \$i -lt 50 ]; do wget -q -O /tmp/s http://$HOST:$port/small && grep -qx 'small file' /tmp/s && ok=\$((ok+1)); i=\$((i+1)); done
echo \"P seq=\$ok\"
for i in \$(seq 20); do (wget -q -O /tmp/c\$i http://$HOST:$port/small && grep -qx 'small file' /tmp/c\$i && echo ok >/tmp/ok\$i) & done
wait
echo \"P conc=\$(ls /tmp | grep -c '^ok')\"
tsi-probe nbconnect $HOST $port
tsi-probe connect $HOST $port
tsi-probe connect $HOST $closed
$guest_oops_check
"
ctx=$out
expect "wget of 1 MiB from the test host through TSI, checksum matches" 'has "P wget_sum=$sum"' "$ctx"
expect "50 sequential connections succeed" 'has "P seq=50"' "$ctx"
expect "20 concurrent connections succeed" 'has "P conc=20"' "$ctx"
expect "non-blocking connect: EINPROGRESS, poll POLLOUT, SO_ERROR 0, then a GET" 'has "P nbconnect=EINPROGRESS" && has "P so_error=OK" && grep -aq "P status=\[HTTP/1.[01] 200" <<<"$p"' "$ctx"
expect "getpeername shows the host as $HOST:$port" 'has "P peer=$HOST:$port"' "$ctx"
expect "a connect to a closed host port is ECONNREFUSED" 'has "P connect=ECONNREFUSED"' "$ctx"
expect "no kernel oops or warning in the guest" '! has "P kernel=oops"' "$ctx"
expect "the workload exited 0" '[[ $rc == 0 ]]' "$ctx"
echo "$fails failed"
[[ $fails == 0 ]]
