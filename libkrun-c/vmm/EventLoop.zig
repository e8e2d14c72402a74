//! The VM's event loop: one poll fd (epoll on Linux, kqueue on macOS) and one thread. It knows
//! fds and handlers, not devices: sources are registered while the VM is built, into a
//! fixed-capacity table (the device manager adapts queue-notify ioeventfds and device backend
//! fds to handlers; consoles and the serial port register their output fds). The epoll data /
//! kevent udata is the table index, so dispatch is an array lookup; nothing allocates once the
//! loop runs.
//!
//! Events are `in`, `out`, `err`, `hup` (epoll's values, passed through on Linux; the kqueue
//! backend maps EVFILT_READ/WRITE and EV_EOF to them) and `oneshot`: report once, then stay
//! registered but disarmed until the owner asks again (EPOLLONESHOT; EV_DISPATCH on kqueue).
//!
//! Interest changes: `setEvents` (any thread; epoll_ctl and kevent are thread-safe) registers a
//! source for its events or drops it from the poll set when they are 0 — an output fd is
//! watched for `out` only while a buffer waits for it, so a reader that never reads costs
//! nothing and a closed reader (EPOLLERR, EV_EOF) cannot spin the loop. Asking again for a
//! `oneshot` interest re-arms it. A handler may be called once more after its source was
//! dropped (an event already fetched; on kqueue the read and write filters of one fd are two
//! events), so handlers tolerate spurious readiness.
//!
//! Ending: `stop` (a Notifier) runs the `on_stop` hook on the loop thread (the final, bounded
//! output flush), then joins. A wait failure (other than EINTR) runs `on_failure` (the Machine
//! ends the VM with a reason) and the thread returns. The kqueue backend compiles for
//! aarch64-macos and has never run (docs/HVF.md); the unit tests run the epoll one.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");
const signal = @import("../sys/signal.zig");
const Notifier = @import("Notifier.zig");

const is_macos = @import("builtin").os.tag == .macos;
const backend = if (is_macos) Kqueue else Epoll;

const log = std.log.scoped(.vmm);

const EventLoop = @This();

/// 11 devices × 16 queues of ioeventfds + backend and output fds + the stop notifier.
pub const sources_max = 256;
const events_per_wait = 32;

/// Readiness and interest bits: epoll's values, so Linux passes them through unchanged.
pub const in: u32 = 0x001;
pub const out: u32 = 0x004;
pub const err: u32 = 0x008;
pub const hup: u32 = 0x010;
/// Interest only: report once, then disarmed until `setEvents` asks again.
pub const oneshot: u32 = 1 << 30;

comptime {
    if (!is_macos) assert(in == linux.EPOLL.IN and out == linux.EPOLL.OUT and err == linux.EPOLL.ERR and
        hup == linux.EPOLL.HUP and oneshot == linux.EPOLL.ONESHOT);
}

/// A source's index in the table, for `setEvents`.
pub const Id = u32;

/// What an event calls: `call(ctx, arg, events)` (`in`, `out`, `err`, `hup` bits).
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
    /// The events wanted; 0: known, but not in the poll set.
    events: u32 = in,
    /// A Notifier's fd (or an ioeventfd) the loop drains before calling the handler.
    notifier: bool = false,
    /// null only for the stop notifier.
    handler: ?Handler,
    registered: bool = false,
};

/// The epoll or kqueue fd.
poll_fd: sys.fd_t,
stop_notifier: Notifier,
sources: [sources_max]Source = undefined,
count: u32 = 0,
thread: ?std.Thread = null,
on_stop: ?Hook = null,
on_failure: ?Hook = null,
/// Events dispatched, for the bench and tests.
dispatched: u64 = 0,

/// NotPollable: the poller refuses the fd (epoll: regular files, /dev/null); it never blocks.
pub const InitError = error{ SystemResources, Unexpected, NotPollable };

