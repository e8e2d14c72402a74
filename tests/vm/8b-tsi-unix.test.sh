#!/usr/bin/env bash
# TSI for AF_UNIX (krun_add_vsock with KRUN_TSI_HIJACK_UNIX): a guest connect to an absolute
# path with no guest listener there reaches the test host's unix socket at that path (bytes both
# ways, half-close); a guest listener on an absolute path is bound on the host at the same path
# and a host client reaches it; a relative path stays in the guest; without the UNIX bit
# (the implicit device) an absolute path is the guest's own (ENOENT-style failure, nothing on
# the host).
source "$(dirname "$0")/85-tsi-lib.sh"
probe_port=$(free_port)
http_server "$work" "$probe_port"
need_tsi_host "$probe_port"
cat >"$work/unix.py" <<'PY'
import os, socket, sys
mode, path = sys.argv[1], sys.argv[2]
if mode == "serve":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    while True:
        c, _ = s.accept()
        d = b""
        while True:
            b = c.recv(4096)
            if not b: break
            d += b
        c.sendall(b"host got " + d)
        c.close()
elif mode == "call":
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.settimeout(20)
    try:
        c.connect(path)
        c.sendall(b"from the host")
        c.shutdown(socket.SHUT_WR)
        d = b""
        while True:
            b = c.recv(4096)
            if not b: break
            d += b
        print(d.decode())
    except OSError as e:
        print("ERR", e.__class__.__name__)
PY
# Paths outside the guest's root and the work dir's name: /tmp exists on both sides.
HS=/tmp/zk-tsi-host-$$.sock
GS=/tmp/zk-tsi-guest-$$.sock
rm -f "$HS" "$GS"
trap 'rm -f "$HS" "$GS"; cleanup' EXIT
python3 "$work/unix.py" serve "$HS" & pids+=($!)
for _ in $(seq 50); do [[ -S $HS ]] && break; sleep 0.2; done

vm -u -- "
tsi-probe unixcall $HS ping
tsi-probe unixcall rel.sock ping | sed 's/^P unixcall/P relative/'
$guest_oops_check
"
ctx=$out
expect "guest -> host unix socket $HS: request and reply (half-close both ways)" 'has "P unixcall_reply=[host got ping]"' "$ctx"
expect "a relative path stays in the guest (no listener there: ENOENT)" 'has "P relative=OTHER" || has "P relative=ECONNREFUSED"' "$ctx"
expect "no kernel oops (guest -> host)" '! has "P kernel=oops"' "$ctx"

vm_bg -u -- "
tsi-probe unixserve $GS
waitdone
"
got=""
if wait_line '^P unixserve=ready' 300; then
  for _ in $(seq 50); do [[ -S $GS ]] && break; sleep 0.2; done
  got=$(python3 "$work/unix.py" call "$GS")
fi
vm_end
expect "host -> guest listener on $GS: bound on the host, bytes both ways" '[[ $got == "FROM THE HOST" ]] && has "P unixserve_got=13"' "got=$got
$out"

rm -f "$GS"
vm -- "
tsi-probe unixcall $HS ping
"
expect "without KRUN_TSI_HIJACK_UNIX the path is the guest's own (no host socket reached)" '! has "P unixcall_reply=[host got ping]" && grep -aq "^P unixcall=" <<<"$p"' "$out"
echo "$fails failed"
[[ $fails == 0 ]]
