//! Fuzz targets for virtio-blk: `zig build fuzz` → zig-out/bin/fuzz-blk (smoke
//! run: tests/native/blk-fuzz.sh). Built ReleaseSafe: any
//! out-of-bounds access, overflow or failed assertion is a crash.
//!
//!   fuzz-blk decode [iterations] [seed]   the request decoder (request.zig): random headers,
//!       chain sizes and limits; checks that every request it lets through lies inside the disk,
//!       is sector-sized, bounded, and never writes a read-only disk.
//!   fuzz-blk device [iterations] [seed]   the whole device through the MMIO transport on a real
//!       image file: random and hostile chains (types, sectors near the end, odd sizes, status
//!       byte missing or read-only, indirect tables); every chain must come back on the used
//!       ring (or the queue be marked broken) and the status byte be a valid code. Half the
//!       devices run the io_uring prototype backend (Blk.Backend.io_uring), half the pool.
//!   fuzz-blk qcow2 IMAGE [iterations] [seed]   the qcow2 reader: IMAGE (made by qemu-img) with
//!       random bytes of its header, L1, L2 and refcount tables overwritten, opened and read
//!       end to end; every other case opened writable (qcow2_write.zig) and given random
//!       writes, write-zeroes and discards first. Errors are expected, crashes and hangs are
//!       not. Also random headers and L2 entries through Header.parse / decodeL2.
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const zkrun = @import("zkrun");

/// The device logs what it refuses; a fuzz run keeps only errors.
pub const std_options: std.Options = .{ .log_level = .err };

const request = zkrun.virtio.blk.request;
const qcow2 = zkrun.virtio.blk.qcow2;
const Image = zkrun.virtio.blk.Image;
const Blk = zkrun.virtio.blk.Blk;
const mmio = zkrun.virtio.mmio;
const queue = zkrun.virtio.queue;
const t = zkrun.virtio.testing;

pub fn main(init: std.process.Init) !u8 {
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    if (args.len < 2) return usage();
    const mode = args[1];
    const rest = args[2..];
    const image_arg: ?[]const u8 = if (std.mem.eql(u8, mode, "qcow2") and rest.len > 0) rest[0] else null;
    const nums = if (image_arg != null) rest[1..] else rest;
    var run = try fuzz_args.parse(nums, 100_000);
    const iterations = run.iterations;
    const seed = run.seed;
    const rnd = run.prng.random();
    if (std.mem.eql(u8, mode, "decode")) return fuzzDecode(rnd, iterations, seed);
    if (std.mem.eql(u8, mode, "device")) return fuzzDevice(rnd, iterations, seed);
    if (std.mem.eql(u8, mode, "qcow2")) return fuzzQcow2(rnd, image_arg orelse return usage(), iterations, seed);
    return usage();
}

fn usage() u8 {
    std.debug.print("usage: fuzz-blk decode|device [iterations] [seed] | fuzz-blk qcow2 IMAGE [iterations] [seed]\n", .{});
    return 2;
}

fn check(ok: bool, comptime what: []const u8, args: anytype) void {
    if (!ok) std.debug.panic("invariant broken: " ++ what, args);
}

// ---- the request decoder --------------------------------------------------------------------

fn interesting(rnd: std.Random, comptime T: type) T {
    return switch (rnd.uintLessThan(u8, 6)) {
        0 => 0,
        1 => std.math.maxInt(T),
        2 => std.math.maxInt(T) - rnd.uintAtMost(T, 4096),
        3 => rnd.uintAtMost(T, 4096),
        4 => @truncate(@as(u64, rnd.uintAtMost(u16, 1024)) * 512),
        else => rnd.int(T),
    };
}

