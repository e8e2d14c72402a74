//! A wake-up for the event loop from another thread (a vCPU's serial output, the loop's own
//! stop): an eventfd on Linux, a non-blocking pipe on macOS, which has no eventfd. `signal`
//! never blocks and signals before a `drain` coalesce (a full eventfd counter or pipe already
//! means "signalled"); a signal after the drain's read wakes the loop again. The loop drains a
//! notifier source before calling its handler (EventLoop.addNotifier); KVM's ioeventfds are
//! eventfds, so on Linux the loop drains them the same way.
const std = @import("std");
const sys = @import("../sys/linux.zig");

const is_macos = @import("builtin").os.tag == .macos;

const Notifier = @This();

/// What the event loop watches: the eventfd, or the pipe's read end.
fd: i32,
/// What `signal` writes: the same eventfd, or the pipe's write end.
write_fd: i32,

/// No notifier (yet): `deinit` is a no-op on it.
pub const none: Notifier = .{ .fd = -1, .write_fd = -1 };

pub const InitError = error{ SystemResources, Unexpected };

pub fn init() InitError!Notifier {
    if (comptime !is_macos) {
        const fd = sys.eventfd(std.os.linux.EFD.NONBLOCK) catch |err| return switch (err) {
            error.MFILE, error.NFILE, error.NODEV, error.NOMEM => error.SystemResources,
            else => {
                std.log.scoped(.vmm).err("eventfd: unexpected errno {t}", .{err});
                return error.Unexpected;
            },
        };
        return .{ .fd = fd, .write_fd = fd };
    }
    var fds: [2]std.c.fd_t = undefined;
    if (std.c.pipe(&fds) != 0) return switch (std.c.errno(-1)) {
        .MFILE, .NFILE, .NOMEM => error.SystemResources,
        else => error.Unexpected,
    };
    // macOS has no pipe2: the flags follow (an embedder's fork+exec in between could leak the
    // two fds into its child, nothing more).
    for (fds) |fd| {
        _ = std.c.fcntl(fd, std.c.F.SETFD, @as(c_int, std.c.FD_CLOEXEC));
        const fl = std.c.fcntl(fd, std.c.F.GETFL);
        _ = std.c.fcntl(fd, std.c.F.SETFL, fl | @as(c_int, @bitCast(std.c.O{ .NONBLOCK = true })));
    }
    return .{ .fd = fds[0], .write_fd = fds[1] };
}

pub fn deinit(self: *Notifier) void {
    if (self.fd < 0) return;
    if (comptime is_macos) {
        _ = std.c.close(self.fd);
        _ = std.c.close(self.write_fd);
    } else sys.close(self.fd);
    self.* = undefined;
}

/// Wakes the watcher; any thread, never blocks.
pub fn signal(self: Notifier) void {
    if (comptime !is_macos) return sys.eventfdSignal(self.write_fd);
    while (true) {
        if (std.c.write(self.write_fd, "x", 1) >= 0) return;
        switch (std.c.errno(-1)) {
            .INTR => continue,
            .AGAIN => return, // a full pipe: a wake-up is pending already
            else => |e| return std.log.scoped(.vmm).err("notifier write: {t}", .{e}),
        }
    }
}

/// Resets `fd` (a notifier's `fd`, or an ioeventfd on Linux): the signals since the last
/// drain (the eventfd's count; on macOS the bytes read, up to the pipe's size); 0 when none.
pub fn drain(fd: i32) u64 {
    if (comptime !is_macos) return sys.eventfdDrain(fd);
    var total: u64 = 0;
    var buf: [256]u8 = undefined;
    while (true) {
        const rc = std.c.read(fd, &buf, buf.len);
        if (rc > 0) {
            total += @intCast(rc);
            continue;
        }
        if (rc < 0 and std.c.errno(rc) == .INTR) continue;
        return total; // EAGAIN: empty (0, end of file, cannot happen: we hold the write end)
    }
}

test "signals coalesce until a drain, and a signal after the drain is seen" {
    var n = try Notifier.init();
    defer n.deinit();
    try std.testing.expectEqual(@as(u64, 0), drain(n.fd));
    n.signal();
    n.signal();
    try std.testing.expectEqual(@as(u64, 2), drain(n.fd));
    try std.testing.expectEqual(@as(u64, 0), drain(n.fd));
    n.signal();
    var pfd = [1]std.os.linux.pollfd{.{ .fd = n.fd, .events = std.os.linux.POLL.IN, .revents = 0 }};
    try std.testing.expectEqual(@as(usize, 1), std.os.linux.poll(&pfd, 1, 0));
    try std.testing.expectEqual(@as(u64, 1), drain(n.fd));
}
