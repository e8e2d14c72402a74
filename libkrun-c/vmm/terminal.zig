//! The host terminal behind a VM's console, and its only owner: raw mode while the VM runs,
//! restored exactly and once whichever way the VM ends; the window size; SIGWINCH, which
//! resizes the guest console.
//!
//! Termios travels as the kernel's own `struct termios` through TCGETS/TCSETS, never through
//! libc: glibc's `struct termios` is 60 bytes (c_cc[32] plus speeds), the kernel's is 36, and
//! Zig's `std.c.termios` (44 bytes) is neither. glibc's tcgetattr into a `std.c.termios`
//! wrote 16 bytes past it, over the stack protector's canary: the optimized library trapped
//! (`ud2` in compiler_rt's __stack_chk_fail) as soon as krun_start_enter ran on a terminal.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");

const log = std.log.scoped(.vmm);

/// The kernel's `struct termios` on x86_64 (uapi asm-generic/termbits.h): what TCGETS writes
/// and TCSETS reads. Flags stay plain integers: the kernel may set any bit (baud rates, CMSPAR,
/// ...), and a restore must give back exactly what was saved.
pub const Termios = extern struct {
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: u8,
    cc: [nccs]u8,
};
pub const nccs = 19;

/// struct winsize (uapi asm-generic/termios.h), TIOCGWINSZ / TIOCSWINSZ.
pub const Winsize = extern struct { row: u16, col: u16, xpixel: u16, ypixel: u16 };

comptime {
    assert(@sizeOf(Termios) == 36);
    assert(@offsetOf(Termios, "line") == 16);
    assert(@offsetOf(Termios, "cc") == 17);
    assert(@sizeOf(Winsize) == 8);
}

/// The termios bits cfmakeraw(3) changes, octal as in termbits.h.
pub const Flag = struct {
    pub const IGNBRK: u32 = 0o1;
    pub const BRKINT: u32 = 0o2;
    pub const PARMRK: u32 = 0o10;
    pub const ISTRIP: u32 = 0o40;
    pub const INLCR: u32 = 0o100;
    pub const IGNCR: u32 = 0o200;
    pub const ICRNL: u32 = 0o400;
    pub const IXON: u32 = 0o2000;
    pub const OPOST: u32 = 0o1;
    pub const ISIG: u32 = 0o1;
    pub const ICANON: u32 = 0o2;
    pub const ECHO: u32 = 0o10;
    pub const ECHONL: u32 = 0o100;
    pub const IEXTEN: u32 = 0o100000;
    pub const CSIZE: u32 = 0o60;
    pub const CS8: u32 = 0o60;
    pub const PARENB: u32 = 0o400;
    pub const VTIME = 5;
    pub const VMIN = 6;
};

pub fn getAttr(fd: i32) ?Termios {
    if (fd < 0) return null;
    var t: Termios = undefined;
    const rc = linux.syscall3(.ioctl, @as(u32, @bitCast(fd)), linux.T.CGETS, @intFromPtr(&t));
    if (linux.errno(rc) != .SUCCESS) return null;
    return t;
}

/// TCSETS (TCSANOW). EINTR is retried: the restore on the way out must not be lost to a signal.
pub fn setAttr(fd: i32, t: *const Termios) bool {
    while (true) {
        const rc = linux.syscall3(.ioctl, @as(u32, @bitCast(fd)), linux.T.CSETS, @intFromPtr(t));
        switch (linux.errno(rc)) {
            .SUCCESS => return true,
            .INTR => continue,
            else => return false,
        }
    }
}

pub fn isatty(fd: i32) bool {
    if (comptime is_macos) return std.c.isatty(fd) != 0; // the console's port choice on macOS
    return getAttr(fd) != null;
}

/// The first terminal among the fds (the one to put in raw mode and to size the console by).
pub fn terminalFd(fds: []const i32) ?i32 {
    for (fds) |fd| if (isatty(fd)) return fd;
    return null;
}

const is_macos = @import("builtin").os.tag == .macos;

pub const Size = struct { cols: u16, rows: u16 };

/// Columns and rows of a terminal, or null.
pub fn windowSize(fd: i32) ?Size {
    if (fd < 0) return null;
    var ws: Winsize = undefined;
    if (comptime is_macos) {
        // libc's ioctl (the console sizes itself by the host terminal on macOS too).
        if (std.c.ioctl(fd, std.c.T.IOCGWINSZ, &ws) != 0) return null;
        return .{ .cols = ws.col, .rows = ws.row };
    }
    if (linux.errno(linux.ioctl(fd, linux.T.IOCGWINSZ, @intFromPtr(&ws))) != .SUCCESS) return null;
    return .{ .cols = ws.col, .rows = ws.row };
}

