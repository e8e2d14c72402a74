//! The exec-config protocol between the VMM and the guest init: one file, both sides.
//!
//! What the workload is (path, argv, env, workdir, rlimits) reaches the guest in one of two ways:
//!
//! 1. **The kernel command line**, exactly as libkrun does it (libkrun.md §1.5, §3.2):
//!    `"K=V"` env tokens, `KRUN_INIT=<path>`, `KRUN_WORKDIR=<dir>`, `KRUN_RLIMITS="id=cur:max,…"`
//!    and `-- "arg1" "arg2"`. The kernel hands unknown `key=value` tokens to init as its
//!    environment and everything after `--` as its argv. zkrun's own `KRUN_USER=uid:gid`, an
//!    ordinary env entry of krun_set_exec (the zkrun CLI sets it from an image's User), makes
//!    init run the workload as that user; `KRUN_MOUNTS=tag:/path[:ro],…` makes it mount those
//!    virtio-fs shares (krun_add_virtiofs*) first.
//! 2. **A JSON document** that the VMM serves as the virtual file `/.zkrun_config.json` on the
//!    root virtio-fs, with the single token `KRUN_CONFIG=/.zkrun_config.json` on the cmdline.
//!
//! The rule (`encode`): the cmdline is used only when *every* value is plain-safe and the whole
//! fits; otherwise the *whole* exec config goes into JSON. Never a mix, so a value can never be
//! half-parsed by the kernel. Plain-safe means:
//! - unquoted values (exec path, workdir, rlimits): bytes 0x21..0x7E except `"` and `\`;
//! - quoted values (args, env values): the same plus the space (the kernel's `next_arg` keeps
//!   spaces inside quotes; it has no escapes, so `"` can never be carried);
//! - env keys: `[A-Z_][A-Za-z0-9_]*` (a `.` makes the kernel drop the token as a module
//!   parameter; lowercase keys can collide with kernel boot options such as `init=`/`quiet`);
//! - no arg is empty or `--` (a second `--` ends the kernel's argv parse);
//! - at most `cmdline_env_tokens_max` env tokens and `cmdline_args_max` args (the kernel takes
//!   32 of each, `CONFIG_INIT_ENV_ARG_LIMIT`, and some are already used);
//! - the tokens fit in `ExecConfig.cmdline_room` bytes (x86 `COMMAND_LINE_SIZE` is 2048).
//! This closes crun#1691 (a workdir with spaces injecting kernel parameters) and libkrun#93
//! (more than ~26 env vars silently killing the guest).
//!
//! The init side decodes: the kernel argv/envp (`decodeBoot`: `KRUN_*` keys configure init and
//! are removed from the workload's env), and config documents (`decodeDocument`): our own
//! format (`{"zkrun":1,…}`), the OCI `config.json` that crun writes as `/.krun_config.json`
//! (`process.args/env/cwd`), and flat `Entrypoint/Cmd/Env/WorkingDir` keys anywhere in the
//! document, case-insensitive (krunvm's `buildah inspect` output, muvm's `{"Config":{…}}`), as
//! libkrun's C init scans them. Every input is bounded; malformed input is an error, never a
//! crash.
const std = @import("std");
const assert = std.debug.assert;
const Allocator = std.mem.Allocator;

/// The virtual file the VMM serves on the root virtio-fs when the exec config goes by JSON.
pub const config_path = "/.zkrun_config.json";
/// The cmdline token that sends init to our JSON.
pub const config_token = "KRUN_CONFIG=" ++ config_path;
/// The file libkrun's init reads when `KRUN_CONFIG` is not set (crun and krunvm write it).
pub const default_config_path = "/.krun_config.json";
/// `config_path` as a `Config.OverlayFile.path` (relative to the fs root, no leading '/').
pub const config_overlay_path = config_path[1..];
/// Mode of the virtual file: a regular file, read-only (nothing in it is secret from the
/// workload; not one-shot, so a dentry revalidation's second LOOKUP still finds it).
pub const config_file_mode: u32 = 0o100444;

// How the VMM uses this (vmm/builder.zig), before the root virtio-fs device is built:
//   const enc = try protocol.encode(arena, .{ .exec_path = cfg.exec_path, .args = cfg.argv,
//       .env = cfg.envp.?, .workdir = cfg.workdir, .rlimits = cfg.rlimits, .cmdline_room = room });
//   if (enc.config_json) |json| try cfg.overlay_files.append(arena, .{ .fs_tag = Config.root_tag,
//       .path = protocol.config_overlay_path, .data = json, .mode = protocol.config_file_mode,
//       .one_shot = false });
//   cmdline: prolog, virtio_mmio.device=... entries, then enc.cmdline_tokens LAST (`-- args`).

/// Bytes of the cmdline the encoder may use unless the caller says otherwise: 2048 minus the
/// prolog (~250 bytes) and 11 `virtio_mmio.device=4K@0xd000b000:15` entries (~40 bytes each).
pub const cmdline_room_default = 1024;
/// Env tokens the encoder puts on the cmdline at most (KRUN_* included): the kernel takes 32
/// (CONFIG_INIT_ENV_ARG_LIMIT); HOME and TERM are preset, and the prolog may add unknown tokens.
pub const cmdline_env_tokens_max = 24;
/// Args after `--` at most (the kernel takes 32 including argv[0]).
pub const cmdline_args_max = 24;

