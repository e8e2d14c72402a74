//! The virtio-fs device (id 26): config space (tag + num_request_queues), 2 queues × 1024
//! (hiprio + one request queue), VERSION_1 and EVENT_IDX, and a worker thread per device that
//! pops chains, runs them through the FUSE server (Server.zig) and returns them. The worker
//! waits on the queues' ioeventfds itself (`takeNotifyFds`: a kick wakes it directly, not through
//! the event loop, one thread hop less per request; what costs most under nested virtualization)
//! and on its own eventfd, which `queueNotify` (MMIO QueueNotify writes, tests) and `stop` write,
//! so a slow host filesystem never stalls the event loop or a vCPU. With EVENT_IDX the driver
//! does not kick while the worker is still draining, and gets one interrupt per drained batch.
//! Requests are copied into the server's buffer except READ and WRITE payloads, which go
//! straight between guest memory and the file (`gather`).
//!
//! A SETLKW that meets a held lock is kept (its chain stays ours) and retried whenever the
//! worker wakes and every `lock_retry_ms`; a FUSE_INTERRUPT for it completes it with EINTR.
//! No DAX window (SETUPMAPPING gets ENOSYS; the guest mounts without `dax` by default).
const std = @import("std");
const assert = std.debug.assert;
const linux = std.os.linux;
const Config = @import("../../Config.zig");
const Device = @import("../Device.zig");
const Lock = @import("../Lock.zig");
const queue = @import("../queue.zig");
const Server = @import("Server.zig");
const sys = @import("sys.zig");
const fuse = @import("fuse.zig");

const VirtioFs = @This();

pub const device_id = 26;
pub const tag_len_max = 36;
pub const queue_size = 1024;
const queue_sizes = [_]u16{ queue_size, queue_size };
const feature_version_1: u64 = 1 << 32;
const feature_event_idx: u64 = 1 << queue.feature_event_idx;
/// SETLKW requests waiting for a lock at once (more get EAGAIN... never: see `park`).
pub const pending_max = 64;
const lock_retry_ms = 20;
/// Guest-memory pieces a zero-copy READ or WRITE may span: a 1 MiB payload in 4 KiB pages is
/// 256 (a page may split once more where two memory regions meet); more takes the copying path.
pub const direct_iovs_max = 520;

pub const Options = struct {
    tag: []const u8,
    server: Server.Options,
    exit_sink: ?*std.atomic.Value(i32) = null,
};

gpa: std.mem.Allocator,
server: *Server,
/// Config space: tag (NUL-padded) then num_request_queues (le32).
config: [tag_len_max + 4]u8,
/// Serializes activate/reset (vCPU thread) against the worker's start and stop.
lock: Lock = .{},
activation: ?Device.Activation = null,
worker: ?std.Thread = null,
/// Kicks the worker (queueNotify, reset).
wake_fd: i32,
/// The queues' ioeventfds (the VMM's, see `takeNotifyFds`); -1 where none (unit tests).
notify_fds: [queue_sizes.len]i32 = @splat(-1),
stopping: std.atomic.Value(bool) = .init(false),
pending: [pending_max]Pending = undefined,
pending_count: u32 = 0,
/// Requests served (for tests and benches).
served: std.atomic.Value(u64) = .init(0),
/// Guest-memory pieces of one zero-copy WRITE's data / READ's reply (see `gather`).
direct_iovs: [direct_iovs_max]std.posix.iovec = undefined,

const Pending = struct { chain: queue.Chain, queue_index: u16, unique: u64 };

pub const CreateError = Server.InitError || error{ TagInvalid, EventFdFailed };

pub fn create(gpa: std.mem.Allocator, options: Options) CreateError!*VirtioFs {
    if (options.tag.len == 0 or options.tag.len > tag_len_max) return error.TagInvalid;
    const self = try gpa.create(VirtioFs);
    errdefer gpa.destroy(self);
    const server = try Server.init(gpa, options.server);
    errdefer server.deinit();
    server.exit_sink = options.exit_sink;
    const efd = linux.eventfd(0, linux.EFD.CLOEXEC | linux.EFD.NONBLOCK);
    if (linux.errno(efd) != .SUCCESS) return error.EventFdFailed;
    self.* = .{ .gpa = gpa, .server = server, .config = @splat(0), .wake_fd = @intCast(efd) };
    @memcpy(self.config[0..options.tag.len], options.tag);
    std.mem.writeInt(u32, self.config[tag_len_max..][0..4], 1, .little);
    return self;
}

