//! C strings and NULL-terminated string arrays in, validated Zig slices out, copied into the
//! context's Config arena (callers may free their buffers as soon as a call returns). Each
//! copy keeps a NUL after its last byte, so the VMM can hand Config paths to syscalls as-is.
const std = @import("std");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

/// No C string of the API is longer: the scan stops here instead of running on through
/// memory that lacks a NUL.
pub const string_bytes_max = 1 << 20;
/// PATH_MAX, including the NUL.
pub const path_bytes_max = 4096;

pub const CString = ?[*:0]const u8;
pub const CStringArray = ?[*]const ?[*:0]const u8;

/// A required string: not NULL, NUL within `bytes_max`, valid UTF-8.
pub fn required(func: []const u8, what: []const u8, ptr: CString, bytes_max: usize) Error![:0]const u8 {
    const p = ptr orelse return reject(func, error.InvalidArgument, "{s} is NULL", .{what});
    return check(func, what, p, bytes_max);
}

/// An optional string: NULL gives null, anything else is checked as `required`.
pub fn optional(func: []const u8, what: []const u8, ptr: CString, bytes_max: usize) Error!?[:0]const u8 {
    const p = ptr orelse return null;
    return try check(func, what, p, bytes_max);
}

fn check(func: []const u8, what: []const u8, p: [*:0]const u8, bytes_max: usize) Error![:0]const u8 {
    assert(bytes_max > 0 and bytes_max <= string_bytes_max); // tidy: our own limits
    var len: usize = 0;
    while (p[len] != 0) : (len += 1) {
        if (len == bytes_max) {
            return reject(func, error.InvalidArgument, "{s} is longer than {d} bytes", .{ what, bytes_max });
        }
    }
    const s = p[0..len :0];
    if (!std.unicode.utf8ValidateSlice(s)) {
        return reject(func, error.InvalidArgument, "{s} is not valid UTF-8", .{what});
    }
    return s;
}

/// Copies `s` (with a trailing NUL) into the context's arena.
pub fn dupe(func: []const u8, cfg: *Config, s: []const u8) Error![:0]const u8 {
    try room(func, cfg, s.len + 1);
    return cfg.allocator().dupeSentinel(u8, s, 0) catch
        reject(func, error.OutOfMemory, "out of memory copying {d} bytes", .{s.len});
}

/// Config.arena_bytes_max: the context may take `bytes` more.
pub fn room(func: []const u8, cfg: *Config, bytes: usize) Error!void {
    const used = cfg.arena.queryCapacity();
    if (bytes > Config.arena_bytes_max or used > Config.arena_bytes_max - bytes) {
        return reject(func, error.OutOfMemory, "the context holds {d} bytes of configuration, {d} at most (setters called in a loop?)", .{ used, Config.arena_bytes_max });
    }
}

/// `required` + `dupe`.
pub fn copy(func: []const u8, what: []const u8, cfg: *Config, ptr: CString, bytes_max: usize) Error![:0]const u8 {
    return dupe(func, cfg, try required(func, what, ptr, bytes_max));
}

/// A NULL-terminated array of strings, copied: NULL gives null; more than Config.args_max
/// entries, a bad entry or no memory is an error. Nothing is kept on error.
pub fn array(func: []const u8, what: []const u8, cfg: *Config, ptr: CStringArray) Error!?[]const []const u8 {
    const entries = ptr orelse return null;
    var count: usize = 0;
    while (entries[count]) |entry| : (count += 1) {
        if (count == Config.args_max) {
            return reject(func, error.InvalidArgument, "{s} has more than {d} entries (no NULL terminator?)", .{ what, Config.args_max });
        }
        var name_buf: [64]u8 = undefined;
        const name = std.fmt.bufPrint(&name_buf, "{s}[{d}]", .{ what, count }) catch what;
        _ = try check(func, name, entry, string_bytes_max);
    }
    try room(func, cfg, count * @sizeOf([]const u8));
    const out = cfg.allocator().alloc([]const u8, count) catch
        return reject(func, error.OutOfMemory, "out of memory copying {s}", .{what});
    for (out, 0..) |*slot, i| slot.* = try dupe(func, cfg, std.mem.span(entries[i].?));
    return out;
}

test "required rejects NULL, bad UTF-8 and overlong strings; array copies" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;

    try std.testing.expectError(error.InvalidArgument, required("f", "x", null, 16));
    try std.testing.expectError(error.InvalidArgument, required("f", "x", "\xff\xfe", 16));
    try std.testing.expectError(error.InvalidArgument, required("f", "x", "0123456789", 4));
    try std.testing.expectEqualStrings("ok", try required("f", "x", "ok", 16));
    try std.testing.expectEqual(@as(?[:0]const u8, null), try optional("f", "x", null, 16));

    var cfg = Config.init(std.testing.allocator);
    defer cfg.deinit();
    var a = "A=1".*;
    const list = [_]?[*:0]const u8{ &a, "B=2", null };
    const copied = (try array("f", "envp", &cfg, &list)).?;
    a[0] = 'X';
    try std.testing.expectEqual(@as(usize, 2), copied.len);
    try std.testing.expectEqualStrings("A=1", copied[0]);
    const bad = [_]?[*:0]const u8{ "ok", "\xc3", null };
    try std.testing.expectError(error.InvalidArgument, array("f", "envp", &cfg, &bad));
    try std.testing.expectEqual(@as(?[]const []const u8, null), try array("f", "envp", &cfg, null));
}
