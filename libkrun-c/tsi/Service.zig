//! The TSI service on host vsock port 620 (tsi/PROTOCOL.md): every guest connection to it
//! starts with a 164-byte request and then proxies one host socket, all non-blocking in the
//! VMM's event loop through the vsock muxer (virtio/vsock/Vsock.zig), which owns the
//! connection table, the buffers, the credit and the fds:
//! - CONNECT: a non-blocking host connect, answered when it completes; then raw bytes.
//! - LISTEN: a host listener under the exposure policy (`Policy`); each accepted client becomes
//!   a connection we open toward (3, vm_port), headed by the peer's address; the request's
//!   connection is the listener's lifeline.
//! - DGRAM: a host datagram socket; frames (header + data) both ways. One received datagram
//!   waits for the guest at a time; the host kernel's receive buffer is the bounded queue behind
//!   it and drops what the guest does not take in time, as UDP does.
//! A malformed request or frame is answered with -EINVAL (or reset) and closes the connection;
//! nothing here trusts a guest value it has not checked (tsi/wire.zig).
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const errno = @import("sys_errno");
const sys = @import("../sys/linux.zig");
const wire = @import("wire.zig");
const vsock = @import("../virtio/vsock/Vsock.zig");
const packet = @import("../virtio/vsock/packet.zig");
const Vsock = vsock.Vsock;
const Conn = vsock.Conn;

const log = std.log.scoped(.tsi);

pub const port: u32 = 620;
/// listen(2)'s backlog cap (Linux's default somaxconn).
const somaxconn = 4096;
/// SO_RCVBUF / SO_SNDBUF the guest may ask for (the host kernel caps them again).
const sockbuf_max: u32 = 16 << 20;
const accepts_per_event = 16;

pub const PortMapEntry = @import("../Config.zig").PortMapEntry;

/// What the host exposes and which families it proxies (krun_set_port_map, krun_add_vsock).
pub const Policy = struct {
    /// null: krun_set_port_map was never called (listeners on the host's loopback only).
    port_map: ?[]const PortMapEntry = null,
    /// KRUN_TSI_HIJACK_INET: AF_INET / AF_INET6 requests.
    inet: bool = true,
    /// KRUN_TSI_HIJACK_UNIX: AF_UNIX requests (absolute paths).
    unix: bool = false,
};

pub const Phase = enum {
    /// A plain byte stream (after CONNECT, or an accepted connection once headed).
    none,
    /// Waiting for the 164-byte request.
    request,
    connecting,
    listening,
    /// An accepted host client: REQUEST toward the guest, then the peer header, then raw.
    accepted,
    dgram,
    /// The error response is on its way; the guest closes.
    failed,
};

pub const ConnState = struct {
    phase: Phase = .none,
    family: wire.Family = .inet,
    /// listening: the guest's vsock port for accepted clients, its backlog, clients pending.
    vm_port: u32 = 0,
    backlog: u32 = 0,
    pending: u32 = 0,
    /// accepted: the listener's connection (index and serial, as it may be gone).
    listener: u16 = 0,
    listener_serial: u32 = 0,
    /// listening on AF_UNIX: the path we bound (unlinked when the listener closes).
    unix_path: [108]u8 = @splat(0),
};

pub const Stats = struct {
    requests: u64 = 0,
    invalid: u64 = 0,
    datagrams_out: u64 = 0,
    datagrams_in: u64 = 0,
    datagrams_dropped: u64 = 0,
    accepted: u64 = 0,
};

