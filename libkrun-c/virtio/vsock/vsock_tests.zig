//! virtio-vsock driven by a test-side guest (testing.zig) over simulated guest memory, with real
//! host unix sockets behind the vsock ports: config and features, connect through a vsock port,
//! data both ways with credit, RST on garbage, credit violations, a guest that does not read, a
//! host peer that does not read, the listen direction, and the connection cap.
const std = @import("std");
const test_tmp = @import("../../test_tmp.zig");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const mmio = @import("../mmio.zig");
const packet = @import("packet.zig");
const Header = packet.Header;
const Op = packet.Op;
const vsock = @import("Vsock.zig");
const Vsock = vsock.Vsock;
const vt = @import("testing.zig");

test "vsock: config space holds guest_cid 3; VERSION_1 only" {
    const f = try vt.Fixture.create(.{});
    defer f.destroy();
    try testing.expectEqual(@as(u32, 3), f.drv.d.read32(mmio.Reg.config));
    try testing.expectEqual(@as(u32, 0), f.drv.d.read32(mmio.Reg.config + 4));
    try testing.expectEqual(@as(u64, 1) << 32, f.drv.d.deviceFeatures());
}

test "vsock: guest connects to a vsock port, bytes flow both ways, close" {
    const f = try vt.Fixture.createWithListener(test_tmp.path("vsock-test-a.sock"), 1234);
    defer f.destroy();
    const drv = &f.drv;
    drv.postRx(16);
    drv.send(vt.hdr(Op.request, 5000, 1234), &.{});
    const resp = drv.recv().?;
    try testing.expectEqual(Op.response, resp.h.op);
    try testing.expectEqual(@as(u32, 1234), resp.h.src_port);
    try testing.expectEqual(@as(u32, 5000), resp.h.dst_port);
    try testing.expectEqual(vsock.to_host_size, resp.h.buf_alloc);
    const sfd = try sys.accept4(f.lfd, null, null, linux.SOCK.CLOEXEC);
    defer sys.close(sfd);
    // Guest → host.
    var rw = vt.hdr(Op.rw, 5000, 1234);
    rw.len = 5;
    drv.send(rw, "hello");
    var buf: [64]u8 = undefined;
    try testing.expectEqual(@as(usize, 5), sys.read(sfd, &buf));
    try testing.expectEqualStrings("hello", buf[0..5]);
    // The ring ran empty: the guest learns fwd_cnt = 5.
    const cu = drv.recv().?;
    try testing.expectEqual(Op.credit_update, cu.h.op);
    try testing.expectEqual(@as(u32, 5), cu.h.fwd_cnt);
    // Host → guest.
    try testing.expectEqual(@as(usize, 6), sys.write(sfd, "world!"));
    drv.pump();
    const data = drv.recv().?;
    try testing.expectEqual(Op.rw, data.h.op);
    try testing.expectEqualStrings("world!", data.data);
    // Host closes: SHUTDOWN(send) reaches the guest; guest closes: RST back, host fd closed.
    sys.close(sfd);
    drv.pump();
    const sd = drv.recv().?;
    try testing.expectEqual(Op.shutdown, sd.h.op);
    try testing.expectEqual(packet.shutdown_send, sd.h.flags);
    var shut = vt.hdr(Op.shutdown, 5000, 1234);
    shut.flags = 3;
    shut.fwd_cnt = 6;
    drv.send(shut, &.{});
    const rst = drv.recv().?;
    try testing.expectEqual(Op.rst, rst.h.op);
    try testing.expectEqual(@as(u32, 0), f.dev.live_len);
}

