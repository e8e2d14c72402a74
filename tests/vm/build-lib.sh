# Sourced by the build scripts of the VM tests' C host programs (tests/vm/23-life-build.sh,
# tests/vm/80-vsock-build.sh, tests/vm/vm-prog-build.sh, tests/native/capi/vm-build.sh), from the
# checkout's root with $dir set to their cache folder (which the test host shares at the same
# path): checks that libkrun is installed in zig-out, and gives `hash` and `build_c`.
prefix=$PWD/zig-out
header=$prefix/include/libkrun.h
mkdir -p "$dir"
[[ -e $prefix/lib/libkrun.so.1 && -e $header ]] || { echo "zig-out/lib/libkrun.so.1 is not built" >&2; exit 1; }
hash() { cat "$@" | sha256sum | cut -c1-16; }

# build_c NAME SRC [DEP...]: SRC compiled against the installed header and libkrun.so.1 into
# $dir, once per version of SRC, the DEPs (headers it includes), the header, the calling script,
# this file and the checkout's path; prints NAME=PATH.
build_c() {
  local name=$1 src=$2
  shift 2
  # The checkout's path is part of the key: the programs carry it as their rpath, and another
  # checkout (a CI clone) may not see this one inside the test host.
  local out
  out="$dir/$name-$(hash "$src" "$@" "$header" "$0" "${BASH_SOURCE[0]}" <(echo "$prefix"))"
  if [[ ! -x $out ]]; then
    # DT_RPATH (not RUNPATH): it also covers libkrun.so's own dlopen("libkrunfw.so.5"), so the
    # programs find the libkrunfw.so.5 installed next to libkrun.so.1.
    cc -std=gnu11 -Wall -Wextra -Werror -o "$out.tmp.$$" "$src" -I "$prefix/include" -L "$prefix/lib" \
      -lkrun -lpthread -Wl,--disable-new-dtags,-rpath,"$prefix/lib"
    mv -f "$out.tmp.$$" "$out"
  fi
  echo "$name=$out"
}
