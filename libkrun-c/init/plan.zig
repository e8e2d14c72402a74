//! What init will run: merges the kernel's argv/envp, our `/.zkrun_config.json` (when the cmdline
//! points at it) and libkrun's config document (`KRUN_CONFIG` or `/.krun_config.json`) into one
//! plan, with libkrun's precedence (libkrun.md §3.3 step 7–8):
//! - argv: `KRUN_INIT` + args; else the document's argv (OCI `process.args`, or
//!   `Entrypoint ++ Cmd`); else `/bin/sh` + args.
//! - env: the explicit env (cmdline tokens or our JSON, later duplicates win) beats the
//!   document's env, except HOME and TERM, which the document may override (the kernel always
//!   presets `HOME=/` and `TERM=linux`); `KRUN_HOME`/`KRUN_TERM` override both.
//! - workdir: `KRUN_WORKDIR` beats the document's.
//! - hostname: `HOSTNAME` from the final env, else `localhost`.
//! - user: `KRUN_USER=uid:gid` (a zkrun extension), else root.
//! - mounts: `KRUN_MOUNTS=tag:/path[:ro],…` (a zkrun extension), else none.
//! Pure logic over an injected file reader, so unit tests drive it without a guest.
const std = @import("std");
const protocol = @import("init_protocol");
const assert = std.debug.assert;
const Allocator = std.mem.Allocator;

pub const default_argv0 = "/bin/sh";
pub const default_hostname = "localhost";

pub const Plan = struct {
    /// argv[0] is the program (a path, or a name looked up in PATH).
    argv: []const []const u8,
    env: []const []const u8,
    workdir: ?[]const u8,
    rlimits: []const protocol.Rlimit,
    hostname: []const u8,
    /// Exec the workload as PID 1 (KRUN_INIT_PID1) instead of forking it.
    init_pid1: bool,
    /// Run the workload as this uid:gid (KRUN_USER); null: as root.
    user: ?protocol.User = null,
    /// Extra virtio-fs shares to mount before the workload starts (KRUN_MOUNTS).
    mounts: []const protocol.Mount = &.{},
};

pub const Error = protocol.DecodeError || error{
    /// `KRUN_CONFIG` names a file that does not exist.
    ConfigMissing,
    /// A config file exists but cannot be read.
    ConfigUnreadable,
    /// Our JSON names another zkrun-format document (only one level is allowed).
    ConfigNested,
};

/// Builds the plan. `files.read(arena, path)` returns the file's bytes, null when it does not
/// exist, or error.ConfigUnreadable / error.TooLarge.
pub fn resolve(
    arena: Allocator,
    kernel_args: []const []const u8,
    kernel_env: []const []const u8,
    files: anytype,
) Error!Plan {
    var boot = try protocol.decodeBoot(arena, kernel_args, kernel_env);
    var image: protocol.Image = .{};
    if (boot.config_path) |path| {
        const first = try load(arena, files, path, true);
        switch (first.?) {
            .zkrun => |exec| {
                boot = try fromZkrun(arena, kernel_env, exec);
                if (try loadImage(arena, files, boot.config_path)) |found| image = found;
            },
            .image => |found| image = found,
        }
    } else if (try loadImage(arena, files, null)) |found| image = found;
    return merge(arena, boot, image);
}

fn load(arena: Allocator, files: anytype, path: []const u8, required: bool) Error!?protocol.Document {
    const bytes = try files.read(arena, path) orelse {
        if (required) return error.ConfigMissing;
        return null;
    };
    return try protocol.decodeDocument(arena, bytes);
}

/// libkrun's document: `KRUN_CONFIG` (must exist) or `/.krun_config.json` (optional; as with
/// libkrun's init, one that cannot be read counts as absent: crun 1.8.1 writes it mode 0700 for
/// root, then runs the VMM as the OCI process user, whose virtio-fs cannot open it).
fn loadImage(arena: Allocator, files: anytype, named: ?[]const u8) Error!?protocol.Image {
    const path = named orelse protocol.default_config_path;
    const loaded = load(arena, files, path, named != null) catch |err| switch (err) {
        error.ConfigUnreadable => if (named == null) return null else return err,
        else => return err,
    };
    const doc = loaded orelse return null;
    return switch (doc) {
        .zkrun => error.ConfigNested,
        .image => |image| image,
    };
}

/// Our JSON stands for the cmdline tokens: the kernel's env (HOME/TERM presets, minus the
/// KRUN_CONFIG that pointed here) followed by the document's env, decoded the same way.
fn fromZkrun(arena: Allocator, kernel_env: []const []const u8, exec: protocol.ExecConfig) Error!protocol.Boot {
    var env: std.ArrayList([]const u8) = .empty;
    for (kernel_env) |entry| {
        if (std.mem.startsWith(u8, entry, "KRUN_CONFIG=")) continue;
        try env.append(arena, entry);
    }
    if (env.items.len + exec.env.len > protocol.env_max) return error.TooLarge;
    try env.appendSlice(arena, exec.env);
    var boot = try protocol.decodeBoot(arena, exec.args, env.items);
    if (exec.exec_path) |path| boot.exec_path = path;
    if (exec.workdir) |dir| boot.workdir = dir;
    if (exec.rlimits.len > 0) {
        const rlimits = try arena.alloc(protocol.Rlimit, exec.rlimits.len);
        for (exec.rlimits, rlimits) |text, *r| r.* = try protocol.parseRlimit(text);
        boot.rlimits = rlimits;
    }
    return boot;
}

