//! A test-side FUSE driver: plays the guest kernel (or a hostile one) against a Server through
//! its entry point, building raw requests byte by byte. Used by the server tests, the hostile
//! harness, the fuzzer and the benchmark; never by the VMM.
const std = @import("std");
const zkrun = @import("zkrun");
const fuse = zkrun.virtio.fs.fuse;
const Server = zkrun.virtio.fs.Server;

const Driver = @This();

server: *Server,
unique: u64 = 1,
req: [1 << 21]u8 = undefined,
out: [1 << 21]u8 = undefined,
/// Guest credentials put in each header.
uid: u32 = 0,
gid: u32 = 0,
/// The guest caller's pid (in the mount's pid namespace): 1 is the guest's init.
pid: u32 = 1,

pub const Reply = struct {
    outcome: Server.Outcome,
    /// Negative errno (0 on success) from the out header; 0 when there was no reply.
    err: i32,
    payload: []const u8,

    pub fn as(self: Reply, comptime T: type) T {
        std.debug.assert(self.err == 0);
        std.debug.assert(self.payload.len >= @sizeOf(T));
        var v: T = undefined;
        @memcpy(std.mem.asBytes(&v), self.payload[0..@sizeOf(T)]);
        return v;
    }
};

pub fn create(gpa: std.mem.Allocator, server: *Server) !*Driver {
    const d = try gpa.create(Driver);
    d.* = .{ .server = server };
    return d;
}

/// Sends `parts` (fixed struct bytes, names with their NULs, data) as one request.
pub fn call(d: *Driver, opcode: fuse.Opcode, nodeid: u64, parts: []const []const u8) Reply {
    var len: usize = @sizeOf(fuse.InHeader);
    for (parts) |p| {
        @memcpy(d.req[len..][0..p.len], p);
        len += p.len;
    }
    const h: fuse.InHeader = .{
        .len = @intCast(len),
        .opcode = @backingInt(opcode),
        .unique = d.unique,
        .nodeid = nodeid,
        .uid = d.uid,
        .gid = d.gid,
        .pid = d.pid,
        .total_extlen = 0,
        .padding = 0,
    };
    d.unique += 1;
    @memcpy(d.req[0..@sizeOf(fuse.InHeader)], std.mem.asBytes(&h));
    return d.raw(d.req[0..len], d.out.len);
}

/// Sends exactly these bytes, with `out_len` bytes of reply room, split over two segments
/// each way (as a real chain often is).
pub fn raw(d: *Driver, request: []const u8, out_len: usize) Reply {
    const cut = request.len / 2;
    const ocut = @min(out_len, 24);
    const in = [_][]const u8{ request[0..cut], request[cut..] };
    const out = [_][]u8{ d.out[0..ocut], d.out[ocut..out_len] };
    const outcome = d.server.handle(&in, &out);
    switch (outcome) {
        .reply => |n| {
            var oh: fuse.OutHeader = undefined;
            @memcpy(std.mem.asBytes(&oh), d.out[0..@sizeOf(fuse.OutHeader)]);
            std.debug.assert(oh.len == n);
            return .{ .outcome = outcome, .err = oh.@"error", .payload = d.out[@sizeOf(fuse.OutHeader)..n] };
        },
        else => return .{ .outcome = outcome, .err = 0, .payload = &.{} },
    }
}

pub fn bytes(v: anytype) []const u8 {
    return std.mem.asBytes(v);
}

pub fn init(d: *Driver) !void {
    const in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 1 << 17, .flags = 0xffff_ffff };
    const r = d.call(.init, 0, &.{bytes(&in)});
    if (r.err != 0) return error.InitFailed;
}

pub fn lookup(d: *Driver, parent: u64, name: [:0]const u8) Reply {
    return d.call(.lookup, parent, &.{name[0 .. name.len + 1]});
}

pub fn lookupId(d: *Driver, parent: u64, name: [:0]const u8) !u64 {
    const r = d.lookup(parent, name);
    if (r.err != 0) return error.LookupFailed;
    const id = r.as(fuse.EntryOut).nodeid;
    // Node id 0 is a negative entry: the name does not exist.
    if (id == 0) return error.LookupFailed;
    return id;
}

pub fn open(d: *Driver, nodeid: u64, flags: u32) Reply {
    const in: fuse.OpenIn = .{ .flags = flags, .open_flags = 0 };
    return d.call(.open, nodeid, &.{bytes(&in)});
}

pub fn openFh(d: *Driver, nodeid: u64, flags: u32) !u64 {
    const r = d.open(nodeid, flags);
    if (r.err != 0) return error.OpenFailed;
    return r.as(fuse.OpenOut).fh;
}

pub fn read(d: *Driver, fh: u64, offset: u64, size: u32) Reply {
    const in = std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .offset = offset, .size = size });
    return d.call(.read, 0, &.{bytes(&in)});
}

pub fn write(d: *Driver, fh: u64, offset: u64, data: []const u8) Reply {
    const in = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .offset = offset, .size = @as(u32, @intCast(data.len)) });
    return d.call(.write, 0, &.{ bytes(&in), data });
}

pub fn release(d: *Driver, fh: u64) Reply {
    const in = std.mem.zeroInit(fuse.ReleaseIn, .{ .fh = fh });
    return d.call(.release, 0, &.{bytes(&in)});
}

pub fn mkdir(d: *Driver, parent: u64, name: [:0]const u8, mode: u32) Reply {
    const in: fuse.MkdirIn = .{ .mode = mode, .umask = 0 };
    return d.call(.mkdir, parent, &.{ bytes(&in), name[0 .. name.len + 1] });
}

pub fn createFile(d: *Driver, parent: u64, name: [:0]const u8, flags: u32, mode: u32) Reply {
    const in: fuse.CreateIn = .{ .flags = flags, .mode = mode, .umask = 0, .open_flags = 0 };
    return d.call(.create, parent, &.{ bytes(&in), name[0 .. name.len + 1] });
}

pub fn getattr(d: *Driver, nodeid: u64) Reply {
    const in = std.mem.zeroes(fuse.GetattrIn);
    return d.call(.getattr, nodeid, &.{bytes(&in)});
}

pub fn forget(d: *Driver, nodeid: u64, n: u64) void {
    const in: fuse.ForgetIn = .{ .nlookup = n };
    _ = d.call(.forget, nodeid, &.{bytes(&in)});
}
