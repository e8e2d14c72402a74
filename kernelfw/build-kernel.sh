#!/usr/bin/env bash
# Build (or find in the cache) zkrun's guest kernel for one architecture, from Debian's
# linux-source-6.12: x86_64 → `vmlinux` (ELF, PVH entry); aarch64 → a raw arm64 `Image`,
# cross-built with Debian's gcc-aarch64-linux-gnu.
#
#   kernelfw/build-kernel.sh [--arch x86_64|aarch64]               build if needed (default x86_64)
#   kernelfw/build-kernel.sh [--arch x86_64|aarch64] --print-path  print the kernel's path, never build
#   kernelfw/build-kernel.sh [--arch x86_64|aarch64] --key         print the cache key
#
# A cached call prints one line: "kernel: cached <path>" (x86_64), "kernel-aarch64: cached <path>".
#
# The cache key of an arch is the sha256 of that kernel's inputs, and of nothing else:
#   recipe    the arch's recipe version below: bump it when a build step changes what is built
#   pkg       the Debian linux-source-6.12 package version
#   fragment  config-<arch>.fragment (contents)
#   series    the patch series (names and contents, in C-sorted order): patches/*.patch minus the
#             other arch's (names containing "-x86-" are x86_64-only, "-aarch64-" aarch64-only)
#   cc        aarch64 only: the cross compiler's and linker's version lines
# So editing this script does not re-key a kernel unless a recipe is bumped, and an input of one
# arch (its fragment, its patches, its recipe) never re-keys the other. The host gcc of the
# x86_64 build is not in its key (--print-path also runs inside the test host); build-info
# records it.
#
# Layout under ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel/ (x86_64) and kernel-aarch64/:
#   <key>/vmlinux|Image, <key>/config, <key>/build-info   finished builds (installed by rename)
#   src/<tree>/linux-source-6.12   the source with the series applied, one per (package version,
#                                  series); unpacked once
#   work/<tree>/obj                the out-of-tree build dir, kept: a fragment or recipe change
#                                  rebuilds incrementally (a new series starts a new tree)
#   lock                           flock: one build per arch at a time, never one key twice
# Builds run under `nice -n 10` with -j${ZKRUN_KERNEL_JOBS:-$(nproc)} (the machine is shared).
set -euo pipefail
# C collation (patch order), and no process substitution anywhere on the --print-path path:
# some minimal systems (the test host) have no /dev/fd.
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
patchdir="$here/patches"
tarball=/usr/src/linux-source-6.12.tar.xz
pkg=linux-source-6.12

tag=kernel # message prefix (per arch below)
die() { echo "$tag: error: $*" >&2; exit 1; }

arch=x86_64 mode=build
while [ $# -gt 0 ]; do
    case $1 in
    --arch) [ $# -ge 2 ] || die "--arch needs a value (x86_64 or aarch64)"; arch=$2; shift 2 ;;
    --arch=*) arch=${1#--arch=}; shift ;;
    --print-path) mode=print; shift ;;
    --key) mode=key; shift ;;
    -h | --help) sed -n '2,10p' "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
    esac
done

# Per arch. `recipe` is part of the key: bump it (x86_64-2, ...) whenever the build steps for that
# arch change what gets built (tinyconfig base, make target, toolchain, environment, the shared
# steps below: bump both then). Nothing else about this script is in the key.
case $arch in
x86_64)
    recipe=x86_64-1
    tag=kernel
    kbuild_arch=x86 cross=
    tiny_arch=arch/x86/configs/tiny.config
    target=vmlinux built=vmlinux artifact=vmlinux
    skip_patches=aarch64 # the other arch's patches (see the key above)
    cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel"
    ;;
aarch64)
    recipe=aarch64-1
    tag=kernel-aarch64
    kbuild_arch=arm64 cross=aarch64-linux-gnu-
    tiny_arch= # arm64 has no tiny.config of its own
    target=Image built=arch/arm64/boot/Image artifact=Image
    skip_patches=x86
    cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel-aarch64"
    ;;
*) die "unknown --arch '$arch' (x86_64 or aarch64)" ;;
esac
fragment="$here/config-$arch.fragment"

pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
    die "Debian package $pkg is not installed (apt-get install $pkg)"
[ -n "$pkgver" ] || die "Debian package $pkg is not installed (apt-get install $pkg)"
cc=none
if [ -n "$cross" ]; then
    gccv=$("${cross}gcc" --version 2>/dev/null | sed -n 1p) || gccv=
    ldv=$("${cross}ld" --version 2>/dev/null | sed -n 1p) || ldv=
    if [ -n "$gccv" ] && [ -n "$ldv" ]; then cc="$gccv; $ldv"; else cc=missing; fi
fi