/// TIOCSWINSZ: the terminal takes this size (its foreground process group, if any, gets SIGWINCH).
pub fn setWindowSize(fd: i32, size: Size) bool {
    if (fd < 0) return false;
    const ws: Winsize = .{ .row = size.rows, .col = size.cols, .xpixel = 0, .ypixel = 0 };
    return linux.errno(linux.ioctl(fd, linux.T.IOCSWINSZ, @intFromPtr(&ws))) == .SUCCESS;
}

/// cfmakeraw(3): no line editing, echo, signals or output processing. ^C reaches the guest as a
/// byte, and the guest's own terminal turns it into SIGINT for its foreground process.
pub fn makeRaw(t: Termios) Termios {
    var r = t;
    r.iflag &= ~(Flag.IGNBRK | Flag.BRKINT | Flag.PARMRK | Flag.ISTRIP | Flag.INLCR |
        Flag.IGNCR | Flag.ICRNL | Flag.IXON);
    r.oflag &= ~Flag.OPOST;
    r.lflag &= ~(Flag.ECHO | Flag.ECHONL | Flag.ICANON | Flag.ISIG | Flag.IEXTEN);
    r.cflag &= ~(Flag.CSIZE | Flag.PARENB);
    r.cflag |= Flag.CS8;
    r.cc[Flag.VMIN] = 1;
    r.cc[Flag.VTIME] = 0;
    return r;
}

/// A terminal switched to raw mode, and the exact settings to give back. `restore` may be
/// called from any thread and any number of times: the first call restores, later ones do
/// nothing (krun_stop, krun_wait and destroy each end the VM's ownership of the terminal).
pub const RawMode = struct {
    fd: i32,
    saved: Termios,
    active: std.atomic.Value(bool) = .init(true),

    /// Null when `fd` is not a terminal or refuses the change (nothing to restore then).
    pub fn enter(fd: i32) ?RawMode {
        const saved = getAttr(fd) orelse return null;
        const raw = makeRaw(saved);
        if (!setAttr(fd, &raw)) return null;
        return .{ .fd = fd, .saved = saved };
    }

    pub fn restore(self: *RawMode) void {
        if (!self.active.swap(false, .acq_rel)) return;
        if (!setAttr(self.fd, &self.saved)) log.warn("terminal fd {d}: settings not restored", .{self.fd});
    }
};

// ---- SIGWINCH ------------------------------------------------------------------------------

/// Consoles following the host terminal's size at once (one per VM with a terminal console).
pub const watchers_max = 16;

/// One watcher's eventfd, signalled by the SIGWINCH handler. The eventfds are created once and
/// never closed: a handler running on another thread must never write to a recycled fd number.
const Watcher = struct {
    fd: std.atomic.Value(i32) = .init(-1),
    active: std.atomic.Value(bool) = .init(false),
};

var watchers: [watchers_max]Watcher = @splat(.{});
/// Guards watcher allocation and the handler's installation (never taken by the handler).
var watchers_lock: std.atomic.Value(bool) = .init(false);
var watchers_active: u32 = 0;
/// The SIGWINCH action found when ours was installed: called after ours, put back when the
/// last watcher goes (if ours is still the installed one). Written only while ours is not.
var previous: linux.Sigaction = undefined;

/// A console's subscription to SIGWINCH: `fd` becomes readable when the terminal was resized.
pub const Watch = struct {
    index: u8,
    fd: i32,

    /// Clears the pending notifications (the event loop calls this before reading the size).
    pub fn drain(self: Watch) void {
        _ = sys.eventfdDrain(self.fd);
    }

    /// What SIGWINCH does, for this watcher only (krun_set_console_size): the event loop
    /// re-reads the terminal's size.
    pub fn notify(self: Watch) void {
        const one: u64 = 1;
        _ = linux.write(self.fd, std.mem.asBytes(&one), 8);
    }
};

fn lockWatchers() void {
    while (watchers_lock.swap(true, .acquire)) std.atomic.spinLoopHint();
}

fn unlockWatchers() void {
    assert(watchers_lock.swap(false, .release));
}

