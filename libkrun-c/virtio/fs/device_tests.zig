//! Unit tests of the virtio-fs device (VirtioFs.zig) through real virtqueues in a fake guest:
//! config space, INIT/LOOKUP/READ, the zero-copy READ/WRITE path and hostile chains around it,
//! parked SETLKWs, malformed chains.
const std = @import("std");
const linux = std.os.linux;
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const testing = @import("../testing.zig");
const fuse = @import("fuse.zig");
const Tmp = @import("testing.zig").Tmp;
const VirtioFs = @import("VirtioFs.zig");
const sys = @import("sys.zig").backend;

const create = VirtioFs.create;
const queue_size = VirtioFs.queue_size;
const feature_version_1 = VirtioFs.feature_version_1;
const TestRig = struct {
    backing: []u8,
    guest: testing.Guest,
    hiprio: testing.DriverQueue,
    req: testing.DriverQueue,
    queues: [2]queue.Queue,
    irq: Device.Interrupt = .{},
    fs: *VirtioFs,

    fn init(rig: *TestRig, tmp: *Tmp) !void {
        const gpa = std.testing.allocator;
        rig.backing = try gpa.alloc(u8, 8 << 20);
        rig.guest = testing.Guest.init(rig.backing, 0x10000);
        rig.hiprio = testing.DriverQueue.init(&rig.guest, 64);
        rig.req = testing.DriverQueue.init(&rig.guest, 64);
        rig.queues = .{ rig.hiprio.deviceQueue(queue_size), rig.req.deviceQueue(queue_size) };
        rig.irq = .{};
        rig.fs = try create(gpa, .{ .tag = "/dev/root", .server = .{ .root = try tmp.abs("share") } });
        try rig.fs.device().vtable.activate(rig.fs, .{ .mem = &rig.guest.mem, .queues = &rig.queues, .interrupt = &rig.irq, .acked_features = feature_version_1 });
    }

    fn deinit(rig: *TestRig) void {
        rig.fs.destroy();
        std.testing.allocator.free(rig.backing);
    }

    /// Posts one request on the request queue, kicks the device, waits for the used entry.
    fn roundTrip(rig: *TestRig, dq: *testing.DriverQueue, parts: []const []const u8, room: u32) ![]const u8 {
        const posted = dq.post(parts, &.{room});
        rig.fs.device().vtable.queueNotify(rig.fs, 1);
        for (0..2000) |_| {
            if (dq.takeUsed()) |u| {
                try std.testing.expectEqual(@as(u32, posted.head), u.id);
                return rig.guest.bytes(posted.in_addr, u.len);
            }
            _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
        }
        return error.Timeout;
    }

    /// FUSE INIT, then LOOKUP of `name` (one byte plus NUL) in the root and OPEN it read-write
    /// (uniques 1..3): its entry and file handle.
    fn initOpen(rig: *TestRig, name: *const [2]u8) !struct { fuse.EntryOut, u64 } {
        const init_in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0 };
        const h1 = header(.init, 0, 1, @sizeOf(fuse.InitIn));
        _ = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h1), std.mem.asBytes(&init_in) }, 4096);
        const hl = header(.lookup, 1, 2, 2);
        var eo: fuse.EntryOut = undefined;
        @memcpy(std.mem.asBytes(&eo), (try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hl), name }, 4096))[16..][0..@sizeOf(fuse.EntryOut)]);
        const ho = header(.open, eo.nodeid, 3, @sizeOf(fuse.OpenIn));
        const ro = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&ho), std.mem.asBytes(&fuse.OpenIn{ .flags = 2, .open_flags = 0 }) }, 4096);
        return .{ eo, std.mem.readInt(u64, ro[16..24], .little) };
    }
};

fn header(opcode: fuse.Opcode, nodeid: u64, unique: u64, args_len: usize) fuse.InHeader {
    return std.mem.zeroInit(fuse.InHeader, .{
        .len = @as(u32, @intCast(@sizeOf(fuse.InHeader) + args_len)),
        .opcode = @backingInt(opcode),
        .unique = unique,
        .nodeid = nodeid,
    });
}

