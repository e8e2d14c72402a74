#!/usr/bin/env bash
# Prepares (once, cached) what the aarch64 test host boots, and prints two lines:
#   kernel <path>   Debian's arm64 kernel (vmlinuz of linux-image-arm64's current dependency)
#   initrd <path>   a gzip'd cpio: Debian's arm64 busybox-static, bash with its libraries
#                   (bash, libc6, libtinfo6 :arm64), the kernel's modules the host needs
#                   (virtio-mmio, virtio console, 9p) and tests/host/init-aarch64 as /init
# The .debs come from apt (`apt-get download`, needs `dpkg --add-architecture arm64`, which
# scripts/setup.sh does) and are unpacked with dpkg-deb -x; nothing is installed on the machine.
# Cache: ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host-aarch64/<key>/ where key = the package versions
# plus this script and the init; the test host shares the cache, so it is built once.
# Offline, the newest cached root is used when apt cannot name the versions.
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/host-aarch64"
die() { echo "aarch64-root: error: $*" >&2; exit 1; }

# Modules to load, in dependency order (modinfo -F depends), from the kernel package.
modules=(virtio_mmio virtio_console 9pnet 9pnet_virtio netfs fscache 9p)

cand() { apt-cache policy "$1" 2>/dev/null | sed -n 's/^  Candidate: //p' | grep -v '(none)'; }
dpkg --print-foreign-architectures | grep -qx arm64 ||
  die "dpkg does not know arm64 (scripts/setup.sh runs: dpkg --add-architecture arm64; apt-get update)"
kpkg=$(apt-cache depends linux-image-arm64:arm64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9][^ :]*\).*/\1/p' | head -1)
pkgs=() versions=''
if [[ -n $kpkg ]]; then
  pkgs=("$kpkg:arm64" busybox-static:arm64 bash:arm64 libc6:arm64 libtinfo6:arm64)
  for p in "${pkgs[@]}"; do
    v=$(cand "$p") || die "apt knows no candidate for $p (apt-get update?)"
    versions+="$p=$v "
  done
fi
if [[ -z $versions ]]; then
  newest=$(ls -td "$cache"/*/ 2>/dev/null | head -1)
  [[ -n $newest && -f $newest/initrd.cpio.gz ]] || die "apt cannot name the arm64 packages and nothing is cached"
  echo "kernel ${newest%/}/vmlinuz"; echo "initrd ${newest%/}/initrd.cpio.gz"; exit 0
fi
key=$( { echo "$versions"; cat "$0" "$here/init-aarch64"; } | sha256sum | cut -c1-16)
out="$cache/$key"
if [[ ! -f $out/initrd.cpio.gz ]]; then
  mkdir -p "$cache"
  exec 9>"$cache/lock"; flock 9
  if [[ ! -f $out/initrd.cpio.gz ]]; then
    echo "aarch64-root: fetching ${pkgs[*]}" >&2
    work=$(mktemp -d "$cache/.work.XXXXXX"); trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/debs" "$work/k" "$work/root"
    (cd "$work/debs" && apt-get download -q "${pkgs[@]}" >/dev/null 2>"$work/apt.log") ||
      { cat "$work/apt.log" >&2; die "apt-get download failed"; }
    for d in "$work"/debs/*.deb; do
      case $(basename "$d") in
      linux-image-*) dpkg-deb -x "$d" "$work/k" ;;
      *) dpkg-deb -x "$d" "$work/root" ;;
      esac
    done
    r=$work/root
    rm -rf "$r/usr/share" "$r/etc/skel" "$r/usr/lib/aarch64-linux-gnu/gconv"
    kver=$(ls "$work/k/lib/modules")
    mkdir -p "$r/lib/modules/$kver" "$r/proc" "$r/sys" "$r/dev" "$r/tmp" "$r/run" "$r/var/tmp" \
      "$r/root" "$r/usr/bin" "$r/usr/sbin" "$r/sbin" "$r/bin"
    for m in "${modules[@]}"; do
      f=$(find "$work/k/lib/modules/$kver" -name "$m.ko" -o -name "$m.ko.xz" | head -1)
      [[ -n $f ]] || die "module $m not in $kpkg"
      cp "$f" "$r/lib/modules/$kver/"
    done
    printf '%s\n' "${modules[@]}" >"$r/lib/modules/$kver/load-order"
    install -m 0755 "$here/init-aarch64" "$r/init"
    [[ -x $r/bin/bash && -x $r/bin/busybox ]] || die "bash or busybox missing from the packages"
    (cd "$r" && find . | cpio --quiet -o -H newc -R 0:0) | gzip -1 >"$work/initrd.cpio.gz"
    cp "$work/k/boot/vmlinuz-$kver" "$work/vmlinuz"
    echo "$versions" >"$work/versions"
    stage="$work/out"; mkdir "$stage"
    mv "$work/vmlinuz" "$work/initrd.cpio.gz" "$work/versions" "$stage/"
    chmod 0755 "$stage"
    mv -T "$stage" "$out"
    echo "aarch64-root: cached $out" >&2
  fi
fi
echo "kernel $out/vmlinuz"
echo "initrd $out/initrd.cpio.gz"
