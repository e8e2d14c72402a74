//! virtio-blk driven through the MMIO transport by the test-side driver (virtio/testing.zig)
//! over simulated guest memory, on real image files: reads, writes, flush, GET_ID, discard,
//! write-zeroes, read-only disks, hostile requests and concurrency; qcow2 images made by
//! Debian's qemu-img read back and written, checked with `qemu-img check` and `convert`.
const std = @import("std");
const test_tmp = @import("../../test_tmp.zig");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const t = @import("../testing.zig");
const mmio = @import("../mmio.zig");
const queue = @import("../queue.zig");
const Blk = @import("Blk.zig");
const Image = @import("Image.zig");
const request = @import("request.zig");

const Harness = struct {
    backing: []align(4096) u8,
    g: t.Guest,
    blk: Blk,
    tr: mmio.Transport,
    dq: t.DriverQueue,

    fn create(path: [*:0]const u8, options: Image.Options) !*Harness {
        return createBackend(path, options, .pool);
    }

    fn createBackend(path: [*:0]const u8, options: Image.Options, backend: Blk.Backend) !*Harness {
        const h = try testing.allocator.create(Harness);
        errdefer testing.allocator.destroy(h);
        h.backing = try testing.allocator.alignedAlloc(u8, .fromByteUnits(4096), 4 << 20);
        errdefer testing.allocator.free(h.backing);
        h.g = t.Guest.init(h.backing, 0x10_0000);
        const img = try Image.open(testing.allocator, path, options);
        h.blk.initBackend(img, "zkrun-test-disk", backend) catch |err| {
            img.close();
            return err;
        };
        h.tr.init(h.blk.device(), &h.g.mem);
        const d = h.driver();
        if (!d.negotiate(~@as(u64, 0))) return error.FeaturesRefused;
        h.dq = t.DriverQueue.init(&h.g, 256);
        d.setupQueue(0, &h.dq);
        d.addStatus(mmio.Status.driver_ok);
        return h;
    }

    fn destroy(h: *Harness) void {
        h.tr.shutdown();
        h.blk.deinit();
        testing.allocator.free(h.backing);
        testing.allocator.destroy(h);
    }

    fn driver(h: *Harness) t.MmioDriver {
        return .{ .t = &h.tr };
    }

    /// Waits (bounded) for the next used element.
    fn waitUsed(h: *Harness) !t.DriverQueue.Used {
        for (0..5000) |_| {
            if (h.dq.takeUsed()) |u| return u;
            sleepMs(1);
        }
        return error.Timeout;
    }

    /// One request: header + `out` data, `in_len` writable bytes (status included).
    /// Returns the status byte and the writable bytes.
    fn call(h: *Harness, typ: u32, sector: u64, out: []const u8, in_len: u32) !struct { status: u8, in: []u8, used: u32 } {
        const hdr: request.Header = .{ .type = typ, .reserved = 0, .sector = sector };
        const p = if (out.len > 0)
            h.dq.post(&.{ std.mem.asBytes(&hdr), out }, &.{in_len})
        else
            h.dq.post(&.{std.mem.asBytes(&hdr)}, &.{in_len});
        h.driver().notify(0);
        const u = try h.waitUsed();
        try testing.expectEqual(@as(u32, p.head), u.id);
        const in = h.g.bytes(p.in_addr, in_len);
        return .{ .status = in[in_len - 1], .in = in, .used = u.len };
    }
};

fn sleepMs(ms: u64) void {
    sys.nanosleep(ms * std.time.ns_per_ms) catch {};
}

fn makeImage(path: [*:0]const u8, size: u64, fill: u8) !void {
    const fd = try sys.openMode(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644);
    defer sys.close(fd);
    var buf: [4096]u8 = @splat(fill);
    var at: u64 = 0;
    while (at < size) : (at += buf.len) {
        for (&buf, 0..) |*b, i| b.* = fill +% @as(u8, @truncate((at + i) / 512));
        try sys.pwriteAll(fd, buf[0..@intCast(@min(buf.len, size - at))], at);
    }
}