fn fuzzDecode(rnd: std.Random, iterations: u64, seed: u64) u8 {
    const types = [_]u32{ request.t_in, request.t_out, request.t_flush, request.t_get_id, request.t_discard, request.t_write_zeroes, 3, 0xffff_ffff };
    var runs: u64 = 0;
    var fails: u64 = 0;
    for (0..iterations) |_| {
        const limits: request.Limits = .{
            .capacity_sectors = interesting(rnd, u64) >> rnd.uintLessThan(u6, 40),
            .read_only = rnd.boolean(),
            .discard = rnd.boolean(),
            .write_zeroes = rnd.boolean(),
        };
        const hdr: ?request.Header = if (rnd.uintLessThan(u8, 16) == 0) null else .{
            .type = if (rnd.boolean()) types[rnd.uintLessThan(usize, types.len)] else rnd.int(u32),
            .reserved = rnd.int(u32),
            .sector = interesting(rnd, u64),
        };
        const readable = interesting(rnd, u32);
        const writable = interesting(rnd, u32);
        switch (request.decode(hdr, readable, writable, limits)) {
            .no_status => check(writable == 0, "no_status with a writable byte", .{}),
            .fail => fails += 1,
            .run => |req| {
                runs += 1;
                check(writable >= 1 and readable >= request.header_len, "run without header or status", .{});
                switch (req.kind) {
                    .read, .write => {
                        check(req.data_len % 512 == 0 and req.data_len <= limits.data_bytes_max, "bad data length {d}", .{req.data_len});
                        check(req.offset % 512 == 0, "unaligned offset", .{});
                        check(req.offset / 512 <= limits.capacity_sectors and req.data_len / 512 <= limits.capacity_sectors - req.offset / 512, "request past the end", .{});
                        if (req.kind == .write) check(!limits.read_only and req.data_len == readable - request.header_len, "write on a read-only disk", .{});
                        if (req.kind == .read) check(req.data_len == writable - 1, "read length", .{});
                    },
                    .discard, .write_zeroes => {
                        check(!limits.read_only, "discard on a read-only disk", .{});
                        check(req.data_len % request.segment_len == 0 and req.data_len > 0, "segment bytes", .{});
                        const seg: request.Segment = .{ .sector = interesting(rnd, u64), .num_sectors = interesting(rnd, u32), .flags = rnd.int(u32) & 3 };
                        switch (request.checkSegment(req.kind, seg, limits)) {
                            .fail => {},
                            .range => |r| check(r.offset + r.len <= limits.capacity_sectors * 512, "segment past the end", .{}),
                        }
                    },
                    .flush => {},
                    .get_id => check(req.data_len <= request.id_len and req.data_len < writable, "get_id length", .{}),
                }
            },
        }
    }
    std.debug.print("fuzz-blk decode: {d} cases (seed {d}): {d} run, {d} refused\n", .{ iterations, seed, runs, fails });
    return 0;
}

// ---- the whole device ----------------------------------------------------------------------

const image_sectors = 256;

