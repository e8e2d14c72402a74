# Sourced by tests/vm/4x-init-*.test.sh (inside the test host): the busybox rootfs with a report
# script, the runner (40-init-run.c) built against the installed libkrun, and helpers.
# Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
work=$(mktemp -d /tmp/zkrun-init-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The busybox tree is built once into the shared checkout (stamped, so later runs only check
# it; building it under TCG costs time), then copied: each test may change its own copy.
base=$PWD/.tools/init-vm-rootfs
scripts/mkrootfs.sh "$base" >/dev/null || { echo "FAIL: scripts/mkrootfs.sh"; exit 1; }
ROOTFS=$work/rootfs
cp -a "$base" "$ROOTFS" || { echo "FAIL: copy of the rootfs"; exit 1; }
cat >"$ROOTFS/report.sh" <<'REPORT'
#!/bin/sh
echo "R argc=$#"
i=0
for a in "$@"; do i=$((i+1)); echo "R arg$i=[$a]"; done
echo "R pwd=[$(pwd)]"
echo "R nofile=[$(ulimit -Sn):$(ulimit -Hn)]"
tr '\0' '\n' </proc/$$/environ | sort | sed 's/^/R env /'
exit "${REPORT_EXIT:-0}"
REPORT
chmod 755 "$ROOTFS/report.sh"
# The runner, cached in the checkout by source hash (cc under TCG is slow too).
# DT_RPATH (not RUNPATH): it also covers libkrun.so's own dlopen("libkrunfw.so.5"), and the
# runs below use `env -i`, so LD_LIBRARY_PATH would not survive (nor belong in the guest env).
RUN=$PWD/.tools/init-vm-run-$(cat tests/vm/40-init-run.c "$prefix/include/libkrun.h" <(echo "$prefix") | sha256sum | cut -c1-16)
if [[ ! -x $RUN ]]; then
  cc -std=gnu11 -Wall -Wextra -Werror -o "$RUN.tmp" tests/vm/40-init-run.c -I "$prefix/include" \
    -L "$prefix/lib" -lkrun -Wl,--disable-new-dtags,-rpath,"$prefix/lib" && mv "$RUN.tmp" "$RUN" ||
    { echo "FAIL: runner build"; exit 1; }
fi
# vm [env -i ...] ARGS...: runs the runner; sets out (\r stripped), r (the R-lines) and rc.
vm() {
  out=$(timeout 300 "$@" </dev/null 2>&1); rc=$?
  out=$(tr -d '\r' <<<"$out")
  r=$(grep -a '^R ' <<<"$out")
}
has() { grep -aqxF -- "$1" <<<"$r"; }
