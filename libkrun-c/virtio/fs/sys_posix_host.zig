//! The posix virtio-fs backend's host side (sys_posix.zig's calls sit on it): the host's libc
//! values and calls, macOS's or glibc's (the Linux test builds), their struct layouts checked
//! at compile time against Apple's header values, and the translations between the guest's
//! Linux values and the host's: host errno → Linux errno, Linux open/AT flags and UTIME values
//! → the host's, a host stat/statvfs → the Linux-shaped `Stat`/`Statfs` the server reads.
const std = @import("std");
const builtin = @import("builtin");
const linux = std.os.linux;
const c = std.c;
const linux_sys = @import("sys.zig");

const is_macos = builtin.os.tag == .macos;

const E = linux.E;
const Error = linux_sys.Error;
const fail = linux_sys.fail;
const O = linux_sys.O;
const AT = linux.AT;
const Stat = linux_sys.StatX86_64;
const Statfs = linux_sys.Statfs;
const ProcPath = linux_sys.ProcPath;

/// The host errno of the call that just failed, as Linux's.
pub fn failHost() Error {
    return fail(linuxErrno(@backingInt(c.errno(-1))));
}

pub fn checkInt(rc: anytype) Error!@TypeOf(rc) {
    if (rc < 0) return failHost();
    return rc;
}

// ---- the host: macOS, or glibc (Linux test builds) ------------------------------------------

pub const host = if (is_macos) Mac else Glibc;

