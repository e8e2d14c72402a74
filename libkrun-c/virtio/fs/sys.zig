//! The host syscalls the virtio-fs server makes, as thin raw wrappers (x86_64 and aarch64 Linux).
//! The convention is the one of all three syscall layers (libkrun-c/sys/errno.zig,
//! CONTRIBUTING.md "System calls"): each wrapper returns `Error!T`, one error per errno
//! (error.NOENT, ...), and the server replies `errnoOf(err)` to the guest, the exact errno the
//! host gave. Paths are always a single name relative to a directory fd the server holds, or ""
//! with AT_EMPTY_PATH: the server never resolves a host path string.
const std = @import("std");
const builtin = @import("builtin");
const linux = std.os.linux;
const errno = @import("sys_errno");

/// The backend the server calls (`@import("sys.zig").backend`): this file's raw Linux
/// syscalls, or libc through sys_posix.zig on macOS and in the Linux test builds whose root
/// declares `zkrun_fs_posix` (tests/zig/fs/posix_runner.zig).
pub const posix = builtin.os.tag == .macos or @hasDecl(@import("root"), "zkrun_fs_posix");
pub const backend = if (posix) @import("sys_posix.zig") else @This();

pub const E = linux.E;
pub const fd_t = i32;

/// A failed call's errno as a Zig error; `errnoOf` gives the number back for the reply.
pub const Error = errno.Error;
pub const errnoOf = errno.errnoOf;

const is_arm64 = builtin.cpu.arch == .aarch64;

/// open(2) flags (x86_64 values, but for the four arm64 moves).
pub const O = struct {
    pub const RDONLY = 0;
    pub const WRONLY = 1;
    pub const RDWR = 2;
    pub const ACCMODE = 3;
    pub const CREAT = 0o100;
    pub const EXCL = 0o200;
    pub const NOCTTY = 0o400;
    pub const TRUNC = 0o1000;
    pub const APPEND = 0o2000;
    pub const NONBLOCK = 0o4000;
    pub const DSYNC = 0o10000;
    // These four differ per architecture (the host's and, under KVM, the guest's: one value).
    pub const DIRECT = if (is_arm64) 0o200000 else 0o40000;
    pub const LARGEFILE = if (is_arm64) 0o400000 else 0o100000;
    pub const DIRECTORY = if (is_arm64) 0o40000 else 0o200000;
    pub const NOFOLLOW = if (is_arm64) 0o100000 else 0o400000;
    pub const NOATIME = 0o1000000;
    pub const CLOEXEC = 0o2000000;
    pub const SYNC = 0o4010000;
    pub const PATH = 0o10000000;
    pub const TMPFILE = 0o20200000;
};

pub const AT = linux.AT;
pub const S = linux.S;

/// The kernel's `struct stat` as newfstatat fills it: its layout differs per architecture
/// (x86_64's own; aarch64 uses asm-generic's, with a 32-bit nlink and blksize), so a wrong one
/// hands the guest garbage modes and sizes.
pub const Stat = switch (builtin.cpu.arch) {
    .x86_64 => StatX86_64,
    .aarch64 => StatGeneric,
    else => @compileError("virtio-fs: no struct stat layout for this architecture"),
};

/// x86_64 `struct stat` (arch/x86/include/uapi/asm/stat.h).
pub const StatX86_64 = extern struct {
    dev: u64,
    ino: u64,
    nlink: u64,
    mode: u32,
    uid: u32,
    gid: u32,
    pad0: u32,
    rdev: u64,
    size: i64,
    blksize: i64,
    blocks: i64,
    atime: i64,
    atime_nsec: i64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
    unused: [3]i64,
};

/// asm-generic `struct stat` on 64-bit (include/uapi/asm-generic/stat.h; arm64).
pub const StatGeneric = extern struct {
    dev: u64,
    ino: u64,
    mode: u32,
    nlink: u32,
    uid: u32,
    gid: u32,
    rdev: u64,
    pad1: u64,
    size: i64,
    blksize: i32,
    pad2: i32,
    blocks: i64,
    atime: i64,
    atime_nsec: i64,
    mtime: i64,
    mtime_nsec: i64,
    ctime: i64,
    ctime_nsec: i64,
    unused: [2]u32,
};

comptime {
    std.debug.assert(@sizeOf(StatX86_64) == 144 and @offsetOf(StatX86_64, "mode") == 24 and @offsetOf(StatX86_64, "size") == 48);
    std.debug.assert(@sizeOf(StatGeneric) == 128 and @offsetOf(StatGeneric, "mode") == 16 and @offsetOf(StatGeneric, "size") == 48 and @offsetOf(StatGeneric, "blocks") == 64 and @offsetOf(StatGeneric, "atime") == 72);
}

/// 64-bit `struct statfs`: the same on x86_64 and asm-generic (arm64).
pub const Statfs = extern struct {
    type: i64,
    bsize: i64,
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    fsid: [2]i32,
    namelen: i64,
    frsize: i64,
    flags: i64,
    spare: [4]i64,
};

