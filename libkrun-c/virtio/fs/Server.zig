//! The in-process FUSE server behind one virtio-fs device: it takes one request (the
//! device-readable segments of a descriptor chain) and writes one reply (into the
//! device-writable segments). It is single-threaded (the device's worker thread owns it).
//!
//! Every request is length-checked before it is decoded: the header's length against the bytes
//! the guest really supplied, each opcode's fixed struct, every name NUL-terminated inside the
//! request. Names are single components ("/", ".", "..", NUL, empty and over-long names are
//! refused). Node ids and file handles are looked up in tables with generations (forged or
//! stale ids are refused). Host inodes are O_PATH|O_NOFOLLOW fds opened relative to their
//! parent's fd, so a host path string is never resolved and a host symlink is never followed;
//! the guest gets the link text and resolves it in its own view. See ops.zig (with ops_file.zig
//! and ops_dir.zig) for the host side.
//!
//! Requests run with the VMM's credentials. When the VMM is root, new entries are chowned to
//! the requesting guest uid/gid so the guest sees its own ownership, and the guest cannot leave
//! set-user-ID or set-group-ID files behind (virtiofsd's killpriv, stricter): those bits are
//! stripped from every non-directory a guest creates or chmods, and on a write by another uid
//! than the file's owner. Where Linux clears them (a write or truncate by a caller without
//! CAP_FSETID, a chown), the guest kernel asks the server to (FUSE_HANDLE_KILLPRIV_V2, whatever
//! the VMM's uid): ops.killSetid.
const std = @import("std");
const assert = std.debug.assert;
const fuse = @import("fuse.zig");
const sys = @import("sys.zig").backend;
const Inodes = @import("Inodes.zig");
const Handles = @import("Handles.zig");
const Virtual = @import("Virtual.zig");
const ops = @import("ops.zig");
const ops_file = @import("ops_file.zig");
const ops_dir = @import("ops_dir.zig");
const Stats = @import("Stats.zig");
const untouched = @import("../../untouched.zig");

const log = std.log.scoped(.virtio_fs);

const Server = @This();

pub const Options = struct {
    /// Host directory to serve; null serves only virtual entries (libkrun's NullFs).
    root: ?[]const u8,
    read_only: bool = false,
    /// Largest WRITE payload / READ reply; negotiated as FUSE max_write and max_pages.
    max_write: u32 = 1 << 20,
    inodes_max: u32 = 1 << 16,
    handles_max: u32 = 1 << 14,
    /// Strip S_ISUID/S_ISGID as described above; null: when the VMM runs as root.
    strip_setid: ?bool = null,
};

/// The exit-code ioctl (`_IO('v', 2)`) the guest init issues on "/" (libkrun.md §3.4).
pub const ioctl_exit_code = 0x7602;
/// "No exit code reported yet" (libkrun uses i32::MAX too).
pub const exit_code_unset = std.math.maxInt(i32);
/// Entry and attribute cache timeouts handed to the guest, as libkrun's defaults.
pub const cache_timeout_s = 5;
const name_max = 255;
pub const path_max = 4096;
pub const xattr_size_max = 65536;
/// Room for names and small args around the biggest payload.
const args_slack = 4096 + 2 * path_max;