patches=()
shopt -s nullglob
for p in "$patchdir"/*.patch; do # sorted: globs follow LC_COLLATE, which is C here
    case $(basename "$p") in *-"$skip_patches"-*) ;; *) patches+=("$p") ;; esac
done
shopt -u nullglob

series=$(
    for p in "${patches[@]}"; do
        echo "patch $(basename "$p") $(sha256sum <"$p" | cut -d' ' -f1)"
    done | sha256sum | cut -c1-32
)
# The source tree's identity: names src/<tree> and work/<tree>.
tree=$(echo "pkg $pkg $pkgver series $series" | sha256sum | cut -c1-16)
key=$({
    echo "recipe $recipe"
    echo "pkg $pkg $pkgver"
    echo "fragment $(sha256sum <"$fragment" | cut -d' ' -f1)"
    echo "series $series"
    [ -z "$cross" ] || echo "cc $cc"
} | sha256sum | cut -c1-32)
out="$cache/$key"

case $mode in
print) echo "$out/$artifact"; exit 0 ;;
key) echo "$key"; exit 0 ;;
esac

if [ -f "$out/$artifact" ]; then
    echo "$tag: cached $out/$artifact"
    exit 0
fi

# ---- cold path ------------------------------------------------------------------------------
t0=$(date +%s)
[ "$cc" != missing ] || die "missing ${cross}gcc (apt-get install gcc-aarch64-linux-gnu)"
for tool in make gcc flex bison bc xz tar patch flock perl; do
    command -v "$tool" >/dev/null || die "missing build tool '$tool' (see kernelfw/README.md)"
done
[ -f /usr/include/libelf.h ] || die "missing libelf headers (apt-get install libelf-dev)"
[ -f /usr/include/openssl/opensslv.h ] || die "missing OpenSSL headers (apt-get install libssl-dev)"
[ -f "$tarball" ] || die "missing $tarball (apt-get install $pkg)"

mkdir -p "$cache"
exec 9>"$cache/lock"
if ! flock -n 9; then
    echo "$tag: another build is running, waiting for it"
    flock 9
fi
# Someone else may have built this key while we waited.
if [ -f "$out/$artifact" ]; then
    echo "$tag: cached $out/$artifact"
    exit 0
fi

log="$cache/work/$tree/build-$key.log"
mkdir -p "$cache/work/$tree"
: >"$log"
fail() {
    echo "$tag: error: $* (log: $log); last lines:" >&2
    tail -n 25 "$log" >&2 || true
    exit 1
}

# 1. Source with the series applied, once per (package version, series).
src_parent="$cache/src/$tree"
srctree="$src_parent/linux-source-6.12"
if [ ! -f "$src_parent/.ready" ]; then
    echo "$tag: unpacking $tarball ($pkg $pkgver) and applying ${#patches[@]} patch(es)"
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

# Reproducible identity strings (uname -v, /proc/version).
export KBUILD_BUILD_TIMESTAMP="Wed Jan  1 00:00:00 UTC 2025"
export KBUILD_BUILD_USER=zkrun
export KBUILD_BUILD_HOST=zkrun
export KBUILD_BUILD_VERSION=1
export ARCH=$kbuild_arch LOCALVERSION=
if [ -n "$cross" ]; then export CROSS_COMPILE=$cross; else unset CROSS_COMPILE; fi
unset KCONFIG_CONFIG

# 2. Config: tinyconfig (= allnoconfig + the tiny fragments) + ours, then olddefconfig.
echo "$tag: configuring (tinyconfig + kernelfw/config-$arch.fragment)"
(
    cd "$srctree"
    # shellcheck disable=SC2086 # tiny_arch is one path or nothing
    scripts/kconfig/merge_config.sh -n -O "$obj" \
        kernel/configs/tiny-base.config kernel/configs/tiny.config $tiny_arch "$fragment"
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
    echo "$tag: error: Kconfig did not keep ${#missing[@]} of the fragment's choices" \
        "(missing dependencies?):" >&2
    for m in "${missing[@]}"; do echo "$tag:   $m"; done >&2
    echo "$tag: merged config: $obj/.config" >&2
    exit 1
fi
echo "$tag: config verified ($requested choices kept)"

# 4. Build (x86_64: the ELF vmlinux; aarch64: the raw Image, what libkrunfw bundles there).
jobs=${ZKRUN_KERNEL_JOBS:-$(nproc)}
echo "$tag: building $target (nice -n 10 make -j$jobs, log: $log)"
tb=$(date +%s)
nice -n 10 make -C "$srctree" O="$obj" -j"$jobs" "$target" >>"$log" 2>&1 || fail "make $target failed"
tbuilt=$(date +%s)

# 5. Install atomically: stage next to the destination, then rename the directory.
stage=$(mktemp -d "$cache/.stage-$key.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$obj/$built" "$stage/$artifact"
cp "$obj/.config" "$stage/config"
{
    echo "key $key"
    echo "recipe $recipe"
    echo "package $pkg $pkgver"
    echo "patches ${#patches[@]}:$(for p in "${patches[@]}"; do printf ' %s' "$(basename "$p")"; done)"
    echo "make_seconds $((tbuilt - tb))"
    echo "total_seconds $(($(date +%s) - t0))"
    echo "jobs $jobs"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "gcc ${cross}gcc $("${cross}gcc" -dumpfullversion)"
} >"$stage/build-info"
chmod 0755 "$stage"
mv -T "$stage" "$out" 2>/dev/null || {
    [ -f "$out/$artifact" ] || fail "could not install into $out"
}
trap - EXIT
echo "$tag: built $out/$artifact in $(($(date +%s) - t0)) s ($(stat -c %s "$out/$artifact") bytes)"
