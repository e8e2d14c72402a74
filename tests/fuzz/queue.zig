//! Fuzz target for the split-virtqueue walker (queue.zig): `zig build fuzz` →
//! zig-out/bin/fuzz-queue (smoke run:
//! tests/native/fuzz-queue.sh). Every iteration lays out a queue of random size in guest
//! memory the driver fully controls and fills it with either random descriptors or a valid
//! chain with random mutations (indices, flags, lengths, addresses, avail idx), then plays the
//! device: pop, read/peek/iovecs, write, addUsed, needsNotification, EVENT_IDX on and off.
//! Built ReleaseSafe: any out-of-bounds access, overflow or assertion is a crash. It also
//! checks that an error always leaves the queue broken, that a broken queue stays broken, and
//! that the used index moves exactly with addUsed.
//!
//! Usage: fuzz-queue [iterations (default 200000)] [seed]
//!        fuzz-queue bench [rounds (default 20000)]   (device-side cost per chain, see BENCHMARKS.md)
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const zkrun = @import("zkrun");
const queue = zkrun.virtio.queue;
const t = zkrun.virtio.testing;

const ram_base: u64 = 0x10000;
const ram_len = 64 * 1024;
/// A second region right after the first, so chains can span a region boundary.
const ram2_len = 16 * 1024;

const Stats = struct {
    iterations: u64 = 0,
    chains: u64 = 0,
    bytes_read: u64 = 0,
    bytes_written: u64 = 0,
    errors: [32]u64 = @splat(0),
    broken: u64 = 0,
};

pub fn main(init: std.process.Init) !u8 {
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    if (args.len > 1 and std.mem.eql(u8, args[1], "bench")) return bench(if (args.len > 2) try std.fmt.parseInt(u64, args[2], 10) else 20_000);
    var run = try fuzz_args.parse(args[1..], 200_000);
    const iterations = run.iterations;
    const seed = run.seed;
    const rnd = run.prng.random();
    const ram = try std.heap.page_allocator.alignedAlloc(u8, .fromByteUnits(4096), ram_len);
    const ram2 = try std.heap.page_allocator.alignedAlloc(u8, .fromByteUnits(4096), ram2_len);
    var stats: Stats = .{};
    for (0..iterations) |_| {
        try oneCase(rnd, ram, ram2, &stats);
        stats.iterations += 1;
    }
    std.debug.print("fuzz-queue: {d} cases (seed {d}): {d} chains, {d} bytes read, {d} written, {d} queues broken; errors:", .{ stats.iterations, seed, stats.chains, stats.bytes_read, stats.bytes_written, stats.broken });
    inline for (@typeInfo(queue.Error).error_set.error_names.?, 0..) |name, i| {
        if (stats.errors[i] > 0) std.debug.print(" {s}={d}", .{ name, stats.errors[i] });
    }
    std.debug.print("\n", .{});
    return 0;
}

fn errorIndex(err: queue.Error) usize {
    inline for (@typeInfo(queue.Error).error_set.error_names.?, 0..) |name, i| {
        if (err == @field(queue.Error, name)) return i;
    }
    unreachable;
}

fn oneCase(rnd: std.Random, ram: []u8, ram2: []u8, stats: *Stats) !void {
    var g = t.Guest.init(ram, ram_base);
    @memset(ram2, 0);
    try g.mem.addRegion(ram_base + ram_len, ram2);
    const size: u16 = @as(u16, 1) << rnd.uintAtMost(u4, 8);
    var dq = t.DriverQueue.init(&g, size);
    var q = dq.deviceQueue(size);
    q.event_idx = rnd.boolean();
    const start = rnd.int(u16);
    q.next_avail = start;
    q.next_used = start;
    q.signalled_used = start;
    dq.avail_idx = start;
    dq.setAvailIdx(start);
    dq.guest.mem.write(u16, dq.used + 2, start) catch unreachable;

    if (rnd.boolean()) randomRing(rnd, &g, &dq) else mutatedChains(rnd, &g, &dq);
    try play(rnd, &g, &dq, &q, stats);
}

/// Descriptors and avail entries of pure noise, with addresses mostly near guest RAM.
fn randomRing(rnd: std.Random, g: *t.Guest, dq: *t.DriverQueue) void {
    for (0..dq.size) |i| {
        dq.setDesc(@intCast(i), .{
            .addr = randomAddr(rnd),
            .len = randomLen(rnd),
            .flags = rnd.uintAtMost(u16, 7) | (if (rnd.uintLessThan(u8, 16) == 0) rnd.int(u16) else 0),
            .next = if (rnd.boolean()) rnd.uintLessThan(u16, dq.size) else rnd.int(u16),
        });
    }
    const n = rnd.uintAtMost(u16, dq.size);
    for (0..n) |_| dq.pushAvail(if (rnd.uintLessThan(u8, 8) == 0) rnd.int(u16) else rnd.uintLessThan(u16, dq.size));
    // Sometimes an indirect table of noise somewhere in RAM.
    if (rnd.boolean()) {
        const entries = rnd.uintLessThan(u32, 16);
        const table = g.alloc(16 * @as(u64, entries) + 16, 16);
        rnd.bytes(g.bytes(table, 16 * @as(u64, entries) + 16));
        dq.setDesc(rnd.uintLessThan(u16, dq.size), .{ .addr = table, .len = if (rnd.boolean()) 16 * entries else rnd.int(u8), .flags = queue.desc_f_indirect | rnd.uintAtMost(u16, 3), .next = rnd.int(u16) });
    }
    if (rnd.uintLessThan(u8, 8) == 0) dq.setAvailIdx(rnd.int(u16)); // idx jumps
}

