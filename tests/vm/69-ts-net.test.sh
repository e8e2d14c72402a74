#!/usr/bin/env bash
# Vm's `net` option under Deno and Bun: each boots busybox with net { unixstream: FD, dhcp: true },
# FD its end of a socketpair whose other end runs Debian's passt (`passt -f -1 --fd`, as crun
# starts it); init configures eth0 by DHCP and the guest fetches 1 MiB from busybox httpd on the
# test host's loopback through passt's gateway (192.0.2.2), checksum compared. 96-net-lib.sh
# gives the dummy interface passt copies its address from.
source "$(dirname "$0")/96-net-lib.sh"
command -v passt >/dev/null || skip "no passt in the test host (scripts/setup.sh installs Debian's)"
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
command -v deno >/dev/null && command -v bun >/dev/null || skip "no deno/bun in .tools/js"
mkdir -p "$work/www" && head -c 1048576 /dev/urandom >"$work/www/blob"
sum=$(sha256sum <"$work/www/blob" | cut -d' ' -f1)
W=$(free_port)
echo index >"$work/www/index.html" # httpd() polls for it
httpd "$work/www" "$W"
# with_passt.py CMD...: CMD with fd 3 its end of a socketpair, passt on the other end.
cat >"$work/with_passt.py" <<'PY'
import os, socket, subprocess, sys
a, b = socket.socketpair()
subprocess.Popen(["passt", "-f", "-1", "--fd", str(b.fileno())], pass_fds=[b.fileno()],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
b.close()
if a.fileno() != 3:
    os.dup2(a.fileno(), 3)
os.set_inheritable(3, True)  # python's sockets are O_CLOEXEC (and a may already be fd 3)
os.execvp(sys.argv[1], sys.argv[1:])
PY
DENO=(deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env=LIBKRUN_PATH,TMPDIR)
for rt in deno bun; do
  if [[ $rt == deno ]]; then cmd=("${DENO[@]}"); else cmd=(bun); fi
  out=$(timeout 600 python3 "$work/with_passt.py" "${cmd[@]}" tests/ts/vm.ts net "$ROOTFS" 3 "http://$GW:$W/blob" "$sum" </dev/null 2>&1); rc=$?
  echo "$out"
  expect "$rt: net { unixstream: fd, dhcp: true }: guest wget through passt, checksum matches" '[[ $rc -eq 0 ]]' "exit $rc: $out"
done
echo "$fails failed"
[[ $fails -eq 0 ]]
