//! The host process's Linux syscall layer: every raw Linux call of the VMM, the devices and the
//! C API goes through here (the virtio-fs server's file calls have their own layer,
//! virtio/fs/sys.zig, and the guest init its own, init/sys.zig). Below vmm/, virtio/ and tsi/,
//! so each imports it without importing the others. Linux only: the macOS paths of its callers
//! use libSystem (std.c/std.posix) and never reach these functions.
//!
//! The convention is the one of all three syscall layers (libkrun-c/sys/errno.zig,
//! CONTRIBUTING.md "System calls"): a call's result goes through `errno.check`, so a wrapper
//! returns `Error!T` with one error per errno (`error.INTR`, `error.NOMEM`, ...), and callers
//! switch on the errnos they handle. Each wrapper says what it does with EINTR: "EINTR
//! returned" (the caller decides: restart, or give up as a wakeup), "restarted", or "no EINTR"
//! (the call never blocks). Calls that return nothing (close, eventfd signal/drain, poll,
//! tgkill) log an errno they do not expect.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const errno = @import("sys_errno");

const log = std.log.scoped(.vmm);

pub const fd_t = linux.fd_t;
pub const Error = errno.Error;
/// The errno an `Error` stands for (sys_errno's `errnoOf`).
pub const errnoOf = errno.errnoOf;

/// A wrapper's result as an errno: SUCCESS, or the error's number (for code that keeps an errno
/// enum, e.g. one shared with macOS's libc paths).
pub fn resultErrno(result: anytype) linux.E {
    _ = result catch |err| return errno.errnoOf(err);
    return .SUCCESS;
}

fn logUnexpected(what: []const u8, err: Error) void {
    log.err("{s}: unexpected errno {s}", .{ what, @errorName(err) });
}

pub fn ioctl(fd: fd_t, request: u32, arg: usize) Error!usize {
    assert(fd >= 0);
    return errno.check(linux.ioctl(fd, request, arg));
}

/// What a failed call means for the VM being built, when the host ran out of something:
/// ENOMEM is memory, running out of fds, buffers, space or slots is another resource; null for
/// everything else (a real failure of the call). The Zig errors of the same names pass through,
/// so a caller can hand it any error it got.
pub fn shortage(err: anyerror) ?error{ OutOfMemory, SystemResources } {
    return switch (err) {
        error.NOMEM, error.OutOfMemory => error.OutOfMemory,
        error.MFILE, error.NFILE, error.NOBUFS, error.NOSPC, error.@"2BIG", error.RANGE, error.SystemResources => error.SystemResources,
        else => null,
    };
}

// Files and descriptors.

/// open(2), restarted on EINTR.
pub fn open(path: [*:0]const u8, flags: linux.O) Error!fd_t {
    return openMode(path, flags, 0);
}

/// open(2) with a mode for O_CREAT, restarted on EINTR.
pub fn openMode(path: [*:0]const u8, flags: linux.O, mode: linux.mode_t) Error!fd_t {
    while (true) {
        const rc = errno.check(linux.open(path, flags, mode)) catch |err| switch (err) {
            error.INTR => continue,
            else => return err,
        };
        return @intCast(rc);
    }
}

/// openat(2), restarted on EINTR.
pub fn openat(dir: fd_t, path: [*:0]const u8, flags: linux.O, mode: linux.mode_t) Error!fd_t {
    while (true) {
        const rc = errno.check(linux.openat(dir, path, flags, mode)) catch |err| switch (err) {
            error.INTR => continue,
            else => return err,
        };
        return @intCast(rc);
    }
}

/// Closes `fd`. No error comes back: EINTR on close still releases the fd on Linux (retrying
/// could close a number another thread just got), and there is nothing else to do about one.
pub fn close(fd: fd_t) void {
    assert(fd >= 0);
    _ = linux.close(fd);
}

/// A pipe, [read end, write end]. No EINTR.
pub fn pipe2(flags: linux.O) Error![2]fd_t {
    var fds: [2]fd_t = undefined;
    _ = try errno.check(linux.pipe2(&fds, flags));
    return fds;
}

/// fcntl(2). EINTR returned (only the blocking lock commands have one).
pub fn fcntl(fd: fd_t, cmd: i32, arg: usize) Error!usize {
    return errno.check(linux.fcntl(fd, cmd, arg));
}

