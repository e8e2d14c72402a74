//! The workload setters: krun_set_exec, krun_set_env, krun_set_workdir, krun_set_rlimits. They
//! validate and copy everything first and only then assign, so a rejected call leaves the
//! context as it was. (The cmdline encoding is the VMM's; limits of the kernel command line
//! are checked there, when the whole line is known.)
const std = @import("std");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

/// RLIM_NLIMITS on Linux: resource ids are 0..15.
pub const rlimit_resources = 16;

pub fn krun_set_exec(ctx_id: u32, exec_path: cstr.CString, argv: cstr.CStringArray, envp: cstr.CStringArray) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setExec(ctx_id, exec_path, argv, envp));
}

fn setExec(ctx_id: u32, exec_path: cstr.CString, argv: cstr.CStringArray, envp: cstr.CStringArray) Error!void {
    const func = "krun_set_exec";
    const cfg = try contexts.config(func, ctx_id);
    const path = try cstr.required(func, "exec_path", exec_path, cstr.path_bytes_max);
    if (path.len == 0) return reject(func, error.InvalidArgument, "exec_path is empty", .{});
    const args = try cstr.array(func, "argv", cfg, argv) orelse &.{};
    const env = try envArray(func, cfg, envp);
    cfg.exec_path = try cstr.dupe(func, cfg, path);
    cfg.argv = args;
    cfg.envp = env;
    contexts.slotOf(cfg).env_from_host = env == null;
}

pub fn krun_set_env(ctx_id: u32, envp: cstr.CStringArray) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setEnv(ctx_id, envp));
}

fn setEnv(ctx_id: u32, envp: cstr.CStringArray) Error!void {
    const func = "krun_set_env";
    const cfg = try contexts.config(func, ctx_id);
    cfg.envp = try envArray(func, cfg, envp);
    contexts.slotOf(cfg).env_from_host = cfg.envp == null;
}

/// NULL stays null (the host environment, copied at start: Slot.env_from_host); entries must be
/// KEY=VALUE.
fn envArray(func: []const u8, cfg: *Config, envp: cstr.CStringArray) Error!?[]const []const u8 {
    const env = try cstr.array(func, "envp", cfg, envp) orelse return null;
    for (env, 0..) |entry, i| {
        const eq = std.mem.indexOfScalar(u8, entry, '=') orelse 0;
        if (eq == 0) return reject(func, error.InvalidArgument, "envp[{d}] \"{s}\" is not KEY=VALUE", .{ i, entry });
    }
    return env;
}

pub fn krun_set_workdir(ctx_id: u32, workdir_path: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setWorkdir(ctx_id, workdir_path));
}

fn setWorkdir(ctx_id: u32, workdir_path: cstr.CString) Error!void {
    const func = "krun_set_workdir";
    const cfg = try contexts.config(func, ctx_id);
    const path = try cstr.required(func, "workdir_path", workdir_path, cstr.path_bytes_max);
    if (path.len == 0) return reject(func, error.InvalidArgument, "workdir_path is empty", .{});
    cfg.workdir = try cstr.dupe(func, cfg, path);
}

pub fn krun_set_rlimits(ctx_id: u32, rlimits: cstr.CStringArray) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setRlimits(ctx_id, rlimits));
}

fn setRlimits(ctx_id: u32, rlimits: cstr.CStringArray) Error!void {
    const func = "krun_set_rlimits";
    const cfg = try contexts.config(func, ctx_id);
    const entries = try cstr.array(func, "rlimits", cfg, rlimits) orelse
        return reject(func, error.InvalidArgument, "rlimits is NULL", .{});
    for (entries, 0..) |entry, i| {
        _ = parseRlimit(entry) orelse return reject(func, error.InvalidArgument, "rlimits[{d}] \"{s}\" is not RESOURCE=CUR:MAX (numeric, resource < {d}, CUR <= MAX)", .{ i, entry, rlimit_resources });
    }
    cfg.rlimits = entries;
}

pub const Rlimit = struct { resource: u8, cur: u64, max: u64 };

pub fn parseRlimit(entry: []const u8) ?Rlimit {
    const eq = std.mem.indexOfScalar(u8, entry, '=') orelse return null;
    const colon = std.mem.indexOfScalarPos(u8, entry, eq, ':') orelse return null;
    const resource = std.fmt.parseUnsigned(u8, entry[0..eq], 10) catch return null;
    const cur = std.fmt.parseUnsigned(u64, entry[eq + 1 .. colon], 10) catch return null;
    const max = std.fmt.parseUnsigned(u64, entry[colon + 1 ..], 10) catch return null;
    if (resource >= rlimit_resources or cur > max) return null;
    return .{ .resource = resource, .cur = cur, .max = max };
}

test "parseRlimit" {
    try std.testing.expectEqual(Rlimit{ .resource = 6, .cur = 4096, .max = 8192 }, parseRlimit("6=4096:8192").?);
    try std.testing.expectEqual(@as(?Rlimit, null), parseRlimit("NPROC=1:2"));
    try std.testing.expectEqual(@as(?Rlimit, null), parseRlimit("16=1:2"));
    try std.testing.expectEqual(@as(?Rlimit, null), parseRlimit("6=9:2"));
    try std.testing.expectEqual(@as(?Rlimit, null), parseRlimit("6=1"));
}

test "exec and env are copied, NULL envp stays null, bad input leaves the config alone" {
    const tc = try @import("context.zig").TestContext.init();
    defer tc.deinit();
    const id = tc.id;
    var arg = "-c".*;
    const argv = [_]?[*:0]const u8{ &arg, "echo hi", null };
    const envp = [_]?[*:0]const u8{ "HOME=/root", null };
    try std.testing.expectEqual(@as(i32, 0), krun_set_exec(id, "/bin/sh", &argv, &envp));
    arg[0] = 'X';
    try std.testing.expectEqual(@as(i32, -22), krun_set_exec(id, null, &argv, &envp));
    const bad_env = [_]?[*:0]const u8{ "=x", null };
    try std.testing.expectEqual(@as(i32, -22), krun_set_env(id, &bad_env));
    try std.testing.expectEqual(@as(i32, -22), krun_set_rlimits(id, null));
    try std.testing.expectEqual(@as(i32, -22), krun_set_workdir(id, ""));
    {
        contexts.lock();
        defer contexts.unlock();
        const cfg = try contexts.config("t", id);
        try std.testing.expectEqualStrings("-c", cfg.argv[0]);
        try std.testing.expectEqualStrings("HOME=/root", cfg.envp.?[0]);
    }
    try std.testing.expectEqual(@as(i32, 0), krun_set_exec(id, "/bin/sh", null, null));
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config("t", id);
    try std.testing.expectEqual(@as(usize, 0), cfg.argv.len);
    try std.testing.expectEqual(@as(?[]const []const u8, null), cfg.envp);
}