fn readFileAt(path: [*:0]const u8, dest: []u8, offset: u64) !void {
    const fd = try sys.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    defer sys.close(fd);
    try testing.expectEqual(dest.len, try sys.pread(fd, dest, offset));
}

const s_ok: u8 = 0;
const s_ioerr: u8 = 1;
const s_unsupp: u8 = 2;

test "blk: features, config, read, write, flush, get_id through the transport" {
    const path = test_tmp.path("blk-test-rw.img");
    try makeImage(path, 1 << 20, 0x40);
    const h = try Harness.create(path, .{});
    defer h.destroy();
    const d = h.driver();
    try testing.expectEqual(@as(u32, 2), d.read32(mmio.Reg.device_id));
    const f = d.deviceFeatures();
    try testing.expect(f & (1 << Blk.f_flush) != 0 and f & (1 << Blk.f_ro) == 0);
    try testing.expect(f & (1 << Blk.f_discard) != 0 and f & (1 << Blk.f_write_zeroes) != 0);
    try testing.expectEqual(@as(u32, 2048), d.read32(mmio.Reg.config)); // capacity in sectors
    try testing.expectEqual(@as(u32, Blk.seg_max), d.read32(mmio.Reg.config + 12));
    try testing.expectEqual(@as(u32, 512), d.read32(mmio.Reg.config + 20));

    const r = try h.call(request.t_in, 3, &.{}, 1024 + 1);
    try testing.expectEqual(s_ok, r.status);
    try testing.expectEqual(@as(u32, 1025), r.used);
    try testing.expect(std.mem.allEqual(u8, r.in[0..512], 0x43));
    try testing.expect(std.mem.allEqual(u8, r.in[512..1024], 0x44));

    const data: [4096]u8 = @splat(0x99);
    const w = try h.call(request.t_out, 100, &data, 1);
    try testing.expectEqual(s_ok, w.status);
    try testing.expectEqual(@as(u32, 1), w.used);
    try testing.expectEqual(s_ok, (try h.call(request.t_flush, 0, &.{}, 1)).status);
    var back: [4096]u8 = undefined;
    try readFileAt(path, &back, 100 * 512);
    try testing.expectEqualSlices(u8, &data, &back);

    const id = try h.call(request.t_get_id, 0, &.{}, 21);
    try testing.expectEqual(s_ok, id.status);
    try testing.expectEqualStrings("zkrun-test-disk", id.in[0..15]);
    try testing.expect(d.ackInterrupt() & 1 != 0);
}

test "blk: discard and write-zeroes read back as zeros; bad flags and ranges fail" {
    const path = test_tmp.path("blk-test-discard.img");
    try makeImage(path, 1 << 20, 0x10);
    const h = try Harness.create(path, .{});
    defer h.destroy();
    const seg = request.Segment{ .sector = 8, .num_sectors = 8, .flags = 0 };
    try testing.expectEqual(s_ok, (try h.call(request.t_write_zeroes, 0, std.mem.asBytes(&seg), 1)).status);
    const seg2 = request.Segment{ .sector = 16, .num_sectors = 8, .flags = request.write_zeroes_flag_unmap };
    try testing.expectEqual(s_ok, (try h.call(request.t_write_zeroes, 0, std.mem.asBytes(&seg2), 1)).status);
    const r = try h.call(request.t_in, 8, &.{}, 8192 + 1);
    try testing.expect(std.mem.allEqual(u8, r.in[0..8192], 0));
    const seg3 = request.Segment{ .sector = 40, .num_sectors = 8, .flags = 0 };
    try testing.expectEqual(s_ok, (try h.call(request.t_discard, 0, std.mem.asBytes(&seg3), 1)).status);
    const bad_flags = request.Segment{ .sector = 40, .num_sectors = 8, .flags = 1 };
    try testing.expectEqual(s_unsupp, (try h.call(request.t_discard, 0, std.mem.asBytes(&bad_flags), 1)).status);
    const past = request.Segment{ .sector = 2047, .num_sectors = 2, .flags = 0 };
    try testing.expectEqual(s_ioerr, (try h.call(request.t_write_zeroes, 0, std.mem.asBytes(&past), 1)).status);
}

