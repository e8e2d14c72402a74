# Sourced by the VM test libraries that run a guest in the background while the host acts
# (85-tsi-lib.sh, 96-net-lib.sh). They set RUN (the runner), ROOTFS and work before calling these.
# vm_bg [RUNNER OPTIONS] -- SCRIPT: starts the VM in the background (output in $work/bg.out).
# The guest script may wait for the host with `waitdone` (until vm_end creates /done).
vm_bg() {
  local opts=()
  while [[ $1 != -- ]]; do opts+=("$1"); shift; done
  shift
  rm -f "$ROOTFS/done" "$work/bg.rc"
  printf '%s\n' 'waitdone() { i=0; while ! ls / | grep -qx done; do i=$((i+1)); [ $i -gt 1200 ] && { echo "P waitdone=timeout"; return 1; }; sleep 0.25; done; }' "$1" >"$ROOTFS/t.sh"
  ( env -i PATH=/bin:/sbin:/usr/bin:/usr/sbin timeout -k 10 600 "$RUN" "${opts[@]}" "$ROOTFS" /bin/sh /t.sh </dev/null >"$work/bg.out" 2>&1
    echo $? >"$work/bg.rc" ) &
  bgpid=$!
}
# wait_line REGEX [SECS]: waits until the background VM printed a line matching REGEX.
wait_line() {
  local n=$(( ${2:-300} * 5 ))
  for _ in $(seq "$n"); do
    grep -aqE -- "$1" "$work/bg.out" 2>/dev/null && return 0
    [[ -e $work/bg.rc ]] && return 1
    sleep 0.2
  done
  return 1
}
vm_end() {
  touch "$ROOTFS/done"
  wait "$bgpid"
  out=$(tr -d '\r' <"$work/bg.out"); rc=$(cat "$work/bg.rc" 2>/dev/null || echo 255)
  p=$(grep -a '^P ' <<<"$out")
}
