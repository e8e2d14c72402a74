//! The passthrough side of the virtio-fs server: each FUSE opcode against the host directory,
//! plus the overlay (virtual) entries. Confinement rules kept here:
//! - a host inode is reached only by openat(parent_fd, one_name, O_PATH|O_NOFOLLOW); symlinks
//!   are never followed on the host (readlink gives the text; the guest resolves it);
//! - files are reopened for I/O through /proc/self/fd/<O_PATH fd>, which yields exactly the
//!   inode already held, and only regular files and directories are ever opened (a device
//!   node, FIFO or socket in the share is the guest's to handle, never opened on the host);
//! - LINK and RENAME take only node ids we issued, so neither can name anything outside;
//! - device nodes other than the overlayfs whiteout (0:0) cannot be created.
const std = @import("std");
const assert = std.debug.assert;
const linux = std.os.linux;
const fuse = @import("fuse.zig");
const sys = @import("sys.zig");
const Server = @import("Server.zig");
const Inodes = @import("Inodes.zig");
const Handles = @import("Handles.zig");
const Virtual = @import("Virtual.zig");

const Request = Server.Request;
const Error = Server.Error;
const S = sys.S;
const O = sys.O;

const virtual_dev = std.math.maxInt(u64);
/// Virtual inodes report st_ino from this base up (never a host ino on the usual filesystems).
const virtual_ino_base: u64 = 0xffff_ffff_0000_0000;
/// One COPY_FILE_RANGE moves at most this much, so one request cannot stall the worker long.
const copy_max = 1 << 30;

// ---- inode and handle access ----------------------------------------------------------------

fn inode(s: *Server, nodeid: u64) sys.Error!u32 {
    return s.inodes.find(nodeid) orelse sys.fail(.NOENT);
}

/// A host directory to create or remove entries in; overlays are read-only.
fn hostDir(s: *Server, nodeid: u64) sys.Error!*Inodes.Inode {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return sys.fail(if (n.type == S.IFDIR) .ROFS else .NOTDIR);
    if (n.type != S.IFDIR) return sys.fail(.NOTDIR);
    return n;
}

fn hostInode(s: *Server, nodeid: u64) sys.Error!*Inodes.Inode {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return sys.fail(.ROFS);
    return n;
}

fn handleOf(s: *Server, fh: u64, kinds: []const Handles.Kind) sys.Error!*Handles.Handle {
    const h = s.handles.find(fh) orelse return sys.fail(.BADF);
    if (std.mem.indexOfScalar(Handles.Kind, kinds, h.kind) == null) return sys.fail(.BADF);
    return h;
}

/// Reopens an O_PATH inode for I/O via its /proc/self/fd magic link: the kernel hands back the
/// very inode the O_PATH fd holds (no name is resolved), and we check that it did.
fn reopen(s: *Server, n: *const Inodes.Inode, flags: u32) sys.Error!sys.fd_t {
    assert(n.kind == .host); // tidy: reopen arguments are ours
    assert(flags & (O.CREAT | O.PATH | O.NOFOLLOW) == 0); // tidy: reopen arguments are ours
    if (n.type != S.IFREG and n.type != S.IFDIR) return sys.fail(.NXIO);
    var p: sys.ProcPath = .{};
    const fd = try sys.openat(s.proc_fd, p.name(n.fd), flags | O.CLOEXEC | O.NONBLOCK | O.NOCTTY, 0);
    const st = sys.fstat(fd) catch |e| {
        sys.close(fd);
        return e;
    };
    if (st.dev != n.dev or st.ino != n.ino) {
        sys.close(fd);
        return sys.fail(.IO);
    }
    return fd;
}

// ---- attributes -----------------------------------------------------------------------------

fn attrFromStat(st: *const sys.Stat) fuse.Attr {
    return .{
        .ino = st.ino,
        .size = @bitCast(st.size),
        .blocks = @bitCast(st.blocks),
        .atime = @bitCast(st.atime),
        .mtime = @bitCast(st.mtime),
        .ctime = @bitCast(st.ctime),
        .atimensec = @intCast(st.atime_nsec),
        .mtimensec = @intCast(st.mtime_nsec),
        .ctimensec = @intCast(st.ctime_nsec),
        .mode = st.mode,
        .nlink = @truncate(st.nlink),
        .uid = st.uid,
        .gid = st.gid,
        // Both sides use the kernel's 32-bit new_encode_dev() form.
        .rdev = @truncate(st.rdev),
        .blksize = @intCast(st.blksize),
        .flags = 0,
    };
}

fn virtualAttr(s: *const Server, entry: u16) fuse.Attr {
    const e = s.virtual.get(entry);
    var a = std.mem.zeroes(fuse.Attr);
    a.ino = virtual_ino_base + entry;
    a.size = e.data.len;
    a.blocks = (e.data.len + 511) / 512;
    a.mode = s.virtual.fileType(entry) | e.mode;
    a.nlink = if (e.kind == .file) 1 else 2;
    a.blksize = 4096;
    return a;
}

