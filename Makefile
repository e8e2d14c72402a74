# zkrun — the two commands of the README are the contract: `make demo` and `make test`.
# Every target installs what is missing first (scripts/setup.sh is idempotent and fast).
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/zig/bin:$(CURDIR)/.tools/js/node_modules/.bin:$(PATH)
ZIG ?= zig
# The kernel lives in a cache outside the repo, keyed by a hash of its inputs.
KERNEL = $(shell kernelfw/build-kernel.sh --print-path)
KERNEL_AARCH64 = $(shell kernelfw/build-kernel.sh --arch aarch64 --print-path)

.PHONY: all setup kernel kernel-aarch64 build test demo bench fmt clean
all: build

setup:
	@scripts/setup.sh

kernel: setup
	@kernelfw/build-kernel.sh

# The aarch64 guest kernel (cross-built, cached like the x86_64 one; ~25+ min cold on 2 cores)
# and zig-out/aarch64-linux/lib/libkrunfw.so.5 bundling it. Not part of `make build`.
kernel-aarch64: kernel
	@kernelfw/build-kernel.sh --arch aarch64
	@$(ZIG) build -Dkernel=$(KERNEL) -Dkernel-aarch64=$(KERNEL_AARCH64) --summary none

build: kernel
	@$(ZIG) build -Dkernel=$(KERNEL) --summary none
	@echo "build: zig-out/lib/libkrun.so.1, zig-out/lib/libkrunfw.so.5"

test: build
	@tests/run.sh

demo: build
	@scripts/demo.sh

bench: build
	@tests/bench/run.sh

fmt: setup
	@$(ZIG) fmt build.zig libkrun-c kernelfw tests examples

clean:
	rm -rf zig-out .zig-cache