/// macOS values (Apple's <sys/fcntl.h>, <sys/stat.h>, <sys/xattr.h>, <stdio.h>, <unistd.h>);
/// comptime-checked against Zig's own darwin definitions below.
const Mac = struct {
    pub const o_nonblock = 0x4;
    pub const o_append = 0x8;
    pub const o_sync = 0x80;
    pub const o_nofollow = 0x100;
    pub const o_creat = 0x200;
    pub const o_trunc = 0x400;
    pub const o_excl = 0x800;
    pub const o_noctty = 0x20000;
    pub const o_directory = 0x100000;
    pub const o_dsync = 0x400000;
    pub const o_cloexec = 0x1000000;
    pub const at_fdcwd = -2;
    pub const at_symlink_nofollow = 0x20;
    pub const at_symlink_follow = 0x40;
    pub const at_removedir = 0x80;
    pub const utime_now = -1;
    pub const utime_omit = -2;
    pub const seek_hole = 3;
    pub const seek_data = 4;
    pub const f_dupfd_cloexec = 67;
    pub const f_getpath = 50;
    pub const f_preallocate = 42;
    pub const f_allocateall = 4;
    pub const f_peofposmode = 3;
    pub const xattr_nofollow = 1;
    pub const xattr_create = 2;
    pub const xattr_replace = 4;
    pub const rename_swap = 2;
    pub const rename_excl = 4;
    pub const path_max = 1024;

    /// <sys/statvfs.h>: fsblkcnt_t and fsfilcnt_t are 32-bit on macOS.
    pub const Statvfs = extern struct {
        bsize: c_ulong,
        frsize: c_ulong,
        blocks: u32,
        bfree: u32,
        bavail: u32,
        files: u32,
        ffree: u32,
        favail: u32,
        fsid: c_ulong,
        flag: c_ulong,
        namemax: c_ulong,
    };
    /// <sys/fcntl.h> fstore_t (F_PREALLOCATE).
    pub const Fstore = extern struct { flags: u32, posmode: i32, offset: i64, length: i64, bytesalloc: i64 };

    pub extern "c" fn fstatvfs(fd: c_int, buf: *Statvfs) c_int;
    pub extern "c" fn fgetxattr(fd: c_int, name: [*:0]const u8, value: ?[*]u8, size: usize, position: u32, options: c_int) isize;
    pub extern "c" fn fsetxattr(fd: c_int, name: [*:0]const u8, value: [*]const u8, size: usize, position: u32, options: c_int) c_int;
    pub extern "c" fn flistxattr(fd: c_int, namebuf: ?[*]u8, size: usize, options: c_int) isize;
    pub extern "c" fn fremovexattr(fd: c_int, name: [*:0]const u8, options: c_int) c_int;
    pub extern "c" fn renameatx_np(fromfd: c_int, from: [*:0]const u8, tofd: c_int, to: [*:0]const u8, flags: c_uint) c_int;
    pub extern "c" fn mkfifoat(fd: c_int, path: [*:0]const u8, mode: c.mode_t) c_int;
    pub const mknodatC = @extern(*const fn (c_int, [*:0]const u8, c.mode_t, c.dev_t) callconv(.c) c_int, .{ .name = "mknodat" });

    pub fn statAt(dir: c_int, name: [*:0]const u8, flags: u32) Error!Stat {
        var st: c.Stat = undefined;
        _ = try checkInt(c.fstatat(dir, name, &st, flags));
        return fromStat(&st);
    }

    pub fn statFd(fd: c_int) Error!Stat {
        var st: c.Stat = undefined;
        _ = try checkInt(c.fstat(fd, &st));
        return fromStat(&st);
    }

    pub fn fromStat(st: *const c.Stat) Stat {
        const d: u32 = @bitCast(st.rdev);
        return common(st, encodeDev(d >> 24, d & 0xff_ffff));
    }

    pub fn statvfs(fd: c_int) Error!Statfs {
        var v: Statvfs = undefined;
        _ = try checkInt(fstatvfs(fd, &v));
        return statfsOf(&v);
    }

    pub fn getxattr(fd: c_int, name: [*:0]const u8, buf: []u8) isize {
        return fgetxattr(fd, name, if (buf.len == 0) null else buf.ptr, buf.len, 0, 0);
    }
    pub fn setxattr(fd: c_int, name: [*:0]const u8, value: []const u8, flags: c_int) c_int {
        return fsetxattr(fd, name, value.ptr, value.len, 0, flags);
    }
    pub fn listxattr(fd: c_int, buf: []u8) isize {
        return flistxattr(fd, if (buf.len == 0) null else buf.ptr, buf.len, 0);
    }
    pub fn removexattr(fd: c_int, name: [*:0]const u8) c_int {
        return fremovexattr(fd, name, 0);
    }

    pub fn renameFlags(od: c_int, old: [*:0]const u8, nd: c_int, new: [*:0]const u8, noreplace: bool, exchange: bool) c_int {
        const flags: c_uint = @as(c_uint, if (noreplace) rename_excl else 0) | @as(c_uint, if (exchange) rename_swap else 0);
        return renameatx_np(od, old, nd, new, flags);
    }

    /// The path the fd's vnode has now (the kernel's name cache; a path, not a handle).
    pub fn fdPath(fd: c_int, buf: *[path_max]u8) Error![*:0]const u8 {
        _ = try checkInt(c.fcntl(fd, f_getpath, buf));
        return @ptrCast(buf);
    }

    /// FALLOCATE mode 0 or KEEP_SIZE: reserve the blocks (from the physical end of file, as
    /// F_PREALLOCATE only can), then extend the size unless KEEP_SIZE.
    pub fn allocate(fd: c_int, keep_size: bool, off: u64, len: u64) Error!void {
        const end = std.math.add(u64, off, len) catch return fail(.FBIG);
        if (end > std.math.maxInt(i64)) return fail(.FBIG);
        const st = try statFd(fd);
        const size: u64 = @bitCast(st.size);
        if (end <= size) return;
        var fs: Fstore = .{ .flags = f_allocateall, .posmode = f_peofposmode, .offset = 0, .length = @intCast(end - size), .bytesalloc = 0 };
        _ = try checkInt(c.fcntl(fd, f_preallocate, &fs));
        if (!keep_size) _ = try checkInt(c.ftruncate(fd, @intCast(end)));
    }

    pub fn fsync(fd: c_int, data_only: bool) c_int {
        _ = data_only; // macOS: fsync (F_FULLFSYNC would also flush the drive's cache)
        return c.fsync(fd);
    }

    pub fn mknodWhiteout(dir: c_int, name: [*:0]const u8, mode: u32) c_int {
        return mknodatC(dir, name, @intCast(mode), 0);
    }
    pub fn mkfifo(dir: c_int, name: [*:0]const u8, mode: u32) c_int {
        return mkfifoat(dir, name, @intCast(mode));
    }
};

