#!/usr/bin/env bash
# The zkrun CLI (cli/zkrun.ts) under Deno and Bun, without booting a guest: OCI images built here
# from /bin/busybox (tests/native/cli/mkimage.py) are unpacked into the XDG cache (three layers:
# whiteout, opaque dir, hardlink, symlinks, modes, owners, xattr, long names), the image config
# (Entrypoint + Cmd + Env + WorkingDir + User) reaches the library's setters (--dry-run builds the
# real context), a second run reuses the cache, bad images and options are refused in one line
# with nothing written outside the cache, and named VMs are created, listed and removed.
# Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.tools/js/node_modules/.bin:$PATH"
passed=0 failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
bad() { failed=$((failed + 1)); echo "FAIL $1"; shift; printf '     | %s\n' "$@"; }
check() { if eval "$2"; then ok "$1"; else bad "$1" "${3:-}"; fi; } # NAME CONDITION [CONTEXT]
[[ -x /bin/busybox ]] || { echo "SKIP: /bin/busybox (Debian's busybox-static) is missing"; echo "0 passed, 1 failed"; exit 1; }
[[ -e zig-out/lib/libkrun.so.1 ]] || { echo "FAIL: zig-out/lib/libkrun.so.1 not built (zig build)"; echo "0 passed, 1 failed"; exit 1; }

T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
mkdir -p "$T/outside"
export ZKRUN_TEST_OUTSIDE=$T/outside
mk() { python3 tests/native/cli/mkimage.py "$@" || { echo "mkimage.py $* failed"; exit 1; }; }
mk "$T/img" good
mk "$T/img-app" good layout app
mk "$T/img.oci.tar" good oci-archive
mk "$T/img.docker.tar" good docker-archive
for v in missing-blob digest-mismatch dotdot absolute symlink-out; do mk "$T/bad-$v" "$v"; done
mk "$T/dir-then-link" dir-then-link
mk "$T/bad-truncated.tar" truncated oci-archive
mkdir -p "$T/plainroot/bin"; cp /bin/busybox "$T/plainroot/bin/"

