#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds the KVM smoke program into
# the shared cache, so tests/vm/00-kvm-smoke.test.sh does not compile under emulation.
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/host/build-kvm-smoke.sh
