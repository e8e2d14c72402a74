//! libkrunfw.so.5: zkrun's guest kernel as data, behind libkrunfw's C ABI (libkrun.md §2.4, §6).
//! The bundle (kernelfw/bundler.zig's output for our vmlinux) is one exported, writable,
//! 64 KiB-aligned array: libkrun maps these very pages into the guest at `load_addr` and the
//! guest kernel writes to them, so the array must live in .data (private copy-on-write pages),
//! never in read-only memory. The library runs no kernel code.
const std = @import("std");
const meta = @import("kernel_meta");
const image = @embedFile("kernel_bundle");

/// libkrunfw's ABI version (soname libkrunfw.so.5); libkrun dlopens "libkrunfw.so.5".
pub const abi_version = 5;

comptime {
    std.debug.assert(image.len == meta.size);
    std.debug.assert(image.len > 0 and image.len % 4096 == 0);
    std.debug.assert(meta.load_addr % 4096 == 0);
    std.debug.assert(meta.entry >= meta.load_addr and meta.entry - meta.load_addr < image.len);
}

export var KERNEL_BUNDLE: [image.len]u8 align(64 * 1024) = image.*;

/// `char *krunfw_get_kernel(size_t *load_addr, size_t *entry_addr, size_t *size)`.
export fn krunfw_get_kernel(load_addr: *usize, entry_addr: *usize, size: *usize) callconv(.c) [*]u8 {
    load_addr.* = meta.load_addr;
    entry_addr.* = meta.entry;
    size.* = KERNEL_BUNDLE.len;
    return &KERNEL_BUNDLE;
}

/// `int krunfw_get_version(void)`.
export fn krunfw_get_version() callconv(.c) c_int {
    return abi_version;
}