test "virtio-fs device: config space, and FUSE INIT + LOOKUP + READ through real virtqueues" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    try tmp.file("share/hello", "hi from the host\n");
    var rig: TestRig = undefined;
    try rig.init(&tmp);
    defer rig.deinit();

    var cfg: [40]u8 = undefined;
    rig.fs.device().vtable.readConfig(rig.fs, 0, &cfg);
    try std.testing.expectEqualStrings("/dev/root", cfg[0..9]);
    try std.testing.expectEqual(@as(u8, 0), cfg[9]);
    try std.testing.expectEqual(@as(u32, 1), std.mem.readInt(u32, cfg[36..40], .little));
    try std.testing.expectEqual(@as(u32, 26), rig.fs.device().deviceId());

    const init_in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0 };
    const h1 = header(.init, 0, 1, @sizeOf(fuse.InitIn));
    const r1 = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h1), std.mem.asBytes(&init_in) }, 4096);
    try std.testing.expectEqual(@as(usize, 16 + 64), r1.len);
    try std.testing.expect(rig.irq.count.load(.acquire) > 0);

    const h2 = header(.lookup, 1, 2, 6);
    const r2 = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h2), "hello\x00" }, 4096);
    var eo: fuse.EntryOut = undefined;
    @memcpy(std.mem.asBytes(&eo), r2[16..][0..@sizeOf(fuse.EntryOut)]);
    try std.testing.expectEqual(@as(u64, 17), eo.attr.size);

    const h3 = header(.open, eo.nodeid, 3, @sizeOf(fuse.OpenIn));
    const r3 = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h3), std.mem.asBytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 }) }, 4096);
    var oo: fuse.OpenOut = undefined;
    @memcpy(std.mem.asBytes(&oo), r3[16..][0..@sizeOf(fuse.OpenOut)]);
    const rd = std.mem.zeroInit(fuse.ReadIn, .{ .fh = oo.fh, .size = @as(u32, 4096) });
    const h4 = header(.read, eo.nodeid, 4, @sizeOf(fuse.ReadIn));
    const r4 = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h4), std.mem.asBytes(&rd) }, 4096);
    try std.testing.expectEqualStrings("hi from the host\n", r4[16..]);
}

test "virtio-fs device: WRITE and READ payloads go straight between guest memory and the file" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    try tmp.file("share/w", "");
    var rig: TestRig = undefined;
    try rig.init(&tmp);
    defer rig.deinit();
    const eo, const fh = try rig.initOpen("w\x00");

    // The data in three pieces, none of it copied into the server's buffer.
    const wr = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .size = @as(u32, 19) });
    const hw = header(.write, eo.nodeid, 4, @sizeOf(fuse.WriteIn) + 19);
    const rw = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hw), std.mem.asBytes(&wr), "hello ", "direct ", "world\n" }, 4096);
    try std.testing.expectEqual(@as(usize, 16 + @sizeOf(fuse.WriteOut)), rw.len);
    try std.testing.expectEqual(@as(u32, 19), std.mem.readInt(u32, rw[16..20], .little));
    var buf: [64]u8 = undefined;
    try std.testing.expectEqualStrings("hello direct world\n", try tmp.read("share/w", &buf));
    // The data never passed through the server's request buffer (only the 80 header bytes did).
    try std.testing.expect(std.mem.indexOf(u8, rig.fs.server.in_buf[0..4096], "direct") == null);

    // A WRITE whose size exceeds the data it carries, or whose length claims more than the
    // chain holds: EINVAL, nothing written.
    const hw_big = header(.write, eo.nodeid, 5, @sizeOf(fuse.WriteIn) + 3);
    const wr_big = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .size = @as(u32, 4096), .offset = @as(u64, 100) });
    const r_big = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hw_big), std.mem.asBytes(&wr_big), "abc" }, 4096);
    try std.testing.expectEqual(-@as(i32, @backingInt(linux.E.INVAL)), std.mem.readInt(i32, r_big[4..8], .little));
    const hw_long = header(.write, eo.nodeid, 6, @sizeOf(fuse.WriteIn) + 100);
    const wr3 = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .size = @as(u32, 3), .offset = @as(u64, 100) });
    const r_long = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hw_long), std.mem.asBytes(&wr3), "abc" }, 4096);
    try std.testing.expectEqual(-@as(i32, @backingInt(linux.E.INVAL)), std.mem.readInt(i32, r_long[4..8], .little));
    try std.testing.expectEqual(@as(i64, 19), (try tmp.stat("share/w")).size);

    // READ into a reply split over three writable pieces (header, 7 bytes, the rest).
    const rd = std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .size = @as(u32, 4096) });
    const hr = header(.read, eo.nodeid, 7, @sizeOf(fuse.ReadIn));
    const posted = rig.req.post(&.{ std.mem.asBytes(&hr), std.mem.asBytes(&rd) }, &.{ 16, 7, 4096 });
    rig.fs.device().vtable.queueNotify(rig.fs, 1);
    const reply = for (0..2000) |_| {
        if (rig.req.takeUsed()) |u| break rig.guest.bytes(posted.in_addr, u.len);
        _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
    } else return error.Timeout;
    try std.testing.expectEqual(@as(usize, 16 + 19), reply.len);
    try std.testing.expectEqual(@as(u32, 16 + 19), std.mem.readInt(u32, reply[0..4], .little));
    try std.testing.expectEqualStrings("hello direct world\n", reply[16..]);
    try std.testing.expect(std.mem.indexOf(u8, rig.fs.server.out_buf[0..4096], "direct") == null);

    // A buffer smaller than the READ asks: the copying path replies what fits, as before.
    const hs = header(.read, eo.nodeid, 8, @sizeOf(fuse.ReadIn));
    const rs = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hs), std.mem.asBytes(&rd) }, 16 + 8);
    try std.testing.expectEqualStrings("hello di", rs[16..]);
}