pub fn init(self: *EventLoop) InitError!void {
    self.* = .{ .poll_fd = try backend.create(), .stop_notifier = undefined };
    errdefer backend.close(self.poll_fd);
    self.stop_notifier = try Notifier.init();
    errdefer self.stop_notifier.deinit();
    _ = try self.add(.{ .fd = self.stop_notifier.fd, .handler = null });
}

/// Closes the poll fd and the stop notifier; registered fds belong to their owners.
pub fn deinit(self: *EventLoop) void {
    assert(self.thread == null); // tidy: setup before the loop runs
    self.stop_notifier.deinit();
    backend.close(self.poll_fd);
    self.* = undefined;
}

/// Adds a source (before `start`: the table is frozen once the loop runs).
pub fn add(self: *EventLoop, source: Source) InitError!Id {
    assert(self.thread == null); // the table is frozen once the loop runs; tidy: setup before the loop runs
    if (self.count == sources_max) return error.SystemResources;
    const id = self.count;
    self.sources[id] = source;
    self.sources[id].registered = false;
    if (source.events != 0) try backend.change(self.poll_fd, source.fd, id, 0, source.events);
    self.sources[id].registered = source.events != 0;
    self.count += 1;
    return id;
}

/// Registers a notifier (a Notifier's `fd`, or an ioeventfd on Linux) whose signal calls
/// `handler` (queue notifications, output pending).
pub fn addNotifier(self: *EventLoop, fd: sys.fd_t, handler: Handler) InitError!Id {
    return self.add(.{ .fd = fd, .notifier = true, .handler = handler });
}

/// Changes what a source is watched for; 0 drops it from the poll set; a `oneshot` interest
/// asked for again is re-armed. Callers serialise changes to one source (its owner's lock).
pub fn setEvents(self: *EventLoop, id: Id, events: u32) void {
    assert(id < self.count); // tidy: ids come from our own add()
    const s = &self.sources[id];
    if (events == s.events and s.registered == (events != 0) and events & oneshot == 0) return;
    if (events == 0 and !s.registered) return;
    // logged; the owner's state stays consistent either way
    backend.change(self.poll_fd, s.fd, id, if (s.registered) s.events else 0, events) catch {};
    s.events = events;
    s.registered = events != 0;
}

pub fn start(self: *EventLoop) std.Thread.SpawnError!void {
    assert(self.thread == null); // tidy: setup before the loop runs
    self.thread = try std.Thread.spawn(.{ .stack_size = 1024 * 1024 }, run, .{self});
}

/// Stops the loop thread (after its `on_stop` hook) and joins it. Safe when it never started.
pub fn stop(self: *EventLoop) void {
    const t = self.thread orelse return;
    self.stop_notifier.signal();
    t.join();
    self.thread = null;
}

fn run(self: *EventLoop) void {
    // This thread is the only one that writes guest output: EPIPE, not SIGPIPE.
    signal.blockSigpipe();
    if (self.loop()) {
        if (self.on_stop) |h| h.call(h.ctx);
    } else |_| {
        if (self.on_failure) |h| h.call(h.ctx);
    }
}

fn loop(self: *EventLoop) error{Failed}!void {
    var events: [events_per_wait]backend.Event = undefined;
    while (true) {
        const n = backend.wait(self.poll_fd, &events) catch |e| switch (e) {
            error.Interrupted => continue,
            error.Failed => return error.Failed,
        };
        for (events[0..n]) |ev| {
            const index = backend.index(ev);
            assert(index < self.count); // tidy: index from our own table (epoll data, kevent udata)
            const src = self.sources[index];
            self.dispatched += 1;
            const h = src.handler orelse return; // the stop notifier
            if (src.notifier) _ = Notifier.drain(src.fd);
            h.call(h.ctx, h.arg, backend.readiness(ev));
        }
    }
}

const WaitError = error{ Interrupted, Failed };

