//! bench-blk (tests/bench/blk.bench.sh; `zig build harness`): zkrun's virtio-blk device with
//! no guest, on this machine, to compare its two request backends in one run: the 4-worker
//! pool the library ships, an 8-worker pool and the io_uring prototype (Blk.Backend). A test-side driver
//! (virtio/testing.zig) plays the guest over host buffers and keeps `depth` requests in flight
//! on one queue, polling the used ring; the device's queueNotify runs on the driver's thread,
//! as it runs on the VMM's event loop. Workloads: 4 KiB random reads and writes and 1 MiB
//! sequential ones on a raw image (page cache, or O_DIRECT with `direct`: an eighth of the
//! ops), a fixed op count,
//! backends alternating per round. Prints "blk.<backend>.<workload>.qd<N> <IOPS> IOPS" (the
//! best of the rounds) and the io_uring / pool ratio.
//!
//!   bench-blk IMAGE_PATH [rounds] [direct]
const std = @import("std");
const linux = std.os.linux;
const zkrun = @import("zkrun");

pub const std_options: std.Options = .{ .log_level = .err };

const Blk = zkrun.virtio.blk.Blk;
const Image = zkrun.virtio.blk.Image;
const request = zkrun.virtio.blk.request;
const mmio = zkrun.virtio.mmio;
const queue = zkrun.virtio.queue;
const t = zkrun.virtio.testing;

const image_bytes: u64 = 256 << 20;
const slots_max = 64;
const block_max: u32 = 1 << 20;

const Workload = struct { name: []const u8, write: bool, random: bool, block: u32, ops: u32 };
const workloads = [_]Workload{
    .{ .name = "randread4k", .write = false, .random = true, .block = 4096, .ops = 40000 },
    .{ .name = "randwrite4k", .write = true, .random = true, .block = 4096, .ops = 40000 },
    .{ .name = "seqread1m", .write = false, .random = false, .block = 1 << 20, .ops = 1024 },
    .{ .name = "seqwrite1m", .write = true, .random = false, .block = 1 << 20, .ops = 1024 },
};
const depths = [_]u16{ 1, 4, 32 };

pub fn main(init: std.process.Init) !u8 {
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    if (args.len < 2) {
        std.debug.print("usage: bench-blk IMAGE_PATH [rounds] [direct]\n", .{});
        return 2;
    }
    const path: [*:0]const u8 = args[1].ptr;
    const rounds = if (args.len > 2) try std.fmt.parseInt(u32, args[2], 10) else 3;
    const direct = args.len > 3 and std.mem.eql(u8, args[3], "direct");
    try makeImage(path);
    defer _ = linux.unlink(path);
    const backing = try std.heap.page_allocator.alignedAlloc(u8, .fromByteUnits(4096), slots_max * (block_max + 4096) + (1 << 20));
    const backends = [_]Blk.Backend{ .pool, .pool_wide, .io_uring };
    var best: [backends.len][workloads.len][depths.len]f64 = @splat(@splat(@splat(0)));
    for (0..rounds) |round| {
        for (workloads, 0..) |w, wi| for (depths, 0..) |depth, di| for (0..backends.len) |k| {
            // Rotate which backend goes first.
            const b: usize = (k + round + wi + di) % backends.len;
            const backend = backends[b];
            var scaled = w;
            if (direct) scaled.ops /= 8; // the disk, not the page cache: keep the run short
            const iops = try runOne(path, direct, backing, backend, scaled, depth);
            best[b][wi][di] = @max(best[b][wi][di], iops);
        };
    }
    const mode = if (direct) "direct" else "buffered";
    for (workloads, 0..) |w, wi| for (depths, 0..) |depth, di| {
        for (backends, 0..) |b, bi| std.debug.print("blk.{s}.{t}.{s}.qd{d} {d:.0} IOPS\n", .{ mode, b, w.name, depth, best[bi][wi][di] });
        std.debug.print("blk.{s}.pool_wide_vs_pool.{s}.qd{d} {d:.2} x\n", .{ mode, w.name, depth, best[1][wi][di] / best[0][wi][di] });
        std.debug.print("blk.{s}.uring_vs_pool.{s}.qd{d} {d:.2} x\n", .{ mode, w.name, depth, best[2][wi][di] / best[0][wi][di] });
    };
    return 0;
}

