#!/usr/bin/env bash
# Builds upstream libkrun (the Rust original, crate `libkrun` from crates.io) for the side-by-side
# benchmark, once: fetched by cargo, built with `cargo build --release` under `nice -n 10 -j2`,
# cached in ~/.cache/zkrun/upstream-libkrun-$VERSION/ (never in the repository). Prints the path
# of the built libkrun.so. Needs cargo (rustup) and libclang-dev (bindgen); installs the latter
# if missing (waiting up to 10 min for another apt, e.g. scripts/setup.sh, to release its
# lock). Exit 77 when it cannot be built here (no cargo, no network).
set -euo pipefail
VERSION=${UPSTREAM_LIBKRUN_VERSION:-1.19.7}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/zkrun/upstream-libkrun-$VERSION
lib=$cache/target/release/libkrun.so
if [[ -s $lib ]]; then echo "$lib"; exit 0; fi
export PATH="$HOME/.cargo/bin:$PATH"
command -v cargo >/dev/null || { echo "upstream-libkrun: no cargo (install rustup)" >&2; exit 77; }
if ! dpkg-query -W -f='${Status}' libclang-dev 2>/dev/null | grep -q "ok installed"; then
  echo "upstream-libkrun: installing libclang-dev (bindgen needs it)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=600 -y -qq --no-install-recommends libclang-dev >&2 || exit 77
fi
mkdir -p "$cache/fetch/src"
# A throwaway package depending on exactly that version makes cargo fetch and unpack the crate
# (and its dependencies) into its registry, from where it is copied and built on its own.
cat >"$cache/fetch/Cargo.toml" <<TOML
[package]
name = "fetch-libkrun"
version = "0.0.0"
edition = "2021"
[dependencies]
libkrun = "=$VERSION"
TOML
: >"$cache/fetch/src/lib.rs"
(cd "$cache/fetch" && cargo fetch -q) >&2 || { echo "upstream-libkrun: cargo fetch failed" >&2; exit 77; }
src=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/libkrun-"$VERSION" 2>/dev/null | head -1)
[[ -d $src ]] || { echo "upstream-libkrun: crate not unpacked" >&2; exit 77; }
rm -rf "$cache/src"; cp -a "$src" "$cache/src"
echo "upstream-libkrun: building $VERSION (cargo build --release -j2, several minutes)" >&2
(cd "$cache/src" && CARGO_TARGET_DIR="$cache/target" nice -n 10 cargo build --release -j2 -q) >&2 || exit 1
[[ -s $lib ]] || lib=$(ls "$cache"/target/release/libkrun.so* 2>/dev/null | head -1)
[[ -s $lib ]] || { echo "upstream-libkrun: no libkrun.so after the build" >&2; exit 1; }
echo "$lib"
