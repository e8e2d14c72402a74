//! The one error set of the C API and its mapping to libkrun's negative errno values. Every
//! rejection goes through `reject`, which writes the log line saying why, so no C call can
//! fail silently. `errno` is an exhaustive switch: a new error forces a decision here.
const std = @import("std");
const log = @import("../log.zig");

pub const Error = error{
    /// The ctx id was never created, was freed, or was consumed by krun_start_enter.
    UnknownContext,
    /// NULL, bad UTF-8, out of range, malformed.
    InvalidArgument,
    /// A host file or directory, a tag, or a parent overlay directory does not exist.
    NotFound,
    NotDirectory,
    AlreadyExists,
    /// The context's VM started (setters), or someone already waits on it.
    Busy,
    NoSpace,
    BadFd,
    NotSupported,
    OutOfMemory,
    /// /dev/kvm missing or unusable.
    NoDevice,
    /// Host resources (threads, fds, mappings) ran out.
    TryAgain,
    /// An unexpected KVM or host failure.
    Io,
    PermissionDenied,
    TimedOut,
};

const E = std.os.linux.E;

pub fn errno(err: Error) i32 {
    const e: E = switch (err) {
        error.UnknownContext => .NOENT,
        error.InvalidArgument => .INVAL,
        error.NotFound => .NOENT,
        error.NotDirectory => .NOTDIR,
        error.AlreadyExists => .EXIST,
        error.Busy => .BUSY,
        error.NoSpace => .NOSPC,
        error.BadFd => .BADF,
        error.NotSupported => .OPNOTSUPP,
        error.OutOfMemory => .NOMEM,
        error.NoDevice => .NODEV,
        error.TryAgain => .AGAIN,
        error.Io => .IO,
        error.PermissionDenied => .PERM,
        error.TimedOut => .TIMEDOUT,
    };
    return -@as(i32, @backingInt(e));
}

/// Logs "[zkrun] <func>: <why>" and returns `err`, for `return reject(...)`.
pub fn reject(func: []const u8, err: Error, comptime why: []const u8, args: anytype) Error {
    log.print(.err, func, why, args);
    return err;
}

/// The shim's tail: 0 on success, -errno on failure (the log line was written by `reject`).
pub fn result(outcome: Error!void) i32 {
    outcome catch |err| return errno(err);
    return 0;
}

test "errno values are libkrun's" {
    // ENOTSUP and EOPNOTSUPP are the same number on Linux.
    try std.testing.expectEqual(@as(i32, -95), errno(error.NotSupported));
    try std.testing.expectEqual(@as(i32, -2), errno(error.UnknownContext));
    try std.testing.expectEqual(@as(i32, -22), errno(error.InvalidArgument));
    try std.testing.expectEqual(@as(i32, -110), errno(error.TimedOut));
}
