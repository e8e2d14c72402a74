//! virtio-net driven by a test-side guest (net/testing.zig) over simulated guest memory, with a
//! real socketpair as the backend (the passt side is the test): frames both ways with passt
//! framing, checksum completion, hostile headers and lengths from either side, back-pressure
//! from a peer that does not read, and the datagram backend. A real tap device: tap_tests.zig;
//! bulk streams: bulk_tests.zig.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const mmio = @import("../mmio.zig");
const frame = @import("frame.zig");
const net = @import("Net.zig");
const Fixture = @import("testing.zig").Fixture;
const rx_buf = @import("testing.zig").rx_buf;
const ethFrame = @import("testing.zig").ethFrame;
const framed = @import("testing.zig").framed;

test "net: config space has the MAC, features are the served subset" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0xffff_ffff);
    defer fx.deinit();
    var mac: [6]u8 = undefined;
    for (&mac, 0..) |*b, i| b.* = @truncate(fx.d.read32(mmio.Reg.config + i) & 0xff);
    try testing.expectEqualSlices(u8, &.{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee }, &mac);
    const f = fx.d.deviceFeatures();
    try testing.expect(f & (1 << net.feature_csum) != 0);
    try testing.expect(f & (1 << net.feature_host_tso4) == 0);
    try testing.expect(f & (1 << mmio.feature_version_1) != 0);
}

test "net: frames both ways over passt framing" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    var fb: [60]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 0xab));
    var got: [256]u8 = undefined;
    const n = fx.peerRead(&got);
    try testing.expectEqual(@as(usize, 64), n);
    try testing.expectEqual(@as(u32, 60), std.mem.readInt(u32, got[0..4], .big));
    try testing.expectEqualSlices(u8, &fb, got[4..64]);
    try testing.expectEqual(@as(u16, 1), fx.tx.usedIdx());

    // Host → guest: two frames in one write, the second split across writes.
    var wire: [512]u8 = undefined;
    var f1: [100]u8 = undefined;
    var f2: [70]u8 = undefined;
    const a = framed(wire[0..], ethFrame(&f1, 1));
    const b = framed(wire[a.len..], ethFrame(&f2, 2));
    fx.postRx(4, rx_buf);
    try fx.peerWrite(wire[0 .. a.len + 10]);
    fx.pump();
    try fx.peerWrite(wire[a.len + 10 .. a.len + b.len]);
    fx.pump();
    const r1 = fx.rx.takeUsedBytes().?;
    try testing.expectEqual(@as(usize, frame.header_size + 100), r1.len);
    try testing.expectEqualSlices(u8, &f1, r1[frame.header_size..]);
    try testing.expectEqual(@as(u16, 1), std.mem.readInt(u16, r1[10..12], .little)); // num_buffers
    const r2 = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &f2, r2[frame.header_size..]);
    try testing.expectEqual(@as(?[]u8, null), fx.rx.takeUsedBytes());
}

test "net: checksum completion and hostile guest headers" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 1 << net.feature_csum);
    defer fx.deinit();
    var fb: [40]u8 = @splat(0);
    fb[20] = 0x12;
    fb[21] = 0x34;
    fx.send(.{ .flags = frame.flag_needs_csum, .csum_start = 20, .csum_offset = 4 }, &fb);
    var got: [256]u8 = undefined;
    try testing.expectEqual(@as(usize, 44), fx.peerRead(&got));
    try testing.expectEqual(~@as(u16, 0x1234), std.mem.readInt(u16, got[4 + 24 ..][0..2], .big));
    // Bad: checksum field past the end, GSO never offered, runt, no header at all.
    fx.send(.{ .flags = frame.flag_needs_csum, .csum_start = 30, .csum_offset = 9 }, &fb);
    fx.send(.{ .gso_type = 1, .gso_size = 1000 }, &fb);
    fx.send(.{}, fb[0..10]);
    _ = fx.tx.post(&.{"short"}, &.{});
    fx.d.notify(1);
    try testing.expectEqual(@as(usize, 0), fx.peerRead(&got));
    try testing.expectEqual(@as(u64, 4), fx.dev.stats.tx_dropped);
    try testing.expectEqual(@as(u16, 5), fx.tx.usedIdx()); // every chain returned
    // The device still works.
    fx.send(.{}, &fb);
    try testing.expectEqual(@as(usize, 44), fx.peerRead(&got));
}

test "net: hostile backend lengths are skipped; small guest buffers drop frames, not the device" {
    var fx: Fixture = .{ .wanted = ~@as(u64, 1 << net.feature_mrg_rxbuf) };
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    fx.postRx(2, rx_buf);
    var wire: [4096]u8 = undefined;
    // A 5-byte "frame" (runt), then a 2000-byte one too big for the guest's buffer (dropped,
    // the buffer stays), then a good one.
    var runt: [5]u8 = @splat(9);
    var big: [2000]u8 = undefined;
    var good: [64]u8 = undefined;
    const a = framed(wire[0..], &runt);
    const b = framed(wire[a.len..], ethFrame(&big, 3));
    const c = framed(wire[a.len + b.len ..], ethFrame(&good, 4));
    try fx.peerWrite(wire[0 .. a.len + b.len + c.len]);
    fx.pump();
    const r = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &good, r[frame.header_size..]);
    try testing.expectEqual(@as(u64, 2), fx.dev.stats.rx_dropped);
    // A length of 4 GiB: skipped as its bytes arrive, then the stream is in step again.
    std.mem.writeInt(u32, wire[0..4], 0xffff_fff0, .big);
    try fx.peerWrite(wire[0..4]);
    try fx.peerWrite(wire[0..1000]);
    fx.pump();
    try testing.expect(fx.dev.rx_skip > 0);
    try testing.expectEqual(@as(u32, 0), fx.dev.rx.len());
}

