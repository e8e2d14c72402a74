//! What the static test guests share (no libc, no allocation, raw Linux syscalls): the named
//! module `guest_raw` that build.zig gives every program of `zig build test-guests`
//! (tests/vm/boot/test_init.zig, tests/native/kernelfw/boot_init.zig use it).
const std = @import("std");
const linux = std.os.linux;

/// Reads a small file into `buf`; returns the bytes read: empty when it cannot be opened, what
/// came before a failed read, at most `buf.len`.
pub fn readFile(path: [*:0]const u8, buf: []u8) []const u8 {
    const rc = linux.open(path, .{ .ACCMODE = .RDONLY }, 0);
    if (linux.errno(rc) != .SUCCESS) return buf[0..0];
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var n: usize = 0;
    while (n < buf.len) {
        const r = linux.read(fd, buf[n..].ptr, buf.len - n);
        if (linux.errno(r) != .SUCCESS or r == 0) break;
        n += r;
    }
    return buf[0..n];
}
