//! Unit tests of the virtio-MMIO transport (mmio.zig), driven by the test-side driver
//! (testing.zig) over plain host buffers: registers, feature negotiation, the status order,
//! queue setup and activation, reset, and DEVICE_NEEDS_RESET when a hostile chain breaks a queue.
const std = @import("std");
const testing = std.testing;
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");
const Device = @import("Device.zig");
const t = @import("testing.zig");

const base: u64 = 0x10_0000;

/// A minimal device for transport tests: one queue; copies each chain's readable bytes into
/// its writable part, reversed.
const Echo = struct {
    lock: @import("Lock.zig") = .{},
    act: ?Device.Activation = null,
    activations: u32 = 0,
    resets: u32 = 0,
    config: [8]u8 = "echocfg!".*,
    fail_activate: bool = false,

    pub const device_id: u32 = 42;
    pub const queue_sizes_max = [_]u16{16};
    pub const features: u64 = 1 << mmio.feature_version_1 | 1 << queue.feature_event_idx | 1 << 3;
    const device = Device.Impl(Echo).device;

    pub fn readConfig(e: *Echo, offset: u32, data: []u8) void {
        mmio.readConfigBytes(&e.config, offset, data);
    }
    pub fn writeConfig(e: *Echo, offset: u32, data: []const u8) void {
        if (offset < e.config.len) e.config[offset] = data[0];
    }
    pub fn activate(e: *Echo, a: Device.Activation) Device.ActivateError!void {
        if (e.fail_activate) return error.DeviceBroken;
        e.lock.lock();
        defer e.lock.unlock();
        e.act = a;
        e.activations += 1;
    }
    pub fn reset(e: *Echo) void {
        e.lock.lock();
        defer e.lock.unlock();
        e.act = null;
        e.resets += 1;
    }
    pub fn queueNotify(e: *Echo, index: u16) void {
        e.lock.lock();
        defer e.lock.unlock();
        const a = e.act orelse return;
        const q = &a.queues[index];
        e.drain(a, q) catch {
            q.markBroken();
            a.interrupt.fail();
        };
    }
    fn drain(_: *Echo, a: Device.Activation, q: *queue.Queue) queue.Error!void {
        while (try q.pop(a.mem)) |chain| {
            var buf: [64]u8 = undefined;
            var r = chain.reader();
            const n = try r.read(&buf);
            std.mem.reverse(u8, buf[0..n]);
            var w = chain.writer();
            _ = try w.write(buf[0..n]);
            try q.addUsed(a.mem, chain.head, w.written);
        }
        if (try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }
};

const Rig = struct {
    backing: [64 * 1024]u8 align(4096) = undefined,
    g: t.Guest = undefined,
    echo: Echo = .{},
    tr: mmio.Transport = undefined,
    dq: t.DriverQueue = undefined,
    /// The test's log level while initQuiet's .err is in force.
    saved_level: std.log.Level = .debug,

    fn init(r: *Rig) t.MmioDriver {
        r.g = t.Guest.init(&r.backing, base);
        r.echo = .{};
        r.tr.init(r.echo.device(), &r.g.mem);
        r.dq = t.DriverQueue.init(&r.g, 16);
        return .{ .t = &r.tr };
    }

    /// `init` with the log at .err until `restoreLog`: the warnings are the point of the test.
    fn initQuiet(r: *Rig) t.MmioDriver {
        r.saved_level = testing.log_level;
        testing.log_level = .err;
        return r.init();
    }

    fn restoreLog(r: *Rig) void {
        testing.log_level = r.saved_level;
    }

    /// After a reset: the driver starts over on fresh rings, and an echo goes through.
    fn restartAndEcho(r: *Rig, d: t.MmioDriver, msg: []const u8) !void {
        r.dq = t.DriverQueue.init(&r.g, 16);
        try r.start(d);
        _ = r.dq.post(&.{msg}, &.{8});
        d.notify(0);
        try testing.expectEqual(@as(u32, @intCast(msg.len)), r.dq.takeUsed().?.len);
    }

    fn start(r: *Rig, d: t.MmioDriver) !void {
        try testing.expect(d.negotiate(~@as(u64, 0)));
        d.setupQueue(0, &r.dq);
        d.addStatus(mmio.Status.driver_ok);
        try testing.expectEqual(@as(u32, 0xf), d.status());
    }
};

test "transport: identification registers, widths, SHM absent, config space" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    try testing.expectEqual(@as(u32, 0x74726976), d.read32(mmio.Reg.magic_value));
    try testing.expectEqual(@as(u32, 2), d.read32(mmio.Reg.version));
    try testing.expectEqual(@as(u32, 42), d.read32(mmio.Reg.device_id));
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.vendor_id));
    try testing.expectEqual(@as(u64, 1 << 32 | 1 << 29 | 1 << 3), d.deviceFeatures());
    try testing.expectEqual(@as(u32, 0xffff_ffff), d.read32(mmio.Reg.shm_len_low));
    try testing.expectEqual(@as(u32, 0xffff_ffff), d.read32(mmio.Reg.shm_len_high));
    // Only aligned 32-bit register accesses; others read as zero and are dropped.
    var b2: [2]u8 = undefined;
    rig.tr.read(mmio.Reg.magic_value, &b2);
    try testing.expectEqual([2]u8{ 0, 0 }, b2);
    var b4: [4]u8 = undefined;
    rig.tr.read(mmio.Reg.magic_value + 1, &b4);
    try testing.expectEqual([4]u8{ 0, 0, 0, 0 }, b4);
    rig.tr.write(mmio.Reg.status + 2, &.{ 1, 0 });
    try testing.expectEqual(@as(u32, 0), d.status());
    try testing.expect(rig.tr.rejected >= 3);
    // Config space: 1/2/4/8-byte accesses forwarded, zeros past its end.
    var b8: [8]u8 = undefined;
    rig.tr.read(mmio.Reg.config, &b8);
    try testing.expectEqualStrings("echocfg!", &b8);
    rig.tr.read(mmio.Reg.config + 6, &b4);
    try testing.expectEqualStrings("g!\x00\x00", &b4);
    rig.tr.write(mmio.Reg.config + 1, &.{'X'});
    try testing.expectEqual(@as(u8, 'X'), rig.echo.config[1]);
    var b3: [3]u8 = undefined;
    rig.tr.read(mmio.Reg.config, &b3); // odd width: rejected
    try testing.expectEqual([3]u8{ 0, 0, 0 }, b3);
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.config_generation));
    rig.tr.interrupt.configChanged();
    try testing.expectEqual(@as(u32, 1), d.read32(mmio.Reg.config_generation));
}

