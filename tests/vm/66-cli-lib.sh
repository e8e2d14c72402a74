# Sourced by tests/vm/66-cli-run.test.sh and 67-cli-vms.test.sh (inside the test host): the TS
# VM tests' setup, the images 66-cli.prepare.sh built ($IMAGES), a scratch dir ($T), `cli_runtime
# deno|bun` (sets `z`, the zkrun command under that runtime, and XDG dirs of its own under $T)
# and `zk ARGS...` (runs it; sets $out, the guest terminal's CRLF undone, and $rc).
source "$(dirname "${BASH_SOURCE[0]}")/../ts/vm-common.sh"
IMAGES=$PWD/.tools/cli-images
[[ -d $IMAGES/layout ]] || skip "no $IMAGES (tests/vm/66-cli.prepare.sh builds them)"
T=$(mktemp -d); trap 'rm -rf "$T"' EXIT
cli_runtime() {
  rt=$1
  if [[ $rt == deno ]]; then z=(deno run --quiet --allow-ffi --allow-read --allow-write --allow-env cli/zkrun.ts)
  else z=(bun cli/zkrun.ts); fi
  export XDG_CACHE_HOME=$T/$rt/cache XDG_DATA_HOME=$T/$rt/data XDG_STATE_HOME=$T/$rt/state
}
zk() { "${z[@]}" "$@" </dev/null >"$T/out" 2>&1; rc=$?; out=$(tr -d '\r' <"$T/out"); }
