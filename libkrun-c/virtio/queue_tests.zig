//! Unit tests of the split-virtqueue walker (queue.zig), driven by the test-side driver
//! (testing.zig) over plain host buffers. Hostile rings are built descriptor by descriptor: each
//! must be rejected and the queue marked broken — and nothing may crash. The transport's side of
//! a broken queue (DEVICE_NEEDS_RESET) is in mmio_tests.zig.
const std = @import("std");
const sys = @import("../sys/linux.zig");
const testing = std.testing;
const queue = @import("queue.zig");
const t = @import("testing.zig");

const base: u64 = 0x10_0000;

test "a chain's readable and writable parts, across descriptor boundaries" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 8);
    var q = dq.deviceQueue(8);
    try q.validate(&g.mem);

    const posted = dq.post(&.{ "hel", "lo, ", "world" }, &.{ 2, 3, 16 });
    const chain = (try q.pop(&g.mem)).?;
    try testing.expectEqual(posted.head, chain.head);
    try testing.expectEqual(@as(u32, 12), chain.readable_len);
    try testing.expectEqual(@as(u32, 21), chain.writable_len);

    var r = chain.reader();
    var buf: [32]u8 = undefined;
    try testing.expectEqual(@as(usize, 5), try r.read(buf[0..5])); // spans "hel" | "lo"
    try testing.expectEqualStrings("hello", buf[0..5]);
    try testing.expectEqual(@as(u32, 7), r.bytesLeft());
    try testing.expectEqual(@as(usize, 7), try r.read(&buf));
    try testing.expectEqualStrings(", world", buf[0..7]);
    try testing.expectEqual(@as(?[]const u8, null), try r.peek());
    try testing.expectError(error.ChainTooShort, r.readAll(buf[0..1]));

    var w = chain.writer();
    try w.writeAll("0123456789");
    try w.writeObj(@as(u32, 0x64636261));
    try testing.expectEqual(@as(u32, 14), w.written);
    try q.addUsed(&g.mem, chain.head, w.written);
    try testing.expectEqualStrings("0123456789abcd", g.bytes(posted.in_addr, 14));
    try testing.expectError(error.ChainTooShort, w.writeAll("this does not fit"));
    // A partial writeAll still filled what fit: the device reports what it wrote.
    try testing.expectEqual(@as(u32, 21), w.written);

    const used = dq.takeUsed().?;
    try testing.expectEqual(@as(u32, posted.head), used.id);
    try testing.expectEqual(@as(u32, 14), used.len);
    try testing.expectEqual(@as(?queue.Chain, null), try q.pop(&g.mem));
}

test "indirect tables read like direct chains; iovecs and zero-copy pieces" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 4);
    var q = dq.deviceQueue(4);

    const posted = dq.postIndirect(&.{ "abc", "defg" }, &.{ 4, 4, 4, 4, 4, 4 });
    const chain = (try q.pop(&g.mem)).?;
    try testing.expectEqual(@as(u32, 7), chain.readable_len);
    try testing.expectEqual(@as(u32, 24), chain.writable_len);
    var r = chain.reader();
    var iov: [4]std.posix.iovec = undefined;
    const n = try r.iovecs(&iov, 5);
    try testing.expectEqual(@as(usize, 2), n);
    try testing.expectEqual(@as(usize, 3), iov[0].len);
    try testing.expectEqual(@as(usize, 2), iov[1].len);
    try testing.expectEqual(@as(u8, 'd'), iov[1].base[0]);
    try testing.expectEqual(@as(usize, 4), try r.skip(4));
    try testing.expectEqual(@as(u8, 'e'), (try r.peek()).?[0]);

    var w = chain.writer();
    const k = try w.iovecs(&iov, 10);
    try testing.expectEqual(@as(usize, 3), k);
    @memset(iov[0].base[0..iov[0].len], 'x');
    @memset(iov[1].base[0..iov[1].len], 'y');
    @memset(iov[2].base[0..iov[2].len], 'z');
    try w.skipWritten(10);
    try testing.expectEqual(@as(u32, 10), w.written);
    try q.addUsed(&g.mem, chain.head, w.written);
    try testing.expectEqualStrings("xxxxyyyyzz", g.bytes(posted.in_addr, 10));
    try testing.expectEqual(posted.head, @as(u16, @intCast(dq.takeUsed().?.id)));
}

