#!/usr/bin/env bash
# The guest init on a real kernel: boots our vmlinux under QEMU TCG (microvm, no KVM needed) with
# an initramfs holding the init (as /init.krun, run through rdinit=) and a busybox rootfs
# (scripts/mkrootfs.sh), and checks what the workload saw: argv, env, workdir, hostname,
# rlimits, mounts, lo, PID 1 reaping, the krun-* virtio-console ports, OCI and zkrun JSON
# configs, exit statuses and the guest rebooting by itself. Exec configs are produced by the
# same encoder the VMM uses (tests/zig/encode_cli.zig over libkrun-c/protocol/init.zig), so this also
# proves the encoder's tokens survive the real kernel's cmdline parser.
# The root is an initramfs, not virtio-fs, so the status cannot travel to the host here: init
# prints it ("exit status N (root is not virtio-fs ...)") and that line is checked instead.
# Environment: ZKRUN_KERNEL (vmlinux; default kernelfw/build-kernel.sh --print-path).
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"

kernel=${ZKRUN_KERNEL:-$(kernelfw/build-kernel.sh --print-path 2>/dev/null || true)}
[[ -n $kernel && -f $kernel ]] || { echo "FAIL: no guest kernel ('$kernel'): run kernelfw/build-kernel.sh"; exit 1; }
command -v qemu-system-x86_64 >/dev/null || { echo "FAIL: qemu-system-x86_64 missing (make setup)"; exit 1; }
command -v cpio >/dev/null || { echo "FAIL: cpio missing (make setup)"; exit 1; }