test "vsock: garbage gets RST or is dropped, never a crash" {
    const f = try vt.Fixture.create(.{});
    defer f.destroy();
    const drv = &f.drv;
    drv.postRx(64);
    // An unknown port: RST.
    drv.send(vt.hdr(Op.request, 7, 9999), &.{});
    try testing.expectEqual(Op.rst, drv.recv().?.h.op);
    // Wrong type, bad op, bad flags, oversized len: RST each.
    var h = vt.hdr(Op.rw, 7, 9999);
    h.type = 3;
    drv.send(h, &.{});
    h = vt.hdr(9, 7, 9999);
    drv.send(h, &.{});
    h = vt.hdr(Op.rw, 7, 9999);
    h.flags = 0x80;
    drv.send(h, &.{});
    h = vt.hdr(Op.rw, 7, 9999);
    h.len = 1 << 20;
    drv.send(h, "short");
    for (0..4) |_| try testing.expectEqual(Op.rst, drv.recv().?.h.op);
    // Wrong CIDs and short packets: dropped silently.
    h = vt.hdr(Op.request, 7, 9999);
    h.src_cid = 77;
    drv.send(h, &.{});
    drv.sendRaw("tiny");
    drv.sendRaw(&.{});
    // Data for a connection that does not exist: RST; an RST for one: nothing.
    drv.send(vt.hdr(Op.rw, 8, 1), &.{});
    drv.send(vt.hdr(Op.rst, 8, 1), &.{});
    try testing.expectEqual(Op.rst, drv.recv().?.h.op);
    try testing.expect(drv.recv() == null);
    try testing.expect(!f.drv.tr.queues[1].isBroken());
    try testing.expectEqual(@as(u64, 4 + 3), f.dev.stats.dropped);
}

test "vsock: a guest that ignores credit is reset; a host that does not read stalls only its connection" {
    const f = try vt.Fixture.createWithListener(test_tmp.path("vsock-test-b.sock"), 1);
    defer f.destroy();
    const drv = &f.drv;
    drv.postRx(200);
    const s10 = try f.open(vt.hdr(Op.request, 10, 1));
    defer sys.close(s10);
    const s11 = try f.open(vt.hdr(Op.request, 11, 1));
    defer sys.close(s11);
    // Port 10's host peer never reads: the kernel's socket buffer fills, then our ring; an
    // honest guest stops at our buf_alloc. Send exactly within credit until the ring holds data.
    var chunk: [4096]u8 = @splat('x');
    var sent: u32 = 0;
    while (sent < 4 << 20) : (sent += chunk.len) {
        if (f.dev.conns[f.dev.live[0]].toHostLen() + chunk.len > vsock.to_host_size) break;
        var rw = vt.hdr(Op.rw, 10, 1);
        rw.len = chunk.len;
        drv.send(rw, &chunk);
        while (drv.recv()) |_| {}
        drv.postRx(1);
    }
    try testing.expect(sent < 4 << 20); // the host stalled and the ring filled
    // Port 11 still works while port 10 is stalled.
    var rw = vt.hdr(Op.rw, 11, 1);
    rw.len = 3;
    drv.send(rw, "abc");
    var buf: [8]u8 = undefined;
    try testing.expectEqual(@as(usize, 3), sys.read(s11, &buf));
    // Port 10 overruns its credit: RST for it, port 11 lives on.
    rw = vt.hdr(Op.rw, 10, 1);
    rw.len = chunk.len;
    drv.send(rw, &chunk);
    drv.send(rw, &chunk);
    var got_rst = false;
    while (drv.recv()) |p| {
        if (p.h.op == Op.rst and p.h.dst_port == 10) got_rst = true;
    }
    try testing.expect(got_rst);
    try testing.expectEqual(@as(u64, 1), f.dev.stats.credit_violations);
    try testing.expectEqual(@as(u32, 1), f.dev.live_len);
}

