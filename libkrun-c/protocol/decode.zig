//! The exec-config protocol's init side (re-exported by init.zig, which owns the format and the
//! encoder): the kernel's argv/envp (`decodeBoot`: `KRUN_*` keys configure init and are removed
//! from the workload's env) and config documents (`decodeDocument`: our own `{"zkrun":1,…}`,
//! crun's OCI config.json, flat Entrypoint/Cmd/Env/WorkingDir keys), through std.json. Every
//! input is bounded; malformed input is an error, never a crash.
const std = @import("std");
const Allocator = std.mem.Allocator;
const init = @import("init.zig");
const ExecConfig = init.ExecConfig;
const Rlimit = init.Rlimit;
const parseRlimit = init.parseRlimit;
const args_max = init.args_max;
const env_max = init.env_max;
const rlimits_max = init.rlimits_max;
const string_max = init.string_max;
const config_size_max = init.config_size_max;
const json_depth_max = init.json_depth_max;
const config_path = init.config_path;
const default_config_path = init.default_config_path;
// ---- init side: the kernel's argv/envp --------------------------------------------------------

pub const DecodeError = error{
    /// The config document is not valid JSON (or has trailing bytes).
    ConfigSyntax,
    /// JSON nested deeper than `json_depth_max`.
    ConfigTooDeep,
    /// A known key has a value of the wrong type.
    ConfigType,
    /// A string we would use holds a NUL byte (it cannot reach execve).
    ConfigString,
    /// More entries or bytes than the limits allow.
    TooLarge,
    InvalidRlimit,
    /// KRUN_USER is not "uid:gid" in decimal.
    InvalidUser,
    /// A KRUN_MOUNTS entry is not "tag:/path" or "tag:/path:ro".
    InvalidMount,
    OutOfMemory,
};

/// What the kernel handed to init (cmdline channel), or what our JSON file carried.
/// Slices point into the inputs or into the allocator passed to the decoder.
pub const Boot = struct {
    /// KRUN_INIT.
    exec_path: ?[]const u8 = null,
    /// argv[1..].
    args: []const []const u8 = &.{},
    /// The workload's environment: every entry but KRUN_* (HOME/TERM from the kernel included).
    env: []const []const u8 = &.{},
    /// KRUN_WORKDIR.
    workdir: ?[]const u8 = null,
    rlimits: []const Rlimit = &.{},
    /// KRUN_CONFIG: the config document to read instead of `default_config_path`.
    config_path: ?[]const u8 = null,
    /// KRUN_HOME / KRUN_TERM: override HOME / TERM.
    home: ?[]const u8 = null,
    term: ?[]const u8 = null,
    /// KRUN_INIT_PID1=1…: exec the workload as PID 1 instead of forking.
    init_pid1: bool = false,
    /// KRUN_USER=uid:gid (zkrun's own key, e.g. an image's User as the zkrun CLI resolves it):
    /// the workload runs with these ids and no supplementary groups; null: as root.
    user: ?User = null,
    /// KRUN_MOUNTS=tag:/path[:ro],… (zkrun's own key): virtio-fs shares (krun_add_virtiofs*)
    /// that init mounts at these guest paths before the workload starts (the zkrun CLI's -v).
    mounts: []const Mount = &.{},
};

pub const User = struct { uid: u32, gid: u32 };

/// One extra virtio-fs share to mount: its tag, an absolute guest path, read-only or not.
pub const Mount = struct { tag: []const u8, path: []const u8, read_only: bool };
/// Most KRUN_MOUNTS entries (a VM has fewer virtio slots than this anyway).
pub const mounts_max = 16;
/// libkrun's limit on a virtio-fs tag.
pub const mount_tag_max = 36;

/// `tag:/path[:ro]` entries separated by commas. A tag has no ':'; a path is absolute, without
/// ',' or ':' and without "." or ".." components.
pub fn decodeMounts(gpa: Allocator, value: []const u8) DecodeError![]const Mount {
    if (value.len == 0) return &.{};
    var list: std.ArrayList(Mount) = .empty;
    errdefer list.deinit(gpa);
    var it = std.mem.splitScalar(u8, value, ',');
    while (it.next()) |entry| {
        if (list.items.len == mounts_max) return error.TooLarge;
        var parts = std.mem.splitScalar(u8, entry, ':');
        const tag = parts.next().?;
        const path = parts.next() orelse return error.InvalidMount;
        const flag = parts.next();
        if (parts.next() != null) return error.InvalidMount;
        const read_only = if (flag) |f| std.mem.eql(u8, f, "ro") else false;
        if (flag != null and !read_only) return error.InvalidMount;
        if (tag.len == 0 or tag.len > mount_tag_max) return error.InvalidMount;
        if (path.len < 2 or path[0] != '/' or std.mem.indexOfScalar(u8, path, 0) != null) return error.InvalidMount;
        var components = std.mem.tokenizeScalar(u8, path, '/');
        while (components.next()) |c| {
            if (std.mem.eql(u8, c, ".") or std.mem.eql(u8, c, "..")) return error.InvalidMount;
        }
        try list.append(gpa, .{ .tag = tag, .path = path, .read_only = read_only });
    }
    return try list.toOwnedSlice(gpa);
}

