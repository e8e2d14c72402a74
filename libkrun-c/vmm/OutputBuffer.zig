//! Guest output on its way to a host fd that may not take it: a `Sink` (our own non-blocking
//! handle on the embedder's fd) and a bounded ring (`Ring`) a device fills and the event loop
//! drains. Nothing here ever waits for the reader: a write that would block reports `.blocked`,
//! the owner then stops taking guest output (the guest's queue stalls) and asks the event loop
//! for EPOLLOUT. The embedder's fd flags are never changed:
//! - sockets: `send(MSG_DONTWAIT | MSG_NOSIGNAL)` on a dup;
//! - pipes, FIFOs, terminals, character devices: a new open file description of the same
//!   object (`/proc/self/fd/N` reopened with O_NONBLOCK, O_NOCTTY); where /proc is not there
//!   (a chroot), a dup written only when poll(2) says writable, at most `guarded_chunk` bytes
//!   at a time (a pipe with room takes that without blocking);
//! - regular files and block devices: a dup; their writes do not wait for a reader.
//! On macOS (the HVF backend) the same through libc; there is no /proc to reopen from, so a
//! blocking pipe or terminal is always `guarded`, and a socket's SIGPIPE is the writing
//! thread's to block (send has no MSG_NOSIGNAL there).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");
const fd_calls = @import("../sys/fd.zig");

const is_macos = @import("builtin").os.tag == .macos;

const log = std.log.scoped(.vmm);

/// Largest write through a shared (not non-blocking) description: ≤ PIPE_BUF, so a pipe that
/// polls writable has room for all of it.
pub const guarded_chunk = 512;

pub const Sink = struct {
    fd: i32 = -1,
    mode: Mode = .discard,

    pub const Mode = enum {
        /// No output fd, or a dead one: bytes are dropped.
        discard,
        /// Our own O_NONBLOCK description (reopened), or the embedder's was non-blocking already.
        nonblocking,
        /// A socket: send(MSG_DONTWAIT).
        socket,
        /// A regular file or block device: plain writes, never watched.
        file,
        /// The embedder's blocking description: poll first, write `guarded_chunk` at most.
        guarded,
    };

    pub const Result = union(enum) { written: usize, blocked, dead };

    /// Our handle on `fd` (borrowed; the caller keeps it). -1 gives a discarding sink.
    pub fn open(fd: i32) error{SystemResources}!Sink {
        if (fd < 0) return .{};
        if (comptime is_macos) return openMac(fd);
        var st: linux.Statx = undefined;
        const at_empty_path = 0x1000;
        if (linux.errno(linux.statx(fd, "", at_empty_path, .{ .TYPE = true }, &st)) != .SUCCESS)
            return error.SystemResources;
        const mode: u32 = st.mode;
        if (linux.S.ISSOCK(mode)) return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .socket };
        if (linux.S.ISREG(mode) or linux.S.ISBLK(mode)) return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .file };
        const flags = linux.fcntl(fd, linux.F.GETFL, 0);
        if (linux.errno(flags) == .SUCCESS and flags & @as(u32, @bitCast(linux.O{ .NONBLOCK = true })) != 0)
            return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .nonblocking };
        if (reopen(fd)) |own| return .{ .fd = own, .mode = .nonblocking };
        return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .guarded };
    }

    fn openMac(fd: i32) error{SystemResources}!Sink {
        var st: std.c.Stat = undefined;
        if (std.c.fstat(fd, &st) != 0) return error.SystemResources;
        const fmt: u32 = @as(u32, st.mode) & 0o170000;
        if (fmt == 0o140000) return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .socket };
        if (fmt == 0o100000 or fmt == 0o060000) return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .file };
        const flags = std.c.fcntl(fd, std.c.F.GETFL);
        if (flags >= 0 and @as(u32, @bitCast(flags)) & @as(u32, @bitCast(std.c.O{ .NONBLOCK = true })) != 0)
            return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .nonblocking };
        return .{ .fd = try fd_calls.dupCloexec(fd), .mode = .guarded };
    }

    pub fn close(self: *Sink) void {
        if (self.fd >= 0) fd_calls.close(self.fd);
        self.* = .{};
    }

    /// Whether EPOLLOUT on `fd` tells when a `.blocked` write can go on.
    pub fn pollable(self: *const Sink) bool {
        return switch (self.mode) {
            .nonblocking, .socket, .guarded => true,
            .discard, .file => false,
        };
    }

    /// One write attempt that never waits. An error other than EAGAIN/EINTR kills the sink
    /// (it discards from then on) and is logged once.
    pub fn write(self: *Sink, bytes: []const u8) Result {
        if (bytes.len == 0) return .{ .written = 0 };
        if (comptime is_macos) return self.writeMac(bytes);
        while (true) {
            const rc = switch (self.mode) {
                .discard => return .{ .written = bytes.len },
                .socket => linux.sendto(self.fd, bytes.ptr, bytes.len, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL, null, 0),
                .nonblocking, .file => linux.write(self.fd, bytes.ptr, bytes.len),
                .guarded => blk: {
                    if (!writable(self.fd)) return .blocked;
                    break :blk linux.write(self.fd, bytes.ptr, @min(bytes.len, guarded_chunk));
                },
            };
            switch (linux.errno(rc)) {
                .SUCCESS => return .{ .written = rc },
                .INTR => continue,
                .AGAIN => return .blocked,
                else => |e| {
                    log.warn("guest output: {t}; discarding further output", .{e});
                    self.close();
                    return .dead;
                },
            }
        }
    }

    fn writeMac(self: *Sink, bytes: []const u8) Result {
        while (true) {
            const rc = switch (self.mode) {
                .discard => return .{ .written = bytes.len },
                .socket => std.c.send(self.fd, bytes.ptr, bytes.len, std.c.MSG.DONTWAIT),
                .nonblocking, .file => std.c.write(self.fd, bytes.ptr, bytes.len),
                .guarded => blk: {
                    if (!writable(self.fd)) return .blocked;
                    break :blk std.c.write(self.fd, bytes.ptr, @min(bytes.len, guarded_chunk));
                },
            };
            if (rc >= 0) return .{ .written = @intCast(rc) };
            switch (std.c.errno(rc)) {
                .INTR => continue,
                .AGAIN => return .blocked,
                else => |e| {
                    log.warn("guest output: {t}; discarding further output", .{e});
                    self.close();
                    return .dead;
                },
            }
        }
    }
};

