//! Fuzz target for the vsock packet path and the TSI decoders: `zig build fuzz` →
//! zig-out/bin/fuzz-vsock (smoke run:
//! tests/native/fuzz-vsock.sh). Built ReleaseSafe: any out-of-bounds access, overflow or
//! assertion is a crash.
//! - Device cases: a fresh device with TSI on (but no family allowed, so no request ever opens a
//!   host socket: decoding and the error paths run, nothing reaches the network) takes random
//!   and mutated packets from a test-side guest: headers with random fields, lengths beyond the
//!   payload, ops out of order, credit lies, TSI requests with random bytes, random rx buffer
//!   sizes. Checked after every step: the connection count stays within the cap, every packet
//!   the device gave the guest is well-formed (CIDs 2 → 3, a known op, len = bytes written),
//!   and no ring holds more than it may.
//! - Decoder cases: random and mutated TSI requests and datagram frames through tsi/wire.zig.
//!
//! Usage: fuzz-vsock [iterations (default 2000)] [seed]
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const zkrun = @import("zkrun");
const packet = zkrun.virtio.vsock.packet;
const Header = packet.Header;
const Op = packet.Op;
const vsock = zkrun.virtio.vsock.Vsock;
const Vsock = vsock.Vsock;
const vt = zkrun.virtio.vsock.testing;
const wire = zkrun.tsi.wire;

const Stats = struct {
    cases: u64 = 0,
    packets: u64 = 0,
    delivered: u64 = 0,
    rsts: u64 = 0,
    broken: u64 = 0,
    requests: u64 = 0,
    requests_valid: u64 = 0,
    frames_valid: u64 = 0,
};

pub fn main(init: std.process.Init) !u8 {
    var run = try fuzz_args.fromInit(init, 2000);
    const rnd = run.prng.random();
    const gpa = std.heap.page_allocator;
    const backing = try gpa.alignedAlloc(u8, .fromByteUnits(4096), 8 << 20);
    const dev = try gpa.create(Vsock);
    const drv = try gpa.create(vt.Driver);
    var stats: Stats = .{};
    for (0..run.iterations) |_| {
        try deviceCase(rnd, gpa, backing, dev, drv, &stats);
        decoderCases(rnd, &stats);
        stats.cases += 1;
    }
    std.debug.print("fuzz-vsock: {d} cases (seed {d}): {d} packets in, {d} out ({d} RST), {d} queues broken; TSI: {d} requests ({d} valid), {d} valid frames\n", .{ stats.cases, run.seed, stats.packets, stats.delivered, stats.rsts, stats.broken, stats.requests, stats.requests_valid, stats.frames_valid });
    return 0;
}

fn deviceCase(rnd: std.Random, gpa: std.mem.Allocator, backing: []u8, dev: *Vsock, drv: *vt.Driver, stats: *Stats) !void {
    try dev.init(gpa, .{ .tsi = .{ .inet = false, .unix = false } });
    defer dev.deinit(gpa);
    try drv.init(backing, dev);
    defer drv.deinit();
    const steps = rnd.intRangeAtMost(u32, 1, 60);
    for (0..steps) |_| {
        if (drv.tr.queues[0].isBroken() or drv.tr.queues[1].isBroken()) {
            stats.broken += 1;
            return;
        }
        if (drv.g.next_free + 300_000 > drv.g.base + drv.g.len) return; // guest RAM used up
        switch (rnd.uintLessThan(u8, 10)) {
            0 => postRx(rnd, drv),
            1 => {
                var raw: [96]u8 = undefined;
                rnd.bytes(&raw);
                drv.sendRaw(raw[0..rnd.uintAtMost(usize, raw.len)]);
            },
            else => sendPacket(rnd, drv),
        }
        stats.packets += 1;
        drv.pump();
        try check(drv, dev, stats);
    }
}

fn postRx(rnd: std.Random, drv: *vt.Driver) void {
    const n = rnd.intRangeAtMost(u32, 1, 8);
    for (0..n) |_| {
        const size: u32 = if (rnd.boolean()) vt.Driver.rx_buf else rnd.intRangeAtMost(u32, 44, 9000);
        _ = drv.rx.post(&.{}, &.{size});
    }
    drv.d.notify(0);
}