fn fuzzDevice(rnd: std.Random, iterations: u64, seed: u64) !u8 {
    // Per process: concurrent runs (other checkouts on this machine) must not share the image.
    var path_buf: [64]u8 = undefined;
    const image_path = std.fmt.bufPrintSentinel(&path_buf, "/tmp/zkrun-fuzz-blk-{d}.img", .{linux.getpid()}, 0) catch unreachable;
    defer _ = linux.unlink(image_path);
    {
        const fd: linux.fd_t = @intCast(linux.open(image_path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644));
        _ = linux.ftruncate(fd, image_sectors * 512);
        _ = linux.close(fd);
    }
    const backing = try std.heap.page_allocator.alignedAlloc(u8, .fromByteUnits(4096), 1 << 20);
    var broken: u64 = 0;
    var completed: u64 = 0;
    var i: u64 = 0;
    // A fresh device every 500 cases (and after a broken queue), so broken queues do not end
    // the run.
    while (i < iterations) {
        var g = t.Guest.init(backing, 0x10_0000);
        const img = try Image.open(std.heap.page_allocator, image_path, .{ .read_only = rnd.uintLessThan(u8, 4) == 0 });
        const blk = try std.heap.page_allocator.create(Blk);
        // Half the devices on the io_uring prototype (Blk.Backend): the same hostile chains
        // must not crash it either. Where io_uring is unavailable, the pool.
        const backend: Blk.Backend = if (rnd.boolean()) .io_uring else .pool;
        blk.initBackend(img, "fuzz", backend) catch try blk.init(img, "fuzz");
        var tr: mmio.Transport = undefined;
        tr.init(blk.device(), &g.mem);
        const d: t.MmioDriver = .{ .t = &tr };
        check(d.negotiate(~@as(u64, 0)), "features refused", .{});
        var dq = t.DriverQueue.init(&g, 256);
        d.setupQueue(0, &dq);
        d.addStatus(mmio.Status.driver_ok);
        var n: u32 = 0;
        while (n < 500 and i < iterations) : ({
            n += 1;
            i += 1;
        }) {
            if (g.next_free > g.base + g.len - 200 * 1024) break; // guest bump allocator full
            if (!oneChain(rnd, &g, &dq, d)) {
                broken += 1;
                i += 1;
                break;
            }
            completed += 1;
        }
        tr.shutdown();
        blk.deinit();
        std.heap.page_allocator.destroy(blk);
    }
    std.debug.print("fuzz-blk device: {d} cases (seed {d}): {d} completed, {d} queues broken\n", .{ iterations, seed, completed, broken });
    return 0;
}

/// Posts one random chain and waits for it; false when the queue ended up broken.
fn oneChain(rnd: std.Random, g: *t.Guest, dq: *t.DriverQueue, d: t.MmioDriver) bool {
    const types = [_]u32{ request.t_in, request.t_out, request.t_flush, request.t_get_id, request.t_discard, request.t_write_zeroes, 7 };
    var hdr_bytes: [16]u8 = undefined;
    const hdr: request.Header = .{
        .type = if (rnd.uintLessThan(u8, 10) == 0) rnd.int(u32) else types[rnd.uintLessThan(usize, types.len)],
        .reserved = 0,
        .sector = if (rnd.boolean()) rnd.uintAtMost(u64, image_sectors + 4) else interesting(rnd, u64),
    };
    @memcpy(&hdr_bytes, std.mem.asBytes(&hdr));
    const hdr_len = if (rnd.uintLessThan(u8, 20) == 0) rnd.uintAtMost(usize, 16) else 16;
    var outs: [4][]const u8 = undefined;
    var out_n: usize = 0;
    outs[0] = hdr_bytes[0..hdr_len];
    out_n = 1;
    var data: [8192]u8 = undefined;
    rnd.bytes(&data);
    if (hdr.type == request.t_discard or hdr.type == request.t_write_zeroes) {
        const seg: request.Segment = .{ .sector = rnd.uintAtMost(u64, image_sectors), .num_sectors = rnd.uintAtMost(u32, 64), .flags = rnd.int(u32) & 3 };
        @memcpy(data[0..16], std.mem.asBytes(&seg));
        outs[1] = data[0 .. 16 * (1 + rnd.uintLessThan(usize, 2) * rnd.uintLessThan(usize, 2))];
        out_n = 2;
    } else if (rnd.boolean()) {
        const len = if (rnd.boolean()) 512 * rnd.uintAtMost(usize, 8) else rnd.uintAtMost(usize, 4096);
        outs[1] = data[0..len];
        out_n = if (len > 0) 2 else 1;
    }
    var ins: [3]u32 = undefined;
    var in_n: usize = 0;
    if (rnd.uintLessThan(u8, 16) != 0) {
        in_n = 1 + rnd.uintLessThan(usize, 3);
        for (ins[0..in_n]) |*l| l.* = if (rnd.boolean()) 512 * rnd.uintAtMost(u32, 8) else rnd.uintAtMost(u32, 2048);
        ins[in_n - 1] = if (rnd.boolean()) 1 else ins[in_n - 1] + 1;
    }
    const before = dq.usedIdx();
    const posted = if (rnd.boolean())
        dq.post(outs[0..out_n], ins[0..in_n])
    else
        dq.postIndirect(outs[0..out_n], ins[0..in_n]);
    // Now and then a hostile twist on the posted descriptors.
    if (rnd.uintLessThan(u8, 30) == 0) {
        dq.setDesc(posted.head, .{ .addr = rnd.int(u64), .len = rnd.int(u32), .flags = rnd.int(u16) & 7, .next = rnd.int(u16) });
    }
    d.notify(0);
    for (0..20_000) |_| {
        if (dq.usedIdx() != before) {
            const u = dq.takeUsed().?;
            check(u.id == posted.head, "used id {d} != head {d}", .{ u.id, posted.head });
            if (u.len > 0 and posted.in_len > 0) {
                const status = g.bytes(posted.in_addr + posted.in_len - 1, 1)[0];
                check(status <= 2, "status byte {d}", .{status});
            }
            return true;
        }
        if (d.status() & mmio.Status.device_needs_reset != 0) return false;
        const ts: linux.timespec = .{ .sec = 0, .nsec = 50_000 };
        _ = linux.nanosleep(&ts, null);
    }
    std.debug.panic("a chain was never completed and the queue is not broken", .{});
}