test "16-bit ring indices wrap around" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 4);
    var q = dq.deviceQueue(4);
    const start: u16 = 65533;
    dq.avail_idx = start;
    dq.last_used = start;
    dq.setAvailIdx(start);
    q.next_avail = start;
    q.next_used = start;
    q.signalled_used = start;
    for (0..12) |i| {
        var msg: [1]u8 = .{@intCast('a' + i)};
        _ = dq.post(&.{&msg}, &.{1});
        const chain = (try q.pop(&g.mem)).?;
        var r = chain.reader();
        var w = chain.writer();
        var b: [1]u8 = undefined;
        try r.readAll(&b);
        try w.writeAll(&b);
        try q.addUsed(&g.mem, chain.head, w.written);
        try testing.expect(try q.needsNotification(&g.mem));
        const u = dq.takeUsed().?;
        try testing.expectEqual(@as(u32, 1), u.len);
    }
    try testing.expectEqual(start +% 12, q.next_avail);
    try testing.expectEqual(start +% 12, dq.usedIdx());
}

test "EVENT_IDX: avail_event published when idle, used_event decides interrupts" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 8);
    var q = dq.deviceQueue(8);
    q.event_idx = true;

    for (0..3) |_| _ = dq.post(&.{"x"}, &.{});
    var popped: u16 = 0;
    while (try q.pop(&g.mem)) |chain| : (popped += 1) try q.addUsed(&g.mem, chain.head, 0);
    try testing.expectEqual(@as(u16, 3), popped);
    // Going idle told the driver to kick at the next buffer.
    try testing.expectEqual(@as(u16, 3), dq.availEvent());

    // The driver wants an interrupt once used idx passes 1: we went 0 → 3, so yes.
    dq.setUsedEvent(1);
    try testing.expect(try q.needsNotification(&g.mem));
    // Nothing new since: no.
    try testing.expect(!try q.needsNotification(&g.mem));
    // Driver asks for an interrupt only after used idx passes 5; we go to 4: no; to 6: yes.
    dq.setUsedEvent(5);
    _ = dq.post(&.{"x"}, &.{});
    try q.addUsed(&g.mem, (try q.pop(&g.mem)).?.head, 0);
    try testing.expect(!try q.needsNotification(&g.mem));
    _ = dq.post(&.{"x"}, &.{});
    _ = dq.post(&.{"x"}, &.{});
    while (try q.pop(&g.mem)) |chain| try q.addUsed(&g.mem, chain.head, 0);
    try testing.expect(try q.needsNotification(&g.mem));
}

test "without EVENT_IDX the avail ring's NO_INTERRUPT flag decides" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 8);
    var q = dq.deviceQueue(8);
    _ = dq.post(&.{"x"}, &.{});
    try q.addUsed(&g.mem, (try q.pop(&g.mem)).?.head, 0);
    try testing.expect(try q.needsNotification(&g.mem));
    dq.setAvailFlags(queue.avail_f_no_interrupt);
    try testing.expect(!try q.needsNotification(&g.mem));
}

test "ring configuration is validated" {
    var backing: [64 * 1024]u8 align(4096) = undefined;
    var g = t.Guest.init(&backing, base);
    var dq = t.DriverQueue.init(&g, 8);
    var q = dq.deviceQueue(8);
    try q.validate(&g.mem);
    q.size = 6;
    try testing.expectError(error.QueueConfigInvalid, q.validate(&g.mem));
    q.size = 16; // above size_max
    try testing.expectError(error.QueueConfigInvalid, q.validate(&g.mem));
    q.size = 8;
    q.desc_addr += 8;
    try testing.expectError(error.QueueConfigInvalid, q.validate(&g.mem));
    q.desc_addr = dq.desc;
    q.used_addr = base + backing.len - 8; // runs off the end of RAM
    try testing.expectError(error.QueueConfigInvalid, q.validate(&g.mem));
    q.used_addr = std.math.maxInt(u64) - 3;
    try testing.expectError(error.QueueConfigInvalid, q.validate(&g.mem));
}