pub const Service = struct {
    policy: Policy,
    stats: Stats = .{},

    pub fn deinit(_: *Service) void {}

    pub fn open(_: *Service, _: *Vsock, c: *Conn) void {
        c.tsi = .{ .phase = .request };
        c.hold_reads = true;
    }

    /// The guest's bytes arrived in the connection's ring.
    pub fn consume(self: *Service, v: *Vsock, c: *Conn) void {
        switch (c.tsi.phase) {
            .request => self.takeRequest(v, c),
            .connecting => {}, // early bytes wait in the ring (the guest's credit bounds them)
            .accepted, .none => v.flushToHost(c),
            .dgram => self.sendFrames(v, c),
            .listening, .failed => c.consumeToHost(c.toHostLen()), // nothing flows here
        }
    }

    /// A connection ends (`Vsock.free`): accepted clients give their listener a slot back.
    pub fn release(self: *Service, v: *Vsock, c: *Conn) void {
        _ = self;
        switch (c.tsi.phase) {
            .accepted => listenerDone(v, c),
            .listening => if (c.tsi.family == .unix and c.tsi.unix_path[0] == '/') {
                sys.unlink(@ptrCast(&c.tsi.unix_path)) catch {};
            },
            else => {},
        }
    }

    pub fn interest(_: *Service, v: *Vsock, c: *Conn, want: u32) u32 {
        const out: u32 = if (c.write_blocked) linux.EPOLL.OUT else 0;
        return switch (c.tsi.phase) {
            .none, .accepted => want,
            .request, .failed => 0,
            .connecting => linux.EPOLL.OUT,
            .listening => if (c.tsi.pending < c.tsi.backlog and v.act != null and v.live_len < vsock.conns_max) linux.EPOLL.IN else 0,
            .dgram => out | @as(u32, if (c.stagedLen() == 0 and !c.guest_shut_rcv) linux.EPOLL.IN else 0),
        };
    }

    pub fn hostEvent(self: *Service, v: *Vsock, c: *Conn, events: u32) void {
        switch (c.tsi.phase) {
            .connecting => self.finishConnect(v, c),
            .listening => self.acceptClients(v, c),
            .dgram => {
                if (events & linux.EPOLL.IN != 0) self.receiveDatagram(v, c);
                if (events & (linux.EPOLL.OUT | linux.EPOLL.ERR) != 0 and c.write_blocked) {
                    c.write_blocked = false;
                    self.sendFrames(v, c);
                }
                if (c.state != .free) v.updateInterest(c);
            },
            else => v.connEvent(c, events),
        }
    }

    pub fn hostEof(_: *Service, _: *Vsock, c: *Conn) void {
        c.send_shutdown |= packet.shutdown_send;
    }

    /// The staged bytes (response, peer header or a datagram frame) all reached the guest.
    pub fn stagedSent(_: *Service, v: *Vsock, c: *Conn) void {
        switch (c.tsi.phase) {
            .accepted => {
                listenerDone(v, c);
                c.tsi.phase = .none;
                c.hold_reads = false;
                v.flushToHost(c);
                if (c.state != .free) v.updateInterest(c);
            },
            .dgram => v.updateInterest(c),
            else => {},
        }
    }

    // ---- requests ----------------------------------------------------------------------------

    fn takeRequest(self: *Service, v: *Vsock, c: *Conn) void {
        if (c.toHostLen() < wire.request_size) return;
        var req: wire.Request = undefined;
        c.peekToHost(std.mem.asBytes(&req));
        c.consumeToHost(wire.request_size);
        self.stats.requests += 1;
        const d = switch (wire.decodeRequest(&req)) {
            .ok => |d| d,
            .invalid => |why| {
                self.stats.invalid += 1;
                log.debug("guest port {d}: bad request: {t}", .{ c.guest_port, why });
                return fail(v, c, error.INVAL);
            },
        };
        c.tsi.family = d.family;
        const allowed = if (d.family == .unix) self.policy.unix else self.policy.inet;
        if (!allowed) return fail(v, c, error.AFNOSUPPORT);
        switch (d.op) {
            .connect => startConnect(v, c, d),
            .listen => self.startListen(v, c, d),
            .dgram => self.startDgram(v, c, d),
        }
    }

    fn startConnect(v: *Vsock, c: *Conn, d: wire.Decoded) void {
        const fd = newSocket(d.family, linux.SOCK.STREAM) catch |err| return fail(v, c, err);
        applySockopts(fd, d, true);
        const a = d.addr.?;
        sys.connect(fd, &a.bytes, a.len) catch |err| switch (err) {
            error.INPROGRESS => {
                c.tsi.phase = .connecting;
                v.attachFd(c, fd);
                return;
            },
            else => {
                sys.close(fd);
                // A unix listener with a full backlog says EAGAIN; the guest's blocking connect
                // would not expect that.
                return fail(v, c, if (err == error.AGAIN) error.CONNREFUSED else err);
            },
        };
        v.attachFd(c, fd);
        connected(v, c);
    }

    fn finishConnect(_: *Service, v: *Vsock, c: *Conn) void {
        var err: i32 = 0;
        _ = sys.getsockopt(c.fd, linux.SOL.SOCKET, linux.SO.ERROR, std.mem.asBytes(&err)) catch |e| return fail(v, c, e);
        if (err == 0) return connected(v, c);
        const e: linux.E = @fromBackingInt(@intCast(@as(u16, @intCast(@min(@max(err, 1), 4095)))));
        if (e == .INPROGRESS or e == .ALREADY) return; // not done yet
        fail(v, c, errno.errorOf(e));
    }

    /// CONNECT done: result 0 and the host socket's local address; then raw bytes.
    fn connected(v: *Vsock, c: *Conn) void {
        var addr: [wire.addr_bytes_max]u8 align(8) = undefined;
        const len = localAddr(c.fd, &addr);
        respond(v, c, 0, addr[0..len]);
        c.tsi.phase = .none;
        c.hold_reads = false;
        v.flushToHost(c); // bytes the guest sent early
        if (c.state != .free) v.updateInterest(c);
    }

    fn startListen(self: *Service, v: *Vsock, c: *Conn, d: wire.Decoded) void {
        var a = d.addr.?;
        if (a.family != .unix) if (!self.expose(&a, d.sockopts)) return fail(v, c, error.PERM);
        const fd = newSocket(d.family, linux.SOCK.STREAM) catch |err| return fail(v, c, err);
        applySockopts(fd, d, true);
        bindListen(fd, &a, @min(@max(d.backlog, 1), somaxconn)) catch |err| {
            sys.close(fd);
            return fail(v, c, err);
        };
        var bound: [wire.addr_bytes_max]u8 align(8) = undefined;
        const len = localAddr(fd, &bound);
        c.tsi.phase = .listening;
        c.tsi.vm_port = d.vm_port;
        c.tsi.backlog = @min(@max(d.backlog, 1), somaxconn);
        if (a.family == .unix) @memcpy(c.tsi.unix_path[0 .. a.len - 2], a.bytes[2..a.len]);
        respond(v, c, 0, bound[0..len]);
        v.attachFd(c, fd);
    }

    /// The exposure rule (include/libkrun.h at krun_set_port_map) applied to an INET/INET6
    /// bind address: false when the port may not be exposed.
    fn expose(self: *Service, a: *wire.Addr, sockopts: u32) bool {
        const guest_port = a.port();
        const map = self.policy.port_map orelse {
            loopback(a, sockopts & wire.Sockopt.v6only != 0);
            return true;
        };
        for (map) |e| if (e.guest == guest_port) {
            a.setPort(e.host);
            return true;
        };
        return false;
    }

    fn acceptClients(self: *Service, v: *Vsock, c: *Conn) void {
        for (0..accepts_per_event) |_| {
            if (c.tsi.pending >= c.tsi.backlog or v.live_len == vsock.conns_max) break;
            var peer: [wire.addr_bytes_max]u8 align(8) = @splat(0);
            var peer_len: u32 = peer.len;
            const fd = sys.accept4(c.fd, @ptrCast(&peer), &peer_len, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC) catch |err| switch (err) {
                error.INTR, error.CONNABORTED => continue,
                error.AGAIN => break,
                else => {
                    log.debug("accept: {t}", .{err});
                    break;
                },
            };
            const a = v.alloc(c.tsi.vm_port, v.pickHostPort(c.tsi.vm_port), .requesting).?;
            a.tsi = .{ .phase = .accepted, .family = c.tsi.family, .listener = @intCast(c - v.conns.ptr), .listener_serial = c.serial };
            a.hold_reads = true;
            a.send_request = true;
            const header = wire.response(0, peer[0..@min(peer_len, peer.len)]);
            assert(a.stageToGuest(std.mem.asBytes(&header))); // tidy: a fresh connection's buffer
            v.attachFd(a, fd);
            v.enqueue(a);
            c.tsi.pending += 1;
            self.stats.accepted += 1;
        }
        v.updateInterest(c);
    }

    // ---- datagrams ---------------------------------------------------------------------------

    fn startDgram(self: *Service, v: *Vsock, c: *Conn, d: wire.Decoded) void {
        var a: wire.Addr = d.addr orelse wildcard(d.family);
        if (a.family != .unix and a.port() != 0 and !self.expose(&a, d.sockopts)) return fail(v, c, error.PERM);
        const fd = newSocket(d.family, linux.SOCK.DGRAM) catch |err| return fail(v, c, err);
        applySockopts(fd, d, false);
        // AF_UNIX without an address: autobind (an abstract name) so replies can come back.
        const len: u32 = if (d.addr == null and a.family == .unix) 2 else a.len;
        sys.bind(fd, @ptrCast(&a.bytes), len) catch |err| {
            sys.close(fd);
            return fail(v, c, err);
        };
        var bound: [wire.addr_bytes_max]u8 align(8) = undefined;
        const blen = localAddr(fd, &bound);
        c.tsi.phase = .dgram;
        respond(v, c, 0, bound[0..blen]);
        v.attachFd(c, fd);
        self.sendFrames(v, c); // frames the guest sent right behind the request
    }

    /// Guest → host: whole frames out of the ring, one sendto each, without waiting.
    fn sendFrames(self: *Service, v: *Vsock, c: *Conn) void {
        while (c.toHostLen() >= wire.frame_size and !c.write_blocked) {
            var f: wire.Frame = undefined;
            c.peekToHost(std.mem.asBytes(&f));
            const ok = switch (wire.decodeFrame(&f, c.tsi.family)) {
                .ok => |ok| ok,
                .invalid => |why| {
                    self.stats.invalid += 1;
                    log.debug("guest port {d}: bad datagram frame: {t}", .{ c.guest_port, why });
                    return v.abort(c, "malformed datagram frame");
                },
            };
            if (c.toHostLen() < wire.frame_size + ok.len) return; // the rest is on its way
            c.consumeToHost(wire.frame_size);
            const p = c.toHostPieces();
            const first = @min(ok.len, p[0].len);
            var iov = [2]std.posix.iovec_const{
                .{ .base = p[0].ptr, .len = first },
                .{ .base = p[1].ptr, .len = ok.len - first },
            };
            const msg: linux.msghdr_const = .{ .name = @ptrCast(&ok.to.bytes), .namelen = ok.to.len, .iov = &iov, .iovlen = 2, .control = null, .controllen = 0, .flags = 0 };
            if (sys.sendmsg(c.fd, &msg, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL)) |_| {
                self.stats.datagrams_out += 1;
            } else |err| switch (err) {
                error.AGAIN, error.NOBUFS => {
                    c.head -%= wire.frame_size; // not sent: the frame stays for EPOLLOUT
                    c.write_blocked = true;
                    v.updateInterest(c);
                    return;
                },
                else => {
                    // As UDP: an unreachable or refused destination loses this datagram only.
                    log.debug("guest port {d}: sendto: {t}", .{ c.guest_port, err });
                    self.stats.datagrams_dropped += 1;
                },
            }
            c.consumeToHost(ok.len);
        }
    }

    /// Host → guest: one datagram into the staging buffer behind its frame header.
    fn receiveDatagram(self: *Service, v: *Vsock, c: *Conn) void {
        if (c.stagedLen() != 0) return;
        var src: [wire.addr_bytes_max]u8 align(8) = @splat(0);
        var src_len: u32 = src.len;
        const body = c.to_guest[wire.frame_size..][0..wire.data_len_max];
        const rc = sys.recvfrom(c.fd, body, linux.MSG.DONTWAIT, @ptrCast(&src), &src_len) catch |err| switch (err) {
            error.AGAIN, error.INTR => return,
            else => return log.debug("guest port {d}: recvfrom: {t}", .{ c.guest_port, err }),
        };
        var f: wire.Frame = .{ .data_len = @intCast(rc), .addr_len = @min(src_len, src.len), .addr = @splat(0) };
        @memcpy(f.addr[0..f.addr_len], src[0..f.addr_len]);
        @memcpy(c.to_guest[0..wire.frame_size], std.mem.asBytes(&f));
        c.tg_off = 0;
        c.tg_len = @intCast(wire.frame_size + rc);
        self.stats.datagrams_in += 1;
        v.enqueue(c);
    }
};

