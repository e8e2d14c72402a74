//! The VM's event loop: one epoll fd and one thread. It knows fds and handlers, not devices:
//! sources are registered while the VM is built, into a fixed-capacity table (the device
//! manager adapts queue-notify ioeventfds and device backend fds to handlers; consoles and the
//! serial port register their output fds). The epoll data is the table index, so dispatch is
//! an array lookup; nothing allocates once the loop runs.
//!
//! Interest changes: `setEvents` (any thread; epoll_ctl is thread-safe) registers a source for
//! its events or drops it from the epoll set when they are 0 — an output fd is watched for
//! EPOLLOUT only while a buffer waits for it, so a reader that never reads costs nothing and a
//! closed reader (EPOLLERR) cannot spin the loop. A handler may be called once more after its
//! source was dropped (an event already fetched), so handlers tolerate spurious readiness.
//!
//! Ending: `stop` runs the `on_stop` hook on the loop thread (the final, bounded output flush),
//! then joins. An epoll_wait failure (other than EINTR) runs `on_failure` (the Machine ends the
//! VM with a reason) and the thread returns.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("sys.zig");

const log = std.log.scoped(.vmm);

const EventLoop = @This();

/// 11 devices × 16 queues of ioeventfds + backend and output fds + the stop fd.
pub const sources_max = 256;
const events_per_wait = 32;

/// A source's index in the table, for `setEvents`.
pub const Id = u32;

/// What an event calls: `call(ctx, arg, epoll events)`.
pub const Handler = struct {
    ctx: *anyopaque,
    call: *const fn (ctx: *anyopaque, arg: u32, events: u32) void,
    arg: u32 = 0,
};

/// A callback without arguments (the stop and failure hooks).
pub const Hook = struct {
    ctx: *anyopaque,
    call: *const fn (ctx: *anyopaque) void,
};

pub const Source = struct {
    fd: sys.fd_t,
    /// The epoll events wanted; 0: known, but not in the epoll set.
    events: u32 = linux.EPOLL.IN,
    /// An eventfd (ioeventfd, notifier) the loop resets before calling the handler.
    eventfd: bool = false,
    /// null only for the stop fd.
    handler: ?Handler,
    registered: bool = false,
};

epfd: sys.fd_t,
stop_fd: sys.fd_t,
sources: [sources_max]Source = undefined,
count: u32 = 0,
thread: ?std.Thread = null,
on_stop: ?Hook = null,
on_failure: ?Hook = null,
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
    _ = try self.add(.{ .fd = self.stop_fd, .handler = null });
}

/// Closes the epoll fd and the stop fd; registered fds belong to their owners.
pub fn deinit(self: *EventLoop) void {
    assert(self.thread == null); // tidy: setup before the loop runs
    sys.close(self.stop_fd);
    sys.close(self.epfd);
    self.* = undefined;
}

/// Adds a source (before `start`: the table is frozen once the loop runs).
pub fn add(self: *EventLoop, source: Source) InitError!Id {
    assert(self.thread == null); // the table is frozen once the loop runs; tidy: setup before the loop runs
    if (self.count == sources_max) return error.SystemResources;
    const id = self.count;
    self.sources[id] = source;
    self.sources[id].registered = false;
    if (source.events != 0) try self.ctl(id, linux.EPOLL.CTL_ADD, source.events);
    self.sources[id].registered = source.events != 0;
    self.count += 1;
    return id;
}

/// Registers an eventfd whose signal calls `handler` (queue notifications).
pub fn addEventfd(self: *EventLoop, fd: sys.fd_t, handler: Handler) InitError!Id {
    return self.add(.{ .fd = fd, .eventfd = true, .handler = handler });
}

/// Changes what a source is watched for; 0 drops it from the epoll set. Callers serialise
/// changes to one source (its owner's lock).
pub fn setEvents(self: *EventLoop, id: Id, events: u32) void {
    assert(id < self.count); // tidy: ids come from our own add()
    const s = &self.sources[id];
    if (events == s.events and s.registered == (events != 0)) return;
    const op: u32 = if (events == 0) linux.EPOLL.CTL_DEL else if (s.registered) linux.EPOLL.CTL_MOD else linux.EPOLL.CTL_ADD;
    if (events == 0 and !s.registered) return;
    self.ctl(id, op, events) catch {}; // logged; the owner's state stays consistent either way
    s.events = events;
    s.registered = events != 0;
}

fn ctl(self: *EventLoop, id: Id, op: u32, events: u32) InitError!void {
    var ev: linux.epoll_event = .{ .events = events, .data = .{ .u64 = id } };
    const rc = linux.epoll_ctl(self.epfd, op, self.sources[id].fd, &ev);
    switch (linux.errno(rc)) {
        .SUCCESS => {},
        .NOMEM, .NOSPC => return error.SystemResources,
        else => |e| {
            log.err("epoll_ctl {d} fd {d}: {t}", .{ op, self.sources[id].fd, e });
            return error.Unexpected;
        },
    }
}

pub fn start(self: *EventLoop) std.Thread.SpawnError!void {
    assert(self.thread == null); // tidy: setup before the loop runs
    self.thread = try std.Thread.spawn(.{ .stack_size = 1024 * 1024 }, run, .{self});
}

/// Stops the loop thread (after its `on_stop` hook) and joins it. Safe when it never started.
pub fn stop(self: *EventLoop) void {
    const t = self.thread orelse return;
    sys.eventfdSignal(self.stop_fd);
    t.join();
    self.thread = null;
}

