//! The virtio-fs server's host calls through libc (POSIX plus a few host extensions): the
//! backend on macOS, which has no O_PATH, no /proc/self/fd, no AT_EMPTY_PATH and no
//! getdents64. The same public names and arguments as sys.zig (Linux raw syscalls), so the
//! server code is one; on Linux it is built only for tests (a test root declaring
//! `zkrun_fs_posix`, tests/zig/fs/posix_runner.zig), which run the server's tests against it
//! on real files. What the guest sees stays Linux's: the errno of every failure is translated
//! host→Linux (the Zig error is the Linux errno's, as in sys.zig; CONTRIBUTING.md "System calls"), open/AT/xattr flags and UTIME/SEEK values arrive as
//! Linux's and are translated to the host's, stat and statvfs become the Linux-shaped `Stat`
//! and `Statfs`, directories are listed as linux_dirent64 records.
//!
//! How the Linux-only mechanisms are stood in for:
//! - An O_PATH open: directories and regular files are opened O_RDONLY (O_NONBLOCK, never
//!   following a final symlink) and checked to be the inode a stat of the name found. Anything
//!   else (symlinks, FIFOs, sockets, device nodes, and a file we may not read) is never opened:
//!   its fd is a dup of the parent directory, recorded in a side table with the name and the
//!   inode (a "stub"); calls on a stub go through (parent, name), checked against the inode,
//!   and a RENAME of it through the server moves the record along.
//! - /proc/self/fd: `openat(AT.FDCWD, "/proc/self/fd", O.PATH)` yields a marker fd; an
//!   `openat`/`fchmodat`/`linkat` relative to it on "<fd>" acts on that fd (a directory is
//!   reopened with openat(fd, "."), a file through its path, F_GETPATH on macOS, which the
//!   server then checks is the inode it held), and `ProcPath.of` paths name the fd for xattrs.
//! - getdents64: readdir(3) on a DIR stream kept per fd, d_off being telldir cookies (an
//!   lseek(SEEK_SET) of a listed directory is a seekdir).
//! What macOS cannot do is refused with the errno libkrun's macOS passthrough replies (list in
//! docs/HVF.md): POSIX locks, COPY_FILE_RANGE and SYNCFS ENOSYS, RENAME_WHITEOUT EINVAL,
//! FALLOCATE modes other than 0/KEEP_SIZE EOPNOTSUPP. These hold on every host this file is
//! built for, so the Linux test build checks them too.
const std = @import("std");
const builtin = @import("builtin");
const linux = std.os.linux;
const c = std.c;
const linux_sys = @import("sys.zig");
const Lock = @import("../Lock.zig");

const is_macos = builtin.os.tag == .macos;

/// The backend switch in sys.zig reads this (the tests use it for the ENOSYS cases).
pub const posix = true;

pub const E = linux.E;
pub const fd_t = i32;
/// sys.zig's: one Zig error per Linux errno (sys_errno); `errnoOf` gives the reply's number.
pub const Error = linux_sys.Error;
pub const errnoOf = linux_sys.errnoOf;
pub const check = linux_sys.check;
/// The guest's (Linux) values: the server compares guest flags and modes against these.
pub const O = linux_sys.O;
pub const AT = linux.AT;
pub const S = linux.S;
pub const ProcPath = linux_sys.ProcPath;

/// A stat in Linux's terms: x86_64's `struct stat` field for field (the server reads these
/// fields, see ops.attrFromStat), whatever the host; rdev in the kernel's new_encode_dev() form.
pub const Stat = linux_sys.StatX86_64;

pub const Statfs = linux_sys.Statfs;

/// The error of Linux errno `e`, for a reply whose errno is chosen at run time.
pub const fail = linux_sys.fail;

/// The host side: libc values and calls, layouts, and the Linux ↔ host translations.
const host_side = @import("sys_posix_host.zig");
const host = host_side.host;
const failHost = host_side.failHost;
const checkInt = host_side.checkInt;
const statfsOf = host_side.statfsOf;
const common = host_side.common;
const hostOpenFlags = host_side.hostOpenFlags;
const hostAtFlags = host_side.hostAtFlags;
const hostTime = host_side.hostTime;
pub const encodeDev = host_side.encodeDev;
pub const linuxErrno = host_side.linuxErrno;

