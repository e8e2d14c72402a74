#!/usr/bin/env bash
# Build (or find in the cache) zkrun's aarch64 guest kernel: a raw arm64 `Image`, cross-built
# from Debian's linux-source-6.12 with Debian's gcc-aarch64-linux-gnu.
#
#   kernelfw/build-kernel-aarch64.sh               build if needed; prints "kernel: cached <path>" when cached
#   kernelfw/build-kernel-aarch64.sh --print-path  print the Image path for the current inputs, never build
#   kernelfw/build-kernel-aarch64.sh --key         print the cache key
#
# Separate from build-kernel.sh (x86_64) on purpose: its inputs (config-aarch64.fragment, this
# script, the cross compiler) never change the x86_64 kernel's cache key, and it patches its own
# copy of the source. The patch series is kernelfw/patches/*.patch minus the x86-only ones (names
# containing "-x86-"). The cache key is the sha256 of: the source package version, the fragment,
# the series (names and contents), the cross compiler's version and this script.
# Layout under ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel-aarch64/:
#   <key>/Image, <key>/config, <key>/build-info   finished builds (installed atomically by rename)
#   src/<tree>/linux-source-6.12                  the source with the series applied, one per
#                                                 (package version, series); unpacked once
#   work/<tree>/obj                               the out-of-tree build dir, kept: a fragment
#                                                 change rebuilds incrementally
#   lock                                          flock: one build at a time
# Builds run under `nice -n 10` with -j${ZKRUN_KERNEL_JOBS:-2} (the machine is shared).
set -euo pipefail
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
fragment="$here/config-aarch64.fragment"
patchdir="$here/patches"
tarball=/usr/src/linux-source-6.12.tar.xz
pkg=linux-source-6.12
cross=aarch64-linux-gnu-
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel-aarch64"

die() { echo "kernel-aarch64: error: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
"") ;;
--print-path) mode=print ;;
--key) mode=key ;;
-h | --help) sed -n '2,8p' "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
    die "Debian package $pkg is not installed (apt-get install $pkg)"
[ -n "$pkgver" ] || die "Debian package $pkg is not installed (apt-get install $pkg)"
ccver=$("${cross}gcc" -dumpfullversion 2>/dev/null) || ccver=missing

