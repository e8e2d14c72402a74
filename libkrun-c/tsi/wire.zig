//! The TSI wire structures of tsi/PROTOCOL.md (version 1), hand-written with their layout
//! asserted, and the checks every guest request and datagram frame passes where it enters.
//! Pure: no sockets here (tsi/Service.zig acts on what `decodeRequest` / `decodeFrame` return),
//! so the decoders are unit-tested and fuzzed on their own.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;

pub const magic: u32 = 0x4953545a; // "ZTSI" in memory order
pub const version: u16 = 1;
pub const addr_bytes_max = 128;
pub const data_len_max: u32 = 65535;

pub const Op = enum(u16) { connect = 1, listen = 2, dgram = 3 };

pub const Request = extern struct {
    magic: u32,
    version: u16,
    op: u16,
    family: u16,
    type: u16,
    vm_port: u32,
    backlog: u32,
    sockopts: u32,
    rcvbuf: u32,
    sndbuf: u32,
    addr_len: u32,
    addr: [addr_bytes_max]u8,
};

/// The response, and the header of every accepted connection (result 0, addr = the peer).
pub const Response = extern struct {
    result: i32,
    addr_len: u32,
    addr: [addr_bytes_max]u8,
};

/// Each datagram on a DGRAM connection, both ways, followed by `data_len` bytes.
pub const Frame = extern struct {
    data_len: u32,
    addr_len: u32,
    addr: [addr_bytes_max]u8,
};

pub const request_size = 164;
pub const response_size = 136;
pub const frame_size = 136;

comptime {
    assert(@sizeOf(Request) == request_size);
    assert(@offsetOf(Request, "vm_port") == 12);
    assert(@offsetOf(Request, "sockopts") == 20);
    assert(@offsetOf(Request, "addr_len") == 32);
    assert(@offsetOf(Request, "addr") == 36);
    assert(@sizeOf(Response) == response_size);
    assert(@offsetOf(Response, "addr") == 8);
    assert(@sizeOf(Frame) == frame_size);
    assert(@offsetOf(Frame, "addr") == 8);
}

/// Sockopt bits the guest set (PROTOCOL.md).
pub const Sockopt = struct {
    pub const reuseaddr: u32 = 1 << 0;
    pub const reuseport: u32 = 1 << 1;
    pub const keepalive: u32 = 1 << 2;
    pub const nodelay: u32 = 1 << 3;
    pub const v6only: u32 = 1 << 4;
    pub const all: u32 = (1 << 5) - 1;
};

pub const Family = enum(u16) { unix = linux.AF.UNIX, inet = linux.AF.INET, inet6 = linux.AF.INET6 };

/// A checked socket address: the sockaddr bytes the host may pass to bind/connect/sendto.
pub const Addr = struct {
    family: Family,
    /// Aligned as a sockaddr, so it can be passed to the kernel as one.
    bytes: [addr_bytes_max]u8 align(8) = @splat(0),
    len: u32,

    /// The port of an INET/INET6 address (0 for UNIX).
    pub fn port(a: *const Addr) u16 {
        if (a.family == .unix) return 0;
        return std.mem.readInt(u16, a.bytes[2..4], .big);
    }

    pub fn setPort(a: *Addr, p: u16) void {
        assert(a.family != .unix); // tidy: callers check the family
        std.mem.writeInt(u16, a.bytes[2..4], p, .big);
    }
};

pub const Decoded = struct {
    op: Op,
    family: Family,
    /// null only for DGRAM without a bind address.
    addr: ?Addr,
    vm_port: u32,
    backlog: u32,
    sockopts: u32,
    rcvbuf: u32,
    sndbuf: u32,
};

pub const Invalid = enum { magic, version, op, family, type, addr_len, addr_family, addr, sockopts };