fn attrOf(s: *Server, index: u32) sys.Error!fuse.Attr {
    const n = s.inodes.get(index);
    if (n.kind == .virtual) return virtualAttr(s, n.entry);
    const st = try sys.fstat(n.fd);
    return attrFromStat(&st);
}

fn entryOut(s: *Server, index: u32, attr: fuse.Attr) fuse.EntryOut {
    return .{
        .nodeid = s.inodes.nodeId(index),
        .generation = 0,
        .entry_valid = Server.cache_timeout_s,
        .attr_valid = Server.cache_timeout_s,
        .entry_valid_nsec = 0,
        .attr_valid_nsec = 0,
        .attr = attr,
    };
}

/// Replies an entry for slot `index`, which already holds the reference the reply hands out.
fn replyEntry(s: *Server, index: u32) sys.Error!void {
    const attr = attrOf(s, index) catch |e| {
        s.inodes.forget(index, 1);
        return e;
    };
    return s.replyStruct(entryOut(s, index, attr));
}

// ---- lookup ---------------------------------------------------------------------------------

const Found = struct { index: u32, attr: fuse.Attr };

/// Looks `name` up in the directory `dir_fd` (tagged `tag` in the overlay tree); returns a slot
/// holding one new reference, and the attributes from the stat it made.
fn lookupHost(s: *Server, dir_fd: sys.fd_t, tag: u16, name: [*:0]const u8, name_len: usize) sys.Error!Found {
    const fd = try sys.openat(dir_fd, name, O.PATH | O.NOFOLLOW | O.CLOEXEC, 0);
    const st = sys.fstat(fd) catch |e| {
        sys.close(fd);
        return e;
    };
    // A child of a tagged directory may be an anchor on the way to a nested overlay entry.
    var child_tag = Virtual.none;
    if (st.mode & S.IFMT == S.IFDIR) {
        if (s.virtual.child(tag, name[0..name_len])) |c| child_tag = c;
    }
    const index = s.inodes.addHost(fd, &st, child_tag) orelse return sys.fail(.NFILE);
    return .{ .index = index, .attr = attrFromStat(&st) };
}

pub fn lookup(s: *Server, req: *Request) Error!void {
    const name = try req.name();
    const parent = s.inodes.get(try inode(s, req.header.nodeid));
    if (parent.type != S.IFDIR) return sys.fail(.NOTDIR);
    const tag: u16 = parent.entry;
    if (parent.kind == .virtual or tag != Virtual.none) {
        if (s.virtual.child(tag, name)) |c| {
            if (s.virtual.get(c).kind != .anchor) {
                const index = s.inodes.addVirtual(c, s.virtual.fileType(c)) orelse return sys.fail(.NFILE);
                s.virtual.consume(c);
                return replyEntry(s, index);
            }
        }
    }
    if (parent.kind == .virtual) return sys.fail(.NOENT);
    const found = lookupHost(s, parent.fd, tag, name.ptr, name.len) catch |e| {
        // A negative entry with a timeout lets the guest cache the miss (as virtiofsd does).
        if (sys.last == .NOENT) return s.replyStruct(negativeEntry());
        return e;
    };
    return s.replyStruct(entryOut(s, found.index, found.attr));
}

fn negativeEntry() fuse.EntryOut {
    var e = std.mem.zeroes(fuse.EntryOut);
    e.entry_valid = Server.cache_timeout_s;
    return e;
}

pub fn getattr(s: *Server, req: *Request) Error!void {
    _ = try req.take(fuse.GetattrIn);
    const index = try inode(s, req.header.nodeid);
    const attr = try attrOf(s, index);
    return s.replyStruct(fuse.AttrOut{
        .attr_valid = Server.cache_timeout_s,
        .attr_valid_nsec = 0,
        .dummy = 0,
        .attr = attr,
    });
}

fn replyAttr(s: *Server, n: *const Inodes.Inode) sys.Error!void {
    const st = try sys.fstat(n.fd);
    return s.replyStruct(fuse.AttrOut{
        .attr_valid = Server.cache_timeout_s,
        .attr_valid_nsec = 0,
        .dummy = 0,
        .attr = attrFromStat(&st),
    });
}

// ---- setattr --------------------------------------------------------------------------------

