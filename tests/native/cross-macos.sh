#!/usr/bin/env bash
# Cross build for aarch64-macos (issue 16, Hypervisor.framework): `zig build -Dtarget=aarch64-macos`
# must produce libkrun.1.dylib: an arm64 Mach-O dylib, install name libkrun.1.dylib, exporting
# exactly include/libkrun.h's functions, linking only libSystem (Hypervisor.framework is dlopen'd
# at run time), with the HVF backend compiled in and no Linux-only code: no Linux-only libc
# symbol and no raw `svc #0` (a Linux syscall; macOS code calls libSystem). Nothing here can
# run it: a Mac is needed for that (docs/HVF.md). libkrunfw.5.dylib (-Dkernel-aarch64) needs
# the aarch64 kernel, which the native tier does not wait for: tests/aarch64/cross-macos-krunfw.sh
# builds and checks it in the aarch64 tier.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/zig/bin:$PATH"
work=$(mktemp -d /tmp/zkrun-cross-macos.XXXXXX)
trap 'rm -rf "$work"' EXIT
p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }
for tool in llvm-objdump llvm-nm; do
  command -v $tool >/dev/null || { echo "FAIL: $tool missing (Debian package llvm; scripts/setup.sh installs it)"; echo "0 passed, 1 failed"; exit 1; }
done

if zig build -Dtarget=aarch64-macos --prefix "$work" --summary none >"$work/build.log" 2>&1; then
  ok "zig build -Dtarget=aarch64-macos"
else
  bad "zig build -Dtarget=aarch64-macos:"; sed 's/^/    /' "$work/build.log" | head -40
fi
lib=$work/lib/libkrun.1.dylib
# Without the dylib every check below would pass or fail for the wrong reason.
if [[ ! -f $lib ]]; then bad "no libkrun.1.dylib was built"; echo "$p passed, $f failed"; exit 1; fi
source tests/native/lib/macho.sh
macho_dylib "$lib" libkrun.1.dylib "Hypervisor.framework is dlopen'd"
llvm-nm -gU "$lib" 2>/dev/null | awk '$2 == "T" {print $3}' | sed 's/^_//' | sort -u >"$work/exported"
grep -oE '^[a-z0-9_ *]+\bkrun_[a-z0-9_]+\(' include/libkrun.h | grep -oE 'krun_[a-z0-9_]+' | sort -u >"$work/header"
if [[ -s $work/header ]] && cmp -s "$work/header" "$work/exported"; then ok "exports exactly the header's $(wc -l <"$work/header") functions"
else bad "exports differ from the header:"; diff "$work/header" "$work/exported" | head; fi
# llvm-nm -u prints bare Mach-O names (`_kevent`, no ` U `): the C name is without the `_`.
# (Stripping it only after a ` U ` left `_epoll_wait`, which the check below never matched.)
llvm-nm -u "$lib" 2>/dev/null | sed 's/^ *U //; s/^_//' >"$work/undefined"
leaks=$(grep -E '^(epoll_|eventfd|io_uring|signalfd|timerfd|inotify|statx|pipe2|accept4|memfd_create|prctl|splice|sendfile64|getdents|syscall$|__errno_location)' "$work/undefined" | tr '\n' ' ')
[[ -z $leaks ]] && ok "no Linux-only libc symbol imported" || bad "Linux-only imports: $leaks"
# A raw Linux syscall compiled in: `svc #0` (0xd4000001). macOS code reaches the kernel through libSystem.
svcs=$(llvm-objdump -d --no-show-raw-insn "$lib" 2>/dev/null | grep -cE $'\tsvc\t')
[[ $svcs == 0 ]] && ok "no raw syscall instruction (svc) in the dylib" || bad "$svcs svc instructions: Linux syscalls compiled into the macOS build"
# The backend is in: the framework's path and the symbols hv.zig resolves with dlsym.
for s in /System/Library/Frameworks/Hypervisor.framework/Hypervisor hv_vcpu_run hv_vm_map hv_vcpu_set_vtimer_mask hv_gic_create; do
  grep -qaF "$s" "$lib" && ok "HVF backend compiled in: '$s'" || bad "'$s' not in the dylib: the HVF backend is not compiled in"