/// The device for one `Config.virtiofs` entry with its overlay files (init.krun among them).
pub fn fromConfig(gpa: std.mem.Allocator, cfg: *const Config, fs: Config.VirtioFs, exit_sink: ?*std.atomic.Value(i32)) (CreateError || error{OverlayInvalid})!*VirtioFs {
    const self = try create(gpa, .{
        .tag = fs.tag,
        .server = .{ .root = fs.path, .read_only = fs.read_only },
        .exit_sink = exit_sink,
    });
    errdefer self.destroy();
    for (cfg.overlay_files.items) |o| {
        if (!std.mem.eql(u8, o.fs_tag, fs.tag)) continue;
        const added = if (o.mode & sys.S.IFMT == sys.S.IFDIR)
            self.server.addOverlayDir(o.path, o.mode)
        else
            self.server.addOverlayFile(o.path, o.data, o.mode, o.one_shot);
        added catch return error.OverlayInvalid;
    }
    return self;
}

pub fn destroy(self: *VirtioFs) void {
    self.stop();
    sys.close(self.wake_fd);
    self.server.deinit();
    self.gpa.destroy(self);
}

/// The exit code the guest reported through the exit-code ioctl, if any.
pub fn exitCode(self: *const VirtioFs) ?i32 {
    return self.server.exitCode();
}

pub fn device(self: *VirtioFs) Device {
    return .{ .ptr = self, .vtable = &vtable };
}

const vtable: Device.VTable = .{
    .device_id = device_id,
    .queue_sizes_max = &queue_sizes,
    .features = features,
    .readConfig = readConfig,
    .writeConfig = writeConfig,
    .activate = activate,
    .queueNotify = queueNotify,
    .reset = reset,
    .takeNotifyFds = takeNotifyFds,
};

fn from(ptr: *anyopaque) *VirtioFs {
    return @ptrCast(@alignCast(ptr));
}

fn features(ptr: *anyopaque) u64 {
    _ = ptr;
    return feature_version_1 | feature_event_idx;
}

fn takeNotifyFds(ptr: *anyopaque, fds: []const i32) void {
    const self = from(ptr);
    assert(fds.len == self.notify_fds.len); // tidy: the VMM passes one fd per queue we declared
    @memcpy(&self.notify_fds, fds);
}

fn readConfig(ptr: *anyopaque, offset: u32, data: []u8) void {
    const self = from(ptr);
    @memset(data, 0);
    if (offset >= self.config.len) return;
    const n = @min(data.len, self.config.len - offset);
    @memcpy(data[0..n], self.config[offset..][0..n]);
}

fn writeConfig(ptr: *anyopaque, offset: u32, data: []const u8) void {
    // The config space is read-only for the driver.
    _ = ptr;
    _ = offset;
    _ = data;
}

fn activate(ptr: *anyopaque, ctx: Device.Activation) Device.ActivateError!void {
    const self = from(ptr);
    self.lock.lock();
    defer self.lock.unlock();
    assert(self.worker == null); // tidy: worker/pending state, ours
    if (ctx.queues.len != queue_sizes.len) return error.DeviceBroken;
    self.activation = ctx;
    self.pending_count = 0;
    self.stopping.store(false, .release);
    self.worker = std.Thread.spawn(.{}, workerMain, .{self}) catch {
        self.activation = null;
        return error.OutOfMemory;
    };
}

fn queueNotify(ptr: *anyopaque, queue_index: u16) void {
    _ = queue_index;
    from(ptr).wake();
}

fn reset(ptr: *anyopaque) void {
    from(ptr).stop();
}

fn wake(self: *VirtioFs) void {
    const one: u64 = 1;
    _ = linux.write(self.wake_fd, std.mem.asBytes(&one), 8);
}

/// Stops the worker; afterwards the device holds no guest memory references.
fn stop(self: *VirtioFs) void {
    self.lock.lock();
    defer self.lock.unlock();
    const worker = self.worker orelse return;
    self.stopping.store(true, .release);
    self.wake();
    worker.join();
    self.worker = null;
    self.activation = null;
    // Chains kept waiting die with the queues (the driver resets them too).
    self.pending_count = 0;
    self.server.endSession();
}