pub fn setattr(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.SetattrIn);
    const n = try hostInode(s, req.header.nodeid);
    var p: sys.ProcPath = .{};
    if (in.valid & fuse.Fattr.mode != 0) {
        // chmod has no AT_EMPTY_PATH form; the magic link names exactly this inode.
        if (n.type == S.IFLNK) return sys.fail(.OPNOTSUPP);
        try sys.fchmodat(s.proc_fd, p.name(n.fd), keptMode(s, n.type, in.mode & 0o7777));
    }
    if (in.valid & (fuse.Fattr.uid | fuse.Fattr.gid) != 0) {
        const uid: u32 = if (in.valid & fuse.Fattr.uid != 0) in.uid else std.math.maxInt(u32);
        const gid: u32 = if (in.valid & fuse.Fattr.gid != 0) in.gid else std.math.maxInt(u32);
        try sys.fchownat(n.fd, "", uid, gid, sys.AT.EMPTY_PATH | sys.AT.SYMLINK_NOFOLLOW);
    }
    if (in.valid & fuse.Fattr.size != 0) {
        try truncate(s, n, in, req.header.nodeid);
        // A truncate is a write: Linux clears set-id bits for writers without CAP_FSETID.
        if (in.valid & fuse.Fattr.mode == 0) try killPrivOnWrite(s, n.fd, req.header.uid);
    }
    if (in.valid & (fuse.Fattr.atime | fuse.Fattr.mtime) != 0) {
        const times = [2]linux.timespec{
            try timeArg(in.valid, fuse.Fattr.atime, fuse.Fattr.atime_now, in.atime, in.atimensec),
            try timeArg(in.valid, fuse.Fattr.mtime, fuse.Fattr.mtime_now, in.mtime, in.mtimensec),
        };
        try sys.utimensat(n.fd, "", &times, sys.AT.EMPTY_PATH | sys.AT.SYMLINK_NOFOLLOW);
    }
    return replyAttr(s, n);
}

fn timeArg(valid: u32, set: u32, now: u32, sec: u64, nsec: u32) sys.Error!linux.timespec {
    const utime_now = (1 << 30) - 1;
    const utime_omit = (1 << 30) - 2;
    if (valid & set == 0) return .{ .sec = 0, .nsec = utime_omit };
    if (valid & now != 0) return .{ .sec = 0, .nsec = utime_now };
    if (nsec >= std.time.ns_per_s) return sys.fail(.INVAL);
    return .{ .sec = @bitCast(sec), .nsec = nsec };
}

fn truncate(s: *Server, n: *const Inodes.Inode, in: fuse.SetattrIn, nodeid: u64) sys.Error!void {
    if (n.type == S.IFDIR) return sys.fail(.ISDIR);
    if (n.type != S.IFREG) return sys.fail(.INVAL);
    if (in.size > std.math.maxInt(i64)) return sys.fail(.INVAL);
    if (in.valid & fuse.Fattr.fh != 0) {
        if (s.handles.find(in.fh)) |h| {
            if (h.kind == .file and h.writable and h.nodeid == nodeid) {
                return sys.ftruncate(h.fd, in.size);
            }
        }
    }
    const fd = try reopen(s, n, O.WRONLY);
    defer sys.close(fd);
    return sys.ftruncate(fd, in.size);
}

// ---- names ----------------------------------------------------------------------------------

pub fn readlink(s: *Server, req: *Request) Error!void {
    const n = s.inodes.get(try inode(s, req.header.nodeid));
    if (n.kind != .host or n.type != S.IFLNK) return sys.fail(.INVAL);
    const room = @min(s.replyRoom(), Server.path_max);
    const buf = try s.replySpace(room);
    const len = try sys.readlinkat(n.fd, "", buf);
    s.replyShrink(room - len);
}

/// Mode bits a guest may set on a host entry of `kind`: without S_ISUID/S_ISGID on anything
/// but a directory when the server strips set-id bits (a directory's S_ISGID only hands its
/// group down).
fn keptMode(s: *const Server, kind: u32, mode: u32) u32 {
    if (!s.strip_setid or kind == S.IFDIR) return mode;
    return mode & ~@as(u32, S.ISUID | S.ISGID);
}

/// After a write (WRITE, COPY_FILE_RANGE, a truncate) by another uid than the owner: Linux
/// clears S_ISUID (and S_ISGID with group execute) for writers without CAP_FSETID; the server
/// writes as root, so it does it here. `fd` may be an O_PATH fd.
fn killPrivOnWrite(s: *const Server, fd: sys.fd_t, writer_uid: u32) sys.Error!void {
    if (!s.strip_setid) return;
    const st = try sys.fstat(fd);
    if (st.mode & (S.ISUID | S.ISGID) == 0 or st.uid == writer_uid) return;
    var p: sys.ProcPath = .{};
    try sys.fchmodat(s.proc_fd, p.name(fd), keptMode(s, st.mode & S.IFMT, st.mode & 0o7777));
}

