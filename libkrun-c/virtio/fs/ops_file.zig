//! The virtio-fs server's file-handle opcodes against the host: OPEN, OPENDIR, CREATE,
//! RELEASE, FLUSH, FSYNC, SYNCFS, READ, WRITE (zero-copy where the device gathered the guest's
//! memory), FALLOCATE, LSEEK, COPY_FILE_RANGE. The confinement rules are ops.zig's: files are
//! reached only through inodes and handles it issued, and reopened through `ops.reopen`.
const std = @import("std");
const linux = std.os.linux;
const fuse = @import("fuse.zig");
const sys = @import("sys.zig").backend;
const Server = @import("Server.zig");
const Handles = @import("Handles.zig");
const Virtual = @import("Virtual.zig");
const ops = @import("ops.zig");

const Request = Server.Request;
const Error = Server.Error;
const S = sys.S;
const O = sys.O;

/// One COPY_FILE_RANGE moves at most this much, so one request cannot stall the worker long.
const copy_max = 1 << 30;

// ---- open, create, release ------------------------------------------------------------------

/// The guest's open flags as we pass them to the host: access mode and the flags that only
/// change I/O behaviour. Creation and lookup flags are ours to set.
fn openFlags(s: *const Server, guest: u32) sys.Error!u32 {
    const keep = O.ACCMODE | O.APPEND | O.TRUNC | O.DSYNC | O.SYNC;
    const flags = guest & keep;
    if (flags & O.ACCMODE == O.ACCMODE) return error.INVAL;
    if (s.options.read_only and (flags & O.ACCMODE != O.RDONLY or flags & O.TRUNC != 0)) return error.ROFS;
    return flags;
}

fn writable(flags: u32) bool {
    return flags & O.ACCMODE != O.RDONLY;
}

pub fn open(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.OpenIn);
    const n = s.inodes.get(try ops.inode(s, req.header.nodeid));
    const flags = try openFlags(s, in.flags);
    if (n.type == S.IFDIR) return error.ISDIR;
    if (n.kind == .virtual) {
        if (writable(flags) or flags & O.TRUNC != 0) return error.ROFS;
        const fh = s.handles.add(.{ .kind = .virtual_file, .nodeid = req.header.nodeid, .entry = n.entry }) orelse return error.NFILE;
        return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
    }
    if (n.type != S.IFREG) return error.NXIO;
    const fd = try ops.reopen(s, n, flags);
    killOnTrunc(s, fd, &req.header, flags, in.open_flags) catch |e| {
        sys.close(fd);
        return e;
    };
    const fh = s.handles.add(.{ .kind = .file, .fd = fd, .nodeid = req.header.nodeid, .writable = writable(flags) }) orelse return error.NFILE;
    return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

