# Sourced by the cross-macos checks (tests/native/cross-macos.sh, tests/aarch64/cross-macos-krunfw.sh):
# the checks every aarch64-macos dylib of ours passes. The caller defines ok and bad.
# macho_dylib LIB NAME WHY: LIB is an arm64 Mach-O dylib, its install name is NAME, and it links
# only libSystem (WHY, if given, says why that matters for LIB).
macho_dylib() {
  local lib=$1 name=$2 why=${3:+ ($3)}
  # mach_header_64: magic 0xfeedfacf, cputype 0x0100000c (ARM64), filetype 6 (MH_DYLIB).
  local hdr; hdr=$(od -An -tx4 -N16 "$lib" 2>/dev/null | tr -s ' ')
  [[ $hdr == " feedfacf 0100000c 00000000 00000006" ]] && ok "$name is an arm64 Mach-O dylib" || bad "not an arm64 Mach-O dylib: header '$hdr'"
  local id; id=$(llvm-objdump --macho --dylib-id "$lib" 2>/dev/null | tail -1)
  [[ $id == "$name" ]] && ok "install name $name" || bad "install name is '$id'"
  local used; used=$(llvm-objdump --macho --dylibs-used "$lib" 2>/dev/null | tail -n +2 | awk '{print $1}' | grep -vxF "$name" | tr '\n' ' ')
  [[ $used == "/usr/lib/libSystem.B.dylib " ]] && ok "links only libSystem$why" || bad "links: $used"
}