for rt in deno bun; do
  if [[ $rt == deno ]]; then z=(deno run --quiet --allow-ffi --allow-read --allow-write --allow-env cli/zkrun.ts)
  else z=(bun cli/zkrun.ts); fi
  export XDG_CACHE_HOME=$T/$rt/cache XDG_DATA_HOME=$T/$rt/data XDG_STATE_HOME=$T/$rt/state
  cache=$XDG_CACHE_HOME/zkrun

  # 1. An OCI layout: unpacked with a progress line, the config applied, the setters called.
  out=$("${z[@]}" run --dry-run "$T/img" 2>"$T/err"); rc=$?; err=$(cat "$T/err")
  check "$rt: dry run of an OCI layout exits 0" '[[ $rc -eq 0 ]]' "$out $err"
  check "$rt: a progress line per layer" '[[ $(grep -c "^zkrun: unpacked layer [1-3]/3 sha256:" <<<"$err") -eq 3 ]]' "$err"
  check "$rt: Entrypoint ++ Cmd" 'grep -q "\"argv\": \[ *$" <<<"$out" && tr -d " \n" <<<"$out" | grep -q "\"argv\":\[\"/bin/sh\",\"/app/entry.sh\",\"3\"\]"' "$out"
  check "$rt: Env (image PATH kept)" 'tr -d " \n" <<<"$out" | grep -q "\"env\":{\"PATH\":\"/bin\",\"GREETING\":\"hellofromtheimage\"}"' "$out"
  check "$rt: WorkingDir" 'grep -q "\"workdir\": \"/work\"" <<<"$out"' "$out"
  check "$rt: User root resolved to uid 0" 'tr -d " \n" <<<"$out" | grep -q "\"user\":{\"uid\":0,\"gid\":0,\"spec\":\"root\"}"' "$out"
  root=$(sed -nE 's/^  "root": "(.*)",$/\1/p' <<<"$out")
  check "$rt: root is in the cache, named by the chain id" '[[ $root =~ ^$cache/rootfs/[0-9a-f]{64}$ && -d $root ]]' "$root"
  if [[ -d $root ]]; then
    check "$rt: whiteout removed old.txt and gone/" '[[ ! -e $root/old.txt && ! -e $root/gone ]]'
    check "$rt: opaque dir keeps only the upper layer's c" '[[ $(ls "$root/opq") == c ]]' "$(ls "$root/opq")"
    check "$rt: hardlink shares the inode" '[[ $(stat -c %i "$root/bin/cat") == $(stat -c %i "$root/bin/busybox") ]]'
    check "$rt: symlinks kept as links" '[[ $(readlink "$root/bin/sh") == busybox && $(readlink "$root/bin/ls") == /bin/busybox ]]'
    check "$rt: modes (1777, 700, 444, 755)" '[[ $(stat -c %a "$root/tmp" "$root/work" "$root/etc/motd" "$root/bin/busybox" | tr "\n" " ") == "1777 700 444 755 " ]]' "$(stat -c %a "$root/tmp" "$root/work" "$root/etc/motd" "$root/bin/busybox")"
    if [[ $(id -u) -eq 0 ]]; then
      check "$rt: owners (as root)" '[[ $(stat -c %u:%g "$root/home/app/owned") == 1000:1001 ]]' "$(stat -c %u:%g "$root/home/app/owned")"
    fi
    check "$rt: xattr from the pax header" '[[ $(python3 -c "import os,sys; print(os.getxattr(sys.argv[1], \"user.zkrun\").decode())" "$root/xattr-file") == hello ]]'
    check "$rt: mtime from the header" '[[ $(stat -c %Y "$root/etc/motd") == 1700000000 ]]'
    check "$rt: pax long names" '[[ -f $(echo "$root"/a-very-long-directory-name-*/file-with-a-long-name-*) ]]'
    check "$rt: GNU long name" '[[ $(cat "$root/gnu/$(printf "n%.0s" {1..150})") == gnu ]]'
    if [[ $(id -u) -eq 0 ]]; then
      check "$rt: GNU base-256 owner" '[[ $(stat -c %u "$root/gnu/$(printf "n%.0s" {1..150})") == 3000000 ]]'
    fi
    check "$rt: busybox runs from the cache" '[[ $("$root/bin/busybox" cat "$root/etc/motd") == "layer three" ]]'
  fi
  ino=$(stat -c %i "$root" 2>/dev/null)

  # 2. The second run reuses the cache: no unpacking, the same directory.
  out=$("${z[@]}" run --dry-run "$T/img" -- echo hi 2>"$T/err"); rc=$?; err=$(cat "$T/err")
  check "$rt: second run reuses the cache" '[[ $rc -eq 0 ]] && ! grep -q unpacking <<<"$err" && grep -q "^zkrun: using cached rootfs $root$" <<<"$err" && [[ $(stat -c %i "$root") == "$ino" ]]' "$err"
  check "$rt: a command after -- replaces Cmd, keeps Entrypoint" 'tr -d " \n" <<<"$out" | grep -q "\"argv\":\[\"/bin/sh\",\"/app/entry.sh\",\"echo\",\"hi\"\]"' "$out"
  out=$("${z[@]}" run --dry-run --cpus 2 --mem 256 -e GREETING=over -e NEW=1 -w /tmp -u 0:0 "$T/img" 2>/dev/null)
  check "$rt: --cpus --mem -e -w -u override the image" 'tr -d " \n" <<<"$out" | grep -q "\"cpus\":2,\"memoryMiB\":256,.*\"GREETING\":\"over\",\"NEW\":\"1\"},\"workdir\":\"/tmp\""' "$out"

  # 3. The same image as an OCI archive and as a docker archive: the same rootfs (chain id).
  for f in oci docker; do
    out=$("${z[@]}" run --dry-run "$T/img.$f.tar" 2>"$T/err"); rc=$?
    check "$rt: $f archive gives the same cached rootfs" '[[ $rc -eq 0 ]] && grep -q "\"root\": \"$root\"" <<<"$out"' "$out $(cat "$T/err")"
  done

  # 4. User: a name resolved through the image's /etc/passwd, handed to the guest init as KRUN_USER.
  out=$("${z[@]}" run --dry-run "$T/img-app" 2>/dev/null); rc=$?
  check "$rt: User app resolved to uid 1000 gid 1001" '[[ $rc -eq 0 ]] && tr -d " \n" <<<"$out" | grep -q "\"user\":{\"uid\":1000,\"gid\":1001,\"spec\":\"app\"}"' "$out"
  check "$rt: ... and passed to the library as KRUN_USER=1000:1001" 'tr -d " \n" <<<"$out" | grep -q "\"exec\":{.*\"KRUN_USER\":\"1000:1001\"}"' "$out"
  out=$("${z[@]}" run --dry-run -u app:staff "$T/img" 2>&1)
  check "$rt: -u app:staff resolves the group too" 'tr -d " \n" <<<"$out" | grep -q "\"KRUN_USER\":\"1000:50\""' "$out"
  out=$("${z[@]}" run --dry-run -u 0 "$T/img-app" 2>/dev/null); rc=$?
  check "$rt: -u 0 overrides the image User (no KRUN_USER)" '[[ $rc -eq 0 ]] && ! grep -q KRUN_USER <<<"$out"' "$out"
  out=$("${z[@]}" run --dry-run -u nobody "$T/img" 2>&1); rc=$?
  check "$rt: an unknown user name is refused" '[[ $rc -eq 125 && $out == *"zkrun: user \"nobody\" is not in the image'"'"'s /etc/passwd" ]]' "$out"

  # 5. Bad images: refused in one line, no stack, nothing outside the cache, no rootfs left.
  before=$(ls "$cache/rootfs" | sort)
  for v in truncated missing-blob digest-mismatch dotdot absolute symlink-out; do
    img=$T/bad-$v; [[ $v == truncated ]] && img=$T/bad-truncated.tar
    out=$("${z[@]}" run --dry-run "$img" 2>&1); rc=$?
    msg=$(grep -v "^zkrun: \(un\)\?packing\|^zkrun: unpacked" <<<"$out")
    case $v in
      truncated) re="^zkrun: bad image: tar: truncated" ;;
      missing-blob) re="^zkrun: bad image: layer sha256:[0-9a-f]{12} is missing" ;;
      digest-mismatch) re="^zkrun: bad image: layer sha256:[0-9a-f]{12} does not match its digest" ;;
      dotdot) re="^zkrun: bad image: member .* has a \"\.\.\" component" ;;
      absolute) re="^zkrun: bad image: member \"/.*\" is an absolute path" ;;
      symlink-out) re="^zkrun: bad image: symlink \"esc\" -> .* points out of the rootfs; refused" ;;
    esac
    check "$rt: $v refused: $re" '[[ $rc -eq 125 && $(wc -l <<<"$msg") -eq 1 && $msg =~ $re && $out != *"    at "* ]]' "$out"
  done
  check "$rt: nothing written outside the cache" '[[ -z $(ls -A "$T/outside") ]]' "$(ls -A "$T/outside")"
  check "$rt: no rootfs or temp dir left by the bad images" '[[ $(ls "$cache/rootfs" | sort) == "$before" && -z $(ls -A "$cache/tmp") ]]' "$(ls "$cache/rootfs" "$cache/tmp")"

  chmod 755 "$T/outside"; touch -d @1000000000 "$T/outside"
  out=$("${z[@]}" run --dry-run "$T/dir-then-link" 2>&1); rc=$?
  check "$rt: a dir replaced by an absolute symlink: its mode/mtime not applied through the link" '[[ $rc -eq 0 && $(stat -c %a:%Y "$T/outside") == 755:1000000000 && -L $(sed -nE "s/^  \"root\": \"(.*)\",$/\1/p" <<<"$out")/swap ]]' "$out $(stat -c %a:%Y "$T/outside")"

  # 6. Options (-v, -p) and mistakes: one line, exit 125.
  one() { # NAME REGEX ARGS...
    local name=$1 re=$2; shift 2
    local out rc; out=$("${z[@]}" "$@" 2>&1); rc=$?
    check "$rt: $name" '[[ $rc -eq 125 && $(wc -l <<<"$out") -eq 1 && $out =~ $re && $out != *"    at "* ]]' "$out (exit $rc)"
  }
  mkdir -p "$T/share"
  out=$("${z[@]}" run --dry-run -v "$T/share:/mnt/data" -v "$T/share:/ro:ro" "$T/img" 2>/dev/null); rc=$?
  check "$rt: -v: krun_add_virtiofs3 accepted both shares; KRUN_MOUNTS for the init" '[[ $rc -eq 0 ]] && tr -d " \n" <<<"$out" | grep -q "\"KRUN_MOUNTS\":\"zkrun0:/mnt/data,zkrun1:/ro:ro\""' "$out"
  one "-v without a guest path" '^zkrun: -v wants HOST:GUEST or HOST:GUEST:ro, got "/tmp"' run -v /tmp "$T/img"
  one "-v with a bad flag" '^zkrun: -v wants HOST:GUEST or HOST:GUEST:ro, got "/tmp:/x:rw"' run -v /tmp:/x:rw "$T/img"
  one "-v of a missing directory" "^zkrun: -v $T/nope:/x: $T/nope does not exist" run -v "$T/nope:/x" "$T/img"
  one "-v of a file" "is not a directory \(only directories can be shared\)" run -v /bin/busybox:/x "$T/img"
  one "-v with a relative guest path" "the guest path must be absolute, not /, without" run -v "$T/share:rel" "$T/img"
  one "-v with .. in the guest path" "the guest path must be absolute, not /, without" run -v "$T/share:/a/../b" "$T/img"
  out=$("${z[@]}" run --dry-run -p 8080:80 -p 08443:443 "$T/img" 2>/dev/null); rc=$?
  check "$rt: -p: krun_set_port_map accepted the map; the spec has it" '[[ $rc -eq 0 ]] && tr -d " \n" <<<"$out" | grep -q "\"ports\":{\"8080\":80,\"8443\":443}"' "$out"
  out=$("${z[@]}" run --dry-run "$T/img" 2>/dev/null); rc=$?
  check "$rt: no -p: no port map in the spec (listeners on the host's loopback)" '[[ $rc -eq 0 && $out != *'"'"'"ports"'"'"'* ]]' "$out"
  one "-p not HOST:GUEST" '^zkrun: -p 8080: wants HOST:GUEST port numbers, e.g. 8080:80' run -p 8080 "$T/img"
  one "-p with a protocol" '^zkrun: -p 8080:80/tcp: wants HOST:GUEST' run -p 8080:80/tcp "$T/img"
  one "-p host port twice" '^zkrun: -p 8080:81: host port 8080 is published twice' run -p 8080:80 -p 8080:81 "$T/img"
  one "-p out of range" '^zkrun: -p 0:80: ports are 1..65535' run -p 0:80 "$T/img"
  one "-p guest port twice (krun_set_port_map)" '^zkrun: krun_set_port_map: .*guest port 80 is mapped twice' run --dry-run -p 8080:80 -p 8081:80 "$T/plainroot" -- /bin/busybox true
  one "bad --cpus" '^zkrun: --cpus wants a number in 1..255, got "x"' run --cpus x "$T/img"
  one "unknown flag" "^zkrun: Unknown option '--bogus'" run --bogus "$T/img"
  one "missing image" "^zkrun: $T/nope: no such image or directory" run "$T/nope"
  one "bad -e" '^zkrun: -e wants NAME=VALUE, got "NOEQ"' run -e NOEQ "$T/img"
  one "not an image tar" "^zkrun: bad image: tar: " run /bin/busybox
  one "unknown command" '^zkrun: unknown command "frob"' frob
  LIBKRUN_PATH=/nonexistent/libkrun.so.1 one "library missing" "^zkrun: cannot load libkrun.so.1; tried /nonexistent" run --dry-run "$T/img"
  out=$("${z[@]}" run --dry-run "$T/plainroot" -- /bin/busybox true 2>&1); rc=$?
  check "$rt: a plain ROOTFS directory is used in place" '[[ $rc -eq 0 ]] && grep -q "\"root\": \"$T/plainroot\"" <<<"$out"' "$out"
  one "a plain ROOTFS needs a command" "^zkrun: the image has no Entrypoint or Cmd: give a command after --" run --dry-run "$T/plainroot"

  # 7. Named VMs (krunvm-style): state in XDG_STATE_HOME, the root copied into XDG_DATA_HOME.
  out=$("${z[@]}" create --name web --cpus 2 "$T/img" -- echo made 2>&1); rc=$?
  check "$rt: create" '[[ $rc -eq 0 && -f $XDG_STATE_HOME/zkrun/vms/web.json && -x $XDG_DATA_HOME/zkrun/vms/web/rootfs/bin/busybox ]]' "$out"
  check "$rt: the VM's root is a copy (hardlinks, modes, xattrs kept)" '[[ $(stat -c %i "$XDG_DATA_HOME/zkrun/vms/web/rootfs/bin/cat") == $(stat -c %i "$XDG_DATA_HOME/zkrun/vms/web/rootfs/bin/busybox") && $(stat -c %i "$XDG_DATA_HOME/zkrun/vms/web/rootfs/bin/busybox") != $(stat -c %i "$root/bin/busybox") && $(stat -c %a "$XDG_DATA_HOME/zkrun/vms/web/rootfs/tmp") == 1777 ]] && python3 -c "import os,sys; os.getxattr(sys.argv[1], \"user.zkrun\")" "$XDG_DATA_HOME/zkrun/vms/web/rootfs/xattr-file"'
  one "create: the name is taken" '^zkrun: a VM named "web" exists already' create --name web "$T/img"
  one "create: a bad name" '^zkrun: bad VM name "../x"' create --name ../x "$T/img"
  out=$("${z[@]}" list 2>&1)
  check "$rt: list" 'grep -qE "^web\s+2\s+512MiB\s+\[\"/bin/sh\",\"/app/entry.sh\",\"echo\",\"made\"\]" <<<"$out"' "$out"
  one "start of an unknown VM" '^zkrun: no VM named "nope"' start nope
  out=$("${z[@]}" rm web 2>&1); rc=$?
  check "$rt: rm" '[[ $rc -eq 0 && ! -e $XDG_STATE_HOME/zkrun/vms/web.json && ! -e $XDG_DATA_HOME/zkrun/vms/web ]] && [[ $("${z[@]}" list | wc -l) -eq 1 ]]' "$out"
