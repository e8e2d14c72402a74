#!/usr/bin/env bash
# The FUSE request mix of each of compare.bench.sh's file workloads (issue 15: where does the
# time go), zkrun vs QEMU + Debian's virtiofsd, in one test-host boot. Not part of `make bench`
# (run it by hand: tests/bench/fs-mix.sh). One guest run per side of compare/fsb.c with FSB_MARK:
# before each step (create N files, stat them, drop caches, `ls -l`, unlink them, untar a tree,
# `rm -rf` it, write + fsync a file, drop caches, cold read, drop caches, random 4 KiB reads) it
# stats a missing "/.fsb-mark-<step>", a LOOKUP both servers log by name; the requests between two
# markers are the step's own (async ones, RELEASE and readahead, may land one step late). zkrun
# logs each request with ZKRUN_FS_STATS=trace (virtio/fs/Stats.zig), virtiofsd with -d. Prints
# each side's fsb times (one sample: noise here) and KVM exits (krun-bench; zkrun sides only),
# then a markdown table: requests per step and side, and each step's mix.
# Knobs: FS_MIX_FILES (50), FS_MIX_TREE (files in the tree, 100), FS_MIX_MIB (8), FS_MIX_RANDOM
# (random reads, 256); FS_MIX_LIB: side "zkrun"'s libkrun.so.1 (zig-out's); FS_MIX_BASE_LIB: a
# second one (e.g. the build before a change, with the same trace support) run as side "base" in
# the same boot; FS_MIX_QEMU=0 skips QEMU.
set -uo pipefail
cd "$(dirname "$0")/../.."
cache=${ZKRUN_CACHE:-$HOME/.cache/zkrun}/bench
files=${FS_MIX_FILES:-50} tree=${FS_MIX_TREE:-100} mib=${FS_MIX_MIB:-8} random=${FS_MIX_RANDOM:-256}
if [[ ${FS_MIX_INSIDE:-} != 1 ]]; then
  [[ -e zig-out/lib/libkrun.so.1 ]] || { echo "fs-mix: zkrun not built"; exit 1; }
  mkdir -p "$cache"
  cc -std=gnu11 -O2 -Wall -Wextra -Werror -o "$cache/krun-bench" tests/bench/compare/krun-bench.c -ldl -lpthread || exit 1
  cc -static -O2 -Wall -Wextra -o "$cache/fsb" tests/bench/compare/fsb.c || exit 1
  tar_file=$cache/tree-$tree.tar
  if [[ ! -s $tar_file ]]; then
    t=$(mktemp -d); for ((i = 0; i < tree; i++)); do
      d=$t/tree/d$((i / 100)); [[ -d $d ]] || mkdir -p "$d"; printf '%0100d' "$i" >"$d/f$i"; done
    tar -C "$t" -cf "$tar_file.tmp" tree && mv "$tar_file.tmp" "$tar_file"; rm -rf "$t"
  fi
  rootfs=$(tests/native/capi/vm-build.sh | sed -n 's/^rootfs=//p')
  exec tests/host/run --timeout "${FS_MIX_TIMEOUT:-1800}" env FS_MIX_INSIDE=1 ROOTFS="$rootfs" TAR_FILE="$tar_file" \
    FS_MIX_FILES="$files" FS_MIX_TREE="$tree" FS_MIX_MIB="$mib" FS_MIX_RANDOM="$random" \
    FS_MIX_LIB="${FS_MIX_LIB:-$PWD/zig-out/lib/libkrun.so.1}" FS_MIX_BASE_LIB="${FS_MIX_BASE_LIB:-}" FS_MIX_QEMU="${FS_MIX_QEMU:-1}" "$0"
fi

KERNEL=$(kernelfw/build-kernel.sh --print-path 2>/dev/null)
VIRTIOFSD=/usr/lib/qemu/virtiofsd
export LD_LIBRARY_PATH=$PWD/zig-out/lib
work=$(mktemp -d /tmp/zkrun-fsmix.XXXXXX); trap 'rm -rf "$work"' EXIT
fsb_args="/results $files /$(basename "$TAR_FILE") $mib 0"
fsb_env="FSB_MARK=1 FSB_RANDOM=$random"
fresh() { rm -rf "$work/root"; cp -a "$ROOTFS" "$work/root"; cp "$cache/fsb" "$TAR_FILE" "$work/root/"; }

# Request log (one opcode a line, "MARK <step>" where a marker LOOKUP was) → "step OPCODE count".
split_steps() {
  awk '
    $1 == "MARK" { c[step, "LOOKUP"]--; step = $2; if (!(step in seen)) { seen[step] = 1; order[++n] = step }; next }
    { c[step, $1]++ }
    BEGIN { step = "boot"; seen[step] = 1; order[++n] = step }
    END { for (k in c) { split(k, p, SUBSEP); if (c[k] > 0) print p[1], p[2], c[k] }
          for (i = 1; i <= n; i++) print "ORDER", i, order[i] }'
}