/// Checks a request; every field is the guest's.
pub fn decodeRequest(r: *const Request) union(enum) { ok: Decoded, invalid: Invalid } {
    if (r.magic != magic) return .{ .invalid = .magic };
    if (r.version != version) return .{ .invalid = .version };
    const op = std.enums.fromInt(Op, r.op) orelse return .{ .invalid = .op };
    const family = std.enums.fromInt(Family, r.family) orelse return .{ .invalid = .family };
    const want_type: u16 = if (op == .dgram) linux.SOCK.DGRAM else linux.SOCK.STREAM;
    if (r.type != want_type) return .{ .invalid = .type };
    if (r.sockopts & ~Sockopt.all != 0) return .{ .invalid = .sockopts };
    if (r.addr_len > addr_bytes_max) return .{ .invalid = .addr_len };
    var addr: ?Addr = null;
    if (r.addr_len > 0) {
        addr = switch (checkAddr(family, r.addr[0..r.addr_len])) {
            .ok => |a| a,
            .invalid => |why| return .{ .invalid = why },
        };
    } else if (op != .dgram) return .{ .invalid = .addr_len };
    return .{ .ok = .{
        .op = op,
        .family = family,
        .addr = addr,
        .vm_port = r.vm_port,
        .backlog = r.backlog,
        .sockopts = r.sockopts,
        .rcvbuf = r.rcvbuf,
        .sndbuf = r.sndbuf,
    } };
}

const sockaddr_in_size = 16;
const sockaddr_in6_size = 28;

/// A guest sockaddr of `family`: the family field matches, the length is the family's, and a
/// UNIX path is absolute and NUL-free (terminated here).
pub fn checkAddr(family: Family, bytes: []const u8) union(enum) { ok: Addr, invalid: Invalid } {
    assert(bytes.len <= addr_bytes_max); // tidy: callers bound addr_len first
    if (bytes.len < 2) return .{ .invalid = .addr_len };
    if (std.mem.readInt(u16, bytes[0..2], .little) != @backingInt(family)) return .{ .invalid = .addr_family };
    var a: Addr = .{ .family = family, .len = @intCast(bytes.len) };
    switch (family) {
        .inet => {
            if (bytes.len < sockaddr_in_size) return .{ .invalid = .addr_len };
            a.len = sockaddr_in_size;
        },
        .inet6 => {
            if (bytes.len < sockaddr_in6_size) return .{ .invalid = .addr_len };
            a.len = sockaddr_in6_size;
        },
        .unix => {
            const path = bytes[2..];
            const end = std.mem.indexOfScalar(u8, path, 0) orelse path.len;
            // sun_path holds 108 bytes with its NUL: 107 bytes of path at most.
            if (end == 0 or end > 107 or path[0] != '/') return .{ .invalid = .addr };
            a.len = @intCast(2 + end + 1);
            @memcpy(a.bytes[0 .. 2 + end], bytes[0 .. 2 + end]);
            return .{ .ok = a };
        },
    }
    @memcpy(a.bytes[0..a.len], bytes[0..a.len]);
    return .{ .ok = a };
}

/// A guest → host datagram header: data_len ≤ 65535 and a valid destination of `family`.
pub fn decodeFrame(f: *const Frame, family: Family) union(enum) { ok: struct { len: u32, to: Addr }, invalid: Invalid } {
    if (f.data_len > data_len_max) return .{ .invalid = .addr_len };
    if (f.addr_len > addr_bytes_max) return .{ .invalid = .addr_len };
    return switch (checkAddr(family, f.addr[0..f.addr_len])) {
        .ok => |a| .{ .ok = .{ .len = f.data_len, .to = a } },
        .invalid => |why| .{ .invalid = why },
    };
}

pub fn response(result: i32, addr: []const u8) Response {
    assert(addr.len <= addr_bytes_max); // tidy: addresses from the host kernel
    var r: Response = .{ .result = result, .addr_len = @intCast(addr.len), .addr = @splat(0) };
    @memcpy(r.addr[0..addr.len], addr);
    return r;
}

const testing = std.testing;