/// Limits on every list and string, on both sides (a hostile or broken config is bounded).
pub const args_max = 4096;
pub const env_max = 4096;
/// RLIMIT_NLIMITS is 16 on Linux.
pub const rlimits_max = 16;
/// Linux's MAX_ARG_STRLEN (32 pages).
pub const string_max = 128 * 1024;
/// Largest config document either side handles.
pub const config_size_max = 1024 * 1024;
/// Deepest JSON nesting the decoder follows.
pub const json_depth_max = 64;

// ---- VMM side: the encoder --------------------------------------------------------------------

/// The exec config as plain values (what krun_set_exec/env/workdir/rlimits recorded).
pub const ExecConfig = struct {
    /// `KRUN_INIT`: the workload's path (argv[0]); null lets init choose (config file or /bin/sh).
    exec_path: ?[]const u8 = null,
    /// Arguments after argv[0] (libkrun's convention: argv without argv[0]).
    args: []const []const u8 = &.{},
    /// "KEY=VALUE" entries for the workload.
    env: []const []const u8 = &.{},
    /// Working directory inside the guest.
    workdir: ?[]const u8 = null,
    /// "RESOURCE=CUR:MAX" entries, numeric resource ids (libkrun's format).
    rlimits: []const []const u8 = &.{},
    /// Bytes of the kernel cmdline left for these tokens (without their leading separator).
    cmdline_room: usize = cmdline_room_default,
};

/// What `encode` produced. Owned by the allocator given to `encode`.
pub const Encoded = struct {
    /// Tokens to append to the kernel cmdline, space-separated, printable ASCII only. They may
    /// end with `-- args`, so append them LAST (after every `virtio_mmio.device=` entry):
    /// anything after `--` reaches init as argv instead of the kernel. May be empty.
    cmdline_tokens: []const u8,
    /// When non-null: serve these bytes as the virtual file `config_path` (mode
    /// `config_file_mode`) on the root virtio-fs, for as long as the VM lives.
    config_json: ?[]const u8,

    pub fn deinit(self: *Encoded, gpa: Allocator) void {
        gpa.free(self.cmdline_tokens);
        if (self.config_json) |json| gpa.free(json);
        self.* = undefined;
    }
};

pub const EncodeError = error{
    /// A string holds a NUL byte or is not valid UTF-8, or exec path/workdir is empty.
    InvalidString,
    /// An env entry has no `=` or an empty key.
    InvalidEnv,
    /// An rlimit entry is not `RESOURCE=CUR:MAX` with decimal numbers.
    InvalidRlimit,
    /// More than the limits above allow (even as JSON).
    TooLarge,
    OutOfMemory,
};

/// Encodes `exec` for the guest: cmdline tokens, plus a JSON document when the cmdline cannot
/// carry the config faithfully (see the file header for the rule). Both outputs are owned by
/// `gpa`; free them with `Encoded.deinit`.
pub fn encode(gpa: Allocator, exec: ExecConfig) EncodeError!Encoded {
    try validate(exec);
    if (try encodeCmdline(gpa, exec)) |tokens| {
        return .{ .cmdline_tokens = tokens, .config_json = null };
    }
    const json = try encodeJson(gpa, exec);
    errdefer gpa.free(json);
    const tokens = try gpa.dupe(u8, config_token);
    return .{ .cmdline_tokens = tokens, .config_json = json };
}

/// Checks what neither channel can carry.
fn validate(exec: ExecConfig) EncodeError!void {
    if (exec.args.len > args_max or exec.env.len > env_max) return error.TooLarge;
    if (exec.rlimits.len > rlimits_max) return error.TooLarge;
    if (exec.exec_path) |path| try validateString(path, false);
    if (exec.workdir) |dir| try validateString(dir, false);
    for (exec.args) |arg| try validateString(arg, true);
    for (exec.env) |entry| {
        try validateString(entry, true);
        const eq = std.mem.indexOfScalar(u8, entry, '=') orelse return error.InvalidEnv;
        if (eq == 0) return error.InvalidEnv;
    }
    for (exec.rlimits) |entry| _ = parseRlimit(entry) catch return error.InvalidRlimit;
}

fn validateString(s: []const u8, empty_ok: bool) EncodeError!void {
    if (s.len == 0 and !empty_ok) return error.InvalidString;
    if (s.len > string_max) return error.TooLarge;
    if (std.mem.indexOfScalar(u8, s, 0) != null) return error.InvalidString;
    if (!std.unicode.utf8ValidateSlice(s)) return error.InvalidString;
}

fn isPlainByte(c: u8, quoted: bool) bool {
    if (c == ' ') return quoted;
    return c >= 0x21 and c <= 0x7e and c != '"' and c != '\\';
}

fn isPlain(s: []const u8, quoted: bool) bool {
    for (s) |c| if (!isPlainByte(c, quoted)) return false;
    return true;
}

fn isPlainEnvKey(key: []const u8) bool {
    if (key.len == 0) return false;
    const first = key[0];
    if (!(std.ascii.isUpper(first) or first == '_')) return false;
    for (key[1..]) |c| if (!(std.ascii.isAlphanumeric(c) or c == '_')) return false;
    return true;
}

