# Sourced by tests/vm/4x-init-*.test.sh (inside the test host): the busybox rootfs with a report
# script, the runner (40-init-run.c) built against the installed libkrun, and helpers.
# Exits 77 saying what is missing.
source "$(dirname "${BASH_SOURCE[0]}")/prologue.sh"
work=$(mktemp -d /tmp/zkrun-init-vm.XXXXXX)
trap 'rm -rf "$work"' EXIT
# The busybox tree and the runner, built on the machine by 40-init.prepare.sh (here only if that
# did not run); the tree is copied: each test may change its own copy.
run_build tests/vm/40-init-build.sh
RUN=$(bin run)
ROOTFS=$work/rootfs
cp -a "$(bin rootfs)" "$ROOTFS" || { echo "FAIL: copy of the rootfs"; exit 1; }
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
# vm [env -i ...] ARGS...: runs the runner; sets out (\r stripped), r (the R-lines) and rc.
vm() {
  out=$(timeout 300 "$@" </dev/null 2>&1); rc=$?
  out=$(tr -d '\r' <<<"$out")
  r=$(grep -a '^R ' <<<"$out")
}
has() { grep -aqxF -- "$1" <<<"$r"; }