/// glibc on Linux (only the test builds use this backend there): Linux values, glibc's
/// `struct stat` is the kernel's (sys.zig's Stat).
const Glibc = struct {
    pub const o_nonblock = O.NONBLOCK;
    pub const o_append = O.APPEND;
    pub const o_sync = O.SYNC;
    pub const o_nofollow = O.NOFOLLOW;
    pub const o_creat = O.CREAT;
    pub const o_trunc = O.TRUNC;
    pub const o_excl = O.EXCL;
    pub const o_noctty = O.NOCTTY;
    pub const o_directory = O.DIRECTORY;
    pub const o_dsync = O.DSYNC;
    pub const o_cloexec = O.CLOEXEC;
    pub const at_fdcwd = AT.FDCWD;
    pub const at_symlink_nofollow = AT.SYMLINK_NOFOLLOW;
    pub const at_symlink_follow = AT.SYMLINK_FOLLOW;
    pub const at_removedir = AT.REMOVEDIR;
    pub const utime_now = (1 << 30) - 1;
    pub const utime_omit = (1 << 30) - 2;
    pub const seek_hole = 4;
    pub const seek_data = 3;
    pub const f_dupfd_cloexec = 1030;
    pub const xattr_create = 1;
    pub const xattr_replace = 2;
    pub const path_max = 4096;

    pub const Statvfs = extern struct {
        bsize: c_ulong,
        frsize: c_ulong,
        blocks: u64,
        bfree: u64,
        bavail: u64,
        files: u64,
        ffree: u64,
        favail: u64,
        fsid: c_ulong,
        flag: c_ulong,
        namemax: c_ulong,
        spare: [6]c_int,
    };

    pub const KStat = linux_sys.Stat;
    pub const fstatatC = @extern(*const fn (c_int, [*:0]const u8, *KStat, c_int) callconv(.c) c_int, .{ .name = "fstatat" });
    pub const fstatC = @extern(*const fn (c_int, *KStat) callconv(.c) c_int, .{ .name = "fstat" });
    pub extern "c" fn fstatvfs(fd: c_int, buf: *Statvfs) c_int;
    pub extern "c" fn fgetxattr(fd: c_int, name: [*:0]const u8, value: ?[*]u8, size: usize) isize;
    pub extern "c" fn fsetxattr(fd: c_int, name: [*:0]const u8, value: [*]const u8, size: usize, flags: c_int) c_int;
    pub extern "c" fn flistxattr(fd: c_int, list: ?[*]u8, size: usize) isize;
    pub extern "c" fn fremovexattr(fd: c_int, name: [*:0]const u8) c_int;
    pub const renameat2C = @extern(*const fn (c_int, [*:0]const u8, c_int, [*:0]const u8, c_uint) callconv(.c) c_int, .{ .name = "renameat2" });
    pub extern "c" fn mkfifoat(fd: c_int, path: [*:0]const u8, mode: c_uint) c_int;
    pub const mknodatC = @extern(*const fn (c_int, [*:0]const u8, c_uint, u64) callconv(.c) c_int, .{ .name = "mknodat" });
    pub const fallocateC = @extern(*const fn (c_int, c_int, i64, i64) callconv(.c) c_int, .{ .name = "fallocate" });
    pub extern "c" fn fdatasync(fd: c_int) c_int;

    pub fn statAt(dir: c_int, name: [*:0]const u8, flags: u32) Error!Stat {
        var st: KStat = undefined;
        _ = try checkInt(fstatatC(dir, name, &st, @intCast(flags)));
        return fromStat(&st);
    }

    pub fn statFd(fd: c_int) Error!Stat {
        var st: KStat = undefined;
        _ = try checkInt(fstatC(fd, &st));
        return fromStat(&st);
    }

    pub fn fromStat(st: *const KStat) Stat {
        return .{
            .dev = st.dev,
            .ino = st.ino,
            .nlink = st.nlink,
            .mode = st.mode,
            .uid = st.uid,
            .gid = st.gid,
            // glibc's dev_t: the low 32 bits are new_encode_dev() for the usual numbers.
            .rdev = @as(u32, @truncate(st.rdev)),
            .size = st.size,
            .blksize = st.blksize,
            .blocks = st.blocks,
            .atime = st.atime,
            .atime_nsec = st.atime_nsec,
            .mtime = st.mtime,
            .mtime_nsec = st.mtime_nsec,
            .ctime = st.ctime,
            .ctime_nsec = st.ctime_nsec,
            .pad0 = 0,
            .unused = @splat(0),
        };
    }

    pub fn statvfs(fd: c_int) Error!Statfs {
        var v: Statvfs = undefined;
        _ = try checkInt(fstatvfs(fd, &v));
        return statfsOf(&v);
    }

    pub fn getxattr(fd: c_int, name: [*:0]const u8, buf: []u8) isize {
        return fgetxattr(fd, name, if (buf.len == 0) null else buf.ptr, buf.len);
    }
    pub fn setxattr(fd: c_int, name: [*:0]const u8, value: []const u8, flags: c_int) c_int {
        return fsetxattr(fd, name, value.ptr, value.len, flags);
    }
    pub fn listxattr(fd: c_int, buf: []u8) isize {
        return flistxattr(fd, if (buf.len == 0) null else buf.ptr, buf.len);
    }
    pub fn removexattr(fd: c_int, name: [*:0]const u8) c_int {
        return fremovexattr(fd, name);
    }

    pub fn renameFlags(od: c_int, old: [*:0]const u8, nd: c_int, new: [*:0]const u8, noreplace: bool, exchange: bool) c_int {
        const flags: c_uint = @as(c_uint, if (noreplace) 1 else 0) | @as(c_uint, if (exchange) 2 else 0);
        return renameat2C(od, old, nd, new, flags);
    }

    /// The path the fd's inode has now: the target text of its /proc magic link (used as a
    /// path, as macOS's F_GETPATH result is, never followed as the magic link).
    pub fn fdPath(fd: c_int, buf: *[path_max]u8) Error![*:0]const u8 {
        var p: ProcPath = .{};
        const n = try checkInt(c.readlinkat(c.AT.FDCWD, p.of(fd), buf, buf.len - 1));
        buf[@intCast(n)] = 0;
        return @ptrCast(buf);
    }

    pub fn allocate(fd: c_int, keep_size: bool, off: u64, len: u64) Error!void {
        _ = try checkInt(fallocateC(fd, if (keep_size) 1 else 0, @bitCast(off), @bitCast(len)));
    }

    pub fn fsync(fd: c_int, data_only: bool) c_int {
        return if (data_only) fdatasync(fd) else c.fsync(fd);
    }

    pub fn mknodWhiteout(dir: c_int, name: [*:0]const u8, mode: u32) c_int {
        return mknodatC(dir, name, mode, 0);
    }
    pub fn mkfifo(dir: c_int, name: [*:0]const u8, mode: u32) c_int {
        return mkfifoat(dir, name, mode);
    }
};

