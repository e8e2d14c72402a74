//! The virtio-fs device (id 26): config space (tag + num_request_queues), 2 queues × 1024
//! (hiprio + one request queue), VERSION_1 and EVENT_IDX, and a worker thread per device that
//! pops chains, runs them through the FUSE server (Server.zig) and returns them. The worker
//! waits on the queues' ioeventfds itself (`takeNotifyFds`: a kick wakes it directly, not through
//! the event loop, one thread hop less per request; what costs most under nested virtualization)
//! and on its own Notifier (an eventfd; a pipe on macOS), which `queueNotify` (MMIO QueueNotify
//! writes, tests) and `stop` signal,
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
const Config = @import("../../Config.zig");
const Device = @import("../Device.zig");
const Lock = @import("../Lock.zig");
const queue = @import("../queue.zig");
const mmio = @import("../mmio.zig");
const Server = @import("Server.zig");
const sys = @import("sys.zig").backend;
const Notifier = @import("../../vmm/Notifier.zig");
const fuse = @import("fuse.zig");

const VirtioFs = @This();

pub const device_id = 26;
pub const tag_len_max = 36;
pub const queue_size = 1024;
pub const queue_sizes_max = [_]u16{ queue_size, queue_size };
pub const feature_version_1: u64 = 1 << 32;
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
wake_notifier: Notifier,
/// The queues' ioeventfds (the VMM's, see `takeNotifyFds`); -1 where none (unit tests).
notify_fds: [queue_sizes_max.len]i32 = @splat(-1),
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
    const notifier = Notifier.init() catch return error.EventFdFailed;
    self.* = .{ .gpa = gpa, .server = server, .config = @splat(0), .wake_notifier = notifier };
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
    self.wake_notifier.deinit();
    self.server.deinit();
    self.gpa.destroy(self);
}

/// The exit code the guest reported through the exit-code ioctl, if any.
pub fn exitCode(self: *const VirtioFs) ?i32 {
    return self.server.exitCode();
}

pub const device = Device.Impl(VirtioFs).device;
pub const features: u64 = feature_version_1 | feature_event_idx;

pub fn takeNotifyFds(self: *VirtioFs, fds: []const i32) void {
    assert(fds.len == self.notify_fds.len); // tidy: the VMM passes one fd per queue we declared
    @memcpy(&self.notify_fds, fds);
}

/// The config space is read-only for the driver (no `writeConfig`: writes are ignored).
pub fn readConfig(self: *VirtioFs, offset: u32, data: []u8) void {
    mmio.readConfigBytes(&self.config, offset, data);
}

pub fn activate(self: *VirtioFs, ctx: Device.Activation) Device.ActivateError!void {
    self.lock.lock();
    defer self.lock.unlock();
    assert(self.worker == null); // tidy: worker/pending state, ours
    if (ctx.queues.len != queue_sizes_max.len) return error.DeviceBroken;
    self.activation = ctx;
    self.pending_count = 0;
    self.stopping.store(false, .release);
    self.worker = std.Thread.spawn(.{}, workerMain, .{self}) catch {
        self.activation = null;
        return error.OutOfMemory;
    };
}

pub fn queueNotify(self: *VirtioFs, queue_index: u16) void {
    _ = queue_index;
    self.wake();
}

pub fn reset(self: *VirtioFs) void {
    self.stop();
}

fn wake(self: *VirtioFs) void {
    self.wake_notifier.signal();
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
    var pfds: [1 + queue_sizes_max.len]std.c.pollfd = undefined;
    pfds[0] = .{ .fd = self.wake_notifier.fd, .events = std.c.POLL.IN, .revents = 0 };
    for (self.notify_fds, pfds[1..]) |fd, *p| p.* = .{ .fd = fd, .events = std.c.POLL.IN, .revents = 0 };
    while (!self.stopping.load(.acquire)) {
        self.runOnce();
        const timeout: i32 = if (self.pending_count > 0) lock_retry_ms else -1;
        _ = std.c.poll(&pfds, pfds.len, timeout);
        if (self.server.stats) |st| st.wakes +|= 1;
        // Reset the eventfds that fired before draining: a kick after this read is not lost.
        for (&pfds) |*p| {
            if (p.revents & std.c.POLL.IN == 0) continue;
            _ = Notifier.drain(p.fd);
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
    comptime assert(@sizeOf(fuse.ReadIn) == @sizeOf(fuse.WriteIn)); // tidy: a compile-time layout fact
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

test {
    // Everything under virtio/fs/ is tested from here (unit_tests.zig imports this file); the
    // server's request-level tests and the hostile harness are tests/zig/fs/ (`zig build test`).
    _ = Server;
    _ = @import("device_tests.zig");
}