// ---- the side table: stubs, DIR streams, the /proc/self/fd marker -----------------------------

const Stub = struct { name: [:0]u8, dev: u64, ino: u64 };
const Entry = union(enum) {
    /// fd is a dup of the parent directory; the entry is `name` in it, inode (dev, ino).
    stub: Stub,
    /// fd belongs to this DIR stream (closedir closes it).
    dir: *c.DIR,
    /// fd stands for /proc/self/fd.
    proc,
};

var table_lock: Lock = .{};
var table: std.AutoHashMapUnmanaged(fd_t, Entry) = .empty;
const table_gpa = std.heap.c_allocator;

fn lookupEntry(fd: fd_t) ?Entry {
    table_lock.lock();
    defer table_lock.unlock();
    return table.get(fd);
}

fn putEntry(fd: fd_t, e: Entry) Error!void {
    table_lock.lock();
    defer table_lock.unlock();
    table.put(table_gpa, fd, e) catch return fail(.NOMEM);
}

fn stubOf(fd: fd_t) ?Stub {
    const e = lookupEntry(fd) orelse return null;
    return if (e == .stub) e.stub else null;
}

fn isProc(fd: fd_t) bool {
    const e = lookupEntry(fd) orelse return false;
    return e == .proc;
}

/// A directory fd for a host *at call: AT_FDCWD translated; stubs and the marker are no
/// directories.
fn hostDir(fd: fd_t) Error!c_int {
    if (fd == AT.FDCWD) return host.at_fdcwd;
    if (lookupEntry(fd)) |e| if (e != .dir) return fail(.NOTDIR);
    return fd;
}

/// The stub's entry, checked to still be its inode (a host rename or unlink behind our back
/// makes it stale: ENOENT, never another file's data).
fn stubStat(fd: fd_t, s: Stub) Error!Stat {
    const st = try host.statAt(fd, s.name, host.at_symlink_nofollow);
    if (st.dev != s.dev or st.ino != s.ino) return fail(.NOENT);
    return st;
}

fn procTarget(name: [*:0]const u8) Error!fd_t {
    return std.fmt.parseInt(fd_t, std.mem.span(name), 10) catch fail(.NOENT);
}

// ---- the calls ------------------------------------------------------------------------------

pub fn openat(dir: fd_t, name: [*:0]const u8, flags: u32, mode: u32) Error!fd_t {
    if (flags & O.PATH != 0) return openPath(dir, name, flags);
    const hflags = try hostOpenFlags(flags);
    if (isProc(dir)) return reopen(try procTarget(name), hflags);
    return @intCast(try checkInt(c.openat(try hostDir(dir), name, @bitCast(hflags), @as(c_uint, mode))));
}

/// O_PATH without O_PATH (file comment).
fn openPath(dir: fd_t, name: [*:0]const u8, flags: u32) Error!fd_t {
    if (dir == AT.FDCWD and std.mem.eql(u8, std.mem.span(name), "/proc/self/fd")) {
        const fd = try checkInt(c.open("/dev/null", @bitCast(@as(c_int, host.o_cloexec))));
        errdefer _ = c.close(fd);
        try putEntry(fd, .proc);
        return fd;
    }
    const hdir = try hostDir(dir);
    const nofollow = flags & O.NOFOLLOW != 0;
    const st = try host.statAt(hdir, name, if (nofollow) host.at_symlink_nofollow else 0);
    const kind = st.mode & S.IFMT;
    if (flags & O.DIRECTORY != 0 and kind != S.IFDIR) return fail(.NOTDIR);
    if (kind == S.IFDIR or kind == S.IFREG) {
        var hflags: c_int = host.o_cloexec | host.o_nonblock | host.o_noctty;
        if (nofollow) hflags |= host.o_nofollow;
        if (kind == S.IFDIR) hflags |= host.o_directory;
        const rc = c.openat(hdir, name, @bitCast(hflags), @as(c_uint, 0));
        if (rc >= 0) {
            errdefer _ = c.close(rc);
            const got = try host.statFd(rc);
            if (got.dev != st.dev or got.ino != st.ino) return fail(.IO); // swapped meanwhile
            return rc;
        }
        // A file we may not read is still an inode the guest can stat; a directory we cannot
        // open is not one we could serve.
        const e = linuxErrno(@backingInt(c.errno(rc)));
        if (kind == S.IFDIR or (e != .ACCES and e != .PERM)) return fail(e);
    }
    const fd = try checkInt(c.fcntl(hdir, host.f_dupfd_cloexec, @as(c_int, 0)));
    errdefer _ = c.close(fd);
    const copy = table_gpa.dupeSentinel(u8, std.mem.span(name), 0) catch return fail(.NOMEM);
    errdefer table_gpa.free(copy);
    try putEntry(fd, .{ .stub = .{ .name = copy, .dev = st.dev, .ino = st.ino } });
    return fd;
}

