//! The virtio-fs server's READDIR and READDIRPLUS: host directories through getdents64 on the
//! handle's fd (READDIRPLUS looks each entry up like LOOKUP, through ops.zig), overlay
//! (virtual) directories from Virtual.zig.
const std = @import("std");
const fuse = @import("fuse.zig");
const sys = @import("sys.zig").backend;
const Server = @import("Server.zig");
const Virtual = @import("Virtual.zig");
const ops = @import("ops.zig");

const Request = Server.Request;
const Error = Server.Error;
const S = sys.S;

// ---- directories ----------------------------------------------------------------------------

pub fn readdir(s: *Server, req: *Request, plus: bool) Error!void {
    const in = try req.take(fuse.ReadIn);
    const h = try ops.handleOf(s, in.fh, &.{ .dir, .virtual_dir });
    const room = @min(in.size, s.replyRoom());
    if (h.kind == .virtual_dir) return readdirVirtual(s, h.entry, in.offset, room, plus);
    _ = try sys.lseek(h.fd, @bitCast(try ops.offsetArg(in.offset)), 0);
    // The directory's overlay tag, for entries READDIRPLUS looks up.
    const tag = if (s.inodes.find(h.nodeid)) |i| s.inodes.get(i).entry else Virtual.none;
    var used: usize = 0;
    while (true) {
        const got = try sys.getdents64(h.fd, s.dir_buf);
        if (got == 0) break;
        var pos: usize = 0;
        while (pos < got) {
            const d = direntAt(s.dir_buf[0..got], pos) orelse return error.IO;
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
    const found = ops.lookupHost(s, dir_fd, tag, name.ptr, name.len) catch return;
    out.* = ops.entryOut(s, found.index, found.attr);
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
            if (s.inodes.addVirtual(c, ftype)) |index| entry = ops.entryOut(s, index, ops.virtualAttr(s, c));
        };
        const ino = if (child) |c| ops.virtual_ino_base + c else ops.virtual_ino_base;
        try emitDirent(s, if (plus) &entry else null, ino, pos + 1, ftype >> 12, name);
        used += size;
    }
}