test "transport: feature negotiation accepts only offered features with VERSION_1" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    // Not offered (bit 5): FEATURES_OK stays clear.
    d.write32(mmio.Reg.status, 0);
    d.addStatus(mmio.Status.acknowledge);
    d.addStatus(mmio.Status.driver);
    d.writeFeatures(1 << 32 | 1 << 5);
    d.addStatus(mmio.Status.features_ok);
    try testing.expectEqual(@as(u32, 3), d.status());
    // Without VERSION_1 (a legacy driver): refused too.
    d.writeFeatures(1 << 3);
    d.addStatus(mmio.Status.features_ok);
    try testing.expectEqual(@as(u32, 3), d.status());
    // A proper subset with VERSION_1: accepted; features are frozen afterwards.
    d.writeFeatures(1 << 32 | 1 << 3);
    d.addStatus(mmio.Status.features_ok);
    try testing.expectEqual(@as(u32, 0xb), d.status());
    d.writeFeatures(1 << 32);
    try testing.expectEqual(@as(u64, 1 << 32 | 1 << 3), rig.tr.driver_features);
}

test "transport: status transitions must follow the order; FAILED is accepted" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    d.write32(mmio.Reg.status, mmio.Status.acknowledge | mmio.Status.driver); // skips a step
    try testing.expectEqual(@as(u32, 0), d.status());
    d.write32(mmio.Reg.status, mmio.Status.acknowledge);
    d.write32(mmio.Reg.status, mmio.Status.acknowledge | mmio.Status.driver_ok);
    try testing.expectEqual(@as(u32, 1), d.status());
    d.write32(mmio.Reg.status, 0x7f); // everything at once
    try testing.expectEqual(@as(u32, 1), d.status());
    d.addStatus(mmio.Status.failed);
    try testing.expectEqual(@as(u32, 0x81), d.status());
    d.write32(mmio.Reg.status, 0);
    try testing.expectEqual(@as(u32, 0), d.status());
    try testing.expectEqual(@as(u32, 0), rig.echo.activations);
}