gpa: std.mem.Allocator,
options: Options,
inodes: Inodes,
handles: Handles,
virtual: Virtual,
/// An fd of /proc/self/fd: files are reopened for I/O through it (see ops.reopen).
proc_fd: sys.fd_t,
/// The request, gathered from its segments.
in_buf: []u8,
/// The reply being built: header at 0, payload after.
out_buf: []u8,
/// Scratch for getdents64.
dir_buf: []u8,
/// Bytes of payload written so far, and the room the guest gave us for it.
reply_len: usize = 0,
reply_cap: usize = 0,
initialized: bool = false,
/// The unique named by the last FUSE_INTERRUPT (cleared by each `process`).
interrupted: ?u64 = null,
/// Where the exit-code ioctl also stores the code (the VMM's own cell), if set.
exit_sink: ?*std.atomic.Value(i32) = null,
/// Whether new entries get chowned to the guest caller (only possible as root).
chown_new: bool,
/// Whether set-id bits are stripped (Options.strip_setid).
strip_setid: bool,
/// Whether INIT negotiated FUSE_HANDLE_KILLPRIV_V2 (see init_flags_supported).
killpriv_v2: bool = false,
/// Set by the exit-code ioctl; read by the VMM when the guest stops. Any thread.
exit_code: std.atomic.Value(i32) = .init(exit_code_unset),
/// Exit-code ioctls refused (not from init, or out of 0..255); only the first is logged.
exit_code_refused: std.atomic.Value(u32) = .init(0),
/// Request counts and times per opcode when ZKRUN_FS_STATS is set (Stats.zig), else null.
stats: ?*Stats = null,
/// Zero-copy data (set by the device for one `process` call, empty otherwise): a WRITE's data
/// still in guest memory (only its headers were gathered into in_buf), and the guest memory
/// right after the reply header where a READ on a host file may put its payload directly.
direct_in: []std.posix.iovec = &.{},
direct_in_len: usize = 0,
direct_out: []std.posix.iovec = &.{},
/// Payload bytes a READ put into direct_out (they follow the header; not in out_buf).
direct_len: usize = 0,

pub const InitError = error{ OutOfMemory, RootInvalid, ProcUnavailable } || Virtual.AddError;

pub fn init(gpa: std.mem.Allocator, options: Options) InitError!*Server {
    assert(options.max_write >= 4096 and options.max_write <= 1 << 24); // tidy: options from the VMM
    const self = try gpa.create(Server);
    errdefer gpa.destroy(self);
    sys.raiseNofile();
    self.* = .{
        .gpa = gpa,
        .options = options,
        .inodes = try Inodes.init(gpa, options.inodes_max),
        .handles = undefined,
        .virtual = Virtual.init(options.root == null),
        .proc_fd = -1,
        .in_buf = &.{},
        .out_buf = &.{},
        .dir_buf = &.{},
        .chown_new = sys.geteuid() == 0,
        .strip_setid = options.strip_setid orelse (sys.geteuid() == 0),
    };
    errdefer self.inodes.deinit(gpa);
    self.handles = try Handles.init(gpa, options.handles_max);
    errdefer self.handles.deinit(gpa);
    // The request buffers are as large as max_write (1 MiB); most requests use a few hundred
    // bytes, so their pages stay untouched until a large one comes (untouched.zig).
    self.in_buf = try untouched.alloc(gpa, u8, @sizeOf(fuse.InHeader) + @sizeOf(fuse.WriteIn) + options.max_write + args_slack);
    errdefer untouched.free(gpa, self.in_buf);
    self.out_buf = try untouched.alloc(gpa, u8, @sizeOf(fuse.OutHeader) + options.max_write + 4096);
    errdefer untouched.free(gpa, self.out_buf);
    self.dir_buf = try gpa.alloc(u8, 32 * 1024);
    errdefer gpa.free(self.dir_buf);
    self.proc_fd = sys.openat(sys.AT.FDCWD, "/proc/self/fd", sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0) catch
        return error.ProcUnavailable;
    errdefer sys.close(self.proc_fd);
    try self.installRoot();
    const mode = Stats.wanted();
    if (mode != .off) self.stats = gpa.create(Stats) catch null;
    if (self.stats) |st| st.* = .{ .trace = mode == .trace };
    return self;
}