test "net: a backend that does not read pushes back on the guest, then drains" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    // A small socket buffer: 250 frames are more than it and our ring hold together.
    const small: i32 = 4096;
    sys.setsockopt(fx.dev.fd, linux.SOL.SOCKET, linux.SO.SNDBUF, std.mem.asBytes(&small)) catch {};
    var chain: [frame.header_size + 1514]u8 = undefined;
    @memset(chain[0..frame.header_size], 0);
    _ = ethFrame(chain[frame.header_size..], 7);
    var sent: u32 = 0;
    while (sent < 250) : (sent += 1) _ = fx.tx.post(&.{&chain}, &.{});
    fx.d.notify(1);
    const done_first = fx.tx.usedIdx();
    try testing.expect(done_first < 250);
    try testing.expect(fx.dev.tx_waiting);
    // The peer reads everything; EPOLLOUT resumes the queue until all chains are used.
    var total: usize = 0;
    var buf: [65536]u8 = undefined;
    for (0..1000) |_| {
        const n = fx.peerRead(&buf);
        total += n;
        fx.pump();
        if (fx.tx.usedIdx() == 250 and n == 0) break;
    }
    try testing.expectEqual(@as(u16, 250), fx.tx.usedIdx());
    try testing.expectEqual(@as(usize, 250 * (1514 + 4)), total);
}

test "net: a guest that posts no rx buffers stops the reads (bounded), then gets the frames" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    var wire: [1600]u8 = undefined;
    var fb: [1500]u8 = undefined;
    const one = framed(&wire, ethFrame(&fb, 5));
    var written: u32 = 0;
    while (written < 40) : (written += 1) try fx.peerWrite(one);
    fx.pump();
    try testing.expect(fx.dev.rx.len() <= net.ring_size);
    fx.postRx(64, rx_buf);
    fx.pump();
    var got: u32 = 0;
    while (fx.rx.takeUsedBytes()) |r| : (got += 1) try testing.expectEqual(@as(usize, frame.header_size + 1500), r.len);
    try testing.expectEqual(@as(u32, 40), got);
}

test "net: MRG_RXBUF: a 64 KiB frame (passt's MTU) across 4 KiB buffers, waiting for enough of them" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, @import("../../Config.zig").compat_net_features);
    defer fx.deinit();
    try testing.expect(fx.tr.driver_features & (1 << net.feature_mrg_rxbuf) != 0);
    const wire = try testing.allocator.alloc(u8, 4 + 65534);
    defer testing.allocator.free(wire);
    const big = wire[4..];
    for (big, 0..) |*b, i| b.* = @truncate(i *% 7 +% (i >> 9));
    std.mem.writeInt(u32, wire[0..4], @intCast(big.len), .big);
    const bufs: u32 = (frame.header_size + 65534 + 4095) / 4096; // 17
    // Too few buffers: the frame waits in the device (no drop), the reads stop.
    fx.postRx(bufs - 1, 4096);
    try fx.peerWrite(wire);
    fx.pump();
    try testing.expectEqual(@as(u16, 0), fx.rx.usedIdx());
    try testing.expectEqual(@as(u64, 0), fx.dev.stats.rx_dropped);
    // One more: all 17 come back at once, the first header says how many, each filled in turn.
    fx.postRx(1, 4096);
    fx.pump();
    try testing.expectEqual(@as(u16, bufs), fx.rx.usedIdx());
    var got: std.ArrayList(u8) = .empty;
    defer got.deinit(testing.allocator);
    var k: u32 = 0;
    while (fx.rx.takeUsedBytes()) |r| : (k += 1) {
        if (k == 0) {
            try testing.expectEqual(@as(u16, @intCast(bufs)), std.mem.readInt(u16, r[10..12], .little));
            try got.appendSlice(testing.allocator, r[frame.header_size..]);
        } else try got.appendSlice(testing.allocator, r);
        if (k + 1 < bufs) try testing.expectEqual(@as(usize, 4096), r.len);
    }
    try testing.expectEqualSlices(u8, big, got.items);
    // A driver error: a buffer smaller than a header breaks the queue, not the device.
    fx.postRx(1, 8);
    std.mem.writeInt(u32, wire[0..4], 100, .big);
    try fx.peerWrite(wire[0 .. 4 + 100]);
    fx.pump();
    try testing.expect(fx.tr.queues[0].isBroken());
}

test "net: datagram backend carries one frame per datagram" {
    var fx: Fixture = .{};
    try fx.init(.unixgram, 0);
    defer fx.deinit();
    var fb: [80]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 6));
    var got: [256]u8 = undefined;
    try testing.expectEqual(@as(usize, 80), fx.peerRead(&got));
    fx.postRx(2, rx_buf);
    try fx.peerWrite(ethFrame(&fb, 8));
    try fx.peerWrite(fb[0..3]); // a runt datagram: dropped
    fx.pump();
    const r = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &fb, r[frame.header_size..]);
    try testing.expectEqual(@as(?[]u8, null), fx.rx.takeUsedBytes());
}

test "net: peer hangs up: the NIC stops quietly, chains still come back" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    sys.close(fx.peer);
    fx.peer = -1;
    fx.pump();
    var fb: [60]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 1));
    fx.send(.{}, &fb);
    try testing.expect(fx.dev.dead);
    try testing.expectEqual(@as(u16, 2), fx.tx.usedIdx());
}