/// /proc/self/fd/<fd> reopened: a directory through openat(fd, "."), a file through its name
/// (stub) or path. A name or path is resolved again, so the new fd is checked to be the inode
/// before O_TRUNC is applied (never truncate another file a host-side rename put there).
fn reopen(fd: fd_t, hflags: c_int) Error!fd_t {
    const want = try fstat(fd);
    const kind = want.mode & S.IFMT;
    if (kind == S.IFDIR and stubOf(fd) == null) return @intCast(try checkInt(c.openat(fd, ".", @bitCast(hflags), @as(c_uint, 0))));
    if (kind != S.IFREG) return fail(.NXIO);
    const flags = (hflags & ~@as(c_int, host.o_trunc)) | host.o_nofollow;
    const new: fd_t = if (stubOf(fd)) |s|
        @intCast(try checkInt(c.openat(fd, s.name, @bitCast(flags), @as(c_uint, 0))))
    else blk: {
        var buf: [host.path_max]u8 = undefined;
        const path = try host.fdPath(fd, &buf);
        break :blk @intCast(try checkInt(c.openat(host.at_fdcwd, path, @bitCast(flags), @as(c_uint, 0))));
    };
    errdefer _ = c.close(new);
    const got = try host.statFd(new);
    if (got.dev != want.dev or got.ino != want.ino) return fail(.IO);
    if (hflags & host.o_trunc != 0) _ = try checkInt(c.ftruncate(new, 0));
    return new;
}

pub fn close(fd: fd_t) void {
    std.debug.assert(fd >= 0); // tidy: fds are ours
    table_lock.lock();
    const removed = table.fetchRemove(fd);
    table_lock.unlock();
    if (removed) |kv| switch (kv.value) {
        .stub => |s| table_gpa.free(s.name),
        .dir => |d| {
            _ = c.closedir(d);
            return;
        },
        .proc => {},
    };
    _ = c.close(fd);
}

pub fn fstatat(dir: fd_t, name: [*:0]const u8, flags: u32) Error!Stat {
    if (name[0] == 0 and flags & AT.EMPTY_PATH != 0) return fstat(dir);
    return host.statAt(try hostDir(dir), name, try hostAtFlags(flags & ~@as(u32, AT.EMPTY_PATH)));
}

/// stat of the inode behind any fd, stubs included.
pub fn fstat(fd: fd_t) Error!Stat {
    if (stubOf(fd)) |s| return stubStat(fd, s);
    return host.statFd(fd);
}

pub fn fstatfs(fd: fd_t) Error!Statfs {
    return host.statvfs(fd);
}

pub fn readlinkat(dir: fd_t, name: [*:0]const u8, buf: []u8) Error!usize {
    if (name[0] == 0) {
        const s = stubOf(dir) orelse return fail(.NOENT); // only symlinks are stubs we read
        _ = try stubStat(dir, s);
        return @intCast(try checkInt(c.readlinkat(dir, s.name, buf.ptr, buf.len)));
    }
    return @intCast(try checkInt(c.readlinkat(try hostDir(dir), name, buf.ptr, buf.len)));
}

pub fn mkdirat(dir: fd_t, name: [*:0]const u8, mode: u32) Error!void {
    _ = try checkInt(c.mkdirat(try hostDir(dir), name, @intCast(mode)));
}

