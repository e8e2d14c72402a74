#!/usr/bin/env bash
# ARCHITECTURE.md's import rules against the code: derives the import graph of libkrun-c/ from its
# @import lines (relative paths, and the build's named modules resolved through build.zig's
# `fn fooModule` → `b.path("libkrun-c/...")` and `addImport("name", fooModule(b))`) and checks
# every import that crosses a folder (or a file at libkrun-c/'s top) against the rule block in
# ARCHITECTURE.md ("Imports"), so the document and this check cannot drift apart. Also: every
# folder and top-level file of libkrun-c/ is named in the block, every path the block names
# exists, and every named module a file imports is one build.zig defines (or std/builtin/the
# embedded init). A rule line is `FROM -> TO...` with paths relative to libkrun-c/: `dir/` is
# everything under it, `*` is a glob, anything else one file; `-> nothing` allows no import out.
# Prints each import no rule allows and "N passed, N failed".
set -uo pipefail
set -f # the rules hold globs: they are matched, never expanded against files here
cd "$(dirname "$0")/../.."
pass=0 fail=0
ok() { echo "ok   $1"; pass=$((pass + 1)); }
bad() { echo "FAIL $1"; fail=$((fail + 1)); }

# The rule block: the fenced block after the line "<!-- arch-imports -->" in ARCHITECTURE.md.
rules=$(awk '/^<!-- arch-imports -->/ { on = 1; next } on && /^```/ { if (in_block) exit; in_block = 1; next } in_block' ARCHITECTURE.md)
[[ -n $rules ]] || { bad "no rule block (<!-- arch-imports --> and a fenced block) in ARCHITECTURE.md"; echo "$pass passed, $fail failed"; exit 1; }
froms=() tos=()
while read -r from arrow rest; do
  [[ -z $from || $from == \#* ]] && continue
  [[ $arrow == "->" ]] || { bad "ARCHITECTURE.md rule line without '->': $from $arrow $rest"; continue; }
  froms+=("$from") tos+=("$rest")
done <<<"$rules"

# matches PATH PATTERN: `dir/` → under dir, a glob, or the exact file.
matches() {
  case $2 in
    */) [[ $1 == "$2"* ]] ;;
    *) [[ $1 == $2 ]] ;;
  esac
}
# unit PATH: the top folder (`vmm/`) or the top-level file (`Config.zig`).
unit() { if [[ $1 == */* ]]; then echo "${1%%/*}/"; else echo "$1"; fi; }
# normalize PATH: resolves `.` and `..` (paths relative to libkrun-c/).
normalize() {
  local IFS=/ part out=()
  for part in $1; do
    case $part in
      . | "") ;;
      ..) [[ ${#out[@]} -gt 0 ]] && unset 'out[${#out[@]}-1]' || out+=(..) ;;
      *) out+=("$part") ;;
    esac
  done
  echo "${out[*]}"
}

# Named modules from build.zig: function → root file, then import name → function.
declare -A fn_path mod_path
while read -r fn path; do fn_path[$fn]=$path; done < <(awk '
  match($0, /^fn [A-Za-z0-9_]+Module\(/) { fn = substr($0, 4, RLENGTH - 4); next }
  fn != "" && match($0, /b\.path\("[^"]+"\)/) { print fn, substr($0, RSTART + 8, RLENGTH - 10); fn = "" }
  /^}/ { fn = "" }' build.zig)
while read -r name fn; do
  p=${fn_path[$fn]:-}
  [[ $p == libkrun-c/* ]] && mod_path[$name]=${p#libkrun-c/}
done < <(grep -oE 'addImport\("[a-z_0-9]+", [A-Za-z0-9_]+Module\(' build.zig | sed -E 's/addImport\("([^"]+)", ([A-Za-z0-9_]+)Module\(/\1 \2Module/' | sort -u)
if [[ ${#mod_path[@]} -gt 0 ]]; then
  ok "build.zig's named modules of libkrun-c/: $(for n in "${!mod_path[@]}"; do printf '%s=%s ' "$n" "${mod_path[$n]}"; done | sed 's/ $//')"
else bad "no named module of libkrun-c/ found in build.zig"; fi

# The graph: every @import of every .zig under libkrun-c/.
edges=0 crossing=0 denied=()
unknown=()
while IFS= read -r f; do
  rel=${f#libkrun-c/}
  dir=$(dirname "$rel"); [[ $dir == . ]] && dir=""
  while IFS= read -r target; do
    case $target in
      std | builtin | root | init_bin) continue ;; # init_bin: the init binary, embedded
      *.zig) to=$(normalize "${dir:+$dir/}$target") ;;
      *) if [[ -n ${mod_path[$target]:-} ]]; then to=${mod_path[$target]}; else unknown+=("$rel imports the module '$target', which build.zig does not define for libkrun-c/"); continue; fi ;;
    esac
    edges=$((edges + 1))
    [[ $to == ../* ]] && { denied+=("$rel -> $to (outside libkrun-c/)"); continue; }
    [[ $(unit "$rel") == "$(unit "$to")" ]] && continue
    crossing=$((crossing + 1))
    allowed=0
    for i in "${!froms[@]}"; do
      matches "$rel" "${froms[$i]}" || continue
      for pat in ${tos[$i]}; do
        [[ $pat == nothing ]] && continue
        if matches "$to" "$pat"; then allowed=1; break 2; fi
      done
    done
    [[ $allowed == 1 ]] || denied+=("$rel -> $to")
  done < <(sed 's|//.*||' "$f" | grep -oE '@import\("[^"]+"\)' | sed -E 's/@import\("(.*)"\)/\1/')
done < <(find libkrun-c -name '*.zig' | sort)

if [[ ${#unknown[@]} -eq 0 ]]; then ok "every named module imported under libkrun-c/ is defined in build.zig"
else bad "unknown named modules:"; printf '     %s\n' "${unknown[@]}"; fi
if [[ ${#denied[@]} -eq 0 ]]; then ok "$crossing of $edges imports cross a folder; ARCHITECTURE.md's rules allow each"
else
  bad "${#denied[@]} of $crossing folder-crossing imports break ARCHITECTURE.md's rules (fix the import, or the rule and the text around it):"
  printf '     %s\n' "${denied[@]}"
fi

# Every folder and top-level file is named in the block, and every path the block names exists.
missing=()
for p in $(cd libkrun-c && set +f && ls -d */ *.zig); do
  grep -qE "(^|[[:space:]])${p//./\\.}([[:space:]]|$)" <<<"$rules" || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && ok "every folder and top-level file of libkrun-c/ has a rule line or is a target" ||
  bad "not in ARCHITECTURE.md's import rules: ${missing[*]}"
stale=()
for pat in "${froms[@]}" ${tos[@]}; do
  [[ $pat == nothing || $pat == "*" ]] && continue
  (set +f; compgen -G "libkrun-c/$pat" >/dev/null) || stale+=("$pat")
done
[[ ${#stale[@]} -eq 0 ]] && ok "every path in the rules exists" || bad "the rules name paths that do not exist: ${stale[*]}"

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