/// Subscribes to SIGWINCH, installing the process-wide handler with the first subscriber.
/// Null when every watcher slot is taken or the handler cannot be installed: the console then
/// keeps the size it started with.
pub fn watch() ?Watch {
    lockWatchers();
    defer unlockWatchers();
    for (&watchers, 0..) |*w, i| {
        if (w.active.load(.acquire)) continue;
        if (w.fd.load(.acquire) < 0) {
            const fd = sys.eventfd(linux.EFD.NONBLOCK) catch return null;
            w.fd.store(fd, .release);
        }
        if (watchers_active == 0 and !installHandler()) return null;
        _ = sys.eventfdDrain(w.fd.load(.acquire));
        w.active.store(true, .release);
        watchers_active += 1;
        return .{ .index = @intCast(i), .fd = w.fd.load(.acquire) };
    }
    log.warn("more than {d} terminal consoles: SIGWINCH no longer resizes new ones", .{watchers_max});
    return null;
}

/// Ends a subscription; the last one puts back the previous SIGWINCH action, unless someone
/// installed another handler over ours meanwhile (theirs may chain to ours: it stays).
pub fn unwatch(w: Watch) void {
    lockWatchers();
    defer unlockWatchers();
    const slot = &watchers[w.index];
    assert(slot.active.load(.acquire));
    assert(slot.fd.load(.acquire) == w.fd);
    slot.active.store(false, .release);
    watchers_active -= 1;
    if (watchers_active == 0) uninstallHandler();
}

fn installHandler() bool {
    const act: linux.Sigaction = .{
        .handler = .{ .sigaction = onWinch },
        .mask = linux.sigemptyset(),
        // SA_RESTART: other threads of the embedding program see no EINTR from a resize.
        .flags = linux.SA.SIGINFO | linux.SA.RESTART,
    };
    var old: linux.Sigaction = undefined;
    if (linux.errno(linux.sigaction(.WINCH, &act, &old)) != .SUCCESS) return false;
    previous = old;
    return true;
}

fn uninstallHandler() void {
    var current: linux.Sigaction = undefined;
    if (linux.errno(linux.sigaction(.WINCH, null, &current)) != .SUCCESS) return;
    if (current.handler.sigaction != onWinch) return;
    _ = linux.sigaction(.WINCH, &previous, null);
}

/// Async-signal-safe: atomic loads and write(2) on eventfds (raw syscalls leave errno alone).
fn onWinch(sig: linux.SIG, info: *const linux.siginfo_t, ctx: ?*anyopaque) callconv(.c) void {
    const one: u64 = 1;
    for (&watchers) |*w| {
        if (!w.active.load(.acquire)) continue;
        _ = linux.write(w.fd.load(.acquire), std.mem.asBytes(&one), 8);
    }
    if (previous.flags & linux.SA.SIGINFO != 0) {
        if (previous.handler.sigaction) |f| f(sig, info, ctx);
        return;
    }
    const h = previous.handler.handler orelse return; // SIG_DFL: SIGWINCH is ignored
    if (h == linux.SIG.IGN or h == linux.SIG.ERR) return;
    h(sig);
}

// ---- tests ---------------------------------------------------------------------------------

const testing = std.testing;

/// A pty pair for the tests; the master closes last.
pub const TestPty = struct {
    master: i32,
    slave: i32,

    pub fn open() !TestPty {
        const ptmx_rc = linux.open("/dev/ptmx", .{ .ACCMODE = .RDWR, .NOCTTY = true, .CLOEXEC = true }, 0);
        if (linux.errno(ptmx_rc) != .SUCCESS) return error.SkipZigTest;
        const master: i32 = @intCast(ptmx_rc);
        errdefer _ = linux.close(master);
        var unlock: i32 = 0;
        if (linux.errno(linux.ioctl(master, linux.T.IOCSPTLCK, @intFromPtr(&unlock))) != .SUCCESS) return error.SkipZigTest;
        var n: u32 = 0;
        if (linux.errno(linux.ioctl(master, linux.T.IOCGPTN, @intFromPtr(&n))) != .SUCCESS) return error.SkipZigTest;
        var path_buf: [32]u8 = undefined;
        const path = try std.fmt.bufPrintSentinel(&path_buf, "/dev/pts/{d}", .{n}, 0);
        const slave_rc = linux.open(path, .{ .ACCMODE = .RDWR, .NOCTTY = true, .CLOEXEC = true }, 0);
        if (linux.errno(slave_rc) != .SUCCESS) return error.SkipZigTest;
        return .{ .master = master, .slave = @intCast(slave_rc) };
    }

    pub fn setSize(self: TestPty, cols: u16, rows: u16) !void {
        const ws: Winsize = .{ .row = rows, .col = cols, .xpixel = 0, .ypixel = 0 };
        const rc = linux.ioctl(self.slave, linux.T.IOCSWINSZ, @intFromPtr(&ws));
        try testing.expectEqual(linux.E.SUCCESS, linux.errno(rc));
    }

    pub fn close(self: TestPty) void {
        _ = linux.close(self.slave);
        _ = linux.close(self.master);
    }
};

