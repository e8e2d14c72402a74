//! File descriptor calls shared by the VMM and the devices (Linux raw syscalls, libSystem on
//! macOS): below both, so the console and the output sinks do not each keep a copy.
const std = @import("std");
const linux = std.os.linux;

const is_macos = @import("builtin").os.tag == .macos;

/// A close-on-exec duplicate of `fd`, numbered 3 or above (never one of the stdio numbers).
pub fn dupCloexec(fd: i32) error{SystemResources}!i32 {
    if (comptime is_macos) {
        const rc = std.c.fcntl(fd, std.c.F.DUPFD_CLOEXEC, @as(c_int, 3));
        return if (rc < 0) error.SystemResources else rc;
    }
    const rc = linux.fcntl(fd, linux.F.DUPFD_CLOEXEC, 3);
    if (linux.errno(rc) != .SUCCESS) return error.SystemResources;
    return @intCast(rc);
}

/// Closes `fd`; the result is dropped (nothing to retry: the fd is gone either way).
pub fn close(fd: i32) void {
    if (comptime is_macos) _ = std.c.close(fd) else _ = linux.close(fd);
}
