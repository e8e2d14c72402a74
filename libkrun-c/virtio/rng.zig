//! virtio-rng (device id 4): one request queue; every writable byte the driver offers is
//! filled from the host's getrandom(2) (arc4random_buf on macOS: libSystem's kernel-seeded
//! generator; macOS has no getrandom). libkrun offers the same: 1 queue of 256, VERSION_1.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const Device = @import("Device.zig");
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");
const Lock = @import("Lock.zig");

const log = std.log.scoped(.virtio);
const is_macos = @import("builtin").os.tag == .macos;

pub const queue_size: u16 = 256;
/// Per request; Linux asks for at most a page or so at a time (hw_random's buffer).
pub const request_bytes_max: usize = 64 * 1024;

pub const Rng = struct {
    lock: Lock = .{},
    act: ?Device.Activation = null,
    /// Bytes handed to the guest, for tests and benchmarks.
    bytes_out: u64 = 0,

    pub const device_id: u32 = 4;
    pub const queue_sizes_max = [_]u16{queue_size};
    pub const features: u64 = 1 << mmio.feature_version_1;
    pub const device = Device.Impl(Rng).device;

    pub fn activate(self: *Rng, a: Device.Activation) Device.ActivateError!void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = a;
    }

    pub fn reset(self: *Rng) void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = null;
    }

    pub fn queueNotify(self: *Rng, index: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        const a = self.act orelse return;
        if (index != 0 or !a.queues[0].ready) return;
        self.fill(a, &a.queues[0]) catch |err| {
            log.warn("rng: {t}", .{err});
            a.queues[0].markBroken();
            a.interrupt.fail();
        };
    }

    fn fill(self: *Rng, a: Device.Activation, q: *queue.Queue) queue.Error!void {
        var used = false;
        while (try q.pop(a.mem)) |chain| {
            var w = chain.writer();
            while (w.written < request_bytes_max) {
                const piece = (try w.peek()) orelse break;
                const want = @min(piece.len, request_bytes_max - w.written);
                const got = getrandom(piece[0..want]);
                if (got == 0) break; // host entropy unavailable: return what we have
                w.advance(got);
            }
            self.bytes_out += w.written;
            try q.addUsed(a.mem, chain.head, w.written);
            used = true;
        }
        if (used and try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }
};

/// Fills as much of `buf` as getrandom gives at once; 0 on failure.
fn getrandom(buf: []u8) usize {
    if (comptime is_macos) {
        std.c.arc4random_buf(buf.ptr, buf.len); // cannot fail
        return buf.len;
    }
    while (true) {
        return sys.getrandom(buf, 0) catch |err| switch (err) {
            error.INTR => continue,
            else => {
                log.warn("rng: getrandom: {t}", .{err});
                return 0;
            },
        };
    }
}

const testing = std.testing;
const t = @import("testing.zig");

test "rng: fills every writable byte with fresh randomness, through the transport" {
    var backing: [256 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, 0x10_0000);
    var rng: Rng = .{};
    var tr: mmio.Transport = undefined;
    tr.init(rng.device(), &g.mem);
    const d: t.MmioDriver = .{ .t = &tr };
    try testing.expectEqual(@as(u32, 4), d.read32(mmio.Reg.device_id));
    try testing.expect(d.negotiate(~@as(u64, 0)));
    var dq = t.DriverQueue.init(&g, 256);
    d.setupQueue(0, &dq);
    d.addStatus(mmio.Status.driver_ok);

    _ = dq.post(&.{}, &.{ 16, 48 });
    _ = dq.postIndirect(&.{}, &.{64});
    d.notify(0);
    const a = dq.takeUsedBytes().?;
    const b = dq.takeUsedBytes().?;
    try testing.expectEqual(@as(usize, 64), a.len);
    try testing.expectEqual(@as(usize, 64), b.len);
    try testing.expect(!std.mem.eql(u8, a, b));
    // 64 random bytes with no zero byte at all are likely; all-zero is not plausible.
    try testing.expect(std.mem.indexOfNone(u8, a, &.{0}) != null);
    try testing.expectEqual(@as(u64, 128), rng.bytes_out);
    try testing.expectEqual(@as(u32, 1), d.ackInterrupt());
    tr.shutdown();
}