done
# Machine.create builds a VM (issue 16): RAM mapped with hv_vm_map, the initramfs placed, the GIC
# and the vCPU threads. Their log strings are in the dylib only if that code is (a create that
# refuses lets the optimizer drop all of it, as it did before).
for s in 'hv_vm_map(0x' 'initramfs of ' 'hv_gic_create: ' 'hv_vcpu_create failed'; do
  grep -qaF "$s" "$lib" && ok "HVF create path in the dylib: '$s'" || bad "'$s' not in the dylib: the HVF create path was optimized away"
done
# The event loop's kqueue backend (EventLoop.Kqueue) serves the serial port on macOS: kqueue and
# kevent are imported from libSystem only if that code is in the dylib, and its log strings
# (interest changes, the wait's failure) with it.
for s in kqueue kevent; do
  grep -qx "$s" "$work/undefined" && ok "kqueue event loop in the dylib: imports $s" || bad "$s not imported: the kqueue event loop is not in the dylib"
done
for s in 'kevent change fd ' 'kevent: '; do
  grep -qaF "$s" "$lib" && ok "kqueue event loop in the dylib: '$s'" || bad "'$s' not in the dylib: the kqueue backend was optimized away"
done
# The HVF Machine's virtio devices (vmm/hvf/Devices.zig on vmm/DeviceSlots.zig): balloon, rng and
# the virtio console are attached, the exec config encoded, virtio-fs refused at its attach point.
# Their log strings are in the dylib only if that code is (the svc and import checks above then
# cover it): the slot table's overflow, the balloon's and the console's queue work, the console's
# input path (event-loop sources, libc readv), the exec config, the virtio-fs attach point.
for s in ' virtio devices' 'balloon: queue ' 'console: queue ' 'console: port input: ' 'exec config needs the root virtio-fs' 'exit-code ioctl from guest pid '; do
  grep -qaF "$s" "$lib" && ok "HVF virtio devices in the dylib: '$s'" || bad "'$s' not in the dylib: the HVF device path was optimized away"
done
# The virtio parts that compile for macOS (Lock, rng, balloon, the MMIO transport, the virtio-fs
# device and server on virtio/fs/sys_posix.zig): no VMM attaches them there yet, so the dylib does
# not contain them all; tests/zig/macos_devices.zig exports functions that reach all of them,
# built alone as an aarch64-macos object (`zig build macos-devices`) and checked the same way, and
# for the macOS calls that replace the Linux ones (futex, getrandom, madvise DONTNEED; the fs
# server's xattrs, renameat2, getdents, the worker's eventfd).
obj=$work/devices/obj/macos-devices.o
if zig build macos-devices --prefix "$work/devices" --summary none >"$work/devices.log" 2>&1 && [[ -s $obj ]]; then
  ok "virtio Lock, rng, balloon, the MMIO transport and virtio-fs compile for aarch64-macos"
  llvm-nm -u "$obj" 2>/dev/null | sed 's/^ *U //; s/^_//' >"$work/devices.undefined"
  leaks=$(grep -E '^(epoll_|eventfd|io_uring|signalfd|timerfd|inotify|statx|pipe2|accept4|memfd_create|prctl|splice|sendfile64|getdents|getrandom|copy_file_range|syncfs|renameat2|fallocate|fdatasync|syscall$|__errno_location)' "$work/devices.undefined" | tr '\n' ' ')
  [[ -z $leaks ]] && ok "virtio devices object: no Linux-only libc symbol imported" || bad "virtio devices object imports: $leaks"
  svcs=$(llvm-objdump -d --no-show-raw-insn "$obj" 2>/dev/null | grep -cE $'\tsvc\t')
  [[ $svcs == 0 ]] && ok "virtio devices object: no raw syscall instruction (svc)" || bad "virtio devices object: $svcs svc instructions (Linux syscalls)"
  for s in os_unfair_lock_lock arc4random_buf madvise fgetxattr fsetxattr renameatx_np fdopendir readdir telldir fstatvfs fstatat mkfifoat pipe poll; do
    grep -qx "$s" "$work/devices.undefined" && ok "virtio devices object: the macOS call $s is in" || bad "virtio devices object: $s not imported"
  done
  grep -qaF '/proc/self/fd/' "$obj" && ok "virtio devices object: the ProcPath names the posix backend parses are in" || bad "virtio devices object: no ProcPath"
else
  bad "virtio devices for aarch64-macos:"; sed 's/^/    /' "$work/devices.log" | head -30
fi
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