/// Linux: epoll, level-triggered; the interest bits are epoll's own.
const Epoll = struct {
    const Event = linux.epoll_event;

    fn create() InitError!sys.fd_t {
        const rc = linux.epoll_create1(linux.EPOLL.CLOEXEC);
        return switch (linux.errno(rc)) {
            .SUCCESS => @intCast(rc),
            .MFILE, .NFILE, .NOMEM => error.SystemResources,
            else => error.Unexpected,
        };
    }

    fn close(fd: sys.fd_t) void {
        sys.close(fd);
    }

    /// From `old` interest (0: not in the set) to `new` (0: out of the set).
    fn change(epfd: sys.fd_t, fd: sys.fd_t, id: Id, old: u32, new: u32) InitError!void {
        const op: u32 = if (new == 0) linux.EPOLL.CTL_DEL else if (old != 0) linux.EPOLL.CTL_MOD else linux.EPOLL.CTL_ADD;
        var ev: linux.epoll_event = .{ .events = new, .data = .{ .u64 = id } };
        const rc = linux.epoll_ctl(epfd, op, fd, &ev);
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .NOMEM, .NOSPC => return error.SystemResources,
            .PERM => return error.NotPollable,
            else => |e| {
                log.err("epoll_ctl {d} fd {d}: {t}", .{ op, fd, e });
                return error.Unexpected;
            },
        }
    }

    fn wait(epfd: sys.fd_t, events: []Event) WaitError!usize {
        const rc = linux.epoll_wait(epfd, events.ptr, @intCast(events.len), -1);
        switch (linux.errno(rc)) {
            .SUCCESS => return rc,
            .INTR => return error.Interrupted,
            else => |e| {
                log.warn("epoll_wait: {t}; the event loop ends and the VM with it", .{e});
                return error.Failed;
            },
        }
    }

    fn index(ev: Event) u64 {
        return ev.data.u64;
    }

    fn readiness(ev: Event) u32 {
        return ev.events;
    }
};