pub fn opendir(s: *Server, req: *Request) Error!void {
    _ = try req.take(fuse.OpenIn);
    const n = s.inodes.get(try ops.inode(s, req.header.nodeid));
    if (n.type != S.IFDIR) return error.NOTDIR;
    var h: Handles.Handle = .{ .kind = .virtual_dir, .nodeid = req.header.nodeid, .entry = n.entry };
    if (n.kind == .host) {
        h.kind = .dir;
        h.fd = try ops.reopen(s, n, O.RDONLY | O.DIRECTORY);
    }
    const fh = s.handles.add(h) orelse return error.NFILE;
    return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

pub fn create(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.CreateIn);
    const name = try req.name();
    const parent = try ops.hostDir(s, req.header.nodeid);
    const flags = try openFlags(s, in.flags);
    const excl = in.flags & O.EXCL != 0;
    // O_EXCL|O_NOFOLLOW first: it creates a regular file or fails, never opening what is there.
    const created_fd: ?sys.fd_t = sys.openat(parent.fd, name.ptr, flags | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK, in.mode & 0o7777) catch |e| blk: {
        if (e != error.EXIST or excl) return e;
        break :blk null;
    };
    var index: u32 = undefined;
    var fd: sys.fd_t = undefined;
    if (created_fd) |cfd| {
        fd = cfd;
        errdefer sys.close(fd);
        index = try ops.finishCreate(s, req, parent, name, in.mode);
    } else {
        // It exists and the guest did not ask for O_EXCL: open it like OPEN would, which
        // refuses anything but a regular file.
        index = (try ops.lookupHost(s, parent.fd, parent.entry, name.ptr, name.len)).index;
        const n = s.inodes.get(index);
        if (n.type != S.IFREG) {
            s.inodes.forget(index, 1);
            return if (n.type == S.IFDIR) error.ISDIR else error.NXIO;
        }
        fd = ops.reopen(s, n, flags) catch |e| {
            s.inodes.forget(index, 1);
            return e;
        };
        killOnTrunc(s, fd, &req.header, flags, in.open_flags) catch |e| {
            sys.close(fd);
            s.inodes.forget(index, 1);
            return e;
        };
    }
    const fh = s.handles.add(.{ .kind = .file, .fd = fd, .nodeid = s.inodes.nodeId(index), .writable = writable(flags) }) orelse {
        s.inodes.forget(index, 1);
        return error.NFILE;
    };
    const attr = ops.attrOf(s, index) catch |e| {
        _ = s.handles.remove(fh);
        s.inodes.forget(index, 1);
        return e;
    };
    try s.replyStruct(ops.entryOut(s, index, attr));
    try s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

/// An O_TRUNC open is a truncate: set-id bits go as for one (ops.killSetid).
fn killOnTrunc(s: *const Server, fd: sys.fd_t, header: *const fuse.InHeader, flags: u32, open_flags: u32) sys.Error!void {
    if (flags & O.TRUNC == 0) return;
    return ops.killSetid(s, fd, header, .{ .asked = open_flags & fuse.open_kill_suidgid != 0, .wrote = true });
}

pub fn release(s: *Server, req: *Request, dir: bool) Error!void {
    const in = try req.take(fuse.ReleaseIn);
    const kinds: []const Handles.Kind = if (dir) &.{ .dir, .virtual_dir } else &.{ .file, .virtual_file };
    _ = try ops.handleOf(s, in.fh, kinds);
    if (!s.handles.remove(in.fh)) return error.BADF;
}

pub fn flush(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FlushIn);
    const h = try ops.handleOf(s, in.fh, &.{ .file, .virtual_file });
    // close() drops a process's POSIX locks; our locks live on the handle's description.
    if (h.kind == .file) {
        var fl = std.mem.zeroes(linux.Flock);
        fl.type = linux.F.UNLCK;
        sys.fcntlLock(h.fd, linux.F.OFD_SETLK, &fl) catch {};
    }
}

pub fn fsync(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FsyncIn);
    const h = try ops.handleOf(s, in.fh, &.{ .file, .dir, .virtual_file, .virtual_dir });
    if (h.fd < 0) return;
    return sys.fsync(h.fd, in.fsync_flags & fuse.fsync_fdatasync != 0);
}

pub fn syncfs(s: *Server, req: *Request) Error!void {
    _ = req;
    const root = s.inodes.get(0);
    if (root.kind != .host) return;
    // syncfs needs an fd of the filesystem, not an O_PATH one.
    const fd = try ops.reopen(s, root, O.RDONLY | O.DIRECTORY);
    defer sys.close(fd);
    try sys.syncfs(fd);
}

// ---- data -----------------------------------------------------------------------------------

pub fn read(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.ReadIn);
    const h = try ops.handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (in.size > s.options.max_write) return error.INVAL;
    const off = try ops.offsetArg(in.offset);
    if (h.kind == .file and s.direct_out.len > 0) {
        if (try directRead(s, h.fd, in.size, off)) return;
    }
    const room = @min(in.size, s.replyRoom());
    const buf = try s.replySpace(room);
    if (h.kind == .virtual_file) {
        const data = s.virtual.get(h.entry).data;
        const start = @min(off, data.len);
        const n = @min(room, data.len - start);
        @memcpy(buf[0..n], data[start..][0..n]);
        return s.replyShrink(room - n);
    }
    const n = try sys.pread(h.fd, buf, off);
    s.replyShrink(room - n);
}