fn merge(arena: Allocator, boot: protocol.Boot, image: protocol.Image) Error!Plan {
    var env: Env = .{};
    for (boot.env) |entry| try env.set(arena, entry, .replace);
    for (image.env) |entry| {
        const key = Env.key(entry) orelse continue;
        const home_or_term = std.mem.eql(u8, key, "HOME") or std.mem.eql(u8, key, "TERM");
        try env.set(arena, entry, if (home_or_term) .replace else .keep);
    }
    if (boot.home) |home| try env.set(arena, try std.fmt.allocPrint(arena, "HOME={s}", .{home}), .replace);
    if (boot.term) |term| try env.set(arena, try std.fmt.allocPrint(arena, "TERM={s}", .{term}), .replace);

    const argv = if (boot.exec_path) |path|
        try prepend(arena, path, boot.args)
    else if (image.argv.len > 0)
        image.argv
    else
        try prepend(arena, default_argv0, boot.args);
    if (argv.len > protocol.args_max) return error.TooLarge;
    assert(argv.len >= 1);
    return .{
        .argv = argv,
        .env = env.list.items,
        .workdir = boot.workdir orelse image.workdir,
        .rlimits = boot.rlimits,
        .hostname = env.get("HOSTNAME") orelse default_hostname,
        .init_pid1 = boot.init_pid1,
        .user = boot.user,
        .mounts = boot.mounts,
    };
}

fn prepend(arena: Allocator, first: []const u8, rest: []const []const u8) Error![]const []const u8 {
    const out = try arena.alloc([]const u8, rest.len + 1);
    out[0] = first;
    @memcpy(out[1..], rest);
    return out;
}

/// An ordered environment with unique keys (n ≤ env_max; linear lookups are fine at that size).
const Env = struct {
    list: std.ArrayList([]const u8) = .empty,

    fn key(entry: []const u8) ?[]const u8 {
        const eq = std.mem.indexOfScalar(u8, entry, '=') orelse return null;
        return if (eq == 0) null else entry[0..eq];
    }

    fn find(env: *const Env, k: []const u8) ?usize {
        for (env.list.items, 0..) |entry, i| {
            if (std.mem.eql(u8, key(entry).?, k)) return i;
        }
        return null;
    }

    fn get(env: *const Env, k: []const u8) ?[]const u8 {
        const i = env.find(k) orelse return null;
        return env.list.items[i][k.len + 1 ..];
    }

    fn set(env: *Env, arena: Allocator, entry: []const u8, mode: enum { replace, keep }) Error!void {
        const k = key(entry) orelse return;
        if (env.find(k)) |i| {
            if (mode == .replace) env.list.items[i] = entry;
            return;
        }
        if (env.list.items.len == protocol.env_max) return error.TooLarge;
        try env.list.append(arena, entry);
    }
};

// ---- tests ------------------------------------------------------------------------------------

const testing = std.testing;

/// In-memory files for tests: path → contents.
const TestFiles = struct {
    entries: []const struct { []const u8, []const u8 } = &.{},
    /// A path that exists but cannot be read.
    unreadable: ?[]const u8 = null,

    pub fn read(files: TestFiles, arena: Allocator, path: []const u8) Error!?[]const u8 {
        if (files.unreadable) |u| if (std.mem.eql(u8, u, path)) return error.ConfigUnreadable;
        for (files.entries) |entry| {
            if (std.mem.eql(u8, entry[0], path)) return try arena.dupe(u8, entry[1]);
        }
        return null;
    }
};

fn expectList(want: []const []const u8, got: []const []const u8) !void {
    try testing.expectEqual(want.len, got.len);
    for (want, got) |w, g| try testing.expectEqualStrings(w, g);
}

test "no config at all: /bin/sh with the kernel's args and env" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const plan = try resolve(arena_state.allocator(), &.{ "-c", "echo hi" }, &.{ "HOME=/", "TERM=linux" }, TestFiles{});
    try expectList(&.{ "/bin/sh", "-c", "echo hi" }, plan.argv);
    try expectList(&.{ "HOME=/", "TERM=linux" }, plan.env);
    try testing.expectEqualStrings("localhost", plan.hostname);
    try testing.expect(plan.workdir == null and !plan.init_pid1);
}