/// A packet that is mostly valid (a small set of ports, a plausible op) with random mutations.
fn sendPacket(rnd: std.Random, drv: *vt.Driver) void {
    const guest_ports = [_]u32{ 1000, 1001, 1002 };
    const host_ports = [_]u32{ 620, 620, 1234, 0xffff_ffff };
    var h = vt.hdr(rnd.intRangeAtMost(u16, Op.request, Op.credit_request), guest_ports[rnd.uintLessThan(usize, guest_ports.len)], host_ports[rnd.uintLessThan(usize, host_ports.len)]);
    h.buf_alloc = if (rnd.boolean()) 256 * 1024 else rnd.int(u32);
    h.fwd_cnt = if (rnd.boolean()) 0 else rnd.int(u32);
    var payload: [400]u8 = undefined;
    var len: usize = 0;
    if (h.op == Op.rw) {
        len = rnd.uintAtMost(usize, payload.len);
        if (rnd.uintLessThan(u8, 3) == 0 and len >= wire.request_size) {
            // A TSI request, valid or mutated.
            var req = wire.inetRequest(@fromBackingInt(@intCast(rnd.intRangeAtMost(u16, 1, 3))), .{ 127, 0, 0, 1 }, rnd.int(u16));
            const bytes = std.mem.asBytes(&req);
            for (0..rnd.uintAtMost(u32, 3)) |_| bytes[rnd.uintLessThan(usize, bytes.len)] = rnd.int(u8);
            @memcpy(payload[0..wire.request_size], bytes);
            rnd.bytes(payload[wire.request_size..len]);
        } else rnd.bytes(payload[0..len]);
        h.len = @intCast(len);
    }
    if (h.op == Op.shutdown) h.flags = rnd.uintAtMost(u32, 3);
    switch (rnd.uintLessThan(u8, 12)) {
        0 => h.len = rnd.int(u32), // a length the chain does not hold
        1 => h.type = rnd.int(u16),
        2 => h.op = rnd.int(u16),
        3 => h.flags = rnd.int(u32),
        4 => h.src_cid = rnd.int(u64),
        5 => h.dst_port = rnd.int(u32),
        else => {},
    }
    drv.send(h, payload[0..len]);
}

/// Every packet the device gave the guest is well-formed; the table stays within its bounds.
fn check(drv: *vt.Driver, dev: *Vsock, stats: *Stats) !void {
    while (drv.rx.takeUsed()) |u| {
        if (u.len < packet.header_size) return error.ShortPacketToGuest;
        const bytes = drv.g.bytes(drv.rx.in_addrs[u.id], u.len);
        var h: Header = undefined;
        @memcpy(std.mem.asBytes(&h), bytes[0..packet.header_size]);
        if (h.src_cid != packet.host_cid or h.dst_cid != packet.guest_cid) return error.BadCidToGuest;
        if (h.type != packet.type_stream or h.op < Op.request or h.op > Op.credit_request) return error.BadOpToGuest;
        if (h.len != u.len - packet.header_size or h.len > packet.payload_max) return error.BadLenToGuest;
        if (h.op == Op.rst) stats.rsts += 1;
        stats.delivered += 1;
    }
    if (dev.live_len > vsock.conns_max) return error.TooManyConnections;
    for (dev.live[0..dev.live_len]) |i| {
        const c = &dev.conns[i];
        if (c.state == .free) return error.FreeConnectionLive;
        if (c.toHostLen() > vsock.to_host_size) return error.RingOverflow;
        if (c.tg_off > c.tg_len or c.tg_len > c.to_guest.len) return error.StagingOverflow;
        if (c.fd >= 0) return error.HostFdOpened; // no family is allowed, no port is bridged
    }
}

fn decoderCases(rnd: std.Random, stats: *Stats) void {
    for (0..50) |_| {
        var req = wire.inetRequest(@fromBackingInt(@intCast(rnd.intRangeAtMost(u16, 1, 3))), .{ 10, 0, 0, 1 }, rnd.int(u16));
        const bytes = std.mem.asBytes(&req);
        if (rnd.uintLessThan(u8, 4) == 0) rnd.bytes(bytes) else {
            for (0..rnd.uintAtMost(u32, 4)) |_| bytes[rnd.uintLessThan(usize, bytes.len)] = rnd.int(u8);
        }
        if (rnd.boolean()) req.magic = wire.magic;
        if (rnd.boolean()) req.version = wire.version;
        stats.requests += 1;
        switch (wire.decodeRequest(&req)) {
            .ok => |d| {
                stats.requests_valid += 1;
                if (d.addr) |a| if (a.len > wire.addr_bytes_max) @panic("address longer than its buffer");
            },
            .invalid => {},
        }
        var f: wire.Frame = undefined;
        rnd.bytes(std.mem.asBytes(&f));
        if (rnd.boolean()) f.data_len %= 70000;
        if (rnd.boolean()) f.addr_len %= 140;
        const fams = [_]wire.Family{ .inet, .inet6, .unix };
        const fam = fams[rnd.uintLessThan(usize, 3)];
        if (rnd.boolean()) {
            // Mostly well-formed: the family's own sockaddr (a UNIX path starts with '/').
            std.mem.writeInt(u16, f.addr[0..2], @backingInt(fam), .little);
            f.addr_len = switch (fam) {
                .inet => 16,
                .inet6 => 28,
                .unix => rnd.intRangeAtMost(u32, 3, 128),
            };
            if (fam == .unix) f.addr[2] = '/';
        }
        switch (wire.decodeFrame(&f, fam)) {
            .ok => |ok| {
                stats.frames_valid += 1;
                if (ok.len > wire.data_len_max or ok.to.len > wire.addr_bytes_max) @panic("frame beyond its bounds");
            },
            .invalid => {},
        }
    }
}