/// The accepted client `c` stops counting against its listener's backlog (once).
fn listenerDone(v: *Vsock, c: *Conn) void {
    const serial = c.tsi.listener_serial;
    if (serial == 0) return;
    c.tsi.listener_serial = 0;
    if (c.tsi.listener >= v.conns.len) return;
    const l = &v.conns[c.tsi.listener];
    if (l.state == .free or l.serial != serial or l.tsi.phase != .listening or l.tsi.pending == 0) return;
    l.tsi.pending -= 1;
    v.updateInterest(l);
}

/// TSI listeners stopped at the connection cap watch for clients again (`Vsock.free`).
pub fn rearmListeners(v: *Vsock) void {
    for (v.live[0..v.live_len]) |i| {
        const l = &v.conns[i];
        if (l.tsi.phase == .listening) v.updateInterest(l);
    }
}

/// Stages the response (or the header) and lets the rx service send it.
fn respond(v: *Vsock, c: *Conn, result: i32, addr: []const u8) void {
    const r = wire.response(result, addr);
    assert(c.stageToGuest(std.mem.asBytes(&r))); // tidy: one response per fresh connection
    v.enqueue(c);
}

/// An error response, then SHUTDOWN: the guest closes, and its RST frees the connection.
fn fail(v: *Vsock, c: *Conn, err: sys.Error) void {
    v.closeFd(c);
    c.tsi.phase = .failed;
    c.hold_reads = true;
    c.consumeToHost(c.toHostLen());
    respond(v, c, -@as(i32, @intCast(@backingInt(errno.errnoOf(err)))), &.{});
    c.send_shutdown = packet.shutdown_rcv | packet.shutdown_send;
}

