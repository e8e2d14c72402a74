//! virtio-blk (device id 2): one request queue of 256 served by a bounded pool of worker
//! threads, so a disk serves up to `workers_count` requests at once (libkrun serves one at a
//! time per disk, libkrun #824) and neither the vCPU threads nor the event loop ever wait
//! for the disk.
//!
//! Flow: the guest kicks the queue → `queueNotify` (event loop) pops validated chains into the
//! job ring, under the device lock, and wakes a worker; a worker decodes the request
//! (request.zig), does the I/O straight between guest memory and the image (Image.zig) without
//! the lock, then takes the lock to put the chain on the used ring and interrupt the guest.
//! In-flight requests are bounded by `jobs_max`: a guest that keeps more chains outstanding
//! (it may reuse heads) waits in the avail ring until a worker frees a slot and drains it.
//!
//! Why threads and not io_uring (measured: BENCHMARKS.md "virtio-blk"): the same pool serves
//! raw and qcow2 (qcow2 needs metadata lookups, decompression and ordering between them, which
//! would otherwise be a state machine per request); on the page cache (the default) 4 threads
//! of blocking preadv/pwritev serve 1.7–2.4× the 4 KiB IOPS of a one-thread io_uring at queue
//! depth 4 and 32, which completes cached I/O inline in its one thread (io_uring wins at depth
//! 1 and on O_DIRECT writes at depth, where the pool caps the disk at 4); and io_uring is often disabled
//! where libkrun runs (container seccomp profiles, `kernel.io_uring_disabled`, kernels built
//! without it), so a library cannot count on it. `Backend.io_uring` is the prototype that was
//! measured (tests/zig/blk/bench.zig): one thread owns a ring and submits raw reads and writes
//! as readv/writev SQEs; everything else (qcow2, flush, discard, GET_ID, requests longer than
//! `ring_iov` segments, short or failed transfers) is served synchronously by that thread
//! through the same code as the pool. `Backend.pool_wide` (8 workers) is the pool's width
//! measured against 4. The C API always uses `pool`.
//!
//! `reset` waits for in-flight requests to finish: afterwards no worker touches guest memory.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../../sys/linux.zig");
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const mmio = @import("../mmio.zig");
const Lock = @import("../Lock.zig");
const Image = @import("Image.zig");
const request = @import("request.zig");

const log = std.log.scoped(.virtio);

const Blk = @This();

pub const device_id: u32 = 2;
pub const queue_size: u16 = 256;
pub const workers_count = 4;
/// Threads of `Backend.pool_wide` (measured against the 4 of `pool`: BENCHMARKS.md).
pub const workers_max = 8;
/// Requests in flight at once (queued for a worker or being served).
pub const jobs_max = queue_size;
/// Data segments per request (libkrun: 254), advertised as seg_max.
pub const seg_max: u32 = queue_size - 2;
/// iovecs handed to the image at once; a longer request is served in pieces.
const iov_max = 256;

pub const f_seg_max: u6 = 2;
pub const f_ro: u6 = 5;
pub const f_blk_size: u6 = 6;
pub const f_flush: u6 = 9;
pub const f_discard: u6 = 13;
pub const f_write_zeroes: u6 = 14;

const Job = struct { chain: queue.Chain };

pub const Backend = enum { pool, pool_wide, io_uring };

lock: Lock = .{},
act: ?Device.Activation = null,
image: *Image,
limits: request.Limits,
id: [request.id_len]u8 = @splat(0),
offered: u64,
config: [60]u8 = @splat(0),

jobs: [jobs_max]Job = undefined,
/// Ring of jobs waiting for a worker: [job_head, job_head + job_count).
job_head: u32 = 0,
job_count: u32 = 0,
/// Jobs taken out of the avail ring and not yet on the used ring (queued + being served).
inflight: u32 = 0,
stopping: bool = false,
/// Futex words: bumped (and woken) when a job is queued / when `inflight` reaches 0.
work_seq: std.atomic.Value(u32) = .init(0),
idle_seq: std.atomic.Value(u32) = .init(0),
workers: [workers_max]?std.Thread = @splat(null),
/// Requests served, by outcome (tests, benchmarks).
served: std.atomic.Value(u64) = .init(0),
failed: std.atomic.Value(u64) = .init(0),
backend: Backend = .pool,
/// The io_uring prototype's state (Backend.io_uring only), from page_allocator.
ring: ?*Ring = null,

