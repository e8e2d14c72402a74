//! The exec-config protocol's tests (init.zig and decode.zig): round trips through a simulated
//! kernel cmdline parser and JSON, the channel choice, limits, and fuzzed decoder input.
const std = @import("std");
const Allocator = std.mem.Allocator;
const protocol = @import("init.zig");
const Boot = protocol.Boot;
const mounts_max = protocol.mounts_max;
const ExecConfig = protocol.ExecConfig;
const Rlimit = protocol.Rlimit;
const User = protocol.User;
const args_max = protocol.args_max;
const cmdline_args_max = protocol.cmdline_args_max;
const config_overlay_path = protocol.config_overlay_path;
const config_path = protocol.config_path;
const config_size_max = protocol.config_size_max;
const config_token = protocol.config_token;
const decodeBoot = protocol.decodeBoot;
const decodeDocument = protocol.decodeDocument;
const encode = protocol.encode;
const json_depth_max = protocol.json_depth_max;
const parseRlimit = protocol.parseRlimit;
const string_max = protocol.string_max;
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