done

# 8. Without XDG_* the fallbacks under HOME are used.
out=$(env -u XDG_CACHE_HOME -u XDG_STATE_HOME -u XDG_DATA_HOME HOME="$T/home" bun cli/zkrun.ts create --name fb "$T/img" 2>&1); rc=$?
check "XDG fallbacks: ~/.cache, ~/.local/state, ~/.local/share" '[[ $rc -eq 0 && -d $T/home/.cache/zkrun/rootfs && -f $T/home/.local/state/zkrun/vms/fb.json && -d $T/home/.local/share/zkrun/vms/fb/rootfs ]]' "$out"

# The ./zkrun wrapper of a checkout, with each runtime.
for rt in deno bun; do
  out=$(ZKRUN_RUNTIME=$rt ./zkrun --help 2>&1); rc=$?
  check "./zkrun with ZKRUN_RUNTIME=$rt" '[[ $rc -eq 0 && $out == "usage: zkrun COMMAND"* ]]' "$out"
done

# 9. One binary (bun build --compile, as `deno task compile-bun`): finds zig-out/lib beside its
# bin/ directory without LIBKRUN_PATH. (deno compile needs the denort base binary, which Deno
# downloads from its own server: not reachable here, so not tested.)
mkdir -p "$T/inst/bin"; ln -s "$PWD/zig-out/lib" "$T/inst/lib"
out=$(bun build --compile --outfile "$T/inst/bin/zkrun" cli/zkrun.ts 2>&1); rc=$?
check "bun build --compile makes one binary" '[[ $rc -eq 0 && -x $T/inst/bin/zkrun ]]' "$out"
out=$(env -u LIBKRUN_PATH XDG_CACHE_HOME=$T/compiled "$T/inst/bin/zkrun" run --dry-run "$T/img" 2>&1); rc=$?
check "the binary unpacks and configures with the library beside it" '[[ $rc -eq 0 ]] && grep -q "\"root\": \"$T/compiled/zkrun/rootfs/" <<<"$out"' "$out"

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