pub fn inetRequest(op: Op, ip: [4]u8, p: u16) Request {
    var r: Request = .{
        .magic = magic,
        .version = version,
        .op = @backingInt(op),
        .family = linux.AF.INET,
        .type = if (op == .dgram) linux.SOCK.DGRAM else linux.SOCK.STREAM,
        .vm_port = 0,
        .backlog = 0,
        .sockopts = 0,
        .rcvbuf = 0,
        .sndbuf = 0,
        .addr_len = sockaddr_in_size,
        .addr = @splat(0),
    };
    std.mem.writeInt(u16, r.addr[0..2], linux.AF.INET, .little);
    std.mem.writeInt(u16, r.addr[2..4], p, .big);
    @memcpy(r.addr[4..8], &ip);
    return r;
}

test "tsi wire: magic bytes read Z T S I" {
    var b: [4]u8 = undefined;
    std.mem.writeInt(u32, &b, magic, .little);
    try testing.expectEqualStrings("ZTSI", &b);
}

test "tsi wire: requests are checked field by field" {
    var r = inetRequest(.connect, .{ 127, 0, 0, 1 }, 8080);
    const d = decodeRequest(&r).ok;
    try testing.expectEqual(Op.connect, d.op);
    try testing.expectEqual(@as(u16, 8080), d.addr.?.port());
    const Case = struct { f: *const fn (*Request) void, why: Invalid };
    const cases = [_]Case{
        .{ .f = struct {
            fn f(x: *Request) void {
                x.magic = 0;
            }
        }.f, .why = .magic },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.version = 2;
            }
        }.f, .why = .version },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.op = 4;
            }
        }.f, .why = .op },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.family = 40;
            }
        }.f, .why = .family },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.type = 2;
            }
        }.f, .why = .type },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.addr_len = 129;
            }
        }.f, .why = .addr_len },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.addr_len = 0;
            }
        }.f, .why = .addr_len },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.addr_len = 8;
            }
        }.f, .why = .addr_len },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.addr[0] = 10;
            }
        }.f, .why = .addr_family },
        .{ .f = struct {
            fn f(x: *Request) void {
                x.sockopts = 1 << 5;
            }
        }.f, .why = .sockopts },
    };
    for (cases) |c| {
        var bad = inetRequest(.connect, .{ 127, 0, 0, 1 }, 8080);
        c.f(&bad);
        try testing.expectEqual(c.why, decodeRequest(&bad).invalid);
    }
    // DGRAM may come without an address; its type is SOCK_DGRAM.
    var dg = inetRequest(.dgram, .{ 0, 0, 0, 0 }, 0);
    dg.addr_len = 0;
    try testing.expect(decodeRequest(&dg).ok.addr == null);
}

test "tsi wire: unix paths are absolute, bounded and terminated" {
    var b: [addr_bytes_max]u8 = @splat('a');
    std.mem.writeInt(u16, b[0..2], linux.AF.UNIX, .little);
    b[2] = '/';
    try testing.expectEqual(Invalid.addr, checkAddr(.unix, &b).invalid); // 126 bytes, no NUL: too long
    b[10] = 0;
    const a = checkAddr(.unix, &b).ok;
    try testing.expectEqual(@as(u32, 2 + 8 + 1), a.len);
    try testing.expectEqual(@as(u8, 0), a.bytes[10]);
    b[2] = 'r';
    try testing.expectEqual(Invalid.addr, checkAddr(.unix, &b).invalid); // relative
    b[2] = 0;
    try testing.expectEqual(Invalid.addr, checkAddr(.unix, &b).invalid); // abstract
}

test "tsi wire: datagram frames" {
    var f: Frame = .{ .data_len = 10, .addr_len = 16, .addr = @splat(0) };
    std.mem.writeInt(u16, f.addr[0..2], linux.AF.INET, .little);
    try testing.expectEqual(@as(u32, 10), decodeFrame(&f, .inet).ok.len);
    f.data_len = 65536;
    try testing.expect(decodeFrame(&f, .inet) == .invalid);
    f.data_len = 1;
    try testing.expect(decodeFrame(&f, .inet6) == .invalid);
    f.addr_len = 200;
    try testing.expect(decodeFrame(&f, .inet) == .invalid);
}
