//! The VMM's syscall layer: every raw Linux call the VMM makes goes through here, and every
//! result goes through an errno switch with EINTR and EAGAIN named explicitly. Callers get small
//! Zig error sets; anything unexpected is logged with its errno and becomes `error.Unexpected`.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

const log = std.log.scoped(.vmm);

pub const fd_t = linux.fd_t;

pub const IoctlError = error{
    Interrupted,
    Again,
    OutOfMemory,
    Fault,
    InvalidArgument,
    Exists,
    Busy,
    NotSupported,
    PermissionDenied,
    SystemResources,
    Unexpected,
};

fn unexpected(what: []const u8, e: linux.E) error{Unexpected} {
    logUnexpected(what, e);
    return error.Unexpected;
}

fn logUnexpected(what: []const u8, e: linux.E) void {
    log.err("{s}: unexpected errno {t}", .{ what, e });
}

pub fn ioctl(fd: fd_t, request: u32, arg: usize) IoctlError!usize {
    assert(fd >= 0);
    const rc = linux.ioctl(fd, request, arg);
    return switch (linux.errno(rc)) {
        .SUCCESS => rc,
        .INTR => error.Interrupted,
        .AGAIN => error.Again,
        .NOMEM => error.OutOfMemory,
        .FAULT => error.Fault,
        .INVAL => error.InvalidArgument,
        .EXIST => error.Exists,
        .BUSY => error.Busy,
        .NOTTY, .NXIO, .NODEV, .NOSYS, .OPNOTSUPP => error.NotSupported,
        .PERM, .ACCES => error.PermissionDenied,
        .@"2BIG", .NOSPC, .MFILE, .NFILE, .NOBUFS, .RANGE => error.SystemResources,
        else => |e| unexpected("ioctl", e),
    };
}

pub const OpenError = error{ NotFound, PermissionDenied, SystemResources, Unexpected };

pub fn open(path: [*:0]const u8, flags: linux.O) OpenError!fd_t {
    while (true) {
        const rc = linux.open(path, flags, 0);
        switch (linux.errno(rc)) {
            .SUCCESS => return @intCast(rc),
            .INTR => continue,
            .NOENT, .NODEV, .NXIO, .NOTDIR => return error.NotFound,
            .ACCES, .PERM, .ROFS => return error.PermissionDenied,
            .MFILE, .NFILE, .NOMEM => return error.SystemResources,
            else => |e| return unexpected("open", e),
        }
    }
}

pub const ReadError = error{ InputOutput, UnexpectedEof, Unexpected };

/// The size of a regular file (lseek to its end).
pub fn fileSize(fd: fd_t) ReadError!u64 {
    const rc = linux.lseek(fd, 0, linux.SEEK.END);
    return switch (linux.errno(rc)) {
        .SUCCESS => rc,
        .SPIPE, .INVAL, .OVERFLOW => error.InputOutput,
        else => |e| unexpected("lseek", e),
    };
}

/// Fills `dest` from `offset` of `fd`; a short file is an error.
pub fn preadAll(fd: fd_t, dest: []u8, offset: u64) ReadError!void {
    var done: usize = 0;
    while (done < dest.len) {
        const chunk = @min(dest.len - done, 1 << 30);
        const rc = linux.pread(fd, dest[done..].ptr, chunk, @intCast(offset + done));
        switch (linux.errno(rc)) {
            .SUCCESS => {
                if (rc == 0) return error.UnexpectedEof;
                done += rc;
            },
            .INTR, .AGAIN => continue,
            .IO, .ISDIR, .INVAL, .FAULT => return error.InputOutput,
            else => |e| return unexpected("pread", e),
        }
    }
}

pub fn close(fd: fd_t) void {
    assert(fd >= 0);
    // EINTR on close still releases the fd on Linux; retrying could close a reused number.
    _ = linux.close(fd);
}

pub const MmapError = error{ OutOfMemory, PermissionDenied, InvalidArgument, Unexpected };

pub fn mmap(len: usize, prot: linux.PROT, flags: linux.MAP, fd: fd_t, offset: u64) MmapError![]align(std.heap.page_size_min) u8 {
    assert(len > 0);
    const rc = linux.mmap(null, len, prot, flags, fd, @intCast(offset));
    return switch (linux.errno(rc)) {
        .SUCCESS => @as([*]align(std.heap.page_size_min) u8, @ptrFromInt(rc))[0..len],
        .NOMEM, .AGAIN, .NFILE, .MFILE, .OVERFLOW => error.OutOfMemory,
        .ACCES, .PERM => error.PermissionDenied,
        .INVAL, .NODEV, .BADF => error.InvalidArgument,
        else => |e| unexpected("mmap", e),
    };
}