/// Adds `flags` to the fd's status flags (F_SETFL over F_GETFL), e.g. O_NONBLOCK. No EINTR.
pub fn addStatusFlags(fd: fd_t, flags: linux.O) Error!void {
    const old = try fcntl(fd, linux.F.GETFL, 0);
    const add: u32 = @bitCast(flags);
    _ = try fcntl(fd, linux.F.SETFL, old | add);
}

pub fn dup2(old: fd_t, new: fd_t) Error!void {
    _ = try errno.check(linux.dup2(old, new));
}

/// memfd_create(2). No EINTR.
pub fn memfd_create(name: [*:0]const u8, flags: u32) Error!fd_t {
    return @intCast(try errno.check(linux.memfd_create(name, flags)));
}

/// statx(2). No EINTR.
pub fn statx(dir: fd_t, path: [*:0]const u8, flags: u32, mask: linux.STATX, buf: *linux.Statx) Error!void {
    _ = try errno.check(linux.statx(dir, path, flags, mask, buf));
}

/// The statx of an open fd (AT_EMPTY_PATH). No EINTR.
pub fn fstatx(fd: fd_t, mask: linux.STATX) Error!linux.Statx {
    var st: linux.Statx = undefined;
    try statx(fd, "", linux.AT.EMPTY_PATH, mask, &st);
    return st;
}

/// lseek(2): the new offset. No EINTR.
pub fn lseek(fd: fd_t, offset: i64, whence: u32) Error!u64 {
    return errno.check(linux.lseek(fd, offset, whence));
}

/// The size of a regular file (lseek to its end).
pub fn fileSize(fd: fd_t) Error!u64 {
    return lseek(fd, 0, linux.SEEK.END);
}

/// ftruncate(2). EINTR returned.
pub fn ftruncate(fd: fd_t, length: u64) Error!void {
    _ = try errno.check(linux.ftruncate(fd, @intCast(length)));
}

/// fallocate(2). EINTR returned.
pub fn fallocate(fd: fd_t, mode: linux.mode_t, offset: u64, length: u64) Error!void {
    _ = try errno.check(linux.fallocate(fd, mode, @intCast(offset), @intCast(length)));
}

/// fdatasync(2). EINTR returned.
pub fn fdatasync(fd: fd_t) Error!void {
    _ = try errno.check(linux.fdatasync(fd));
}

/// flock(2). EINTR returned (a blocking lock waits).
pub fn flock(fd: fd_t, operation: i32) Error!void {
    _ = try errno.check(linux.flock(fd, operation));
}

pub fn unlink(path: [*:0]const u8) Error!void {
    _ = try errno.check(linux.unlink(path));
}

pub fn mkdir(path: [*:0]const u8, mode: linux.mode_t) Error!void {
    _ = try errno.check(linux.mkdir(path, mode));
}

pub fn access(path: [*:0]const u8, mode: linux.mode_t) Error!void {
    _ = try errno.check(linux.access(path, mode));
}

// Transfers: EINTR returned (the caller restarts, or takes the signal as a wakeup); EAGAIN on
// a non-blocking fd returned too.

pub fn read(fd: fd_t, buf: []u8) Error!usize {
    return errno.check(linux.read(fd, buf.ptr, buf.len));
}

pub fn write(fd: fd_t, bytes: []const u8) Error!usize {
    return errno.check(linux.write(fd, bytes.ptr, bytes.len));
}

pub fn readv(fd: fd_t, iov: []const std.posix.iovec) Error!usize {
    return errno.check(linux.readv(fd, iov.ptr, iov.len));
}

pub fn writev(fd: fd_t, iov: []const std.posix.iovec_const) Error!usize {
    return errno.check(linux.writev(fd, iov.ptr, iov.len));
}

pub fn pread(fd: fd_t, buf: []u8, offset: u64) Error!usize {
    return errno.check(linux.pread(fd, buf.ptr, buf.len, @intCast(offset)));
}

pub fn pwrite(fd: fd_t, bytes: []const u8, offset: u64) Error!usize {
    return errno.check(linux.pwrite(fd, bytes.ptr, bytes.len, @intCast(offset)));
}

