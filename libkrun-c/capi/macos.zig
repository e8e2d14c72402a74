//! The C functions a macOS build answers with -ENOTSUP (and the reason, on the log and in
//! krun_last_error) instead of running their Linux implementation: root.zig exports a stub
//! under each name when the target is macOS. Each needs a host facility zkrun has only on Linux
//! so far (raw Linux syscalls, io_uring, /proc). docs/HVF.md lists the same set.
const std = @import("std");
const errors = @import("errors.zig");

pub const Unsupported = struct { name: []const u8, why: []const u8 };

pub const unsupported = [_]Unsupported{
    .{ .name = "krun_add_disk", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_add_disk2", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_add_disk3", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_set_root_disk", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_set_data_disk", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_set_root_disk_remount", .why = "virtio-blk (io_uring, Linux file syscalls) is not ported to macOS" },
    .{ .name = "krun_add_vsock_port", .why = "vsock and TSI (Linux sockets, epoll) are not ported to macOS" },
    .{ .name = "krun_add_vsock_port2", .why = "vsock and TSI (Linux sockets, epoll) are not ported to macOS" },
    .{ .name = "krun_set_port_map", .why = "vsock and TSI (Linux sockets, epoll) are not ported to macOS" },
    .{ .name = "krun_add_net_tap", .why = "tap devices are Linux-only" },
    .{ .name = "krun_get_shutdown_eventfd", .why = "eventfd is Linux-only" },
    .{ .name = "krun_check_nested_virt", .why = "nested virtualization is a KVM feature" },
};

pub fn isUnsupported(comptime name: []const u8) bool {
    for (unsupported) |u| if (std.mem.eql(u8, u.name, name)) return true;
    return false;
}

fn why(comptime name: []const u8) []const u8 {
    for (unsupported) |u| if (std.mem.eql(u8, u.name, name)) return u.why;
    @compileError(name ++ " is not in capi/macos.zig's list");
}

/// A C function that ignores its arguments and returns -ENOTSUP: every `krun_*` returns an
/// int32_t, and AAPCS64 lets a callee ignore arguments (the caller owns their registers and
/// stack), so this stands in for any of them.
pub fn Stub(comptime name: []const u8) type {
    return struct {
        pub fn call() callconv(.c) i32 {
            return errors.errno(errors.reject(name, error.NotSupported, "{s} on macOS (docs/HVF.md)", .{comptime why(name)}));
        }
    };
}

test "every name listed is a C API function" {
    const main = @import("main.zig");
    inline for (unsupported) |u| {
        comptime var found = false;
        inline for (main.areas) |area| {
            if (@hasDecl(area, u.name)) found = true;
        }
        try std.testing.expect(found);
    }
}
