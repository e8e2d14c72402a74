# Sourced by tests/vm/60-ts-run.test.sh after vm-common.sh (inside the test host): every
# TypeScript example of README.md, run as written under Deno (README's exact flags) and Bun, from
# the checkout with ./rootfs the busybox root, must print what its "// prints:" line says; and
# README's examples/run.ts command lines run as written. The examples are written next to mod.ts
# (they import "./mod.ts") under names removed on exit.
readme_examples() {
  local dir n=0 file want out rc rt
  dir=$(mktemp -d)
  ln -sfn "$ROOTFS" rootfs
  python3 - README.md "$dir" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
blocks = [b for b in re.findall(r"```ts\n(.*?)```", text, re.S) if '"./mod.ts"' in b]
for i, b in enumerate(blocks):
    open(f"{sys.argv[2]}/{i}.ts", "w").write(b)
PY
  for file in "$dir"/*.ts; do
    n=$((n + 1))
    want=$(sed -n 's|^// prints: ||p' "$file")
    expect "README example $n has a '// prints:' line" '[[ -n $want ]]' "$(cat "$file")"
    cp "$file" ".readme-example-$n.ts"
    for rt in deno bun; do
      if [[ $rt == deno ]]; then # README's flags, exactly
        out=$(deno run --quiet --allow-ffi --allow-read --allow-write=/tmp --allow-env=LIBKRUN_PATH,TMPDIR \
          ".readme-example-$n.ts" </dev/null 2>&1); rc=$?
      else out=$(bun ".readme-example-$n.ts" </dev/null 2>&1); rc=$?; fi
      expect "$rt: README example $n prints: $want" '[[ $rc -eq 0 && $(grep -v "^\[zkrun\]" <<<"$out") == "$want" ]]' "$out"
    done
  done
  expect "README has its TypeScript examples (found $n)" '[[ $n -ge 3 ]]' ""
  # The examples/run.ts command lines, as README writes them.
  local line
  while IFS= read -r line; do
    out=$(bash -c "$line" </dev/null 2>&1); rc=$?
    expect "README command runs: ${line:0:60}…" '[[ $rc -eq 0 && $out == *Linux* ]]' "$out"
  done < <(grep -E '^(deno run|bun) .*examples/run\.ts --root \./rootfs' README.md)
  rm -rf "$dir" rootfs .readme-example-*.ts
}