pub fn preadv(fd: fd_t, iov: []const std.posix.iovec, offset: u64) Error!usize {
    return errno.check(linux.preadv(fd, iov.ptr, iov.len, @intCast(offset)));
}

pub fn pwritev(fd: fd_t, iov: []const std.posix.iovec_const, offset: u64) Error!usize {
    return errno.check(linux.pwritev(fd, iov.ptr, iov.len, @intCast(offset)));
}

/// Fills `dest` from `offset` of `fd`, restarted on EINTR/EAGAIN; a short file is EIO.
pub fn preadAll(fd: fd_t, dest: []u8, offset: u64) Error!void {
    return transferAll(pread, fd, dest, offset);
}

/// Writes all of `bytes` at `offset` of `fd`, restarted on EINTR/EAGAIN; a write of 0 is EIO.
pub fn pwriteAll(fd: fd_t, bytes: []const u8, offset: u64) Error!void {
    return transferAll(pwrite, fd, bytes, offset);
}

/// `call` (pread or pwrite) until all of `buf` is transferred, at most 1 GiB a call.
fn transferAll(comptime call: anytype, fd: fd_t, buf: anytype, offset: u64) Error!void {
    var done: usize = 0;
    while (done < buf.len) {
        const chunk = @min(buf.len - done, 1 << 30);
        const n = call(fd, buf[done..][0..chunk], offset + done) catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            else => return err,
        };
        if (n == 0) return error.IO;
        done += n;
    }
}

// Memory.

/// mmap(2) of `len` bytes anywhere. No EINTR.
pub fn mmap(len: usize, prot: linux.PROT, flags: linux.MAP, fd: fd_t, offset: u64) Error![]align(std.heap.page_size_min) u8 {
    assert(len > 0);
    const rc = try errno.check(linux.mmap(null, len, prot, flags, fd, @intCast(offset)));
    return @as([*]align(std.heap.page_size_min) u8, @ptrFromInt(rc))[0..len];
}

pub fn munmap(mem: []align(std.heap.page_size_min) const u8) void {
    assert(mem.len > 0);
    const rc = linux.munmap(mem.ptr, mem.len);
    assert(linux.errno(rc) == .SUCCESS); // Only a wrong pointer/length fails: a VMM bug.
}

/// madvise(2) over `mem` (page aligned). No EINTR.
pub fn madvise(mem: []align(std.heap.page_size_min) u8, advice: u32) Error!void {
    _ = try errno.check(linux.madvise(mem.ptr, mem.len, advice));
}

/// mincore(2): one byte per page of `mem` into `vec`. No EINTR.
pub fn mincore(mem: []align(std.heap.page_size_min) u8, vec: []u8) Error!void {
    assert(vec.len >= std.math.divCeil(usize, mem.len, std.heap.pageSize()) catch unreachable);
    _ = try errno.check(linux.mincore(mem.ptr, mem.len, vec.ptr));
}

// Sockets. Creation and setup have no EINTR; connect, accept4 and the transfers return it.

pub const socklen_t = linux.socklen_t;

pub fn socket(domain: u32, socket_type: u32, protocol: u32) Error!fd_t {
    return @intCast(try errno.check(linux.socket(domain, socket_type, protocol)));
}

pub fn socketpair(domain: u32, socket_type: u32, protocol: u32) Error![2]fd_t {
    var fds: [2]fd_t = undefined;
    _ = try errno.check(linux.socketpair(domain, socket_type, protocol, &fds));
    return fds;
}

pub fn bind(fd: fd_t, addr: *const linux.sockaddr, len: socklen_t) Error!void {
    _ = try errno.check(linux.bind(fd, addr, len));
}

pub fn listen(fd: fd_t, backlog: u32) Error!void {
    _ = try errno.check(linux.listen(fd, backlog));
}

/// connect(2). EINTR returned (the connection goes on in the background, like EINPROGRESS).
pub fn connect(fd: fd_t, addr: *const anyopaque, len: socklen_t) Error!void {
    _ = try errno.check(linux.connect(fd, addr, len));
}

/// accept4(2). EINTR returned.
pub fn accept4(fd: fd_t, addr: ?*linux.sockaddr, len: ?*socklen_t, flags: u32) Error!fd_t {
    return @intCast(try errno.check(linux.accept4(fd, addr, len, flags)));
}

