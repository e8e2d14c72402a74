//! Fuzz target for the init configuration decoders (protocol.zig): `zig build fuzz` →
//! zig-out/bin/fuzz-init (smoke run: tests/native/init-fuzz.sh). Each case is one of:
//! - a config document (`decodeDocument`): random bytes over a JSON alphabet, or one of the
//!   real formats (OCI config.json, krunvm's buildah inspect, muvm's Config, ours) mutated;
//! - the kernel's argv/envp for init (`decodeBoot`): random `KRUN_*` and ordinary tokens,
//!   KRUN_RLIMITS lists included;
//! - a round trip: a random exec config is encoded as the VMM does (`encode`), then decoded as
//!   init does — from the JSON document, or from the command line split the kernel's way —
//!   and must come back unchanged.
//! Built ReleaseSafe: an out-of-bounds access, overflow or assertion is a crash; a round trip
//! that changes a value fails the run.
//!
//! Usage: fuzz-init [iterations (default 200000)] [seed]
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const protocol = @import("zkrun").init.protocol;

const Stats = struct {
    documents: u64 = 0,
    documents_ok: u64 = 0,
    boots: u64 = 0,
    boots_ok: u64 = 0,
    trips_json: u64 = 0,
    trips_cmdline: u64 = 0,
    trips_refused: u64 = 0,
};

pub fn main(init: std.process.Init) !u8 {
    var run = try fuzz_args.fromInit(init, 200_000);
    // One arena per case, reset (not freed) between cases: no allocation cost grows with runs.
    var arena_state = std.heap.ArenaAllocator.init(std.heap.page_allocator);
    defer arena_state.deinit();
    var stats: Stats = .{};
    for (0..run.iterations) |_| {
        _ = arena_state.reset(.retain_capacity);
        try oneCase(run.prng.random(), arena_state.allocator(), &stats);
    }
    std.debug.print("fuzz-init: {d} cases (seed {d}): {d} documents ({d} accepted), {d} boots ({d} accepted), round trips {d} json + {d} cmdline ({d} refused by encode)\n", .{ run.iterations, run.seed, stats.documents, stats.documents_ok, stats.boots, stats.boots_ok, stats.trips_json, stats.trips_cmdline, stats.trips_refused });
    return 0;
}

fn oneCase(rnd: std.Random, arena: std.mem.Allocator, stats: *Stats) !void {
    switch (rnd.uintLessThan(u8, 3)) {
        0 => {
            stats.documents += 1;
            var buf: [4096]u8 = undefined;
            const doc = document(rnd, &buf);
            if (protocol.decodeDocument(arena, doc)) |_| stats.documents_ok += 1 else |_| {}
        },
        1 => {
            stats.boots += 1;
            var argv: [40][]const u8 = undefined;
            var envp: [40][]const u8 = undefined;
            var text: [4096]u8 = undefined;
            var used: usize = 0;
            const n_args = rnd.uintAtMost(usize, argv.len);
            const n_env = rnd.uintAtMost(usize, envp.len);
            for (argv[0..n_args]) |*a| a.* = token(rnd, &text, &used, false);
            for (envp[0..n_env]) |*e| e.* = token(rnd, &text, &used, true);
            if (protocol.decodeBoot(arena, argv[0..n_args], envp[0..n_env])) |_| stats.boots_ok += 1 else |_| {}
        },
        else => try roundTrip(rnd, arena, stats),
    }
}