/// True when the kernel cmdline carries every value of `exec` exactly (sizes aside).
pub fn cmdlineSafe(exec: ExecConfig) bool {
    if (exec.exec_path) |path| if (path.len == 0 or !isPlain(path, false)) return false;
    if (exec.workdir) |dir| if (dir.len == 0 or !isPlain(dir, false)) return false;
    for (exec.rlimits) |entry| if (!isPlain(entry, false) or
        std.mem.indexOfScalar(u8, entry, ',') != null) return false;
    for (exec.args) |arg| {
        if (arg.len == 0 or std.mem.eql(u8, arg, "--") or !isPlain(arg, true)) return false;
    }
    for (exec.env) |entry| {
        const eq = std.mem.indexOfScalar(u8, entry, '=') orelse return false;
        if (!isPlainEnvKey(entry[0..eq]) or !isPlain(entry[eq + 1 ..], true)) return false;
    }
    const env_tokens = exec.env.len + @intFromBool(exec.exec_path != null) +
        @intFromBool(exec.workdir != null) + @intFromBool(exec.rlimits.len > 0);
    return env_tokens <= cmdline_env_tokens_max and exec.args.len <= cmdline_args_max;
}

/// The libkrun-style tokens, or null when the config must go by JSON.
fn encodeCmdline(gpa: Allocator, exec: ExecConfig) EncodeError!?[]const u8 {
    if (!cmdlineSafe(exec)) return null;
    var out: std.ArrayList(u8) = .empty;
    errdefer out.deinit(gpa);
    // User env first: the kernel keeps the last of duplicate keys, so the explicit KRUN_*
    // tokens below win over same-named env entries, as the JSON path's decoder does.
    for (exec.env) |entry| {
        const eq = std.mem.indexOfScalar(u8, entry, '=').?;
        try appendToken(gpa, &out, "\"{s}={s}\"", .{ entry[0..eq], entry[eq + 1 ..] });
    }
    if (exec.exec_path) |path| try appendToken(gpa, &out, "KRUN_INIT={s}", .{path});
    if (exec.workdir) |dir| try appendToken(gpa, &out, "KRUN_WORKDIR={s}", .{dir});
    if (exec.rlimits.len > 0) {
        try appendToken(gpa, &out, "KRUN_RLIMITS=\"", .{});
        for (exec.rlimits, 0..) |entry, i| {
            if (i > 0) try out.append(gpa, ',');
            try out.appendSlice(gpa, entry);
        }
        try out.append(gpa, '"');
    }
    if (exec.args.len > 0) {
        try appendToken(gpa, &out, "--", .{});
        for (exec.args) |arg| try appendToken(gpa, &out, "\"{s}\"", .{arg});
    }
    if (out.items.len > exec.cmdline_room) {
        out.deinit(gpa);
        return null;
    }
    for (out.items) |c| assert(c >= 0x20 and c <= 0x7e); // tidy: the encoder's own output, built from validated bytes
    return try out.toOwnedSlice(gpa);
}

fn appendToken(gpa: Allocator, out: *std.ArrayList(u8), comptime fmt: []const u8, args: anytype) !void {
    if (out.items.len > 0) try out.append(gpa, ' ');
    try out.print(gpa, fmt, args);
}

/// Our JSON format: `{"zkrun":1,"exec_path":…,"args":[…],"env":[…],"workdir":…,"rlimits":[…]}`.
/// Our document, through std.json's writer (`"zkrun":1` first, as the decoder expects).
fn encodeJson(gpa: Allocator, exec: ExecConfig) EncodeError![]const u8 {
    // The JSON is at least as long as the values: refuse a huge config before building it.
    var raw: usize = 0;
    for ([_][]const []const u8{ exec.args, exec.env, exec.rlimits }) |list| {
        for (list) |item| raw += item.len;
    }
    raw += (if (exec.exec_path) |p| p.len else 0) + (if (exec.workdir) |w| w.len else 0);
    if (raw > config_size_max) return error.TooLarge;
    const json = try std.json.Stringify.valueAlloc(gpa, .{
        .zkrun = 1,
        .exec_path = exec.exec_path,
        .args = exec.args,
        .env = exec.env,
        .workdir = exec.workdir,
        .rlimits = exec.rlimits,
    }, .{});
    if (json.len > config_size_max) {
        gpa.free(json);
        return error.TooLarge;
    }
    return json;
}

// ---- both sides: rlimits ----------------------------------------------------------------------

pub const Rlimit = struct { resource: u32, cur: u64, max: u64 };

/// Parses `RESOURCE=CUR:MAX` (decimal; u64 max means RLIM_INFINITY).
pub fn parseRlimit(entry: []const u8) error{InvalidRlimit}!Rlimit {
    const eq = std.mem.indexOfScalar(u8, entry, '=') orelse return error.InvalidRlimit;
    const colon = std.mem.indexOfScalarPos(u8, entry, eq, ':') orelse return error.InvalidRlimit;
    const resource = try parseDecimal(u32, entry[0..eq]);
    if (resource >= rlimits_max) return error.InvalidRlimit;
    return .{
        .resource = resource,
        .cur = try parseDecimal(u64, entry[eq + 1 .. colon]),
        .max = try parseDecimal(u64, entry[colon + 1 ..]),
    };
}