test "virtio-fs device: hostile READ/WRITE chains around the zero-copy path" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    try tmp.file("share/h", "0123456789");
    var rig: TestRig = undefined;
    try rig.init(&tmp);
    defer rig.deinit();
    const eo, const fh = try rig.initOpen("h\x00");
    var unique: u64 = 10;

    // WRITE: header lengths short of, equal to and beyond the data; sizes beyond it; extensions.
    const lens = [_]u32{ 79, 80, 81, 83, 84, 80 + 4096, 80 + (1 << 20) + 1, std.math.maxInt(u32) };
    const sizes = [_]u32{ 0, 2, 3, 4, 1 << 20, std.math.maxInt(u32) };
    for (lens) |len| for (sizes) |size| for ([_]u16{ 0, 1 }) |extlen| {
        unique += 1;
        var hw = header(.write, eo.nodeid, unique, 0);
        hw.len = len;
        hw.total_extlen = extlen;
        const wr = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .size = size, .offset = @as(u64, 10) });
        const r = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hw), std.mem.asBytes(&wr), "ab", "c" }, 4096);
        try std.testing.expect(r.len >= 16);
        try std.testing.expectEqual(@as(u32, @intCast(r.len)), std.mem.readInt(u32, r[0..4], .little));
        try std.testing.expectEqual(unique, std.mem.readInt(u64, r[8..16], .little));
        if (std.mem.readInt(i32, r[4..8], .little) == 0) {
            // Only a request whose length covers no more than the 3 bytes it carries, and whose
            // size no more than its length covers, writes.
            try std.testing.expect(extlen == 0 and len >= 80 and len <= 83 and size <= len - 80);
            try std.testing.expectEqual(size, std.mem.readInt(u32, r[16..20], .little));
        }
    };
    var buf: [64]u8 = undefined;
    try std.testing.expectEqualStrings("0123456789abc", try tmp.read("share/h", &buf));

    // READ: reply buffers too small for a header, split oddly, smaller than the size asked.
    const rooms = [_][]const u32{ &.{15}, &.{16}, &.{17}, &.{ 16, 1 }, &.{ 8, 8, 4096 }, &.{ 3, 4, 5, 6, 7 } };
    const rsizes = [_]u32{ 0, 1, 5, 4096, 1 << 20, (1 << 20) + 1 };
    for (rooms) |room| for (rsizes) |size| {
        unique += 1;
        const hr = header(.read, eo.nodeid, unique, @sizeOf(fuse.ReadIn));
        const rd = std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .size = size, .offset = @as(u64, 8) });
        const posted = rig.req.post(&.{ std.mem.asBytes(&hr), std.mem.asBytes(&rd) }, room);
        rig.fs.device().vtable.queueNotify(rig.fs, 1);
        const u = for (0..2000) |_| {
            if (rig.req.takeUsed()) |u| break u;
            _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
        } else return error.Timeout;
        try std.testing.expectEqual(@as(u32, posted.head), u.id);
        var total: u32 = 0;
        for (room) |l| total += l;
        if (total < 16) {
            try std.testing.expectEqual(@as(u32, 0), u.len);
            continue;
        }
        const r = rig.guest.bytes(posted.in_addr, u.len);
        try std.testing.expectEqual(u.len, std.mem.readInt(u32, r[0..4], .little));
        if (std.mem.readInt(i32, r[4..8], .little) == 0) {
            try std.testing.expect(r.len - 16 <= size);
            try std.testing.expectEqualStrings("89abc"[0..@min(5, r.len - 16)], r[16..]);
        }
    };
}