fn workerMain(self: *VirtioFs) void {
    // Poll ignores negative fds, so unit tests (no ioeventfds) wait on wake_fd alone.
    var pfds: [1 + queue_sizes.len]linux.pollfd = undefined;
    pfds[0] = .{ .fd = self.wake_fd, .events = linux.POLL.IN, .revents = 0 };
    for (self.notify_fds, pfds[1..]) |fd, *p| p.* = .{ .fd = fd, .events = linux.POLL.IN, .revents = 0 };
    while (!self.stopping.load(.acquire)) {
        self.runOnce();
        const timeout: i32 = if (self.pending_count > 0) lock_retry_ms else -1;
        _ = linux.poll(&pfds, pfds.len, timeout);
        if (self.server.stats) |st| st.wakes +|= 1;
        // Reset the eventfds that fired before draining: a kick after this read is not lost.
        for (&pfds) |*p| {
            if (p.revents & linux.POLL.IN == 0) continue;
            var count: u64 = undefined;
            _ = linux.read(p.fd, std.mem.asBytes(&count), 8);
        }
    }
}

/// Serves everything available on both queues, then the parked SETLKWs.
pub fn runOnce(self: *VirtioFs) void {
    const ctx = self.activation orelse return;
    for (ctx.queues, 0..) |*q, i| {
        if (!q.ready or q.isBroken()) continue;
        self.drain(ctx, q, @intCast(i)) catch {
            q.markBroken();
            ctx.interrupt.fail();
        };
    }
    self.retryPending(ctx) catch ctx.interrupt.fail();
}

fn drain(self: *VirtioFs, ctx: Device.Activation, q: *queue.Queue, index: u16) queue.Error!void {
    var used = false;
    while (try q.pop(ctx.mem)) |chain| {
        var r = chain.reader();
        var w = chain.writer();
        const got = try self.gather(&r, &w);
        const outcome = self.server.process(got, w.bytesLeft());
        _ = self.served.fetchAdd(1, .monotonic);
        self.server.direct_in = &.{};
        self.server.direct_in_len = 0;
        self.server.direct_out = &.{};
        switch (outcome) {
            .blocked => {
                self.park(chain, index, self.server.requestUnique(got));
                continue;
            },
            .reply => |len| {
                // A direct READ's payload is in the chain already, after the header.
                const direct = self.server.direct_len;
                try w.writeAll(self.server.out_buf[0 .. len - direct]);
                if (direct > 0) try w.skipWritten(direct);
            },
            .none => {},
        }
        try q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
        if (self.server.interrupted) |unique| try self.interrupt(ctx, unique);
    }
    if (used and try q.needsNotification(ctx.mem)) {
        ctx.interrupt.signal(Device.Interrupt.vring);
        if (self.server.stats) |st| st.irqs +|= 1;
    }
}

/// Copies the request into the server's in_buf and returns its length, except for the data
/// of a WRITE: only its headers are copied and the data is handed to the server as pieces of
/// guest memory (Server.direct_in) for pwritev. A READ gets the chain's writable memory after
/// the reply header (Server.direct_out) for preadv. One copy of the payload instead of two,
/// where copies cost most (an emulated or nested host). Only what the server validates is
/// copied (the headers); the payload is never interpreted, so the guest changing it under us
/// changes only what gets written.
fn gather(self: *VirtioFs, r: *queue.Reader, w: *const queue.Writer) queue.Error!usize {
    const s = self.server;
    // FUSE's READ and WRITE argument structs are both 40 bytes.
    const head_len = @sizeOf(fuse.InHeader) + @sizeOf(fuse.WriteIn);
    comptime assert(@sizeOf(fuse.ReadIn) == @sizeOf(fuse.WriteIn));
    var got = try r.read(s.in_buf[0..head_len]);
    if (got == head_len) {
        var h: fuse.InHeader = undefined;
        @memcpy(std.mem.asBytes(&h), s.in_buf[0..@sizeOf(fuse.InHeader)]);
        if (h.opcode == @backingInt(fuse.Opcode.write) and h.total_extlen == 0 and h.len > head_len) {
            const payload = h.len - head_len;
            if (payload <= r.bytesLeft() and payload <= s.options.max_write) {
                const n = try r.iovecs(&self.direct_iovs, payload);
                var covered: usize = 0;
                for (self.direct_iovs[0..n]) |iov| covered += iov.len;
                if (covered == payload) {
                    s.direct_in = self.direct_iovs[0..n];
                    s.direct_in_len = payload;
                    return got;
                }
            }
        } else if (h.opcode == @backingInt(fuse.Opcode.read) and w.bytesLeft() > @sizeOf(fuse.OutHeader)) {
            var after = w.*;
            try after.skipWritten(@sizeOf(fuse.OutHeader));
            const n = try after.iovecs(&self.direct_iovs, s.options.max_write);
            s.direct_out = self.direct_iovs[0..n];
        }
    }
    got += try r.read(s.in_buf[got..]);
    return got;
}