fn installRoot(self: *Server) InitError!void {
    const path = self.options.root orelse {
        self.inodes.setRoot(.{ .kind = .virtual, .type = sys.S.IFDIR, .dev = std.math.maxInt(u64), .ino = 0, .entry = 0 });
        return;
    };
    var buf: [path_max]u8 = undefined;
    if (path.len >= buf.len) return error.RootInvalid;
    @memcpy(buf[0..path.len], path);
    buf[path.len] = 0;
    // The one host path ever resolved: the share itself, as the VMM's caller named it.
    const fd = sys.openat(sys.AT.FDCWD, buf[0..path.len :0], sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0) catch
        return error.RootInvalid;
    const st = sys.fstat(fd) catch {
        sys.close(fd);
        return error.RootInvalid;
    };
    self.inodes.setRoot(.{ .kind = .host, .fd = fd, .type = sys.S.IFDIR, .dev = st.dev, .ino = st.ino, .entry = 0 });
}

pub fn deinit(self: *Server) void {
    const gpa = self.gpa;
    self.handles.deinit(gpa);
    self.inodes.deinit(gpa);
    sys.close(self.proc_fd);
    untouched.free(gpa, self.in_buf);
    untouched.free(gpa, self.out_buf);
    gpa.free(self.dir_buf);
    if (self.stats) |st| gpa.destroy(st);
    gpa.destroy(self);
}

/// Ends the FUSE session (device reset): every handle and every inode but the root is dropped,
/// so a driver that resets and starts over cannot pile up host fds. One-shot overlay entries
/// stay consumed.
pub fn endSession(self: *Server) void {
    for (self.handles.slots[0..self.handles.used], 0..) |h, i| {
        if (h.kind == .free) continue;
        assert(self.handles.remove((@as(u64, h.generation) << 32) | (i + 1))); // tidy: teardown of our own table
    }
    for (self.inodes.slots[1..self.inodes.used], 1..) |n, i| {
        if (n.kind != .free) self.inodes.forget(@intCast(i), std.math.maxInt(u64));
    }
    assert(self.inodes.live == 1); // tidy: teardown of our own table
    self.initialized = false;
}

/// Adds an overlay file (krun_fs_add_overlay_file; `/init.krun` is one, one-shot).
pub fn addOverlayFile(self: *Server, path: []const u8, data: []const u8, mode: u32, one_shot: bool) Virtual.AddError!void {
    return self.virtual.addFile(path, data, mode, one_shot);
}

pub fn addOverlayDir(self: *Server, path: []const u8, mode: u32) Virtual.AddError!void {
    return self.virtual.addDir(path, mode);
}

/// What became of one request.
pub const Outcome = union(enum) {
    /// A reply of this many bytes was written to the out segments.
    reply: u32,
    /// The request takes no reply (FORGET, BATCH_FORGET, INTERRUPT) or none could be written.
    none,
    /// SETLKW on a held lock: keep the chain and offer it again later (see `handle`).
    blocked,
};

/// Handles one FUSE request. `in` are the chain's device-readable segments, `out` its
/// device-writable ones. Never fails: a bad request gets an error reply (or none).
pub fn handle(self: *Server, in: []const []const u8, out: []const []u8) Outcome {
    const got = gather(self.in_buf, in);
    var out_total: usize = 0;
    for (out) |seg| out_total += seg.len;
    const outcome = self.process(got.len, out_total);
    if (outcome == .reply) scatter(out, self.out_buf[0..outcome.reply]);
    return outcome;
}

/// Handles the request already in `in_buf[0..got_len]` (the device reads the chain straight
/// into it); a reply goes to `out_buf[0..n]`, at most `out_room` bytes.
pub fn process(self: *Server, got_len: usize, out_room: usize) Outcome {
    assert(got_len <= self.in_buf.len); // tidy: the device bounds the gathered length by in_buf
    const st = self.stats orelse return self.processRequest(got_len, out_room);
    const started = Stats.now();
    defer st.record(self.in_buf[0..got_len], started);
    return self.processRequest(got_len, out_room);
}

