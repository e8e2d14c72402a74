//! TSI driven by a test-side guest over simulated guest memory (virtio/vsock/testing.zig's
//! fixture and driver), against real host sockets on the test process's loopback: CONNECT (done and
//! refused), malformed requests, LISTEN under the exposure rule (no map: loopback and the real
//! port for port 0; a map: mapped port or -EPERM), accepted clients headed by their peer
//! address, DGRAM both ways.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const testing = std.testing;
const vt = @import("../virtio/vsock/testing.zig");
const packet = @import("../virtio/vsock/packet.zig");
const Op = packet.Op;
const vsock = @import("../virtio/vsock/Vsock.zig");
const Vsock = vsock.Vsock;
const wire = @import("wire.zig");
const Service = @import("Service.zig");
const Config = @import("../Config.zig");

/// virtio/vsock/testing.zig's device and driver with the TSI service under `policy`, and the
/// TSI exchanges on top.
const Fixture = struct {
    v: *vt.Fixture,
    drv: *vt.Driver,

    fn create(policy: Service.Policy) !Fixture {
        const v = try vt.Fixture.create(.{ .tsi = policy });
        v.drv.postRx(128);
        return .{ .v = v, .drv = &v.drv };
    }

    fn destroy(self: *Fixture) void {
        self.v.destroy();
    }

    /// Opens a vsock connection from guest port `gp` to 620 and sends `req`.
    fn request(self: *Fixture, gp: u32, req: wire.Request) !void {
        self.drv.send(vt.hdr(Op.request, gp, Service.port), &.{});
        const r = self.drv.recv().?;
        try testing.expectEqual(Op.response, r.h.op);
        var rq = req;
        self.write(gp, Service.port, std.mem.asBytes(&rq));
    }

    fn write(self: *Fixture, gp: u32, hp: u32, bytes: []const u8) void {
        var h = vt.hdr(Op.rw, gp, hp);
        h.len = @intCast(bytes.len);
        self.drv.send(h, bytes);
    }

    /// Collects `n` bytes of RW data for (gp, hp) from the guest's rx queue, pumping the host
    /// side in between; other packets are returned in `other` (op only).
    fn read(self: *Fixture, gp: u32, hp: u32, out: []u8) !void {
        var got: usize = 0;
        var rounds: u32 = 0;
        while (got < out.len) : (rounds += 1) {
            if (rounds > 2000) return error.TestTimeout;
            self.drv.pump();
            while (self.drv.recv()) |p| {
                if (p.h.dst_port != gp or p.h.src_port != hp or p.h.op != Op.rw) continue;
                if (p.data.len > out.len - got) return error.TestUnexpectedData;
                @memcpy(out[got..][0..p.data.len], p.data);
                got += p.data.len;
            }
            self.drv.postRx(8);
            if (got < out.len) sys.nanosleep(1_000_000) catch {};
        }
    }

    fn response(self: *Fixture, gp: u32) !wire.Response {
        var r: wire.Response = undefined;
        try self.read(gp, Service.port, std.mem.asBytes(&r));
        return r;
    }
};

fn tcpListen(addr: [4]u8, port: u16) !struct { fd: i32, port: u16 } {
    const fd = try sys.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    var sa: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, port), .addr = @bitCast(addr) };
    try sys.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in));
    try sys.listen(fd, 8);
    var len: u32 = @sizeOf(linux.sockaddr.in);
    try sys.getsockname(fd, @ptrCast(&sa), &len);
    return .{ .fd = fd, .port = std.mem.bigToNative(u16, sa.port) };
}

fn tcpConnect(addr: [4]u8, port: u16) sys.Error!void {
    const fd = try sys.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    errdefer sys.close(fd);
    const sa: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, port), .addr = @bitCast(addr) };
    try sys.connect(fd, &sa, @sizeOf(linux.sockaddr.in));
    last_fd = fd;
}

var last_fd: i32 = -1;

fn portOf(r: *const wire.Response) u16 {
    return std.mem.readInt(u16, r.addr[2..4], .big);
}