test "vsock: a guest that does not read: we send only within its credit" {
    const f = try vt.Fixture.createWithListener(test_tmp.path("vsock-test-c.sock"), 1);
    defer f.destroy();
    const drv = &f.drv;
    drv.postRx(200);
    var req = vt.hdr(Op.request, 10, 1);
    req.buf_alloc = 10000; // a small receive buffer
    const s = try f.open(req);
    defer sys.close(s);
    vt.setNonblock(s);
    var big: [32768]u8 = @splat('y');
    _ = sys.write(s, &big) catch 0;
    drv.pump();
    var total: usize = 0;
    while (drv.recv()) |p| total += p.data.len;
    try testing.expectEqual(@as(usize, 10000), total);
    // The guest reads 6000 bytes and says so: that much more comes.
    var cu = vt.hdr(Op.credit_update, 10, 1);
    cu.buf_alloc = 10000;
    cu.fwd_cnt = 6000;
    drv.send(cu, &.{});
    drv.pump();
    while (drv.recv()) |p| total += p.data.len;
    try testing.expectEqual(@as(usize, 16000), total);
    // fwd_cnt beyond what was sent: the guest lies, the connection is reset.
    cu.fwd_cnt = 20000;
    drv.send(cu, &.{});
    try testing.expectEqual(Op.rst, drv.recv().?.h.op);
    try testing.expectEqual(@as(u32, 0), f.dev.live_len);
}

test "vsock: listen port: a host client becomes a connection toward the guest" {
    const path = test_tmp.path("vsock-test-d.sock");
    sys.unlink(path) catch {};
    const f = try vt.Fixture.create(.{ .ports = &.{.{ .port = 2222, .path = path, .listen = true }} });
    defer f.destroy();
    const drv = &f.drv;
    drv.postRx(16);
    const cfd = try vt.connectUnix(path);
    defer sys.close(cfd);
    _ = sys.write(cfd, "ping") catch 0;
    drv.pump();
    const req = drv.recv().?;
    try testing.expectEqual(Op.request, req.h.op);
    try testing.expectEqual(@as(u32, 2222), req.h.dst_port);
    try testing.expect(drv.recv() == null); // nothing before the guest answers
    var resp = vt.hdr(Op.response, 2222, req.h.src_port);
    resp.buf_alloc = 65536;
    drv.send(resp, &.{});
    drv.pump();
    const data = drv.recv().?;
    try testing.expectEqualStrings("ping", data.data);
    var rw = vt.hdr(Op.rw, 2222, req.h.src_port);
    rw.len = 4;
    drv.send(rw, "pong");
    var buf: [8]u8 = undefined;
    try testing.expectEqual(@as(usize, 4), sys.read(cfd, &buf));
    try testing.expectEqualStrings("pong", buf[0..4]);
    try testing.expectEqual(Op.credit_update, drv.recv().?.h.op);
    // The guest refuses a second client: its fd is closed.
    const c2 = try vt.connectUnix(path);
    defer sys.close(c2);
    drv.pump();
    const req2 = drv.recv().?;
    try testing.expectEqual(Op.request, req2.h.op);
    try testing.expect(req2.h.src_port != req.h.src_port);
    drv.send(vt.hdr(Op.rst, 2222, req2.h.src_port), &.{});
    try testing.expectEqual(@as(usize, 0), sys.read(c2, &buf));
}

test "vsock: the connection cap holds under a connect flood" {
    // The kernel caps the listener's backlog at somaxconn, so accept as we go.
    const f = try vt.Fixture.createWithListener(test_tmp.path("vsock-test-e.sock"), 1);
    defer f.destroy();
    const drv = &f.drv;
    const lfd = f.lfd;
    vt.setNonblock(lfd);
    var accepted: std.ArrayList(i32) = .empty;
    defer {
        for (accepted.items) |fd| sys.close(fd);
        accepted.deinit(testing.allocator);
    }
    var responses: u32 = 0;
    var rsts: u32 = 0;
    for (0..vsock.conns_max + 50) |i| {
        drv.postRx(1);
        drv.send(vt.hdr(Op.request, @intCast(100 + i), 1), &.{});
        while (drv.recv()) |p| switch (p.h.op) {
            Op.response => responses += 1,
            Op.rst => rsts += 1,
            else => {},
        };
        while (true) {
            const fd = sys.accept4(lfd, null, null, linux.SOCK.CLOEXEC) catch break;
            try accepted.append(testing.allocator, fd);
        }
    }
    try testing.expectEqual(@as(u32, vsock.conns_max), responses);
    try testing.expectEqual(@as(u32, 50), rsts);
    try testing.expectEqual(@as(u32, vsock.conns_max), f.dev.live_len);
}
