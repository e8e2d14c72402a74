#!/usr/bin/env bash
# Runs on the machine before the test host boots: the OCI images the zkrun CLI VM tests
# (tests/vm/66-cli-*.test.sh, 67-cli-*.test.sh) run, built from /bin/busybox by
# tests/native/cli/mkimage.py into the shared checkout (.tools/cli-images; the host's /tmp is
# fresh each boot).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$PWD/.tools/cli-images
rm -rf "$out"; mkdir -p "$out"
python3 tests/native/cli/mkimage.py "$out/layout" good layout
python3 tests/native/cli/mkimage.py "$out/app-layout" good layout app
python3 tests/native/cli/mkimage.py "$out/docker.tar" good docker-archive
echo "images: .tools/cli-images"