// ---- the qcow2 reader ----------------------------------------------------------------------

fn fuzzQcow2(rnd: std.Random, seed_image: []const u8, iterations: u64, seed: u64) !u8 {
    const gpa = std.heap.page_allocator;
    const original = try readWhole(gpa, seed_image);
    const hdr = try qcow2.Header.parse(original, original.len);
    const cluster: usize = @intCast(hdr.clusterSize());
    // The metadata worth mutating: header cluster, L1 table, and the clusters L1 points at.
    var targets: std.ArrayList([2]usize) = .empty;
    try targets.append(gpa, .{ 0, @min(cluster, original.len) });
    const l1_at: usize = @intCast(hdr.l1_offset);
    try targets.append(gpa, .{ l1_at, @min(hdr.l1_size * 8, original.len - l1_at) });
    for (0..hdr.l1_size) |k| {
        const e = std.mem.readInt(u64, original[l1_at + 8 * k ..][0..8], .big) & 0x00ff_ffff_ffff_fe00;
        if (e != 0 and e + cluster <= original.len) try targets.append(gpa, .{ @intCast(e), cluster });
    }
    // The refcount table and its blocks (what a writer trusts).
    const rt_at: usize = @intCast(hdr.refcount_table_offset);
    const rt_len: usize = @intCast(@as(u64, hdr.refcount_table_clusters) * cluster);
    if (rt_at > 0 and rt_at + rt_len <= original.len) {
        try targets.append(gpa, .{ rt_at, rt_len });
        for (0..rt_len / 8) |k| {
            const e = std.mem.readInt(u64, original[rt_at + 8 * k ..][0..8], .big);
            if (e != 0 and e + cluster <= original.len) try targets.append(gpa, .{ @intCast(e), cluster });
        }
    }
    var written: u64 = 0;
    var write_errors: u64 = 0;
    const mutated = try gpa.alloc(u8, original.len);
    const out = try gpa.alloc(u8, 1 << 20);
    var opened: u64 = 0;
    var refused: u64 = 0;
    var read_errors: u64 = 0;
    // Beside the seed image, so that a relative backing file name still resolves.
    var path_buf: [4096]u8 = undefined;
    const path = try std.fmt.bufPrintSentinel(&path_buf, "{s}.fuzz", .{seed_image}, 0);
    for (0..iterations) |iteration| {
        @memcpy(mutated, original);
        const flips = 1 + rnd.uintLessThan(usize, 8);
        for (0..flips) |_| {
            const tgt = targets.items[rnd.uintLessThan(usize, targets.items.len)];
            if (tgt[1] == 0) continue;
            const at = tgt[0] + rnd.uintLessThan(usize, tgt[1]);
            mutated[at] = switch (rnd.uintLessThan(u8, 3)) {
                0 => rnd.int(u8),
                1 => mutated[at] ^ (@as(u8, 1) << rnd.int(u3)),
                else => if (rnd.boolean()) 0 else 0xff,
            };
        }
        // Random headers and L2 entries straight through the pure decoders, too.
        var raw_header: [112]u8 = undefined;
        rnd.bytes(&raw_header);
        @memcpy(raw_header[0..4], mutated[0..4]);
        _ = qcow2.Header.parse(&raw_header, rnd.int(u64)) catch {};
        _ = qcow2.decodeL2(rnd.int(u64), @intCast(9 + rnd.uintAtMost(u8, 12)), rnd.int(u64)) catch {};
        try writeWhole(path, mutated);
        const writable = iteration % 2 == 1;
        const img = Image.open(gpa, path, .{ .format = .qcow2, .read_only = !writable }) catch {
            refused += 1;
            continue;
        };
        opened += 1;
        if (writable) {
            written += 1;
            write_errors += fuzzWrites(rnd, img, out);
        }
        var at: u64 = 0;
        var reads: u32 = 0;
        while (at < img.capacity and reads < 64) : (reads += 1) {
            const n: usize = @intCast(@min(out.len, img.capacity - at));
            const iov = [_]std.posix.iovec{.{ .base = out.ptr, .len = n }};
            img.readv(&iov, at) catch {
                read_errors += 1;
            };
            at += n;
        }
        img.close();
    }
    std.debug.print("fuzz-blk qcow2: {d} cases (seed {d}): {d} opened and read ({d} written first, {d} write errors), {d} refused at open, {d} read errors\n", .{ iterations, seed, opened, written, write_errors, refused, read_errors });
    return 0;
}

