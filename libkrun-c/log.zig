//! libkrun.so's logger: krun_set_log_level / krun_init_log semantics (level 0..5, target fd,
//! colour style, RUST_LOG / ZKRUN_LOG override) and the `std_options.logFn` that every
//! `std.log.scoped(...)` call in libkrun-c/ goes through. One line per message, written with a
//! single write(2) so lines from concurrent threads do not interleave. Nothing here allocates.
//! Default: errors only (a rejected C call says why), so success paths stay silent.
const std = @import("std");
const sys = @import("sys/linux.zig");
const assert = std.debug.assert;

/// libkrun's numeric levels (KRUN_LOG_LEVEL_*).
pub const Level = enum(u32) {
    off = 0,
    err = 1,
    warn = 2,
    info = 3,
    debug = 4,
    trace = 5,

    pub const max: u32 = 5;

    fn tag(level: Level) []const u8 {
        return switch (level) {
            .off => unreachable,
            .err => "error",
            .warn => "warn",
            .info => "info",
            .debug => "debug",
            .trace => "trace",
        };
    }

    fn colour(level: Level) []const u8 {
        return switch (level) {
            .off => unreachable,
            .err => "\x1b[31m",
            .warn => "\x1b[33m",
            .info => "\x1b[32m",
            .debug, .trace => "\x1b[2m",
        };
    }
};

pub const Style = enum(u32) { auto = 0, always = 1, never = 2 };

pub const option_no_env: u32 = 1;
pub const target_default: i32 = -1;
/// A log line longer than this is cut (and ends in "...").
pub const line_max = 1024;

const stderr_fd: i32 = 2;

/// Until krun_set_log_level / krun_init_log runs, the first message resolves the level from the
/// environment (RUST_LOG / ZKRUN_LOG), else errors only.
const level_unset: u32 = std.math.maxInt(u32);
var level_current: std.atomic.Value(u32) = .init(level_unset);
var target_fd: std.atomic.Value(i32) = .init(stderr_fd);
var colour_on: std.atomic.Value(bool) = .init(false);

pub const InitError = error{ BadTarget, BadLevel, BadStyle, BadOptions };

/// krun_set_log_level: the level, unless the environment overrides it.
pub fn setLevel(level: u32) error{BadLevel}!void {
    if (level > Level.max) return error.BadLevel;
    level_current.store(envLevel() orelse level, .release);
}

/// krun_init_log.
pub fn init(fd: i32, level: u32, style: u32, options: u32) InitError!void {
    if (fd == 0 or fd < target_default) return error.BadTarget;
    if (level > Level.max) return error.BadLevel;
    if (style > @backingInt(Style.never)) return error.BadStyle;
    if (options & ~option_no_env != 0) return error.BadOptions;
    const fd_real = if (fd == target_default) stderr_fd else fd;
    const colour = switch (@as(Style, @fromBackingInt(@intCast(style)))) {
        .always => true,
        .never => false,
        .auto => std.c.isatty(fd_real) == 1,
    };
    const env = if (options & option_no_env != 0) null else envLevel();
    target_fd.store(fd_real, .release);
    colour_on.store(colour, .release);
    level_current.store(env orelse level, .release);
}

pub fn enabled(level: Level) bool {
    assert(level != .off);
    return @backingInt(level) <= currentLevel();
}

fn currentLevel() u32 {
    const level = level_current.load(.acquire);
    if (level != level_unset) return level;
    const resolved = envLevel() orelse @backingInt(Level.err);
    // A concurrent krun_set_log_level wins over this default.
    _ = level_current.cmpxchgStrong(level_unset, resolved, .acq_rel, .acquire);
    return level_current.load(.acquire);
}

/// Writes "[zkrun] <prefix>: <message>" when `level` is enabled.
pub fn print(level: Level, prefix: []const u8, comptime fmt: []const u8, args: anytype) void {
    if (!enabled(level)) return;
    var buf: [line_max]u8 = undefined;
    // Room is kept for "...\n": a cut line is still more useful than none.
    var w: std.Io.Writer = .fixed(buf[0 .. line_max - 4]);
    const colour = colour_on.load(.acquire);
    const cut = blk: {
        if (colour) w.writeAll(level.colour()) catch break :blk true;
        w.writeAll("[zkrun]") catch break :blk true;
        if (colour) w.writeAll("\x1b[0m") catch break :blk true;
        if (level != .err) w.print(" {s}", .{level.tag()}) catch break :blk true;
        w.print(" {s}: ", .{prefix}) catch break :blk true;
        w.print(fmt, args) catch break :blk true;
        break :blk false;
    };
    var n = w.end;
    assert(n <= line_max - 4);
    if (cut) {
        @memcpy(buf[n..][0..3], "...");
        n += 3;
    }
    buf[n] = '\n';
    writeAll(target_fd.load(.acquire), buf[0 .. n + 1]);
}

