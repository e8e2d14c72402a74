//! The virtio-fs device and server as they compile for macOS (the server's host calls on
//! virtio/fs/sys_posix.zig, the worker's wake-up a pipe Notifier), gathered for
//! tests/native/cross-macos.sh, which builds this file alone as an aarch64-macos object and
//! checks that no raw Linux syscall and no Linux-only libc call is in it; beside
//! virtio/macos_devices.zig (the other devices), which cannot reach virtio/fs's imports of
//! Config.zig and vmm/Notifier.zig from its module root. Not part of the library: no VMM
//! attaches virtio-fs on macOS yet (docs/HVF.md).
const std = @import("std");
const Device = @import("virtio/Device.zig");
const VirtioFs = @import("virtio/fs/VirtioFs.zig");

/// The device over `root` and everything it reaches: its vtable (activate starts the worker,
/// which serves the queues through the server), `runOnce`, `destroy`.
export fn zkrun_macos_virtio_fs(root: [*:0]const u8, out: *Device) ?*VirtioFs {
    const fs = VirtioFs.create(std.heap.c_allocator, .{ .tag = "/dev/root", .server = .{ .root = std.mem.span(root) } }) catch return null;
    out.* = fs.device();
    fs.runOnce();
    return fs;
}

export fn zkrun_macos_virtio_fs_destroy(fs: *VirtioFs) void {
    fs.destroy();
}