/// Random writes (partial and whole clusters, across the end of L2 tables), write-zeroes and
/// discards on a writable image; returns how many failed (errors are fine, crashes are not).
fn fuzzWrites(rnd: std.Random, img: *Image, buf: []u8) u64 {
    var errors: u64 = 0;
    const sectors = img.capacity / 512;
    if (sectors == 0) return 0;
    for (0..16) |_| {
        const first = rnd.uintLessThan(u64, sectors);
        const count = @min(1 + rnd.uintLessThan(u64, buf.len / 512), sectors - first);
        const at = first * 512;
        const n: usize = @intCast(count * 512);
        const r = switch (rnd.uintLessThan(u8, 4)) {
            0 => img.writeZeroes(at, n, rnd.boolean()),
            1 => img.discard(at, n),
            else => blk: {
                rnd.bytes(buf[0..@min(n, 4096)]);
                const iov = [_]std.posix.iovec{.{ .base = buf.ptr, .len = n }};
                break :blk img.writev(&iov, at);
            },
        };
        r catch {
            errors += 1;
        };
    }
    img.flush() catch {
        errors += 1;
    };
    return errors;
}

fn readWhole(gpa: std.mem.Allocator, path: []const u8) ![]u8 {
    var z: [4096]u8 = undefined;
    @memcpy(z[0..path.len], path);
    z[path.len] = 0;
    const rc = linux.open(@ptrCast(&z), .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return error.FileNotFound;
    const fd: linux.fd_t = @intCast(rc);
    defer _ = linux.close(fd);
    const size = linux.lseek(fd, 0, linux.SEEK.END);
    if (size > 64 << 20) return error.FileTooBig;
    const buf = try gpa.alloc(u8, size);
    if (linux.pread(fd, buf.ptr, buf.len, 0) != buf.len) return error.ShortRead;
    return buf;
}

fn writeWhole(path: [*:0]const u8, bytes: []const u8) !void {
    const rc = linux.open(path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644);
    if (linux.errno(rc) != .SUCCESS) return error.CannotWrite;
    const fd: linux.fd_t = @intCast(rc);
    defer _ = linux.close(fd);
    if (linux.pwrite(fd, bytes.ptr, bytes.len, 0) != bytes.len) return error.CannotWrite;
}
