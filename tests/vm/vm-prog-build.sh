#!/usr/bin/env bash
# Builds a VM test's host program, tests/vm/NAME.c, with build-lib.sh's build_c (against the
# installed header and libkrun.so.1, once per input version) into the cache the test host shares
# at the same path (${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vm-progs), and prints its path. Run on the
# machine by the groups' prepare scripts (30-fs, 40-init through 40-init-build.sh, 50-pty, 85-tsi,
# 90-blk, 96-net), so the emulated test host compiles nothing (a cc there costs seconds of
# emulated CPU per test); the tests call it again and find it built, or build it there when run
# without the prepare step.
set -euo pipefail
cd "$(dirname "$0")/../.."
name=$1
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/vm-progs"
source tests/vm/build-lib.sh
built=$(build_c "$name" "tests/vm/$name.c")
echo "${built#*=}"
