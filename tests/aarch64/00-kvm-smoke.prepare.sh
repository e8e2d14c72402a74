#!/usr/bin/env bash
# Runs on the machine before the aarch64 test host boots: cross-builds the aarch64 KVM smoke
# program into the shared cache (there is no Zig inside the aarch64 host).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/host/build-kvm-smoke-aarch64.sh
