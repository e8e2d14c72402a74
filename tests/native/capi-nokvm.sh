#!/usr/bin/env bash
# C API without KVM: in a private mount namespace /dev/kvm is first replaced by /dev/null
# (present but not KVM), then hidden (an empty /dev); krun_get_max_vcpus, krun_start and
# krun_start_enter must fail with -ENODEV and say why (capi/nokvm.c). Needs root for unshare.
source "$(dirname "$0")/capi/lib.sh"
if [[ $(id -u) -ne 0 ]] || ! unshare --mount --propagation private true 2>/dev/null; then
  echo "SKIP: cannot create a mount namespace here (needs root and unshare): /dev/kvm absence untested"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
unset RUST_LOG ZKRUN_LOG
capi_cc "$work/nokvm" "$root/tests/native/capi/nokvm.c"
mkdir "$work/scratch"
p=0 f=0
for how in "mount --bind /dev/null /dev/kvm" "mount -t tmpfs none /dev"; do
  echo "== /dev/kvm: $how"
  if unshare --mount --propagation private sh -c "$how && exec \"$work/nokvm\" \"$work/scratch\""; then
    p=$((p + 1))
  else
    f=$((f + 1))
  fi
done
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