/// READ straight into the guest's buffer (Server.direct_out): one copy (the host kernel's)
/// instead of two. Only when the buffer holds all `size` bytes: a short reply means EOF to the
/// guest, so a buffer too small for the request takes the copying path, which replies ERANGE
/// or what fits as before.
fn directRead(s: *Server, fd: sys.fd_t, size: u32, off: u64) sys.Error!bool {
    const count = trimIovecs(s.direct_out, size) orelse return false;
    if (count == 0) return true; // a zero-byte read: an empty reply
    s.direct_len = try sys.preadv(fd, s.direct_out[0..count], off);
    return true;
}

/// Cuts `iovs` down to their first `size` bytes: how many pieces that takes, or null if they
/// hold fewer than `size` bytes.
fn trimIovecs(iovs: []std.posix.iovec, size: usize) ?usize {
    var left = size;
    var count: usize = 0;
    for (iovs) |*iov| {
        if (left == 0) break;
        iov.len = @min(iov.len, left);
        left -= iov.len;
        count += 1;
    }
    return if (left > 0) null else count;
}

pub fn write(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.WriteIn);
    const data = req.rest();
    const supplied = if (s.direct_in_len > 0) s.direct_in_len else data.len;
    if (in.size > supplied or in.size > s.options.max_write) return error.INVAL;
    const h = try ops.handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (h.kind == .virtual_file or !h.writable) return error.BADF;
    const off = try ops.offsetArg(in.offset);
    const n = if (s.direct_in_len > 0)
        try directWrite(s, h.fd, in.size, off)
    else
        try sys.pwrite(h.fd, data[0..in.size], off);
    try ops.killSetid(s, h.fd, &req.header, .{ .asked = in.write_flags & fuse.write_kill_suidgid != 0, .wrote = true });
    return s.replyStruct(fuse.WriteOut{ .size = @intCast(n), .padding = 0 });
}

/// WRITE straight from the guest's buffer (Server.direct_in), the first `size` bytes of it.
/// `write` checked that direct_in holds at least `size` bytes (direct_in_len).
fn directWrite(s: *Server, fd: sys.fd_t, size: u32, off: u64) sys.Error!usize {
    const count = trimIovecs(s.direct_in, size) orelse return error.INVAL;
    if (count == 0) return 0;
    return sys.pwritev(fd, s.direct_in[0..count], off);
}

pub fn fallocate(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FallocateIn);
    const h = try ops.handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (h.kind == .virtual_file or !h.writable) return error.BADF;
    try sys.fallocate(h.fd, in.mode, try ops.offsetArg(in.offset), try ops.offsetArg(in.length));
    try ops.killSetid(s, h.fd, &req.header, .{ .asked = ops.killAskedWithoutFlag(s, &req.header), .wrote = true });
}

pub fn lseek(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.LseekIn);
    const h = try ops.handleOf(s, in.fh, &.{.file});
    if (in.whence > 4) return error.INVAL;
    const off = try sys.lseek(h.fd, @bitCast(try ops.offsetArg(in.offset)), in.whence);
    return s.replyStruct(fuse.LseekOut{ .offset = off });
}

pub fn copyFileRange(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.CopyFileRangeIn);
    if (in.flags != 0) return error.INVAL;
    const from = try ops.handleOf(s, in.fh_in, &.{.file});
    const to = try ops.handleOf(s, in.fh_out, &.{.file});
    if (!to.writable) return error.BADF;
    if (to.nodeid != in.nodeid_out) return error.BADF;
    var off_in: i64 = @bitCast(try ops.offsetArg(in.off_in));
    var off_out: i64 = @bitCast(try ops.offsetArg(in.off_out));
    const n = try sys.copyFileRange(from.fd, &off_in, to.fd, &off_out, @min(in.len, copy_max), 0);
    try ops.killSetid(s, to.fd, &req.header, .{ .asked = ops.killAskedWithoutFlag(s, &req.header), .wrote = true });
    return s.replyStruct(fuse.WriteOut{ .size = @intCast(n), .padding = 0 });
}