test "termios: the kernel fills exactly our struct, and raw mode is restored byte for byte" {
    const pty = try TestPty.open();
    defer pty.close();
    // TCGETS writes 36 bytes: poison a larger buffer and check nothing past ours changed.
    var buf: [64]u8 = @splat(0xa5);
    const rc = linux.syscall3(.ioctl, @as(u32, @bitCast(pty.slave)), linux.T.CGETS, @intFromPtr(&buf));
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(rc));
    for (buf[@sizeOf(Termios)..]) |b| try testing.expectEqual(@as(u8, 0xa5), b);

    const before = getAttr(pty.slave).?;
    try testing.expect(before.lflag & Flag.ICANON != 0);
    try testing.expect(isatty(pty.slave));
    try testing.expect(!isatty(-1));
    try testing.expectEqual(@as(?i32, pty.slave), terminalFd(&.{ -1, pty.master + 1000, pty.slave }));

    var raw = RawMode.enter(pty.slave).?;
    const now = getAttr(pty.slave).?;
    try testing.expect(now.lflag & (Flag.ICANON | Flag.ECHO | Flag.ISIG) == 0);
    try testing.expect(now.oflag & Flag.OPOST == 0);
    try testing.expectEqual(Flag.CS8, now.cflag & Flag.CSIZE);
    raw.restore();
    try testing.expectEqualSlices(u8, std.mem.asBytes(&before), std.mem.asBytes(&getAttr(pty.slave).?));
    // A second restore must not put back anything (someone else may own the terminal now).
    var other = before;
    other.lflag &= ~Flag.ECHO;
    try testing.expect(setAttr(pty.slave, &other));
    raw.restore();
    try testing.expectEqual(other.lflag, getAttr(pty.slave).?.lflag);
    try testing.expectEqual(@as(?RawMode, null), RawMode.enter(-1));
}

test "window size of a pty" {
    const pty = try TestPty.open();
    defer pty.close();
    try pty.setSize(120, 40);
    try testing.expectEqual(Size{ .cols = 120, .rows = 40 }, windowSize(pty.slave).?);
    try testing.expect(setWindowSize(pty.slave, .{ .cols = 90, .rows = 20 }));
    try testing.expectEqual(Size{ .cols = 90, .rows = 20 }, windowSize(pty.master).?);
    try testing.expect(!setWindowSize(-1, .{ .cols = 1, .rows = 1 }));
    try testing.expectEqual(@as(?Size, null), windowSize(-1));
}

test "SIGWINCH: every watcher is signalled, the previous handler still runs and comes back" {
    const Prev = struct {
        var calls: std.atomic.Value(u32) = .init(0);
        fn handler(_: linux.SIG) callconv(.c) void {
            _ = calls.fetchAdd(1, .monotonic);
        }
    };
    const mine: linux.Sigaction = .{ .handler = .{ .handler = Prev.handler }, .mask = linux.sigemptyset(), .flags = 0 };
    var saved: linux.Sigaction = undefined;
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.sigaction(.WINCH, &mine, &saved)));
    defer _ = linux.sigaction(.WINCH, &saved, null);

    const a = watch().?;
    const b = watch().?;
    try testing.expect(a.fd != b.fd);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.tgkill(linux.getpid(), linux.gettid(), .WINCH)));
    try testing.expectEqual(@as(u64, 1), sys.eventfdDrain(a.fd));
    try testing.expectEqual(@as(u64, 1), sys.eventfdDrain(b.fd));
    try testing.expectEqual(@as(u32, 1), Prev.calls.load(.monotonic));
    unwatch(a);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.tgkill(linux.getpid(), linux.gettid(), .WINCH)));
    try testing.expectEqual(@as(u64, 0), sys.eventfdDrain(a.fd));
    try testing.expectEqual(@as(u64, 1), sys.eventfdDrain(b.fd));
    unwatch(b);
    var now: linux.Sigaction = undefined;
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.sigaction(.WINCH, null, &now)));
    try testing.expect(now.handler.handler == Prev.handler);
    // A slot is reused with its eventfd, and nothing stale is pending on it.
    const c = watch().?;
    try testing.expectEqual(@as(u64, 0), sys.eventfdDrain(c.fd));
    unwatch(c);
    try testing.expectEqual(@as(u32, 2), Prev.calls.load(.monotonic));
}