fn makeImage(path: [*:0]const u8) !void {
    const fd: linux.fd_t = @intCast(linux.open(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o600));
    if (fd < 0) return error.CannotCreateImage;
    defer _ = linux.close(fd);
    // Written out (not sparse), so reads hit allocated blocks on both backends.
    var buf: [1 << 16]u8 = @splat(0x5a);
    var at: u64 = 0;
    while (at < image_bytes) : (at += buf.len) {
        if (linux.pwrite(fd, &buf, buf.len, @intCast(at)) != buf.len) return error.CannotWriteImage;
    }
    _ = linux.fsync(fd);
}

/// One workload at one depth on a fresh device; returns requests per second.
fn runOne(path: [*:0]const u8, direct: bool, backing: []align(4096) u8, backend: Blk.Backend, w: Workload, depth: u16) !f64 {
    var g = t.Guest.init(backing, 0x10_0000);
    const img = try Image.open(std.heap.page_allocator, path, .{ .direct_io = direct, .sync = .none });
    const blk = try std.heap.page_allocator.create(Blk);
    defer std.heap.page_allocator.destroy(blk);
    try blk.initBackend(img, "bench", backend);
    var tr: mmio.Transport = undefined;
    tr.init(blk.device(), &g.mem);
    defer {
        tr.shutdown();
        blk.deinit();
    }
    const d: t.MmioDriver = .{ .t = &tr };
    if (!d.negotiate(~@as(u64, 0))) return error.FeaturesRefused;
    var dq = t.DriverQueue.init(&g, 256);
    d.setupQueue(0, &dq);
    d.addStatus(mmio.Status.driver_ok);

    // Slot k: descriptors 3k (header), 3k+1 (data), 3k+2 (status), reused for every request.
    var hdr: [slots_max]u64 = undefined;
    var status: [slots_max]u64 = undefined;
    var data: [slots_max]u64 = undefined;
    for (0..depth) |k| {
        hdr[k] = g.alloc(16, 16);
        status[k] = g.alloc(1, 1);
        data[k] = g.alloc(w.block, 4096);
    }
    const blocks = image_bytes / w.block;
    var x: u64 = 88172645463325252;
    var next_seq: u64 = 0;
    var posted: u32 = 0;
    var done: u32 = 0;
    const t0 = nowNs();
    while (posted < @min(depth, w.ops)) : (posted += 1) post(&dq, @intCast(posted), w, &hdr, &status, &data, &x, &next_seq, blocks);
    d.notify(0);
    while (done < w.ops) {
        const u = dq.takeUsed() orelse {
            std.Thread.yield() catch {};
            continue;
        };
        const k: u16 = @intCast(u.id / 3);
        if ((g.bytes(status[k], 1))[0] != 0) return error.RequestFailed;
        done += 1;
        if (posted < w.ops) {
            post(&dq, k, w, &hdr, &status, &data, &x, &next_seq, blocks);
            posted += 1;
            d.notify(0);
        }
    }
    const secs = @as(f64, @floatFromInt(nowNs() - t0)) / 1e9;
    return @as(f64, @floatFromInt(w.ops)) / secs;
}

fn post(dq: *t.DriverQueue, k: u16, w: Workload, hdr: []const u64, status: []const u64, data: []const u64, x: *u64, next_seq: *u64, blocks: u64) void {
    var block: u64 = undefined;
    if (w.random) {
        x.* ^= x.* << 13;
        x.* ^= x.* >> 7;
        x.* ^= x.* << 17;
        block = x.* % blocks;
    } else {
        block = next_seq.* % blocks;
        next_seq.* += 1;
    }
    const h: request.Header = .{ .type = if (w.write) request.t_out else request.t_in, .reserved = 0, .sector = block * w.block / 512 };
    const mem = &dq.guest.mem;
    mem.write(request.Header, hdr[k], h) catch unreachable;
    mem.write(u8, status[k], 0xff) catch unreachable;
    const head = 3 * k;
    dq.setDesc(head, .{ .addr = hdr[k], .len = 16, .flags = queue.desc_f_next, .next = head + 1 });
    dq.setDesc(head + 1, .{ .addr = data[k], .len = w.block, .flags = queue.desc_f_next | (if (w.write) 0 else queue.desc_f_write), .next = head + 2 });
    dq.setDesc(head + 2, .{ .addr = status[k], .len = 1, .flags = queue.desc_f_write, .next = 0 });
    dq.pushAvail(head);
}

fn nowNs() u64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}
