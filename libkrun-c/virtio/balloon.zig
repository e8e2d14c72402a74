//! virtio-balloon (device id 5) as libkrun uses it: free page reporting. The guest reports
//! free page blocks on the reporting queue; each block is checked against guest memory and
//! its host pages are dropped with madvise(MADV_DONTNEED), so an idle guest gives RAM back.
//! The inflate/deflate/stats/free-page-hint queues exist (5 × 256, as in libkrun) but the host
//! never asks for inflation: inflate/deflate/hint chains are acknowledged, and the stats buffer
//! is left with the device (returning it would make the driver resend stats in a loop).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");
const Device = @import("Device.zig");
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");
const Lock = @import("Lock.zig");

const log = std.log.scoped(.virtio);
const is_macos = @import("builtin").os.tag == .macos;

pub const queue_size: u16 = 256;
pub const queue_count = 5;

pub const feature_stats_vq: u6 = 1;
pub const feature_free_page_hint: u6 = 3;
pub const feature_reporting: u6 = 5;

const page_size = std.heap.page_size_min;

/// struct virtio_balloon_config.
const Config = extern struct { num_pages: u32, actual: u32, free_page_hint_cmd_id: u32, poison_val: u32 };

/// Which queue does what depends on the acked features: Linux's virtio_mmio numbers only the
/// queues it sets up (inflate 0, deflate 1, then stats, hint, reporting as negotiated).
const Layout = struct {
    stats: ?u16 = null,
    hint: ?u16 = null,
    reporting: ?u16 = null,

    fn of(acked: u64) Layout {
        var l: Layout = .{};
        var next: u16 = 2;
        if (acked & (1 << feature_stats_vq) != 0) {
            l.stats = next;
            next += 1;
        }
        if (acked & (1 << feature_free_page_hint) != 0) {
            l.hint = next;
            next += 1;
        }
        if (acked & (1 << feature_reporting) != 0) l.reporting = next;
        return l;
    }
};