test "transport: queue setup, DRIVER_OK activation, notify, interrupt and ack" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    d.write32(mmio.Reg.queue_sel, 0);
    d.write32(mmio.Reg.queue_num, 16); // before FEATURES_OK: rejected
    try testing.expect(rig.tr.rejected > 0);
    try rig.start(d);
    try testing.expectEqual(@as(u32, 1), rig.echo.activations);
    try testing.expect(rig.tr.queues[0].event_idx);
    try testing.expectEqual(rig.dq.desc, rig.tr.queues[0].desc_addr);
    // Queue registers are frozen after DRIVER_OK.
    d.write32(mmio.Reg.queue_desc_low, 0x1234);
    try testing.expectEqual(rig.dq.desc, rig.tr.queues[0].desc_addr);
    d.write32(mmio.Reg.queue_sel, 1);
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.queue_num_max)); // no queue 1

    const posted = rig.dq.post(&.{"virtio"}, &.{16});
    d.notify(0);
    const used = rig.dq.takeUsed().?;
    try testing.expectEqual(@as(u32, 6), used.len);
    try testing.expectEqualStrings("oitriv", rig.g.bytes(posted.in_addr, 6));
    try testing.expectEqual(@as(u32, 1), d.ackInterrupt());
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.interrupt_status));
    d.notify(7); // no such queue: ignored
}

test "transport: reset returns device and queues to their initial state" {
    var rig: Rig = .{};
    const d = rig.init();
    try rig.start(d);
    _ = rig.dq.post(&.{"abc"}, &.{8});
    d.notify(0);
    d.write32(mmio.Reg.status, 0);
    try testing.expectEqual(@as(u32, 1), rig.echo.resets);
    try testing.expectEqual(@as(u32, 0), d.status());
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.interrupt_status));
    const q = rig.tr.queues[0];
    try testing.expect(!q.ready);
    try testing.expectEqual(@as(u16, 0), q.next_avail);
    try testing.expectEqual(@as(u16, 16), q.size);
    try testing.expectEqual(@as(u64, 0), q.desc_addr);
    d.write32(mmio.Reg.queue_sel, 0);
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.queue_ready));
    // And the driver can start over on fresh rings.
    try rig.restartAndEcho(d, "xy");
    try testing.expectEqual(@as(u32, 2), rig.echo.activations);
}

test "transport: a hostile chain breaks the queue and sets DEVICE_NEEDS_RESET" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    try rig.start(d);
    rig.dq.setDesc(0, .{ .addr = base, .len = 4, .flags = queue.desc_f_next, .next = 0 });
    rig.dq.pushAvail(0);
    d.notify(0);
    try testing.expect(d.status() & mmio.Status.device_needs_reset != 0);
    try testing.expect(d.read32(mmio.Reg.interrupt_status) & Device.Interrupt.config != 0);
    // Further kicks do nothing; a reset recovers.
    d.notify(0);
    d.write32(mmio.Reg.status, 0);
    try testing.expectEqual(@as(u32, 0), d.status());
    try rig.restartAndEcho(d, "ok");
}

