#!/usr/bin/env bash
# Build (or find in the cache) crun with its libkrun handler, from Debian's source package,
# against our include/libkrun.h: the real client of tests/vm/7x-crun-*.test.sh.
#
#   tests/clients/build-crun.sh               build if needed; prints "crun: cached <path>" when cached
#   tests/clients/build-crun.sh --print-path  print the crun binary's path for the current inputs, never build
#
# Cache key: sha256 of Debian's crun version (the apt candidate), include/libkrun.h and this
# script. Layout under ${ZKRUN_CACHE:-$HOME/.cache/zkrun}/crun/:
#   <key>/crun, <key>/build-info   finished builds (installed atomically by rename)
#   lock                           flock: one build at a time
# The cold path installs missing build dependencies, adds a deb-src entry derived from the
# machine's own apt sources (Debian's archive URI and suite), runs `apt-get source crun`,
# removes the entry and runs `apt-get update` again, so the machine's apt state is as before.
# crun is configured --with-libkrun --disable-systemd (its systemd cgroup manager is not used:
# the tests run `crun --cgroup-manager=disabled`; podman uses cgroupfs).
set -euo pipefail
export LC_ALL=C
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script="$here/$(basename "${BASH_SOURCE[0]}")"
project=$(cd "$here/../.." && pwd)
header="$project/include/libkrun.h"
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/crun"
die() { echo "crun: error: $*" >&2; exit 1; }

mode=build
case "${1:-}" in
"") ;;
--print-path) mode=print ;;
-h | --help) sed -n '2,6p' "$script" | sed 's/^# \{0,1\}//'; exit 0 ;;
*) die "unknown argument '$1' (try --help)" ;;
esac

[ -f "$header" ] || die "$header is missing"
ver=$(apt-cache policy crun 2>/dev/null | sed -n 's/^ *Candidate: *//p')
[ -n "$ver" ] && [ "$ver" != "(none)" ] || die "apt knows no crun package (apt-get update?)"
key=$({
    echo "zkrun-crun-v1"
    echo "crun $ver"
    echo "header $(sha256sum <"$header" | cut -d' ' -f1)"
    echo "script $(sha256sum <"$script" | cut -d' ' -f1)"
} | sha256sum | cut -c1-32)
out="$cache/$key"
[ $mode = print ] && { echo "$out/crun"; exit 0; }
if [ -x "$out/crun" ]; then echo "crun: cached $out/crun"; exit 0; fi

mkdir -p "$cache"
exec 9>"$cache/lock"
flock 9
if [ -x "$out/crun" ]; then echo "crun: cached $out/crun"; exit 0; fi
t0=$(date +%s)

# Build dependencies, only the missing ones.
deps=(dpkg-dev gcc make pkg-config libseccomp-dev libcap-dev libyajl-dev)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || die "missing build dependencies (${missing[*]}): run scripts/setup.sh as root"
    echo "crun: installing ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d "$cache/work.XXXXXX")
srclist=/etc/apt/sources.list.d/zkrun-crun-src.sources
cleanup() {
    if [ -f "$srclist" ]; then
        rm -f "$srclist"
        apt-get update -qq >/dev/null 2>&1 || echo "crun: warning: apt-get update after removing $srclist failed" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# The deb-src entry: the first Debian archive (URI + suite) among the machine's deb entries,
# in either format (deb822 .sources or one-line .list).
uri='' suite=''
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    case $f in *.disabled*) continue ;; esac
    if [ "${f%.sources}" != "$f" ]; then
        line=$(awk 'BEGIN{RS=""; FS="\n"} /(^|\n)Types:[^\n]*deb( |\n|$)/ {
                 u=""; s=""; for (i=1;i<=NF;i++) { if ($i ~ /^URIs:/) { sub(/^URIs: */,"",$i); split($i,a," "); u=a[1] }
                                                 if ($i ~ /^Suites:/) { sub(/^Suites: */,"",$i); split($i,b," "); s=b[1] } }
                 if (u ~ /debian\/?$/ && u !~ /security/) { print u, s; exit } }' "$f")
    else
        line=$(awk '$1=="deb" { i=2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                 if ($i ~ /debian\/?$/ && $i !~ /security/) { print $i, $(i+1); exit } }' "$f")
    fi
    if [ -n "$line" ]; then read -r uri suite <<<"$line"; break; fi
done
[ -n "$uri" ] && [ -n "$suite" ] || die "found no Debian archive entry in the machine's apt sources"
[ "$(id -u)" = 0 ] || die "the cold build runs apt-get source with a temporary deb-src entry: run as root"
printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$uri" "$suite" >"$srclist"
echo "crun: fetching the source of crun $ver (deb-src $uri $suite)"
# Refresh only the new entry's index (the machine's other lists are left as they are).
apt-get update -qq -o Dir::Etc::sourcelist="$srclist" -o Dir::Etc::sourceparts=- \
    -o APT::Get::List-Cleanup=0 >/dev/null
# A binNMU (+bN) shares its source version with the unsuffixed one.
(cd "$work" && apt-get source -qq --download-only "crun=${ver%+b[0-9]*}" >/dev/null 2>&1) ||
    die "apt-get source crun=${ver%+b[0-9]*} failed"
cleanup_src() { rm -f "$srclist"; apt-get update -qq >/dev/null 2>&1 || true; }
cleanup_src
(cd "$work" && dpkg-source -x --no-check ./*.dsc src >/dev/null) || die "dpkg-source -x failed"

echo "crun: building with --with-libkrun against $header"
cd "$work/src"
# -j2 at most: the machine is shared.
./configure -q --with-libkrun --disable-systemd CPPFLAGS="-I$project/include" >"$work/configure.log" 2>&1 ||
    { tail -20 "$work/configure.log" >&2; die "configure failed"; }
grep -q '^#define HAVE_LIBKRUN 1' config.h || die "configure did not enable the libkrun handler"
make -j2 >"$work/make.log" 2>&1 || { tail -30 "$work/make.log" >&2; die "make failed"; }
./crun --version | grep -q '+LIBKRUN' || die "the built crun does not list +LIBKRUN"

tmp=$(mktemp -d "$cache/tmp.XXXXXX")
install -m 0755 crun "$tmp/crun"
{ echo "crun $ver"; echo "header $(sha256sum <"$header" | cut -d' ' -f1)"; ./crun --version; } >"$tmp/build-info"
rm -rf "$out"
mv "$tmp" "$out"
echo "crun: built $out/crun in $(( $(date +%s) - t0 )) s"