fn parseDecimal(comptime T: type, s: []const u8) error{InvalidRlimit}!T {
    if (s.len == 0 or s.len > 20) return error.InvalidRlimit;
    var value: T = 0;
    for (s) |c| {
        if (c < '0' or c > '9') return error.InvalidRlimit;
        value = std.math.mul(T, value, 10) catch return error.InvalidRlimit;
        value = std.math.add(T, value, c - '0') catch return error.InvalidRlimit;
    }
    return value;
}

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

// ---- tests ------------------------------------------------------------------------------------

const testing = std.testing;

/// Plays the kernel: splits cmdline tokens the way lib/cmdline.c `next_arg` and init/main.c do
/// (quotes group, are stripped, `key=val` goes to envp, words to argv, `--` ends it) for the
/// subset the encoder emits. Returns owned argv/envp in `arena`.
const KernelSim = struct {
    args: std.ArrayList([]const u8) = .empty,
    env: std.ArrayList([]const u8) = .empty,

    fn run(arena: Allocator, line: []const u8) !KernelSim {
        var sim: KernelSim = .{};
        var rest = line;
        var after_dashes = false;
        while (true) {
            rest = std.mem.trimStart(u8, rest, " ");
            if (rest.len == 0) break;
            var in_quote = false;
            var i: usize = 0;
            var token: std.ArrayList(u8) = .empty;
            while (i < rest.len and (in_quote or rest[i] != ' ')) : (i += 1) {
                if (rest[i] == '"') in_quote = !in_quote else try token.append(arena, rest[i]);
            }
            rest = rest[i..];
            const t = token.items;
            if (!after_dashes and std.mem.eql(u8, t, "--")) {
                after_dashes = true;
                continue;
            }
            if (after_dashes) {
                try testing.expect(!std.mem.eql(u8, t, "--"));
                try sim.args.append(arena, t);
            } else if (std.mem.indexOfScalar(u8, t, '=') != null) {
                try sim.env.append(arena, t);
            } else {
                try sim.args.append(arena, t);
            }
        }
        return sim;
    }
};

/// Encodes, delivers through the matching channel, decodes like init, and returns what init
/// would see as a zkrun ExecConfig-equivalent Boot.
fn roundTrip(arena: Allocator, exec: ExecConfig) !struct { boot: Boot, json: bool } {
    var encoded = try encode(testing.allocator, exec);
    defer encoded.deinit(testing.allocator);
    const tokens = try arena.dupe(u8, encoded.cmdline_tokens);
    for (tokens) |c| try testing.expect(c >= 0x20 and c <= 0x7e);
    try testing.expect(tokens.len <= exec.cmdline_room);
    const sim = try KernelSim.run(arena, tokens);
    var boot = try decodeBoot(arena, sim.args.items, sim.env.items);
    const json = encoded.config_json orelse return .{ .boot = boot, .json = false };
    try testing.expectEqualStrings(config_path, boot.config_path.?);
    try testing.expectEqual(@as(usize, 0), boot.args.len);
    const doc = try decodeDocument(arena, try arena.dupe(u8, json));
    const z = doc.zkrun;
    var from_file = try decodeBoot(arena, z.args, z.env);
    from_file.exec_path = z.exec_path;
    from_file.workdir = z.workdir;
    var rlimits: std.ArrayList(Rlimit) = .empty;
    for (z.rlimits) |entry| try rlimits.append(arena, try parseRlimit(entry));
    from_file.rlimits = rlimits.items;
    boot = from_file;
    return .{ .boot = boot, .json = true };
}

fn expectSameExec(exec: ExecConfig, boot: Boot) !void {
    if (exec.exec_path) |path| try testing.expectEqualStrings(path, boot.exec_path.?) else try testing.expect(boot.exec_path == null);
    if (exec.workdir) |dir| try testing.expectEqualStrings(dir, boot.workdir.?) else try testing.expect(boot.workdir == null);
    try testing.expectEqual(exec.args.len, boot.args.len);
    for (exec.args, boot.args) |a, b| try testing.expectEqualStrings(a, b);
    try testing.expectEqual(exec.env.len, boot.env.len);
    for (exec.env, boot.env) |a, b| try testing.expectEqualStrings(a, b);
    try testing.expectEqual(exec.rlimits.len, boot.rlimits.len);
    for (exec.rlimits, boot.rlimits) |text, parsed| {
        const want = try parseRlimit(text);
        try testing.expectEqual(want, parsed);
    }
}

test "plain config goes on the cmdline in libkrun's token format" {
    var encoded = try encode(testing.allocator, .{
        .exec_path = "/bin/sh",
        .args = &.{ "-c", "echo hi; exit 7" },
        .env = &.{ "HOME=/root", "A_B=x y" },
        .workdir = "/tmp",
        .rlimits = &.{ "6=4096:8192", "7=1024:2048" },
    });
    defer encoded.deinit(testing.allocator);
    try testing.expect(encoded.config_json == null);
    try testing.expectEqualStrings(
        \\"HOME=/root" "A_B=x y" KRUN_INIT=/bin/sh KRUN_WORKDIR=/tmp KRUN_RLIMITS="6=4096:8192,7=1024:2048" -- "-c" "echo hi; exit 7"
    , encoded.cmdline_tokens);
}

test "overlay path and token agree with config_path" {
    try testing.expectEqualStrings(".zkrun_config.json", config_overlay_path);
    try testing.expectEqualStrings("KRUN_CONFIG=/.zkrun_config.json", config_token);
}