/// Well-formed chains (direct and indirect), then a few random byte or field mutations.
fn mutatedChains(rnd: std.Random, g: *t.Guest, dq: *t.DriverQueue) void {
    const chains = rnd.uintAtMost(u16, @min(dq.size, 4));
    var payload: [64]u8 = undefined;
    rnd.bytes(&payload);
    for (0..chains) |_| {
        var outs: [3][]const u8 = undefined;
        var ins: [3]u32 = undefined;
        const n_out = rnd.uintAtMost(usize, 3);
        const n_in = rnd.uintAtMost(usize, 3);
        if (n_out + n_in == 0 or n_out + n_in > dq.size) continue;
        for (outs[0..n_out]) |*o| o.* = payload[0..rnd.uintAtMost(usize, payload.len)];
        for (ins[0..n_in]) |*l| l.* = rnd.uintAtMost(u32, 300);
        if (rnd.boolean()) _ = dq.post(outs[0..n_out], ins[0..n_in]) else _ = dq.postIndirect(outs[0..n_out], ins[0..n_in]);
    }
    const mutations = rnd.uintAtMost(u8, 4);
    for (0..mutations) |_| {
        switch (rnd.uintLessThan(u8, 5)) {
            0 => { // a byte anywhere in the rings or buffers
                const off = rnd.uintLessThan(u64, g.next_free - g.base);
                g.bytes(g.base + off, 1)[0] = rnd.int(u8);
            },
            1 => { // one descriptor field
                const i = rnd.uintLessThan(u16, dq.size);
                var d = g.mem.read(queue.Descriptor, dq.desc + 16 * @as(u64, i)) catch unreachable;
                switch (rnd.uintLessThan(u8, 4)) {
                    0 => d.addr = randomAddr(rnd),
                    1 => d.len = randomLen(rnd),
                    2 => d.flags ^= @as(u16, 1) << rnd.uintLessThan(u4, 3),
                    else => d.next = rnd.int(u16),
                }
                dq.setDesc(i, d);
            },
            2 => dq.setAvailIdx(dq.avail_idx +% rnd.int(u16)),
            3 => dq.setUsedEvent(rnd.int(u16)),
            else => dq.setAvailFlags(rnd.int(u16)),
        }
    }
}

fn randomAddr(rnd: std.Random) u64 {
    return switch (rnd.uintLessThan(u8, 6)) {
        0 => rnd.int(u64),
        1 => std.math.maxInt(u64) - rnd.uintLessThan(u64, 4096),
        2 => ram_base + ram_len - rnd.uintAtMost(u64, 64), // straddles into the second region
        3 => ram_base + ram_len + ram2_len - rnd.uintAtMost(u64, 64), // runs off the end
        else => ram_base + rnd.uintLessThan(u64, ram_len + ram2_len),
    };
}

fn randomLen(rnd: std.Random) u32 {
    return switch (rnd.uintLessThan(u8, 5)) {
        0 => rnd.int(u32),
        1 => std.math.maxInt(u32) - rnd.uintLessThan(u32, 16),
        2 => 0,
        else => rnd.uintAtMost(u32, 512),
    };
}

/// The device side: drains the queue the way devices do, with random read/write patterns.
fn play(rnd: std.Random, g: *t.Guest, dq: *t.DriverQueue, q: *queue.Queue, stats: *Stats) !void {
    var added: u16 = 0;
    const used_start = q.next_used;
    var wrote = false;
    var rounds: u32 = 0;
    while (rounds <= q.size) : (rounds += 1) {
        const chain = q.pop(&g.mem) catch |err| {
            stats.errors[errorIndex(err)] += 1;
            if (!q.isBroken()) return error.ErrorLeftQueueUsable;
            if (q.pop(&g.mem)) |_| return error.BrokenQueuePopped else |e| if (e != error.QueueBroken) return error.BrokenQueueWrongError;
            stats.broken += 1;
            break;
        } orelse break;
        stats.chains += 1;
        const written = device(rnd, chain, stats) catch |err| {
            // Guest memory written by the device may alias the descriptors it walks.
            stats.errors[errorIndex(err)] += 1;
            q.markBroken();
            stats.broken += 1;
            wrote = true; // it may have written before failing
            break;
        };
        if (written > chain.writable_len) return error.WroteMoreThanOffered;
        if (written > 0) wrote = true;
        try q.addUsed(&g.mem, chain.head, written);
        added +%= 1;
        _ = q.needsNotification(&g.mem) catch {};
    }
    if (rounds > q.size) return error.PoppedMoreThanQueueSize;
    // Device writes may alias the used ring, and ring mutations may have scribbled on its
    // index before we first published it: check only when neither applies.
    if (!wrote and added > 0 and dq.usedIdx() != used_start +% added) return error.UsedIndexMismatch;
}