/// A non-blocking socket.
fn newSocket(family: wire.Family, kind: u32) sys.Error!i32 {
    return sys.socket(@backingInt(family), kind | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, 0);
}

fn bindListen(fd: i32, a: *const wire.Addr, backlog: u32) sys.Error!void {
    try sys.bind(fd, @ptrCast(&a.bytes), a.len);
    try sys.listen(fd, backlog);
}

fn setInt(fd: i32, level: i32, opt: u32, value: u32) void {
    const v: i32 = @intCast(value);
    sys.setsockopt(fd, level, opt, std.mem.asBytes(&v)) catch {};
}

/// The option bits and buffer sizes the guest set, on the host socket (failures are the
/// guest's options not applying, as on a host that lacks one).
fn applySockopts(fd: i32, d: wire.Decoded, stream: bool) void {
    const o = d.sockopts;
    if (o & wire.Sockopt.reuseaddr != 0) setInt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, 1);
    if (o & wire.Sockopt.reuseport != 0) setInt(fd, linux.SOL.SOCKET, linux.SO.REUSEPORT, 1);
    if (stream and o & wire.Sockopt.keepalive != 0) setInt(fd, linux.SOL.SOCKET, linux.SO.KEEPALIVE, 1);
    if (stream and d.family != .unix and o & wire.Sockopt.nodelay != 0) setInt(fd, linux.IPPROTO.TCP, linux.TCP.NODELAY, 1);
    if (d.family == .inet6 and o & wire.Sockopt.v6only != 0) setInt(fd, linux.IPPROTO.IPV6, linux.IPV6.V6ONLY, 1);
    if (d.rcvbuf != 0) setInt(fd, linux.SOL.SOCKET, linux.SO.RCVBUF, @min(d.rcvbuf, sockbuf_max));
    if (d.sndbuf != 0) setInt(fd, linux.SOL.SOCKET, linux.SO.SNDBUF, @min(d.sndbuf, sockbuf_max));
}

