//! Per-device request statistics for benches (issue 15: "count FUSE opcodes per workload"):
//! requests and server time per FUSE opcode, worker wake-ups and interrupts raised. Off unless
//! ZKRUN_FS_STATS is set in the environment when the server is created; then the root
//! filesystem's server writes one line to stderr when the guest's init reports its exit code
//! (the last request before power-off). Only the device's worker thread writes them, so plain
//! integers do.
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

/// Whether the environment asks for statistics.
pub fn wanted() bool {
    const v = std.c.getenv("ZKRUN_FS_STATS") orelse return false;
    return v[0] != 0 and !(v[0] == '0' and v[1] == 0);
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
