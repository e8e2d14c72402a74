//! Fuzz target for virtio-net: `zig build fuzz` → zig-out/bin/fuzz-net (smoke run:
//! tests/native/fuzz-net.sh). Built ReleaseSafe: any
//! out-of-bounds access, overflow or assertion is a crash.
//! Each case builds a fresh device on a socketpair (stream with passt framing, or datagrams)
//! and a simulated guest, then mixes: transmit chains with random headers (flags, GSO, checksum
//! offsets), random lengths and random descriptor splits; receive buffers of random sizes
//! (some below the header size); and backend bytes that are random, framed with random length
//! prefixes, or well-formed frames. Checked after every step: every buffer the device returned
//! to the guest holds no more than was posted; a frame's first buffer has a header whose
//! num_buffers is 1 (without MRG_RXBUF) or says how many buffers follow, all published
//! together, every one but the last filled, the frame's length in range; no frame reached the
//! peer with a bad prefix or length, and neither ring holds more than its size.
//!
//! Usage: fuzz-net [iterations (default 2000)] [seed]
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const zkrun = @import("zkrun");
const t = zkrun.virtio.testing;
const mmio = zkrun.virtio.mmio;
const frame = zkrun.virtio.net.frame;
const net = zkrun.virtio.net.Net;
const Net = net.Net;

const Stats = struct {
    cases: u64 = 0,
    tx: u64 = 0,
    rx_delivered: u64 = 0,
    peer_frames: u64 = 0,
    broken: u64 = 0,
};

pub fn main(init: std.process.Init) !u8 {
    var run = try fuzz_args.fromInit(init, 2000);
    const rnd = run.prng.random();
    const gpa = std.heap.page_allocator;
    const backing = try gpa.alignedAlloc(u8, .fromByteUnits(4096), 8 << 20);
    const c = try gpa.create(Case);
    var stats: Stats = .{};
    for (0..run.iterations) |_| {
        try c.run(rnd, gpa, backing, &stats);
        stats.cases += 1;
    }
    std.debug.print("fuzz-net: {d} cases (seed {d}): {d} tx chains, {d} frames to the guest, {d} frames to the peer, {d} queues broken\n", .{ stats.cases, run.seed, stats.tx, stats.rx_delivered, stats.peer_frames, stats.broken });
    return 0;
}

