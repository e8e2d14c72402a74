//! The passthrough side of the virtio-fs server: the inode and handle access every opcode goes
//! through, and the name, attribute, xattr and lock opcodes against the host directory, plus the
//! overlay (virtual) entries; file-handle I/O is ops_file.zig, directory listing ops_dir.zig.
//! Confinement rules kept here (the other two reach the host only through these helpers):
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
const sys = @import("sys.zig").backend;
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
pub const virtual_ino_base: u64 = 0xffff_ffff_0000_0000;

// ---- inode and handle access ----------------------------------------------------------------

pub fn inode(s: *Server, nodeid: u64) sys.Error!u32 {
    return s.inodes.find(nodeid) orelse error.NOENT;
}

/// A host directory to create or remove entries in; overlays are read-only.
pub fn hostDir(s: *Server, nodeid: u64) sys.Error!*Inodes.Inode {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return if (n.type == S.IFDIR) error.ROFS else error.NOTDIR;
    if (n.type != S.IFDIR) return error.NOTDIR;
    return n;
}

fn hostInode(s: *Server, nodeid: u64) sys.Error!*Inodes.Inode {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return error.ROFS;
    return n;
}

pub fn handleOf(s: *Server, fh: u64, kinds: []const Handles.Kind) sys.Error!*Handles.Handle {
    const h = s.handles.find(fh) orelse return error.BADF;
    if (std.mem.indexOfScalar(Handles.Kind, kinds, h.kind) == null) return error.BADF;
    return h;
}