/// `uid:gid`, both decimal u32.
pub fn decodeUser(value: []const u8) DecodeError!User {
    const colon = std.mem.indexOfScalar(u8, value, ':') orelse return error.InvalidUser;
    const uid = std.fmt.parseInt(u32, value[0..colon], 10) catch return error.InvalidUser;
    const gid = std.fmt.parseInt(u32, value[colon + 1 ..], 10) catch return error.InvalidUser;
    return .{ .uid = uid, .gid = gid };
}

/// Decodes init's argv[1..] and envp as the kernel built them from the cmdline.
pub fn decodeBoot(gpa: Allocator, args: []const []const u8, envp: []const []const u8) DecodeError!Boot {
    if (args.len > args_max or envp.len > env_max) return error.TooLarge;
    var boot: Boot = .{ .args = args };
    var env: std.ArrayList([]const u8) = .empty;
    errdefer env.deinit(gpa);
    for (envp) |entry| {
        if (entry.len > string_max) return error.TooLarge;
        const eq = std.mem.indexOfScalar(u8, entry, '=') orelse continue;
        if (eq == 0) continue;
        if (try applyKrunKey(gpa, &boot, entry[0..eq], entry[eq + 1 ..])) continue;
        try env.append(gpa, entry);
    }
    boot.env = try env.toOwnedSlice(gpa);
    return boot;
}

/// Applies a KRUN_* key to `boot`; false when `key` is an ordinary env key. Unknown KRUN_* keys
/// (KRUN_DHCP, KRUN_BLOCK_ROOT_*) are consumed too: they configure init, not the workload.
fn applyKrunKey(gpa: Allocator, boot: *Boot, key: []const u8, value: []const u8) DecodeError!bool {
    if (!std.mem.startsWith(u8, key, "KRUN_")) return false;
    const name = key["KRUN_".len..];
    if (std.mem.eql(u8, name, "INIT")) {
        boot.exec_path = value;
    } else if (std.mem.eql(u8, name, "WORKDIR")) {
        boot.workdir = value;
    } else if (std.mem.eql(u8, name, "CONFIG")) {
        boot.config_path = value;
    } else if (std.mem.eql(u8, name, "HOME")) {
        boot.home = value;
    } else if (std.mem.eql(u8, name, "TERM")) {
        boot.term = value;
    } else if (std.mem.eql(u8, name, "INIT_PID1")) {
        boot.init_pid1 = value.len > 0 and value[0] == '1';
    } else if (std.mem.eql(u8, name, "RLIMITS")) {
        boot.rlimits = try decodeRlimits(gpa, value);
    } else if (std.mem.eql(u8, name, "USER")) {
        boot.user = try decodeUser(value);
    } else if (std.mem.eql(u8, name, "MOUNTS")) {
        boot.mounts = try decodeMounts(gpa, value);
    }
    return true;
}

/// `id=cur:max,id=cur:max` (KRUN_RLIMITS). Empty means none.
pub fn decodeRlimits(gpa: Allocator, value: []const u8) DecodeError![]const Rlimit {
    if (value.len == 0) return &.{};
    var list: std.ArrayList(Rlimit) = .empty;
    errdefer list.deinit(gpa);
    var it = std.mem.splitScalar(u8, value, ',');
    while (it.next()) |entry| {
        if (list.items.len == rlimits_max) return error.TooLarge;
        try list.append(gpa, try parseRlimit(entry));
    }
    return try list.toOwnedSlice(gpa);
}

// ---- init side: config documents --------------------------------------------------------------

/// A decoded config document.
pub const Document = union(enum) {
    /// Our own format: the whole exec config, equivalent to the cmdline channel.
    zkrun: ExecConfig,
    /// libkrun's `.krun_config.json` formats: image defaults, below what the cmdline says.
    image: Image,
};

pub const Image = struct {
    /// Full argv (OCI `process.args`, or `Entrypoint ++ Cmd`); empty when the document has none.
    argv: []const []const u8 = &.{},
    env: []const []const u8 = &.{},
    workdir: ?[]const u8 = null,
};