const seeds = [_][]const u8{
    "{\"ociVersion\":\"1.0.2\",\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0},\"args\":[\"/bin/sh\",\"-c\",\"echo hi\"],\"env\":[\"PATH=/usr/bin:/bin\",\"TERM=xterm\"],\"cwd\":\"/\"},\"root\":{\"path\":\"rootfs\"}}",
    "[{\"Id\":\"x\",\"Config\":{\"Entrypoint\":[\"/entry\"],\"Cmd\":[\"a\",\"b c\"],\"Env\":[\"A=1\"],\"WorkingDir\":\"/w\"}}]",
    "{\"Config\":{\"Cmd\":[\"muvm-guest\",\"{\\\"x\\\":1}\"],\"Env\":[\"HOME=/root\"]}}",
    "{\"zkrun\":1,\"exec_path\":\"/bin/sh\",\"args\":[\"\\u00e9\",\"\\\"q\\\"\"],\"env\":[\"K=v v\"],\"workdir\":\"/tmp\",\"rlimits\":[\"6=1:2\",\"7=18446744073709551615:18446744073709551615\"]}",
    "{\"a\":[1,-2.5e3,true,false,null,{\"b\":{}}],\"process\":{\"args\":[]}}",
};
const alphabet = "{}[]\":,\\/u0123456789abcdefABCDEFnulltruefalse -+.eE\n\t\x00\x7f\xc3\xa9\xff";
const interesting = [_][]const u8{ "\"process\"", "\"args\"", "\"Cmd\"", "\"Entrypoint\"", "\"Env\"", "\"WorkingDir\"", "\"cwd\"", "\"zkrun\"", "\"rlimits\"", "\\u0000", "\\ud800", "\\udc00\\ud800", "[[[[[[[[", "]]]]", "{\"\":", "1e999", "-0", "18446744073709551616" };

fn document(rnd: std.Random, buf: []u8) []const u8 {
    if (rnd.uintLessThan(u8, 4) == 0) {
        const len = rnd.uintAtMost(usize, buf.len);
        for (buf[0..len]) |*c| c.* = alphabet[rnd.uintLessThan(usize, alphabet.len)];
        return buf[0..len];
    }
    const seed = seeds[rnd.uintLessThan(usize, seeds.len)];
    var len = seed.len;
    @memcpy(buf[0..len], seed);
    for (0..1 + rnd.uintLessThan(usize, 6)) |_| {
        if (len == 0) break;
        switch (rnd.uintLessThan(u8, 5)) {
            0 => buf[rnd.uintLessThan(usize, len)] = alphabet[rnd.uintLessThan(usize, alphabet.len)],
            1 => buf[rnd.uintLessThan(usize, len)] ^= @as(u8, 1) << rnd.int(u3),
            2 => len = rnd.uintAtMost(usize, len), // truncate
            3 => { // insert an interesting fragment
                const frag = interesting[rnd.uintLessThan(usize, interesting.len)];
                if (len + frag.len > buf.len) continue;
                const at = rnd.uintAtMost(usize, len);
                std.mem.copyBackwards(u8, buf[at + frag.len .. len + frag.len], buf[at..len]);
                @memcpy(buf[at..][0..frag.len], frag);
                len += frag.len;
            },
            else => { // duplicate a slice (splice)
                var piece: [256]u8 = undefined;
                const from = rnd.uintLessThan(usize, len);
                const n = @min(rnd.uintAtMost(usize, len - from), buf.len - len, piece.len);
                @memcpy(piece[0..n], buf[from..][0..n]);
                const at = rnd.uintAtMost(usize, len);
                std.mem.copyBackwards(u8, buf[at + n .. len + n], buf[at..len]);
                @memcpy(buf[at..][0..n], piece[0..n]);
                len += n;
            },
        }
    }
    return buf[0..len];
}

const krun_keys = [_][]const u8{ "KRUN_INIT", "KRUN_WORKDIR", "KRUN_CONFIG", "KRUN_HOME", "KRUN_TERM", "KRUN_INIT_PID1", "KRUN_RLIMITS", "KRUN_RLIMITS", "KRUN_X", "HOME", "TERM", "PATH", "", "KRUN_" };

/// One argv or envp string carved out of `text`: random bytes, or KEY=VALUE with a KRUN_* key
/// and (for KRUN_RLIMITS) a list that is sometimes well-formed.
fn token(rnd: std.Random, text: []u8, used: *usize, env: bool) []const u8 {
    const room = text.len - used.*;
    if (room == 0) return "";
    const out = text[used.*..];
    var len: usize = 0;
    if (env and rnd.boolean()) {
        const key = krun_keys[rnd.uintLessThan(usize, krun_keys.len)];
        if (key.len + 1 < room) {
            @memcpy(out[0..key.len], key);
            out[key.len] = '=';
            len = key.len + 1;
        }
        if (std.mem.eql(u8, key, "KRUN_RLIMITS")) {
            const entries = rnd.uintAtMost(usize, 20);
            for (0..entries) |i| {
                var tmp: [64]u8 = undefined;
                const e = std.fmt.bufPrint(&tmp, "{s}{d}={d}:{d}", .{ if (i > 0) "," else "", rnd.uintAtMost(u32, 20), if (rnd.boolean()) rnd.int(u64) else rnd.uintAtMost(u64, 9), rnd.int(u64) }) catch break;
                if (len + e.len > room) break;
                @memcpy(out[len..][0..e.len], e);
                len += e.len;
            }
        }
    }
    const extra = @min(rnd.uintAtMost(usize, 24), room - len);
    for (out[len..][0..extra]) |*c| c.* = alphabet[rnd.uintLessThan(usize, alphabet.len)];
    len += extra;
    used.* += len;
    return out[0..len];
}