/// After a create: give the entry to the guest caller (as root), restore the mode bits the
/// VMM's umask took, drop set-id bits the guest may not leave, and reply its entry.
fn finishCreate(s: *Server, req: *const Request, parent: *const Inodes.Inode, name: [:0]const u8, mode: u32) sys.Error!u32 {
    const index = (try lookupHost(s, parent.fd, parent.entry, name.ptr, name.len)).index;
    const n = s.inodes.get(index);
    errdefer s.inodes.forget(index, 1);
    if (s.chown_new) {
        const pst = try sys.fstat(parent.fd);
        // A setgid directory hands its group down, as the kernel would.
        const gid = if (pst.mode & S.ISGID != 0) pst.gid else req.header.gid;
        try sys.fchownat(n.fd, "", req.header.uid, gid, sys.AT.EMPTY_PATH | sys.AT.SYMLINK_NOFOLLOW);
    }
    if (n.type != S.IFLNK) {
        const st = try sys.fstat(n.fd);
        const want = keptMode(s, n.type, (st.mode & 0o7000) | (mode & 0o777));
        if (want != st.mode & 0o7777) {
            var p: sys.ProcPath = .{};
            try sys.fchmodat(s.proc_fd, p.name(n.fd), want);
        }
    }
    return index;
}

pub fn symlink(s: *Server, req: *Request) Error!void {
    const name = try req.name();
    const target = try req.string(Server.path_max - 1);
    if (target.len == 0) return sys.fail(.NOENT);
    const parent = try hostDir(s, req.header.nodeid);
    try sys.symlinkat(target.ptr, parent.fd, name.ptr);
    return replyEntry(s, try finishCreate(s, req, parent, name, 0o777));
}

pub fn mknod(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.MknodIn);
    const name = try req.name();
    const parent = try hostDir(s, req.header.nodeid);
    const kind = in.mode & S.IFMT;
    switch (kind) {
        0, S.IFREG, S.IFIFO, S.IFSOCK => {},
        // Only the overlayfs whiteout: any other device node in the share is a host device.
        S.IFCHR => if (in.rdev != 0) return sys.fail(.PERM),
        S.IFBLK => return sys.fail(.PERM),
        else => return sys.fail(.INVAL),
    }
    try sys.mknodat(parent.fd, name.ptr, in.mode & (S.IFMT | 0o7777), in.rdev);
    return replyEntry(s, try finishCreate(s, req, parent, name, in.mode));
}

pub fn mkdir(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.MkdirIn);
    const name = try req.name();
    const parent = try hostDir(s, req.header.nodeid);
    try sys.mkdirat(parent.fd, name.ptr, in.mode & 0o7777);
    return replyEntry(s, try finishCreate(s, req, parent, name, in.mode));
}

pub fn unlink(s: *Server, req: *Request, flags: u32) Error!void {
    const name = try req.name();
    const parent = try hostDir(s, req.header.nodeid);
    try sys.unlinkat(parent.fd, name.ptr, flags);
}

pub fn rename(s: *Server, req: *Request, with_flags: bool) Error!void {
    var newdir: u64 = undefined;
    var flags: u32 = 0;
    if (with_flags) {
        const in = try req.take(fuse.Rename2In);
        newdir = in.newdir;
        flags = in.flags;
    } else {
        newdir = (try req.take(fuse.RenameIn)).newdir;
    }
    const noreplace = 1;
    const exchange = 2;
    const whiteout = 4;
    if (flags & ~@as(u32, noreplace | exchange | whiteout) != 0) return sys.fail(.INVAL);
    const old = try req.name();
    const new = try req.name();
    const from = try hostDir(s, req.header.nodeid);
    const to = try hostDir(s, newdir);
    try sys.renameat2(from.fd, old.ptr, to.fd, new.ptr, flags);
}

pub fn link(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.LinkIn);
    const name = try req.name();
    const parent = try hostDir(s, req.header.nodeid);
    const old = try hostInode(s, in.oldnodeid);
    if (old.type == S.IFDIR) return sys.fail(.PERM);
    // The magic link names the inode we hold, so no path (and nothing outside) is involved;
    // unlike AT_EMPTY_PATH it needs no CAP_DAC_READ_SEARCH.
    var p: sys.ProcPath = .{};
    try sys.linkat(s.proc_fd, p.name(old.fd), parent.fd, name.ptr, sys.AT.SYMLINK_FOLLOW);
    const found = try lookupHost(s, parent.fd, parent.entry, name.ptr, name.len);
    return s.replyStruct(entryOut(s, found.index, found.attr));
}

// ---- open, create, release ------------------------------------------------------------------

/// The guest's open flags as we pass them to the host: access mode and the flags that only
/// change I/O behaviour. Creation and lookup flags are ours to set.
fn openFlags(s: *const Server, guest: u32) sys.Error!u32 {
    const keep = O.ACCMODE | O.APPEND | O.TRUNC | O.DSYNC | O.SYNC;
    const flags = guest & keep;
    if (flags & O.ACCMODE == O.ACCMODE) return sys.fail(.INVAL);
    if (s.options.read_only and (flags & O.ACCMODE != O.RDONLY or flags & O.TRUNC != 0)) return sys.fail(.ROFS);
    return flags;
}