sides=()
krun_side() { # name lib
  local s=$1 lib=$2
  fresh
  ZKRUN_FS_STATS=trace KRUN_BENCH_OUT=$work/out timeout 1200 "$cache/krun-bench" "$lib" 1 512 \
    "$work/root" /bin/sh -c "$fsb_env exec /fsb $fsb_args" </dev/null >/dev/null 2>"$work/err-$s"
  echo "fs-mix: $s: fsb: $(tr '\n' ' ' <"$work/root/results")"
  echo "fs-mix: $s: krun-bench: $(cat "$work/out" 2>/dev/null)"
  grep '^virtio-fs stats' "$work/err-$s" | sed "s/^/fs-mix: $s: /"
  sed -n 's/^virtio-fs trace \([a-z_0-9]*\) [0-9]*\( \(.*\)\)\{0,1\}$/\1 \3/p' "$work/err-$s" |
    awk '{ print toupper($1) } $1 == "lookup" && $2 ~ /^\.fsb-mark-/ { sub(/^\.fsb-mark-/, "", $2); print "MARK", $2 }' |
    split_steps >"$work/mix-$s"
  sides+=("$s")
}
krun_side zkrun "$FS_MIX_LIB"
[[ -n ${FS_MIX_BASE_LIB:-} ]] && krun_side base "$FS_MIX_BASE_LIB"

if [[ ${FS_MIX_QEMU:-1} != 0 ]]; then
  fresh
  printf '#!/bin/sh\nexport %s\n/fsb %s\n/bin/busybox reboot -f\n' "$fsb_env" "$fsb_args" >"$work/root/run.sh"
  chmod +x "$work/root/run.sh"
  "$VIRTIOFSD" --socket-path="$work/vfsd.sock" -o source="$work/root" -o cache=auto -d >"$work/vfsd.log" 2>&1 &
  vfsd=$!
  for _ in $(seq 200); do [[ -S $work/vfsd.sock ]] && break; sleep 0.05; done
  timeout 1200 qemu-system-x86_64 -M microvm,acpi=off,memory-backend=mem -accel kvm -cpu host -m 512M -smp 1 \
    -global virtio-mmio.force-legacy=false -object memory-backend-memfd,id=mem,size=512M,share=on -nodefaults \
    -no-user-config -display none -no-reboot -serial file:"$work/console" -kernel "$KERNEL" \
    -chardev socket,id=vfs,path="$work/vfsd.sock" -device vhost-user-fs-device,chardev=vfs,tag=/dev/root \
    -append "console=ttyS0 quiet panic=-1 reboot=t rootfstype=virtiofs root=/dev/root rw init=/run.sh" </dev/null >/dev/null 2>&1
  for _ in $(seq 100); do kill -0 "$vfsd" 2>/dev/null || break; sleep 0.05; done
  kill "$vfsd" 2>/dev/null; wait "$vfsd" 2>/dev/null; rm -f "$work/vfsd.sock"
  echo "fs-mix: virtiofsd: fsb: $(tr '\n' ' ' <"$work/root/results")"
  echo "fs-mix: virtiofsd: read sizes: $(grep -o 'lo_read(ino=[0-9]*, size=[0-9]*' "$work/vfsd.log" | sed 's/.*size=//' | sort -n | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
  echo "fs-mix: virtiofsd: write sizes: $(grep -o 'lo_write_buf(ino=[0-9]*, size=[0-9]*' "$work/vfsd.log" | sed 's/.*size=//' | sort -n | uniq -c | sort -rn | head -5 | tr '\n' ' ')"
  sed -n 's/.*opcode: \([A-Z_0-9]*\) .*/\1/p; s/.*lo_lookup(parent=[0-9]*, name=\.fsb-mark-\(.*\))$/MARK \1/p' "$work/vfsd.log" |
    split_steps >"$work/mix-virtiofsd"
  sides+=(virtiofsd)
fi

# The table: a row per step (in fsb's order), per side its request count and its mix.
for s in "${sides[@]}"; do sed "s/^/$s /" "$work/mix-$s"; done | awk -v sides="${sides[*]}" '
  $2 == "ORDER" { if (!($4 in seen)) { seen[$4] = 1; order[++n] = $4 }; next }
  { c[$1, $2, $3] = $4; t[$1, $2] += $4; ops[$2, $3] = 1 }
  function mix(s, step,   k, p, line, best, bk, done_) {
    line = ""
    while (1) { best = 0; bk = ""
      for (k in ops) { split(k, p, SUBSEP); if (p[1] != step || (s, step, p[2]) in done_) continue
        if (c[s, step, p[2]] > best || (c[s, step, p[2]] == best && best > 0 && p[2] < bk)) { best = c[s, step, p[2]]; bk = p[2] } }
      if (best == 0) break
      done_[s, step, bk] = 1; line = line (line == "" ? "" : ", ") bk " " best }
    return line == "" ? "–" : line
  }
  END {
    m = split(sides, side, " ")
    h = "| step"; for (j = 1; j <= m; j++) h = h " | " side[j]; for (j = 1; j <= m; j++) h = h " | " side[j] " mix"
    print h " |"; h = "|---"; for (j = 1; j <= 2 * m; j++) h = h "|---"; print h "|"
    for (i = 1; i <= n; i++) { st = order[i]; r = "| " st
      for (j = 1; j <= m; j++) r = r " | " (t[side[j], st] + 0)
      for (j = 1; j <= m; j++) r = r " | " mix(side[j], st)
      print r " |" }
    r = "| all"; for (j = 1; j <= m; j++) { a = 0; for (i = 1; i <= n; i++) a += t[side[j], order[i]]; r = r " | " a }
    for (j = 1; j <= m; j++) r = r " | "; print r " |"
  }'