comptime {
    std.debug.assert(@sizeOf(Statfs) == 120);
}

pub const check = errno.check;

/// The error of errno `e`, for a reply whose errno is chosen at run time.
pub fn fail(e: E) Error {
    return errno.errorOf(e);
}

fn int(fd: fd_t) usize {
    return @bitCast(@as(isize, fd));
}

pub fn openat(dir: fd_t, name: [*:0]const u8, flags: u32, mode: u32) Error!fd_t {
    const rc = try check(linux.syscall4(.openat, int(dir), @intFromPtr(name), flags, mode));
    return @intCast(rc);
}

pub fn close(fd: fd_t) void {
    std.debug.assert(fd >= 0); // tidy: fds are ours
    _ = linux.syscall1(.close, int(fd));
}

pub fn fstatat(dir: fd_t, name: [*:0]const u8, flags: u32) Error!Stat {
    var st: Stat = undefined;
    _ = try check(linux.syscall4(.newfstatat, int(dir), @intFromPtr(name), @intFromPtr(&st), flags));
    return st;
}

/// stat of the inode behind any fd, O_PATH included.
pub fn fstat(fd: fd_t) Error!Stat {
    return fstatat(fd, "", AT.EMPTY_PATH | AT.SYMLINK_NOFOLLOW);
}

pub fn fstatfs(fd: fd_t) Error!Statfs {
    var st: Statfs = undefined;
    _ = try check(linux.syscall2(.fstatfs, int(fd), @intFromPtr(&st)));
    return st;
}

pub fn readlinkat(dir: fd_t, name: [*:0]const u8, buf: []u8) Error!usize {
    return check(linux.syscall4(.readlinkat, int(dir), @intFromPtr(name), @intFromPtr(buf.ptr), buf.len));
}

pub fn mkdirat(dir: fd_t, name: [*:0]const u8, mode: u32) Error!void {
    _ = try check(linux.syscall3(.mkdirat, int(dir), @intFromPtr(name), mode));
}

pub fn mknodat(dir: fd_t, name: [*:0]const u8, mode: u32, dev: u32) Error!void {
    _ = try check(linux.syscall4(.mknodat, int(dir), @intFromPtr(name), mode, dev));
}

pub fn symlinkat(target: [*:0]const u8, dir: fd_t, name: [*:0]const u8) Error!void {
    _ = try check(linux.syscall3(.symlinkat, @intFromPtr(target), int(dir), @intFromPtr(name)));
}

pub fn unlinkat(dir: fd_t, name: [*:0]const u8, flags: u32) Error!void {
    _ = try check(linux.syscall3(.unlinkat, int(dir), @intFromPtr(name), flags));
}

pub fn renameat2(old_dir: fd_t, old: [*:0]const u8, new_dir: fd_t, new: [*:0]const u8, flags: u32) Error!void {
    _ = try check(linux.syscall5(.renameat2, int(old_dir), @intFromPtr(old), int(new_dir), @intFromPtr(new), flags));
}

pub fn linkat(old_dir: fd_t, old: [*:0]const u8, new_dir: fd_t, new: [*:0]const u8, flags: u32) Error!void {
    _ = try check(linux.syscall5(.linkat, int(old_dir), @intFromPtr(old), int(new_dir), @intFromPtr(new), flags));
}

pub fn fchownat(fd: fd_t, name: [*:0]const u8, uid: u32, gid: u32, flags: u32) Error!void {
    _ = try check(linux.syscall5(.fchownat, int(fd), @intFromPtr(name), uid, gid, flags));
}

pub fn fchmodat(dir: fd_t, name: [*:0]const u8, mode: u32) Error!void {
    _ = try check(linux.syscall3(.fchmodat, int(dir), @intFromPtr(name), mode));
}

pub fn fchmod(fd: fd_t, mode: u32) Error!void {
    _ = try check(linux.syscall2(.fchmod, int(fd), mode));
}

pub fn utimensat(dir: fd_t, name: [*:0]const u8, times: *const [2]linux.timespec, flags: u32) Error!void {
    _ = try check(linux.syscall4(.utimensat, int(dir), @intFromPtr(name), @intFromPtr(times), flags));
}

pub fn ftruncate(fd: fd_t, len: u64) Error!void {
    _ = try check(linux.syscall2(.ftruncate, int(fd), len));
}

pub fn pread(fd: fd_t, buf: []u8, off: u64) Error!usize {
    return check(linux.syscall4(.pread64, int(fd), @intFromPtr(buf.ptr), buf.len, off));
}

pub fn pwrite(fd: fd_t, buf: []const u8, off: u64) Error!usize {
    return check(linux.syscall4(.pwrite64, int(fd), @intFromPtr(buf.ptr), buf.len, off));
}

/// preadv/pwritev: the offset travels as (low, high) words; on 64-bit targets low holds it all.
pub fn preadv(fd: fd_t, iov: []const std.posix.iovec, off: u64) Error!usize {
    return check(linux.syscall5(.preadv, int(fd), @intFromPtr(iov.ptr), iov.len, off, 0));
}