fn writable(flags: u32) bool {
    return flags & O.ACCMODE != O.RDONLY;
}

pub fn open(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.OpenIn);
    const n = s.inodes.get(try inode(s, req.header.nodeid));
    const flags = try openFlags(s, in.flags);
    if (n.type == S.IFDIR) return sys.fail(.ISDIR);
    if (n.kind == .virtual) {
        if (writable(flags) or flags & O.TRUNC != 0) return sys.fail(.ROFS);
        const fh = s.handles.add(.{ .kind = .virtual_file, .nodeid = req.header.nodeid, .entry = n.entry }) orelse return sys.fail(.NFILE);
        return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
    }
    if (n.type != S.IFREG) return sys.fail(.NXIO);
    const fd = try reopen(s, n, flags);
    const fh = s.handles.add(.{ .kind = .file, .fd = fd, .nodeid = req.header.nodeid, .writable = writable(flags) }) orelse return sys.fail(.NFILE);
    return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

pub fn opendir(s: *Server, req: *Request) Error!void {
    _ = try req.take(fuse.OpenIn);
    const n = s.inodes.get(try inode(s, req.header.nodeid));
    if (n.type != S.IFDIR) return sys.fail(.NOTDIR);
    var h: Handles.Handle = .{ .kind = .virtual_dir, .nodeid = req.header.nodeid, .entry = n.entry };
    if (n.kind == .host) {
        h.kind = .dir;
        h.fd = try reopen(s, n, O.RDONLY | O.DIRECTORY);
    }
    const fh = s.handles.add(h) orelse return sys.fail(.NFILE);
    return s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

pub fn create(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.CreateIn);
    const name = try req.name();
    const parent = try hostDir(s, req.header.nodeid);
    const flags = try openFlags(s, in.flags);
    const excl = in.flags & O.EXCL != 0;
    // O_EXCL|O_NOFOLLOW first: it creates a regular file or fails, never opening what is there.
    const created_fd: ?sys.fd_t = sys.openat(parent.fd, name.ptr, flags | O.CREAT | O.EXCL | O.NOFOLLOW | O.CLOEXEC | O.NONBLOCK, in.mode & 0o7777) catch |e| blk: {
        if (sys.last != .EXIST or excl) return e;
        break :blk null;
    };
    var index: u32 = undefined;
    var fd: sys.fd_t = undefined;
    if (created_fd) |cfd| {
        fd = cfd;
        errdefer sys.close(fd);
        index = try finishCreate(s, req, parent, name, in.mode);
    } else {
        // It exists and the guest did not ask for O_EXCL: open it like OPEN would, which
        // refuses anything but a regular file.
        index = (try lookupHost(s, parent.fd, parent.entry, name.ptr, name.len)).index;
        const n = s.inodes.get(index);
        if (n.type != S.IFREG) {
            s.inodes.forget(index, 1);
            return sys.fail(if (n.type == S.IFDIR) .ISDIR else .NXIO);
        }
        fd = reopen(s, n, flags) catch |e| {
            s.inodes.forget(index, 1);
            return e;
        };
    }
    const fh = s.handles.add(.{ .kind = .file, .fd = fd, .nodeid = s.inodes.nodeId(index), .writable = writable(flags) }) orelse {
        s.inodes.forget(index, 1);
        return sys.fail(.NFILE);
    };
    const attr = attrOf(s, index) catch |e| {
        _ = s.handles.remove(fh);
        s.inodes.forget(index, 1);
        return e;
    };
    try s.replyStruct(entryOut(s, index, attr));
    try s.replyStruct(fuse.OpenOut{ .fh = fh, .open_flags = 0, .backing_id = 0 });
}

pub fn release(s: *Server, req: *Request, dir: bool) Error!void {
    const in = try req.take(fuse.ReleaseIn);
    const kinds: []const Handles.Kind = if (dir) &.{ .dir, .virtual_dir } else &.{ .file, .virtual_file };
    _ = try handleOf(s, in.fh, kinds);
    if (!s.handles.remove(in.fh)) return sys.fail(.BADF);
}

pub fn flush(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FlushIn);
    const h = try handleOf(s, in.fh, &.{ .file, .virtual_file });
    // close() drops a process's POSIX locks; our locks live on the handle's description.
    if (h.kind == .file) {
        var fl = std.mem.zeroes(linux.Flock);
        fl.type = linux.F.UNLCK;
        sys.fcntlLock(h.fd, linux.F.OFD_SETLK, &fl) catch {};
    }
}

pub fn fsync(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FsyncIn);
    const h = try handleOf(s, in.fh, &.{ .file, .dir, .virtual_file, .virtual_dir });
    if (h.fd < 0) return;
    return sys.fsync(h.fd, in.fsync_flags & fuse.fsync_fdatasync != 0);
}