pub fn getsockname(fd: fd_t, addr: *linux.sockaddr, len: *socklen_t) Error!void {
    _ = try errno.check(linux.getsockname(fd, addr, len));
}

pub fn setsockopt(fd: fd_t, level: i32, name: u32, value: []const u8) Error!void {
    _ = try errno.check(linux.setsockopt(fd, level, name, value.ptr, @intCast(value.len)));
}

/// getsockopt(2) into `value`; the length the kernel wrote.
pub fn getsockopt(fd: fd_t, level: i32, name: u32, value: []u8) Error!usize {
    var len: socklen_t = @intCast(value.len);
    _ = try errno.check(linux.getsockopt(fd, level, name, value.ptr, &len));
    return len;
}

pub fn shutdown(fd: fd_t, how: i32) Error!void {
    _ = try errno.check(linux.shutdown(fd, how));
}

/// sendmsg(2). EINTR returned.
pub fn sendmsg(fd: fd_t, msg: *const linux.msghdr_const, flags: u32) Error!usize {
    return errno.check(linux.sendmsg(fd, msg, flags));
}

/// recvmsg(2). EINTR returned.
pub fn recvmsg(fd: fd_t, msg: *linux.msghdr, flags: u32) Error!usize {
    return errno.check(linux.recvmsg(fd, msg, flags));
}

/// sendto(2). EINTR returned.
pub fn sendto(fd: fd_t, bytes: []const u8, flags: u32, addr: ?*const linux.sockaddr, len: socklen_t) Error!usize {
    return errno.check(linux.sendto(fd, bytes.ptr, bytes.len, flags, addr, len));
}

/// recvfrom(2). EINTR returned.
pub fn recvfrom(fd: fd_t, buf: []u8, flags: u32, addr: ?*linux.sockaddr, len: ?*socklen_t) Error!usize {
    return errno.check(linux.recvfrom(fd, buf.ptr, buf.len, flags, addr, len));
}

// Waiting: epoll, poll, eventfds, sleeps and futexes.

/// epoll_create1(2). No EINTR.
pub fn epoll_create1(flags: u32) Error!fd_t {
    return @intCast(try errno.check(linux.epoll_create1(flags)));
}

/// epoll_ctl(2). No EINTR.
pub fn epoll_ctl(epfd: fd_t, op: u32, fd: fd_t, event: ?*linux.epoll_event) Error!void {
    _ = try errno.check(linux.epoll_ctl(epfd, op, fd, event));
}

/// epoll_wait(2): how many of `events` it filled. EINTR returned.
pub fn epoll_wait(epfd: fd_t, events: []linux.epoll_event, timeout_ms: i32) Error!usize {
    return errno.check(linux.epoll_wait(epfd, events.ptr, @intCast(events.len), timeout_ms));
}

/// poll(2): how many of `fds` have events. EINTR returned.
pub fn poll(fds: []linux.pollfd, timeout_ms: i32) Error!usize {
    return errno.check(linux.poll(fds.ptr, fds.len, timeout_ms));
}

pub fn eventfd(flags: u32) Error!fd_t {
    return @intCast(try errno.check(linux.eventfd(0, flags | linux.EFD.CLOEXEC)));
}

/// Adds 1 to an eventfd counter. A full counter (EAGAIN) already means "signalled"; EINTR
/// restarted.
pub fn eventfdSignal(fd: fd_t) void {
    const one: u64 = 1;
    while (true) {
        _ = write(fd, std.mem.asBytes(&one)) catch |err| switch (err) {
            error.AGAIN => {},
            error.INTR => continue,
            else => logUnexpected("eventfd write", err),
        };
        return;
    }
}

/// Reads (and so resets) an eventfd counter; 0 when it was not signalled (non-blocking fd).
/// EINTR restarted.
pub fn eventfdDrain(fd: fd_t) u64 {
    var value: u64 = 0;
    while (true) {
        _ = read(fd, std.mem.asBytes(&value)) catch |err| switch (err) {
            error.INTR => continue,
            error.AGAIN => return 0,
            else => {
                logUnexpected("eventfd read", err);
                return 0;
            },
        };
        return value;
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
        const n = poll(&pfd, left) catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            else => {
                logUnexpected("poll", err);
                return .timeout;
            },
        };
        if (n > 0) return .ready;
        if (last) return .timeout;
    }
}