fn processRequest(self: *Server, got_len: usize, out_room: usize) Outcome {
    const got = self.in_buf[0..got_len];
    const out_total = @min(out_room, self.out_buf.len);
    self.interrupted = null;
    self.direct_len = 0;
    if (out_total < @sizeOf(fuse.OutHeader)) {
        // No room even for an error: the chain goes back with nothing written. The request
        // still runs when it takes no reply (a FORGET must not be lost).
        if (got.len >= @sizeOf(fuse.InHeader) and isNoReply(got)) {
            self.reply_len = 0;
            self.reply_cap = 0;
            var header: fuse.InHeader = undefined;
            self.decode(got, &header) catch {};
        }
        return .none;
    }
    self.reply_len = 0;
    self.reply_cap = out_total - @sizeOf(fuse.OutHeader);

    var header: fuse.InHeader = std.mem.zeroes(fuse.InHeader);
    const result = self.decode(got, &header);
    var err: i32 = 0;
    result catch |e| switch (e) {
        error.NoReply => return .none,
        error.Blocked => return .blocked,
        else => err = -@as(i32, @backingInt(sys.errnoOf(@errorCast(e)))),
    };
    return .{ .reply = self.finishReply(header.unique, err) };
}

/// Writes the out header in front of the payload built so far (dropped on error).
fn finishReply(self: *Server, unique: u64, err: i32) u32 {
    if (err != 0) {
        self.reply_len = 0;
        self.direct_len = 0;
    }
    const len: u32 = @intCast(@sizeOf(fuse.OutHeader) + self.reply_len + self.direct_len);
    const oh: fuse.OutHeader = .{ .len = len, .@"error" = err, .unique = unique };
    @memcpy(self.out_buf[0..@sizeOf(fuse.OutHeader)], std.mem.asBytes(&oh));
    return len;
}

/// A bare error reply for a request the device kept waiting (an interrupted SETLKW).
pub fn errorReply(self: *Server, unique: u64, e: sys.E) u32 {
    self.reply_len = 0;
    return self.finishReply(unique, -@as(i32, @backingInt(e)));
}

/// The unique of the request in `in_buf` (the device notes it when a request blocks).
pub fn requestUnique(self: *const Server, got_len: usize) u64 {
    if (got_len < @sizeOf(fuse.InHeader)) return 0;
    return std.mem.readInt(u64, self.in_buf[8..16], .little);
}

fn isNoReply(got: []const u8) bool {
    const op = std.mem.readInt(u32, got[4..8], .little);
    return op == @backingInt(fuse.Opcode.forget) or op == @backingInt(fuse.Opcode.batch_forget) or
        op == @backingInt(fuse.Opcode.interrupt);
}

/// Copies the segments into `buf`; bytes beyond it are dropped (and refused by the length check).
fn gather(buf: []u8, in: []const []const u8) []const u8 {
    var n: usize = 0;
    for (in) |seg| {
        const take = @min(seg.len, buf.len - n);
        @memcpy(buf[n..][0..take], seg[0..take]);
        n += take;
        if (n == buf.len) break;
    }
    return buf[0..n];
}

fn scatter(out: []const []u8, bytes: []const u8) void {
    var n: usize = 0;
    for (out) |seg| {
        if (n == bytes.len) break;
        const take = @min(seg.len, bytes.len - n);
        @memcpy(seg[0..take], bytes[n..][0..take]);
        n += take;
    }
    assert(n == bytes.len); // tidy: we sized the reply
}

pub const Error = sys.Error || error{ NoReply, Blocked };

/// The validated view of one request's arguments.
pub const Request = struct {
    header: fuse.InHeader,
    args: []const u8,
    pos: usize = 0,

    /// The next fixed struct; EINVAL if the request is too short for it.
    pub fn take(self: *Request, comptime T: type) sys.Error!T {
        if (self.args.len - self.pos < @sizeOf(T)) return error.INVAL;
        var value: T = undefined;
        @memcpy(std.mem.asBytes(&value), self.args[self.pos..][0..@sizeOf(T)]);
        self.pos += @sizeOf(T);
        return value;
    }

    /// The next NUL-terminated string, which must end inside the request.
    pub fn string(self: *Request, max: usize) sys.Error![:0]const u8 {
        const tail = self.args[self.pos..];
        const nul = std.mem.indexOfScalar(u8, tail, 0) orelse return error.INVAL;
        if (nul > max) return error.NAMETOOLONG;
        self.pos += nul + 1;
        return tail[0..nul :0];
    }

    /// The next directory-entry name: one path component, never "", ".", ".." or with "/".
    pub fn name(self: *Request) sys.Error![:0]const u8 {
        const s = try self.string(name_max);
        try checkName(s);
        return s;
    }

    pub fn rest(self: *Request) []const u8 {
        return self.args[self.pos..];
    }
};

