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
    /// A directory where a file was expected (a disk image).
    IsDirectory,
    /// Writing was asked of something served read-only.
    ReadOnly,
    /// A terminal operation on a console that has no terminal.
    NotTerminal,
    /// A host port that something on the host already listens on (krun_set_port_map).
    AddressInUse,
    /// A host port this process may not bind (below 1024 without CAP_NET_BIND_SERVICE).
    AccessDenied,
};

/// The host's errno numbers: macOS numbers some differently (EAGAIN 35, ENOTSUP 45).
const E = if (is_macos) std.c.E else std.os.linux.E;
const is_macos = @import("builtin").os.tag == .macos;

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
        // libkrun's -ENOTSUP: Linux 95, macOS 45 (Zig's darwin.E names that one OPNOTSUPP).
        error.NotSupported => .OPNOTSUPP,
        error.OutOfMemory => .NOMEM,
        error.NoDevice => .NODEV,
        error.TryAgain => .AGAIN,
        error.Io => .IO,
        error.PermissionDenied => .PERM,
        error.TimedOut => .TIMEDOUT,
        error.IsDirectory => .ISDIR,
        error.ReadOnly => .ROFS,
        error.NotTerminal => .NOTTY,
        error.AddressInUse => .ADDRINUSE,
        error.AccessDenied => .ACCES,
    };
    return -@as(i32, @backingInt(e));
}

/// Logs "[zkrun] <func>: <why>", keeps "<func>: <why>" as this thread's krun_last_error text,
/// and returns `err`, for `return reject(...)`.
pub fn reject(func: []const u8, err: Error, comptime why: []const u8, args: anytype) Error {
    log.print(.err, func, why, args);
    var w: std.Io.Writer = .fixed(&last_error_buf);
    w.print("{s}: " ++ why, .{func} ++ args) catch {}; // a cut reason is still a reason
    last_error_len = w.end;
    return err;
}

/// The text of this thread's last failed call: per thread, so concurrent callers never see
/// each other's reasons. Kept until the next failure on the thread (success leaves it).
threadlocal var last_error_buf: [last_error_max]u8 = undefined;
threadlocal var last_error_len: usize = 0;
pub const last_error_max = 512;

pub fn lastError() []const u8 {
    return last_error_buf[0..last_error_len];
}

/// krun_last_error: copies the text, NUL-terminated and cut to `size`, as snprintf does, and
/// returns its full length (0: no call failed on this thread yet).
pub fn krun_last_error(buf: ?[*]u8, size: usize) callconv(.c) i32 {
    const text = lastError();
    if (buf) |out| if (size > 0) {
        const n = @min(text.len, size - 1);
        @memcpy(out[0..n], text[0..n]);
        out[n] = 0;
    };
    return @intCast(text.len);
}

/// The shim's tail: 0 on success, -errno on failure (the log line was written by `reject`).
pub fn result(outcome: Error!void) i32 {
    outcome catch |err| return errno(err);
    return 0;
}

test "krun_last_error copies this thread's last reason, cut as snprintf" {
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    try std.testing.expectEqual(error.InvalidArgument, reject("krun_test", error.InvalidArgument, "value {d} is out of range", .{7}));
    var buf: [64]u8 = undefined;
    const want = "krun_test: value 7 is out of range";
    try std.testing.expectEqual(@as(i32, want.len), krun_last_error(&buf, buf.len));
    try std.testing.expectEqualStrings(want, std.mem.sliceTo(&buf, 0));
    try std.testing.expectEqual(@as(i32, want.len), krun_last_error(&buf, 5));
    try std.testing.expectEqualStrings("krun", std.mem.sliceTo(&buf, 0));
    try std.testing.expectEqual(@as(i32, want.len), krun_last_error(null, 0));
    // Another thread has its own (empty) text.
    const T = struct {
        fn run(out: *i32) void {
            out.* = krun_last_error(null, 0);
        }
    };
    var other: i32 = -1;
    const t = try std.Thread.spawn(.{}, T.run, .{&other});
    t.join();
    try std.testing.expectEqual(@as(i32, 0), other);
}

test "errno values are libkrun's" {
    // ENOTSUP and EOPNOTSUPP are the same number on Linux.
    try std.testing.expectEqual(@as(i32, -95), errno(error.NotSupported));
    try std.testing.expectEqual(@as(i32, -2), errno(error.UnknownContext));
    try std.testing.expectEqual(@as(i32, -22), errno(error.InvalidArgument));
    try std.testing.expectEqual(@as(i32, -110), errno(error.TimedOut));
}
