#!/usr/bin/env bash
# kernelfw/build-kernel.sh's contract: --print-path never builds and names <cache>/kernel/<key>/
# vmlinux; a cached call prints one "kernel: cached <path>" line; the key follows the fragment and
# the patches (content, not location); and a fragment asking for something Kconfig drops makes
# the build fail before compiling, naming every dropped choice. The last check runs the real
# config step on the shared build dir under the build lock (~20 s); the next real build re-merges.
set -uo pipefail
cd "$(dirname "$0")/../.."
passed=0 failed=0
ok() { echo "ok   $1"; passed=$((passed + 1)); }
bad() { echo "FAIL $1"; failed=$((failed + 1)); }
ms_now() { echo $(($(date +%s%N) / 1000000)); }
cache="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/kernel"

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

work=$(mktemp -d /tmp/zkrun-kernelfw-script.XXXXXX)
trap 'rm -rf "$work"' EXIT
cp -r kernelfw "$work/same"
[[ $("$work/same/build-kernel.sh" --print-path) == "$path" ]] && ok "a copy of kernelfw/ has the same key" ||
  bad "a copy of kernelfw/ has a different key"
cp -r kernelfw "$work/frag"
echo "# a comment changes the key" >>"$work/frag/config-x86_64.fragment"
[[ $("$work/frag/build-kernel.sh" --print-path) != "$path" ]] && ok "the fragment is part of the key" ||
  bad "changing the fragment kept the key"
cp -r kernelfw "$work/patch"
printf 'From: test\nSubject: empty\n' >"$work/patch/patches/9999-test.patch"
[[ $("$work/patch/build-kernel.sh" --print-path) != "$path" ]] && ok "the patch series is part of the key" ||
  bad "adding a patch kept the key"

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