test "blk: a read-only disk offers RO and refuses every write" {
    const path = test_tmp.path("blk-test-ro.img");
    try makeImage(path, 1 << 20, 0x20);
    const h = try Harness.create(path, .{ .read_only = true });
    defer h.destroy();
    const f = h.driver().deviceFeatures();
    try testing.expect(f & (1 << Blk.f_ro) != 0 and f & (1 << Blk.f_discard) == 0);
    const data: [512]u8 = @splat(0x77);
    try testing.expectEqual(s_ioerr, (try h.call(request.t_out, 0, &data, 1)).status);
    const seg = request.Segment{ .sector = 0, .num_sectors = 1, .flags = 0 };
    try testing.expectEqual(s_unsupp, (try h.call(request.t_discard, 0, std.mem.asBytes(&seg), 1)).status);
    try testing.expectEqual(s_ok, (try h.call(request.t_in, 0, &.{}, 513)).status);
    var back: [512]u8 = undefined;
    try readFileAt(path, &back, 0);
    try testing.expect(std.mem.allEqual(u8, &back, 0x20));
}

test "blk: hostile requests get IOERR/UNSUPP, never a crash; the queue keeps working" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the queue warning is the point of this test
    defer testing.log_level = saved_level;
    const path = test_tmp.path("blk-test-hostile.img");
    try makeImage(path, 64 * 1024, 0);
    const h = try Harness.create(path, .{});
    defer h.destroy();
    try testing.expectEqual(s_ioerr, (try h.call(request.t_in, 128, &.{}, 513)).status); // past the end
    try testing.expectEqual(s_ioerr, (try h.call(request.t_in, std.math.maxInt(u64) - 1, &.{}, 1025)).status);
    try testing.expectEqual(s_ioerr, (try h.call(request.t_in, 0, &.{}, 100)).status); // not a sector multiple
    try testing.expectEqual(s_unsupp, (try h.call(0xdead, 0, &.{}, 1)).status);
    const data: [512]u8 = @splat(1);
    try testing.expectEqual(s_ioerr, (try h.call(request.t_out, 0, &data, 2)).status); // writable data on a write
    // A header cut short (8 readable bytes): IOERR.
    const short: [8]u8 = @splat(0);
    const p = h.dq.post(&.{&short}, &.{1});
    h.driver().notify(0);
    _ = try h.waitUsed();
    try testing.expectEqual(s_ioerr, h.g.bytes(p.in_addr, 1)[0]);
    // No writable byte at all: returned with length 0, nothing written.
    const hdr: request.Header = .{ .type = request.t_in, .reserved = 0, .sector = 0 };
    _ = h.dq.post(&.{std.mem.asBytes(&hdr)}, &.{});
    h.driver().notify(0);
    try testing.expectEqual(@as(u32, 0), (try h.waitUsed()).len);
    // A descriptor pointing outside guest memory: the queue is broken (NEEDS_RESET), no crash.
    try testing.expectEqual(s_ok, (try h.call(request.t_in, 0, &.{}, 513)).status);
    h.dq.setDesc(200, .{ .addr = 0xffff_ffff_0000, .len = 512, .flags = queue.desc_f_write, .next = 0 });
    h.dq.pushAvail(200);
    h.driver().notify(0);
    try testing.expect(h.driver().status() & mmio.Status.device_needs_reset != 0);
}