test "empty config encodes to nothing" {
    var encoded = try encode(testing.allocator, .{});
    defer encoded.deinit(testing.allocator);
    try testing.expectEqualStrings("", encoded.cmdline_tokens);
    try testing.expect(encoded.config_json == null);
}

test "round trips of tricky values pick the right channel and arrive intact" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    var many_env: [200][]const u8 = undefined;
    for (&many_env, 0..) |*e, i| e.* = try std.fmt.allocPrint(arena, "VAR_{d}=value {d}", .{ i, i });
    const cases = [_]struct { exec: ExecConfig, json: bool }{
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{ "a b", "c=d" } }, .json = false },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{"say \"hi\""} }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{"back\\slash"} }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{ "", "x" } }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{ "--", "x" } }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{"héllo ✓ 😀"} }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/echo", .args = &.{"tab\there\nnewline\x7f"} }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/sh", .workdir = "/work dir/with spaces" }, .json = true },
        .{ .exec = .{ .exec_path = "/bin/sh", .workdir = "/tmp quiet init=/bin/evil" }, .json = true },
        .{ .exec = .{ .exec_path = "/my prog" }, .json = true },
        .{ .exec = .{ .env = &many_env }, .json = true },
        .{ .exec = .{ .env = &.{"lower_key=1"} }, .json = true },
        .{ .exec = .{ .env = &.{"A.B=1"} }, .json = true },
        .{ .exec = .{ .env = &.{"A=has \"quote\""} }, .json = true },
        .{ .exec = .{ .env = &.{ "A=", "B==", "C=x=y" } }, .json = false },
        .{ .exec = .{ .env = &.{"KRUN_HOME=/home/u"} }, .json = false },
        .{ .exec = .{ .exec_path = "/bin/true", .rlimits = &.{"7=18446744073709551615:18446744073709551615"} }, .json = false },
    };
    for (cases) |case| {
        const got = try roundTrip(arena, case.exec);
        try testing.expectEqual(case.json, got.json);
        // KRUN_* env entries configure init: they are not passed through.
        if (case.exec.env.len == 1 and std.mem.startsWith(u8, case.exec.env[0], "KRUN_")) {
            try testing.expectEqualStrings("/home/u", got.boot.home.?);
            continue;
        }
        try expectSameExec(case.exec, got.boot);
    }
}

/// Pieces of random values; the first `plain_pieces` are ones the cmdline can carry.
const random_pieces = [_][]const u8{ "a", "Z", "0", "_", "=", "-", "/", ",", ":", "'", "$", " ", ".", "\"", "\\", "--", "é", "✓", "\t", "\n", "\x7f" };
const plain_pieces = 11;

fn randomString(arena: Allocator, random: std.Random, len_max: usize, plain: bool) ![]const u8 {
    var out: std.ArrayList(u8) = .empty;
    const n = random.uintLessThan(usize, len_max + 1);
    const choices = if (plain) plain_pieces else random_pieces.len;
    for (0..n) |_| try out.appendSlice(arena, random_pieces[random.uintLessThan(usize, choices)]);
    return out.items;
}

fn randomList(arena: Allocator, random: std.Random, count_max: usize, plain: bool, comptime env: bool) ![][]const u8 {
    const n = random.uintLessThan(usize, count_max + 1);
    const list = try arena.alloc([]const u8, n);
    for (list, 0..) |*item, i| {
        const value = try randomString(arena, random, 12, plain);
        item.* = if (env) blk: {
            const keys = [_][]const u8{ "A", "PATH", "KEY_Z", "lower", "A.B" };
            const key = keys[random.uintLessThan(usize, if (plain) 3 else keys.len)];
            // Distinct keys keep the comparison simple (duplicates are tested elsewhere).
            break :blk try std.fmt.allocPrint(arena, "{s}{d}={s}", .{ key, i, value });
        } else if (plain and value.len == 0) "x" else value;
    }
    return list;
}

test "random exec configs round-trip through whichever channel the encoder picks" {
    var prng = std.Random.DefaultPrng.init(0x2026_1125);
    const random = prng.random();
    var channels: [2]u32 = .{ 0, 0 };
    for (0..1500) |_| {
        var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
        defer arena_state.deinit();
        const arena = arena_state.allocator();
        const plain = random.boolean();
        const exec: ExecConfig = .{
            .exec_path = if (random.boolean()) try std.fmt.allocPrint(arena, "/x{s}", .{try randomString(arena, random, 4, plain)}) else null,
            .args = try randomList(arena, random, 30, plain, false),
            .env = try randomList(arena, random, 30, plain, true),
            .workdir = if (random.boolean()) try std.fmt.allocPrint(arena, "/w{s}", .{try randomString(arena, random, 6, plain)}) else null,
            .rlimits = if (random.boolean()) &.{"7=1:2"} else &.{},
            .cmdline_room = 200 + random.uintLessThan(usize, 1200),
        };
        const got = try roundTrip(arena, exec);
        channels[@intFromBool(got.json)] += 1;
        try expectSameExec(exec, got.boot);
    }
    // Both channels were exercised.
    try testing.expect(channels[0] > 50 and channels[1] > 50);
}