pub fn syncfs(s: *Server, req: *Request) Error!void {
    _ = req;
    const root = s.inodes.get(0);
    if (root.kind != .host) return;
    // syncfs needs an fd of the filesystem, not an O_PATH one.
    const fd = try reopen(s, root, O.RDONLY | O.DIRECTORY);
    defer sys.close(fd);
    try sys.syncfs(fd);
}

// ---- data -----------------------------------------------------------------------------------

fn offsetArg(off: u64) sys.Error!u64 {
    if (off > std.math.maxInt(i64)) return sys.fail(.INVAL);
    return off;
}

pub fn read(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.ReadIn);
    const h = try handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (in.size > s.options.max_write) return sys.fail(.INVAL);
    const off = try offsetArg(in.offset);
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
    var left: usize = size;
    var count: usize = 0;
    for (s.direct_out) |*iov| {
        if (left == 0) break;
        iov.len = @min(iov.len, left);
        left -= iov.len;
        count += 1;
    }
    if (left > 0) return false;
    if (count == 0) return true; // a zero-byte read: an empty reply
    s.direct_len = try sys.preadv(fd, s.direct_out[0..count], off);
    return true;
}

pub fn write(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.WriteIn);
    const data = req.rest();
    const supplied = if (s.direct_in_len > 0) s.direct_in_len else data.len;
    if (in.size > supplied or in.size > s.options.max_write) return sys.fail(.INVAL);
    const h = try handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (h.kind == .virtual_file or !h.writable) return sys.fail(.BADF);
    const off = try offsetArg(in.offset);
    const n = if (s.direct_in_len > 0)
        try directWrite(s, h.fd, in.size, off)
    else
        try sys.pwrite(h.fd, data[0..in.size], off);
    try killPrivOnWrite(s, h.fd, req.header.uid);
    return s.replyStruct(fuse.WriteOut{ .size = @intCast(n), .padding = 0 });
}

/// WRITE straight from the guest's buffer (Server.direct_in), the first `size` bytes of it.
fn directWrite(s: *Server, fd: sys.fd_t, size: u32, off: u64) sys.Error!usize {
    var left: usize = size;
    var count: usize = 0;
    for (s.direct_in) |*iov| {
        if (left == 0) break;
        iov.len = @min(iov.len, left);
        left -= iov.len;
        count += 1;
    }
    if (count == 0) return 0;
    return sys.pwritev(fd, s.direct_in[0..count], off);
}

pub fn fallocate(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.FallocateIn);
    const h = try handleOf(s, in.fh, &.{ .file, .virtual_file });
    if (h.kind == .virtual_file or !h.writable) return sys.fail(.BADF);
    return sys.fallocate(h.fd, in.mode, try offsetArg(in.offset), try offsetArg(in.length));
}

pub fn lseek(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.LseekIn);
    const h = try handleOf(s, in.fh, &.{.file});
    if (in.whence > 4) return sys.fail(.INVAL);
    const off = try sys.lseek(h.fd, @bitCast(try offsetArg(in.offset)), in.whence);
    return s.replyStruct(fuse.LseekOut{ .offset = off });
}

pub fn copyFileRange(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.CopyFileRangeIn);
    if (in.flags != 0) return sys.fail(.INVAL);
    const from = try handleOf(s, in.fh_in, &.{.file});
    const to = try handleOf(s, in.fh_out, &.{.file});
    if (!to.writable) return sys.fail(.BADF);
    if (to.nodeid != in.nodeid_out) return sys.fail(.BADF);
    var off_in: i64 = @bitCast(try offsetArg(in.off_in));
    var off_out: i64 = @bitCast(try offsetArg(in.off_out));
    const n = try sys.copyFileRange(from.fd, &off_in, to.fd, &off_out, @min(in.len, copy_max), 0);
    try killPrivOnWrite(s, to.fd, req.header.uid);
    return s.replyStruct(fuse.WriteOut{ .size = @intCast(n), .padding = 0 });
}

// ---- directories ----------------------------------------------------------------------------

pub fn readdir(s: *Server, req: *Request, plus: bool) Error!void {
    const in = try req.take(fuse.ReadIn);
    const h = try handleOf(s, in.fh, &.{ .dir, .virtual_dir });
    const room = @min(in.size, s.replyRoom());
    if (h.kind == .virtual_dir) return readdirVirtual(s, h.entry, in.offset, room, plus);
    _ = try sys.lseek(h.fd, @bitCast(try offsetArg(in.offset)), 0);
    // The directory's overlay tag, for entries READDIRPLUS looks up.
    const tag = if (s.inodes.find(h.nodeid)) |i| s.inodes.get(i).entry else Virtual.none;
    var used: usize = 0;
    while (true) {
        const got = try sys.getdents64(h.fd, s.dir_buf);
        if (got == 0) break;
        var pos: usize = 0;
        while (pos < got) {
            const d = direntAt(s.dir_buf[0..got], pos) orelse return sys.fail(.IO);
            pos += d.reclen;
            const size = fuse.direntSize(if (plus) @sizeOf(fuse.EntryOut) + fuse.name_offset else fuse.name_offset, d.name.len);
            if (used + size > room) return;
            var entry = std.mem.zeroes(fuse.EntryOut);
            if (plus and !isDots(d.name)) plusEntry(s, h.fd, tag, d.name, &entry);
            try emitDirent(s, if (plus) &entry else null, d.ino, d.off, d.type, d.name);
            used += size;
        }
    }
}