const Case = struct {
    g: t.Guest,
    tr: mmio.Transport,
    d: t.MmioDriver,
    rx: t.DriverQueue,
    tx: t.DriverQueue,
    dev: Net,
    peer: i32,
    stream: bool,
    rx_outstanding: u32,
    rx_posted_len: [256]u32,
    /// Bytes the peer read, for the stream framing check.
    peer_buf: [1 << 17]u8,
    peer_len: usize,

    fn run(c: *Case, rnd: std.Random, gpa: std.mem.Allocator, backing: []u8, stats: *Stats) !void {
        c.stream = rnd.boolean();
        var fds: [2]i32 = undefined;
        const ty: u32 = if (c.stream) linux.SOCK.STREAM else linux.SOCK.DGRAM;
        if (linux.socketpair(linux.AF.UNIX, ty | linux.SOCK.CLOEXEC | linux.SOCK.NONBLOCK, 0, &fds) != 0) return error.Socketpair;
        c.peer = fds[1];
        defer _ = linux.close(c.peer);
        try c.dev.init(gpa, .{ .fd = fds[0], .kind = if (c.stream) .unixstream else .unixgram, .mac = .{ 2, 0, 0, 0, 0, 1 }, .features = rnd.int(u32) });
        defer c.dev.deinit(gpa);
        c.g = t.Guest.init(backing, 0x10_0000);
        c.tr.init(c.dev.device(), &c.g.mem);
        defer c.tr.shutdown();
        c.d = .{ .t = &c.tr };
        if (!c.d.negotiate(rnd.int(u64) | (1 << mmio.feature_version_1))) return;
        c.rx = t.DriverQueue.init(&c.g, 256);
        c.tx = t.DriverQueue.init(&c.g, 256);
        c.d.setupQueue(0, &c.rx);
        c.d.setupQueue(1, &c.tx);
        c.d.addStatus(mmio.Status.driver_ok);
        c.rx_outstanding = 0;
        c.peer_len = 0;
        const steps = rnd.intRangeAtMost(u32, 1, 60);
        for (0..steps) |_| {
            if (c.tr.queues[0].isBroken() or c.tr.queues[1].isBroken()) {
                stats.broken += 1;
                return;
            }
            if (c.g.next_free + 300_000 > c.g.base + c.g.len) return;
            switch (rnd.uintLessThan(u8, 4)) {
                0 => c.postRx(rnd),
                1 => c.peerSend(rnd),
                else => {
                    c.sendTx(rnd);
                    stats.tx += 1;
                },
            }
            c.pump();
            try c.check(stats);
        }
    }

    fn postRx(c: *Case, rnd: std.Random) void {
        const n = rnd.intRangeAtMost(u32, 1, 8);
        for (0..n) |_| {
            if (c.rx_outstanding >= 64) break;
            // With MRG_RXBUF a buffer below a header breaks the queue: mostly not those then.
            const mrg = c.tr.driver_features & (1 << net.feature_mrg_rxbuf) != 0;
            const small_min: u32 = if (mrg and rnd.uintLessThan(u8, 8) != 0) frame.header_size else 0;
            const size: u32 = switch (rnd.uintLessThan(u8, 4)) {
                0 => frame.header_size + 1514,
                1 => rnd.intRangeAtMost(u32, small_min, 40),
                2 => 4096,
                else => rnd.intRangeAtMost(u32, 1, 70_000),
            };
            const p = c.rx.post(&.{}, &.{size});
            c.rx_posted_len[p.head] = size;
            c.rx_outstanding += 1;
        }
        c.d.notify(0);
    }

    fn sendTx(c: *Case, rnd: std.Random) void {
        var h: frame.Header = .{};
        if (rnd.boolean()) rnd.bytes(std.mem.asBytes(&h)) else if (rnd.boolean()) {
            h.flags = frame.flag_needs_csum;
            h.csum_start = rnd.uintAtMost(u16, 100);
            h.csum_offset = rnd.uintAtMost(u16, 20);
        }
        var data: [3000]u8 = undefined;
        const len = if (rnd.boolean()) rnd.uintAtMost(usize, 120) else rnd.uintAtMost(usize, data.len);
        rnd.bytes(data[0..len]);
        const hb = std.mem.asBytes(&h);
        // Random layouts: header alone or glued to the data, the data in up to 3 pieces.
        var whole: [frame.header_size + 3000]u8 = undefined;
        switch (rnd.uintLessThan(u8, 3)) {
            0 => _ = c.tx.post(&.{ hb, data[0..len] }, &.{}),
            1 => {
                @memcpy(whole[0..hb.len], hb);
                @memcpy(whole[hb.len..][0..len], data[0..len]);
                const cut = rnd.uintAtMost(usize, hb.len + len);
                _ = c.tx.post(&.{ whole[0..cut], whole[cut .. hb.len + len] }, &.{});
            },
            else => _ = c.tx.post(&.{hb[0..rnd.uintAtMost(usize, hb.len)]}, &.{rnd.uintAtMost(u32, 64)}),
        }
        c.d.notify(1);
    }

    fn peerSend(c: *Case, rnd: std.Random) void {
        var buf: [4096]u8 = undefined;
        var len: usize = rnd.uintAtMost(usize, buf.len);
        switch (rnd.uintLessThan(u8, 3)) {
            0 => rnd.bytes(buf[0..len]),
            1 => if (len >= 4) {
                rnd.bytes(buf[4..len]);
                std.mem.writeInt(u32, buf[0..4], if (rnd.boolean()) rnd.int(u32) else @intCast(len - 4), .big);
            },
            else => {
                len = @max(len, 4 + frame.eth_header_size);
                rnd.bytes(buf[4..len]);
                std.mem.writeInt(u32, buf[0..4], @intCast(len - 4), .big);
            },
        }
        const out = if (c.stream) buf[0..len] else buf[4..@max(len, 4)];
        _ = linux.write(c.peer, out.ptr, out.len);
    }

    fn pump(c: *Case) void {
        for (0..64) |_| {
            var pfd = [1]linux.pollfd{.{ .fd = c.dev.epfd, .events = linux.POLL.IN, .revents = 0 }};
            if (linux.poll(&pfd, 1, 0) != 1) break;
            c.dev.device().vtable.backendReady.?(&c.dev, c.dev.epfd);
        }
    }

    fn check(c: *Case, stats: *Stats) !void {
        const mrg = c.tr.driver_features & (1 << net.feature_mrg_rxbuf) != 0;
        while (c.rx.takeUsed()) |u| {
            c.rx_outstanding -= 1;
            if (u.len < frame.header_size or u.len > c.rx_posted_len[u.id]) return error.BadRxLength;
            const bytes = c.g.bytes(c.rx.in_addrs[u.id], u.len);
            const n = std.mem.readInt(u16, bytes[10..12], .little);
            if (n == 0 or (!mrg and n != 1)) return error.BadNumBuffers;
            // The frame's other buffers: already published, each but the last one full.
            var total: usize = u.len;
            var last = u;
            for (1..n) |_| {
                if (last.len != c.rx_posted_len[last.id]) return error.BufferNotFilled;
                last = c.rx.takeUsed() orelse return error.BuffersNotPublishedTogether;
                c.rx_outstanding -= 1;
                if (last.len == 0 or last.len > c.rx_posted_len[last.id]) return error.BadRxLength;
                total += last.len;
            }
            if (total < frame.header_size + frame.eth_header_size or total > frame.header_size + frame.frame_max) return error.BadRxLength;
            stats.rx_delivered += 1;
        }
        while (c.tx.takeUsed()) |u| if (u.len != 0) return error.BadTxUsedLength;
        if (c.dev.rx.len() > net.ring_size or c.dev.tx.len() > net.ring_size) return error.RingOverflow;
        // What the peer received: whole, well-formed records only.
        while (true) {
            var room = c.peer_buf[c.peer_len..];
            if (!c.stream) room = c.peer_buf[4..];
            const n = linux.read(c.peer, room.ptr, room.len);
            if (linux.errno(n) != .SUCCESS or n == 0) break;
            if (!c.stream) {
                if (n < frame.eth_header_size or n > frame.frame_max) return error.BadDatagram;
                stats.peer_frames += 1;
                continue;
            }
            c.peer_len += n;
            while (c.peer_len >= 4) {
                const flen = std.mem.readInt(u32, c.peer_buf[0..4], .big);
                if (flen < frame.eth_header_size or flen > frame.frame_max) return error.BadPrefix;
                if (c.peer_len < 4 + flen) break;
                std.mem.copyForwards(u8, c.peer_buf[0 .. c.peer_len - 4 - flen], c.peer_buf[4 + flen .. c.peer_len]);
                c.peer_len -= 4 + flen;
                stats.peer_frames += 1;
            }
        }
    }
};
