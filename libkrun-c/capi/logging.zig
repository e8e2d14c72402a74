//! krun_set_log_level and krun_init_log: argument checks and log lines around log.zig; the
//! zkrun extension krun_last_error (errors.zig keeps the text).
const std = @import("std");
const log = @import("../log.zig");
const errors = @import("errors.zig");
const reject = errors.reject;

pub const krun_last_error = errors.krun_last_error;

pub fn krun_set_log_level(level: u32) callconv(.c) i32 {
    const func = "krun_set_log_level";
    log.setLevel(level) catch |err| switch (err) {
        error.BadLevel => return errors.errno(reject(func, error.InvalidArgument, "level {d} is out of range 0..{d}", .{ level, log.Level.max })),
    };
    return 0;
}

pub fn krun_init_log(target_fd: i32, level: u32, style: u32, options: u32) callconv(.c) i32 {
    const func = "krun_init_log";
    log.init(target_fd, level, style, options) catch |err| return errors.errno(switch (err) {
        error.BadTarget => reject(func, error.InvalidArgument, "target_fd {d} is invalid (-1 for stderr, or an fd above 0)", .{target_fd}),
        error.BadLevel => reject(func, error.InvalidArgument, "level {d} is out of range 0..{d}", .{ level, log.Level.max }),
        error.BadStyle => reject(func, error.InvalidArgument, "style {d} is out of range 0..2", .{style}),
        error.BadOptions => reject(func, error.InvalidArgument, "options 0x{x} has unknown bits (only KRUN_LOG_OPTION_NO_ENV)", .{options}),
    });
    return 0;
}

test "log setters reject bad values" {
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    try std.testing.expectEqual(@as(i32, -22), krun_set_log_level(6));
    try std.testing.expectEqual(@as(i32, -22), krun_init_log(0, 1, 0, 0));
    try std.testing.expectEqual(@as(i32, -22), krun_init_log(-1, 1, 0, 4));
}