pub fn checkName(s: []const u8) sys.Error!void {
    if (s.len == 0) return error.INVAL;
    if (s.len > name_max) return error.NAMETOOLONG;
    if (std.mem.eql(u8, s, ".") or std.mem.eql(u8, s, "..")) return error.INVAL;
    if (std.mem.indexOfScalar(u8, s, '/') != null) return error.INVAL;
}

fn decode(self: *Server, got: []const u8, header: *fuse.InHeader) Error!void {
    if (got.len < @sizeOf(fuse.InHeader)) return error.INVAL;
    @memcpy(std.mem.asBytes(header), got[0..@sizeOf(fuse.InHeader)]);
    const opcode: fuse.Opcode = @fromBackingInt(@intCast(header.opcode));
    // The header's length must match what the guest supplied, extensions included.
    // With a direct WRITE (see direct_in) the data stays in guest memory: the device checked
    // that the header's length is exactly the gathered headers plus that data, no extensions.
    if (self.direct_in_len > 0 and (opcode != .write or header.total_extlen != 0 or
        header.len != got.len + self.direct_in_len)) return self.refuse(opcode, .INVAL);
    const supplied = got.len + self.direct_in_len;
    if (header.len < @sizeOf(fuse.InHeader) or header.len > supplied) return self.refuse(opcode, .INVAL);
    const ext: usize = @as(usize, header.total_extlen) * 8;
    if (ext > header.len - @sizeOf(fuse.InHeader)) return self.refuse(opcode, .INVAL);
    const args_end = @min(header.len - ext, got.len);
    var req: Request = .{ .header = header.*, .args = got[@sizeOf(fuse.InHeader)..args_end] };
    if (!self.initialized and opcode != .init) return self.refuse(opcode, .IO);
    if (self.options.read_only and mutates(opcode)) return self.refuse(opcode, .ROFS);
    return self.dispatch(opcode, &req);
}

/// An error reply, or silence for the opcodes the kernel never waits on.
fn refuse(self: *Server, opcode: fuse.Opcode, e: sys.E) Error {
    _ = self;
    return switch (opcode) {
        .forget, .batch_forget, .interrupt => error.NoReply,
        else => sys.fail(e),
    };
}

fn mutates(opcode: fuse.Opcode) bool {
    return switch (opcode) {
        .setattr, .symlink, .mknod, .mkdir, .unlink, .rmdir, .rename, .rename2, .link, .write => true,
        .setxattr, .removexattr, .create, .fallocate, .copy_file_range => true,
        else => false,
    };
}