/// A new open file description of what `fd` refers to, non-blocking: its flags are ours alone.
fn reopen(fd: i32) ?i32 {
    var path_buf: [32]u8 = undefined;
    const path = std.fmt.bufPrint(&path_buf, "/proc/self/fd/{d}\x00", .{fd}) catch return null;
    const rc = linux.open(@ptrCast(path.ptr), .{ .ACCMODE = .WRONLY, .NONBLOCK = true, .NOCTTY = true, .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    return @intCast(rc);
}

fn writable(fd: i32) bool {
    if (comptime is_macos) {
        var mfd = [1]std.c.pollfd{.{ .fd = fd, .events = std.c.POLL.OUT, .revents = 0 }};
        return std.c.poll(&mfd, 1, 0) == 1;
    }
    var pfd = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.OUT, .revents = 0 }};
    const rc = linux.poll(&pfd, 1, 0);
    // ERR/HUP count as writable: the write then reports the error.
    return linux.errno(rc) == .SUCCESS and rc == 1;
}

/// Waits up to `timeout_ms` for `fd` to take output (used only for the bounded final flush).
pub fn waitWritable(fd: i32, timeout_ms: i32) void {
    if (comptime is_macos) {
        var mfd = [1]std.c.pollfd{.{ .fd = fd, .events = std.c.POLL.OUT, .revents = 0 }};
        _ = std.c.poll(&mfd, 1, timeout_ms);
        return;
    }
    var pfd = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.OUT, .revents = 0 }};
    _ = linux.poll(&pfd, 1, timeout_ms);
}

/// How long the final flush (the VM has ended) may wait for slow readers: it gives up at once
/// when `stop` is set (krun_stop), and after `idle_ms` without a byte taken.
pub const Budget = struct {
    stop: *const std.atomic.Value(bool),
    idle_ms: u32,
    progress: u64 = 0,
    idle_since_ns: i128 = 0,

    /// Waits a little for `fd` to take output; false when the flush should give up.
    /// `progress` is any counter that moves when output moves (a ring's head).
    pub fn wait(self: *Budget, fd: i32, progress: u64) bool {
        if (fd < 0 or self.stop.load(.acquire)) return false;
        const now = monotonicNs();
        if (progress != self.progress or self.idle_since_ns == 0) {
            self.progress = progress;
            self.idle_since_ns = now;
        }
        if (now - self.idle_since_ns >= @as(i128, self.idle_ms) * std.time.ns_per_ms) return false;
        waitWritable(fd, 20);
        return true;
    }
};