test "tsi: CONNECT to a host TCP server, bytes both ways; refused; malformed" {
    var f = try Fixture.create(.{});
    defer f.destroy();
    const srv = try tcpListen(.{ 127, 0, 0, 1 }, 0);
    defer sys.close(srv.fd);
    try f.request(4000, wire.inetRequest(.connect, .{ 127, 0, 0, 1 }, srv.port));
    const r = try f.response(4000);
    try testing.expectEqual(@as(i32, 0), r.result);
    try testing.expectEqual(@as(u32, 16), r.addr_len);
    const s = try sys.accept4(srv.fd, null, null, linux.SOCK.CLOEXEC);
    defer sys.close(s);
    f.write(4000, Service.port, "GET /");
    var buf: [16]u8 = undefined;
    try testing.expectEqual(@as(usize, 5), sys.read(s, &buf));
    try testing.expectEqualStrings("GET /", buf[0..5]);
    _ = sys.write(s, "200 OK") catch 0;
    var back: [6]u8 = undefined;
    try f.read(4000, Service.port, &back);
    try testing.expectEqualStrings("200 OK", &back);

    // A closed port: -ECONNREFUSED, then the connection is shut.
    const dead = try tcpListen(.{ 127, 0, 0, 1 }, 0);
    sys.close(dead.fd);
    try f.request(4001, wire.inetRequest(.connect, .{ 127, 0, 0, 1 }, dead.port));
    try testing.expectEqual(@as(i32, -111), (try f.response(4001)).result);
    // Garbage: -EINVAL.
    var bad = wire.inetRequest(.connect, .{ 127, 0, 0, 1 }, 1);
    bad.magic = 0x41414141;
    try f.request(4002, bad);
    try testing.expectEqual(@as(i32, -22), (try f.response(4002)).result);
    try testing.expectEqual(@as(u64, 1), f.v.dev.tsi.?.stats.invalid);
}

test "tsi: a guest that closes in the middle of its request frees the connection at once" {
    var f = try Fixture.create(.{});
    defer f.destroy();
    f.drv.send(vt.hdr(Op.request, 4100, Service.port), &.{});
    try testing.expectEqual(Op.response, f.drv.recv().?.h.op);
    f.write(4100, Service.port, "ZTSI\x01");
    try testing.expectEqual(@as(u32, 1), f.v.dev.live_len);
    var shut = vt.hdr(Op.shutdown, 4100, Service.port);
    shut.flags = packet.shutdown_rcv | packet.shutdown_send;
    f.drv.send(shut, &.{});
    try testing.expectEqual(@as(u32, 0), f.v.dev.live_len);
    var rst = false;
    while (f.drv.recv()) |p| {
        if (p.h.op == Op.rst and p.h.dst_port == 4100) rst = true;
    }
    try testing.expect(rst);
}

test "tsi: LISTEN without a port map: host loopback only, the real port for port 0; accepted clients" {
    var f = try Fixture.create(.{});
    defer f.destroy();
    var req = wire.inetRequest(.listen, .{ 0, 0, 0, 0 }, 0); // the guest asked for the wildcard
    req.vm_port = 7777;
    req.backlog = 4;
    try f.request(5000, req);
    const r = try f.response(5000);
    try testing.expectEqual(@as(i32, 0), r.result);
    const p = portOf(&r);
    try testing.expect(p != 0);
    try testing.expectEqualSlices(u8, &.{ 127, 0, 0, 1 }, r.addr[4..8]); // loopback, not wildcard
    try tcpConnect(.{ 127, 0, 0, 1 }, p);
    const client = last_fd;
    defer sys.close(client);
    _ = sys.write(client, "hi") catch 0;
    // The host opens a connection toward (3, 7777).
    var req_pkt: ?packet.Header = null;
    for (0..100) |_| {
        f.drv.pump();
        while (f.drv.recv()) |pk| if (pk.h.op == Op.request and pk.h.dst_port == 7777) {
            req_pkt = pk.h;
        };
        if (req_pkt != null) break;
        sys.nanosleep(1_000_000) catch {};
    }
    const hp = req_pkt.?.src_port;
    var resp = vt.hdr(Op.response, 7777, hp);
    resp.buf_alloc = 65536;
    f.drv.send(resp, &.{});
    var all: [wire.response_size + 2]u8 = undefined;
    try f.read(7777, hp, &all);
    var head: wire.Response = undefined;
    @memcpy(std.mem.asBytes(&head), all[0..wire.response_size]);
    try testing.expectEqual(@as(i32, 0), head.result);
    try testing.expectEqualSlices(u8, &.{ 127, 0, 0, 1 }, head.addr[4..8]); // the client's address
    try testing.expectEqualStrings("hi", all[wire.response_size..]);
}