pub const Balloon = struct {
    lock: Lock = .{},
    act: ?Device.Activation = null,
    layout: Layout = .{},
    /// The driver's `actual` (pages it holds in the balloon).
    actual: u32 = 0,
    /// Bytes given back to the host through reporting, for tests and benchmarks.
    reported_bytes: u64 = 0,
    /// Reported ranges we refused (unaligned or outside guest memory).
    rejected_ranges: u64 = 0,

    pub const device_id: u32 = 5;
    pub const queue_sizes_max: [queue_count]u16 = @splat(queue_size);
    pub const features: u64 = 1 << mmio.feature_version_1 | 1 << feature_stats_vq | 1 << feature_free_page_hint | 1 << feature_reporting;
    pub const device = Device.Impl(Balloon).device;

    pub fn readConfig(self: *Balloon, offset: u32, data: []u8) void {
        const cfg: Config = .{ .num_pages = 0, .actual = self.actual, .free_page_hint_cmd_id = 0, .poison_val = 0 };
        mmio.readConfigBytes(std.mem.asBytes(&cfg), offset, data);
    }

    pub fn writeConfig(self: *Balloon, offset: u32, data: []const u8) void {
        // Only `actual` is driver-writable (§5.5.4).
        if (offset == @offsetOf(Config, "actual") and data.len == 4) self.actual = std.mem.readInt(u32, data[0..4], .little);
    }

    pub fn activate(self: *Balloon, a: Device.Activation) Device.ActivateError!void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = a;
        self.layout = .of(a.acked_features);
    }

    pub fn reset(self: *Balloon) void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = null;
        self.actual = 0;
    }

    pub fn queueNotify(self: *Balloon, index: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        const a = self.act orelse return;
        if (index >= a.queues.len or !a.queues[index].ready) return;
        if (self.layout.stats == index) return; // kept: see the file comment
        const q = &a.queues[index];
        const result = if (self.layout.reporting == index) self.report(a, q) else ackAll(a, q);
        result catch |err| {
            log.warn("balloon: queue {d}: {t}", .{ index, err });
            q.markBroken();
            a.interrupt.fail();
        };
    }

    /// Inflate/deflate/hint: nothing to do on the host side, but the driver waits for them.
    fn ackAll(a: Device.Activation, q: *queue.Queue) queue.Error!void {
        var used = false;
        while (try q.pop(a.mem)) |chain| {
            try q.addUsed(a.mem, chain.head, 0);
            used = true;
        }
        if (used and try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }

    /// Free page reporting: every writable segment is a free block of guest RAM.
    fn report(self: *Balloon, a: Device.Activation, q: *queue.Queue) queue.Error!void {
        var used = false;
        while (try q.pop(a.mem)) |chain| {
            var w = chain.writer();
            // Pieces are already split at region boundaries and checked against guest memory.
            while (try w.peek()) |piece| {
                self.discard(piece);
                w.advance(piece.len);
            }
            try q.addUsed(a.mem, chain.head, 0);
            used = true;
        }
        if (used and try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }

    fn discard(self: *Balloon, piece: []u8) void {
        const addr = @intFromPtr(piece.ptr);
        if (addr % page_size != 0 or piece.len % page_size != 0) {
            self.rejected_ranges += 1;
            return;
        }
        if (!release(@alignCast(piece))) {
            self.rejected_ranges += 1;
            return;
        }
        self.reported_bytes += piece.len;
    }
};

/// Gives `range` back to the host. Linux: MADV_DONTNEED (the pages read as zero after).
/// macOS: MADV_FREE_REUSABLE, which takes them out of the process's footprint (MADV_DONTNEED
/// there is only a paging hint); their contents are undefined after, which a balloon's pages
/// may be. Never run on macOS; pages the guest writes again after a deflate may not be counted
/// back in the footprint until something marks them reused (unmeasured).
fn release(range: []align(page_size) u8) bool {
    if (comptime is_macos) return std.c.madvise(range.ptr, range.len, std.c.MADV.FREE_REUSABLE) == 0;
    sys.madvise(range, linux.MADV.DONTNEED) catch return false;
    return true;
}

const testing = std.testing;
const t = @import("testing.zig");
const GuestMemory = @import("guest_memory");

fn residentPages(mem: []u8) !usize {
    var vec: [64]u8 = undefined;
    std.debug.assert(mem.len / page_size <= vec.len); // tidy: test helper
    try sys.mincore(@alignCast(mem), &vec);
    var n: usize = 0;
    for (vec[0 .. mem.len / page_size]) |v| n += v & 1;
    return n;
}

test "balloon: reported free pages are dropped from real anonymous memory" {
    const len = 48 * page_size;
    const ram = try sys.mmap(len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0);
    defer sys.munmap(ram);
    const base: u64 = 0x100_0000;
    var g = t.Guest.init(ram, base); // touches every page (zeroes them)
    // Rings and buffers live in the first 16 pages; pages 16..48 are "guest free memory".
    var bal: Balloon = .{};
    var tr: mmio.Transport = undefined;
    tr.init(bal.device(), &g.mem);
    const d: t.MmioDriver = .{ .t = &tr };
    try testing.expectEqual(@as(u32, 5), d.read32(mmio.Reg.device_id));
    // A driver without FREE_PAGE_HINT: reporting moves to queue 3.
    try testing.expect(d.negotiate(~@as(u64, 1 << feature_free_page_hint)));
    var dqs: [4]t.DriverQueue = undefined;
    for (&dqs, 0..) |*dq, i| {
        dq.* = t.DriverQueue.init(&g, 8);
        d.setupQueue(@intCast(i), dq);
    }
    d.addStatus(mmio.Status.driver_ok);
    try testing.expectEqual(@as(u32, 0xf), d.status());
    try testing.expectEqual(@as(?u16, 3), bal.layout.reporting);

    @memset(ram[16 * page_size ..], 0xaa);
    try testing.expectEqual(@as(usize, 32), try residentPages(ram[16 * page_size ..]));
    // Report pages 16..24 and 32..48 as one chain of two blocks (like Linux's sg list).
    const rep = &dqs[3];
    rep.setDesc(0, .{ .addr = base + 16 * page_size, .len = 8 * page_size, .flags = queue.desc_f_write | queue.desc_f_next, .next = 1 });
    rep.setDesc(1, .{ .addr = base + 32 * page_size, .len = 16 * page_size, .flags = queue.desc_f_write, .next = 0 });
    rep.pushAvail(0);
    // A block not page aligned is refused, not rounded.
    rep.setDesc(2, .{ .addr = base + 24 * page_size + 100, .len = page_size, .flags = queue.desc_f_write, .next = 0 });
    rep.pushAvail(2);
    d.notify(3);
    try testing.expectEqual(@as(u32, 0), rep.takeUsed().?.len);
    try testing.expectEqual(@as(u32, 2), rep.takeUsed().?.id);
    try testing.expectEqual(@as(u64, 24 * page_size), bal.reported_bytes);
    try testing.expectEqual(@as(u64, 1), bal.rejected_ranges);
    try testing.expectEqual(@as(usize, 8), try residentPages(ram[16 * page_size ..]));
    try testing.expectEqual(@as(u8, 0), ram[16 * page_size]); // dropped pages read back as zero
    try testing.expectEqual(@as(u8, 0xaa), ram[24 * page_size + 5]);

    // Inflate chains are acknowledged; the stats buffer is kept.
    _ = dqs[0].post(&.{"\x01\x00\x00\x00"}, &.{});
    d.notify(0);
    try testing.expect(dqs[0].takeUsed() != null);
    _ = dqs[2].post(&.{"stats"}, &.{});
    d.notify(2);
    try testing.expect(dqs[2].takeUsed() == null);

    // A report outside guest memory breaks the queue.
    const saved_level = testing.log_level;
    testing.log_level = .err;
    defer testing.log_level = saved_level;
    rep.setDesc(3, .{ .addr = base + len, .len = page_size, .flags = queue.desc_f_write, .next = 0 });
    rep.pushAvail(3);
    d.notify(3);
    try testing.expect(d.status() & mmio.Status.device_needs_reset != 0);
    tr.shutdown();
}