/// Reopens an O_PATH inode for I/O via its /proc/self/fd magic link: the kernel hands back the
/// very inode the O_PATH fd holds (no name is resolved), and we check that it did.
pub fn reopen(s: *Server, n: *const Inodes.Inode, flags: u32) sys.Error!sys.fd_t {
    assert(n.kind == .host); // tidy: reopen arguments are ours
    assert(flags & (O.CREAT | O.PATH | O.NOFOLLOW) == 0); // tidy: reopen arguments are ours
    if (n.type != S.IFREG and n.type != S.IFDIR) return error.NXIO;
    var p: sys.ProcPath = .{};
    const fd = try sys.openat(s.proc_fd, p.name(n.fd), flags | O.CLOEXEC | O.NONBLOCK | O.NOCTTY, 0);
    const st = sys.fstat(fd) catch |e| {
        sys.close(fd);
        return e;
    };
    if (st.dev != n.dev or st.ino != n.ino) {
        sys.close(fd);
        return error.IO;
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

pub fn virtualAttr(s: *const Server, entry: u16) fuse.Attr {
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

pub fn attrOf(s: *Server, index: u32) sys.Error!fuse.Attr {
    const n = s.inodes.get(index);
    if (n.kind == .virtual) return virtualAttr(s, n.entry);
    const st = try sys.fstat(n.fd);
    return attrFromStat(&st);
}

pub fn entryOut(s: *Server, index: u32, attr: fuse.Attr) fuse.EntryOut {
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
pub fn lookupHost(s: *Server, dir_fd: sys.fd_t, tag: u16, name: [*:0]const u8, name_len: usize) sys.Error!Found {
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
    const index = s.inodes.addHost(fd, &st, child_tag) orelse return error.NFILE;
    return .{ .index = index, .attr = attrFromStat(&st) };
}

pub fn lookup(s: *Server, req: *Request) Error!void {
    const name = try req.name();
    const parent = s.inodes.get(try inode(s, req.header.nodeid));
    if (parent.type != S.IFDIR) return error.NOTDIR;
    const tag: u16 = parent.entry;
    if (parent.kind == .virtual or tag != Virtual.none) {
        if (s.virtual.child(tag, name)) |c| {
            if (s.virtual.get(c).kind != .anchor) {
                const index = s.inodes.addVirtual(c, s.virtual.fileType(c)) orelse return error.NFILE;
                s.virtual.consume(c);
                return replyEntry(s, index);
            }
        }
    }
    if (parent.kind == .virtual) return error.NOENT;
    const found = lookupHost(s, parent.fd, tag, name.ptr, name.len) catch |e| {
        // A negative entry with a timeout lets the guest cache the miss (as virtiofsd does).
        if (e == error.NOENT) return s.replyStruct(negativeEntry());
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
        if (n.type == S.IFLNK) return error.OPNOTSUPP;
        try sys.fchmodat(s.proc_fd, p.name(n.fd), keptMode(s, n.type, in.mode & 0o7777));
    }
    if (in.valid & (fuse.Fattr.uid | fuse.Fattr.gid) != 0) {
        const uid: u32 = if (in.valid & fuse.Fattr.uid != 0) in.uid else std.math.maxInt(u32);
        const gid: u32 = if (in.valid & fuse.Fattr.gid != 0) in.gid else std.math.maxInt(u32);
        try sys.fchownat(n.fd, "", uid, gid, sys.AT.EMPTY_PATH | sys.AT.SYMLINK_NOFOLLOW);
    }
    if (in.valid & fuse.Fattr.size != 0) try truncate(s, n, in, req.header.nodeid);
    // After a truncate (a write) or a chown; an explicit mode is the guest's last word.
    if (in.valid & fuse.Fattr.mode == 0) try killSetid(s, n.fd, &req.header, .{
        .asked = in.valid & fuse.Fattr.kill_suidgid != 0,
        .wrote = in.valid & fuse.Fattr.size != 0,
    });
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
    if (nsec >= std.time.ns_per_s) return error.INVAL;
    return .{ .sec = @bitCast(sec), .nsec = nsec };
}

fn truncate(s: *Server, n: *const Inodes.Inode, in: fuse.SetattrIn, nodeid: u64) sys.Error!void {
    if (n.type == S.IFDIR) return error.ISDIR;
    if (n.type != S.IFREG) return error.INVAL;
    if (in.size > std.math.maxInt(i64)) return error.INVAL;
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
    if (n.kind != .host or n.type != S.IFLNK) return error.INVAL;
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

/// Why set-id bits may have to go after a request on a file.
pub const Kill = struct {
    /// The guest kernel asked (a KILL_SUIDGID flag, under HANDLE_KILLPRIV_V2): a write or
    /// truncate by a caller without CAP_FSETID, or a chown. S_ISUID goes, and S_ISGID where
    /// Linux drops it: with group execute, or for a caller outside the file's group.
    asked: bool = false,
    /// The request wrote (WRITE, COPY_FILE_RANGE, FALLOCATE, a truncate): a server that strips
    /// set-id bits (as root) clears them when the writer is not the file's owner, as Linux does
    /// for writers without CAP_FSETID (the server itself writes with it).
    wrote: bool = false,
};

/// Clears the set-id bits of the file `fd` (may be an O_PATH fd) that `kill` says must go for
/// the request `header`. File capabilities (security.capability) need nothing here: the host
/// kernel removes them on every write, truncate and chown, whoever makes it.
pub fn killSetid(s: *const Server, fd: sys.fd_t, header: *const fuse.InHeader, kill: Kill) sys.Error!void {
    if (!kill.asked and !(kill.wrote and s.strip_setid)) return;
    const st = try sys.fstat(fd);
    if (st.mode & (S.ISUID | S.ISGID) == 0 or st.mode & S.IFMT == S.IFDIR) return;
    var mode = st.mode & 0o7777;
    if (kill.asked) {
        mode &= ~@as(u32, S.ISUID);
        if (mode & S.IXGRP != 0 or header.gid != st.gid) mode &= ~@as(u32, S.ISGID);
    }
    if (kill.wrote and st.uid != header.uid) mode = keptMode(s, st.mode & S.IFMT, mode);
    if (mode == st.mode & 0o7777) return;
    var p: sys.ProcPath = .{};
    try sys.fchmodat(s.proc_fd, p.name(fd), mode);
}

/// For writes whose FUSE request carries no KILL_SUIDGID flag (COPY_FILE_RANGE, FALLOCATE):
/// under HANDLE_KILLPRIV_V2 the guest kernel leaves their set-id clearing to the server, which
/// cannot see the caller's CAP_FSETID; a non-root caller is taken to lack it.
pub fn killAskedWithoutFlag(s: *const Server, header: *const fuse.InHeader) bool {
    return s.killpriv_v2 and header.uid != 0;
}

/// After a create: give the entry to the guest caller (as root), restore the mode bits the
/// VMM's umask took, drop set-id bits the guest may not leave, and reply its entry.
pub fn finishCreate(s: *Server, req: *const Request, parent: *const Inodes.Inode, name: [:0]const u8, mode: u32) sys.Error!u32 {
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
    if (target.len == 0) return error.NOENT;
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
        S.IFCHR => if (in.rdev != 0) return error.PERM,
        S.IFBLK => return error.PERM,
        else => return error.INVAL,
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
    if (flags & ~@as(u32, noreplace | exchange | whiteout) != 0) return error.INVAL;
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
    if (old.type == S.IFDIR) return error.PERM;
    // The magic link names the inode we hold, so no path (and nothing outside) is involved;
    // unlike AT_EMPTY_PATH it needs no CAP_DAC_READ_SEARCH.
    var p: sys.ProcPath = .{};
    try sys.linkat(s.proc_fd, p.name(old.fd), parent.fd, name.ptr, sys.AT.SYMLINK_FOLLOW);
    const found = try lookupHost(s, parent.fd, parent.entry, name.ptr, name.len);
    return s.replyStruct(entryOut(s, found.index, found.attr));
}

/// A guest file offset, refused if the host's off_t cannot hold it.
pub fn offsetArg(off: u64) sys.Error!u64 {
    if (off > std.math.maxInt(i64)) return error.INVAL;
    return off;
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
    if (in.mask & w_ok != 0 and (s.options.read_only or n.kind == .virtual)) return error.ROFS;
    if (n.kind == .virtual) return;
    return sys.faccessat(n.fd, "", in.mask & 7, sys.AT.EMPTY_PATH);
}

/// xattr calls need a path: the inode's magic link. Symlinks are refused (the magic link of an
/// O_PATH symlink fd is not a path to the link's own xattrs).
fn xattrPath(s: *Server, nodeid: u64, p: *sys.ProcPath) sys.Error![*:0]const u8 {
    const n = s.inodes.get(try inode(s, nodeid));
    if (n.kind == .virtual) return error.NODATA;
    if (n.type == S.IFLNK) return error.OPNOTSUPP;
    return p.of(n.fd);
}

pub fn setxattr(s: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.SetxattrIn);
    const name = try req.string(255);
    const value = req.rest();
    if (in.size > value.len or in.size > Server.xattr_size_max) return error.INVAL;
    var p: sys.ProcPath = .{};
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| return if (e == error.NODATA) error.ROFS else e;
    return sys.setxattr(path, name.ptr, value[0..in.size], in.flags);
}

pub fn getxattr(s: *Server, req: *Request, list: bool) Error!void {
    const in = try req.take(fuse.GetxattrIn);
    const name: [*:0]const u8 = if (list) "" else (try req.string(255)).ptr;
    if (in.size > Server.xattr_size_max) return error.INVAL;
    var p: sys.ProcPath = .{};
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| {
        if (e != error.NODATA) return e;
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
    const path = xattrPath(s, req.header.nodeid, &p) catch |e| return if (e == error.NODATA) error.ROFS else e;
    return sys.removexattr(path, name.ptr);
}

// ---- locks ------------------------------------------------------------------------------------

/// GETLK/SETLK/SETLKW as host open-file-description locks on the handle's fd. SETLKW never
/// blocks the worker: a conflict yields error.Blocked and the device retries the request later.
pub fn lock(s: *Server, req: *Request, opcode: anytype) Error!void {
    const in = try req.take(fuse.LkIn);
    if (in.lk_flags & fuse.lk_flock != 0) return error.NOSYS;
    const h = try handleOf(s, in.fh, &.{.file});
    if (in.lk.type > linux.F.UNLCK) return error.INVAL;
    const start = try offsetArg(in.lk.start);
    if (in.lk.end < start) return error.INVAL;
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
            if (e == error.AGAIN) return error.Blocked;
            return e;
        },
        else => unreachable, // tidy: the dispatcher only routes these opcodes here
    }
}
