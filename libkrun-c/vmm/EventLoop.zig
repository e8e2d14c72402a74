//! The VM's event loop: one epoll fd and one thread. Sources are registered while the VM is
//! built, into a fixed-capacity table: queue-notify ioeventfds (→ Device.queueNotify), device
//! backend fds (→ Device.backendReady) and a stop eventfd. The epoll data is the table index,
//! so dispatch is an array lookup; nothing allocates once the loop runs.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("sys.zig");
const Device = @import("../virtio/Device.zig");

const log = std.log.scoped(.vmm);

const EventLoop = @This();

/// 11 devices × 16 queues of ioeventfds + backend fds + the stop fd.
pub const sources_max = 256;
const events_per_wait = 32;

pub const Kind = enum { stop, queue_notify, backend, callback };

/// Where an event goes: a device's queueNotify (with the queue index) or backendReady (with
/// the fd), or a plain callback (used by tests).
pub const Source = struct {
    fd: sys.fd_t,
    kind: Kind,
    device: ?Device = null,
    ctx: ?*anyopaque = null,
    callback: ?*const fn (ctx: *anyopaque, arg: u32) void = null,
    /// Queue index for queue_notify, the callback's argument for callback.
    arg: u32 = 0,
};

epfd: sys.fd_t,
stop_fd: sys.fd_t,
sources: [sources_max]Source = undefined,
count: u32 = 0,
thread: ?std.Thread = null,
/// Events dispatched, for the bench and tests.
dispatched: u64 = 0,

pub const InitError = error{ SystemResources, Unexpected };

pub fn init(self: *EventLoop) InitError!void {
    const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
    switch (linux.errno(rc)) {
        .SUCCESS => {},
        .MFILE, .NFILE, .NOMEM => return error.SystemResources,
        else => return error.Unexpected,
    }
    self.* = .{ .epfd = @intCast(rc), .stop_fd = -1 };
    errdefer sys.close(self.epfd);
    self.stop_fd = try sys.eventfd(linux.EFD.NONBLOCK);
    errdefer sys.close(self.stop_fd);
    try self.add(.{ .fd = self.stop_fd, .kind = .stop });
}

/// Closes the epoll fd and the stop fd; registered fds belong to their owners.
pub fn deinit(self: *EventLoop) void {
    assert(self.thread == null); // tidy: setup before the loop runs
    sys.close(self.stop_fd);
    sys.close(self.epfd);
    self.* = undefined;
}

pub fn add(self: *EventLoop, source: Source) InitError!void {
    assert(self.thread == null); // the table is frozen once the loop runs; tidy: setup before the loop runs
    if (self.count == sources_max) return error.SystemResources;
    var ev: linux.epoll_event = .{ .events = linux.EPOLL.IN, .data = .{ .u64 = self.count } };
    const rc = linux.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, source.fd, &ev);
    switch (linux.errno(rc)) {
        .SUCCESS => {},
        .NOMEM, .NOSPC => return error.SystemResources,
        else => |e| {
            log.err("epoll_ctl add fd {d}: {t}", .{ source.fd, e });
            return error.Unexpected;
        },
    }
    self.sources[self.count] = source;
    self.count += 1;
}

/// Registers a device queue's ioeventfd.
pub fn addQueue(self: *EventLoop, fd: sys.fd_t, device: Device, queue_index: u16) InitError!void {
    try self.add(.{ .fd = fd, .kind = .queue_notify, .device = device, .arg = queue_index });
}

/// Registers one of a device's backend fds.
pub fn addBackend(self: *EventLoop, fd: sys.fd_t, device: Device) InitError!void {
    if (device.vtable.backendReady == null) return;
    try self.add(.{ .fd = fd, .kind = .backend, .device = device });
}

pub fn start(self: *EventLoop) std.Thread.SpawnError!void {
    assert(self.thread == null); // tidy: setup before the loop runs
    self.thread = try std.Thread.spawn(.{ .stack_size = 1024 * 1024 }, run, .{self});
}

/// Stops the loop thread and joins it. Safe to call when it never started.
pub fn stop(self: *EventLoop) void {
    const t = self.thread orelse return;
    sys.eventfdSignal(self.stop_fd);
    t.join();
    self.thread = null;
}

fn run(self: *EventLoop) void {
    var events: [events_per_wait]linux.epoll_event = undefined;
    while (true) {
        const rc = linux.epoll_wait(self.epfd, &events, events.len, -1);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .INTR => continue,
            else => |e| {
                log.err("epoll_wait: {t}", .{e});
                return;
            },
        }
        for (events[0..rc]) |ev| {
            const index: u32 = @intCast(ev.data.u64);
            assert(index < self.count); // tidy: index from our own table (epoll data)
            const src = self.sources[index];
            self.dispatched += 1;
            switch (src.kind) {
                .stop => return,
                .queue_notify => {
                    // Ioeventfds are ours to reset; backend fds are the device's to read.
                    _ = sys.eventfdDrain(src.fd);
                    const d = src.device.?;
                    d.vtable.queueNotify(d.ptr, @intCast(src.arg));
                },
                .backend => {
                    const d = src.device.?;
                    d.vtable.backendReady.?(d.ptr, src.fd);
                },
                .callback => {
                    _ = sys.eventfdDrain(src.fd);
                    src.callback.?(src.ctx.?, src.arg);
                },
            }
        }
    }
}

const Counter = struct {
    calls: std.atomic.Value(u32) = .init(0),
    last: std.atomic.Value(u32) = .init(0),
    fn notify(ctx: *anyopaque, arg: u32) void {
        const self: *Counter = @ptrCast(@alignCast(ctx));
        self.last.store(arg, .release);
        _ = self.calls.fetchAdd(1, .acq_rel);
    }
};

test "events reach their handler with their argument; stop joins the thread" {
    var loop: EventLoop = undefined;
    try loop.init();
    defer loop.deinit();
    var c: Counter = .{};
    const q1 = try sys.eventfd(linux.EFD.NONBLOCK);
    defer sys.close(q1);
    try loop.add(.{ .fd = q1, .kind = .callback, .ctx = &c, .callback = Counter.notify, .arg = 1 });
    try loop.start();
    sys.eventfdSignal(q1);
    const deadline = sys.nowNs() + 10 * std.time.ns_per_s;
    while (c.calls.load(.acquire) == 0 and sys.nowNs() < deadline) std.Thread.yield() catch {};
    loop.stop();
    try std.testing.expectEqual(@as(u32, 1), c.calls.load(.acquire));
    try std.testing.expectEqual(@as(u32, 1), c.last.load(.acquire));
    try std.testing.expectEqual(@as(u64, 0), sys.eventfdDrain(q1)); // drained by the loop
}