/// Decodes a config document. Strings are copied into `arena` (free it as a whole).
/// std.json parses it (iteratively: deep nesting costs memory, not stack; numbers are kept as
/// text, never converted); the walk below gives the keys their meaning, bounded by
/// `json_depth_max`, `args_max` and `string_max`.
pub fn decodeDocument(arena: Allocator, src: []const u8) DecodeError!Document {
    if (src.len > config_size_max) return error.TooLarge;
    const root = std.json.parseFromSliceLeaky(std.json.Value, arena, src, .{
        .duplicate_field_behavior = .use_first,
        .parse_numbers = false,
        .max_value_len = string_max,
    }) catch |err| return switch (err) {
        error.OutOfMemory => error.OutOfMemory,
        error.ValueTooLong => error.TooLarge,
        else => error.ConfigSyntax,
    };
    if (root != .object) return error.ConfigSyntax;
    var found: Found = .{ .arena = arena };
    try found.walkObject(root.object, .top, 1);
    return found.document(arena);
}

/// Where the walk is: which keys mean something there.
const Context = enum { top, process, nested };

/// What the walk has seen so far; the first occurrence of each key wins.
const Found = struct {
    arena: Allocator,
    zkrun: bool = false,
    exec_path: ?[]const u8 = null,
    args: ?[]const []const u8 = null,
    env: ?[]const []const u8 = null,
    workdir: ?[]const u8 = null,
    rlimits: ?[]const []const u8 = null,
    process: bool = false,
    oci_args: ?[]const []const u8 = null,
    oci_env: ?[]const []const u8 = null,
    oci_cwd: ?[]const u8 = null,
    entrypoint: ?[]const []const u8 = null,
    cmd: ?[]const []const u8 = null,
    flat_env: ?[]const []const u8 = null,
    working_dir: ?[]const u8 = null,

    fn document(found: *const Found, arena: Allocator) DecodeError!Document {
        if (found.zkrun) {
            const rlimits = found.rlimits orelse &.{};
            for (rlimits) |entry| _ = try parseRlimit(entry);
            return .{ .zkrun = .{
                .exec_path = found.exec_path,
                .args = found.args orelse &.{},
                .env = found.env orelse &.{},
                .workdir = found.workdir,
                .rlimits = rlimits,
            } };
        }
        if (found.process) return .{ .image = .{
            .argv = found.oci_args orelse &.{},
            .env = found.oci_env orelse &.{},
            .workdir = nonEmpty(found.oci_cwd),
        } };
        return .{ .image = .{
            .argv = try concat(arena, found.entrypoint orelse &.{}, found.cmd orelse &.{}),
            .env = found.flat_env orelse &.{},
            .workdir = nonEmpty(found.working_dir),
        } };
    }

    /// The members in document order, each key with its meaning in `ctx`.
    fn walkObject(found: *Found, object: std.json.ObjectMap, ctx: Context, depth: u32) DecodeError!void {
        if (depth > json_depth_max) return error.ConfigTooDeep;
        var it = object.iterator();
        while (it.next()) |entry| {
            const k = entry.key_ptr.*;
            const v = entry.value_ptr.*;
            switch (ctx) {
                .process => {
                    try found.processMember(k, v, depth);
                    continue;
                },
                .top => {
                    if (std.mem.eql(u8, k, "zkrun")) {
                        try zkrunMarker(v);
                        found.zkrun = true;
                        continue;
                    }
                    if (found.zkrun) {
                        try found.zkrunMember(k, v, depth);
                        continue;
                    }
                    if (std.ascii.eqlIgnoreCase(k, "process") and v == .object) {
                        found.process = true;
                        try found.walkObject(v.object, .process, depth + 1);
                        continue;
                    }
                },
                .nested => {},
            }
            try found.flatMember(k, v, depth);
        }
    }

    /// Our format: strict types, exact key names (the encoder writes `"zkrun":1` first).
    fn zkrunMember(found: *Found, k: []const u8, v: std.json.Value, depth: u32) DecodeError!void {
        if (std.mem.eql(u8, k, "exec_path")) {
            found.exec_path = try optionalString(v);
        } else if (std.mem.eql(u8, k, "workdir")) {
            found.workdir = try optionalString(v);
        } else if (std.mem.eql(u8, k, "args")) {
            found.args = try stringArray(found.arena, v);
        } else if (std.mem.eql(u8, k, "env")) {
            found.env = try stringArray(found.arena, v);
        } else if (std.mem.eql(u8, k, "rlimits")) {
            found.rlimits = try stringArray(found.arena, v);
        } else {
            try checkDepth(v, depth + 1);
        }
    }

    /// OCI `process`: args, env and cwd must have their spec types.
    fn processMember(found: *Found, k: []const u8, v: std.json.Value, depth: u32) DecodeError!void {
        if (std.ascii.eqlIgnoreCase(k, "args") and found.oci_args == null) {
            found.oci_args = try stringArray(found.arena, v);
        } else if (std.ascii.eqlIgnoreCase(k, "env") and found.oci_env == null) {
            found.oci_env = try stringArray(found.arena, v);
        } else if (std.ascii.eqlIgnoreCase(k, "cwd") and found.oci_cwd == null) {
            found.oci_cwd = try optionalString(v);
        } else {
            try checkDepth(v, depth + 1);
        }
    }

    /// Flat keys anywhere (libkrun's case-insensitive scan): the first one with a usable value
    /// wins; anything else is walked for deeper keys.
    fn flatMember(found: *Found, k: []const u8, v: std.json.Value, depth: u32) DecodeError!void {
        const slot: ?*?[]const []const u8 = if (std.ascii.eqlIgnoreCase(k, "Entrypoint"))
            &found.entrypoint
        else if (std.ascii.eqlIgnoreCase(k, "Cmd"))
            &found.cmd
        else if (std.ascii.eqlIgnoreCase(k, "Env"))
            &found.flat_env
        else
            null;
        if (slot) |s| if (s.* == null and v == .array) {
            if (stringArray(found.arena, v)) |list| {
                s.* = list;
                return;
            } else |err| switch (err) {
                error.ConfigType => {}, // not a list of strings: not ours
                else => return err,
            }
        };
        if (std.ascii.eqlIgnoreCase(k, "WorkingDir") and found.working_dir == null and v == .string) {
            found.working_dir = try string(v.string);
            return;
        }
        return found.walkValue(v, depth + 1);
    }

    /// Any value, looking for flat keys inside objects and arrays.
    fn walkValue(found: *Found, v: std.json.Value, depth: u32) DecodeError!void {
        switch (v) {
            .object => |o| try found.walkObject(o, .nested, depth),
            .array => |a| {
                if (depth > json_depth_max) return error.ConfigTooDeep;
                for (a.items) |item| try found.walkValue(item, depth + 1);
            },
            else => {},
        }
    }
};