test "cmdline KRUN_INIT/KRUN_WORKDIR beat /.krun_config.json; its env fills gaps" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const files: TestFiles = .{ .entries = &.{.{
        protocol.default_config_path,
        \\{"process":{"args":["/image/cmd"],"env":["PATH=/img/bin","FOO=image","HOME=/home/img","HOSTNAME=box"],"cwd":"/img"}}
    }} };
    const plan = try resolve(arena_state.allocator(), &.{"x"}, &.{
        "HOME=/", "TERM=linux", "FOO=explicit", "KRUN_INIT=/bin/echo", "KRUN_WORKDIR=/w", "KRUN_TERM=vt100",
    }, files);
    try expectList(&.{ "/bin/echo", "x" }, plan.argv);
    try expectList(&.{ "HOME=/home/img", "TERM=vt100", "FOO=explicit", "PATH=/img/bin", "HOSTNAME=box" }, plan.env);
    try testing.expectEqualStrings("/w", plan.workdir.?);
    try testing.expectEqualStrings("box", plan.hostname);
}

test "an unreadable /.krun_config.json counts as absent; an unreadable KRUN_CONFIG is an error" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    const plan = try resolve(arena, &.{"a"}, &.{ "HOME=/", "KRUN_INIT=/bin/echo" }, TestFiles{ .unreadable = protocol.default_config_path });
    try expectList(&.{ "/bin/echo", "a" }, plan.argv);
    try testing.expectError(error.ConfigUnreadable, resolve(arena, &.{}, &.{"KRUN_CONFIG=/c.json"}, TestFiles{ .unreadable = "/c.json" }));
}

test "crun: only the OCI document says what to run" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const files: TestFiles = .{ .entries = &.{.{
        protocol.default_config_path,
        \\{"ociVersion":"1.2.0","process":{"args":["sh","-c","id"],"env":["PATH=/bin"],"cwd":"/"}}
    }} };
    const plan = try resolve(arena_state.allocator(), &.{}, &.{ "HOME=/", "TERM=linux" }, files);
    try expectList(&.{ "sh", "-c", "id" }, plan.argv);
    try testing.expectEqualStrings("/", plan.workdir.?);
}

test "our JSON carries the whole exec config and may chain to a KRUN_CONFIG document (muvm)" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    var encoded = try protocol.encode(testing.allocator, .{
        .workdir = "/home/me/dir with spaces",
        .env = &.{ "KRUN_CONFIG=/tmp/muvm.json", "X=\"q\"", "KRUN_INIT_PID1=1" },
        .rlimits = &.{"7=64:128"},
    });
    defer encoded.deinit(testing.allocator);
    try testing.expectEqualStrings("KRUN_CONFIG=" ++ protocol.config_path, encoded.cmdline_tokens);
    const files: TestFiles = .{ .entries = &.{
        .{ protocol.config_path, encoded.config_json.? },
        .{ "/tmp/muvm.json", "{\"Config\":{\"Cmd\":[\"/usr/bin/muvm-guest\",\"cfg\"],\"Env\":[\"M=1\"]}}" },
        .{ protocol.default_config_path, "{\"Cmd\":[\"/not/this\"]}" },
    } };
    const plan = try resolve(arena, &.{}, &.{ "HOME=/", "TERM=linux", encoded.cmdline_tokens }, files);
    try expectList(&.{ "/usr/bin/muvm-guest", "cfg" }, plan.argv);
    try expectList(&.{ "HOME=/", "TERM=linux", "X=\"q\"", "M=1" }, plan.env);
    try testing.expectEqualStrings("/home/me/dir with spaces", plan.workdir.?);
    try testing.expectEqual(@as(usize, 1), plan.rlimits.len);
    try testing.expect(plan.init_pid1);
}

test "config errors: missing KRUN_CONFIG file, malformed document, nested zkrun documents" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    try testing.expectError(error.ConfigMissing, resolve(arena, &.{}, &.{"KRUN_CONFIG=/nope.json"}, TestFiles{}));
    const bad: TestFiles = .{ .entries = &.{.{ protocol.default_config_path, "{\"Cmd\":[" }} };
    try testing.expectError(error.ConfigSyntax, resolve(arena, &.{}, &.{}, bad));
    const nested: TestFiles = .{ .entries = &.{
        .{ "/a.json", "{\"zkrun\":1,\"env\":[\"KRUN_CONFIG=/b.json\"]}" },
        .{ "/b.json", "{\"zkrun\":1}" },
    } };
    try testing.expectError(error.ConfigNested, resolve(arena, &.{}, &.{"KRUN_CONFIG=/a.json"}, nested));
}

test "duplicate env keys: the later explicit entry wins, image entries never replace them" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const files: TestFiles = .{ .entries = &.{.{ protocol.default_config_path, "{\"Env\":[\"A=img\",\"B=img\"]}" }} };
    const plan = try resolve(arena_state.allocator(), &.{}, &.{ "A=1", "A=2" }, files);
    try expectList(&.{ "A=2", "B=img" }, plan.env);
    try expectList(&.{"/bin/sh"}, plan.argv);
}