work=$(mktemp -d /tmp/zkrun-init-qemu.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The init libkrun.so embeds (build.zig's buildInit: ReleaseSafe, stripped, no libc) and the
# encoder CLI (tests/zig/encode_cli.zig), both installed by `zig build harness`.
zig build harness -j2 --summary none || { echo "FAIL: zig build harness"; exit 1; }
cp zig-out/bin/init.krun "$work/init.krun" && cp zig-out/bin/encode-cli "$work/encode_cli" || { echo "FAIL: harness copy"; exit 1; }
echo "init.krun: $(stat -c %s "$work/init.krun") bytes"

root=$work/root
scripts/mkrootfs.sh "$root" >/dev/null || { echo "FAIL: mkrootfs"; exit 1; }
cp "$work/init.krun" "$root/init.krun"
cat >"$root/report.sh" <<'EOF'
#!/bin/sh
echo "R argc=$#"
i=0
for a in "$@"; do i=$((i+1)); echo "R arg$i=[$a]"; done
echo "R pwd=[$(pwd)]"
echo "R hostname=[$(hostname)]"
echo "R nofile=[$(ulimit -Sn):$(ulimit -Hn)]"
# The environ init passed, as execve got it (a shell would drop names like "a.b" from `env`).
tr '\0' '\n' </proc/$$/environ | sort | sed 's/^/R env /'
awk '{print "R mount " $2 " " $3}' /proc/mounts
echo "R lo=[$(cat /sys/class/net/lo/flags)]"
echo "R pid1=[$(tr '\0' ' ' </proc/1/cmdline)]"
echo "R self=$$"
exit "${REPORT_EXIT:-0}"
EOF
cat >"$root/orphans.sh" <<'EOF'
#!/bin/sh
# Orphans: each `( … & )` leaves a child whose parent is gone, so it is reparented to PID 1.
for i in 1 2 3 4 5; do ( sh -c 'exit 0' & ); done
sleep 1
echo "R zombies=$(grep -l '^State:.*zombie' /proc/[0-9]*/status 2>/dev/null | wc -l)"
# A background child still running when the workload exits must not hold the VM up.
sleep 300 &
exit 3
EOF
cat >"$root/stdio.sh" <<'EOF'
#!/bin/sh
read -r line
echo "got=[$line]"
echo "to-stderr" >&2
exit 5
EOF
chmod 755 "$root"/*.sh
mkdir -p "$root/tmp/dir with spaces"
(cd "$root" && find . -mindepth 1 ! -name .zkrun-rootfs | cpio --quiet -o -H newc) >"$work/base.cpio"

passed=0 failed=0
check() { # description, condition (eval'd)
  if eval "$2"; then echo "ok   $1"; passed=$((passed+1)); else echo "FAIL $1"; failed=$((failed+1)); fi
}

# acpi=off: QEMU then lists its virtio-mmio devices on the cmdline (appended after ours, so a
# case using them must not end with `-- args`). Our kernel has no ACPI.
# boot NAME CMDLINE_TAIL [EXTRA_ROOT_DIR] [QEMU ARGS...]: one guest; its console (\r stripped)
# lands in $work/NAME.log, QEMU's status in $rc, R-lines in $r. Extra files ride in a second cpio
# appended to the base one (the kernel unpacks concatenated archives in order).
boot() {
  local name=$1 tail=$2 extra=${3:-}; shift 3 2>/dev/null || shift $#
  local initrd=$work/base.cpio
  if [[ -n $extra ]]; then
    initrd=$work/$name.cpio
    { cat "$work/base.cpio"; (cd "$extra" && find . -mindepth 1 | cpio --quiet -o -H newc); } >"$initrd"
  fi
  local start=$SECONDS
  timeout 120 qemu-system-x86_64 -M microvm,acpi=off -accel tcg -cpu max -m 256 -nodefaults -no-user-config \
    -nographic -serial stdio -no-reboot -kernel "$kernel" -initrd "$initrd" "$@" \
    -append "console=ttyS0 reboot=t panic=-1 quiet rdinit=/init.krun $tail" \
    </dev/null 2>&1 | tr -d '\r' >"$work/$name.log"
  rc=${PIPESTATUS[0]}
  r=$(grep -a '^R ' "$work/$name.log")
  echo "---- $name: qemu exit $rc after $((SECONDS - start)) s"
  if [[ $rc -ne 0 ]]; then tail -20 "$work/$name.log" | sed 's/^/     | /'; fi
}
has() { grep -aqxF -- "$1" <<<"$r"; }
status_is() { grep -aq "init.krun: exit status $1 (root is not virtio-fs" "$work/$name.log"; }
encode() { "$work/encode_cli" "$work/enc.json" "$@"; }

# 1. Plain values: libkrun's cmdline tokens, straight through the kernel.
name=plain
tokens=$(encode --exec /report.sh --workdir /tmp --env "FOO=bar baz" --env HOSTNAME=zk-test \
  --env KRUN_HOME=/root --rlimit 7=123:456 -- "a b" c "x=y")
check "plain config stays on the cmdline" '[[ $tokens != *KRUN_CONFIG* && ! -e $work/enc.json ]]'
boot plain "$tokens"
check "guest rebooted by itself (QEMU exit 0)" '[[ $rc -eq 0 ]]'
check "argv: 3 args, spaces and = intact" 'has "R argc=3" && has "R arg1=[a b]" && has "R arg2=[c]" && has "R arg3=[x=y]"'
check "env: quoted value with a space" 'has "R env FOO=bar baz"'
check "KRUN_* configure init and are not in the workload env" '! grep -q "R env KRUN_" <<<"$r" && has "R env HOME=/root"'
check "kernel presets TERM=linux" 'has "R env TERM=linux"'
check "workdir" 'has "R pwd=[/tmp]"'
check "hostname from HOSTNAME" 'has "R hostname=[zk-test]"'
check "rlimits (NOFILE 123:456)" 'has "R nofile=[123:456]"'
for m in "/proc proc" "/sys sysfs" "/dev devtmpfs" "/dev/pts devpts" "/dev/shm tmpfs" "/sys/fs/cgroup cgroup2"; do
  check "mounted: $m" 'has "R mount $m"'
done
lo=$(sed -n 's/^R lo=\[\(.*\)\]$/\1/p' <<<"$r")
check "lo is up (flags $lo)" '[[ -n $lo ]] && (( lo & 1 ))'
check "init is PID 1, the workload is not" 'has "R pid1=[/init.krun a b c x=y ]" && ! has "R self=1"'
check "status 0 reported" 'status_is 0'

# 2. Hostile values: everything goes by JSON (/.zkrun_config.json), KRUN_CONFIG on the cmdline.
name=json
envs=()
for i in $(seq 1 200); do envs+=(--env "VAR_$i=value $i"); done
tokens=$(encode --exec /report.sh --workdir "/tmp/dir with spaces" --env 'QUOTE=say "hi" \ back' \
  --env "UNI=héllo ✓ 😀" --env "lower.dotted=1" "${envs[@]}" --rlimit 7=77:88 \
  -- 'arg "quoted"' '' 'two  spaces' '--' 'init=/bin/evil')
check "hostile config goes by JSON" '[[ $tokens == "KRUN_CONFIG=/.zkrun_config.json" && -s $work/enc.json ]]'
mkdir -p "$work/json-extra" && cp "$work/enc.json" "$work/json-extra/.zkrun_config.json"
boot json "$tokens" "$work/json-extra"
check "guest rebooted by itself" '[[ $rc -eq 0 ]]'
check "argv with quotes, empty, double space, --, init=" 'has "R argc=5" && has "R arg1=[arg \"quoted\"]" && has "R arg2=[]" && has "R arg3=[two  spaces]" && has "R arg4=[--]" && has "R arg5=[init=/bin/evil]"'
check "workdir with spaces" 'has "R pwd=[/tmp/dir with spaces]"'
check "env with quotes and backslash" 'has "R env QUOTE=say \"hi\" \\ back"'
check "env with unicode" 'has "R env UNI=héllo ✓ 😀"'
check "env with a lowercase dotted key" 'has "R env lower.dotted=1"'
nvars=$(grep -c '^R env VAR_[0-9]*=value [0-9]*$' <<<"$r")
check "200 env vars arrive ($nvars)" '[[ $nvars -eq 200 ]] && has "R env VAR_200=value 200"'
check "rlimits from JSON" 'has "R nofile=[77:88]"'
check "KRUN_CONFIG not in the workload env" '! grep -q "R env KRUN_" <<<"$r"'

# 3. crun: OCI config.json as /.krun_config.json, no KRUN_INIT.
name=oci
mkdir -p "$work/oci-extra"
cat >"$work/oci-extra/.krun_config.json" <<'EOF'
{"ociVersion":"1.0.2","process":{"terminal":false,"user":{"uid":0,"gid":0},
 "args":["/report.sh","oci arg"],"env":["PATH=/usr/bin:/bin","OCI=1","HOME=/home/oci"],"cwd":"/etc"},
 "root":{"path":"rootfs"},"hostname":"ignored"}
EOF
boot oci "" "$work/oci-extra"
check "OCI process.args/env/cwd" 'has "R argc=1" && has "R arg1=[oci arg]" && has "R env OCI=1" && has "R pwd=[/etc]"'
check "OCI HOME overrides the kernel's HOME=/" 'has "R env HOME=/home/oci"'

# 4. Exit statuses.
name=exit7; boot exit7 "$(encode --exec /bin/sh -- -c 'echo hello-from-init; exit 7')"
check "exit 7: ran and reported" 'grep -q "^hello-from-init$" "$work/exit7.log" && status_is 7 && [[ $rc -eq 0 ]]'
name=missing; boot missing "KRUN_INIT=/no/such/binary"
check "missing binary: 127 and a reason" 'status_is 127 && grep -q "init.krun: exec /no/such/binary: NOENT" "$work/missing.log"'
name=noexec; boot noexec "KRUN_INIT=/etc/passwd"
check "not executable: 126" 'status_is 126'
name=pathsearch; boot pathsearch "$(encode --exec ls -- /init.krun)"
check "PATH search without PATH set (default path): ls found" 'grep -q "^/init.krun$" "$work/pathsearch.log" && status_is 0'
name=killed; boot killed "$(encode --exec /bin/sh -- -c 'kill -9 $$')"
check "SIGKILL: 128+9 = 137" 'status_is 137'
name=default; boot default "-- -c \"echo default-shell-ran\""
check "no KRUN_INIT, no config: /bin/sh with the kernel's args" 'grep -q "^default-shell-ran$" "$work/default.log" && status_is 0'

# 5. Bad config: 125 with a message.
name=badconfig
mkdir -p "$work/bad-extra" && printf '{"process":{"args":["/bin/sh"' >"$work/bad-extra/.krun_config.json"
boot badconfig "" "$work/bad-extra"
check "malformed config.json: 125 and a reason" 'status_is 125 && grep -q "init.krun: exec config: ConfigSyntax" "$work/badconfig.log"'
name=badrlimit; boot badrlimit 'KRUN_INIT=/bin/true KRUN_RLIMITS="7=1"'
check "malformed KRUN_RLIMITS: 125" 'status_is 125'
name=badworkdir; boot badworkdir 'KRUN_INIT=/bin/true KRUN_WORKDIR=/nonexistent'
check "missing workdir: 125 and a reason" 'status_is 125 && grep -q "init.krun: workdir /nonexistent: NOENT" "$work/badworkdir.log"'

# 6. PID 1 duties: orphans reaped, no waiting for leftovers.
name=orphans; boot orphans "KRUN_INIT=/orphans.sh"
check "orphans reaped by init (no zombies)" 'has "R zombies=0"'
check "workload exit ends the VM despite a running background child" 'status_is 3 && [[ $rc -eq 0 ]]'

# 7. KRUN_INIT_PID1=1: the workload is PID 1 (its exit panics the kernel; panic=-1 reboots).
name=pid1; boot pid1 "$(encode --exec /bin/sh --env KRUN_INIT_PID1=1 -- -c 'echo pid=$$')"
check "KRUN_INIT_PID1=1 runs the workload as PID 1" 'grep -q "^pid=1$" "$work/pid1.log" && [[ $rc -eq 0 ]]'

# 8. stdio on the krun-stdin/stdout/stderr virtio-console ports.
name=ports
# QEMU's pipe chardev reads the guest's input from PATH.in (a FIFO we feed) and writes PATH.out.
mkfifo "$work/pin.in" "$work/pin.out"
{ printf 'hello-in\n' >"$work/pin.in"; } &
feeder=$!
cat "$work/pin.out" >/dev/null &
drain=$!
boot ports "KRUN_INIT=/stdio.sh" "" \
  -chardev "pipe,id=pin,path=$work/pin" \
  -chardev "file,id=pout,path=$work/stdout.txt" -chardev "file,id=perr,path=$work/stderr.txt" \
  -device virtio-serial-device -device virtserialport,chardev=pin,name=krun-stdin \
  -device virtserialport,chardev=pout,name=krun-stdout -device virtserialport,chardev=perr,name=krun-stderr
kill "$feeder" "$drain" 2>/dev/null; wait "$feeder" "$drain" 2>/dev/null
check "krun-stdin feeds the workload, krun-stdout gets its output" 'grep -q "^got=\[hello-in\]$" "$work/stdout.txt" 2>/dev/null'
check "krun-stderr gets its stderr" 'grep -q "^to-stderr$" "$work/stderr.txt" 2>/dev/null'
check "init's own lines follow stdio to krun-stderr; the console gets neither" 'grep -q "init.krun: exit status 5" "$work/stderr.txt" && ! grep -q "got=\|init.krun:" "$work/ports.log"'

name=portserr
boot portserr "KRUN_INIT=/bin/true KRUN_WORKDIR=/nonexistent" "" \
  -chardev "file,id=perr,path=$work/stderr2.txt" \
  -device virtio-serial-device -device virtserialport,chardev=perr,name=krun-stderr
check "a setup failure's reason reaches krun-stderr" 'grep -q "init.krun: workdir /nonexistent: NOENT" "$work/stderr2.txt" 2>/dev/null && grep -q "init.krun: exit status 125" "$work/stderr2.txt"'

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