/// A value nobody reads still counts against `json_depth_max`.
fn checkDepth(v: std.json.Value, depth: u32) DecodeError!void {
    switch (v) {
        .object => |o| {
            if (depth > json_depth_max) return error.ConfigTooDeep;
            for (o.values()) |item| try checkDepth(item, depth + 1);
        },
        .array => |a| {
            if (depth > json_depth_max) return error.ConfigTooDeep;
            for (a.items) |item| try checkDepth(item, depth + 1);
        },
        else => {},
    }
}

fn zkrunMarker(v: std.json.Value) DecodeError!void {
    if (v != .number_string or !std.mem.eql(u8, v.number_string, "1")) return error.ConfigType;
}

/// A string we use: a NUL byte is an error (it cannot reach execve).
fn string(s: []const u8) DecodeError![]const u8 {
    if (std.mem.indexOfScalar(u8, s, 0) != null) return error.ConfigString;
    return s;
}

fn optionalString(v: std.json.Value) DecodeError!?[]const u8 {
    return switch (v) {
        .null => null,
        .string => |s| try string(s),
        else => error.ConfigType,
    };
}

/// `[ "…", … ]` or `null` (an empty list). Anything else, or a non-string item: ConfigType.
fn stringArray(arena: Allocator, v: std.json.Value) DecodeError![]const []const u8 {
    const items = switch (v) {
        .null => return &.{},
        .array => |a| a.items,
        else => return error.ConfigType,
    };
    for (items) |item| if (item != .string) return error.ConfigType;
    if (items.len > args_max) return error.TooLarge;
    const out = try arena.alloc([]const u8, items.len);
    for (items, out) |item, *o| o.* = try string(item.string);
    return out;
}

fn nonEmpty(s: ?[]const u8) ?[]const u8 {
    const value = s orelse return null;
    return if (value.len == 0) null else value;
}

/// Entrypoint ++ Cmd, without copying when one side is empty (the usual case).
fn concat(arena: Allocator, a: []const []const u8, b: []const []const u8) DecodeError![]const []const u8 {
    if (a.len == 0) return b;
    if (b.len == 0) return a;
    if (a.len + b.len > args_max) return error.TooLarge;
    const out = try arena.alloc([]const u8, a.len + b.len);
    @memcpy(out[0..a.len], a);
    @memcpy(out[a.len..], b);
    return out;
}