pub fn munmap(mem: []align(std.heap.page_size_min) const u8) void {
    assert(mem.len > 0);
    const rc = linux.munmap(mem.ptr, mem.len);
    assert(linux.errno(rc) == .SUCCESS); // Only a wrong pointer/length fails: a VMM bug.
}

pub fn eventfd(flags: u32) error{ SystemResources, Unexpected }!fd_t {
    const rc = linux.eventfd(0, flags | linux.EFD.CLOEXEC);
    return switch (linux.errno(rc)) {
        .SUCCESS => @intCast(rc),
        .MFILE, .NFILE, .NODEV, .NOMEM => error.SystemResources,
        else => |e| unexpected("eventfd", e),
    };
}

/// Adds 1 to an eventfd counter. A full counter (EAGAIN) already means "signalled".
pub fn eventfdSignal(fd: fd_t) void {
    const one: u64 = 1;
    while (true) {
        const rc = linux.write(fd, std.mem.asBytes(&one), 8);
        switch (linux.errno(rc)) {
            .SUCCESS, .AGAIN => return,
            .INTR => continue,
            else => |e| {
                logUnexpected("eventfd write", e);
                return;
            },
        }
    }
}

/// Reads (and so resets) an eventfd counter; 0 when it was not signalled (non-blocking fd).
pub fn eventfdDrain(fd: fd_t) u64 {
    var value: u64 = 0;
    while (true) {
        const rc = linux.read(fd, std.mem.asBytes(&value), 8);
        switch (linux.errno(rc)) {
            .SUCCESS => return value,
            .INTR => continue,
            .AGAIN => return 0,
            else => |e| {
                logUnexpected("eventfd read", e);
                return 0;
            },
        }
    }
}

pub const PollResult = enum { ready, timeout };

/// Waits until `fd` is readable or `timeout_ms` passes (< 0: forever). EINTR restarts the wait
/// with the time that is left, so a signal cannot shorten a timeout.
pub fn pollReadable(fd: fd_t, timeout_ms: i32) PollResult {
    const deadline: i128 = if (timeout_ms >= 0) nowNs() + @as(i128, timeout_ms) * std.time.ns_per_ms else 0;
    while (true) {
        var pfd = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.IN, .revents = 0 }};
        var left: i32 = -1;
        // Once the deadline has passed, poll one last time with a zero timeout: a timeout of 0
        // means "only poll", so an already-signalled fd must still be reported ready.
        var last = false;
        if (timeout_ms >= 0) {
            const rest = deadline - nowNs();
            last = rest <= 0;
            left = if (last) 0 else @intCast(@divTrunc(rest + std.time.ns_per_ms - 1, std.time.ns_per_ms));
        }
        const rc = linux.poll(&pfd, 1, left);
        switch (linux.errno(rc)) {
            .SUCCESS => {
                if (rc > 0) return .ready;
                if (last) return .timeout;
            },
            .INTR, .AGAIN => continue,
            else => |e| {
                logUnexpected("poll", e);
                return .timeout;
            },
        }
    }
}

pub fn nowNs() i128 {
    var ts: linux.timespec = undefined;
    const rc = linux.clock_gettime(.MONOTONIC, &ts);
    assert(linux.errno(rc) == .SUCCESS);
    return @as(i128, ts.sec) * std.time.ns_per_s + ts.nsec;
}

pub fn gettid() i32 {
    return linux.gettid();
}

pub fn getpid() i32 {
    return linux.getpid();
}

/// Sends `sig` to one thread of this process. ESRCH (the thread already ended) is fine.
pub fn tgkill(tid: i32, sig: linux.SIG) void {
    const rc = linux.tgkill(linux.getpid(), tid, sig);
    switch (linux.errno(rc)) {
        .SUCCESS, .SRCH => {},
        else => |e| logUnexpected("tgkill", e),
    }
}

test "eventfd signal, poll and drain" {
    const fd = try eventfd(linux.EFD.NONBLOCK);
    defer close(fd);
    try std.testing.expectEqual(PollResult.timeout, pollReadable(fd, 0));
    try std.testing.expectEqual(@as(u64, 0), eventfdDrain(fd));
    eventfdSignal(fd);
    eventfdSignal(fd);
    // A zero timeout only polls, and must see an fd that is already signalled.
    try std.testing.expectEqual(PollResult.ready, pollReadable(fd, 0));
    try std.testing.expectEqual(PollResult.ready, pollReadable(fd, -1));
    try std.testing.expectEqual(@as(u64, 2), eventfdDrain(fd));
    try std.testing.expectEqual(PollResult.timeout, pollReadable(fd, 5));
}

test "ioctl maps errno: ENOTTY on a non-device fd" {
    const fd = try eventfd(0);
    defer close(fd);
    try std.testing.expectError(error.NotSupported, ioctl(fd, 0xAE00, 0));
}