// ---- round trip ----------------------------------------------------------------------------

const value_alphabet = "abcXYZ019/._-=:,\" \\'$\t\xc3\xa9--";

fn value(rnd: std.Random, arena: std.mem.Allocator, max: usize) ![]const u8 {
    const len = rnd.uintAtMost(usize, max);
    const v = try arena.alloc(u8, len);
    for (v) |*c| c.* = if (rnd.uintLessThan(u8, 4) == 0) value_alphabet[rnd.uintLessThan(usize, value_alphabet.len)] else "abcdefghijklmnop/"[rnd.uintLessThan(usize, 17)];
    // A multibyte character must stay whole: fix up a cut 0xc3.
    for (v, 0..) |c, i| if (c == 0xc3 and (i + 1 == v.len or v[i + 1] != 0xa9)) {
        v[i] = 'x';
    };
    for (v, 0..) |c, i| if (c == 0xa9 and (i == 0 or v[i - 1] != 0xc3)) {
        v[i] = 'y';
    };
    return v;
}

fn roundTrip(rnd: std.Random, arena: std.mem.Allocator, stats: *Stats) !void {
    var exec: protocol.ExecConfig = .{};
    if (rnd.uintLessThan(u8, 8) != 0) exec.exec_path = try value(rnd, arena, 24);
    const args = try arena.alloc([]const u8, rnd.uintAtMost(usize, if (rnd.boolean()) 6 else 40));
    for (args) |*a| a.* = try value(rnd, arena, 16);
    exec.args = args;
    const env = try arena.alloc([]const u8, rnd.uintAtMost(usize, if (rnd.boolean()) 4 else 30));
    for (env) |*e| {
        const keys = [_][]const u8{ "A", "PATH", "HOME_2", "x.y", "lower", "_K", "A B" };
        e.* = try std.fmt.allocPrint(arena, "{s}={s}", .{ keys[rnd.uintLessThan(usize, keys.len)], try value(rnd, arena, 20) });
    }
    exec.env = env;
    if (rnd.boolean()) exec.workdir = try value(rnd, arena, 24);
    const rl = try arena.alloc([]const u8, rnd.uintAtMost(usize, 3));
    for (rl) |*r| r.* = try std.fmt.allocPrint(arena, "{d}={d}:{d}", .{ rnd.uintAtMost(u32, 15), rnd.uintAtMost(u64, 1 << 20), rnd.int(u64) });
    exec.rlimits = rl;
    exec.cmdline_room = rnd.uintAtMost(usize, 1024);

    var encoded = protocol.encode(arena, exec) catch {
        stats.trips_refused += 1;
        return;
    };
    defer encoded.deinit(arena);
    if (encoded.config_json) |json| {
        stats.trips_json += 1;
        if (!std.mem.eql(u8, encoded.cmdline_tokens, protocol.config_token)) return error.JsonWithoutToken;
        const doc = protocol.decodeDocument(arena, json) catch |err| {
            std.debug.print("encoded JSON does not decode ({t}): {s}\n", .{ err, json });
            return error.RoundTripDecode;
        };
        const got = switch (doc) {
            .zkrun => |z| z,
            .image => return error.RoundTripFormat,
        };
        try same(exec, got.exec_path, got.args, got.env, got.workdir, got.rlimits, null);
        return;
    }
    stats.trips_cmdline += 1;
    var argv: [64][]const u8 = undefined;
    var envp: [64][]const u8 = undefined;
    const split = try kernelSplit(arena, encoded.cmdline_tokens, &argv, &envp);
    const boot = protocol.decodeBoot(arena, split.args, split.env) catch |err| {
        std.debug.print("encoded cmdline does not decode ({t}): {s}\n", .{ err, encoded.cmdline_tokens });
        return error.RoundTripDecode;
    };
    try same(exec, boot.exec_path, boot.args, boot.env, boot.workdir, &.{}, boot.rlimits);
}