test "blk: many requests in flight are served concurrently and all complete" {
    const path = test_tmp.path("blk-test-many.img");
    try makeImage(path, 1 << 20, 0x30);
    const h = try Harness.create(path, .{});
    defer h.destroy();
    const n = 64;
    var heads: [n]t.Posted = undefined;
    for (&heads, 0..) |*p, i| {
        const hdr: request.Header = .{ .type = request.t_in, .reserved = 0, .sector = i * 8 };
        p.* = h.dq.postIndirect(&.{std.mem.asBytes(&hdr)}, &.{ 4096, 1 });
    }
    h.driver().notify(0);
    var seen: u32 = 0;
    while (seen < n) : (seen += 1) {
        const u = try h.waitUsed();
        try testing.expectEqual(@as(u32, 4097), u.len);
    }
    for (heads, 0..) |p, i| {
        const bytes = h.g.bytes(p.in_addr, 4097);
        try testing.expectEqual(s_ok, bytes[4096]);
        try testing.expectEqual(@as(u8, 0x30 +% @as(u8, @truncate(i * 8))), bytes[0]);
    }
    try testing.expectEqual(@as(u64, n), h.blk.served.load(.monotonic));
}

test "blk: the io_uring prototype serves reads, writes and the rest like the pool" {
    const path = test_tmp.path("blk-test-uring.img");
    try makeImage(path, 1 << 20, 0x30);
    const h = Harness.createBackend(path, .{}, .io_uring) catch |err| switch (err) {
        error.SystemResources => return error.SkipZigTest, // io_uring disabled on this host
        else => return err,
    };
    defer h.destroy();
    const n = 64;
    var heads: [n]t.Posted = undefined;
    var data: [4096]u8 = @splat(0x77);
    for (&heads, 0..) |*p, i| {
        // Even: a 4 KiB read (async); odd: a 4 KiB write (async); every 8th: a flush (sync).
        const kind: u32 = if (i % 8 == 7) request.t_flush else if (i % 2 == 0) request.t_in else request.t_out;
        const hdr: request.Header = .{ .type = kind, .reserved = 0, .sector = i * 8 };
        p.* = switch (kind) {
            request.t_in => h.dq.postIndirect(&.{std.mem.asBytes(&hdr)}, &.{ 4096, 1 }),
            request.t_out => h.dq.postIndirect(&.{ std.mem.asBytes(&hdr), &data }, &.{1}),
            else => h.dq.postIndirect(&.{std.mem.asBytes(&hdr)}, &.{1}),
        };
    }
    // Out of range: the decoder's error, not a ring submission.
    const bad: request.Header = .{ .type = request.t_in, .reserved = 0, .sector = 1 << 40 };
    const bad_p = h.dq.postIndirect(&.{std.mem.asBytes(&bad)}, &.{ 4096, 1 });
    h.driver().notify(0);
    for (0..n + 1) |_| _ = try h.waitUsed();
    for (heads, 0..) |p, i| {
        const kind: u32 = if (i % 8 == 7) request.t_flush else if (i % 2 == 0) request.t_in else request.t_out;
        const len: u32 = if (kind == request.t_in) 4097 else 1;
        const bytes = h.g.bytes(p.in_addr, len);
        try testing.expectEqual(s_ok, bytes[len - 1]);
        if (kind == request.t_in) try testing.expectEqual(@as(u8, 0x30 +% @as(u8, @truncate(i * 8))), bytes[0]);
    }
    try testing.expectEqual(s_ioerr, h.g.bytes(bad_p.in_addr, 4097)[4096]);
    var back: [4096]u8 = undefined;
    try readFileAt(path, &back, 8 * 512);
    try testing.expectEqualSlices(u8, &data, &back);
    try testing.expectEqual(@as(u64, n), h.blk.served.load(.monotonic));
}

// ---- qcow2 images made by Debian's qemu-img, read back against the raw original ------------

const qemu_img = "/usr/bin/qemu-img";
const qemu_io = "/usr/bin/qemu-io";

/// Runs argv[0] with `argv` and waits; true when it exited 0.
fn runTool(args: []const ?[*:0]const u8) bool {
    var argv: [16:null]?[*:0]const u8 = @splat(null);
    @memcpy(argv[0..args.len], args);
    const pid = sys.fork() catch return false;
    if (pid == 0) {
        if (sys.open("/dev/null", .{ .ACCMODE = .RDWR })) |devnull| sys.dup2(devnull, 1) catch {} else |_| {}
        const envp = [_:null]?[*:0]const u8{};
        sys.execve(argv[0].?, &argv, &envp) catch {};
        sys.exit_group(127);
    }
    const status = sys.waitpid(pid, 0) catch return false;
    return status == 0;
}