/// The `logFn` of std_options (root.zig): std.log calls of every libkrun-c/ file land here.
pub fn stdLogFn(
    comptime message_level: std.log.Level,
    comptime scope: @EnumLiteral(),
    comptime format: []const u8,
    args: anytype,
) void {
    const level: Level = switch (message_level) {
        .err => .err,
        .warn => .warn,
        .info => .info,
        .debug => .debug,
    };
    if (level == .err or level == .warn) recordProblem(format, args);
    print(level, @tagName(scope), format, args);
}

/// The last warning or error std.log wrote on this thread, whatever the log level: the C API
/// adds it to krun_last_error's text when a VM cannot be built (capi/errors.zig).
threadlocal var problem_buf: [problem_max]u8 = undefined;
threadlocal var problem_len: usize = 0;
pub const problem_max = 256;

fn recordProblem(comptime format: []const u8, args: anytype) void {
    var w: std.Io.Writer = .fixed(&problem_buf);
    w.print(format, args) catch {}; // a cut text is still the reason
    problem_len = w.end;
}

/// The warning recorded since the last clearProblem() on this thread ("" if none).
pub fn lastProblem() []const u8 {
    return problem_buf[0..problem_len];
}

pub fn clearProblem() void {
    problem_len = 0;
}

fn writeAll(fd: i32, bytes: []const u8) void {
    var rest = bytes;
    var attempts: u32 = 0;
    while (rest.len > 0 and attempts < 16) : (attempts += 1) {
        if (@import("builtin").os.tag == .macos) {
            const n = std.c.write(fd, rest.ptr, rest.len);
            if (n >= 0) {
                rest = rest[@intCast(n)..];
                continue;
            }
            switch (std.c.errno(n)) {
                .INTR, .AGAIN => continue,
                else => return,
            }
        }
        const n = sys.write(fd, rest) catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            else => return, // a broken log target must never break the caller
        };
        rest = rest[n..];
    }
}

/// RUST_LOG (libkrun's override) or ZKRUN_LOG: a level name or digit. Only a plain level is
/// understood; env_logger's module filters ("krun=debug") are taken by their last level.
fn envLevel() ?u32 {
    inline for (.{ "ZKRUN_LOG", "RUST_LOG" }) |name| {
        if (std.c.getenv(name)) |value| {
            if (parseLevel(std.mem.span(value))) |level| return level;
        }
    }
    return null;
}

pub fn parseLevel(text: []const u8) ?u32 {
    const tail = if (std.mem.lastIndexOfScalar(u8, text, '=')) |i| text[i + 1 ..] else text;
    const names = [_][]const u8{ "off", "error", "warn", "info", "debug", "trace" };
    for (names, 0..) |name, i| {
        if (std.ascii.eqlIgnoreCase(tail, name)) return @intCast(i);
    }
    if (tail.len == 1 and tail[0] >= '0' and tail[0] <= '5') return tail[0] - '0';
    return null;
}

test "parseLevel takes names, digits and the last level of a filter" {
    try std.testing.expectEqual(@as(?u32, 4), parseLevel("debug"));
    try std.testing.expectEqual(@as(?u32, 0), parseLevel("OFF"));
    try std.testing.expectEqual(@as(?u32, 3), parseLevel("3"));
    try std.testing.expectEqual(@as(?u32, 5), parseLevel("krun=trace"));
    try std.testing.expectEqual(@as(?u32, null), parseLevel("loud"));
    try std.testing.expectEqual(@as(?u32, null), parseLevel("9"));
}

test "init rejects bad targets, levels, styles and options" {
    try std.testing.expectError(error.BadTarget, init(0, 1, 0, 0));
    try std.testing.expectError(error.BadTarget, init(-2, 1, 0, 0));
    try std.testing.expectError(error.BadLevel, init(-1, 6, 0, 0));
    try std.testing.expectError(error.BadStyle, init(-1, 1, 3, 0));
    try std.testing.expectError(error.BadOptions, init(-1, 1, 0, 2));
}

test "a line goes to the target fd, long lines are cut" {
    const fds = try sys.pipe2(.{ .CLOEXEC = true });
    defer sys.close(fds[0]);
    defer sys.close(fds[1]);
    try init(fds[1], @backingInt(Level.info), @backingInt(Style.never), option_no_env);
    defer init(target_default, @backingInt(Level.err), @backingInt(Style.never), option_no_env) catch unreachable;
    print(.err, "krun_x", "value {d} is bad", .{7});
    print(.debug, "krun_x", "hidden", .{});
    const long: [2000]u8 = @splat('a');
    print(.info, "krun_y", "{s}", .{&long});
    var buf: [4096]u8 = undefined;
    const n = try sys.read(fds[0], &buf);
    const text = buf[0..n];
    try std.testing.expect(std.mem.startsWith(u8, text, "[zkrun] krun_x: value 7 is bad\n[zkrun] info krun_y: aaa"));
    try std.testing.expect(std.mem.endsWith(u8, text, "a...\n"));
    try std.testing.expectEqual(@as(usize, 31 + line_max), text.len);
}