const Hostile = struct {
    backing: [64 * 1024]u8 align(4096) = undefined,
    g: t.Guest = undefined,
    dq: t.DriverQueue = undefined,
    q: queue.Queue = undefined,

    fn init(h: *Hostile) void {
        h.g = t.Guest.init(&h.backing, base);
        h.dq = t.DriverQueue.init(&h.g, 8);
        h.q = h.dq.deviceQueue(8);
    }

    fn buf(h: *Hostile, len: u32) u64 {
        return h.g.alloc(len, 8);
    }

    /// The next pop must fail with `expected` and leave the queue broken for good.
    fn expectRejected(h: *Hostile, expected: queue.Error) !void {
        try testing.expectError(expected, h.q.pop(&h.g.mem));
        try testing.expect(h.q.isBroken());
        try testing.expectError(error.QueueBroken, h.q.pop(&h.g.mem));
    }

    /// On a fresh queue whose one chain is `desc` (no buffers of `buf`'s: init resets them).
    fn expectChainRejected(h: *Hostile, desc: queue.Descriptor, expected: queue.Error) !void {
        h.init();
        h.dq.setDesc(0, desc);
        h.dq.pushAvail(0);
        try h.expectRejected(expected);
    }
};

test "hostile: descriptor loops and over-long chains" {
    var h: Hostile = .{};
    h.init();
    const b = h.buf(16);
    h.dq.setDesc(0, .{ .addr = b, .len = 1, .flags = queue.desc_f_next, .next = 1 });
    h.dq.setDesc(1, .{ .addr = b, .len = 1, .flags = queue.desc_f_next, .next = 0 });
    h.dq.pushAvail(0);
    try h.expectRejected(error.ChainTooLong);

    h.init(); // a self-loop
    h.dq.setDesc(3, .{ .addr = b, .len = 1, .flags = queue.desc_f_next, .next = 3 });
    h.dq.pushAvail(3);
    try h.expectRejected(error.ChainTooLong);
}

test "hostile: indices out of range" {
    var h: Hostile = .{};
    h.init();
    h.dq.pushAvail(8); // head == size
    try h.expectRejected(error.DescriptorIndexInvalid);

    h.init();
    h.dq.setDesc(0, .{ .addr = h.buf(4), .len = 4, .flags = queue.desc_f_next, .next = 0xffff });
    h.dq.pushAvail(0);
    try h.expectRejected(error.DescriptorIndexInvalid);
}

test "hostile: avail idx running more than a queue ahead" {
    var h: Hostile = .{};
    h.init();
    h.dq.setAvailIdx(9);
    try h.expectRejected(error.AvailIndexInvalid);
    h.init();
    h.dq.setAvailIdx(0xffff); // "behind" us by one: also a jump of 65535
    try h.expectRejected(error.AvailIndexInvalid);
}

test "hostile: buffers outside guest memory and overflowing lengths" {
    var h: Hostile = .{};
    const descs = [_]queue.Descriptor{
        .{ .addr = 0x1000, .len = 16, .flags = 0, .next = 0 }, // below RAM
        .{ .addr = base + h.backing.len - 8, .len = 16, .flags = queue.desc_f_write, .next = 0 },
        .{ .addr = std.math.maxInt(u64) - 4, .len = 0xffff_ffff, .flags = 0, .next = 0 },
    };
    for (descs) |desc| try h.expectChainRejected(desc, error.BufferInvalid);
}

test "hostile: readable after writable" {
    var h: Hostile = .{};
    h.init();
    h.dq.setDesc(0, .{ .addr = h.buf(4), .len = 4, .flags = queue.desc_f_write | queue.desc_f_next, .next = 1 });
    h.dq.setDesc(1, .{ .addr = h.buf(4), .len = 4, .flags = 0, .next = 0 });
    h.dq.pushAvail(0);
    try h.expectRejected(error.DescriptorOrderInvalid);
}