test "transport: invalid rings or a failing device at DRIVER_OK set DEVICE_NEEDS_RESET" {
    var rig: Rig = .{};
    const d = rig.initQuiet();
    defer rig.restoreLog();
    try testing.expect(d.negotiate(~@as(u64, 0)));
    d.setupQueue(0, &rig.dq);
    d.write32(mmio.Reg.queue_sel, 0);
    d.write32(mmio.Reg.queue_ready, 0);
    d.write32(mmio.Reg.queue_num, 12); // not a power of two
    d.write32(mmio.Reg.queue_ready, 1);
    d.addStatus(mmio.Status.driver_ok);
    try testing.expect(d.status() & mmio.Status.device_needs_reset != 0);
    try testing.expectEqual(@as(u32, 0), rig.echo.activations);

    _ = rig.init();
    rig.echo.fail_activate = true;
    try testing.expect(d.negotiate(~@as(u64, 0)));
    d.setupQueue(0, &rig.dq);
    d.addStatus(mmio.Status.driver_ok);
    try testing.expect(d.status() & mmio.Status.device_needs_reset != 0);
    d.write32(mmio.Reg.status, 0);
    try testing.expectEqual(@as(u32, 0), rig.echo.resets); // never activated, nothing to reset
}

test "transport: SHM region registers report the device's window, and -1 for others" {
    const WithShm = struct {
        fn shm(_: *anyopaque) ?Device.ShmRegion {
            return .{ .guest_addr = 0x1_4000_0000, .len = 1 << 29 };
        }
        const vtable: Device.VTable = blk: {
            var v = Device.Impl(Echo).vtable;
            v.shmRegion = shm;
            break :blk v;
        };
    };
    var rig: Rig = .{};
    _ = rig.init();
    rig.tr.init(.{ .ptr = &rig.echo, .vtable = &WithShm.vtable }, &rig.g.mem);
    const d: t.MmioDriver = .{ .t = &rig.tr };
    d.write32(mmio.Reg.shm_sel, 0);
    try testing.expectEqual(@as(u32, 1 << 29), d.read32(mmio.Reg.shm_len_low));
    try testing.expectEqual(@as(u32, 0), d.read32(mmio.Reg.shm_len_high));
    try testing.expectEqual(@as(u32, 0x4000_0000), d.read32(mmio.Reg.shm_base_low));
    try testing.expectEqual(@as(u32, 1), d.read32(mmio.Reg.shm_base_high));
    d.write32(mmio.Reg.shm_sel, 1);
    try testing.expectEqual(@as(u32, 0xffff_ffff), d.read32(mmio.Reg.shm_len_low));
    try testing.expectEqual(@as(u32, 0xffff_ffff), d.read32(mmio.Reg.shm_len_high));
}

test "transport: concurrent register traffic from two vCPU threads stays consistent" {
    var rig: Rig = .{};
    const d = rig.init();
    try rig.start(d);
    const Prober = struct {
        fn run(drv: t.MmioDriver, bad: *std.atomic.Value(u32)) void {
            for (0..20000) |i| {
                drv.write32(mmio.Reg.queue_sel, @intCast(i % 2));
                if (drv.read32(mmio.Reg.magic_value) != mmio.magic) _ = bad.fetchAdd(1, .monotonic);
                _ = drv.read32(mmio.Reg.queue_num_max);
            }
        }
    };
    var bad: std.atomic.Value(u32) = .init(0);
    const th = try std.Thread.spawn(.{}, Prober.run, .{ d, &bad });
    Prober.run(d, &bad);
    th.join();
    try testing.expectEqual(@as(u32, 0), bad.load(.monotonic));
    try testing.expectEqual(@as(u32, 0xf), d.status());
}