/// Regular files, FIFOs and the overlayfs whiteout (0:0); macOS cannot make socket nodes.
pub fn mknodat(dir: fd_t, name: [*:0]const u8, mode: u32, dev: u32) Error!void {
    const hdir = try hostDir(dir);
    const perm = mode & 0o7777;
    switch (mode & S.IFMT) {
        0, S.IFREG => {
            const fd = try checkInt(c.openat(hdir, name, @bitCast(host.o_creat | host.o_excl | host.o_nofollow | host.o_cloexec | host.o_nonblock | @as(c_int, O.WRONLY)), perm));
            _ = c.close(fd);
        },
        S.IFIFO => _ = try checkInt(host.mkfifo(hdir, name, perm)),
        S.IFCHR => {
            if (dev != 0) return fail(.PERM);
            _ = try checkInt(host.mknodWhiteout(hdir, name, S.IFCHR | perm));
        },
        S.IFSOCK => return fail(.OPNOTSUPP),
        else => return fail(.INVAL),
    }
}

pub fn symlinkat(target: [*:0]const u8, dir: fd_t, name: [*:0]const u8) Error!void {
    _ = try checkInt(c.symlinkat(target, try hostDir(dir), name));
}

pub fn unlinkat(dir: fd_t, name: [*:0]const u8, flags: u32) Error!void {
    _ = try checkInt(c.unlinkat(try hostDir(dir), name, try hostAtFlags(flags)));
}

pub fn renameat2(old_dir: fd_t, old: [*:0]const u8, new_dir: fd_t, new: [*:0]const u8, flags: u32) Error!void {
    const noreplace = 1;
    const exchange = 2;
    const whiteout = 4;
    // RENAME_WHITEOUT leaves a 0:0 device node behind: macOS has no such rename (libkrun's
    // macOS passthrough fakes one with an xattr; we refuse it, and overlayfs copes).
    if (flags & whiteout != 0) return fail(.INVAL);
    if (flags & ~@as(u32, noreplace | exchange) != 0) return fail(.INVAL);
    if (flags & noreplace != 0 and flags & exchange != 0) return fail(.INVAL);
    const od = try hostDir(old_dir);
    const nd = try hostDir(new_dir);
    if (flags == 0) {
        _ = try checkInt(c.renameat(od, old, nd, new));
    } else {
        _ = try checkInt(host.renameFlags(od, old, nd, new, flags & noreplace != 0, flags & exchange != 0));
    }
    try moveStubs(nd, new);
    if (flags & exchange != 0) try moveStubs(od, old);
}

/// After a rename: the stubs of the entry now at (nd, new) whose own (parent, name) no longer
/// names it follow it there (their fd becomes a dup of the new parent).
fn moveStubs(nd: c_int, new: [*:0]const u8) Error!void {
    const moved = host.statAt(nd, new, host.at_symlink_nofollow) catch return;
    table_lock.lock();
    defer table_lock.unlock();
    var it = table.iterator();
    while (it.next()) |kv| {
        if (kv.value_ptr.* != .stub) continue;
        const s = &kv.value_ptr.stub;
        if (s.dev != moved.dev or s.ino != moved.ino) continue;
        // Still where it was (a hard link elsewhere)?
        if (host.statAt(kv.key_ptr.*, s.name, host.at_symlink_nofollow)) |st| {
            if (st.dev == s.dev and st.ino == s.ino) continue;
        } else |_| {}
        const copy = table_gpa.dupeSentinel(u8, std.mem.span(new), 0) catch return fail(.NOMEM);
        if (c.dup2(nd, kv.key_ptr.*) < 0) {
            table_gpa.free(copy);
            return failHost();
        }
        table_gpa.free(s.name);
        s.name = copy;
    }
}

pub fn linkat(old_dir: fd_t, old: [*:0]const u8, new_dir: fd_t, new: [*:0]const u8, flags: u32) Error!void {
    const nd = try hostDir(new_dir);
    if (!isProc(old_dir)) {
        _ = try checkInt(c.linkat(try hostDir(old_dir), old, nd, new, try hostAtFlags(flags)));
        return;
    }
    // A link to the inode an fd holds: by its name (stub) or its path, then checked to be it.
    const fd = try procTarget(old);
    const want = try fstat(fd);
    if (stubOf(fd)) |s| {
        _ = try checkInt(c.linkat(fd, s.name, nd, new, 0));
    } else {
        var buf: [host.path_max]u8 = undefined;
        const path = try host.fdPath(fd, &buf);
        _ = try checkInt(c.linkat(host.at_fdcwd, path, nd, new, 0));
    }
    const got = host.statAt(nd, new, host.at_symlink_nofollow) catch |e| return e;
    if (got.dev != want.dev or got.ino != want.ino) {
        _ = c.unlinkat(nd, new, 0);
        return fail(.IO);
    }
}