fn localAddr(fd: i32, out: *align(8) [wire.addr_bytes_max]u8) u32 {
    @memset(out, 0);
    var len: u32 = out.len;
    sys.getsockname(fd, @ptrCast(out), &len) catch return 0;
    return @min(len, out.len);
}

/// The family's loopback address, keeping the port. An IPv6 wildcard that also takes IPv4
/// (dual-stack, Linux's default, what busybox httpd, Go and Node listen on) becomes
/// ::ffff:127.0.0.1, so host clients reach it at 127.0.0.1 as they would the guest's `[::]`;
/// any other IPv6 address becomes ::1 (one host socket cannot hold both loopbacks).
fn loopback(a: *wire.Addr, v6only: bool) void {
    switch (a.family) {
        .inet => @memcpy(a.bytes[4..8], &[4]u8{ 127, 0, 0, 1 }),
        .inet6 => {
            const dual_stack = !v6only and std.mem.allEqual(u8, a.bytes[8..24], 0);
            @memset(a.bytes[4..24], 0); // flowinfo, address
            if (dual_stack) {
                a.bytes[18] = 0xff;
                a.bytes[19] = 0xff;
                @memcpy(a.bytes[20..24], &[4]u8{ 127, 0, 0, 1 }); // ::ffff:127.0.0.1
            } else a.bytes[23] = 1; // ::1
            @memset(a.bytes[24..28], 0); // scope id
        },
        .unix => unreachable, // tidy: callers pass INET/INET6 addresses
    }
}