/// nanosleep(2) for `ns`. EINTR returned (the sleep is cut short).
pub fn nanosleep(ns: u64) Error!void {
    const req: linux.timespec = .{ .sec = @intCast(ns / std.time.ns_per_s), .nsec = @intCast(ns % std.time.ns_per_s) };
    _ = try errno.check(linux.nanosleep(&req, null));
}

/// Sleeps `ns`, the whole of it: EINTR restarts the sleep with the time that is left.
pub fn sleep(ns: u64) void {
    var req: linux.timespec = .{ .sec = @intCast(ns / std.time.ns_per_s), .nsec = @intCast(ns % std.time.ns_per_s) };
    while (true) {
        var rem: linux.timespec = undefined;
        switch (linux.errno(linux.nanosleep(&req, &rem))) {
            .INTR => req = rem,
            else => return, // SUCCESS; EINVAL/EFAULT cannot happen with a valid timespec.
        }
    }
}

/// FUTEX_WAIT_PRIVATE on `word` while it holds `expect`, for at most `timeout` (null: forever).
/// EINTR, EAGAIN (the word changed) and ETIMEDOUT returned: the caller rechecks its condition.
pub fn futexWait(word: *const std.atomic.Value(u32), expect: u32, timeout: ?*const linux.timespec) Error!void {
    _ = try errno.check(linux.futex_4arg(&word.raw, .{ .cmd = .WAIT, .private = true }, expect, timeout));
}

/// FUTEX_WAKE_PRIVATE: wakes up to `count` waiters on `word`. No EINTR.
pub fn futexWake(word: *const std.atomic.Value(u32), count: u32) void {
    _ = linux.futex_3arg(&word.raw, .{ .cmd = .WAKE, .private = true }, count);
}

pub fn clock_gettime(clock: linux.clockid_t) Error!linux.timespec {
    var ts: linux.timespec = undefined;
    _ = try errno.check(linux.clock_gettime(clock, &ts));
    return ts;
}

pub fn nowNs() i128 {
    const ts = clock_gettime(.MONOTONIC) catch unreachable; // CLOCK_MONOTONIC always exists.
    return @as(i128, ts.sec) * std.time.ns_per_s + ts.nsec;
}

// Processes, threads and signals.

pub fn gettid() i32 {
    return linux.gettid();
}

pub fn getpid() i32 {
    return linux.getpid();
}

/// Sends `sig` to one thread of this process. ESRCH (the thread already ended) is fine.
pub fn tgkill(tid: i32, sig: linux.SIG) void {
    _ = errno.check(linux.tgkill(linux.getpid(), tid, sig)) catch |err| switch (err) {
        error.SRCH => {},
        else => logUnexpected("tgkill", err),
    };
}

pub fn kill(pid: linux.pid_t, sig: linux.SIG) Error!void {
    _ = try errno.check(linux.kill(pid, sig));
}

/// sigaction(2). No EINTR.
pub fn sigaction(sig: linux.SIG, act: ?*const linux.Sigaction, old: ?*linux.Sigaction) Error!void {
    _ = try errno.check(linux.sigaction(sig, act, old));
}

/// The calling thread's signal mask (sigprocmask(2) is per thread). No EINTR.
pub fn sigprocmask(how: u32, set: ?*const linux.sigset_t, old: ?*linux.sigset_t) Error!void {
    _ = try errno.check(linux.sigprocmask(how, set, old));
}

/// A signal set holding `sigs` (sigemptyset + sigaddset: no system call).
pub fn sigset(sigs: []const linux.SIG) linux.sigset_t {
    var set = linux.sigemptyset();
    for (sigs) |sig| linux.sigaddset(&set, sig);
    return set;
}

/// fork(2): the child's pid in the parent, 0 in the child. No EINTR.
pub fn fork() Error!linux.pid_t {
    return @intCast(try errno.check(linux.fork()));
}

/// execve(2); returns only with its error.
pub fn execve(path: [*:0]const u8, argv: [*:null]const ?[*:0]const u8, envp: [*:null]const ?[*:0]const u8) Error!void {
    _ = try errno.check(linux.execve(path, argv, envp));
    unreachable; // a successful execve does not return
}