test "virtio-fs device: a blocked SETLKW completes when the lock is released, or EINTR on INTERRUPT" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    try tmp.file("share/f", "x");
    var rig: TestRig = undefined;
    try rig.init(&tmp);
    defer rig.deinit();
    const init_in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0 };
    const h1 = header(.init, 0, 1, @sizeOf(fuse.InitIn));
    _ = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h1), std.mem.asBytes(&init_in) }, 4096);
    const hl = header(.lookup, 1, 2, 2);
    var eo: fuse.EntryOut = undefined;
    @memcpy(std.mem.asBytes(&eo), (try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hl), "f\x00" }, 4096))[16..][0..@sizeOf(fuse.EntryOut)]);
    var fhs: [2]u64 = undefined;
    for (&fhs, 0..) |*fh, i| {
        const ho = header(.open, eo.nodeid, 10 + i, @sizeOf(fuse.OpenIn));
        const r = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&ho), std.mem.asBytes(&fuse.OpenIn{ .flags = 2, .open_flags = 0 }) }, 4096);
        fh.* = std.mem.readInt(u64, r[16..24], .little);
    }
    var lk = std.mem.zeroes(fuse.LkIn);
    lk.fh = fhs[0];
    lk.lk = .{ .start = 0, .end = std.math.maxInt(i64), .type = linux.F.WRLCK, .pid = 1 };
    const hs = header(.setlk, eo.nodeid, 20, @sizeOf(fuse.LkIn));
    const rs = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hs), std.mem.asBytes(&lk) }, 4096);
    if (sys.posix) {
        // The posix (macOS) backend has no OFD locks: ENOSYS, nothing ever waits.
        try std.testing.expectEqual(-@as(i32, @backingInt(linux.E.NOSYS)), std.mem.readInt(i32, rs[4..8], .little));
        return;
    }
    try std.testing.expectEqual(@as(usize, 16), rs.len);

    // fh 1 waits; the worker keeps serving other requests meanwhile.
    lk.fh = fhs[1];
    const hw = header(.setlkw, eo.nodeid, 21, @sizeOf(fuse.LkIn));
    const waiting = rig.req.post(&.{ std.mem.asBytes(&hw), std.mem.asBytes(&lk) }, &.{4096});
    rig.fs.device().vtable.queueNotify(rig.fs, 1);
    const hg = header(.getattr, 1, 22, @sizeOf(fuse.GetattrIn));
    const rg = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hg), std.mem.asBytes(&std.mem.zeroes(fuse.GetattrIn)) }, 4096);
    try std.testing.expectEqual(@as(usize, 16 + @sizeOf(fuse.AttrOut)), rg.len);

    // Interrupt it: EINTR comes back on the request queue's chain.
    const hi = header(.interrupt, 0, 23, 8);
    const unique: u64 = 21;
    _ = rig.hiprio.post(&.{ std.mem.asBytes(&hi), std.mem.asBytes(&unique) }, &.{});
    rig.fs.device().vtable.queueNotify(rig.fs, 0);
    var got: ?testing.DriverQueue.Used = null;
    for (0..2000) |_| {
        got = rig.req.takeUsed();
        if (got != null) break;
        _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
    }
    try std.testing.expectEqual(@as(u32, waiting.head), got.?.id);
    var oh: fuse.OutHeader = undefined;
    @memcpy(std.mem.asBytes(&oh), rig.guest.bytes(waiting.in_addr, 16));
    try std.testing.expectEqual(-@as(i32, @backingInt(linux.E.INTR)), oh.@"error");
    try std.testing.expectEqual(@as(u64, 21), oh.unique);

    // Wait again, then the holder releases: the waiter gets the lock.
    const hw2 = header(.setlkw, eo.nodeid, 24, @sizeOf(fuse.LkIn));
    const waiting2 = rig.req.post(&.{ std.mem.asBytes(&hw2), std.mem.asBytes(&lk) }, &.{4096});
    rig.fs.device().vtable.queueNotify(rig.fs, 1);
    const rel = std.mem.zeroInit(fuse.ReleaseIn, .{ .fh = fhs[0] });
    const hr = header(.release, eo.nodeid, 25, @sizeOf(fuse.ReleaseIn));
    _ = rig.req.post(&.{ std.mem.asBytes(&hr), std.mem.asBytes(&rel) }, &.{4096});
    rig.fs.device().vtable.queueNotify(rig.fs, 1);
    var seen_waiter = false;
    for (0..2000) |_| {
        if (rig.req.takeUsed()) |u| {
            if (u.id == waiting2.head) {
                @memcpy(std.mem.asBytes(&oh), rig.guest.bytes(waiting2.in_addr, 16));
                try std.testing.expectEqual(@as(i32, 0), oh.@"error");
                seen_waiter = true;
                break;
            }
        }
        _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
    }
    try std.testing.expect(seen_waiter);
}

test "virtio-fs device: a malformed chain breaks the queue, not the host" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    var rig: TestRig = undefined;
    try rig.init(&tmp);
    defer rig.deinit();
    // A descriptor pointing outside guest memory.
    rig.req.setDesc(0, .{ .addr = 0xdead_0000_0000, .len = 64, .flags = 0, .next = 0 });
    rig.req.pushAvail(0);
    rig.fs.device().vtable.queueNotify(rig.fs, 1);
    for (0..2000) |_| {
        if (rig.irq.needs_reset.load(.acquire)) break;
        _ = linux.nanosleep(&.{ .sec = 0, .nsec = 1_000_000 }, null);
    }
    try std.testing.expect(rig.irq.needs_reset.load(.acquire));
    try std.testing.expect(rig.queues[1].isBroken());
}
