#!/usr/bin/env bash
# The C examples in a real terminal, as a new user runs them, with the shipped library
# (ReleaseSafe): examples/chroot_vm runs a command and an interactive busybox shell that reads
# typed input, follows a terminal resize (SIGWINCH) and passes Ctrl-C to the guest's foreground
# process; examples/minimal (the seed program) the same; 50-pty-stop.c checks raw mode while the
# VM runs and the exact settings back right after krun_stop; a guest whose PID 1 dies (kernel
# panic) leaves the terminal as it was too. Each run: `stty -g` identical before and after, and
# no NUL byte on the terminal.
source "$(dirname "$0")/../native/capi/vm-common.sh"
source tests/vm/50-pty-lib.sh
[[ -e zig-out/lib/libkrunfw.so.5 ]] || skip "zig-out/lib/libkrunfw.so.5 not built (zig build -Dkernel=...)"
ROOTFS=${ZKRUN_CAPI_ROOTFS:-$(bin rootfs)}
[[ -x $ROOTFS/bin/sh ]] || { echo "FAIL: no busybox rootfs at '$ROOTFS' (scripts/mkrootfs.sh)"; exit 1; }
CHROOT=$(bin chroot_vm)
STOP=$(tests/vm/vm-prog-build.sh 50-pty-stop) || { echo "FAIL: tests/vm/vm-prog-build.sh 50-pty-stop"; exit 1; }

# A command: the guest's console is a terminal of the host's size; the status comes back.
pty chroot-cmd -- "$CHROOT" "$ROOTFS" /bin/sh -c '[ -t 0 ] && [ -t 1 ] && t=yes; echo "size=$(stty size) tty=$t"; exit 7'
expect "chroot_vm command: exits 7 (got $rc)" '[[ $rc -eq 7 ]]' "$out"
expect "chroot_vm command: the guest console is a 30x100 terminal" 'grep -q "size=30 100 tty=yes" <<<"$out"' "$out"

# An interactive shell: typed input is read, a resize reaches the guest, ^C interrupts the
# guest's foreground command (not the host process), and `exit 5` gives 5.
pty chroot-shell \
  -e 'zk> ' -s 'echo sum=$((6*7))\r' -e 'sum=42' -e 'zk> ' \
  -s 'read line; echo "got=[$line]"\r' -p 1 -s 'typed input\r' -e 'got=\[typed input\]' -e 'zk> ' \
  -w 120x40 -p 2 -s 'stty size\r' -e '40 120' -e 'zk> ' \
  -s 'sleep 120; echo not-interrupted\r' -p 3 -s '\x03' -e 'zk> ' -s 'echo after-int\r' -e 'after-int' -e 'zk> ' \
  -s 'exit 5\r' \
  -- "$CHROOT" -e 'PS1=zk> ' -e PATH=/bin:/sbin:/usr/bin "$ROOTFS" /bin/sh -i
expect "chroot_vm shell: exit 5 comes back (got $rc)" '[[ $rc -eq 5 ]]' "$out"
expect "chroot_vm shell: typed input read, resize seen, ^C interrupted sleep" \
  'grep -q "got=\[typed input\]" <<<"$out" && grep -q "^40 120" <<<"$out" && grep -q "^after-int" <<<"$out" && ! grep -q "^not-interrupted" <<<"$out"' "$out"

# ^C to a non-interactive command: SIGINT in the guest, status 128+2.
pty chroot-ctrl-c -e 'sleeping' -p 2 -s '\x03' -- "$CHROOT" "$ROOTFS" /bin/sh -c 'echo sleeping; sleep 120; echo not-interrupted'
expect "chroot_vm: ^C ends the guest's foreground command with SIGINT (130, got $rc)" \
  '[[ $rc -eq 130 ]] && ! grep -q "^not-interrupted" <<<"$out"' "$out"

# The seed program: /bin/sh from ./rootfs, interactive on the terminal.
mkdir -p "$work/minimal" && ln -s "$ROOTFS" "$work/minimal/rootfs"
pty minimal -e '[#$] ' -s 'uname -s; echo hi-$((1+2))\r' -e 'hi-3' -s 'exit 3\r' \
  -- /bin/sh -c 'cd "$1" && exec "$2"' sh "$work/minimal" "$(bin minimal)"
expect "minimal: the interactive shell ran typed commands and exit 3 came back (got $rc)" \
  '[[ $rc -eq 3 ]] && grep -q "^Linux" <<<"$out" && grep -q "^hi-3" <<<"$out"' "$out"

# krun_start / krun_stop / krun_wait / krun_free_ctx on a terminal.
pty stop -- "$STOP" "$ROOTFS"
expect "krun_stop: raw while running, settings back when krun_stop returns (rc $rc)" \
  '[[ $rc -eq 0 ]] && [[ $(grep -c "^PTY .* ok" <<<"$out") -eq 8 ]]' "$out"

# A guest crash: the workload as PID 1 exits, the guest kernel panics and resets.
pty crash -- "$CHROOT" -e KRUN_INIT_PID1=1 "$ROOTFS" /bin/sh -c 'echo "pid=$$"; exit 3'
expect "guest kernel panic: the VM ended (rc $rc) after the workload ran as PID 1" \
  '[[ $rc -ne 132 && $rc -lt 124 ]] && grep -q "^pid=1" <<<"$out"' "$out"
[[ $fails -eq 0 ]]
