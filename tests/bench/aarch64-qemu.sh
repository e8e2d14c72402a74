#!/usr/bin/env bash
# Prints the directory of an arm64 qemu-system-aarch64 for the aarch64 test host (which has no
# QEMU of its own: its root is an initramfs of busybox and bash), fetched once and cached:
# Debian's qemu-system-arm:arm64 and its Depends closure (`apt-get download`, unpacked with
# dpkg-deb -x, nothing installed; ~105 packages, 37 MB of .debs). Run it inside the test host as
#   $dir/lib/ld-linux-aarch64.so.1 --library-path $dir/lib/aarch64-linux-gnu:$dir/usr/lib/aarch64-linux-gnu \
#     $dir/usr/bin/qemu-system-aarch64 ...
# Cache: ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/qemu-aarch64/<key>, key = QEMU's version + this script.
set -euo pipefail
export LC_ALL=C
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/qemu-aarch64"
die() { echo "aarch64-qemu: error: $*" >&2; exit 1; }
dpkg --print-foreign-architectures | grep -qx arm64 || die "dpkg does not know arm64 (scripts/setup.sh)"
v=$(apt-cache policy qemu-system-arm:arm64 2>/dev/null | sed -n 's/^  Candidate: //p' | grep -v '(none)') ||
  { newest=$(ls -td "$cache"/*/ 2>/dev/null | head -1); [[ -n $newest ]] || die "apt knows no qemu-system-arm:arm64"
    echo "${newest%/}"; exit 0; }
out="$cache/$( { echo "$v"; cat "$0"; } | sha256sum | cut -c1-16)"
if [[ ! -x $out/usr/bin/qemu-system-aarch64 ]]; then
  mkdir -p "$cache"
  exec 9>"$cache/lock"; flock 9
  if [[ ! -x $out/usr/bin/qemu-system-aarch64 ]]; then
    work=$(mktemp -d "$cache/.work.XXXXXX"); trap 'rm -rf "$work"' EXIT
    mkdir -p "$work/debs" "$work/root"
    apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces \
      --no-enhances qemu-system-arm:arm64 2>/dev/null | grep -v '^ ' | grep ':arm64$' | sort -u >"$work/pkgs"
    echo "aarch64-qemu: fetching qemu-system-arm:arm64 $v and $(($(wc -l <"$work/pkgs") - 1)) dependencies" >&2
    (cd "$work/debs" && apt-get download -q $(cat "$work/pkgs") >/dev/null 2>"$work/apt.log") ||
      { cat "$work/apt.log" >&2; die "apt-get download failed"; }
    for d in "$work"/debs/*.deb; do dpkg-deb -x "$d" "$work/root"; done
    stage="$work/out"; mkdir -p "$stage/usr/bin"
    mv "$work/root/lib" "$stage/lib"; mv "$work/root/usr/lib" "$stage/usr/lib"
    mv "$work/root/usr/bin/qemu-system-aarch64" "$stage/usr/bin/"
    [[ -d $work/root/usr/share/qemu ]] && mkdir -p "$stage/usr/share" && mv "$work/root/usr/share/qemu" "$stage/usr/share/"
    cp "$work/pkgs" "$stage/packages"
    chmod 0755 "$stage"; mv -T "$stage" "$out"
    echo "aarch64-qemu: cached $out" >&2
  fi
fi
echo "$out"
