//! The virtio parts that compile for macOS today (Lock, rng, balloon, the MMIO transport, and the
//! virtio-fs device and server on virtio/fs/sys_posix.zig, its worker woken through a pipe
//! Notifier), gathered for tests/native/cross-macos.sh:
//! `zig build macos-devices` builds this file alone as an aarch64-macos object, and the script checks that no raw Linux syscall and no
//! Linux-only libc call is in it (the dylib cannot show that: no VMM attaches a virtio device on
//! macOS yet, so the optimizer drops them). Not part of the library; docs/HVF.md lists what
//! else blocks the devices.
const std = @import("std");
const virtio = @import("zkrun").virtio;
const VirtioFs = virtio.fs.VirtioFs;
const Device = virtio.Device;
const mmio = virtio.mmio;
const rng = virtio.rng;
const balloon = virtio.balloon;

/// Every function of the rng and balloon devices (their vtables) and of the MMIO transport
/// (register access, activation, reset) is reachable from here, so all of it is compiled.
export fn zkrun_macos_devices(r: *rng.Rng, b: *balloon.Balloon, out: *[2]Device, t: *mmio.Transport, offset: u64, data: [*]u8, len: usize) void {
    out[0] = r.device();
    out[1] = b.device();
    t.read(offset, data[0..len]);
    t.write(offset, data[0..len]);
    t.shutdown();
}

/// The virtio-fs device over `root` and everything it reaches: its vtable (activate starts the
/// worker, which serves the queues through the server), `runOnce`, `destroy`.
export fn zkrun_macos_virtio_fs(root: [*:0]const u8, out: *Device) ?*VirtioFs {
    const fs = VirtioFs.create(std.heap.c_allocator, .{ .tag = "/dev/root", .server = .{ .root = std.mem.span(root) } }) catch return null;
    out.* = fs.device();
    fs.runOnce();
    return fs;
}

export fn zkrun_macos_virtio_fs_destroy(fs: *VirtioFs) void {
    fs.destroy();
}