fn dispatch(self: *Server, opcode: fuse.Opcode, req: *Request) Error!void {
    switch (opcode) {
        .init => try self.opInit(req),
        .destroy => {},
        .forget => return self.opForget(req),
        .batch_forget => return self.opBatchForget(req),
        .interrupt => {
            // Only a waiting SETLKW can be interrupted; the device looks this up.
            if (req.take(fuse.InterruptIn)) |in| self.interrupted = in.unique else |_| {}
            return error.NoReply;
        },
        .lookup => try ops.lookup(self, req),
        .getattr => try ops.getattr(self, req),
        .setattr => try ops.setattr(self, req),
        .readlink => try ops.readlink(self, req),
        .symlink => try ops.symlink(self, req),
        .mknod => try ops.mknod(self, req),
        .mkdir => try ops.mkdir(self, req),
        .unlink => try ops.unlink(self, req, 0),
        .rmdir => try ops.unlink(self, req, sys.AT.REMOVEDIR),
        .rename => try ops.rename(self, req, false),
        .rename2 => try ops.rename(self, req, true),
        .link => try ops.link(self, req),
        .open => try ops_file.open(self, req),
        .opendir => try ops_file.opendir(self, req),
        .create => try ops_file.create(self, req),
        .read => try ops_file.read(self, req),
        .write => try ops_file.write(self, req),
        .readdir => try ops_dir.readdir(self, req, false),
        .readdirplus => try ops_dir.readdir(self, req, true),
        .release, .releasedir => try ops_file.release(self, req, opcode == .releasedir),
        .flush => try ops_file.flush(self, req),
        .fsync, .fsyncdir => try ops_file.fsync(self, req),
        .statfs => try ops.statfs(self, req),
        .setxattr => try ops.setxattr(self, req),
        .getxattr => try ops.getxattr(self, req, false),
        .listxattr => try ops.getxattr(self, req, true),
        .removexattr => try ops.removexattr(self, req),
        .access => try ops.access(self, req),
        .fallocate => try ops_file.fallocate(self, req),
        .lseek => try ops_file.lseek(self, req),
        .copy_file_range => try ops_file.copyFileRange(self, req),
        .getlk, .setlk, .setlkw => try ops.lock(self, req, opcode),
        .ioctl => try self.opIoctl(req),
        .syncfs => try ops_file.syncfs(self, req),
        // bmap, poll, notify_reply, DAX mappings (no window yet), statx, tmpfile, unknown.
        else => return error.NOSYS,
    }
}

// ---- reply building ------------------------------------------------------------------------

/// Room for `n` more payload bytes; ERANGE if the guest's buffer cannot hold them.
pub fn replySpace(self: *Server, n: usize) sys.Error![]u8 {
    if (n > self.reply_cap - self.reply_len) return error.RANGE;
    const start = @sizeOf(fuse.OutHeader) + self.reply_len;
    self.reply_len += n;
    return self.out_buf[start..][0..n];
}

/// Payload room left (READ and READDIR fill up to it).
pub fn replyRoom(self: *const Server) usize {
    return self.reply_cap - self.reply_len;
}

/// Gives back the unused tail of the last replySpace.
pub fn replyShrink(self: *Server, unused: usize) void {
    assert(unused <= self.reply_len); // tidy: we sized the reply
    self.reply_len -= unused;
}

pub fn replyStruct(self: *Server, value: anytype) sys.Error!void {
    const bytes = std.mem.asBytes(&value);
    @memcpy(try self.replySpace(bytes.len), bytes);
}

// ---- opcodes that touch only the server's own state -----------------------------------------

/// INIT flags we accept. HANDLE_KILLPRIV_V2: the server clears set-id bits on write, truncate
/// and chown (ops.killSetid, as the guest kernel's KILL_SUIDGID flags ask); the guest then
/// marks the superblock SB_NOSEC, so after one security.capability query per inode its writes
/// stop asking again, and a chown no longer fetches attributes (GETATTR) first.
/// Never ALLOW_IDMAP (breaks 6.12+ guests without POSIX_ACL, libkrun#568),
/// never WRITEBACK_CACHE (guest page cache would hide host changes), no SUBMOUNTS yet.
pub const init_flags_supported: u32 = fuse.Init.async_read | fuse.Init.posix_locks |
    fuse.Init.atomic_o_trunc | fuse.Init.big_writes | fuse.Init.has_ioctl_dir |
    fuse.Init.auto_inval_data | fuse.Init.do_readdirplus | fuse.Init.readdirplus_auto |
    fuse.Init.async_dio | fuse.Init.parallel_dirops | fuse.Init.max_pages |
    fuse.Init.handle_killpriv_v2;

