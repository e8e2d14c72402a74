#!/usr/bin/env bash
# Inside the aarch64 test host: zkrun's aarch64 backend through the real C API. capi-run
# (tests/aarch64/capi-run.c, cross-built with libkrun.so.1 and libkrunfw.so.5 holding our aarch64
# Image by 20-capi.prepare.sh) boots our kernel with a virtio-fs root (a directory with the host's
# static aarch64 busybox), /init.krun runs the workload, and the exit code reaches the caller:
#   1. krun_start_enter, 1 vCPU, console hvc0 (virtio console): output arrives, exit code 0
#   2. krun_start + krun_wait, 2 vCPUs: both online in the guest, exit code 7 reaches krun_wait
#   3. console ttyS0 (the ns16550a on MMIO, earlycon): the workload's output over the serial port
#   4. krun_start, krun_stop while the workload sleeps: status 137, reason STOPPED
#   5. krun_set_kernel with KRUN_KERNEL_FORMAT_ELF (x86_64 only, as libkrun) or IMAGE_ZSTD:
#      -ENOTSUP with a reason at the call (no boot)
#   5b. krun_set_kernel IMAGE_GZ (our Image gzipped by 20-capi.prepare.sh): boots, the workload's
#      output and exit code arrive; the same file cut in half passes the call's header check and
#      fails krun_start_enter with -EINVAL naming the truncation (no crash); a gzip of something
#      that is not an Image fails at the call with -EINVAL
#   6. krun_set_kernel RAW + a 4+ MiB initramfs (bigger than the FDT's 2 MiB window at the end of
#      RAM, where it once ended and writeBoot overwrote it): its /init finds its files intact
set -uo pipefail
cd "$(dirname "$0")/../.."
[[ $(uname -m) == aarch64 ]] || { echo "could not run: not inside the aarch64 test host"; exit 77; }
d="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host/aarch64-capi"
if [[ -f $d/NO-KERNEL ]]; then echo "could not run: $(cat "$d/NO-KERNEL")"; exit 77; fi
run=$d/bin/capi-run
[[ -x $run ]] || { echo "FAIL no $run (tests/aarch64/20-capi.prepare.sh)"; exit 1; }
root=$(mktemp -d /tmp/aarch64-root.XXXXXX)
mkdir -p "$root/bin" "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
log=$(mktemp /tmp/aarch64-capi.XXXXXX)
fails=0
chk() { if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; fails=1; sed 's/^/    | /' "$log" | tail -30; fi; }
t() { local t0=$SECONDS; timeout 240 "$run" "$@" >"$log" 2>&1; rc=$?; secs=$((SECONDS - t0)); }

t "$root" /bin/busybox sh -c 'echo "hello from $(/bin/busybox uname -m)"; exit 0'
chk "1 vCPU, start_enter, hvc0: workload output and exit 0 (rc $rc, $secs s)" \
  '[[ $rc -eq 0 ]] && grep -q "hello from aarch64" "$log"'

t -S -c 2 "$root" /bin/busybox sh -c 'echo "cpus $(/bin/busybox nproc)"; exit 7'
chk "2 vCPUs, start + wait: both online, exit code 7 reaches krun_wait (rc $rc, $secs s)" \
  '[[ $rc -eq 0 ]] && grep -q "cpus 2" "$log" && grep -q "capi-run: status 7 reason 1" "$log"'

t -t ttyS0 "$root" /bin/busybox sh -c 'echo serial-says-hi; exit 3'
chk "console ttyS0 (ns16550a on MMIO): output over the serial port, exit code 3 (rc $rc, $secs s)" \
  '[[ $rc -eq 3 ]] && grep -q "serial-says-hi" "$log"'

t -X 8000 "$root" /bin/busybox sleep 600
chk "krun_start, krun_stop: status 137, reason STOPPED (rc $rc, $secs s)" \
  '[[ $rc -eq 0 ]] && grep -q "capi-run: status 137 reason 2" "$log"'

image=$(ls "$d"/../../kernel-aarch64/*/Image 2>/dev/null | head -1)
for f in 1:elf 5:image_zstd; do
  t -f "${f%%:*}" -k "${image:-/nonexistent}" "$root" /bin/busybox true
  chk "krun_set_kernel format ${f#*:} on aarch64: ENOTSUP with a reason, no boot (rc $rc)" \
    '[[ $rc -eq 1 ]] && grep -q "krun_set_kernel: Operation not supported" "$log" && grep -q "arm64 Image" "$log"'
done

t -f 4 -k "$d/Image.gz" "$root" /bin/busybox sh -c 'echo "gz kernel $(/bin/busybox uname -m)"; exit 5'
chk "krun_set_kernel IMAGE_GZ: the gzipped Image boots, output and exit code 5 (rc $rc, $secs s)" \
  '[[ $rc -eq 5 ]] && grep -q "gz kernel aarch64" "$log"'
gzcut=$(mktemp /tmp/aarch64-cut.XXXXXX)
head -c $(($(stat -c %s "$d/Image.gz") / 2)) "$d/Image.gz" >"$gzcut"
t -f 4 -k "$gzcut" "$root" /bin/busybox true
chk "IMAGE_GZ cut in half: krun_start_enter -EINVAL naming the truncation, no boot (rc $rc)" \
  '[[ $rc -eq 1 ]] && grep -q "krun_start_enter: Invalid argument" "$log" && grep -q "truncated" "$log"'
/bin/busybox gzip -c /bin/busybox >"$gzcut"
t -f 4 -k "$gzcut" "$root" /bin/busybox true
chk "IMAGE_GZ of a non-Image: krun_set_kernel -EINVAL with a reason (rc $rc)" \
  '[[ $rc -eq 1 ]] && grep -q "krun_set_kernel: Invalid argument" "$log" && grep -q "not of an arm64 Image" "$log"'
rm -f "$gzcut"

ird=$(mktemp -d /tmp/aarch64-initrd.XXXXXX)
mkdir -p "$ird/bin"
cp /bin/busybox "$ird/bin/busybox"
head -c 3145728 /dev/urandom >"$ird/pad"
sum=$(/bin/busybox sha256sum "$ird/pad" | cut -d' ' -f1)
printf '#!/bin/busybox sh\n[ "$(/bin/busybox sha256sum /pad | /bin/busybox cut -d" " -f1)" = %s ] && echo initrd-intact || echo initrd-corrupt\n/bin/busybox poweroff -f\n' \
  "$sum" >"$ird/init"
chmod +x "$ird/init"
(cd "$ird" && find . | /bin/busybox cpio -o -H newc >"$ird.cpio" 2>/dev/null)
t -S -t ttyS0 -k "${image:-/nonexistent}" -i "$ird.cpio" "$root" /bin/busybox true
chk "RAW Image + a $(($(stat -c %s "$ird.cpio") >> 20)) MiB initramfs: /init reads it intact, powers off (rc $rc, $secs s)" \
  '[[ $rc -eq 0 ]] && grep -q initrd-intact "$log" && grep -q "capi-run: status 0 reason 6" "$log"'
rm -rf "$ird" "$ird.cpio"

rm -rf "$root" "$log"
[[ $fails -eq 0 ]]