fn hasTool(path: [*:0]const u8) bool {
    sys.access(path, linux.X_OK) catch return false;
    return true;
}

fn expectSameAsRaw(qcow_path: [*:0]const u8, raw: []const u8, patch: ?struct { at: usize, len: usize, byte: u8 }) !void {
    const img = try Image.open(testing.allocator, qcow_path, .{ .format = .qcow2, .read_only = true });
    defer img.close();
    try testing.expectEqual(@as(u64, raw.len), img.capacity);
    const got = try testing.allocator.alloc(u8, raw.len);
    defer testing.allocator.free(got);
    // Odd-sized pieces across cluster boundaries, as a guest's scatter-gather lists are.
    var at: usize = 0;
    var step: usize = 512;
    while (at < raw.len) : (step = (step * 3) % 200_000 + 512) {
        const n = @min(step - step % 512, raw.len - at);
        const half = n / 2;
        const iov = [_]std.posix.iovec{ .{ .base = got[at..].ptr, .len = half }, .{ .base = got[at + half ..].ptr, .len = n - half } };
        try img.readv(&iov, at);
        at += n;
    }
    for (raw, got, 0..) |want, have, i| {
        const expected = if (patch) |p| (if (i >= p.at and i < p.at + p.len) p.byte else want) else want;
        if (expected != have) {
            std.debug.print("qcow2 {s}: byte {d}: want {x} got {x}\n", .{ qcow_path, i, expected, have });
            return error.TestUnexpectedResult;
        }
    }
}