pub fn fchownat(fd: fd_t, name: [*:0]const u8, uid: u32, gid: u32, flags: u32) Error!void {
    if (name[0] == 0 and flags & AT.EMPTY_PATH != 0) {
        if (stubOf(fd)) |s| {
            _ = try stubStat(fd, s);
            _ = try checkInt(c.fchownat(fd, s.name, uid, gid, host.at_symlink_nofollow));
        } else _ = try checkInt(c.fchown(fd, uid, gid));
        return;
    }
    _ = try checkInt(c.fchownat(try hostDir(fd), name, uid, gid, try hostAtFlags(flags)));
}

pub fn fchmodat(dir: fd_t, name: [*:0]const u8, mode: u32) Error!void {
    if (isProc(dir)) {
        const fd = try procTarget(name);
        if (stubOf(fd)) |s| {
            const st = try stubStat(fd, s);
            if (st.mode & S.IFMT == S.IFLNK) return fail(.OPNOTSUPP);
            _ = try checkInt(c.fchmodat(fd, s.name, @intCast(mode), 0));
        } else _ = try checkInt(c.fchmod(fd, @intCast(mode)));
        return;
    }
    _ = try checkInt(c.fchmodat(try hostDir(dir), name, @intCast(mode), 0));
}

pub fn fchmod(fd: fd_t, mode: u32) Error!void {
    _ = try checkInt(c.fchmod(fd, @intCast(mode)));
}

pub fn utimensat(dir: fd_t, name: [*:0]const u8, times: *const [2]linux.timespec, flags: u32) Error!void {
    const t = [2]c.timespec{ hostTime(times[0]), hostTime(times[1]) };
    if (name[0] == 0 and flags & AT.EMPTY_PATH != 0) {
        if (stubOf(dir)) |s| {
            _ = try stubStat(dir, s);
            _ = try checkInt(c.utimensat(dir, s.name, &t, host.at_symlink_nofollow));
        } else _ = try checkInt(c.futimens(dir, &t));
        return;
    }
    _ = try checkInt(c.utimensat(try hostDir(dir), name, &t, try hostAtFlags(flags)));
}

pub fn ftruncate(fd: fd_t, len: u64) Error!void {
    if (len > std.math.maxInt(i64)) return fail(.INVAL);
    _ = try checkInt(c.ftruncate(fd, @intCast(len)));
}

pub fn pread(fd: fd_t, buf: []u8, off: u64) Error!usize {
    return @intCast(try checkInt(c.pread(fd, buf.ptr, buf.len, @bitCast(off))));
}

pub fn pwrite(fd: fd_t, buf: []const u8, off: u64) Error!usize {
    return @intCast(try checkInt(c.pwrite(fd, buf.ptr, buf.len, @bitCast(off))));
}

pub fn preadv(fd: fd_t, iov: []const std.posix.iovec, off: u64) Error!usize {
    return @intCast(try checkInt(c.preadv(fd, iov.ptr, @intCast(iov.len), @bitCast(off))));
}

pub fn pwritev(fd: fd_t, iov: []const std.posix.iovec, off: u64) Error!usize {
    return @intCast(try checkInt(c.pwritev(fd, @ptrCast(iov.ptr), @intCast(iov.len), @bitCast(off))));
}

pub fn fsync(fd: fd_t, data_only: bool) Error!void {
    _ = try checkInt(host.fsync(fd, data_only));
}

/// macOS has no syncfs; libkrun's macOS passthrough replies ENOSYS too.
pub fn syncfs(fd: fd_t) Error!void {
    _ = fd;
    return fail(.NOSYS);
}