fn device(rnd: std.Random, chain: queue.Chain, stats: *Stats) queue.Error!u32 {
    var r = chain.reader();
    var buf: [700]u8 = undefined;
    switch (rnd.uintLessThan(u8, 3)) {
        0 => while (true) {
            const n = try r.read(buf[0..rnd.uintAtMost(usize, buf.len)]);
            stats.bytes_read += n;
            if (n == 0) break;
        },
        1 => {
            var iov: [4]std.posix.iovec = undefined;
            const n = try r.iovecs(&iov, rnd.uintAtMost(usize, 1000));
            var total: usize = 0;
            for (iov[0..n]) |v| total += v.len;
            stats.bytes_read += try r.skip(total);
        },
        else => if (try r.peek()) |piece| r.consume(rnd.uintAtMost(usize, piece.len)),
    }
    if (r.bytesLeft() > chain.readable_len) return error.ChainTooShort;
    var w = chain.writer();
    rnd.bytes(&buf);
    if (rnd.boolean()) {
        _ = try w.write(buf[0..rnd.uintAtMost(usize, buf.len)]);
    } else {
        var iov: [4]std.posix.iovec = undefined;
        const n = try w.iovecs(&iov, rnd.uintAtMost(usize, 1000));
        var total: usize = 0;
        for (iov[0..n]) |v| total += v.len;
        try w.skipWritten(total);
    }
    stats.bytes_written += w.written;
    return w.written;
}

/// The device's side of a request/response queue, per chain: pop (validate the chain), read a
/// 64-byte header, write a 256-byte reply, addUsed; needsNotification (EVENT_IDX) per batch.
/// 128 two-descriptor chains fill the 256-entry ring twice; each round the driver re-publishes
/// all 256 entries with one index store, so the loop measures the device side only.
fn bench(rounds: u64) !u8 {
    const ram = try std.heap.page_allocator.alignedAlloc(u8, .fromByteUnits(4096), 1 << 20);
    var g = t.Guest.init(ram, ram_base);
    const size: u16 = 256;
    var dq = t.DriverQueue.init(&g, size);
    var q = dq.deviceQueue(size);
    q.event_idx = true;
    const header: [64]u8 = @splat(7);
    var heads: [size / 2]u16 = undefined;
    for (&heads) |*h| h.* = dq.post(&.{&header}, &.{256}).head;
    for (heads) |h| dq.pushAvail(h);
    var sink: u64 = 0;
    const t0 = nowNs();
    for (0..rounds) |round| {
        if (round > 0) {
            dq.avail_idx +%= size;
            dq.setAvailIdx(dq.avail_idx);
        }
        while (try q.pop(&g.mem)) |chain| {
            var r = chain.reader();
            var buf: [256]u8 = undefined;
            try r.readAll(buf[0..64]);
            sink +%= buf[0];
            var w = chain.writer();
            try w.writeAll(&buf);
            try q.addUsed(&g.mem, chain.head, w.written);
        }
        if (try q.needsNotification(&g.mem)) sink +%= 1;
    }
    const ns = nowNs() - t0;
    const chains = rounds * size;
    std.debug.print("queue bench: {d} chains in {d} ms: {d} ns/chain ({d} k chains/s) [sink {d}]\n", .{ chains, @divTrunc(ns, 1_000_000), @divTrunc(ns, @as(i128, chains)), @divTrunc(@as(i128, chains) * 1_000_000, ns), sink });
    return 0;
}

fn nowNs() i128 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(i128, ts.sec) * 1_000_000_000 + ts.nsec;
}

test "the fuzz harness runs a few hundred cases" {
    var prng = std.Random.DefaultPrng.init(1);
    const ram = try std.testing.allocator.alignedAlloc(u8, .fromByteUnits(4096), ram_len);
    defer std.testing.allocator.free(ram);
    const ram2 = try std.testing.allocator.alignedAlloc(u8, .fromByteUnits(4096), ram2_len);
    defer std.testing.allocator.free(ram2);
    var stats: Stats = .{};
    for (0..300) |_| try oneCase(prng.random(), ram, ram2, &stats);
    try std.testing.expect(stats.chains > 0);
    try std.testing.expect(stats.broken > 0);
}
