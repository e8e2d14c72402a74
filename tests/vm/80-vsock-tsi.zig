//! The TSI modes of 80-vsock-guest.zig: tsi/PROTOCOL.md spoken by hand over AF_VSOCK to
//! (2, 620), as the guest kernel's TSI does, so the VMM side is tested with any guest kernel.
//!   tsi-connect PORT BYTES          CONNECT to 127.0.0.1:PORT (a host TCP echo server), stream
//!                                   BYTES both ways, checksums compared
//!   tsi-listen PORT VM_PORT WANT    LISTEN on 0.0.0.0:PORT; WANT "ok": serve one accepted client
//!                                   on VM_PORT ("echo:" + data), print the bound address;
//!                                   WANT "eperm": the result must be -EPERM
//!   tsi-dgram PORT                  DGRAM socket, a datagram to 127.0.0.1:PORT (a host UDP echo
//!                                   server) and its echo back with the sender's address
//!   tsi-hostile N                   malformed requests (-EINVAL each), truncated ones, N
//!                                   connections to 620 at once; then a CONNECT still works
const std = @import("std");
const linux = std.os.linux;
const g = @import("80-vsock-guest.zig");

const magic: u32 = 0x4953545a;

const Request = extern struct {
    magic: u32 = magic,
    version: u16 = 1,
    op: u16,
    family: u16 = linux.AF.INET,
    type: u16 = linux.SOCK.STREAM,
    vm_port: u32 = 0,
    backlog: u32 = 0,
    sockopts: u32 = 0,
    rcvbuf: u32 = 0,
    sndbuf: u32 = 0,
    addr_len: u32 = 16,
    addr: [128]u8 = @splat(0),
};

const Response = extern struct { result: i32, addr_len: u32, addr: [128]u8 };
const Frame = extern struct { data_len: u32, addr_len: u32, addr: [128]u8 };

comptime {
    std.debug.assert(@sizeOf(Request) == 164);
    std.debug.assert(@sizeOf(Response) == 136);
    std.debug.assert(@sizeOf(Frame) == 136);
}

fn inet(ip: [4]u8, port: u16) [128]u8 {
    var a: [128]u8 = @splat(0);
    std.mem.writeInt(u16, a[0..2], linux.AF.INET, .little);
    std.mem.writeInt(u16, a[2..4], port, .big);
    @memcpy(a[4..8], &ip);
    return a;
}

fn fail(comptime fmt: []const u8, args: anytype) noreturn {
    print("FAIL " ++ fmt ++ "\n", args);
    linux.exit_group(1);
}

var buf: [512]u8 = undefined;
fn print(comptime fmt: []const u8, args: anytype) void {
    const s = std.fmt.bufPrint(&buf, fmt, args) catch return;
    _ = linux.write(1, s.ptr, s.len);
}

fn readExact(fd: i32, out: []u8) bool {
    var n: usize = 0;
    while (n < out.len) {
        const rc = linux.read(fd, out[n..].ptr, out.len - n);
        if (linux.errno(rc) != .SUCCESS or rc == 0) return false;
        n += rc;
    }
    return true;
}

/// A connection to (2, 620) with `req` sent; the response read.
fn ask(req: Request) struct { fd: i32, r: Response } {
    const e = g.vsockConnect(620);
    if (e != .SUCCESS) fail("connect(2, 620): {t}", .{e});
    const fd = connected();
    var rq = req;
    g.writeAll(fd, std.mem.asBytes(&rq));
    var r: Response = undefined;
    if (!readExact(fd, std.mem.asBytes(&r))) fail("no response", .{});
    return .{ .fd = fd, .r = r };
}

fn connected() i32 {
    return g.connected_fd;
}

fn ipv4(a: *const [128]u8) [4]u8 {
    return a[4..8].*;
}

fn portOf(a: *const [128]u8) u16 {
    return std.mem.readInt(u16, a[2..4], .big);
}

fn connect(port: u16, total: usize) void {
    const x = ask(.{ .op = 1, .addr = inet(.{ 127, 0, 0, 1 }, port) });
    const ip = ipv4(&x.r.addr);
    print("tsi-connect result={d} local={d}.{d}.{d}.{d}:{d}\n", .{ x.r.result, ip[0], ip[1], ip[2], ip[3], portOf(&x.r.addr) });
    if (x.r.result != 0) fail("CONNECT result {d}", .{x.r.result});
    g.streamEcho(x.fd, total);
    _ = linux.close(x.fd);
}

fn listen(port: u16, vm_port: u32, want_ok: bool) void {
    // The guest's listener for accepted clients first, as the kernel's TSI does.
    const lfd = g.vsockSocket();
    var sa: [16]u8 align(4) = @splat(0);
    std.mem.writeInt(u16, sa[0..2], 40, .little);
    std.mem.writeInt(u32, sa[4..8], vm_port, .little);
    std.mem.writeInt(u32, sa[8..12], 0xffff_ffff, .little);
    if (linux.errno(linux.bind(lfd, @ptrCast(&sa), 16)) != .SUCCESS) fail("bind vsock {d}", .{vm_port});
    _ = linux.listen(lfd, 4);
    const x = ask(.{ .op = 2, .vm_port = vm_port, .backlog = 4, .sockopts = 1, .addr = inet(.{ 0, 0, 0, 0 }, port) });
    const ip = ipv4(&x.r.addr);
    print("tsi-listen result={d} addr={d}.{d}.{d}.{d} port={d}\n", .{ x.r.result, ip[0], ip[1], ip[2], ip[3], portOf(&x.r.addr) });
    if (!want_ok) {
        if (x.r.result != -1) fail("expected -EPERM, got {d}", .{x.r.result});
        return;
    }
    if (x.r.result != 0) fail("LISTEN result {d}", .{x.r.result});
    const c: i32 = @intCast(linux.accept4(lfd, null, null, 0));
    var head: Response = undefined;
    if (!readExact(c, std.mem.asBytes(&head))) fail("no accept header", .{});
    const pip = ipv4(&head.addr);
    print("tsi-accepted result={d} peer={d}.{d}.{d}.{d}\n", .{ head.result, pip[0], pip[1], pip[2], pip[3] });
    var data: [256]u8 = undefined;
    @memcpy(data[0..5], "echo:");
    const n = g.readAll(c, data[5..]);
    g.writeAll(c, data[0 .. n + 5]);
    _ = linux.close(c);
    print("tsi-served {s}\n", .{data[5 .. n + 5]});
    _ = linux.close(x.fd); // the listener's lifeline: the host listener closes
}

