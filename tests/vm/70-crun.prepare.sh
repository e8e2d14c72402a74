#!/usr/bin/env bash
# Runs on the machine before the test host boots (tests/run.sh): builds what tests/vm/7x-*
# need at native speed, into the cache the host shares: crun with its libkrun handler
# (tests/clients/build-crun.sh), the busybox rootfs of the bundles and, from it, the
# oci-archive that podman loads (tests/clients/oci-archive.py).
set -euo pipefail
cd "$(dirname "$0")/../.."
tests/clients/build-crun.sh
dir="${ZKRUN_CACHE:-$HOME/.cache/zkrun}/crun"
scripts/mkrootfs.sh "$dir/rootfs" >/dev/null
# One tar for the test host: copying the tree's ~400 entries over its 9p share took over a minute.
stamp=$(cat "$dir/rootfs/.zkrun-rootfs")
if [[ ! -f $dir/rootfs.tar || $(cat "$dir/rootfs.tar.key" 2>/dev/null) != "$stamp" ]]; then
  tar -C "$dir/rootfs" --exclude ./.zkrun-rootfs -cf "$dir/rootfs.tar.tmp" . && mv "$dir/rootfs.tar.tmp" "$dir/rootfs.tar"
  echo "$stamp" >"$dir/rootfs.tar.key"
fi
archive="$dir/busybox-oci.tar"
key=$(cat "$dir/rootfs/.zkrun-rootfs" tests/clients/oci-archive.py | sha256sum | cut -c1-16)
if [[ ! -f $archive || $(cat "$archive.key" 2>/dev/null) != "$key" ]]; then
  python3 tests/clients/oci-archive.py "$dir/rootfs" "$archive" localhost/zkrun-busybox:test /bin/sh
  echo "$key" >"$archive.key"
fi
echo "crun: $(tests/clients/build-crun.sh --print-path)"
echo "image: $archive"