/// A host statvfs (either host's: the same names) as the Linux statfs STATFS replies.
pub fn statfsOf(v: anytype) Statfs {
    var out = std.mem.zeroes(Statfs);
    out.bsize = @intCast(v.bsize);
    out.frsize = @intCast(v.frsize);
    out.namelen = @intCast(v.namemax);
    inline for (.{ "blocks", "bfree", "bavail", "files", "ffree" }) |f| @field(out, f) = @field(v, f);
    return out;
}

/// A macOS stat in Linux's terms.
pub fn common(st: *const c.Stat, rdev: u32) Stat {
    const a = st.atime();
    const m = st.mtime();
    const ct = st.ctime();
    return .{
        .dev = @as(u64, @bitCast(@as(i64, st.dev))),
        .ino = st.ino,
        .nlink = st.nlink,
        .mode = st.mode,
        .uid = st.uid,
        .gid = st.gid,
        .rdev = rdev,
        .size = st.size,
        .blksize = st.blksize,
        .blocks = st.blocks,
        .atime = a.sec,
        .atime_nsec = a.nsec,
        .mtime = m.sec,
        .mtime_nsec = m.nsec,
        .ctime = ct.sec,
        .ctime_nsec = ct.nsec,
        .pad0 = 0,
        .unused = @splat(0),
    };
}

/// The kernel's new_encode_dev(): what a Linux stat's st_rdev (32 bits) holds.
pub fn encodeDev(major: u32, minor: u32) u32 {
    return (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~@as(u32, 0xff)) << 12);
}

// ---- errno and flag translation -------------------------------------------------------------