/// CLOCK_MONOTONIC: the raw Linux call (sys.nowNs) on Linux, libc's clock_gettime on macOS.
fn monotonicNs() i128 {
    if (comptime !is_macos) return sys.nowNs();
    var ts: std.c.timespec = undefined;
    if (std.c.clock_gettime(.MONOTONIC, &ts) != 0) return 0; // cannot fail for MONOTONIC
    return @as(i128, ts.sec) * std.time.ns_per_s + ts.nsec;
}

pub const Flush = enum {
    /// Everything buffered was written.
    drained,
    /// The sink would block: wait for EPOLLOUT.
    blocked,
    /// The sink died; the buffer was emptied.
    dead,
};

/// A bounded byte ring with one producer (serialised by its owner's lock) and one consumer
/// (the event loop). Positions are running totals; `head` is written by the consumer only,
/// `tail` by the producer only, so the consumer writes out of the ring without a lock.
pub fn Ring(comptime capacity: usize) type {
    comptime assert(std.math.isPowerOfTwo(capacity));
    return struct {
        const Self = @This();
        pub const size = capacity;

        bytes: [capacity]u8 = undefined,
        head: std.atomic.Value(usize) = .init(0),
        tail: std.atomic.Value(usize) = .init(0),

        pub fn len(self: *const Self) usize {
            return self.tail.load(.acquire) -% self.head.load(.acquire);
        }

        pub fn free(self: *const Self) usize {
            return capacity - self.len();
        }

        /// Producer: copies as much of `data` as fits; returns how much.
        pub fn push(self: *Self, data: []const u8) usize {
            const tail = self.tail.load(.monotonic);
            const room = capacity - (tail -% self.head.load(.acquire));
            const n = @min(room, data.len);
            const at = tail % capacity;
            const first = @min(n, capacity - at);
            @memcpy(self.bytes[at..][0..first], data[0..first]);
            @memcpy(self.bytes[0 .. n - first], data[first..n]);
            self.tail.store(tail +% n, .release);
            return n;
        }

        /// Consumer: writes out what is buffered until it is empty or the sink would block.
        pub fn flush(self: *Self, sink: *Sink) Flush {
            while (true) {
                const head = self.head.load(.monotonic);
                const tail = self.tail.load(.acquire);
                if (head == tail) return .drained;
                const at = head % capacity;
                const n = @min(tail -% head, capacity - at);
                switch (sink.write(self.bytes[at..][0..n])) {
                    .written => |w| self.head.store(head +% w, .release),
                    .blocked => return .blocked,
                    .dead => {
                        self.head.store(tail, .release);
                        return .dead;
                    },
                }
            }
        }

        /// Drops everything buffered (device reset). Consumer side, or with the consumer stopped.
        pub fn discard(self: *Self) void {
            self.head.store(self.tail.load(.acquire), .release);
        }
    };
}

// ---- tests over plain buffers and real pipes -------------------------------------------------

const testing = std.testing;

fn testPipe(flags: linux.O) ![2]i32 {
    var fds: [2]i32 = undefined;
    try testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, flags));
    return fds;
}

fn drainPipe(fd: i32, buf: []u8) usize {
    var total: usize = 0;
    while (true) {
        const rc = linux.read(fd, buf.ptr, buf.len);
        if (linux.errno(rc) != .SUCCESS or rc == 0) return total;
        total += rc;
    }
}

test "ring: push is bounded, wraps, and keeps byte order" {
    var r: Ring(8) = .{};
    try testing.expectEqual(@as(usize, 5), r.push("hello"));
    try testing.expectEqual(@as(usize, 3), r.push("world")); // only 3 fit
    try testing.expectEqual(@as(usize, 0), r.free());
    var sink: Sink = .{}; // discard: consumes everything
    try testing.expectEqual(Flush.drained, r.flush(&sink));
    try testing.expectEqual(@as(usize, 6), r.push("abcdef")); // wraps around the end
    const fds = try testPipe(.{ .NONBLOCK = true, .CLOEXEC = true });
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var out = try Sink.open(fds[1]);
    defer out.close();
    try testing.expectEqual(Flush.drained, r.flush(&out));
    var got: [16]u8 = undefined;
    try testing.expectEqualStrings("abcdef", got[0..drainPipe(fds[0], &got)]);
}