pub fn pwritev(fd: fd_t, iov: []const std.posix.iovec, off: u64) Error!usize {
    return check(linux.syscall5(.pwritev, int(fd), @intFromPtr(iov.ptr), iov.len, off, 0));
}

pub fn fsync(fd: fd_t, data_only: bool) Error!void {
    _ = try check(linux.syscall1(if (data_only) .fdatasync else .fsync, int(fd)));
}

pub fn syncfs(fd: fd_t) Error!void {
    _ = try check(linux.syscall1(.syncfs, int(fd)));
}

pub fn lseek(fd: fd_t, off: i64, whence: u32) Error!u64 {
    return check(linux.syscall3(.lseek, int(fd), @bitCast(off), whence));
}

pub fn getdents64(fd: fd_t, buf: []u8) Error!usize {
    return check(linux.syscall3(.getdents64, int(fd), @intFromPtr(buf.ptr), buf.len));
}

pub fn fallocate(fd: fd_t, mode: u32, off: u64, len: u64) Error!void {
    _ = try check(linux.syscall4(.fallocate, int(fd), mode, off, len));
}

pub fn copyFileRange(fd_in: fd_t, off_in: *i64, fd_out: fd_t, off_out: *i64, len: usize, flags: u32) Error!usize {
    return check(linux.syscall6(.copy_file_range, int(fd_in), @intFromPtr(off_in), int(fd_out), @intFromPtr(off_out), len, flags));
}

pub fn fcntlLock(fd: fd_t, cmd: u32, lock: *linux.Flock) Error!void {
    _ = try check(linux.syscall3(.fcntl, int(fd), cmd, @intFromPtr(lock)));
}

pub fn faccessat(dir: fd_t, name: [*:0]const u8, mode: u32, flags: u32) Error!void {
    _ = try check(linux.syscall4(.faccessat2, int(dir), @intFromPtr(name), mode, flags));
}

pub fn getxattr(path: [*:0]const u8, name: [*:0]const u8, buf: []u8) Error!usize {
    return check(linux.syscall4(.getxattr, @intFromPtr(path), @intFromPtr(name), @intFromPtr(buf.ptr), buf.len));
}

pub fn setxattr(path: [*:0]const u8, name: [*:0]const u8, value: []const u8, flags: u32) Error!void {
    _ = try check(linux.syscall5(.setxattr, @intFromPtr(path), @intFromPtr(name), @intFromPtr(value.ptr), value.len, flags));
}

pub fn listxattr(path: [*:0]const u8, buf: []u8) Error!usize {
    return check(linux.syscall3(.listxattr, @intFromPtr(path), @intFromPtr(buf.ptr), buf.len));
}

pub fn removexattr(path: [*:0]const u8, name: [*:0]const u8) Error!void {
    _ = try check(linux.syscall2(.removexattr, @intFromPtr(path), @intFromPtr(name)));
}

pub fn geteuid() u32 {
    return @intCast(linux.syscall0(.geteuid));
}

/// Raises RLIMIT_NOFILE's soft limit to its hard limit: every inode the guest looks up holds
/// an fd (as libkrun hosts do at start).
pub fn raiseNofile() void {
    var lim: linux.rlimit = undefined;
    if (linux.errno(linux.getrlimit(.NOFILE, &lim)) != .SUCCESS) return;
    if (lim.cur >= lim.max) return;
    lim.cur = lim.max;
    _ = linux.setrlimit(.NOFILE, &lim);
}

/// "/proc/self/fd/<fd>" for calls that have no fd or AT_EMPTY_PATH form (xattrs): the kernel
/// resolves the magic link to exactly the inode the O_PATH fd holds, never by name.
pub const ProcPath = struct {
    buf: [32]u8 = undefined,

    pub fn of(self: *ProcPath, fd: fd_t) [*:0]const u8 {
        const s = std.mem.printSentinel(&self.buf, "/proc/self/fd/{d}", .{fd}, 0) catch unreachable; // tidy: an integer always fits the buffer
        return s.ptr;
    }

    /// Just "<fd>", relative to an open /proc/self/fd directory.
    pub fn name(self: *ProcPath, fd: fd_t) [*:0]const u8 {
        const s = std.mem.printSentinel(&self.buf, "{d}", .{fd}, 0) catch unreachable; // tidy: an integer always fits the buffer
        return s.ptr;
    }
};

test "fstat through an O_PATH fd" {
    const fd = try openat(AT.FDCWD, "/", O.PATH | O.NOFOLLOW | O.CLOEXEC, 0);
    defer close(fd);
    const st = try fstat(fd);
    try std.testing.expect(st.mode & S.IFMT == S.IFDIR);
    try std.testing.expectError(error.NOENT, openat(fd, "does-not-exist-zkrun", O.PATH, 0));
    try std.testing.expectEqual(E.NOENT, errnoOf(error.NOENT));
}
