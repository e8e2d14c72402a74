//! Scratch paths for the unit tests, private to this process: `/tmp/zkrun-unit-<pid>/<name>`.
//! Several `zig build test` runs go at once on a shared machine (one per worktree, plus a
//! fresh clone); fixed /tmp names let them truncate, lock and unlink each other's images,
//! guest binaries and sockets, which failed tests only under load.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys/linux.zig");

/// `name` may hold a subdirectory (created here). Each name has its own buffer, so paths stay
/// valid while others are made; the tests that use them run one at a time.
pub fn path(comptime name: []const u8) [:0]const u8 {
    const S = struct {
        const key = name; // a distinct struct, so a distinct buffer, per name
        var buf: [128]u8 = undefined;
    };
    const pid = sys.getpid();
    if (!swept) sweepStale();
    var dir_buf: [64]u8 = undefined;
    const dir = std.fmt.bufPrintSentinel(&dir_buf, "/tmp/zkrun-unit-{d}", .{pid}, 0) catch unreachable;
    sys.mkdir(dir, 0o755) catch {}; // EEXIST after the first
    const p = std.fmt.bufPrintSentinel(&S.buf, "/tmp/zkrun-unit-{d}/" ++ name, .{pid}, 0) catch unreachable;
    if (std.mem.lastIndexOfScalar(u8, name, '/')) |slash| {
        var sub_buf: [128]u8 = undefined;
        const sub = std.fmt.bufPrintSentinel(&sub_buf, "{s}", .{p[0 .. p.len - (name.len - slash)]}, 0) catch unreachable;
        sys.mkdir(sub, 0o755) catch {};
    }
    return p;
}

/// Removes this process's scratch `name` (a whole tree): qcow2 test images are megabytes.
pub fn removeTree(comptime name: []const u8) void {
    std.Io.Dir.cwd().deleteTree(std.testing.io, path(name)) catch {};
}

var swept = false;

/// Once per process: removes the scratch directories of runs that are gone (a run cannot
/// clean up after its last test, and a crashed one leaves everything).
fn sweepStale() void {
    swept = true;
    const io = std.testing.io;
    var tmp = std.Io.Dir.openDirAbsolute(io, "/tmp", .{ .iterate = true }) catch return;
    defer tmp.close(io);
    var it = tmp.iterate();
    while (it.next(io) catch return) |entry| {
        if (entry.kind != .directory or !std.mem.startsWith(u8, entry.name, "zkrun-unit-")) continue;
        const pid = std.fmt.parseInt(i32, entry.name["zkrun-unit-".len..], 10) catch continue;
        if (sys.resultErrno(sys.kill(pid, @fromBackingInt(@as(u32, 0)))) != .SRCH) continue; // alive (or not ours to judge)
        tmp.deleteTree(io, entry.name) catch {};
    }
}

test "scratch paths are per process, one buffer per name, subdirectories made" {
    var want: [64]u8 = undefined;
    const a = path("x/y.img");
    const b = path("z.img");
    try std.testing.expectEqualStrings(try std.fmt.bufPrint(&want, "/tmp/zkrun-unit-{d}/x/y.img", .{sys.getpid()}), a);
    try std.testing.expect(!std.mem.eql(u8, a, b));
    const dir = try std.fmt.bufPrintSentinel(&want, "/tmp/zkrun-unit-{d}/x", .{sys.getpid()}, 0);
    try sys.access(dir, linux.X_OK);
}