test "sink: a full pipe blocks instead of waiting; draining resumes; the caller's flags stay" {
    // A blocking pipe, as an embedder's stdout would be: we must not make it non-blocking.
    const fds = try testPipe(.{ .CLOEXEC = true });
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    _ = linux.fcntl(fds[0], linux.F.SETFL, @as(u32, @bitCast(linux.O{ .NONBLOCK = true }))); // our reader side only
    const flags_before = linux.fcntl(fds[1], linux.F.GETFL, 0);
    var sink = try Sink.open(fds[1]);
    defer sink.close();
    try testing.expect(sink.mode == .nonblocking or sink.mode == .guarded);
    try testing.expect(sink.pollable());
    try testing.expectEqual(flags_before, linux.fcntl(fds[1], linux.F.GETFL, 0));

    var r: Ring(64 * 1024) = .{};
    const chunk: [4096]u8 = @splat('x');
    var pushed: usize = 0;
    var blocked = false;
    // Fill the pipe (64 KiB by default) and the ring: the flush reports .blocked, never hangs.
    for (0..64) |_| {
        pushed += r.push(&chunk);
        if (r.flush(&sink) == .blocked) blocked = true;
        if (r.free() == 0) break;
    }
    try testing.expect(blocked);
    try testing.expectEqual(@as(usize, 0), r.free());
    try testing.expectEqual(@as(usize, 0), r.push("more")); // full: the producer must stall
    try testing.expectEqual(Flush.blocked, r.flush(&sink));

    // The reader drains: the ring empties into the pipe again.
    var sink_buf: [64 * 1024]u8 = undefined;
    var read_total = drainPipe(fds[0], &sink_buf);
    while (r.len() > 0) {
        _ = r.flush(&sink);
        read_total += drainPipe(fds[0], &sink_buf);
    }
    read_total += drainPipe(fds[0], &sink_buf);
    try testing.expectEqual(pushed, read_total);
}

test "ring: discard drops pending output (reset)" {
    const fds = try testPipe(.{ .NONBLOCK = true, .CLOEXEC = true });
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var sink = try Sink.open(fds[1]);
    defer sink.close();
    var r: Ring(16) = .{};
    _ = r.push("pending");
    r.discard();
    try testing.expectEqual(@as(usize, 0), r.len());
    try testing.expectEqual(Flush.drained, r.flush(&sink));
    var got: [16]u8 = undefined;
    try testing.expectEqual(@as(usize, 0), drainPipe(fds[0], &got));
}

test "sink: a pipe without reader is dead, not a signal; sockets and files" {
    const fds = try testPipe(.{ .CLOEXEC = true });
    defer _ = linux.close(fds[1]);
    var sink = try Sink.open(fds[1]);
    defer sink.close();
    _ = linux.close(fds[0]);
    // SIGPIPE is blocked on the event-loop thread by its owner; here, for the test thread.
    var set = linux.sigemptyset();
    linux.sigaddset(&set, linux.SIG.PIPE);
    var old: linux.sigset_t = undefined;
    _ = linux.sigprocmask(linux.SIG.BLOCK, &set, &old);
    defer _ = linux.sigprocmask(linux.SIG.SETMASK, &old, null);
    try testing.expect(sink.write("x") == .dead);
    try testing.expect(sink.mode == .discard);
    try testing.expect(sink.write("y") == .written);

    var sv: [2]i32 = undefined;
    try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0, &sv));
    defer _ = linux.close(sv[0]);
    defer _ = linux.close(sv[1]);
    var s = try Sink.open(sv[0]);
    defer s.close();
    try testing.expectEqual(Sink.Mode.socket, s.mode);
    const big: [4096]u8 = @splat('s');
    var blocked = false;
    for (0..1024) |_| switch (s.write(&big)) {
        .blocked => {
            blocked = true;
            break;
        },
        else => {},
    };
    try testing.expect(blocked); // a full socket buffer: MSG_DONTWAIT, the socket stays blocking
    try testing.expectEqual(@as(usize, 0), linux.fcntl(sv[0], linux.F.GETFL, 0) & @as(u32, @bitCast(linux.O{ .NONBLOCK = true })));

    const mfd = linux.memfd_create("zkrun-sink-test", linux.MFD.CLOEXEC);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(mfd));
    defer _ = linux.close(@intCast(mfd));
    var f = try Sink.open(@intCast(mfd));
    defer f.close();
    try testing.expectEqual(Sink.Mode.file, f.mode); // a regular file: plain writes, never watched
    try testing.expect(!f.pollable());
    try testing.expect(f.write("file") == .written);
}