/// whence is Linux's (SEEK_DATA 3, SEEK_HOLE 4: swapped on macOS). On a directory listed
/// through `getdents64`, SEEK_SET moves its DIR stream (offsets are telldir cookies).
pub fn lseek(fd: fd_t, off: i64, whence: u32) Error!u64 {
    if (lookupEntry(fd)) |e| if (e == .dir) {
        if (whence != 0) return fail(.INVAL);
        if (off == 0) c.rewinddir(e.dir) else c.seekdir(e.dir, @intCast(off));
        return @bitCast(off);
    };
    const hw: c_int = switch (whence) {
        0, 1, 2 => @intCast(whence),
        3 => host.seek_data,
        4 => host.seek_hole,
        else => return fail(.INVAL),
    };
    const st = try fstat(fd);
    if (st.mode & S.IFMT == S.IFDIR) {
        if (whence != 0) return fail(.INVAL);
        const d = try dirStream(fd);
        if (off == 0) c.rewinddir(d) else c.seekdir(d, @intCast(off));
        return @bitCast(off);
    }
    return @bitCast(try checkInt(c.lseek(fd, off, hw)));
}

/// The DIR stream of a directory fd (made on first use; it owns the fd from then on).
fn dirStream(fd: fd_t) Error!*c.DIR {
    if (lookupEntry(fd)) |e| if (e == .dir) return e.dir;
    const d = c.fdopendir(fd) orelse return failHost();
    try putEntry(fd, .{ .dir = d });
    return d;
}

/// linux_dirent64 records (d_ino, d_off, d_reclen, d_type, name, NUL, padded to 8) from
/// readdir(3); d_off is the telldir cookie after the entry. DT_* values are the same on macOS.
pub fn getdents64(fd: fd_t, buf: []u8) Error!usize {
    const d = try dirStream(fd);
    var used: usize = 0;
    while (true) {
        const before = c.telldir(d);
        c._errno().* = 0;
        const ent = c.readdir(d) orelse {
            const e = c._errno().*;
            if (e != 0) return fail(linuxErrno(@intCast(e)));
            break;
        };
        const name = std.mem.sliceTo(@as([*:0]const u8, @ptrCast(&ent.name)), 0);
        const reclen = std.mem.alignForward(usize, 19 + name.len + 1, 8);
        if (reclen > buf.len - used) {
            c.seekdir(d, before);
            if (used == 0) return fail(.INVAL);
            break;
        }
        const rec = buf[used..][0..reclen];
        std.mem.writeInt(u64, rec[0..8], ent.ino, .little);
        std.mem.writeInt(i64, rec[8..16], c.telldir(d), .little);
        std.mem.writeInt(u16, rec[16..18], @intCast(reclen), .little);
        rec[18] = ent.type;
        @memcpy(rec[19..][0..name.len], name);
        @memset(rec[19 + name.len ..], 0);
        used += reclen;
    }
    return used;
}

/// Mode 0 and FALLOC_FL_KEEP_SIZE; punching holes, zeroing, collapsing and inserting ranges
/// have no macOS form here: EOPNOTSUPP, which the guest reports as such.
pub fn fallocate(fd: fd_t, mode: u32, off: u64, len: u64) Error!void {
    const keep_size = 1;
    if (mode & ~@as(u32, keep_size) != 0) return fail(.OPNOTSUPP);
    if (len == 0) return fail(.INVAL);
    return host.allocate(fd, mode & keep_size != 0, off, len);
}

/// macOS has no copy_file_range: ENOSYS, and the guest kernel copies through READ/WRITE.
pub fn copyFileRange(fd_in: fd_t, off_in: *i64, fd_out: fd_t, off_out: *i64, len: usize, flags: u32) Error!usize {
    _ = .{ fd_in, off_in, fd_out, off_out, len, flags };
    return fail(.NOSYS);
}

/// No open-file-description locks on macOS (libkrun's macOS passthrough has no locks either):
/// ENOSYS, after which the guest's FUSE keeps POSIX locks locally.
pub fn fcntlLock(fd: fd_t, cmd: u32, lock: *linux.Flock) Error!void {
    _ = .{ fd, cmd, lock };
    return fail(.NOSYS);
}