/// The family's wildcard address, port 0 (DGRAM without a bind address).
fn wildcard(family: wire.Family) wire.Addr {
    var a: wire.Addr = .{ .family = family, .len = switch (family) {
        .inet => 16,
        .inet6 => 28,
        .unix => 2,
    } };
    std.mem.writeInt(u16, a.bytes[0..2], @backingInt(family), .little);
    return a;
}

test "tsi: a dual-stack IPv6 wildcard listener is exposed on 127.0.0.1, other IPv6 ones on ::1" {
    var a: wire.Addr = .{ .family = .inet6, .len = 28 };
    std.mem.writeInt(u16, a.bytes[0..2], 10, .little);
    a.setPort(8080);
    var v6only = a;
    loopback(&a, false);
    try std.testing.expectEqualSlices(u8, &.{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 127, 0, 0, 1 }, a.bytes[8..24]);
    try std.testing.expectEqual(@as(u16, 8080), a.port());
    loopback(&v6only, true);
    try std.testing.expectEqualSlices(u8, &.{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, v6only.bytes[8..24]);
    var specific: wire.Addr = .{ .family = .inet6, .len = 28 };
    specific.bytes[8] = 0x20; // 2001:db8::5, not a wildcard
    specific.bytes[9] = 0x01;
    specific.bytes[23] = 5;
    loopback(&specific, false);
    try std.testing.expectEqualSlices(u8, &.{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 }, specific.bytes[8..24]);
}