fn opInit(self: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.InitIn);
    var out = std.mem.zeroes(fuse.InitOut);
    out.major = fuse.kernel_version;
    out.minor = fuse.kernel_minor_version;
    if (in.major > fuse.kernel_version) {
        // The kernel retries INIT with our major.
        return self.replyStruct(out);
    }
    if (in.major < fuse.kernel_version or in.minor < fuse.kernel_minor_min) return error.PROTO;
    out.minor = @min(in.minor, fuse.kernel_minor_version);
    out.max_readahead = in.max_readahead;
    out.flags = in.flags & init_flags_supported;
    self.killpriv_v2 = out.flags & fuse.Init.handle_killpriv_v2 != 0;
    // The guest's limit on async requests (readahead, writeback) in flight, as virtiofsd
    // and libkrun: the queue (1024) bounds them anyway.
    out.max_background = 256;
    out.congestion_threshold = 192;
    out.max_write = self.options.max_write;
    out.time_gran = 1;
    out.max_pages = @intCast(self.options.max_write / 4096);
    self.initialized = true;
    return self.replyStruct(out);
}

fn opForget(self: *Server, req: *Request) Error!void {
    const in = req.take(fuse.ForgetIn) catch return error.NoReply;
    if (self.inodes.find(req.header.nodeid)) |index| self.inodes.forget(index, in.nlookup);
    return error.NoReply;
}

fn opBatchForget(self: *Server, req: *Request) Error!void {
    const in = req.take(fuse.BatchForgetIn) catch return error.NoReply;
    // Only as many entries as the request really carries.
    var left = @min(in.count, req.rest().len / @sizeOf(fuse.ForgetOne));
    while (left > 0) : (left -= 1) {
        const one = req.take(fuse.ForgetOne) catch break;
        if (self.inodes.find(one.nodeid)) |index| self.inodes.forget(index, one.nlookup);
    }
    return error.NoReply;
}

fn opIoctl(self: *Server, req: *Request) Error!void {
    const in = try req.take(fuse.IoctlIn);
    // The exit-code ioctl: only on the root, as the guest init issues it (libkrun.md §3.4).
    if (in.cmd == ioctl_exit_code and req.header.nodeid == fuse.root_id) {
        const code = exitCodeFrom(req.header.pid, in.arg) catch |err| {
            if (self.exit_code_refused.fetchAdd(1, .monotonic) == 0) log.warn("exit-code ioctl from guest pid {d} refused ({t}); later refusals are not logged", .{ req.header.pid, err });
            return if (err == error.NotInit) error.PERM else error.INVAL;
        };
        // The first report wins: init reports once, right before it reboots.
        if (self.exit_code.cmpxchgStrong(exit_code_unset, code, .acq_rel, .acquire) == null) {
            if (self.exit_sink) |sink| sink.store(code, .release);
            // The guest's last request before it powers off (krun_start_enter then _exits).
            if (self.stats) |st| st.dump("root");
        }
        return self.replyStruct(std.mem.zeroes(fuse.IoctlOut));
    }
    return error.NOTTY;
}

/// Validates an exit-code report. Only the guest's init (pid 1 in the namespace the root was
/// mounted in) may report: it forks the workload and reports that status, so any other
/// process — a uid-1000 one or a guest root — would only race it with a code that is not the
/// workload's. (libkrun accepts the ioctl from anyone.) A process in a nested pid namespace
/// shows its outer pid here, so a container's own pid 1 is not taken for init. The code is a
/// wait status byte: anything outside 0..255 is refused.
pub fn exitCodeFrom(pid: u32, arg: u64) error{ NotInit, OutOfRange }!i32 {
    if (pid != 1) return error.NotInit;
    if (arg > 255) return error.OutOfRange;
    return @intCast(arg);
}

/// The exit code the guest reported, if any.
pub fn exitCode(self: *const Server) ?i32 {
    const code = self.exit_code.load(.acquire);
    return if (code == exit_code_unset) null else code;
}

test {
    _ = fuse;
    _ = sys;
    _ = Inodes;
    _ = Handles;
    _ = Virtual;
    _ = ops;
    _ = Stats;
}