pub const queue_sizes_max = [_]u16{queue_size};
pub const device = Device.Impl(Blk).device;

/// Takes ownership of `image` (closed by `deinit`); `block_id` is the serial GET_ID returns.
/// Starts the workers; they sleep until the guest sends requests.
pub fn init(self: *Blk, image: *Image, block_id: []const u8) error{SystemResources}!void {
    return self.initBackend(image, block_id, .pool);
}

/// `init` with a choice of backend (benchmarks; the io_uring one is a prototype).
pub fn initBackend(self: *Blk, image: *Image, block_id: []const u8, backend: Backend) error{SystemResources}!void {
    const ro = image.options.read_only;
    const writable = !ro;
    self.* = .{
        .image = image,
        .limits = .{
            .capacity_sectors = image.capacity / request.sector_size,
            .read_only = ro,
            .discard = writable,
            .write_zeroes = writable,
        },
        .offered = 0,
        .backend = backend,
    };
    const n = @min(block_id.len, request.id_len);
    @memcpy(self.id[0..n], block_id[0..n]);
    var f: u64 = 1 << mmio.feature_version_1 | 1 << queue.feature_indirect_desc | 1 << queue.feature_event_idx;
    f |= 1 << f_seg_max | 1 << f_blk_size;
    if (self.limits.read_only) f |= 1 << f_ro;
    if (image.options.sync != .none) f |= 1 << f_flush;
    if (writable) f |= 1 << f_discard | 1 << f_write_zeroes;
    self.offered = f;
    self.buildConfig();
    errdefer self.stopWorkers();
    if (backend == .io_uring) {
        const r = Ring.create() catch return error.SystemResources;
        self.ring = r; // before the thread starts: ringMain reads it
        self.workers[0] = std.Thread.spawn(.{}, ringMain, .{self}) catch {
            self.ring = null;
            r.destroy();
            return error.SystemResources;
        };
        return;
    }
    const width: usize = if (backend == .pool_wide) workers_max else workers_count;
    for (self.workers[0..width]) |*w| {
        w.* = std.Thread.spawn(.{}, workerMain, .{self}) catch return error.SystemResources;
    }
}

/// Stops the workers and closes the image. The device must be reset (or never activated).
pub fn deinit(self: *Blk) void {
    self.stopWorkers();
    if (self.ring) |r| r.destroy();
    self.ring = null;
    self.image.close();
}

/// struct virtio_blk_config (§5.2.4), little-endian.
fn buildConfig(self: *Blk) void {
    const c = &self.config;
    std.mem.writeInt(u64, c[0..8], self.limits.capacity_sectors, .little);
    std.mem.writeInt(u32, c[12..16], seg_max, .little);
    std.mem.writeInt(u32, c[20..24], request.sector_size, .little); // blk_size
    std.mem.writeInt(u16, c[34..36], 1, .little); // num_queues
    std.mem.writeInt(u32, c[36..40], self.limits.discard_sectors_max, .little);
    std.mem.writeInt(u32, c[40..44], self.limits.discard_segments_max, .little);
    std.mem.writeInt(u32, c[44..48], 8, .little); // discard_sector_alignment: 4 KiB
    std.mem.writeInt(u32, c[48..52], self.limits.discard_sectors_max, .little);
    std.mem.writeInt(u32, c[52..56], self.limits.discard_segments_max, .little);
    c[56] = 1; // write_zeroes_may_unmap
}

pub fn features(self: *Blk) u64 {
    return self.offered;
}

/// Writeback (CONFIG_WCE) is not offered, so nothing in it is writable (no `writeConfig`).
pub fn readConfig(self: *Blk, offset: u32, data: []u8) void {
    mmio.readConfigBytes(&self.config, offset, data);
}

