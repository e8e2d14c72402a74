//! The exec-config protocol between the VMM and the guest init, one module for both sides: this
//! file owns the format, its limits and the VMM's encoder; decode.zig the init side (re-exported
//! here); init_tests.zig the tests of both.
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
//! The init side (decode.zig) decodes: the kernel argv/envp (`decodeBoot`: `KRUN_*` keys configure init and
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

// ---- init side (decode.zig) -------------------------------------------------------------------

const decode = @import("decode.zig");
pub const DecodeError = decode.DecodeError;
pub const Boot = decode.Boot;
pub const User = decode.User;
pub const Mount = decode.Mount;
pub const mounts_max = decode.mounts_max;
pub const mount_tag_max = decode.mount_tag_max;
pub const decodeMounts = decode.decodeMounts;
pub const decodeUser = decode.decodeUser;
pub const decodeBoot = decode.decodeBoot;
pub const decodeRlimits = decode.decodeRlimits;
pub const Document = decode.Document;
pub const Image = decode.Image;
pub const decodeDocument = decode.decodeDocument;

test {
    _ = @import("init_tests.zig");
}
