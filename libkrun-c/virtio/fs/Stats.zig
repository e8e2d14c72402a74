//! Per-device request statistics for benches (issue 15: "count FUSE opcodes per workload"):
//! requests and server time per FUSE opcode, worker wake-ups and interrupts raised. Off unless
//! ZKRUN_FS_STATS is set in the environment when the server is created; then the root
//! filesystem's server writes one line to stderr when the guest's init reports its exit code
//! (the last request before power-off). ZKRUN_FS_STATS=trace also writes one line per request
//! as it is handled ("virtio-fs trace OPCODE NODEID", a LOOKUP's name after it), like
//! virtiofsd -d's log: tests/bench/fs-mix.sh splits a run's requests into workloads at marker
//! LOOKUPs with it. Only the device's worker thread writes them, so plain integers do.
const std = @import("std");
const fuse = @import("fuse.zig");

const Stats = @This();

/// Opcodes 0..63 each get a bucket; anything above shares the last one.
const buckets = 64;

count: [buckets]u32 = @splat(0),
ns: [buckets]u64 = @splat(0),
/// Worker wake-ups (poll returns with a fired fd), and interrupts signalled to the guest.
wakes: u32 = 0,
irqs: u32 = 0,
/// One stderr line per request (ZKRUN_FS_STATS=trace).
trace: bool = false,

pub const Mode = enum { off, counts, trace };

/// What the environment asks for.
pub fn wanted() Mode {
    const v = std.mem.span(std.c.getenv("ZKRUN_FS_STATS") orelse return .off);
    if (v.len == 0 or std.mem.eql(u8, v, "0")) return .off;
    return if (std.mem.eql(u8, v, "trace")) .trace else .counts;
}

pub fn now() u64 {
    var ts: std.c.timespec = undefined;
    _ = std.c.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

/// Records one request: `req` is its gathered bytes (the opcode sits at 4..8).
pub fn record(self: *Stats, req: []const u8, started: u64) void {
    const op: u32 = if (req.len >= 8) std.mem.readInt(u32, req[4..8], .little) else 0;
    const b = @min(op, buckets - 1);
    self.count[b] +|= 1;
    self.ns[b] +|= now() -| started;
    if (self.trace) {
        var buf: [320]u8 = undefined;
        const line = traceLine(req, &buf);
        _ = std.c.write(2, line.ptr, line.len);
    }
}

/// "virtio-fs trace OPCODE NODEID[ NAME]\n" for the request `req` (a LOOKUP's name, cut at the
/// first NUL or 255 bytes; bytes outside printable ASCII become '?').
pub fn traceLine(req: []const u8, buf: []u8) []const u8 {
    var w: std.Io.Writer = .fixed(buf);
    const op: u32 = if (req.len >= 8) std.mem.readInt(u32, req[4..8], .little) else 0;
    const nodeid: u64 = if (req.len >= 24) std.mem.readInt(u64, req[16..24], .little) else 0;
    const name = std.enums.tagName(fuse.Opcode, @fromBackingInt(op)) orelse "other";
    w.print("virtio-fs trace {s} {d}", .{ name, nodeid }) catch {};
    const header = @sizeOf(fuse.InHeader);
    if (op == @backingInt(fuse.Opcode.lookup) and req.len > header) {
        const arg = req[header..@min(req.len, header + 255)];
        const end = std.mem.indexOfScalar(u8, arg, 0) orelse arg.len;
        w.writeByte(' ') catch {};
        for (arg[0..end]) |c| w.writeByte(if (c > ' ' and c < 0x7f) c else '?') catch {};
    }
    w.writeAll("\n") catch {};
    return w.buffered();
}

/// "virtio-fs stats <tag>: wakes=N irqs=N total=N LOOKUP=count/us ..." into `buf`.
pub fn format(self: *const Stats, tag: []const u8, buf: []u8) []const u8 {
    var w: std.Io.Writer = .fixed(buf);
    var total: u64 = 0;
    for (self.count) |c| total += c;
    w.print("virtio-fs stats {s}: wakes={d} irqs={d} requests={d}", .{ tag, self.wakes, self.irqs, total }) catch {};
    for (self.count, self.ns, 0..) |c, ns, op| {
        if (c == 0) continue;
        const name = std.enums.tagName(fuse.Opcode, @fromBackingInt(@intCast(op))) orelse "other";
        w.print(" {s}={d}/{d}us", .{ name, c, ns / std.time.ns_per_us }) catch {};
    }
    w.writeAll("\n") catch {};
    return w.buffered();
}

/// Writes the line to stderr (best effort).
pub fn dump(self: *const Stats, tag: []const u8) void {
    var buf: [4096]u8 = undefined;
    const line = self.format(tag, &buf);
    _ = std.c.write(2, line.ptr, line.len);
}

test "stats: counts and names per opcode" {
    var s: Stats = .{};
    var req: [40]u8 = @splat(0);
    std.mem.writeInt(u32, req[4..8], @backingInt(fuse.Opcode.unlink), .little);
    s.record(&req, now());
    s.record(&req, now());
    std.mem.writeInt(u32, req[4..8], 9999, .little);
    s.record(&req, now());
    s.record(req[0..3], now());
    s.wakes = 3;
    var buf: [4096]u8 = undefined;
    const line = s.format("t", &buf);
    try std.testing.expect(std.mem.startsWith(u8, line, "virtio-fs stats t: wakes=3 irqs=0 requests=4"));
    try std.testing.expect(std.mem.indexOf(u8, line, " unlink=2/") != null);
    try std.testing.expect(std.mem.indexOf(u8, line, " other=1/") != null);
}

test "stats: trace lines name the opcode, the node and a LOOKUP's name" {
    var req: [64]u8 = @splat(0);
    std.mem.writeInt(u32, req[4..8], @backingInt(fuse.Opcode.lookup), .little);
    std.mem.writeInt(u64, req[16..24], 7, .little);
    @memcpy(req[40..][0..12], ".fsb-mark-a\x01");
    var buf: [320]u8 = undefined;
    try std.testing.expectEqualStrings("virtio-fs trace lookup 7 .fsb-mark-a?\n", traceLine(&req, &buf));
    std.mem.writeInt(u32, req[4..8], @backingInt(fuse.Opcode.getxattr), .little);
    try std.testing.expectEqualStrings("virtio-fs trace getxattr 7\n", traceLine(&req, &buf));
    // A name with no NUL inside the request ends with the request; a short request has no name.
    var long: [40 + 300]u8 = @splat('n');
    std.mem.writeInt(u32, long[4..8], @backingInt(fuse.Opcode.lookup), .little);
    std.mem.writeInt(u64, long[16..24], 1, .little);
    try std.testing.expectEqual(@as(usize, "virtio-fs trace lookup 1 ".len + 255 + 1), traceLine(&long, &buf).len);
    try std.testing.expectEqualStrings("virtio-fs trace other 0\n", traceLine(req[0..3], &buf));
}