/// waitpid(2): the child's status word. Restarted on EINTR.
pub fn waitpid(pid: linux.pid_t, flags: u32) Error!i32 {
    var status: i32 = 0;
    while (true) {
        _ = errno.check(linux.waitpid(pid, &status, flags)) catch |err| switch (err) {
            error.INTR => continue,
            else => return err,
        };
        return status;
    }
}

/// unshare(2). No EINTR.
pub fn unshare(flags: usize) Error!void {
    _ = try errno.check(linux.unshare(flags));
}

pub fn getrlimit(resource: linux.rlimit_resource) Error!linux.rlimit {
    var limit: linux.rlimit = undefined;
    _ = try errno.check(linux.getrlimit(resource, &limit));
    return limit;
}

pub fn setrlimit(resource: linux.rlimit_resource, limit: linux.rlimit) Error!void {
    _ = try errno.check(linux.setrlimit(resource, &limit));
}

pub fn exit_group(status: i32) noreturn {
    linux.exit_group(status);
}

pub fn getrandom(buf: []u8, flags: u32) Error!usize {
    return errno.check(linux.getrandom(buf.ptr, buf.len, flags));
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
    try std.testing.expectError(error.NOTTY, ioctl(fd, 0xAE00, 0));
}

test "pipe, status flags, transfers and epoll through the layer" {
    const fds = try pipe2(.{ .CLOEXEC = true });
    defer close(fds[0]);
    defer close(fds[1]);
    try addStatusFlags(fds[0], .{ .NONBLOCK = true });
    var buf: [8]u8 = undefined;
    try std.testing.expectError(error.AGAIN, read(fds[0], &buf));
    const ep = try epoll_create1(linux.EPOLL.CLOEXEC);
    defer close(ep);
    var ev: linux.epoll_event = .{ .events = linux.EPOLL.IN, .data = .{ .fd = fds[0] } };
    try epoll_ctl(ep, linux.EPOLL.CTL_ADD, fds[0], &ev);
    try std.testing.expectError(error.EXIST, epoll_ctl(ep, linux.EPOLL.CTL_ADD, fds[0], &ev));
    var events: [2]linux.epoll_event = undefined;
    try std.testing.expectEqual(@as(usize, 0), try epoll_wait(ep, &events, 0));
    try std.testing.expectEqual(@as(usize, 3), try write(fds[1], "abc"));
    try std.testing.expectEqual(@as(usize, 1), try epoll_wait(ep, &events, 0));
    try std.testing.expectEqual(@as(usize, 3), try read(fds[0], &buf));
    try std.testing.expectEqualStrings("abc", buf[0..3]);
}

test "socketpair: sendto, recvfrom, shutdown" {
    const fds = try socketpair(linux.AF.UNIX, linux.SOCK.SEQPACKET | linux.SOCK.CLOEXEC, 0);
    defer close(fds[0]);
    defer close(fds[1]);
    try std.testing.expectEqual(@as(usize, 4), try sendto(fds[0], "ping", linux.MSG.NOSIGNAL, null, 0));
    var buf: [8]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 4), try recvfrom(fds[1], &buf, linux.MSG.DONTWAIT, null, null));
    try std.testing.expectError(error.AGAIN, recvfrom(fds[1], &buf, linux.MSG.DONTWAIT, null, null));
    try shutdown(fds[0], linux.SHUT.WR);
    try std.testing.expectEqual(@as(usize, 0), try recvfrom(fds[1], &buf, linux.MSG.DONTWAIT, null, null));
}

test "pwriteAll and preadAll: the whole buffer, and a short file is EIO" {
    const fd = try memfd_create("zkrun-sys-test", linux.MFD.CLOEXEC);
    defer close(fd);
    try pwriteAll(fd, "hello, layer", 4);
    var buf: [12]u8 = undefined;
    try preadAll(fd, &buf, 4);
    try std.testing.expectEqualStrings("hello, layer", &buf);
    try std.testing.expectEqual(@as(u64, 16), try fileSize(fd));
    try std.testing.expectError(error.IO, preadAll(fd, &buf, 8));
    try std.testing.expectEqual(@as(u64, 2), try lseek(fd, 2, linux.SEEK.SET));
    const files = try getrlimit(.NOFILE);
    try std.testing.expect(files.cur <= files.max);
}