/// Keeps a blocked SETLKW. The table cannot overflow: the kernel holds one request per
/// waiting process and the queue has 1024 slots, but if a hostile driver fills it anyway, the
/// oldest waiter is answered EAGAIN to make room (never a crash, never a lost chain).
fn park(self: *VirtioFs, chain: queue.Chain, index: u16, unique: u64) void {
    if (self.pending_count == pending_max) {
        const ctx = self.activation.?;
        self.complete(ctx, self.pending[0], self.server.errorReply(self.pending[0].unique, .AGAIN)) catch ctx.interrupt.fail();
        self.removePending(0);
    }
    self.pending[self.pending_count] = .{ .chain = chain, .queue_index = index, .unique = unique };
    self.pending_count += 1;
}

fn removePending(self: *VirtioFs, i: u32) void {
    assert(i < self.pending_count); // tidy: worker/pending state, ours
    self.pending_count -= 1;
    self.pending[i] = self.pending[self.pending_count];
}

/// Writes a reply already in the server's out_buf into a kept chain and returns the chain.
fn complete(self: *VirtioFs, ctx: Device.Activation, p: Pending, len: u32) queue.Error!void {
    const q = &ctx.queues[p.queue_index];
    var w = p.chain.writer();
    try w.writeAll(self.server.out_buf[0..len]);
    try q.addUsed(ctx.mem, p.chain.head, w.written);
    if (try q.needsNotification(ctx.mem)) ctx.interrupt.signal(Device.Interrupt.vring);
}

fn interrupt(self: *VirtioFs, ctx: Device.Activation, unique: u64) queue.Error!void {
    var i: u32 = 0;
    while (i < self.pending_count) : (i += 1) {
        if (self.pending[i].unique != unique) continue;
        const p = self.pending[i];
        self.removePending(i);
        return self.complete(ctx, p, self.server.errorReply(unique, .INTR));
    }
}

fn retryPending(self: *VirtioFs, ctx: Device.Activation) queue.Error!void {
    var i: u32 = 0;
    while (i < self.pending_count) {
        const p = self.pending[i];
        var r = p.chain.reader();
        const got = try r.read(self.server.in_buf);
        var w = p.chain.writer();
        switch (self.server.process(got, w.bytesLeft())) {
            .blocked => i += 1,
            .reply => |len| {
                self.removePending(i);
                try self.complete(ctx, p, len);
            },
            .none => {
                self.removePending(i);
                try ctx.queues[p.queue_index].addUsed(ctx.mem, p.chain.head, 0);
            },
        }
    }
}

// ---- tests: the device driven through real virtqueues in simulated guest memory -------------

const testing = @import("../testing.zig");
const Tmp = @import("testing.zig").Tmp;

test {
    // Everything under virtio/fs/ is tested from here (unit_tests.zig imports this file); the
    // server's request-level tests and the hostile harness are tests/zig/fs/ (`zig build test`).
    _ = Server;
}

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
    readConfig(rig.fs, 0, &cfg);
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
    const init_in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0 };
    const h1 = header(.init, 0, 1, @sizeOf(fuse.InitIn));
    _ = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h1), std.mem.asBytes(&init_in) }, 4096);
    const hl = header(.lookup, 1, 2, 2);
    var eo: fuse.EntryOut = undefined;
    @memcpy(std.mem.asBytes(&eo), (try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hl), "w\x00" }, 4096))[16..][0..@sizeOf(fuse.EntryOut)]);
    const ho = header(.open, eo.nodeid, 3, @sizeOf(fuse.OpenIn));
    const ro = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&ho), std.mem.asBytes(&fuse.OpenIn{ .flags = 2, .open_flags = 0 }) }, 4096);
    const fh = std.mem.readInt(u64, ro[16..24], .little);

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
    const init_in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0 };
    const h1 = header(.init, 0, 1, @sizeOf(fuse.InitIn));
    _ = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&h1), std.mem.asBytes(&init_in) }, 4096);
    const hl = header(.lookup, 1, 2, 2);
    var eo: fuse.EntryOut = undefined;
    @memcpy(std.mem.asBytes(&eo), (try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&hl), "h\x00" }, 4096))[16..][0..@sizeOf(fuse.EntryOut)]);
    const ho = header(.open, eo.nodeid, 3, @sizeOf(fuse.OpenIn));
    const ro = try rig.roundTrip(&rig.req, &.{ std.mem.asBytes(&ho), std.mem.asBytes(&fuse.OpenIn{ .flags = 2, .open_flags = 0 }) }, 4096);
    const fh = std.mem.readInt(u64, ro[16..24], .little);
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