test "hostile: malformed indirect tables" {
    var h: Hostile = .{};
    const Case = struct { len: u32, flags: u16, nested: bool = false, loop: bool = false, expected: queue.Error };
    const cases = [_]Case{
        .{ .len = 24, .flags = queue.desc_f_indirect, .expected = error.IndirectTableInvalid }, // not ×16
        .{ .len = 0, .flags = queue.desc_f_indirect, .expected = error.IndirectTableInvalid },
        .{ .len = 32, .flags = queue.desc_f_indirect | queue.desc_f_next, .expected = error.IndirectTableInvalid },
        .{ .len = 16 * (queue.indirect_entries_max + 1), .flags = queue.desc_f_indirect, .expected = error.IndirectTableInvalid },
        .{ .len = 32, .flags = queue.desc_f_indirect, .nested = true, .expected = error.IndirectTableInvalid },
        .{ .len = 32, .flags = queue.desc_f_indirect, .loop = true, .expected = error.ChainTooLong },
    };
    for (cases) |c| {
        h.init();
        const table = h.g.alloc(32, 16); // oversized lengths fail before the range check
        const data = h.buf(8);
        // Entry 0 → entry 1; entry 1 is nested-indirect, loops back, or ends the chain.
        h.g.mem.write(queue.Descriptor, table, .{ .addr = data, .len = 8, .flags = queue.desc_f_next, .next = 1 }) catch unreachable;
        const second: queue.Descriptor = if (c.nested)
            .{ .addr = table, .len = 32, .flags = queue.desc_f_indirect, .next = 0 }
        else if (c.loop)
            .{ .addr = data, .len = 8, .flags = queue.desc_f_next, .next = 0 }
        else
            .{ .addr = data, .len = 8, .flags = queue.desc_f_write, .next = 0 };
        h.g.mem.write(queue.Descriptor, table + 16, second) catch unreachable;
        h.dq.setDesc(0, .{ .addr = table, .len = c.len, .flags = c.flags, .next = 1 });
        h.dq.pushAvail(0);
        try h.expectRejected(c.expected);
    }
    // An indirect table that runs off guest memory.
    try h.expectChainRejected(.{ .addr = base + h.backing.len - 16, .len = 32, .flags = queue.desc_f_indirect, .next = 0 }, error.IndirectTableInvalid);
}

test "hostile: chain totals beyond 4 GiB" {
    // Reserve (never touch) 8 GiB of address space as a huge guest region: descriptors are
    // validated against it without any access.
    const len: usize = 8 << 30;
    const reserved = sys.mmap(len, .{}, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0) catch return error.SkipZigTest;
    defer sys.munmap(reserved);
    var h: Hostile = .{};
    h.init();
    const huge_base: u64 = 1 << 40;
    h.g.mem.addRegion(huge_base, reserved) catch unreachable;
    h.dq.setDesc(0, .{ .addr = huge_base, .len = 0xffff_0000, .flags = queue.desc_f_next, .next = 1 });
    h.dq.setDesc(1, .{ .addr = huge_base + (4 << 30), .len = 0x2_0000, .flags = 0, .next = 0 });
    h.dq.pushAvail(0);
    try h.expectRejected(error.ChainLengthOverflow);
}

test "a chain may span two adjacent guest memory regions" {
    var low: [8192]u8 align(4096) = undefined;
    var high: [8192]u8 align(4096) = undefined;
    var g = t.Guest.init(&low, base);
    g.mem.addRegion(base + low.len, &high) catch unreachable;
    var dq = t.DriverQueue.init(&g, 4);
    var q = dq.deviceQueue(4);
    const addr = base + low.len - 3;
    @memcpy(low[low.len - 3 ..], "abc");
    @memcpy(high[0..3], "def");
    dq.setDesc(0, .{ .addr = addr, .len = 6, .flags = 0, .next = 0 });
    dq.pushAvail(0);
    const chain = (try q.pop(&g.mem)).?;
    var r = chain.reader();
    var b: [6]u8 = undefined;
    try r.readAll(&b);
    try testing.expectEqualStrings("abcdef", &b);
}