pub fn activate(self: *Blk, a: Device.Activation) Device.ActivateError!void {
    self.lock.lock();
    defer self.lock.unlock();
    if (a.queues.len != 1) return error.DeviceBroken;
    self.act = a;
}

/// Drops queued jobs and waits for the ones being served (bounded by their I/O).
pub fn reset(self: *Blk) void {
    self.lock.lock();
    defer self.lock.unlock();
    self.act = null;
    self.inflight -= self.job_count;
    self.job_count = 0;
    while (self.inflight > 0) {
        const seen = self.idle_seq.load(.acquire);
        self.lock.unlock();
        futexWait(&self.idle_seq, seen);
        self.lock.lock();
    }
}

pub fn queueNotify(self: *Blk, index: u16) void {
    if (index != 0) return;
    self.lock.lock();
    defer self.lock.unlock();
    self.drainLocked();
}

/// Moves available chains into the job ring while there is room (lock held).
fn drainLocked(self: *Blk) void {
    const a = self.act orelse return;
    const q = &a.queues[0];
    if (!q.ready or q.isBroken()) return;
    var queued: u32 = 0;
    while (self.inflight < jobs_max) {
        const chain = (q.pop(a.mem) catch |err| {
            log.warn("blk: queue: {t}", .{err});
            a.interrupt.fail();
            break;
        }) orelse break;
        self.jobs[(self.job_head + self.job_count) % jobs_max] = .{ .chain = chain };
        self.job_count += 1;
        self.inflight += 1;
        queued += 1;
    }
    if (queued > 0) self.wake(queued);
}

fn wake(self: *Blk, n: u32) void {
    _ = self.work_seq.fetchAdd(1, .release);
    futexWake(&self.work_seq, n);
    if (self.ring) |r| r.kick();
}

fn stopWorkers(self: *Blk) void {
    self.lock.lock();
    self.stopping = true;
    self.lock.unlock();
    self.wake(workers_max);
    for (&self.workers) |*w| if (w.*) |t| {
        t.join();
        w.* = null;
    };
}

fn workerMain(self: *Blk) void {
    var iov: [iov_max]std.posix.iovec = undefined;
    self.lock.lock();
    while (!self.stopping) {
        if (self.job_count == 0) {
            const seen = self.work_seq.load(.acquire);
            self.lock.unlock();
            futexWait(&self.work_seq, seen);
            self.lock.lock();
            continue;
        }
        const job = self.jobs[self.job_head];
        self.job_head = (self.job_head + 1) % jobs_max;
        self.job_count -= 1;
        self.lock.unlock();
        const written = self.serve(job.chain, &iov);
        self.lock.lock();
        self.complete(job.chain.head, written);
    }
    self.lock.unlock();
}

/// Puts a served chain on the used ring and interrupts the guest if it asks (lock held).
fn complete(self: *Blk, head: u16, written: u32) void {
    self.inflight -= 1;
    if (self.act) |a| {
        const q = &a.queues[0];
        const ok = blk: {
            q.addUsed(a.mem, head, written) catch break :blk false;
            if (q.needsNotification(a.mem) catch break :blk false) a.interrupt.signal(Device.Interrupt.vring);
            break :blk true;
        };
        if (!ok) a.interrupt.fail();
        self.drainLocked(); // chains left waiting for a free job slot
    }
    if (self.inflight == 0) {
        _ = self.idle_seq.fetchAdd(1, .release);
        futexWake(&self.idle_seq, 1);
    }
}

/// Decodes and runs one request; returns the bytes written into the chain's writable part
/// (the used length). Guest errors end as a status byte, never as a failure here.
fn serve(self: *Blk, chain: queue.Chain, iov: *[iov_max]std.posix.iovec) u32 {
    var r = chain.reader();
    var w = chain.writer();
    const hdr: ?request.Header = r.readObj(request.Header) catch null;
    const status: request.Status = switch (request.decode(hdr, chain.readable_len, chain.writable_len, self.limits)) {
        .no_status => return 0,
        .fail => |s| s,
        .run => |req| self.run(req, &r, &w, iov) catch .ioerr,
    };
    if (status == .ok) _ = self.served.fetchAdd(1, .monotonic) else _ = self.failed.fetchAdd(1, .monotonic);
    // The status is the last writable byte, whatever the request wrote before it.
    const room = chain.writable_len - 1;
    if (w.written < room) w.skipWritten(room - w.written) catch return w.written;
    w.writeObj(@backingInt(status)) catch return w.written;
    return w.written;
}

