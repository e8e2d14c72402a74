#!/usr/bin/env bash
# kernelfw/build-kernel.sh's contract: --print-path never builds and names <cache>/kernel/<key>/
# vmlinux (--arch aarch64: <cache>/kernel-aarch64/<key>/Image); a cached call prints one
# "kernel: cached <path>" line; each arch's key follows its recipe, its fragment and its patches
# (content, not location) and nothing else: not the script's text, not the other arch's inputs;
# and a fragment asking for something Kconfig drops makes the build fail before compiling, naming
# every dropped choice. The last check runs the real config step on the shared build dir under
# the build lock (~20 s); the next real build re-merges.
set -uo pipefail
cd "$(dirname "$0")/../.."
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
ms_now() { echo $(($(date +%s%N) / 1000000)); }
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel"
# paths DIR: the x86_64 and aarch64 kernel paths of the kernelfw/ copy in DIR, on one line.
paths() { echo "$("$1/build-kernel.sh" --print-path) $("$1/build-kernel.sh" --arch aarch64 --print-path)"; }

t0=$(ms_now)
path=$(kernelfw/build-kernel.sh --print-path)
t=$(($(ms_now) - t0))
[[ $path =~ ^$cache/[0-9a-f]{32}/vmlinux$ ]] && ok "--print-path: $path (${t} ms)" || bad "--print-path printed '$path'"

if [[ -f $path ]]; then
  t0=$(ms_now)
  out=$(kernelfw/build-kernel.sh 2>&1)
  t=$(($(ms_now) - t0))
  [[ $out == "kernel: cached $path" ]] && ok "cached call prints one line (${t} ms)" || bad "cached call printed: $out"
else
  bad "no kernel at $path (run: make kernel)"
fi

apath=$(kernelfw/build-kernel.sh --arch aarch64 --print-path)
[[ $apath =~ ^$cache-aarch64/[0-9a-f]{32}/Image$ ]] && ok "--arch aarch64 --print-path: $apath" ||
  bad "--arch aarch64 --print-path printed '$apath'"
[[ $(kernelfw/build-kernel.sh --arch x86_64 --print-path) == "$path" ]] && ok "--arch x86_64 is the default" ||
  bad "--arch x86_64 names another path"
kernelfw/build-kernel.sh --arch riscv64 --print-path >/dev/null 2>&1 && bad "--arch riscv64 was accepted" ||
  ok "--arch riscv64 is refused"
if [[ -f $apath ]]; then
  out=$(kernelfw/build-kernel.sh --arch aarch64 2>&1)
  [[ $out == "kernel-aarch64: cached $apath" ]] && ok "aarch64: cached call prints one line" ||
    bad "aarch64: cached call printed: $out"
else
  echo "info no aarch64 kernel at $apath yet: its cached call is not checked here"
fi

both="$path $apath"
work=$(mktemp -d /tmp/zkrun-kernelfw-script.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r kernelfw "$work/same"
[[ $(paths "$work/same") == "$both" ]] && ok "a copy of kernelfw/ has the same keys" ||
  bad "a copy of kernelfw/ has different keys"
cp -r kernelfw "$work/script"
echo "# a comment in the script" >>"$work/script/build-kernel.sh"
[[ $(paths "$work/script") == "$both" ]] && ok "editing the script keeps both keys" ||
  bad "editing the script changed a key"
cp -r kernelfw "$work/recipe"
sed -i 's/^    recipe=x86_64-1$/    recipe=x86_64-test/' "$work/recipe/build-kernel.sh"
read -r p x <<<"$(paths "$work/recipe")"
[[ $p != "$path" && $x == "$apath" ]] && ok "the x86_64 recipe re-keys x86_64 only" ||
  bad "bumping the x86_64 recipe: x86_64 $p, aarch64 $x"
cp -r kernelfw "$work/frag"
echo "# a comment changes the key" >>"$work/frag/config-x86_64.fragment"
read -r p x <<<"$(paths "$work/frag")"
[[ $p != "$path" && $x == "$apath" ]] && ok "the x86_64 fragment re-keys x86_64 only" ||
  bad "changing the x86_64 fragment: x86_64 $p, aarch64 $x"
cp -r kernelfw "$work/afrag"
echo "# a comment changes the key" >>"$work/afrag/config-aarch64.fragment"
read -r p x <<<"$(paths "$work/afrag")"
[[ $p == "$path" && $x != "$apath" ]] && ok "the aarch64 fragment re-keys aarch64 only" ||
  bad "changing the aarch64 fragment: x86_64 $p, aarch64 $x"
cp -r kernelfw "$work/patch"
printf 'From: test\nSubject: empty\n' >"$work/patch/patches/9999-test.patch"
read -r p x <<<"$(paths "$work/patch")"
[[ $p != "$path" && $x != "$apath" ]] && ok "a shared patch re-keys both" ||
  bad "adding a shared patch: x86_64 $p, aarch64 $x"
cp -r kernelfw "$work/xpatch"
printf 'From: test\nSubject: empty\n' >"$work/xpatch/patches/9999-x86-test.patch"
read -r p x <<<"$(paths "$work/xpatch")"
[[ $p != "$path" && $x == "$apath" ]] && ok "an -x86- patch re-keys x86_64 only" ||
  bad "adding an -x86- patch: x86_64 $p, aarch64 $x"

cp -r kernelfw "$work/drop"
cat >>"$work/drop/config-x86_64.fragment" <<'EOF'
# Test: PCI is off, so VIRTIO_PCI cannot be on; SMP forces X86_64_SMP on.
CONFIG_VIRTIO_PCI=y
# CONFIG_X86_64_SMP is not set
EOF
dropped_path=$("$work/drop/build-kernel.sh" --print-path)
"$work/drop/build-kernel.sh" >"$work/drop.out" 2>&1
rc=$?
sed 's/^/    | /' "$work/drop.out"
[[ $rc -ne 0 ]] && ok "a fragment with unmet choices fails (exit $rc)" || bad "a fragment with unmet choices built"
grep -q "CONFIG_VIRTIO_PCI=y" "$work/drop.out" && grep -q "CONFIG_X86_64_SMP off" "$work/drop.out" &&
  ok "the error names both dropped choices" || bad "the error does not name the dropped choices"
grep -q "building vmlinux" "$work/drop.out" && bad "it went on to compile" || ok "it stopped before compiling"
[[ ! -e $dropped_path ]] && ok "nothing was installed for that key" || bad "$dropped_path exists"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