fn run(self: *EventLoop) void {
    // Output to a pipe whose reader left raises SIGPIPE, which would kill the host process:
    // this thread, the only one that writes guest output, gets EPIPE instead.
    var set = linux.sigemptyset();
    linux.sigaddset(&set, linux.SIG.PIPE);
    _ = linux.sigprocmask(linux.SIG.BLOCK, &set, null);
    if (self.loop()) {
        if (self.on_stop) |h| h.call(h.ctx);
    } else |_| {
        if (self.on_failure) |h| h.call(h.ctx);
    }
}

fn loop(self: *EventLoop) error{Failed}!void {
    var events: [events_per_wait]linux.epoll_event = undefined;
    while (true) {
        const rc = linux.epoll_wait(self.epfd, &events, events.len, -1);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .INTR => continue,
            else => |e| {
                log.warn("epoll_wait: {t}; the event loop ends and the VM with it", .{e});
                return error.Failed;
            },
        }
        for (events[0..rc]) |ev| {
            const index: u32 = @intCast(ev.data.u64);
            assert(index < self.count); // tidy: index from our own table (epoll data)
            const src = self.sources[index];
            self.dispatched += 1;
            const h = src.handler orelse return; // the stop fd
            if (src.eventfd) _ = sys.eventfdDrain(src.fd);
            h.call(h.ctx, h.arg, ev.events);
        }
    }
}

const Counter = struct {
    calls: std.atomic.Value(u32) = .init(0),
    last: std.atomic.Value(u32) = .init(0),
    events: std.atomic.Value(u32) = .init(0),
    fn notify(ctx: *anyopaque, arg: u32, events: u32) void {
        const self: *Counter = @ptrCast(@alignCast(ctx));
        self.last.store(arg, .release);
        self.events.store(events, .release);
        _ = self.calls.fetchAdd(1, .acq_rel);
    }
    fn hook(ctx: *anyopaque) void {
        notify(ctx, 0, 0);
    }
    fn waitCalls(self: *Counter, n: u32) void {
        const deadline = sys.nowNs() + 10 * std.time.ns_per_s;
        while (self.calls.load(.acquire) < n and sys.nowNs() < deadline) std.Thread.yield() catch {};
    }
};

test "events reach their handler with their argument; stop runs on_stop and joins" {
    var loop_: EventLoop = undefined;
    try loop_.init();
    defer loop_.deinit();
    var c: Counter = .{};
    var stopped: Counter = .{};
    loop_.on_stop = .{ .ctx = &stopped, .call = Counter.hook };
    const q1 = try sys.eventfd(linux.EFD.NONBLOCK);
    defer sys.close(q1);
    _ = try loop_.addEventfd(q1, .{ .ctx = &c, .call = Counter.notify, .arg = 1 });
    try loop_.start();
    sys.eventfdSignal(q1);
    c.waitCalls(1);
    loop_.stop();
    try std.testing.expectEqual(@as(u32, 1), c.calls.load(.acquire));
    try std.testing.expectEqual(@as(u32, 1), c.last.load(.acquire));
    try std.testing.expectEqual(@as(u32, 1), stopped.calls.load(.acquire));
    try std.testing.expectEqual(@as(u64, 0), sys.eventfdDrain(q1)); // drained by the loop
}

test "interest changes: EPOLLOUT only while asked for; a dropped source stays quiet" {
    var loop_: EventLoop = undefined;
    try loop_.init();
    defer loop_.deinit();
    var fds: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, .{ .NONBLOCK = true, .CLOEXEC = true }));
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var c: Counter = .{};
    const id = try loop_.add(.{ .fd = fds[1], .events = 0, .handler = .{ .ctx = &c, .call = Counter.notify, .arg = 7 } });
    try loop_.start();
    defer loop_.stop();
    // Not registered: an (always writable) empty pipe calls nobody.
    _ = linux.nanosleep(&.{ .sec = 0, .nsec = 20_000_000 }, null);
    try std.testing.expectEqual(@as(u32, 0), c.calls.load(.acquire));
    loop_.setEvents(id, linux.EPOLL.OUT | linux.EPOLL.ONESHOT);
    c.waitCalls(1);
    try std.testing.expectEqual(@as(u32, 7), c.last.load(.acquire));
    try std.testing.expect(c.events.load(.acquire) & linux.EPOLL.OUT != 0);
    loop_.setEvents(id, 0);
    _ = linux.close(fds[0]); // the reader leaves: EPOLLERR would fire if it were still registered
    fds[0] = -1;
    const calls = c.calls.load(.acquire);
    _ = linux.nanosleep(&.{ .sec = 0, .nsec = 20_000_000 }, null);
    try std.testing.expectEqual(calls, c.calls.load(.acquire));
}

test "an epoll_wait failure runs on_failure and ends the thread" {
    var loop_: EventLoop = undefined;
    try loop_.init();
    defer loop_.deinit();
    var failed: Counter = .{};
    loop_.on_failure = .{ .ctx = &failed, .call = Counter.hook };
    // Break the epoll fd under the loop: epoll_wait then fails with EBADF or EINVAL.
    const saved = loop_.epfd;
    const dup = linux.fcntl(saved, linux.F.DUPFD_CLOEXEC, 0);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.errno(dup));
    _ = linux.close(saved);
    loop_.epfd = -1;
    try loop_.start();
    failed.waitCalls(1);
    try std.testing.expectEqual(@as(u32, 1), failed.calls.load(.acquire));
    loop_.stop();
    loop_.epfd = @intCast(dup);
}