const RunError = queue.Error || Image.IoError;

fn run(self: *Blk, req: request.Request, r: *queue.Reader, w: *queue.Writer, iov: *[iov_max]std.posix.iovec) RunError!request.Status {
    switch (req.kind) {
        .read => {
            var at = req.offset;
            var left: usize = req.data_len;
            while (left > 0) {
                const n = try w.iovecs(iov, left);
                if (n == 0) return error.ChainTooShort;
                const bytes = iovBytes(iov[0..n]);
                try self.image.readv(iov[0..n], at);
                try w.skipWritten(bytes);
                at += bytes;
                left -= bytes;
            }
        },
        .write => {
            var at = req.offset;
            var left: usize = req.data_len;
            while (left > 0) {
                const n = try r.iovecs(iov, left);
                if (n == 0) return error.ChainTooShort;
                const bytes = iovBytes(iov[0..n]);
                try self.image.writev(iov[0..n], at);
                if (try r.skip(bytes) != bytes) return error.ChainTooShort;
                at += bytes;
                left -= bytes;
            }
        },
        .flush => try self.image.flush(),
        .get_id => try w.writeAll(self.id[0..req.data_len]),
        .discard, .write_zeroes => {
            var done: u32 = 0;
            while (done < req.data_len) : (done += request.segment_len) {
                const seg = try r.readObj(request.Segment);
                switch (request.checkSegment(req.kind, seg, self.limits)) {
                    .fail => |s| return s,
                    .range => |range| if (req.kind == .discard)
                        try self.image.discard(range.offset, range.len)
                    else
                        try self.image.writeZeroes(range.offset, range.len, range.unmap),
                }
            }
        },
    }
    return .ok;
}

fn iovBytes(iov: []const std.posix.iovec) usize {
    var total: usize = 0;
    for (iov) |v| total += v.len;
    return total;
}

/// EINTR, EAGAIN (the word changed) and a spurious wakeup alike: the caller rechecks.
fn futexWait(word: *std.atomic.Value(u32), seen: u32) void {
    sys.futexWait(word, seen, null) catch {};
}

fn futexWake(word: *std.atomic.Value(u32), n: u32) void {
    sys.futexWake(word, n);
}

// ---- io_uring prototype (Backend.io_uring; measured, not shipped: see the file comment) ------

/// Segments one asynchronous request may have; longer ones are served synchronously.
const ring_iov = 64;
/// Ring entries: every job slot plus the kick read fit, so the SQ never fills.
const ring_entries = 2 * jobs_max;
const kick_tag: u64 = std.math.maxInt(u64);

const Ring = struct {
    ring: linux.IoUring,
    /// eventfd written by `wake`; a read on it is always in the ring, so a kick is a completion.
    kick_fd: linux.fd_t,
    kick_buf: u64 = 0,
    slots: [jobs_max]Slot = undefined,
    free: [jobs_max]u16 = undefined,
    free_count: u32 = jobs_max,

    const Slot = struct { chain: queue.Chain, bytes: u32, iov: [ring_iov]std.posix.iovec };

    fn create() !*Ring {
        const r = try std.heap.page_allocator.create(Ring);
        errdefer std.heap.page_allocator.destroy(r);
        const efd = sys.eventfd(0) catch return error.SystemResources;
        errdefer sys.close(efd);
        r.* = .{ .ring = try linux.IoUring.init(ring_entries, 0), .kick_fd = efd };
        for (&r.free, 0..) |*f, i| f.* = @intCast(i);
        return r;
    }

    fn destroy(r: *Ring) void {
        r.ring.deinit();
        sys.close(r.kick_fd);
        std.heap.page_allocator.destroy(r);
    }

    fn kick(r: *Ring) void {
        sys.eventfdSignal(r.kick_fd);
    }

    fn armKick(r: *Ring) !void {
        _ = try r.ring.read(kick_tag, r.kick_fd, .{ .buffer = std.mem.asBytes(&r.kick_buf) }, 0);
    }
};

