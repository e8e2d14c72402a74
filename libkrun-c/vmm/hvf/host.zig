//! The macOS host calls the HVF Machine makes (through libSystem, never raw syscalls): guest
//! RAM and read-only file mappings, the console output file, a bounded wait for the VM's end,
//! and `Drain`, the thread that writes the ns16550a's ring out (the event loop that does it on
//! Linux is not ported to kqueue yet). Used on macOS only, never run there (docs/HVF.md);
//! `Drain` is libc-only, so its test runs it on Linux against a real pipe.
const std = @import("std");
const Serial = @import("../legacy/Serial.zig");
const OutputBuffer = @import("../OutputBuffer.zig");

const log = std.log.scoped(.hvf);

pub const page = std.heap.page_size_min;

pub const OpenError = error{ KernelNotFound, KernelInvalid, OutOfMemory };

/// A file mapped read-only and private (a RAW kernel, an initramfs).
pub const Mapped = struct {
    bytes: []align(page) const u8,

    pub fn open(path: []const u8) OpenError!Mapped {
        var z: [std.fs.max_path_bytes + 1]u8 = undefined;
        if (path.len > std.fs.max_path_bytes) return error.KernelNotFound;
        @memcpy(z[0..path.len], path);
        z[path.len] = 0;
        const fd = std.c.open(@ptrCast(&z), .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
        if (fd < 0) {
            log.warn("cannot open {s}: {t}", .{ path, std.c.errno(fd) });
            return error.KernelNotFound;
        }
        defer _ = std.c.close(fd);
        var st: std.c.Stat = undefined;
        if (std.c.fstat(fd, &st) != 0 or st.size <= 0 or st.size > 1 << 36) {
            log.warn("{s}: not a usable file", .{path});
            return error.KernelInvalid;
        }
        const len: usize = @intCast(st.size);
        const p = std.c.mmap(null, len, .{ .READ = true }, .{ .TYPE = .PRIVATE }, fd, 0);
        if (p == std.c.MAP_FAILED) return error.OutOfMemory;
        const base: [*]align(page) const u8 = @ptrCast(@alignCast(p));
        return .{ .bytes = base[0..len] };
    }

    pub fn unmap(self: Mapped) void {
        _ = std.c.munmap(@constCast(self.bytes.ptr), self.bytes.len);
    }
};

/// Anonymous zeroed memory, reserved lazily (guest RAM).
pub fn mapAnonymous(len: usize) ?[]align(page) u8 {
    const p = std.c.mmap(null, len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
    if (p == std.c.MAP_FAILED) return null;
    const base: [*]align(page) u8 = @ptrCast(@alignCast(p));
    return base[0..len];
}

pub fn unmap(m: []align(page) u8) void {
    _ = std.c.munmap(m.ptr, m.len);
}

/// krun_set_console_output's file, appended to.
pub fn openOutput(path: []const u8) ?i32 {
    var z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (path.len > std.fs.max_path_bytes) return null;
    @memcpy(z[0..path.len], path);
    z[path.len] = 0;
    const fd = std.c.open(@ptrCast(&z), .{ .ACCMODE = .WRONLY, .CREAT = true, .APPEND = true, .CLOEXEC = true }, @as(std.c.mode_t, 0o644));
    if (fd < 0) {
        log.warn("cannot open console output {s}: {t}", .{ path, std.c.errno(fd) });
        return null;
    }
    return fd;
}

pub fn close(fd: i32) void {
    _ = std.c.close(fd);
}

/// Waits up to `timeout_ms` for `flag` (the vCPUs' stop flag), in 1 ms steps; true once set.
pub fn waitFlag(flag: *const std.atomic.Value(bool), timeout_ms: i32) bool {
    var left = timeout_ms;
    while (!flag.load(.acquire)) : (left -= 1) {
        if (left <= 0) return false;
        var ts: std.c.timespec = .{ .sec = 0, .nsec = 1_000_000 };
        _ = std.c.nanosleep(&ts, null);
    }
    return true;
}

/// The serial port's drain thread: the vCPU's write wakes it through a pipe (one byte per
/// batch: Serial's `notified` flag), it runs Serial.drain, and while the host does not take the
/// output it waits for the fd to become writable (bounded steps, so a stop is seen).
pub const Drain = struct {
    serial: ?*Serial = null,
    pipe: [2]c_int = .{ -1, -1 },
    thread: ?std.Thread = null,
    done: std.atomic.Value(bool) = .init(false),

    pub fn init(self: *Drain, s: *Serial) error{SystemResources}!void {
        if (std.c.pipe(&self.pipe) != 0) return error.SystemResources;
        for (self.pipe) |fd| _ = std.c.fcntl(fd, std.c.F.SETFD, @as(c_int, std.c.FD_CLOEXEC));
        const fl = std.c.fcntl(self.pipe[1], std.c.F.GETFL);
        _ = std.c.fcntl(self.pipe[1], std.c.F.SETFL, fl | @as(c_int, @bitCast(std.c.O{ .NONBLOCK = true })));
        self.serial = s;
        s.wake = .{ .ctx = self, .call = wake };
    }

    fn wake(ctx: *anyopaque) void {
        const self: *Drain = @ptrCast(@alignCast(ctx));
        // Non-blocking: a full pipe already has a wake-up pending.
        _ = std.c.write(self.pipe[1], "x", 1);
    }

    pub fn start(self: *Drain) std.Thread.SpawnError!void {
        if (self.serial == null) return;
        // 1 MiB like the other threads: 64 KiB is below glibc's PTHREAD_STACK_MIN plus the
        // guard and TLS on some hosts (pthread_create EINVAL), and Serial.drain's log path is
        // not sized for a small stack.
        self.thread = try std.Thread.spawn(.{ .stack_size = 1024 * 1024 }, run, .{self});
    }

    /// Ends the thread after one last drain, and closes the pipe.
    pub fn stop(self: *Drain) void {
        if (self.thread) |t| {
            self.done.store(true, .release);
            wake(self);
            t.join();
            self.thread = null;
        }
        for (&self.pipe) |*fd| if (fd.* >= 0) {
            _ = std.c.close(fd.*);
            fd.* = -1;
        };
    }

    fn run(self: *Drain) void {
        const s = self.serial.?;
        // A socket whose reader left raises SIGPIPE on the writing thread: this one keeps it
        // blocked (the write reports EPIPE and the sink discards), the process is untouched.
        // sigset_t is a u32 on macOS and a 1024-bit array in glibc: built by libc's own calls.
        var set = std.posix.sigemptyset();
        std.posix.sigaddset(&set, .PIPE);
        var old: std.c.sigset_t = undefined;
        _ = std.c.pthread_sigmask(std.c.SIG.BLOCK, &set, &old);
        var buf: [64]u8 = undefined;
        while (true) {
            _ = std.c.read(self.pipe[0], &buf, buf.len);
            Serial.drain(s, 0, 0);
            while (s.ring.len() > 0 and !self.done.load(.acquire)) {
                OutputBuffer.waitWritable(s.out.fd, 100);
                Serial.drain(s, 0, 0);
            }
            if (self.done.load(.acquire)) return;
        }
    }
};

fn testPipe(fds: *[2]c_int) !void {
    try std.testing.expectEqual(@as(c_int, 0), std.c.pipe(fds));
    for (fds) |fd| _ = std.c.fcntl(fd, std.c.F.SETFD, @as(c_int, std.c.FD_CLOEXEC));
}

test "Drain: a guest's THR writes reach the output through the drain thread; a reader that left is EPIPE on that thread, not SIGPIPE" {
    var out: [2]c_int = undefined;
    try testPipe(&out);
    defer for (out) |fd| if (fd >= 0) {
        _ = std.c.close(fd);
    };
    var s: Serial = .{ .base = 0x3f8, .out = try OutputBuffer.Sink.open(out[1]) };
    defer s.deinit();
    var d: Drain = .{};
    try d.init(&s);
    try d.start(); // EINVAL from pthread_create with the old 64 KiB stack on some hosts
    const msg = "hello from the guest\n";
    for (msg) |c| s.write(0x3f8, &.{c});
    var got: [msg.len]u8 = undefined;
    var n: usize = 0;
    while (n < msg.len) {
        const rc = std.c.read(out[0], got[n..].ptr, msg.len - n);
        try std.testing.expect(rc > 0);
        n += @intCast(rc);
    }
    try std.testing.expectEqualStrings(msg, &got);
    // The reader leaves: the next drain's write fails with EPIPE. Were SIGPIPE not blocked on
    // the drain thread, its default action would kill this test process here.
    _ = std.c.close(out[0]);
    out[0] = -1;
    for ("after the reader left") |c| s.write(0x3f8, &.{c});
    while (s.ring.len() > 0) std.Thread.yield() catch {};
    d.stop();
    try std.testing.expectEqual(OutputBuffer.Sink.Mode.discard, s.out.mode); // the dead sink discards
    try std.testing.expectEqual(@as(?std.Thread, null), d.thread);
    try std.testing.expectEqual(@as(c_int, -1), d.pipe[0]);
}