patches=()
shopt -s nullglob
for p in "$patchdir"/*.patch; do
    case $(basename "$p") in *-x86-*) ;; *) patches+=("$p") ;; esac
done
shopt -u nullglob

series=$(
    for p in "${patches[@]}"; do
        echo "patch $(basename "$p") $(sha256sum <"$p" | cut -d' ' -f1)"
    done | sha256sum | cut -c1-32
)
tree=$(echo "pkg $pkg $pkgver series $series" | sha256sum | cut -c1-16)
key=$({
    echo "zkrun-kernel-aarch64-v1"
    echo "pkg $pkg $pkgver"
    echo "fragment $(sha256sum <"$fragment" | cut -d' ' -f1)"
    echo "series $series"
    echo "cc $ccver"
    echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
} | sha256sum | cut -c1-32)
out="$cache/$key"

case $mode in
print) echo "$out/Image"; exit 0 ;;
key) echo "$key"; exit 0 ;;
esac

if [ -f "$out/Image" ]; then
    echo "kernel-aarch64: cached $out/Image"
    exit 0
fi

# ---- cold path ------------------------------------------------------------------------------
t0=$(date +%s)
[ "$ccver" != missing ] || die "missing ${cross}gcc (apt-get install gcc-aarch64-linux-gnu)"
for tool in make gcc flex bison bc xz tar patch flock perl; do
    command -v "$tool" >/dev/null || die "missing build tool '$tool' (see kernelfw/README.md)"
done
[ -f /usr/include/libelf.h ] || die "missing libelf headers (apt-get install libelf-dev)"
[ -f /usr/include/openssl/opensslv.h ] || die "missing OpenSSL headers (apt-get install libssl-dev)"
[ -f "$tarball" ] || die "missing $tarball (apt-get install $pkg)"

mkdir -p "$cache"
exec 9>"$cache/lock"
if ! flock -n 9; then
    echo "kernel-aarch64: another build is running, waiting for it"
    flock 9
fi
if [ -f "$out/Image" ]; then
    echo "kernel-aarch64: cached $out/Image"
    exit 0
fi

log="$cache/work/$tree/build-$key.log"
mkdir -p "$cache/work/$tree"
: >"$log"
fail() {
    echo "kernel-aarch64: error: $* (log: $log); last lines:" >&2
    tail -n 25 "$log" >&2 || true
    exit 1
}

# 1. Source with the series applied, once per (package version, series).
src_parent="$cache/src/$tree"
srctree="$src_parent/linux-source-6.12"
if [ ! -f "$src_parent/.ready" ]; then
    echo "kernel-aarch64: unpacking $tarball ($pkg $pkgver) and applying ${#patches[@]} patch(es)"
    rm -rf "$src_parent" "$src_parent.tmp"
    mkdir -p "$src_parent.tmp"
    tar -C "$src_parent.tmp" -xf "$tarball" >>"$log" 2>&1 || fail "unpacking failed"
    [ -f "$src_parent.tmp/linux-source-6.12/Makefile" ] || fail "unexpected tarball layout"
    for p in "${patches[@]}"; do
        echo "== $(basename "$p")" >>"$log"
        patch -d "$src_parent.tmp/linux-source-6.12" -p1 --batch --forward --no-backup-if-mismatch -r - <"$p" >>"$log" 2>&1 ||
            fail "patch $(basename "$p") does not apply"
    done
    touch "$src_parent.tmp/.ready"
    mv -T "$src_parent.tmp" "$src_parent"
fi
obj="$cache/work/$tree/obj"
mkdir -p "$obj"

export KBUILD_BUILD_TIMESTAMP="Wed Jan  1 00:00:00 UTC 2025"
export KBUILD_BUILD_USER=zkrun
export KBUILD_BUILD_HOST=zkrun
export KBUILD_BUILD_VERSION=1
export ARCH=arm64 CROSS_COMPILE=$cross LOCALVERSION=
unset KCONFIG_CONFIG

# 2. Config: tinyconfig's fragments + ours over allnoconfig, then olddefconfig.
echo "kernel-aarch64: configuring (tinyconfig + kernelfw/config-aarch64.fragment)"
(
    cd "$srctree"
    scripts/kconfig/merge_config.sh -n -O "$obj" \
        kernel/configs/tiny-base.config kernel/configs/tiny.config "$fragment"
) >>"$log" 2>&1 || fail "merge_config.sh failed"
make -C "$srctree" O="$obj" olddefconfig >>"$log" 2>&1 || fail "olddefconfig failed"

# 3. Verify that Kconfig kept every choice of the fragment.
missing=()
requested=0
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        requested=$((requested + 1))
        sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
        got=$(grep -m1 -E "^(# )?${sym}[= ]" "$obj/.config" || true)
        [ "$got" = "$sym=$want" ] || missing+=("$sym=$want (got: ${got:-absent})")
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
        requested=$((requested + 1))
        sym=${BASH_REMATCH[1]}
        got=$(grep -m1 -E "^${sym}=" "$obj/.config" || true)
        [ -z "$got" ] || missing+=("$sym off (got: $got)")
    fi
done <"$fragment"
if [ ${#missing[@]} -gt 0 ]; then
    echo "kernel-aarch64: error: Kconfig did not keep ${#missing[@]} of the fragment's choices" \
        "(missing dependencies?):" >&2
    printf 'kernel-aarch64:   %s\n' "${missing[@]}" >&2
    echo "kernel-aarch64: merged config: $obj/.config" >&2
    exit 1
fi
echo "kernel-aarch64: config verified ($requested choices kept)"

# 4. Build the raw Image (what libkrunfw bundles on aarch64).
jobs=${ZKRUN_KERNEL_JOBS:-2}
echo "kernel-aarch64: building Image (nice -n 10 make -j$jobs, log: $log)"
tb=$(date +%s)
nice -n 10 make -C "$srctree" O="$obj" -j"$jobs" Image >>"$log" 2>&1 || fail "make Image failed"
tbuilt=$(date +%s)

# 5. Install atomically.
stage=$(mktemp -d "$cache/.stage-$key.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$obj/arch/arm64/boot/Image" "$stage/Image"
cp "$obj/.config" "$stage/config"
{
    echo "key $key"
    echo "package $pkg $pkgver"
    echo "patches ${#patches[@]} ($(for p in "${patches[@]}"; do basename "$p"; done | tr '\n' ' '))"
    echo "make_seconds $((tbuilt - tb))"
    echo "total_seconds $(($(date +%s) - t0))"
    echo "jobs $jobs"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "gcc ${cross}gcc $ccver"
} >"$stage/build-info"
chmod 0755 "$stage"
mv -T "$stage" "$out" 2>/dev/null || {
    [ -f "$out/Image" ] || fail "could not install into $out"
}
trap - EXIT
echo "kernel-aarch64: built $out/Image in $(($(date +%s) - t0)) s ($(stat -c %s "$out/Image") bytes)"
