# Sourced by tests/vm/5x-pty-*.test.sh (inside the test host): what a user sees in a terminal.
# pty NAME [STEP...] -- CMD [ARG...] runs CMD on a fresh 100x30 pseudo-terminal (controlling
# terminal, stdin/stdout/stderr) through tests/vm/pty_drive.py, wrapped as a user's shell would
# run it: `stty -g` before and after. Sets out (the transcript, \r removed) and rc (CMD's
# status), and checks the terminal's settings came back identical and no NUL byte was printed.
# The library is the one in zig-out, the shipped build mode (tests/vm/00-build.prepare.sh).
command -v python3 >/dev/null || { echo "SKIP: no python3 for the pty driver"; exit 77; }
pty() {
  local name=$1; shift
  local steps=()
  while [[ $# -gt 0 && $1 != -- ]]; do steps+=("$1"); shift; done
  shift
  local d="$work/pty-$name"
  mkdir -p "$d"
  local t0=$SECONDS
  timeout 420 python3 tests/vm/pty_drive.py --size 100x30 --timeout 300 --transcript "$d/out" "${steps[@]}" -- \
    /bin/sh -c 'stty -g >"$0/before"; "$@"; rc=$?; stty -g >"$0/after"; exit $rc' "$d" "$@"
  rc=$?
  echo "pty $name: status $rc after $((SECONDS - t0)) s"
  out=$(tr -d '\r' <"$d/out" 2>/dev/null | tr '\0' '@')
  expect "$name: stty -g identical before and after" \
    '[[ -s $d/before && -s $d/after ]] && cmp -s "$d/before" "$d/after"' \
    "before: $(cat "$d/before" 2>&1)
after:  $(cat "$d/after" 2>&1)
$out"
  expect "$name: no NUL byte printed" '[[ $(tr -cd "\0" <"$d/out" | wc -c) -eq 0 ]]' "$(od -c "$d/out" | head -20)"
}
