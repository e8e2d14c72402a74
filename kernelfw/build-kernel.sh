#!/usr/bin/env bash
# Build (or find in the cache) zkrun's guest vmlinux.
#
#   kernelfw/build-kernel.sh               build if needed; prints "kernel: cached <path>" when cached
#   kernelfw/build-kernel.sh --print-path  print the vmlinux path for the current inputs, never build
#   kernelfw/build-kernel.sh --key         print the cache key
#
# The cache key is the sha256 of: the Debian linux-source-6.12 package version, the config
# fragment, the patch series (names and contents, applied in sorted order) and this script.
# Layout under ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel/:
#   <key>/vmlinux, <key>/config, <key>/build-info  finished builds (installed atomically by rename)
#   src/<pkgver>/linux-source-6.12               the source, unpacked once; the patch series is
#                                                applied in place (originals kept in
#                                                src/<pkgver>/patch-state/) and swapped when it
#                                                changes, so that paths and timestamps stay stable
#   work/<treehash>/obj                          the out-of-tree build dir, kept: a fragment or
#                                                patch change rebuilds incrementally, not from zero
#   lock                                         flock: one build at a time, never the same key twice
set -euo pipefail
# C collation (patch order), and no process substitution anywhere on the --print-path path:
# some minimal systems (the test host) have no /dev/fd.
export LC_ALL=C

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
fragment="$here/config-x86_64.fragment"
patchdir="$here/patches"
tarball=/usr/src/linux-source-6.12.tar.xz
pkg=linux-source-6.12
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel"

die() { echo "kernel: error: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
"") ;;
--print-path) mode=print ;;
--key) mode=key ;;
-h | --help) sed -n '2,7p' "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

pkgver=$(dpkg-query -W -f='${Version}' "$pkg" 2>/dev/null) ||
    die "Debian package $pkg is not installed (apt-get install $pkg)"
[ -n "$pkgver" ] || die "Debian package $pkg is not installed (apt-get install $pkg)"