/// macOS: kqueue through libSystem. An fd's `in` and `out` are two filters (EVFILT_READ,
/// EVFILT_WRITE), added and deleted separately; `oneshot` is EV_DISPATCH (disabled after one
/// event, still registered; EV_ADD enables it again), the nearest to EPOLLONESHOT. Level-
/// triggered like the epoll backend (no EV_CLEAR). Compiled for aarch64-macos, never run.
const Kqueue = struct {
    const c = std.c;
    const Event = c.Kevent;

    fn create() InitError!sys.fd_t {
        const fd = c.kqueue();
        if (fd < 0) return switch (c.errno(fd)) {
            .MFILE, .NFILE, .NOMEM => error.SystemResources,
            else => error.Unexpected,
        };
        // A kqueue is not inherited by fork's child anyway; CLOEXEC keeps the fd out of an exec.
        _ = c.fcntl(fd, c.F.SETFD, @as(c_int, c.FD_CLOEXEC));
        return fd;
    }

    fn close(fd: sys.fd_t) void {
        _ = c.close(fd);
    }

    fn change(kq: sys.fd_t, fd: sys.fd_t, id: Id, old: u32, new: u32) InitError!void {
        var changes: [4]Event = undefined;
        var n: usize = 0;
        const dispatch: u16 = if (new & oneshot != 0) c.EV.DISPATCH else 0;
        const filters = [2]struct { u32, i16 }{ .{ in, c.EVFILT.READ }, .{ out, c.EVFILT.WRITE } };
        for (filters) |f| {
            const bit, const filter = f;
            const had = old & bit != 0;
            // EV_ADD on a registered filter updates it, but whether it also clears an
            // EV_DISPATCH set before is not documented: a oneshot change re-adds it from scratch.
            if (had and (new & bit == 0 or (old ^ new) & oneshot != 0)) {
                changes[n] = kevent(fd, filter, c.EV.DELETE, id);
                n += 1;
            }
            if (new & bit != 0) {
                changes[n] = kevent(fd, filter, c.EV.ADD | dispatch, id);
                n += 1;
            }
        }
        if (n == 0) return;
        // No event list: an error in a change fails the call with its errno.
        const rc = c.kevent(kq, &changes, @intCast(n), &changes, 0, null);
        if (rc >= 0) return;
        switch (c.errno(rc)) {
            .NOMEM => return error.SystemResources,
            else => |e| {
                log.err("kevent change fd {d} {x} -> {x}: {t}", .{ fd, old, new, e });
                return error.Unexpected;
            },
        }
    }

    fn kevent(fd: sys.fd_t, filter: i16, flags: u16, id: Id) Event {
        return .{ .ident = @intCast(fd), .filter = filter, .flags = flags, .fflags = 0, .data = 0, .udata = id };
    }

    fn wait(kq: sys.fd_t, events: []Event) WaitError!usize {
        const rc = c.kevent(kq, events.ptr, 0, events.ptr, @intCast(events.len), null);
        if (rc >= 0) return @intCast(rc);
        switch (c.errno(rc)) {
            .INTR => return error.Interrupted,
            else => |e| {
                log.warn("kevent: {t}; the event loop ends and the VM with it", .{e});
                return error.Failed;
            },
        }
    }

    fn index(ev: Event) u64 {
        return ev.udata;
    }

    /// EVFILT_READ → `in` (+ `hup` at EOF), EVFILT_WRITE → `out` (+ `err` once the reader left,
    /// as epoll reports EPOLLERR on a pipe's write end); EV_ERROR → `err`.
    fn readiness(ev: Event) u32 {
        if (ev.flags & c.EV.ERROR != 0) return err;
        const eof = ev.flags & c.EV.EOF != 0;
        return switch (ev.filter) {
            c.EVFILT.READ => in | @as(u32, if (eof) hup else 0),
            c.EVFILT.WRITE => out | @as(u32, if (eof) err else 0),
            else => 0,
        };
    }
};

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
    var q1 = try Notifier.init();
    defer q1.deinit();
    _ = try loop_.addNotifier(q1.fd, .{ .ctx = &c, .call = Counter.notify, .arg = 1 });
    try loop_.start();
    q1.signal();
    c.waitCalls(1);
    loop_.stop();
    try std.testing.expectEqual(@as(u32, 1), c.calls.load(.acquire));
    try std.testing.expectEqual(@as(u32, 1), c.last.load(.acquire));
    try std.testing.expectEqual(@as(u32, 1), stopped.calls.load(.acquire));
    try std.testing.expectEqual(@as(u64, 0), Notifier.drain(q1.fd)); // drained by the loop
}

test "interest changes: `out` only while asked for; a oneshot is re-armed by asking again; a dropped source stays quiet" {
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
    loop_.setEvents(id, out | oneshot);
    c.waitCalls(1);
    try std.testing.expectEqual(@as(u32, 7), c.last.load(.acquire));
    try std.testing.expect(c.events.load(.acquire) & out != 0);
    // Disarmed after one event, though the pipe stays writable; the same request re-arms it.
    _ = linux.nanosleep(&.{ .sec = 0, .nsec = 20_000_000 }, null);
    try std.testing.expectEqual(@as(u32, 1), c.calls.load(.acquire));
    loop_.setEvents(id, out | oneshot);
    c.waitCalls(2);
    try std.testing.expectEqual(@as(u32, 2), c.calls.load(.acquire));
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
    const saved = loop_.poll_fd;
    const dup = linux.fcntl(saved, linux.F.DUPFD_CLOEXEC, 0);
    try std.testing.expectEqual(linux.E.SUCCESS, linux.errno(dup));
    _ = linux.close(saved);
    loop_.poll_fd = -1;
    try loop_.start();
    failed.waitCalls(1);
    try std.testing.expectEqual(@as(u32, 1), failed.calls.load(.acquire));
    loop_.stop();
    loop_.poll_fd = @intCast(dup);
}
