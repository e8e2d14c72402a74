#!/usr/bin/env bash
# The KVM smoke program (tests/host/kvm-smoke.c) on THIS machine's /dev/kvm: real-mode and
# long-mode hand-made guests doing port I/O and HLT (TESTING.md: this /dev/kvm runs tiny guests,
# slowly, in its instruction emulator; it cannot run Linux). Small loop and exit counts keep it
# under a second there. The same program runs inside the test host in tests/vm/00-kvm-smoke.
set -uo pipefail
cd "$(dirname "$0")/../.."
if [[ ! -c /dev/kvm ]]; then
  echo "kvm-api-smoke: SKIP: this machine has no /dev/kvm"
  echo "0 passed, 0 failed, 1 skipped"
  exit 0
fi
bin=$(tests/host/build-kvm-smoke.sh) || { echo "kvm-smoke build failed"; echo "0 passed, 1 failed"; exit 1; }
exec "$bin" --loop 2000 --exits 200 --timeout 60