test "the cmdline budget and the kernel's token limits force JSON" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    var args: [cmdline_args_max + 1][]const u8 = undefined;
    for (&args, 0..) |*a, i| a.* = try std.fmt.allocPrint(arena, "arg{d}", .{i});
    const fits = try roundTrip(arena, .{ .exec_path = "/bin/echo", .args = args[0..cmdline_args_max] });
    try testing.expect(!fits.json);
    const too_many = try roundTrip(arena, .{ .exec_path = "/bin/echo", .args = &args });
    try testing.expect(too_many.json);
    try expectSameExec(.{ .exec_path = "/bin/echo", .args = &args }, too_many.boot);

    const long = try arena.alloc(u8, 300);
    @memset(long, 'x');
    const small_room = try roundTrip(arena, .{ .exec_path = "/bin/echo", .args = &.{long}, .cmdline_room = 200 });
    try testing.expect(small_room.json);
    const big_room = try roundTrip(arena, .{ .exec_path = "/bin/echo", .args = &.{long}, .cmdline_room = 400 });
    try testing.expect(!big_room.json);
}

test "values no channel can carry are errors" {
    const gpa = testing.allocator;
    try testing.expectError(error.InvalidString, encode(gpa, .{ .exec_path = "" }));
    try testing.expectError(error.InvalidString, encode(gpa, .{ .workdir = "" }));
    try testing.expectError(error.InvalidString, encode(gpa, .{ .args = &.{"a\x00b"} }));
    try testing.expectError(error.InvalidString, encode(gpa, .{ .args = &.{"\xff\xfe"} }));
    try testing.expectError(error.InvalidEnv, encode(gpa, .{ .env = &.{"NOEQUALS"} }));
    try testing.expectError(error.InvalidEnv, encode(gpa, .{ .env = &.{"=value"} }));
    try testing.expectError(error.InvalidRlimit, encode(gpa, .{ .rlimits = &.{"6=1"} }));
    try testing.expectError(error.InvalidRlimit, encode(gpa, .{ .rlimits = &.{"NOFILE=1:2"} }));
    try testing.expectError(error.InvalidRlimit, encode(gpa, .{ .rlimits = &.{"99=1:2"} }));
    try testing.expectError(error.InvalidRlimit, encode(gpa, .{ .rlimits = &.{"6=1:18446744073709551616"} }));
    var huge: [args_max + 1][]const u8 = @splat("x");
    try testing.expectError(error.TooLarge, encode(gpa, .{ .args = &huge }));
    const big = try gpa.alloc(u8, string_max);
    defer gpa.free(big);
    @memset(big, 'a');
    var many_big: [10][]const u8 = @splat(big);
    try testing.expectError(error.TooLarge, encode(gpa, .{ .args = &many_big }));
}

test "KRUN_MOUNTS: tag:/path[:ro] entries, else InvalidMount" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    const boot = try decodeBoot(arena, &.{}, &.{"KRUN_MOUNTS=zkrun0:/data:ro,zkrun1:/a/b"});
    try testing.expectEqual(@as(usize, 2), boot.mounts.len);
    try testing.expectEqualStrings("zkrun0", boot.mounts[0].tag);
    try testing.expectEqualStrings("/data", boot.mounts[0].path);
    try testing.expect(boot.mounts[0].read_only);
    try testing.expectEqualStrings("/a/b", boot.mounts[1].path);
    try testing.expect(!boot.mounts[1].read_only);
    try testing.expectEqual(@as(usize, 0), boot.env.len);
    const bad = [_][]const u8{ "t", "t:rel", "t:/", ":/x", "t:/x:rw", "t:/x:ro:z", "t:/a/../b", "t:/a/./b", "t:/x,", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:/x" };
    for (bad) |entry| {
        const token = try std.fmt.allocPrint(arena, "KRUN_MOUNTS={s}", .{entry});
        try testing.expectError(error.InvalidMount, decodeBoot(arena, &.{}, &.{token}));
    }
    var many: std.ArrayList(u8) = .empty;
    try many.appendSlice(arena, "KRUN_MOUNTS=t:/x");
    for (0..mounts_max) |_| try many.appendSlice(arena, ",t:/x");
    try testing.expectError(error.TooLarge, decodeBoot(arena, &.{}, &.{many.items}));
}

test "KRUN_USER: uid:gid in decimal, else InvalidUser" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const boot = try decodeBoot(arena_state.allocator(), &.{}, &.{ "KRUN_USER=1000:50", "A=b" });
    try testing.expectEqual(User{ .uid = 1000, .gid = 50 }, boot.user.?);
    try testing.expectEqual(@as(usize, 1), boot.env.len);
    try testing.expectEqual(@as(?User, null), (try decodeBoot(arena_state.allocator(), &.{}, &.{"A=b"})).user);
    for ([_][]const u8{ "KRUN_USER=1000", "KRUN_USER=a:1", "KRUN_USER=1:", "KRUN_USER=4294967296:0", "KRUN_USER=-1:0" }) |bad| {
        try testing.expectError(error.InvalidUser, decodeBoot(arena_state.allocator(), &.{}, &.{bad}));
    }
}

