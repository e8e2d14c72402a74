#!/usr/bin/env bash
# Installs every tool zkrun needs, pinned, and only what is missing. One line per step.
# Idempotent: on a ready machine it takes a few seconds. Safe to run as root on a fresh
# Debian 12 machine that reaches only the package registries.
set -euo pipefail
cd "$(dirname "$0")/.."

ZIG_VERSION=0.17.1
DENO_VERSION=2.9.6
BUN_VERSION=1.4.5
TOOLS=.tools

step() { printf 'setup: %-34s %s\n' "$1" "$2"; }

# apt_install NAME [APT-GET OPTION...] -- PACKAGE...: installs those of the packages that are missing.
apt_install() {
  local name=$1 opts=() pkgs=() missing=() p
  shift
  while [ "$1" != -- ]; do opts+=("$1"); shift; done
  shift
  pkgs=("$@")
  for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    step "$name" "installing: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${opts[@]}" "${missing[@]}" >/dev/null
  else
    step "$name" "ok (${#pkgs[@]} present)"
  fi
}

# arm64 as a foreign architecture: tests/host/aarch64-root.sh `apt-get download`s the aarch64
# test host's kernel, busybox and bash (unpacked into its cache, never installed).
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  step "dpkg architecture arm64" "adding"
  dpkg --add-architecture arm64
  apt-get update -qq >/dev/null
else
  step "dpkg architecture arm64" "ok"
fi

apt_install "debian packages" -- linux-source-6.12 flex bison bc libelf-dev libssl-dev cpio xz-utils \
  busybox-static qemu-system-x86 valgrind qemu-system-arm gcc-aarch64-linux-gnu device-tree-compiler passt \
  llvm

# The real clients of the VM tier (tests/vm/7x-*): podman and conmon run as they are, crun is
# built from Debian's source package by tests/clients/build-crun.sh (its build dependencies
# here). Without recommends: podman's (buildah, slirp4netns, fuse-overlayfs, ...) are not used.
apt_install "client packages (crun, podman)" --no-install-recommends -- podman conmon dpkg-dev pkg-config \
  libseccomp-dev libcap-dev libyajl-dev

# Zig from PyPI, pinned exactly, inside the project so nothing global changes.
mkdir -p "$TOOLS"
if [ "$("$TOOLS/zig/bin/zig" version 2>/dev/null)" != "$ZIG_VERSION" ]; then
  step "zig $ZIG_VERSION (pypi ziglang)" "installing"
  rm -rf "$TOOLS/zig"
  PIP_ROOT_USER_ACTION=ignore python3 -m pip install -q --disable-pip-version-check --target "$TOOLS/zig/py" \
    "ziglang==$ZIG_VERSION" >/dev/null
  mkdir -p "$TOOLS/zig/bin"
  ln -sf "../py/ziglang/zig" "$TOOLS/zig/bin/zig"
else
  step "zig $ZIG_VERSION (pypi ziglang)" "ok"
fi

# Deno and Bun from npm, pinned exactly, installed into the project (never globally).
js_ok=1
[ "$("$TOOLS/js/node_modules/.bin/deno" --version 2>/dev/null | head -1 | cut -d' ' -f2)" = "$DENO_VERSION" ] || js_ok=0
[ "$("$TOOLS/js/node_modules/.bin/bun" --version 2>/dev/null)" = "$BUN_VERSION" ] || js_ok=0
if [ $js_ok = 0 ]; then
  step "deno $DENO_VERSION, bun $BUN_VERSION (npm)" "installing"
  mkdir -p "$TOOLS/js"
  (cd "$TOOLS/js" && printf '{"private":true}\n' > package.json &&
    npm install --silent --no-audit --no-fund --save-exact \
      "deno@$DENO_VERSION" "bun@$BUN_VERSION" >/dev/null)
else
  step "deno $DENO_VERSION, bun $BUN_VERSION (npm)" "ok"
fi
step "tools" "$TOOLS/zig/bin, $TOOLS/js/node_modules/.bin"