test "tsi: LISTEN with a port map: mapped ports at the host port, unmapped ones -EPERM" {
    const probe = try tcpListen(.{ 127, 0, 0, 1 }, 0); // a free host port for the map
    const host_port = probe.port;
    sys.close(probe.fd);
    const map = [_]Config.PortMapEntry{.{ .host = host_port, .guest = 80 }};
    var f = try Fixture.create(.{ .port_map = &map });
    defer f.destroy();
    var req = wire.inetRequest(.listen, .{ 127, 0, 0, 1 }, 81);
    req.vm_port = 1;
    try f.request(6000, req);
    try testing.expectEqual(@as(i32, -1), (try f.response(6000)).result);
    req = wire.inetRequest(.listen, .{ 127, 0, 0, 1 }, 80);
    req.vm_port = 1;
    req.sockopts = wire.Sockopt.reuseaddr;
    try f.request(6001, req);
    const r = try f.response(6001);
    try testing.expectEqual(@as(i32, 0), r.result);
    try testing.expectEqual(host_port, portOf(&r));
    // An empty map exposes nothing.
    f.v.dev.tsi.?.policy.port_map = &.{};
    try f.request(6002, req);
    try testing.expectEqual(@as(i32, -1), (try f.response(6002)).result);
}

test "tsi: DGRAM both ways through a bound host socket" {
    var f = try Fixture.create(.{});
    defer f.destroy();
    // A host UDP peer on loopback.
    const u = try sys.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    defer sys.close(u);
    var sa: linux.sockaddr.in = .{ .port = 0, .addr = @bitCast([4]u8{ 127, 0, 0, 1 }) };
    try sys.bind(u, @ptrCast(&sa), @sizeOf(linux.sockaddr.in));
    var len: u32 = @sizeOf(linux.sockaddr.in);
    try sys.getsockname(u, @ptrCast(&sa), &len);
    var req = wire.inetRequest(.dgram, .{ 0, 0, 0, 0 }, 0);
    req.addr_len = 0;
    try f.request(7000, req);
    const r = try f.response(7000);
    try testing.expectEqual(@as(i32, 0), r.result);
    const guest_host_port = portOf(&r);
    try testing.expect(guest_host_port != 0);
    // Guest → host.
    var frame: wire.Frame = .{ .data_len = 4, .addr_len = 16, .addr = @splat(0) };
    @memcpy(frame.addr[0..16], std.mem.asBytes(&sa));
    var out: [wire.frame_size + 4]u8 = undefined;
    @memcpy(out[0..wire.frame_size], std.mem.asBytes(&frame));
    @memcpy(out[wire.frame_size..], "ping");
    f.write(7000, Service.port, &out);
    var buf: [16]u8 = undefined;
    try testing.expectEqual(@as(usize, 4), sys.recvfrom(u, &buf, 0, null, null));
    try testing.expectEqualStrings("ping", buf[0..4]);
    // Host → guest: the frame names the sender.
    var to: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, guest_host_port), .addr = @bitCast([4]u8{ 127, 0, 0, 1 }) };
    _ = sys.sendto(u, "pong!", 0, @ptrCast(&to), @sizeOf(linux.sockaddr.in)) catch 0;
    var back: [wire.frame_size + 5]u8 = undefined;
    try f.read(7000, Service.port, &back);
    var fb: wire.Frame = undefined;
    @memcpy(std.mem.asBytes(&fb), back[0..wire.frame_size]);
    try testing.expectEqual(@as(u32, 5), fb.data_len);
    try testing.expectEqual(sa.port, std.mem.bytesToValue(u16, fb.addr[2..4]));
    try testing.expectEqualStrings("pong!", back[wire.frame_size..]);
    // A malformed frame resets the connection.
    frame.data_len = 70000;
    f.write(7000, Service.port, std.mem.asBytes(&frame));
    var reset = false;
    while (f.drv.recv()) |p| {
        if (p.h.op == Op.rst and p.h.dst_port == 7000) reset = true;
    }
    try testing.expect(reset);
}