/// ACCESS on an inode fd (AT_EMPTY_PATH): a directory through faccessat(fd, "."), anything
/// else from its mode bits against the real uid and gid, as the kernel decides (root may read
/// and write anything, and execute what has an x bit).
pub fn faccessat(dir: fd_t, name: [*:0]const u8, mode: u32, flags: u32) Error!void {
    if (name[0] != 0 or flags & AT.EMPTY_PATH == 0) {
        _ = try checkInt(c.faccessat(try hostDir(dir), name, mode, try hostAtFlags(flags)));
        return;
    }
    const st = try fstat(dir);
    if (st.mode & S.IFMT == S.IFDIR and stubOf(dir) == null) {
        _ = try checkInt(c.faccessat(dir, ".", mode, 0));
        return;
    }
    const want = mode & 7;
    if (want == 0) return;
    const uid = c.getuid();
    if (uid == 0) {
        if (want & 1 != 0 and st.mode & 0o111 == 0) return fail(.ACCES);
        return;
    }
    const bits: u32 = if (st.uid == uid) (st.mode >> 6) & 7 else if (st.gid == c.getgid()) (st.mode >> 3) & 7 else st.mode & 7;
    if (want & ~bits != 0) return fail(.ACCES);
}

/// The fd a `ProcPath.of` path names (xattr calls); stubs (special files, unreadable files)
/// have no fd to hand the call: EOPNOTSUPP.
fn xattrFd(path: [*:0]const u8) Error!fd_t {
    const prefix = "/proc/self/fd/";
    const s = std.mem.span(path);
    if (!std.mem.startsWith(u8, s, prefix)) return fail(.NOENT);
    const fd = std.fmt.parseInt(fd_t, s[prefix.len..], 10) catch return fail(.NOENT);
    if (lookupEntry(fd) != null) return fail(.OPNOTSUPP);
    return fd;
}

pub fn getxattr(path: [*:0]const u8, name: [*:0]const u8, buf: []u8) Error!usize {
    return @intCast(try checkInt(host.getxattr(try xattrFd(path), name, buf)));
}

/// flags: Linux's XATTR_CREATE 1 and XATTR_REPLACE 2 (macOS: 2 and 4).
pub fn setxattr(path: [*:0]const u8, name: [*:0]const u8, value: []const u8, flags: u32) Error!void {
    if (flags & ~@as(u32, 3) != 0) return fail(.INVAL);
    const hflags: c_int = @as(c_int, if (flags & 1 != 0) host.xattr_create else 0) | @as(c_int, if (flags & 2 != 0) host.xattr_replace else 0);
    _ = try checkInt(host.setxattr(try xattrFd(path), name, value, hflags));
}

pub fn listxattr(path: [*:0]const u8, buf: []u8) Error!usize {
    return @intCast(try checkInt(host.listxattr(try xattrFd(path), buf)));
}

pub fn removexattr(path: [*:0]const u8, name: [*:0]const u8) Error!void {
    _ = try checkInt(host.removexattr(try xattrFd(path), name));
}

pub fn geteuid() u32 {
    return c.geteuid();
}

/// RLIMIT_NOFILE's soft limit to its hard limit (every inode the guest looks up holds an fd);
/// macOS refuses an unlimited one, so OPEN_MAX (10240) then.
pub fn raiseNofile() void {
    var lim: c.rlimit = undefined;
    if (c.getrlimit(.NOFILE, &lim) != 0) return;
    if (lim.cur >= lim.max) return;
    const want = lim.max;
    lim.cur = want;
    if (c.setrlimit(.NOFILE, &lim) == 0 or !is_macos) return;
    lim.cur = @min(want, 10240);
    _ = c.setrlimit(.NOFILE, &lim);
}

test "posix backend: O_PATH stand-ins, errno and dev translation" {
    try std.testing.expectEqual(@as(u32, 0x100305), encodeDev(3, 0x105));
    try std.testing.expectEqual(E.NOENT, linuxErrno(@backingInt(c.E.NOENT)));
    const root = try openat(AT.FDCWD, "/", O.PATH | O.NOFOLLOW | O.CLOEXEC, 0);
    defer close(root);
    try std.testing.expect((try fstat(root)).mode & S.IFMT == S.IFDIR);
    try std.testing.expectError(error.NOENT, openat(root, "does-not-exist-zkrun", O.PATH, 0));
}