test "qcow2: plain, compressed, zero clusters and backing chains read like the raw image" {
    if (!hasTool(qemu_img) or !hasTool(qemu_io)) return error.SkipZigTest; // Debian's qemu-utils
    const saved_level = testing.log_level;
    testing.log_level = .err; // the missing backing file's warning is expected
    defer testing.log_level = saved_level;
    const dir_name = "qcow2-test";
    const dir = test_tmp.path(dir_name);
    defer test_tmp.removeTree(dir_name);
    sys.mkdir(dir, 0o755) catch {};
    const raw_path = test_tmp.path(dir_name ++ "/base.raw");
    const size = 4 << 20;
    try makeImage(raw_path, size, 0x21);
    // Half the disk zero (sparse): unallocated clusters in the qcow2 copies.
    {
        const fd = try sys.open(raw_path, .{ .ACCMODE = .RDWR, .CLOEXEC = true });
        defer sys.close(fd);
        sys.fallocate(fd, linux.FALLOC.FL_PUNCH_HOLE | linux.FALLOC.FL_KEEP_SIZE, 1 << 20, 1 << 20) catch {};
    }
    const raw = try testing.allocator.alloc(u8, size);
    defer testing.allocator.free(raw);
    try readFileAt(raw_path, raw, 0);

    try testing.expect(runTool(&.{ qemu_img, "convert", "-f", "raw", "-O", "qcow2", raw_path, test_tmp.path(dir_name ++ "/plain.qcow2") }));
    try expectSameAsRaw(test_tmp.path(dir_name ++ "/plain.qcow2"), raw, null);
    try testing.expect(runTool(&.{ qemu_img, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw_path, test_tmp.path(dir_name ++ "/comp4k.qcow2") }));
    try expectSameAsRaw(test_tmp.path(dir_name ++ "/comp4k.qcow2"), raw, null);
    try testing.expect(runTool(&.{ qemu_img, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", raw_path, test_tmp.path(dir_name ++ "/comp-v2.qcow2") }));
    try expectSameAsRaw(test_tmp.path(dir_name ++ "/comp-v2.qcow2"), raw, null);
    // An overlay on the compressed image (relative backing name), written by qemu-io.
    try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", "-b", "comp4k.qcow2", "-F", "qcow2", test_tmp.path(dir_name ++ "/over.qcow2") }));
    try testing.expect(runTool(&.{ qemu_io, "-c", "write -P 0x77 65536 131072", test_tmp.path(dir_name ++ "/over.qcow2") }));
    try expectSameAsRaw(test_tmp.path(dir_name ++ "/over.qcow2"), raw, .{ .at = 65536, .len = 131072, .byte = 0x77 });
    try testing.expect(runTool(&.{ qemu_io, "-c", "write -z 3145728 65536", test_tmp.path(dir_name ++ "/over.qcow2") }));
    {
        const img = try Image.open(testing.allocator, test_tmp.path(dir_name ++ "/over.qcow2"), .{ .format = .qcow2, .read_only = true });
        defer img.close();
        var buf: [65536]u8 = undefined;
        try img.qcow2.?.read(&buf, 3145728);
        try testing.expect(std.mem.allEqual(u8, &buf, 0)); // a zero cluster over non-zero backing data
    }
    // A raw backing file.
    try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", "-b", raw_path, "-F", "raw", test_tmp.path(dir_name ++ "/over-raw.qcow2") }));
    try expectSameAsRaw(test_tmp.path(dir_name ++ "/over-raw.qcow2"), raw, null);
    // A missing backing file is NotFound.
    try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", "-u", "-b", "missing.raw", "-F", "raw", test_tmp.path(dir_name ++ "/orphan.qcow2"), "4M" }));
    try testing.expectError(error.NotFound, Image.open(testing.allocator, test_tmp.path(dir_name ++ "/orphan.qcow2"), .{ .format = .qcow2, .read_only = true }));
    // A raw image opened as qcow2 is not a qcow2 image.
    try testing.expectError(error.InvalidImage, Image.open(testing.allocator, raw_path, .{ .format = .qcow2, .read_only = true }));
}

// ---- qcow2 writes, checked by qemu-img --------------------------------------------------------

/// Applies the same writes to a qcow2 image (through Image, as the device does) and to
/// `model` (the disk's expected contents): random sizes and offsets (COW of partial clusters,
/// clusters spanning L2 tables), write-zeroes and cluster-aligned discards (which read back
/// as zeros here, except on a version 2 overlay, where they leave the data: `discard_zeroes`). `sequential`: the whole disk in 1 MiB pieces first (refcount table growth
/// with small clusters).
fn writeBoth(path: [*:0]const u8, model: []u8, seed: u64, sequential: bool, cluster: u64, discard_zeroes: bool) !void {
    const img = try Image.open(testing.allocator, path, .{ .format = .qcow2 });
    defer img.close();
    try testing.expectEqual(@as(u64, model.len), img.capacity);
    var prng = std.Random.DefaultPrng.init(seed);
    const rnd = prng.random();
    const buf = try testing.allocator.alloc(u8, 1 << 20);
    defer testing.allocator.free(buf);
    if (sequential) {
        var at: usize = 0;
        while (at < model.len) : (at += buf.len) {
            rnd.bytes(buf);
            const n = @min(buf.len, model.len - at);
            const iov = [_]std.posix.iovec{.{ .base = buf.ptr, .len = n }};
            try img.writev(&iov, at);
            @memcpy(model[at..][0..n], buf[0..n]);
        }
    }
    for (0..60) |i| {
        const sectors = model.len / 512;
        const first = rnd.uintLessThan(u64, sectors);
        const count = @min(1 + rnd.uintLessThan(u64, 400), sectors - first);
        const at: usize = @intCast(first * 512);
        const n: usize = @intCast(count * 512);
        switch (i % 6) {
            4 => {
                try img.writeZeroes(at, n, rnd.boolean());
                @memset(model[at..][0..n], 0);
            },
            5 => {
                const start = std.mem.alignForward(u64, at, cluster);
                const end = std.mem.alignBackward(u64, at + n, cluster);
                if (end > start) {
                    try img.discard(start, end - start);
                    if (discard_zeroes) @memset(model[@intCast(start)..@intCast(end)], 0);
                }
            },
            else => {
                rnd.bytes(buf[0..n]);
                // Two guest buffers, split at an odd place, as a scatter-gather list is.
                const half = n / 2 + 1;
                const iov = [_]std.posix.iovec{ .{ .base = buf.ptr, .len = half }, .{ .base = buf[half..].ptr, .len = n - half } };
                try img.writev(&iov, at);
                @memcpy(model[at..][0..n], buf[0..n]);
            },
        }
    }
    try img.flush();
    // Our reader sees the writes before the image is closed.
    const got = try testing.allocator.alloc(u8, model.len);
    defer testing.allocator.free(got);
    const iov = [_]std.posix.iovec{.{ .base = got.ptr, .len = got.len }};
    try img.readv(&iov, 0);
    try expectSameBytes("our reader", model, got);
}

fn expectSameBytes(what: []const u8, want: []const u8, got: []const u8) !void {
    for (want, got, 0..) |a, b, i| if (a != b) {
        std.debug.print("{s}: byte {d}: want {x} got {x}\n", .{ what, i, a, b });
        return error.TestUnexpectedResult;
    };
}

/// `qemu-img check` exits 0 (no corruption, no leaks) and `qemu-img convert` to raw gives
/// exactly `model`.
fn expectQemuAgrees(path: [*:0]const u8, model: []const u8) !void {
    const out = test_tmp.path("qcow2-write-test/out.raw");
    if (!runTool(&.{ qemu_img, "check", "-q", path })) {
        std.debug.print("qemu-img check {s} failed\n", .{path});
        return error.TestUnexpectedResult;
    }
    try testing.expect(runTool(&.{ qemu_img, "convert", "-f", "qcow2", "-O", "raw", path, out }));
    const got = try testing.allocator.alloc(u8, model.len);
    defer testing.allocator.free(got);
    try readFileAt(out, got, 0);
    try expectSameBytes("qemu-img convert", model, got);
}

test "qcow2 writes: allocation, refcount growth, COW from backing and compressed clusters; qemu-img check clean" {
    if (!hasTool(qemu_img)) return error.SkipZigTest; // Debian's qemu-utils
    const dir_name = "qcow2-write-test";
    const dir = test_tmp.path(dir_name);
    defer test_tmp.removeTree(dir_name);
    sys.mkdir(dir, 0o755) catch {};
    const raw_path = test_tmp.path(dir_name ++ "/base.raw");
    const size = 4 << 20;
    try makeImage(raw_path, size, 0x5c);
    {
        const fd = try sys.open(raw_path, .{ .ACCMODE = .RDWR, .CLOEXEC = true });
        defer sys.close(fd);
        sys.fallocate(fd, linux.FALLOC.FL_PUNCH_HOLE | linux.FALLOC.FL_KEEP_SIZE, 1 << 20, 1 << 20) catch {};
    }
    const base = try testing.allocator.alloc(u8, size);
    defer testing.allocator.free(base);
    try readFileAt(raw_path, base, 0);
    const model = try testing.allocator.alloc(u8, size);
    defer testing.allocator.free(model);

    const Case = struct { name: [*:0]const u8, args: []const ?[*:0]const u8, from_base: bool, cluster: u64 };
    const cases = [_]Case{
        .{ .name = test_tmp.path(dir_name ++ "/plain.qcow2"), .args = &.{ qemu_img, "convert", "-f", "raw", "-O", "qcow2", raw_path, test_tmp.path(dir_name ++ "/plain.qcow2") }, .from_base = true, .cluster = 65536 },
        .{ .name = test_tmp.path(dir_name ++ "/comp4k.qcow2"), .args = &.{ qemu_img, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw_path, test_tmp.path(dir_name ++ "/comp4k.qcow2") }, .from_base = true, .cluster = 4096 },
        .{ .name = test_tmp.path(dir_name ++ "/comp-v2.qcow2"), .args = &.{ qemu_img, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compat=0.10", raw_path, test_tmp.path(dir_name ++ "/comp-v2.qcow2") }, .from_base = true, .cluster = 65536 },
        .{ .name = test_tmp.path(dir_name ++ "/empty.qcow2"), .args = &.{ qemu_img, "create", "-f", "qcow2", test_tmp.path(dir_name ++ "/empty.qcow2"), "4M" }, .from_base = false, .cluster = 65536 },
        .{ .name = test_tmp.path(dir_name ++ "/refcount8.qcow2"), .args = &.{ qemu_img, "create", "-f", "qcow2", "-o", "refcount_bits=8,cluster_size=1024", test_tmp.path(dir_name ++ "/refcount8.qcow2"), "4M" }, .from_base = false, .cluster = 1024 },
    };
    for (cases, 0..) |c, i| {
        sys.unlink(c.name) catch {};
        try testing.expect(runTool(c.args));
        if (c.from_base) @memcpy(model, base) else @memset(model, 0);
        try writeBoth(c.name, model, 1000 + i, false, c.cluster, true);
        try expectQemuAgrees(c.name, model);
    }

    // Overlays: copy-on-write from a compressed qcow2 base and from a raw base; the bases
    // stay untouched.
    const overlays = [_]struct { backing: [*:0]const u8, fmt: [*:0]const u8, name: [*:0]const u8 }{
        .{ .backing = "comp4k-base.qcow2", .fmt = "qcow2", .name = test_tmp.path(dir_name ++ "/over-comp.qcow2") },
        .{ .backing = "base.raw", .fmt = "raw", .name = test_tmp.path(dir_name ++ "/over-raw.qcow2") },
        .{ .backing = "base.raw", .fmt = "raw", .name = test_tmp.path(dir_name ++ "/over-raw-v2.qcow2") },
    };
    sys.unlink(test_tmp.path(dir_name ++ "/comp4k-base.qcow2")) catch {};
    try testing.expect(runTool(&.{ qemu_img, "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "cluster_size=4096", raw_path, test_tmp.path(dir_name ++ "/comp4k-base.qcow2") }));
    for (overlays, 0..) |o, i| {
        sys.unlink(o.name) catch {};
        const compat: [*:0]const u8 = if (i == 2) "compat=0.10" else "compat=1.1";
        try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", "-o", compat, "-b", o.backing, "-F", o.fmt, o.name }));
        @memcpy(model, base);
        try writeBoth(o.name, model, 2000 + i, false, 65536, i != 2);
        try expectQemuAgrees(o.name, model);
    }
    try expectQemuAgrees(test_tmp.path(dir_name ++ "/comp4k-base.qcow2"), base);
    const raw_now = try testing.allocator.alloc(u8, size);
    defer testing.allocator.free(raw_now);
    try readFileAt(raw_path, raw_now, 0);
    try expectSameBytes("raw backing file", base, raw_now);

    // 512-byte clusters, 16 MiB written: many refcount blocks and a refcount table that has
    // to move (it starts one cluster long, covering 8 MiB of file).
    const big = test_tmp.path(dir_name ++ "/tiny-clusters.qcow2");
    sys.unlink(big) catch {};
    try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", "-o", "cluster_size=512", big, "16M" }));
    const model16 = try testing.allocator.alloc(u8, 16 << 20);
    defer testing.allocator.free(model16);
    @memset(model16, 0);
    try writeBoth(big, model16, 3000, true, 512, true);
    try expectQemuAgrees(big, model16);
    // Writable opens we refuse: internal snapshots (shared clusters).
    sys.unlink(test_tmp.path(dir_name ++ "/snap.qcow2")) catch {};
    try testing.expect(runTool(&.{ qemu_img, "create", "-f", "qcow2", test_tmp.path(dir_name ++ "/snap.qcow2"), "4M" }));
    try testing.expect(runTool(&.{ qemu_img, "snapshot", "-c", "s1", test_tmp.path(dir_name ++ "/snap.qcow2") }));
    try testing.expectError(error.NotSupported, Image.open(testing.allocator, test_tmp.path(dir_name ++ "/snap.qcow2"), .{ .format = .qcow2 }));
    const ro = try Image.open(testing.allocator, test_tmp.path(dir_name ++ "/snap.qcow2"), .{ .format = .qcow2, .read_only = true });
    ro.close();
}
