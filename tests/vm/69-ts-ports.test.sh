#!/usr/bin/env bash
# Vm's `ports` option and `zkrun run -p`, end to end on the test host's loopback (it has no NIC):
# examples/http-server.ts under Deno (its documented flags) and Bun boots busybox httpd on guest
# port 80 with ports { H: 80 } and prints the page it fetched from 127.0.0.1:H; `zkrun run -p H:G`
# serves a shared directory from guest port G at host port H. The root (.tools/ts-rootfs) is
# read-only in the test host, so the shares go over /tmp, which it has. Each checks that the guest port
# itself is not what answered: without the map applied, the guest listener would be on the
# host's 127.0.0.1 at its own port (80 or G) and nothing at H (the exposure rule in libkrun.h).
source "$(dirname "$0")/../ts/vm-common.sh"
command -v python3 >/dev/null || skip "no python3 in the test host (the host-side client)"
work=$(mktemp -d)
zpid=
trap '[[ -n $zpid ]] && kill "$zpid" 2>/dev/null; rm -rf "$work"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# tcp_listening PORT: a TCP listener on the test host at PORT, any address (/proc/net/tcp{,6}).
tcp_listening() {
  awk -v port="$(printf '%04X' "$1")" 'NR > 1 && $4 == "0A" { split($2, x, ":"); if (x[2] == port) f = 1 } END { exit !f }' /proc/net/tcp /proc/net/tcp6
}
# get PORT: the body at http://127.0.0.1:PORT/index.html, or the error.
get() { python3 -c "import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:$1/index.html', timeout=30).read().decode().strip())" 2>&1; }
page="hello from a microVM"
timeout_ms=${ZKRUN_PORTS_TIMEOUT_MS:-300000}

# 1. examples/http-server.ts, as its comment runs it.
for rt in deno bun; do
  H=$(free_port)
  if [[ $rt == deno ]]; then
    cmd=(deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env --allow-net=127.0.0.1)
  else cmd=(bun); fi
  out=$(timeout 600 "${cmd[@]}" examples/http-server.ts --root "$ROOTFS" --port "$H" --timeout "$timeout_ms" </dev/null 2>&1); rc=$?
  expect "$rt: examples/http-server.ts printed the guest's page fetched from 127.0.0.1:$H" \
    '[[ $rc -eq 0 && $(grep -v "^\[zkrun\]" <<<"$out") == "$page" ]]' "exit $rc: $out"
done

# 2. zkrun run -p H:G (a plain ROOTFS, used in place) with -v sharing the page.
mkdir -p "$work/www" && echo "$page" >"$work/www/index.html"
for rt in deno bun; do
  H=$(free_port)
  G=$(free_port) # a guest port nothing on the test host uses, to see it was not exposed as is
  if [[ $rt == deno ]]; then z=(deno run --quiet --allow-ffi --allow-read --allow-write --allow-env cli/zkrun.ts)
  else z=(bun cli/zkrun.ts); fi
  export XDG_CACHE_HOME=$work/$rt/cache XDG_DATA_HOME=$work/$rt/data XDG_STATE_HOME=$work/$rt/state
  "${z[@]}" run -p "$H:$G" -v "$work/www:/tmp:ro" "$ROOTFS" -- /usr/sbin/httpd -f -p "$G" -h /tmp \
    </dev/null >"$work/zk.out" 2>&1 &
  zpid=$!
  got="" guest_port_open=no
  for _ in $(seq $((timeout_ms / 500))); do
    kill -0 "$zpid" 2>/dev/null || break
    if tcp_listening "$H"; then got=$(get "$H"); break; fi
    sleep 0.5
  done
  tcp_listening "$G" && guest_port_open=yes
  kill -TERM "$zpid" 2>/dev/null
  wait "$zpid"; zrc=$?
  zpid=
  zout=$(tr -d '\r' <"$work/zk.out")
  expect "$rt: zkrun run -p $H:$G: the guest's httpd answers on 127.0.0.1:$H" '[[ $got == "$page" ]]' "got: $got
zkrun (exit $zrc): $zout"
  expect "$rt: zkrun run -p: guest port $G was not exposed on the host as is" '[[ $guest_port_open == no ]]' ""
  expect "$rt: zkrun run -p: SIGTERM stops the VM (status 137)" '[[ $zrc -eq 137 ]]' "exit $zrc: $zout"
done
echo "$fails failed"
[[ $fails -eq 0 ]]