/// Host errno → Linux errno, by name (the POSIX names are shared; a macOS-only one maps to the
/// Linux errno libkrun's linux_errno.rs gives it, else EIO).
pub fn linuxErrno(host_errno: u16) E {
    return errno_table[@min(host_errno, errno_table.len - 1)];
}

const errno_table = blk: {
    const HostE = c.E;
    var max: usize = 0;
    const info = @typeInfo(HostE).@"enum";
    for (info.field_values) |v| max = @max(max, v);
    var t: [max + 2]E = @splat(.IO);
    @setEvalBranchQuota(100_000);
    for (info.field_names, info.field_values) |name, v| {
        t[v] = if (@hasField(E, name)) @field(E, name) else linuxOnlyName(name);
    }
    t[0] = .SUCCESS;
    // macOS has ENOTSUP (45; Zig's darwin enum names it OPNOTSUPP) and, for sockets,
    // EOPNOTSUPP (102, unnamed there): both are Linux's EOPNOTSUPP.
    if (is_macos) t[102] = .OPNOTSUPP;
    break :blk t;
};

fn linuxOnlyName(comptime name: []const u8) E {
    const pairs = .{
        .{ "NOATTR", E.NODATA }, // a missing xattr
        .{ "FTYPE", E.INVAL },
        .{ "NEEDAUTH", E.PERM },
        .{ "AUTH", E.PERM },
        .{ "PWROFF", E.IO },
        .{ "DEVERR", E.IO },
        .{ "BADEXEC", E.NOEXEC },
        .{ "BADARCH", E.NOEXEC },
        .{ "SHLIBVERS", E.NOEXEC },
        .{ "BADMACHO", E.NOEXEC },
        .{ "NOPOLICY", E.PERM },
        .{ "QFULL", E.AGAIN },
        .{ "PROCLIM", E.AGAIN },
        .{ "BADRPC", E.IO },
        .{ "RPCMISMATCH", E.IO },
        .{ "PROGUNAVAIL", E.IO },
        .{ "PROGMISMATCH", E.IO },
        .{ "PROCUNAVAIL", E.IO },
    };
    inline for (pairs) |p| if (std.mem.eql(u8, p[0], name)) return p[1];
    return .IO;
}

/// Linux open flags (the guest's and the server's) → the host's. O_PATH is handled apart;
/// O_TMPFILE and O_DIRECT have no host form (the server passes neither).
pub fn hostOpenFlags(flags: u32) Error!c_int {
    if (flags & O.TMPFILE == O.TMPFILE) return fail(.OPNOTSUPP);
    if (flags & O.DIRECT != 0) return fail(.INVAL);
    var h: c_int = @intCast(flags & O.ACCMODE);
    const pairs = [_][2]c_int{
        .{ O.NONBLOCK, host.o_nonblock },   .{ O.APPEND, host.o_append },     .{ O.CREAT, host.o_creat },
        .{ O.TRUNC, host.o_trunc },         .{ O.EXCL, host.o_excl },         .{ O.NOCTTY, host.o_noctty },
        .{ O.DIRECTORY, host.o_directory }, .{ O.NOFOLLOW, host.o_nofollow }, .{ O.CLOEXEC, host.o_cloexec },
    };
    for (pairs) |p| if (flags & @as(u32, @intCast(p[0])) != 0) {
        h |= p[1];
    };
    // O_SYNC contains O_DSYNC's bit on Linux.
    if (flags & O.SYNC == O.SYNC) h |= host.o_sync else if (flags & O.DSYNC != 0) h |= host.o_dsync;
    const known: u32 = O.ACCMODE | O.NONBLOCK | O.APPEND | O.CREAT | O.TRUNC | O.EXCL | O.NOCTTY | O.DIRECTORY |
        O.NOFOLLOW | O.CLOEXEC | O.SYNC | O.LARGEFILE | O.NOATIME;
    if (flags & ~known != 0) return fail(.INVAL);
    return h;
}

pub fn hostAtFlags(flags: u32) Error!u32 {
    var h: u32 = 0;
    if (flags & AT.SYMLINK_NOFOLLOW != 0) h |= host.at_symlink_nofollow;
    if (flags & AT.SYMLINK_FOLLOW != 0) h |= host.at_symlink_follow;
    if (flags & AT.REMOVEDIR != 0) h |= host.at_removedir;
    if (flags & ~@as(u32, AT.SYMLINK_NOFOLLOW | AT.SYMLINK_FOLLOW | AT.REMOVEDIR) != 0) return fail(.INVAL);
    return h;
}