fn dgram(port: u16) void {
    var req: Request = .{ .op = 3, .type = linux.SOCK.DGRAM, .addr_len = 0 };
    req.addr = @splat(0);
    const x = ask(req);
    print("tsi-dgram result={d} bound-port={d}\n", .{ x.r.result, portOf(&x.r.addr) });
    if (x.r.result != 0 or portOf(&x.r.addr) == 0) fail("DGRAM result {d}", .{x.r.result});
    const msg = "ping-dgram";
    var f: Frame = .{ .data_len = msg.len, .addr_len = 16, .addr = inet(.{ 127, 0, 0, 1 }, port) };
    g.writeAll(x.fd, std.mem.asBytes(&f));
    g.writeAll(x.fd, msg);
    var back: Frame = undefined;
    if (!readExact(x.fd, std.mem.asBytes(&back))) fail("no datagram back", .{});
    if (back.data_len > 256) fail("datagram of {d} bytes", .{back.data_len});
    var data: [256]u8 = undefined;
    if (!readExact(x.fd, data[0..back.data_len])) fail("short datagram", .{});
    print("tsi-dgram got={s} from-port={d}\n", .{ data[0..back.data_len], portOf(&back.addr) });
    if (!std.mem.eql(u8, data[0..back.data_len], "echo:" ++ msg) or portOf(&back.addr) != port) fail("wrong echo", .{});
    _ = linux.close(x.fd);
}

fn expectInvalid(req: Request, what: []const u8) void {
    const x = ask(req);
    if (x.r.result != -22) fail("{s}: result {d}, expected -EINVAL", .{ what, x.r.result });
    // The host shut the connection after the response.
    var b: [8]u8 = undefined;
    const rc = linux.read(x.fd, &b, b.len);
    if (linux.errno(rc) == .SUCCESS and rc != 0) fail("{s}: data after the error", .{what});
    _ = linux.close(x.fd);
}

fn hostile(n: u32, port: u16) void {
    expectInvalid(.{ .magic = 0x41414141, .op = 1, .addr = inet(.{ 127, 0, 0, 1 }, port) }, "bad magic");
    expectInvalid(.{ .version = 9, .op = 1, .addr = inet(.{ 127, 0, 0, 1 }, port) }, "bad version");
    expectInvalid(.{ .op = 77, .addr = inet(.{ 127, 0, 0, 1 }, port) }, "bad op");
    expectInvalid(.{ .op = 1, .addr_len = 200, .addr = inet(.{ 127, 0, 0, 1 }, port) }, "addr_len 200");
    expectInvalid(.{ .op = 1, .type = 5, .addr = inet(.{ 127, 0, 0, 1 }, port) }, "bad type");
    var fam = inet(.{ 127, 0, 0, 1 }, port);
    fam[0] = 10; // sockaddr family ≠ family
    expectInvalid(.{ .op = 1, .addr = fam }, "family mismatch");
    // Truncated requests: the host waits for the rest, and lets go when the guest does.
    for (0..16) |_| {
        if (g.vsockConnect(620) != .SUCCESS) fail("connect for a truncated request", .{});
        g.writeAll(connected(), "ZTSI\x01");
        _ = linux.close(connected());
    }
    // Many at once, with garbage.
    var fds: [2048]i32 = undefined;
    var open: u32 = 0;
    for (0..@min(n, fds.len)) |_| {
        if (g.vsockConnect(620) != .SUCCESS) break;
        fds[open] = connected();
        g.writeAll(fds[open], "garbage!");
        open += 1;
    }
    print("tsi-hostile open={d}\n", .{open});
    for (fds[0..open]) |fd| _ = linux.close(fd);
    var ts: linux.timespec = .{ .sec = 1, .nsec = 0 };
    _ = linux.nanosleep(&ts, null);
    connect(port, 4096);
    print("tsi-hostile ok\n", .{});
}

fn num(s: []const u8) u32 {
    return std.fmt.parseInt(u32, s, 10) catch fail("not a number: {s}", .{s});
}

pub fn run(args: []const []const u8) void {
    const mode = args[1];
    if (std.mem.eql(u8, mode, "tsi-connect") and args.len == 4) return connect(@intCast(num(args[2])), num(args[3]));
    if (std.mem.eql(u8, mode, "tsi-listen") and args.len == 5) return listen(@intCast(num(args[2])), num(args[3]), std.mem.eql(u8, args[4], "ok"));
    if (std.mem.eql(u8, mode, "tsi-dgram") and args.len == 3) return dgram(@intCast(num(args[2])));
    if (std.mem.eql(u8, mode, "tsi-hostile") and args.len == 4) return hostile(num(args[2]), @intCast(num(args[3])));
    fail("unknown TSI mode {s}", .{mode});
}