test "kernel argv/envp: KRUN_* configure init and leave the workload env" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const boot = try decodeBoot(arena_state.allocator(), &.{ "-c", "x" }, &.{
        "HOME=/",                   "TERM=linux",       "KRUN_INIT=/bin/sh", "KRUN_WORKDIR=/w",
        "KRUN_RLIMITS=6=1:2,7=3:4", "KRUN_INIT_PID1=1", "KRUN_HOME=/root",   "KRUN_TERM=xterm",
        "KRUN_CONFIG=/c.json",      "KRUN_DHCP=1",      "FOO=bar",           "noequals",
    });
    try testing.expectEqualStrings("/bin/sh", boot.exec_path.?);
    try testing.expectEqualStrings("/w", boot.workdir.?);
    try testing.expectEqualStrings("/c.json", boot.config_path.?);
    try testing.expectEqualStrings("/root", boot.home.?);
    try testing.expectEqualStrings("xterm", boot.term.?);
    try testing.expect(boot.init_pid1);
    try testing.expectEqual(@as(usize, 2), boot.rlimits.len);
    try testing.expectEqual(Rlimit{ .resource = 7, .cur = 3, .max = 4 }, boot.rlimits[1]);
    try testing.expectEqual(@as(usize, 3), boot.env.len);
    try testing.expectEqualStrings("FOO=bar", boot.env[2]);
    try testing.expectEqual(@as(usize, 2), boot.args.len);
    try testing.expectError(error.InvalidRlimit, decodeBoot(arena_state.allocator(), &.{}, &.{"KRUN_RLIMITS=6=1"}));
    try testing.expectError(error.InvalidRlimit, decodeBoot(arena_state.allocator(), &.{}, &.{"KRUN_RLIMITS=6=1:2,"}));
}

test "OCI config.json (crun): process.args/env/cwd" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const doc = try decodeDocument(arena_state.allocator(),
        \\{"ociVersion":"1.0.0","hooks":{"prestart":[{"path":"/h","args":["hook"],"env":["H=1"]}]},
        \\ "Process": {"terminal":false,"user":{"uid":0,"gid":0},
        \\   "args":["/usr/bin/python3","-c","print(\"hi\")"],
        \\   "env":["PATH=/usr/bin:/bin","LANG=C.UTF-8"],"cwd":"/srv/app dir",
        \\   "rlimits":[{"type":"RLIMIT_NOFILE","hard":1024,"soft":1024}]},
        \\ "root":{"path":"rootfs"},"mounts":[{"destination":"/proc","type":"proc"}]}
    );
    const image = doc.image;
    try testing.expectEqual(@as(usize, 3), image.argv.len);
    try testing.expectEqualStrings("print(\"hi\")", image.argv[2]);
    try testing.expectEqualStrings("LANG=C.UTF-8", image.env[1]);
    try testing.expectEqualStrings("/srv/app dir", image.workdir.?);
}

test "flat keys: buildah inspect (krunvm), muvm's Config, top level, any case" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    const buildah = try decodeDocument(arena,
        \\{"Type":"buildah 0.0.1","FromImage":"alpine","Config":"{\"created\":\"x\"}",
        \\ "Manifest":"{}","Container":"c","OCIv1":{"created":"2024-01-01T00:00:00Z",
        \\ "config":{"Env":["PATH=/usr/local/sbin:/usr/bin"],"Entrypoint":["/entry.sh"],
        \\ "Cmd":["serve","--port","80"],"WorkingDir":"/app","Labels":null}},
        \\ "Docker":{"config":{"Env":["IGNORED=1"],"Cmd":["ignored"],"Entrypoint":null}},
        \\ "History":[{"created_by":"/bin/sh -c #(nop) CMD [\"/bin/sh\"]","empty_layer":true}]}
    );
    try testing.expectEqual(@as(usize, 4), buildah.image.argv.len);
    try testing.expectEqualStrings("/entry.sh", buildah.image.argv[0]);
    try testing.expectEqualStrings("80", buildah.image.argv[3]);
    try testing.expectEqualStrings("PATH=/usr/local/sbin:/usr/bin", buildah.image.env[0]);
    try testing.expectEqualStrings("/app", buildah.image.workdir.?);

    const muvm = try decodeDocument(arena,
        \\{"Config":{"Cmd":["/usr/bin/muvm-guest","/tmp/x.json"],"Env":["A=1","B=2"]}}
    );
    try testing.expectEqualStrings("/usr/bin/muvm-guest", muvm.image.argv[0]);
    try testing.expectEqual(@as(usize, 2), muvm.image.env.len);

    const top = try decodeDocument(arena,
        \\{"cmd":["/bin/ls"],"ENV":["X=y"],"workingdir":"","entrypoint":null}
    );
    try testing.expectEqualStrings("/bin/ls", top.image.argv[0]);
    try testing.expectEqualStrings("X=y", top.image.env[0]);
    try testing.expect(top.image.workdir == null);

    // An "env" that is not a list of strings is not ours: the scan moves on.
    const skipped = try decodeDocument(arena,
        \\{"x":{"env":[{"name":"A"}],"Env":"str"},"y":{"Env":["REAL=1"]}}
    );
    try testing.expectEqualStrings("REAL=1", skipped.image.env[0]);

    const empty = try decodeDocument(arena, "{}");
    try testing.expectEqual(@as(usize, 0), empty.image.argv.len);
}