/// The kernel's treatment of our tokens (init/main.c `unknown_bootoption`, lib/cmdline.c
/// `next_arg`): blank-separated, double quotes group blanks and are removed; `key=value`
/// tokens before `--` become init's environment, everything after `--` its arguments.
fn kernelSplit(arena: std.mem.Allocator, line: []const u8, argv: *[64][]const u8, envp: *[64][]const u8) !struct { args: []const []const u8, env: []const []const u8 } {
    var n_args: usize = 0;
    var n_env: usize = 0;
    var after_dashes = false;
    var i: usize = 0;
    while (i < line.len) {
        while (i < line.len and line[i] == ' ') i += 1;
        if (i == line.len) break;
        var tok: std.ArrayList(u8) = .empty;
        var quoted = false;
        while (i < line.len and (quoted or line[i] != ' ')) : (i += 1) {
            if (line[i] == '"') quoted = !quoted else try tok.append(arena, line[i]);
        }
        const t = tok.items;
        if (!after_dashes and std.mem.eql(u8, t, "--")) {
            after_dashes = true;
        } else if (after_dashes) {
            if (n_args == argv.len) return error.TooManyTokens;
            argv[n_args] = t;
            n_args += 1;
        } else if (std.mem.indexOfScalar(u8, t, '=') != null) {
            if (n_env == envp.len) return error.TooManyTokens;
            envp[n_env] = t;
            n_env += 1;
        } else return error.UnexpectedToken;
    }
    return .{ .args = argv[0..n_args], .env = envp[0..n_env] };
}

fn same(
    want: protocol.ExecConfig,
    exec_path: ?[]const u8,
    args: []const []const u8,
    env: []const []const u8,
    workdir: ?[]const u8,
    rlimit_strings: []const []const u8,
    rlimits: ?[]const protocol.Rlimit,
) !void {
    if (!optEql(want.exec_path, exec_path)) return mismatch("exec_path");
    if (!listEql(want.args, args)) return mismatch("args");
    if (!listEql(want.env, env)) return mismatch("env");
    if (!optEql(want.workdir, workdir)) return mismatch("workdir");
    if (rlimits) |parsed| {
        if (parsed.len != want.rlimits.len) return mismatch("rlimits");
        for (want.rlimits, parsed) |w, p| {
            const expect = protocol.parseRlimit(w) catch return mismatch("rlimits");
            if (expect.resource != p.resource or expect.cur != p.cur or expect.max != p.max) return mismatch("rlimits");
        }
    } else if (!listEql(want.rlimits, rlimit_strings)) return mismatch("rlimits");
}

fn optEql(a: ?[]const u8, b: ?[]const u8) bool {
    if (a == null or b == null) return a == null and b == null;
    return std.mem.eql(u8, a.?, b.?);
}

fn listEql(a: []const []const u8, b: []const []const u8) bool {
    if (a.len != b.len) return false;
    for (a, b) |x, y| if (!std.mem.eql(u8, x, y)) return false;
    return true;
}

fn mismatch(what: []const u8) error{RoundTripMismatch} {
    std.debug.print("round trip changed {s}\n", .{what});
    return error.RoundTripMismatch;
}

test "the init fuzz harness runs a few thousand cases" {
    var prng = std.Random.DefaultPrng.init(7);
    var arena_state = std.heap.ArenaAllocator.init(std.testing.allocator);
    defer arena_state.deinit();
    var stats: Stats = .{};
    for (0..3000) |_| {
        _ = arena_state.reset(.retain_capacity);
        try oneCase(prng.random(), arena_state.allocator(), &stats);
    }
    try std.testing.expect(stats.trips_json > 0 and stats.trips_cmdline > 0 and stats.documents_ok > 0);
}