pub fn hostTime(t: linux.timespec) c.timespec {
    const now = (1 << 30) - 1;
    const omit = (1 << 30) - 2;
    return switch (t.nsec) {
        now => .{ .sec = 0, .nsec = host.utime_now },
        omit => .{ .sec = 0, .nsec = host.utime_omit },
        else => .{ .sec = @intCast(t.sec), .nsec = @intCast(t.nsec) },
    };
}

// ---- checks ---------------------------------------------------------------------------------

// Apple's header values, against Zig's independent darwin definitions (compiled into every
// macOS build: tests/native/cross-macos.sh builds it; nothing here runs on a Mac).
comptime {
    if (is_macos) {
        const hO = struct {
            fn v(comptime f: []const u8) c_int {
                var o: c.O = .{};
                @field(o, f) = true;
                return @bitCast(@as(u32, @bitCast(o)));
            }
        };
        std.debug.assert(hO.v("NONBLOCK") == Mac.o_nonblock and hO.v("APPEND") == Mac.o_append and hO.v("CREAT") == Mac.o_creat);
        std.debug.assert(hO.v("TRUNC") == Mac.o_trunc and hO.v("EXCL") == Mac.o_excl and hO.v("NOCTTY") == Mac.o_noctty);
        std.debug.assert(hO.v("DIRECTORY") == Mac.o_directory and hO.v("NOFOLLOW") == Mac.o_nofollow and hO.v("CLOEXEC") == Mac.o_cloexec);
        std.debug.assert(hO.v("SYNC") == Mac.o_sync and hO.v("DSYNC") == Mac.o_dsync);
        std.debug.assert(c.AT.FDCWD == Mac.at_fdcwd and c.AT.SYMLINK_NOFOLLOW == Mac.at_symlink_nofollow);
        std.debug.assert(c.AT.SYMLINK_FOLLOW == Mac.at_symlink_follow and c.AT.REMOVEDIR == Mac.at_removedir);
        std.debug.assert(c.F.DUPFD_CLOEXEC == Mac.f_dupfd_cloexec and c.F.GETPATH == Mac.f_getpath);
        // <sys/stat.h> struct stat (64-bit inodes), <sys/dirent.h> struct dirent, statvfs.
        std.debug.assert(@sizeOf(c.Stat) == 144 and @offsetOf(c.Stat, "mode") == 4 and @offsetOf(c.Stat, "ino") == 8);
        std.debug.assert(@offsetOf(c.Stat, "rdev") == 24 and @offsetOf(c.Stat, "size") == 96 and @offsetOf(c.Stat, "blksize") == 112);
        std.debug.assert(@offsetOf(c.dirent, "type") == 20 and @offsetOf(c.dirent, "name") == 21);
        std.debug.assert(@sizeOf(Mac.Statvfs) == 64 and @offsetOf(Mac.Statvfs, "blocks") == 16 and @offsetOf(Mac.Statvfs, "namemax") == 56);
        std.debug.assert(@sizeOf(Mac.Fstore) == 32);
        // <sys/errno.h> values that differ from Linux's, and where they land.
        std.debug.assert(@backingInt(c.E.NOATTR) == 93 and linuxErrno(93) == .NODATA);
        std.debug.assert(@backingInt(c.E.OPNOTSUPP) == 45 and linuxErrno(45) == .OPNOTSUPP and linuxErrno(102) == .OPNOTSUPP);
        std.debug.assert(@backingInt(c.E.LOOP) == 62 and linuxErrno(62) == .LOOP);
        std.debug.assert(@backingInt(c.E.AGAIN) == 35 and linuxErrno(35) == .AGAIN);
        std.debug.assert(@backingInt(c.E.NOTEMPTY) == 66 and linuxErrno(66) == .NOTEMPTY);
        std.debug.assert(@backingInt(c.E.NAMETOOLONG) == 63 and linuxErrno(63) == .NAMETOOLONG);
    } else {
        std.debug.assert(@sizeOf(Glibc.Statvfs) == 112);
    }
}