test "escapes decode, including surrogate pairs" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const doc = try decodeDocument(arena_state.allocator(),
        \\{"C\u006dd":["a\"b\\c\/d\b\f\n\r\t","\u00e9\u2713\ud83d\ude00"]}
    );
    try testing.expectEqualStrings("a\"b\\c/d\x08\x0c\n\r\t", doc.image.argv[0]);
    try testing.expectEqualStrings("é✓😀", doc.image.argv[1]);
}

test "malformed documents are errors" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    const syntax = [_][]const u8{
        "",                         "   ",                    "[]",                  "\"x\"",
        "{",                        "{\"a\"}",                "{\"a\":}",            "{\"a\":1,}",
        "{\"a\":1 \"b\":2}",        "{\"a\":[1,]}",           "{\"a\":[1 2]}",       "{} x",
        "{\"a\":\"\\x\"}",          "{\"a\":\"\\u12\"}",      "{\"a\":\"\\ud800\"}", "{\"a\":\"\\udc00\"}",
        "{\"a\":\"raw\ncontrol\"}", "{\"a\":\"unterminated}", "{\"a\":tru}",         "{\"a\":+1}",
        "{\"a\":\"x\\",
    };
    for (syntax) |src| try testing.expectError(error.ConfigSyntax, decodeDocument(arena, src));
    try testing.expectError(error.ConfigType, decodeDocument(arena, "{\"process\":{\"args\":\"/bin/sh\"}}"));
    try testing.expectError(error.ConfigType, decodeDocument(arena, "{\"process\":{\"args\":[1]}}"));
    try testing.expectError(error.ConfigType, decodeDocument(arena, "{\"process\":{\"cwd\":7}}"));
    try testing.expectError(error.ConfigString, decodeDocument(arena, "{\"Cmd\":[\"a\\u0000b\"]}"));
    try testing.expectError(error.ConfigType, decodeDocument(arena, "{\"zkrun\":2}"));
    try testing.expectError(error.ConfigType, decodeDocument(arena, "{\"zkrun\":1,\"args\":[null]}"));
    try testing.expectError(error.InvalidRlimit, decodeDocument(arena, "{\"zkrun\":1,\"rlimits\":[\"x\"]}"));
    const deep = repeat('[', json_depth_max + 1) ++ repeat(']', json_depth_max + 1);
    try testing.expectError(error.ConfigTooDeep, decodeDocument(arena, "{\"a\":" ++ deep ++ "}"));
    const ok_depth = repeat('[', json_depth_max - 2) ++ repeat(']', json_depth_max - 2);
    _ = try decodeDocument(arena, "{\"a\":" ++ ok_depth ++ "}");
    const big = try arena.alloc(u8, config_size_max + 1);
    @memset(big, ' ');
    try testing.expectError(error.TooLarge, decodeDocument(arena, big));
}

fn repeat(comptime c: u8, comptime n: usize) *const [n]u8 {
    const bytes: [n]u8 = @splat(c);
    return &bytes;
}

test "limits: lists longer than args_max are refused" {
    var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
    defer arena_state.deinit();
    const arena = arena_state.allocator();
    var src: std.ArrayList(u8) = .empty;
    try src.appendSlice(arena, "{\"Cmd\":[");
    for (0..args_max + 1) |i| try src.appendSlice(arena, if (i == 0) "\"a\"" else ",\"a\"");
    try src.appendSlice(arena, "]}");
    // The flat scan treats an oversized list as an error, not as "not ours".
    try testing.expectError(error.TooLarge, decodeDocument(arena, src.items));
}

test "fuzz: random and mutated bytes never crash the decoder" {
    var prng = std.Random.DefaultPrng.init(0x5eed_0f_2026);
    const random = prng.random();
    const seeds = [_][]const u8{
        "{\"process\":{\"args\":[\"/bin/sh\",\"-c\",\"x\"],\"env\":[\"A=1\"],\"cwd\":\"/\"}}",
        "{\"zkrun\":1,\"exec_path\":\"/bin/sh\",\"args\":[\"\\u00e9\"],\"env\":[],\"workdir\":null,\"rlimits\":[\"6=1:2\"]}",
        "{\"Config\":{\"Cmd\":[\"a\"],\"Env\":[\"B=2\"],\"WorkingDir\":\"/w\"},\"x\":[1,-2.5e3,true,false,null,{}]}",
    };
    const alphabet = "{}[]\":,\\u0123456789abcdefABCDEFnulltruefalse -+.eE\n\t\x00\xff";
    var buf: [512]u8 = undefined;
    for (0..20_000) |round| {
        var arena_state = std.heap.ArenaAllocator.init(testing.allocator);
        defer arena_state.deinit();
        const len = random.uintLessThan(usize, buf.len);
        const input = buf[0..len];
        if (round % 2 == 0) {
            for (input) |*c| c.* = alphabet[random.uintLessThan(usize, alphabet.len)];
        } else {
            const seed = seeds[round % seeds.len];
            const n = @min(seed.len, buf.len);
            @memcpy(buf[0..n], seed[0..n]);
            const mutated = buf[0..n];
            for (0..1 + random.uintLessThan(usize, 4)) |_| {
                mutated[random.uintLessThan(usize, n)] = alphabet[random.uintLessThan(usize, alphabet.len)];
            }
            _ = decodeDocument(arena_state.allocator(), mutated) catch {};
            continue;
        }
        _ = decodeDocument(arena_state.allocator(), input) catch {};
    }
}
