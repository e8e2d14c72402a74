#!/usr/bin/env bash
# The C examples build the ways the README and the seed say: the plain
# `cc -o minimal minimal.c -lkrun` (header and library found through C_INCLUDE_PATH/LIBRARY_PATH,
# as from a system prefix), `-I/-L`, and pkg-config; all with -Wall -Wextra -Werror under
# gcc's default C and strict C11. Then chroot_vm's failure paths (no VM is started).
source "$(dirname "$0")/capi/lib.sh"
set +e # the failure paths below exit non-zero on purpose
p=0 f=0
ok() { echo "ok: $*"; p=$((p + 1)); }
bad() { echo "FAIL: $*"; f=$((f + 1)); }
ex=$root/examples
strict=(-Wall -Wextra -Werror)

if C_INCLUDE_PATH=$prefix/include LIBRARY_PATH=$prefix/lib cc "${strict[@]}" -o "$work/minimal" "$ex/minimal.c" -lkrun 2>"$work/err"; then
  ok "plain cc -o minimal minimal.c -lkrun"
else bad "plain cc: $(cat "$work/err")"; fi
for std in gnu17 c11; do
  if cc -std=$std "${strict[@]}" -pedantic -o "$work/minimal-$std" "$ex/minimal.c" -I "$prefix/include" -L "$prefix/lib" -lkrun 2>"$work/err"; then
    ok "minimal.c with -std=$std -pedantic -Werror"
  else bad "minimal.c -std=$std: $(cat "$work/err")"; fi
done
if command -v g++ >/dev/null; then
  if g++ -x c++ -Wall -Wextra -Werror -fsyntax-only -I "$prefix/include" "$ex/minimal.c" 2>"$work/err"; then
    ok "the header and minimal.c compile as C++ (extern \"C\", no _Generic there)"
  else bad "C++: $(cat "$work/err")"; fi
fi
if flags=$(PKG_CONFIG_PATH=$prefix/lib/pkgconfig pkg-config --cflags --libs libkrun 2>"$work/err"); then
  # shellcheck disable=SC2086
  if cc "${strict[@]}" -o "$work/minimal-pc" "$ex/minimal.c" $flags 2>"$work/err"; then ok "pkg-config libkrun: $flags"
  else bad "cc with pkg-config flags: $(cat "$work/err")"; fi
else bad "pkg-config libkrun: $(cat "$work/err")"; fi
if capi_cc "$work/chroot_vm" "$ex/chroot_vm.c" 2>"$work/err"; then ok "chroot_vm.c builds"
else bad "chroot_vm.c: $(cat "$work/err")"; fi

if [[ -x $work/chroot_vm ]]; then
  out=$("$work/chroot_vm" 2>&1); rc=$?
  [[ $rc -eq 2 && $out == *usage:* ]] && ok "chroot_vm without arguments prints usage (exit 2)" || bad "usage: rc=$rc $out"
  out=$("$work/chroot_vm" "$work/no-such-root" /bin/true 2>&1); rc=$?
  [[ $rc -eq 1 && $out == *"krun_set_root: No such file or directory"* && $out == *'[zkrun] krun_set_root: root directory'* ]] &&
    ok "chroot_vm on a missing root: the library's reason and the caller's message (exit 1)" || bad "missing root: rc=$rc $out"
  out=$("$work/chroot_vm" -c 255 / /bin/true 2>&1); rc=$?
  [[ $rc -eq 1 && $out == *"num_vcpus 255 is out of range"* ]] && ok "chroot_vm -c 255 rejected by krun_set_vm_config" || bad "-c 255: rc=$rc $out"
fi
if [[ -x $work/minimal ]]; then
  # The seed in a directory without ./rootfs: krun_set_root and krun_start_enter fail, and
  # say so on stderr by default; RUST_LOG=off silences the library from its first message.
  mkdir -p "$work/empty"
  out=$(cd "$work/empty" && env -u RUST_LOG -u ZKRUN_LOG LD_LIBRARY_PATH="$prefix/lib" "$work/minimal" 2>&1)
  [[ $out == *'[zkrun] krun_set_root: root directory "rootfs" does not exist'* ]] &&
    ok "minimal without ./rootfs: the rejection is logged by default" || bad "default log: $out"
  out=$(cd "$work/empty" && RUST_LOG=off LD_LIBRARY_PATH="$prefix/lib" "$work/minimal" 2>&1)
  [[ -z $out ]] && ok "RUST_LOG=off: the library prints nothing" || bad "RUST_LOG=off printed: $out"
fi
echo "$p passed, $f failed"
[[ $f -eq 0 ]]