/// READDIRPLUS looks each entry up (one reference, like LOOKUP); "." and ".." and entries that
/// vanished meanwhile get node id 0, which the kernel skips without taking a reference.
fn plusEntry(s: *Server, dir_fd: sys.fd_t, tag: u16, name: [:0]const u8, out: *fuse.EntryOut) void {
    const found = lookupHost(s, dir_fd, tag, name.ptr, name.len) catch return;
    out.* = entryOut(s, found.index, found.attr);
}

fn isDots(name: []const u8) bool {
    return std.mem.eql(u8, name, ".") or std.mem.eql(u8, name, "..");
}

const HostDirent = struct { ino: u64, off: u64, reclen: u16, type: u32, name: [:0]const u8 };

/// One linux_dirent64 from the kernel's buffer, checked anyway.
fn direntAt(buf: []const u8, pos: usize) ?HostDirent {
    const head = 19; // d_ino, d_off, d_reclen, d_type
    if (buf.len - pos < head) return null;
    const reclen = std.mem.readInt(u16, buf[pos + 16 ..][0..2], .little);
    if (reclen <= head or reclen > buf.len - pos) return null;
    const rec = buf[pos..][0..reclen];
    const nul = std.mem.indexOfScalarPos(u8, rec, head, 0) orelse return null;
    return .{
        .ino = std.mem.readInt(u64, rec[0..8], .little),
        .off = std.mem.readInt(u64, rec[8..16], .little),
        .reclen = reclen,
        .type = rec[18],
        .name = rec[head..nul :0],
    };
}

fn emitDirent(s: *Server, entry: ?*const fuse.EntryOut, ino: u64, off: u64, dtype: u32, name: []const u8) sys.Error!void {
    if (entry) |e| try s.replyStruct(e.*);
    try s.replyStruct(fuse.Dirent{ .ino = ino, .off = off, .namelen = @intCast(name.len), .type = dtype });
    const padded = fuse.direntSize(name.len, 0);
    const buf = try s.replySpace(padded);
    @memcpy(buf[0..name.len], name);
    @memset(buf[name.len..], 0);
}

/// A virtual directory: ".", "..", then its listable overlay children; offsets are positions.
fn readdirVirtual(s: *Server, dir: u16, offset: u64, room: usize, plus: bool) sys.Error!void {
    var used: usize = 0;
    var pos: u64 = offset;
    while (pos < Virtual.entries_max + 2) : (pos += 1) {
        var name: []const u8 = undefined;
        var child: ?u16 = null;
        switch (pos) {
            0 => name = ".",
            1 => name = "..",
            else => {
                child = s.virtual.listChild(dir, @intCast(pos - 2)) orelse return;
                name = s.virtual.get(child.?).name;
            },
        }
        const size = fuse.direntSize(if (plus) @sizeOf(fuse.EntryOut) + fuse.name_offset else fuse.name_offset, name.len);
        if (used + size > room) return;
        const ftype = if (child) |c| s.virtual.fileType(c) else S.IFDIR;
        var entry = std.mem.zeroes(fuse.EntryOut);
        if (plus) if (child) |c| {
            if (s.inodes.addVirtual(c, ftype)) |index| entry = entryOut(s, index, virtualAttr(s, c));
        };
        const ino = if (child) |c| virtual_ino_base + c else virtual_ino_base;
        try emitDirent(s, if (plus) &entry else null, ino, pos + 1, ftype >> 12, name);
        used += size;
    }
}

// ---- statfs, access, xattrs ---------------------------------------------------------------------

pub fn statfs(s: *Server, req: *Request) Error!void {
    const n = s.inodes.get(try inode(s, req.header.nodeid));
    const fd = if (n.kind == .host) n.fd else s.inodes.get(0).fd;
    var out = std.mem.zeroes(fuse.Kstatfs);
    out.bsize = 4096;
    out.namelen = 255;
    out.frsize = 4096;
    if (fd >= 0) {
        const st = try sys.fstatfs(fd);
        out = .{
            .blocks = st.blocks,
            .bfree = st.bfree,
            .bavail = st.bavail,
            .files = st.files,
            .ffree = st.ffree,
            .bsize = @truncate(@as(u64, @bitCast(st.bsize))),
            .namelen = @truncate(@as(u64, @bitCast(st.namelen))),
            .frsize = @truncate(@as(u64, @bitCast(st.frsize))),
            .padding = 0,
            .spare = @splat(0),
        };
    }
    return s.replyStruct(out);
}