shopt -s nullglob
patches=("$patchdir"/*.patch) # sorted: globs follow LC_COLLATE, which is C here
shopt -u nullglob

# The source tree's identity (package version): names the build dir.
treehash=$(echo "pkg $pkg $pkgver" | sha256sum | cut -c1-16)
# The patch series (names and contents, in order).
series=$(
    for p in "${patches[@]}"; do
        echo "patch $(basename "$p") $(sha256sum <"$p" | cut -d' ' -f1)"
    done | sha256sum | cut -c1-32
)
key=$({
    echo "zkrun-kernel-v1"
    echo "pkg $pkg $pkgver"
    echo "fragment $(sha256sum <"$fragment" | cut -d' ' -f1)"
    echo "series $series"
    echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
} | sha256sum | cut -c1-32)
out="$cache/$key"

case $mode in
print) echo "$out/vmlinux"; exit 0 ;;
key) echo "$key"; exit 0 ;;
esac

if [ -f "$out/vmlinux" ]; then
    echo "kernel: cached $out/vmlinux"
    exit 0
fi

# ---- cold path ------------------------------------------------------------------------------
t0=$(date +%s)
for tool in make gcc flex bison bc xz tar patch flock perl; do
    command -v "$tool" >/dev/null || die "missing build tool '$tool' (see kernelfw/README.md)"
done
[ -f /usr/include/libelf.h ] || die "missing libelf headers (apt-get install libelf-dev)"
[ -f /usr/include/openssl/opensslv.h ] || die "missing OpenSSL headers (apt-get install libssl-dev)"
[ -f "$tarball" ] || die "missing $tarball (apt-get install $pkg)"

mkdir -p "$cache"
exec 9>"$cache/lock"
if ! flock -n 9; then
    echo "kernel: another build is running, waiting for it"
    flock 9
fi
# Someone else may have built this key while we waited.
if [ -f "$out/vmlinux" ]; then
    echo "kernel: cached $out/vmlinux"
    exit 0
fi

log="$cache/work/$treehash/build-$key.log"
mkdir -p "$cache/work/$treehash"
: >"$log"
fail() {
    echo "kernel: error: $* (log: $log); last lines:" >&2
    tail -n 25 "$log" >&2 || true
    exit 1
}

# 1. Pristine source, unpacked once per package version.
pristine_parent="$cache/src/$pkgver"
pristine="$pristine_parent/linux-source-6.12"
if [ ! -f "$pristine_parent/.unpacked" ]; then
    echo "kernel: unpacking $tarball ($pkg $pkgver)"
    rm -rf "$pristine_parent" "$pristine_parent.tmp"
    mkdir -p "$pristine_parent.tmp"
    tar -C "$pristine_parent.tmp" -xf "$tarball" >>"$log" 2>&1 || fail "unpacking failed"
    [ -f "$pristine_parent.tmp/linux-source-6.12/Makefile" ] || fail "unexpected tarball layout"
    touch "$pristine_parent.tmp/.unpacked"
    mv -T "$pristine_parent.tmp" "$pristine_parent"
fi

# 2. Patches, applied in place. patch-state/ records what the applied series changed: orig/ holds
# the original of every file it modified, `created` the files it added, `series` its digest once
# complete. Switching series restores those files (with fresh mtimes, so make rebuilds what
# depends on them) and applies the new one; the build dir's paths never change.
srctree="$pristine"
state="$pristine_parent/patch-state"
applied=$(cat "$state/series" 2>/dev/null || echo none)
if [ -d "$state" ] && [ "$applied" != "$series" ]; then
    echo "kernel: reverting the previously applied patch series"
    if [ -d "$state/orig" ]; then
        (cd "$state/orig" && find . -type f) | while IFS= read -r f; do
            rm -f "$srctree/$f"
            cp "$state/orig/$f" "$srctree/$f"
        done
    fi
    if [ -f "$state/created" ]; then
        while IFS= read -r f; do rm -f "$srctree/$f"; done <"$state/created"
    fi
    rm -rf "$state"
fi
if [ ! -d "$state" ]; then
    mkdir -p "$state/orig"
    : >"$state/created"
    [ ${#patches[@]} -eq 0 ] || echo "kernel: applying ${#patches[@]} patch(es) from kernelfw/patches"
    for p in "${patches[@]}"; do
        # Save every file the patch names before it touches the tree.
        while IFS= read -r f; do
            [ -n "$f" ] || continue
            case $f in /* | *..*) fail "patch $(basename "$p") names an unsafe path: $f" ;; esac
            if [ -e "$state/orig/$f" ] || grep -qxF "$f" "$state/created"; then continue; fi
            if [ -f "$srctree/$f" ]; then
                mkdir -p "$(dirname "$state/orig/$f")"
                cp -p "$srctree/$f" "$state/orig/$f"
            else
                echo "$f" >>"$state/created"
            fi
        done <<<"$(sed -n -e 's|^--- a/\([^[:space:]]*\).*|\1|p' -e 's|^+++ b/\([^[:space:]]*\).*|\1|p' "$p" | sort -u)"
        echo "== $(basename "$p")" >>"$log"
        patch -d "$srctree" -p1 --batch --forward --no-backup-if-mismatch -r - <"$p" >>"$log" 2>&1 ||
            fail "patch $(basename "$p") does not apply"
    done
    echo "$series" >"$state/series"
fi
obj="$cache/work/$treehash/obj"
mkdir -p "$obj"

# Reproducible identity strings (uname -v, /proc/version).
export KBUILD_BUILD_TIMESTAMP="Wed Jan  1 00:00:00 UTC 2025"
export KBUILD_BUILD_USER=zkrun
export KBUILD_BUILD_HOST=zkrun
export KBUILD_BUILD_VERSION=1
export ARCH=x86 LOCALVERSION=
unset CROSS_COMPILE KCONFIG_CONFIG

# 3. Config: tinyconfig (= allnoconfig + the three tiny fragments) + ours, then olddefconfig.
echo "kernel: configuring (tinyconfig + kernelfw/config-x86_64.fragment)"
(
    cd "$srctree"
    scripts/kconfig/merge_config.sh -n -O "$obj" \
        kernel/configs/tiny-base.config kernel/configs/tiny.config arch/x86/configs/tiny.config \
        "$fragment"
) >>"$log" 2>&1 || fail "merge_config.sh failed"
make -C "$srctree" O="$obj" olddefconfig >>"$log" 2>&1 || fail "olddefconfig failed"

# 4. Verify that Kconfig kept every choice of the fragment.
missing=()
requested=0
while IFS= read -r line; do
    if [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]]; then
        requested=$((requested + 1))
        sym=${BASH_REMATCH[1]} want=${BASH_REMATCH[2]}
        got=$(grep -m1 -E "^(# )?${sym}[= ]" "$obj/.config" || true)
        if [ "$got" != "$sym=$want" ]; then
            missing+=("$sym=$want (got: ${got:-absent})")
        fi
    elif [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set ]]; then
        requested=$((requested + 1))
        sym=${BASH_REMATCH[1]}
        got=$(grep -m1 -E "^${sym}=" "$obj/.config" || true)
        if [ -n "$got" ]; then
            missing+=("$sym off (got: $got)")
        fi
    fi
done <"$fragment"
if [ ${#missing[@]} -gt 0 ]; then
    echo "kernel: error: Kconfig did not keep ${#missing[@]} of the fragment's choices" \
        "(missing dependencies?):" >&2
    printf 'kernel:   %s\n' "${missing[@]}" >&2
    echo "kernel: merged config: $obj/.config" >&2
    exit 1
fi
echo "kernel: config verified ($requested choices kept)"

# 5. Build.
jobs=$(nproc)
echo "kernel: building vmlinux (make -j$jobs, log: $log)"
tb=$(date +%s)
make -C "$srctree" O="$obj" -j"$jobs" vmlinux >>"$log" 2>&1 || fail "make vmlinux failed"
tbuilt=$(date +%s)

# 6. Install atomically: stage next to the destination, then rename the directory.
stage=$(mktemp -d "$cache/.stage-$key.XXXXXX")
trap 'rm -rf "$stage"' EXIT
cp "$obj/vmlinux" "$stage/vmlinux"
cp "$obj/.config" "$stage/config"
{
    echo "key $key"
    echo "package $pkg $pkgver"
    echo "patches ${#patches[@]}"
    echo "make_seconds $((tbuilt - tb))"
    echo "total_seconds $(($(date +%s) - t0))"
    echo "jobs $jobs"
    echo "built $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -n)"
    echo "gcc $(gcc -dumpfullversion)"
} >"$stage/build-info"
chmod 0755 "$stage"
mv -T "$stage" "$out" 2>/dev/null || {
    [ -f "$out/vmlinux" ] || fail "could not install into $out"
}
trap - EXIT
echo "kernel: built $out/vmlinux in $(($(date +%s) - t0)) s ($(stat -c %s "$out/vmlinux") bytes)"