/// The ring thread: takes queued jobs, submits raw reads/writes, serves the rest itself,
/// and completes whatever the ring reports.
fn ringMain(self: *Blk) void {
    const r = self.ring.?;
    var iov: [iov_max]std.posix.iovec = undefined;
    var cqes: [64]linux.io_uring_cqe = undefined;
    r.armKick() catch return;
    var busy: u32 = 0; // slots submitted and not completed
    while (true) {
        self.lock.lock();
        if (self.stopping and busy == 0) break;
        while (self.job_count > 0 and r.free_count > 0) {
            const job = self.jobs[self.job_head];
            self.job_head = (self.job_head + 1) % jobs_max;
            self.job_count -= 1;
            self.lock.unlock();
            if (self.ringStart(r, job.chain)) busy += 1 else {
                const written = self.serve(job.chain, &iov);
                self.lock.lock();
                self.complete(job.chain.head, written);
                self.lock.unlock();
            }
            self.lock.lock();
        }
        self.lock.unlock();
        _ = r.ring.submit_and_wait(1) catch |err| switch (err) {
            error.SignalInterrupt => continue,
            else => {
                log.warn("blk: io_uring: {t}", .{err});
                continue;
            },
        };
        const n = r.ring.copy_cqes(&cqes, 0) catch 0;
        for (cqes[0..n]) |cqe| {
            if (cqe.user_data == kick_tag) {
                r.armKick() catch {};
                continue;
            }
            busy -= 1;
            self.ringFinish(r, @intCast(cqe.user_data), cqe.res, &iov);
        }
    }
    self.lock.unlock();
}

/// Submits `chain` as one readv/writev SQE if it is a raw read or write that fits a slot;
/// false: serve it synchronously.
fn ringStart(self: *Blk, r: *Ring, chain: queue.Chain) bool {
    if (self.image.qcow2 != null) return false;
    var rd = chain.reader();
    const hdr: ?request.Header = rd.readObj(request.Header) catch null;
    const req = switch (request.decode(hdr, chain.readable_len, chain.writable_len, self.limits)) {
        .run => |req| req,
        else => return false,
    };
    if (req.kind != .read and req.kind != .write) return false;
    const index = r.free[r.free_count - 1];
    const slot = &r.slots[index];
    const n = (if (req.kind == .read) chain.writer().iovecs(&slot.iov, req.data_len) else rd.iovecs(&slot.iov, req.data_len)) catch return false;
    if (n == 0 or iovBytes(slot.iov[0..n]) != req.data_len) return false;
    slot.chain = chain;
    slot.bytes = req.data_len;
    const sqe = (if (req.kind == .read)
        r.ring.read(index, self.image.fd, .{ .iovecs = slot.iov[0..n] }, req.offset)
    else
        r.ring.writev(index, self.image.fd, @ptrCast(slot.iov[0..n]), req.offset)) catch return false;
    _ = sqe;
    r.free_count -= 1;
    return true;
}

/// Completes a submitted slot; a short or failed transfer is redone synchronously.
fn ringFinish(self: *Blk, r: *Ring, index: u16, res: i32, iov: *[iov_max]std.posix.iovec) void {
    const slot = &r.slots[index];
    const chain = slot.chain;
    r.free[r.free_count] = index;
    r.free_count += 1;
    var written: u32 = 0;
    if (res >= 0 and @as(u32, @intCast(res)) == slot.bytes) {
        _ = self.served.fetchAdd(1, .monotonic);
        var w = chain.writer();
        const ok = blk: {
            w.skipWritten(chain.writable_len - 1) catch break :blk false;
            w.writeObj(@backingInt(request.Status.ok)) catch break :blk false;
            break :blk true;
        };
        written = w.written;
        if (!ok) written = self.serve(chain, iov);
    } else written = self.serve(chain, iov);
    self.lock.lock();
    self.complete(chain.head, written);
    self.lock.unlock();
}