pub fn access(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.AccessIn);
    const n = s.inodes.get(try inode(s, req.header.nodeid));
    const w_ok = 2;
    if (in.mask & w_ok != 0 and (s.options.read_only or n.kind == .virtual)) return sys.fail(.ROFS);
    if (n.kind == .virtual) return;
    return sys.faccessat(n.fd, "", in.mask & 7, sys.AT.EMPTY_PATH);
}

/// xattr calls need a path: the inode's magic link. Symlinks are refused (the magic link of an
/// O_PATH symlink fd is not a path to the link's own xattrs).
fn xattrPath(s: *Server, nodeid: u64, p: *sys.ProcPath) sys.Error![*:0]const u8 {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return sys.fail(.NODATA);
    if (n.type == S.IFLNK) return sys.fail(.OPNOTSUPP);
    return p.of(n.fd);
}

pub fn setxattr(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.SetxattrIn);
    const name = try req.string(255);
    const value = req.rest();
    if (in.size > value.len or in.size > Server.xattr_size_max) return sys.fail(.INVAL);
    var p: sys.ProcPath = .{};
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| return if (sys.last == .NODATA) sys.fail(.ROFS) else e;
    return sys.setxattr(path, name.ptr, value[0..in.size], in.flags);
}

pub fn getxattr(s: *Server, req: *Request, list: bool) Error!void {
    const in = try req.take(fuse.GetxattrIn);
    const name: [*:0]const u8 = if (list) "" else (try req.string(255)).ptr;
    if (in.size > Server.xattr_size_max) return sys.fail(.INVAL);
    var p: sys.ProcPath = .{};
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| {
        if (sys.last != .NODATA) return e;
        // Overlays have no xattrs.
        if (!list) return e;
        if (in.size == 0) return s.replyStruct(fuse.GetxattrOut{ .size = 0, .padding = 0 });
        return;
    };
    if (in.size == 0) {
        const n = if (list) try sys.listxattr(path, &.{}) else try sys.getxattr(path, name, &.{});
        return s.replyStruct(fuse.GetxattrOut{ .size = @intCast(n), .padding = 0 });
    }
    const buf = try s.replySpace(in.size);
    const n = if (list) try sys.listxattr(path, buf) else try sys.getxattr(path, name, buf);
    s.replyShrink(in.size - n);
}

pub fn removexattr(s: *Server, req: *Request) Error!void {
    const name = try req.string(255);
    var p: sys.ProcPath = .{};
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| return if (sys.last == .NODATA) sys.fail(.ROFS) else e;
    return sys.removexattr(path, name.ptr);
}

// ---- locks ------------------------------------------------------------------------------------

/// GETLK/SETLK/SETLKW as host open-file-description locks on the handle's fd. SETLKW never
/// blocks the worker: a conflict yields error.Blocked and the device retries the request later.
pub fn lock(s: *Server, req: *Request, opcode: anytype) Error!void {
    const in = try req.take(fuse.LkIn);
    if (in.lk_flags & fuse.lk_flock != 0) return sys.fail(.NOSYS);
    const h = try handleOf(s, in.fh, &.{.file});
    if (in.lk.type > linux.F.UNLCK) return sys.fail(.INVAL);
    const start = try offsetArg(in.lk.start);
    if (in.lk.end < start) return sys.fail(.INVAL);
    var fl = std.mem.zeroes(linux.Flock);
    fl.type = @intCast(in.lk.type);
    fl.whence = 0;
    fl.start = @bitCast(start);
    // FUSE's end is inclusive, OFFSET_MAX for "to EOF" (len 0 on the host).
    fl.len = if (in.lk.end >= std.math.maxInt(i64)) 0 else @bitCast(in.lk.end - start + 1);
    switch (opcode) {
        .getlk => {
            try sys.fcntlLock(h.fd, linux.F.OFD_GETLK, &fl);
            var out = fuse.FileLock{ .start = 0, .end = 0, .type = linux.F.UNLCK, .pid = 0 };
            if (fl.type != linux.F.UNLCK) {
                const fstart: u64 = @bitCast(fl.start);
                out = .{
                    .start = fstart,
                    .end = if (fl.len == 0) std.math.maxInt(i64) else fstart + @as(u64, @bitCast(fl.len)) - 1,
                    .type = @intCast(fl.type),
                    .pid = 0,
                };
            }
            return s.replyStruct(fuse.LkOut{ .lk = out });
        },
        .setlk => return sys.fcntlLock(h.fd, linux.F.OFD_SETLK, &fl),
        .setlkw => sys.fcntlLock(h.fd, linux.F.OFD_SETLK, &fl) catch |e| {
            if (sys.last == .AGAIN) return error.Blocked;
            return e;
        },
        else => unreachable, // tidy: the dispatcher only routes these opcodes here
    }
}
