//! virtio-vsock (device id 19) and its muxer: guest CID 3, host CID 2, stream sockets only
//! (VERSION_1; no SEQPACKET, no DGRAM: TSI runs over plain streams, see tsi/PROTOCOL.md).
//! Queues: rx 0 (host → guest), tx 1 (guest → host), event 2 (posted by the guest, never used).
//!
//! Connections are keyed by (guest port, host port) in a fixed table of `conns_max`. Each is
//! backed by one non-blocking host fd watched in an epoll set of our own (`pollFds` hands it to
//! the VMM's event loop, as the console does); the table, the buffers and the queues are sized
//! when the device is built, nothing allocates afterwards. Backends:
//! - vsock ports (`krun_add_vsock_port`): a guest connect(2, port) becomes a host unix-socket
//!   connect to the port's path;
//! - listen ports (`krun_add_vsock_port2(listen)`): we listen on the path, and each host client
//!   becomes a connection we open toward (3, port);
//! - TSI (host port 620, tsi/Service.zig): the guest's sockets as host sockets.
//!
//! Flow control (virtio §5.10.6.3), both ways, so one connection never stalls another:
//! - guest → host: we advertise `buf_alloc` = `to_host_size` and `fwd_cnt` = bytes taken out of
//!   the connection's ring; an honest guest never sends more than fits, a guest that does gets
//!   RST. A host peer that does not read fills the ring and the guest's credit runs out.
//! - host → guest: we read a host fd only while the guest's credit (its buf_alloc minus bytes in
//!   flight) allows; a guest that does not read stalls only its connection (its fd leaves the
//!   epoll set until credit returns).
//! Every guest packet is checked where it enters (packet.zig); a bad one gets RST or is dropped.
//!
//! Limits (documented in include/libkrun.h): `conns_max` connections, each with at most one
//! host fd, plus one listening fd per listen port and one per TSI listener (a TSI listener is a
//! connection), plus our epoll fd.
//!
//! This file owns the device, the connection table and draining a connection's guest → host
//! ring to its host fd; conn.zig one connection's state, tx.zig the guest's packets (the tx
//! queue), rx.zig the host → guest path, unix.zig the vsock ports' host sockets, packet.zig
//! the wire format.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../../sys/linux.zig");
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const mmio = @import("../mmio.zig");
const Lock = @import("../Lock.zig");
const packet = @import("packet.zig");
const rx = @import("rx.zig");
const tx = @import("tx.zig");
const unix = @import("unix.zig");
const unixListen = unix.unixListen;
const Header = packet.Header;
const Op = packet.Op;
const tsi = @import("../../tsi/Service.zig");

const log = std.log.scoped(.vsock);

pub const queue_size: u16 = 256;
/// Connections (and so host connection fds) per VM.
pub const conns_max = 1024;
/// vsock ports per VM (krun_add_vsock_port*).
pub const ports_max = 64;
/// The guest → host ring per connection: what we advertise as buf_alloc. It holds a whole
/// TSI datagram frame (136 + 65535 bytes).
pub const to_host_size: u32 = 128 * 1024;
/// Host → guest staging per connection (TSI headers and whole datagrams with their frame).
pub const to_guest_size: u32 = 64 * 1024 + 4096;
/// RSTs for packets that have no connection, waiting for rx buffers (more are dropped).
pub const rsts_max = 256;
const events_per_wait = 64;
/// Host ports we pick for connections we open toward the guest start here.
const host_port_first: u32 = 1 << 30;

comptime {
    assert(std.math.isPowerOfTwo(to_host_size));
    assert(conns_max <= std.math.maxInt(u16));
}

/// One `krun_add_vsock_port*` entry. `path` is borrowed until `init` returns.
pub const PortConfig = struct { port: u32, path: []const u8, listen: bool };

pub const Config = struct {
    ports: []const PortConfig = &.{},
    /// TSI on host port 620 (null: the port is refused like any unknown port).
    tsi: ?tsi.Policy = null,
};

const conn = @import("conn.zig");
pub const State = conn.State;
pub const Conn = conn.Conn;

const Listener = unix.Listener;
const Key = struct { guest_port: u32, host_port: u32 };

/// Epoll data: the kind in the high half, the index in the low half.
const tag_conn: u64 = 1 << 32;
pub const tag_listener: u64 = 2 << 32;

pub const Stats = struct {
    packets_tx: u64 = 0,
    packets_rx: u64 = 0,
    dropped: u64 = 0,
    rsts_sent: u64 = 0,
    rsts_dropped: u64 = 0,
    credit_violations: u64 = 0,
    conns_opened: u64 = 0,
    conns_refused: u64 = 0,
    bytes_to_host: u64 = 0,
    bytes_to_guest: u64 = 0,
};

pub const Vsock = struct {
    lock: Lock = .{},
    act: ?Device.Activation = null,
    epfd: i32 = -1,
    conns: []Conn = &.{},
    /// Indices of live connections (unordered): lookups scan only these.
    live: []u16 = &.{},
    live_len: u32 = 0,
    /// Connections waiting for rx buffers (round-robin), each at most once.
    svc: []u16 = &.{},
    svc_head: u32 = 0,
    svc_len: u32 = 0,
    rsts: [rsts_max]Key = undefined,
    rst_head: u32 = 0,
    rst_len: u32 = 0,
    ports: [ports_max]PortConfig = undefined,
    paths: [ports_max][108]u8 = undefined,
    port_count: u32 = 0,
    listeners: [ports_max]Listener = @splat(.{}),
    next_host_port: u32 = host_port_first,
    next_serial: u32 = 1,
    tsi: ?tsi.Service = null,
    buffers: ?[]align(std.heap.page_size_min) u8 = null,
    scratch: [64 * 1024]u8 = undefined,
    stats: Stats = .{},

    pub const device_id: u32 = 19;
    pub const queue_sizes_max = [_]u16{ queue_size, queue_size, queue_size };
    pub const features: u64 = 1 << mmio.feature_version_1;
    pub const device = Device.Impl(Vsock).device;

    pub const InitError = error{ SystemResources, OutOfMemory, InvalidConfig, AddressInUse };

    /// Builds the device in place (it must not move). Listen ports are bound and listening
    /// when this returns (-EEXIST-like `AddressInUse` when the path exists).
    pub fn init(self: *Vsock, gpa: std.mem.Allocator, cfg: Config) InitError!void {
        self.* = .{};
        errdefer self.deinit(gpa);
        if (cfg.ports.len > ports_max) return error.InvalidConfig;
        self.epfd = sys.epoll_create1(linux.EPOLL.CLOEXEC) catch return error.SystemResources;
        self.conns = try gpa.alloc(Conn, conns_max);
        @memset(self.conns, .{});
        self.live = try gpa.alloc(u16, conns_max);
        self.svc = try gpa.alloc(u16, conns_max);
        // Address space only: pages are touched by connections in use and dropped on close.
        const stride: usize = to_host_size + to_guest_size;
        self.buffers = sys.mmap(stride * conns_max, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0) catch
            return error.OutOfMemory;
        for (self.conns, 0..) |*c, i| {
            c.to_host = self.buffers.?[i * stride ..][0..to_host_size];
            c.to_guest = self.buffers.?[i * stride + to_host_size ..][0..to_guest_size];
        }
        for (cfg.ports) |p| try self.addPort(p);
        if (cfg.tsi) |policy| self.tsi = .{ .policy = policy };
    }

    fn addPort(self: *Vsock, p: PortConfig) InitError!void {
        if (p.path.len == 0 or p.path.len >= 108) return error.InvalidConfig;
        if (p.port == tsi.port) return error.InvalidConfig;
        for (self.ports[0..self.port_count]) |q| if (q.port == p.port) return error.InvalidConfig;
        const i = self.port_count;
        @memcpy(self.paths[i][0..p.path.len], p.path);
        self.paths[i][p.path.len] = 0;
        self.ports[i] = .{ .port = p.port, .path = self.paths[i][0..p.path.len], .listen = p.listen };
        self.port_count += 1;
        if (!p.listen) return;
        const fd = try unixListen(self.ports[i].path);
        self.listeners[i] = .{ .fd = fd, .port = p.port };
        var ev: linux.epoll_event = .{ .events = 0, .data = .{ .u64 = tag_listener | i } };
        sys.epoll_ctl(self.epfd, linux.EPOLL.CTL_ADD, fd, &ev) catch return error.SystemResources;
    }

    /// Closes every fd and unlinks the listen ports' sockets (we created them). The device
    /// must be reset (or never activated) first.
    pub fn deinit(self: *Vsock, gpa: std.mem.Allocator) void {
        assert(self.act == null); // tidy: activation state, ours
        for (self.conns) |*c| if (c.state != .free) self.closeFd(c);
        for (self.listeners[0..self.port_count], 0..) |*l, i| if (l.fd >= 0) {
            sys.close(l.fd);
            l.fd = -1;
            sys.unlink(@ptrCast(&self.paths[i])) catch {};
        };
        if (self.tsi) |*s| s.deinit();
        if (self.conns.len > 0) gpa.free(self.conns);
        if (self.live.len > 0) gpa.free(self.live);
        if (self.svc.len > 0) gpa.free(self.svc);
        if (self.buffers) |b| sys.munmap(b);
        if (self.epfd >= 0) sys.close(self.epfd);
        self.* = .{};
    }

    pub fn readConfig(_: *Vsock, offset: u32, data: []u8) void {
        const cid: u64 = packet.guest_cid;
        mmio.readConfigBytes(std.mem.asBytes(&cid), offset, data);
    }

    pub fn writeConfig(_: *Vsock, offset: u32, data: []const u8) void {
        log.debug("config write at {d} ({d} bytes) ignored (guest_cid is read-only)", .{ offset, data.len });
    }

    pub fn activate(self: *Vsock, a: Device.Activation) Device.ActivateError!void {
        self.lock.lock();
        defer self.lock.unlock();
        if (a.queues.len < 3 or !a.queues[0].ready or !a.queues[1].ready) return error.DeviceBroken;
        self.act = a;
        for (self.listeners[0..self.port_count]) |*l| if (l.fd >= 0) unix.setListenerEvents(self, l, linux.EPOLL.IN);
    }

    pub fn reset(self: *Vsock) void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = null;
        // The guest's sockets are gone with its driver: every connection ends, quietly.
        while (self.live_len > 0) self.free(&self.conns[self.live[0]]);
        self.svc_len = 0;
        self.rst_len = 0;
        for (self.listeners[0..self.port_count]) |*l| if (l.fd >= 0) unix.setListenerEvents(self, l, 0);
    }

    pub fn pollFds(self: *Vsock, out: []i32) usize {
        if (out.len == 0) return 0;
        out[0] = self.epfd;
        return 1;
    }

    pub fn queueNotify(self: *Vsock, index: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        const a = self.act orelse return;
        switch (index) {
            0 => {},
            1 => a.run(1, log, self, tx.process),
            else => return, // event queue buffers are kept for events we never send
        }
        a.run(0, log, self, rx.service);
    }

    pub fn backendReady(self: *Vsock, fd: i32) void {
        self.lock.lock();
        defer self.lock.unlock();
        assert(fd == self.epfd); // tidy: our epoll fd
        var events: [events_per_wait]linux.epoll_event = undefined;
        const n = sys.epoll_wait(self.epfd, &events, 0) catch return;
        for (events[0..n]) |ev| self.hostEvent(ev.data.u64, ev.events);
        if (self.act) |a| a.run(0, log, self, rx.service);
    }

    // ---- guest → host: the connection's ring to its host fd (tx.zig fills the ring) -------

    /// The guest's bytes go where the connection's phase says (raw: the host fd), then the
    /// shutdown bookkeeping.
    pub fn drainToHost(self: *Vsock, c: *Conn) void {
        if (c.tsi.phase != .none) {
            if (self.tsi) |*s| s.consume(self, c) else self.abort(c, "TSI state without TSI");
        } else self.flushToHost(c);
        if (c.state == .free) return;
        self.creditUpdateIfDue(c);
        self.maybeFinish(c);
    }

    /// Writes the ring to the host fd without waiting.
    pub fn flushToHost(self: *Vsock, c: *Conn) void {
        while (c.toHostLen() > 0 and c.fd >= 0 and !c.host_shut_wr) {
            const p = c.toHostPieces();
            var iov = [2]std.posix.iovec_const{ .{ .base = p[0].ptr, .len = p[0].len }, .{ .base = p[1].ptr, .len = p[1].len } };
            const n: usize = if (p[1].len == 0) 1 else 2;
            const msg: linux.msghdr_const = .{ .name = null, .namelen = 0, .iov = &iov, .iovlen = n, .control = null, .controllen = 0, .flags = 0 };
            const sent = sys.sendmsg(c.fd, &msg, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL) catch |err| switch (err) {
                error.INTR => continue,
                error.AGAIN => {
                    c.write_blocked = true;
                    break self.updateInterest(c);
                },
                else => {
                    log.debug("conn {d}:{d}: send: {t}", .{ c.guest_port, c.host_port, err });
                    return self.abort(c, "host send failed");
                },
            };
            c.consumeToHost(@intCast(sent));
        } else if (c.write_blocked) {
            c.write_blocked = false;
            self.updateInterest(c);
        }
    }

    /// Tells the guest about freed ring space once half the ring is free again since the
    /// last advertisement, or the ring ran empty (the guest may wait for it).
    pub fn creditUpdateIfDue(self: *Vsock, c: *Conn) void {
        const unadvertised = c.head -% c.fwd_advertised;
        if (unadvertised == 0) return;
        if (unadvertised >= to_host_size / 2 or c.toHostLen() == 0) {
            c.send_credit = true;
            self.enqueue(c);
        }
    }

    /// Closes the host side once the guest shut what it shut and its bytes are out.
    fn maybeFinish(self: *Vsock, c: *Conn) void {
        // The guest closed: a byte stream's last bytes still go out first; anything else (a
        // TSI request never completed, a listener's lifeline) has nowhere to go.
        const stream = c.tsi.phase == .none or c.tsi.phase == .accepted;
        if (c.guest_shut_send and c.guest_shut_rcv and (c.toHostLen() == 0 or !stream)) return self.abort(c, null);
        if (c.toHostLen() > 0) return;
        if (c.guest_shut_send and !c.host_shut_wr and c.fd >= 0 and c.tsi.phase == .none) {
            sys.shutdown(c.fd, linux.SHUT.WR) catch {};
            c.host_shut_wr = true;
        }
        if (c.guest_shut_rcv) self.updateInterest(c);
    }

    // ---- connections ---------------------------------------------------------------------

    pub fn find(self: *Vsock, guest_port: u32, host_port: u32) ?*Conn {
        for (self.live[0..self.live_len]) |i| {
            const c = &self.conns[i];
            if (c.guest_port == guest_port and c.host_port == host_port) return c;
        }
        return null;
    }

    /// A free slot for (guest_port, host_port), or null at the cap.
    pub fn alloc(self: *Vsock, guest_port: u32, host_port: u32, state: State) ?*Conn {
        if (self.live_len == conns_max) return null;
        for (self.conns, 0..) |*c, i| {
            if (c.state != .free) continue;
            const queued = c.queued;
            const to_host = c.to_host;
            const to_guest = c.to_guest;
            if (self.next_serial == 0) self.next_serial = 1; // 0 means "none" to TSI
            c.* = .{ .state = state, .serial = self.next_serial, .queued = queued, .guest_port = guest_port, .host_port = host_port, .to_host = to_host, .to_guest = to_guest };
            self.next_serial +%= 1;
            self.live[self.live_len] = @intCast(i);
            self.live_len += 1;
            self.stats.conns_opened += 1;
            return c;
        }
        unreachable; // tidy: live_len < conns_max means a slot is free
    }

    /// A host port no live connection to `guest_port` uses (for connections we open).
    pub fn pickHostPort(self: *Vsock, guest_port: u32) u32 {
        while (true) {
            const p = self.next_host_port;
            self.next_host_port = if (p == std.math.maxInt(u32)) host_port_first else p + 1;
            if (self.find(guest_port, p) == null) return p;
        }
    }

    /// Ends a connection without telling the guest (it sent RST, or the device resets).
    pub fn free(self: *Vsock, c: *Conn) void {
        assert(c.state != .free); // tidy: callers hold a live connection
        if (self.tsi) |*s| s.release(self, c);
        self.closeFd(c);
        c.state = .free;
        const was_full = self.live_len == conns_max;
        const index: u16 = @intCast(c - self.conns.ptr);
        for (self.live[0..self.live_len], 0..) |v, k| if (v == index) {
            self.live[k] = self.live[self.live_len - 1];
            self.live_len -= 1;
            break;
        };
        // Listeners stopped at the cap may accept again.
        if (was_full and self.act != null) {
            for (self.listeners[0..self.port_count]) |*l| if (l.fd >= 0) unix.setListenerEvents(self, l, linux.EPOLL.IN);
            if (self.tsi != null) tsi.rearmListeners(self);
        }
        // Give the buffers' pages back: an idle VM's RSS does not keep its past traffic.
        const stride: usize = to_host_size + to_guest_size;
        const base: [*]align(std.heap.page_size_min) u8 = @alignCast(c.to_host.ptr);
        if (c.head != 0 or c.tail != 0 or c.tg_len != 0) sys.madvise(base[0..stride], linux.MADV.DONTNEED) catch {};
    }

    /// Ends a connection and tells the guest (RST); `why` is logged (null: a normal close).
    pub fn abort(self: *Vsock, c: *Conn, why: ?[]const u8) void {
        if (why) |w| log.debug("conn {d}:{d}: reset: {s}", .{ c.guest_port, c.host_port, w });
        self.queueRst(c.guest_port, c.host_port);
        self.free(c);
    }

    pub fn closeFd(self: *Vsock, c: *Conn) void {
        if (c.fd < 0) return;
        if (c.events != 0) sys.epoll_ctl(self.epfd, linux.EPOLL.CTL_DEL, c.fd, null) catch {};
        sys.close(c.fd);
        c.fd = -1;
        c.events = 0;
    }

    /// Gives `c` the host fd `fd` (non-blocking), watched as the connection's state asks.
    pub fn attachFd(self: *Vsock, c: *Conn, fd: i32) void {
        assert(c.fd < 0); // tidy: one fd per connection
        c.fd = fd;
        c.events = 0;
        self.updateInterest(c);
    }

    /// The epoll interest that follows from the connection's state.
    pub fn updateInterest(self: *Vsock, c: *Conn) void {
        if (c.fd < 0) return;
        var want: u32 = 0;
        const may_read = c.state == .established and !c.host_eof and !c.guest_shut_rcv and !c.hold_reads;
        if (may_read and !c.readable) want |= linux.EPOLL.IN;
        if (c.write_blocked) want |= linux.EPOLL.OUT;
        if (c.tsi.phase != .none) if (self.tsi) |*s| {
            want = s.interest(self, c, want);
        };
        if (want == c.events) return;
        const index: u64 = @intCast(c - self.conns.ptr);
        var ev: linux.epoll_event = .{ .events = want, .data = .{ .u64 = tag_conn | index } };
        const op: u32 = if (want == 0) linux.EPOLL.CTL_DEL else if (c.events == 0) linux.EPOLL.CTL_ADD else linux.EPOLL.CTL_MOD;
        sys.epoll_ctl(self.epfd, op, c.fd, &ev) catch
            log.warn("conn {d}:{d}: epoll_ctl failed", .{ c.guest_port, c.host_port });
        c.events = want;
    }

    // ---- host events ---------------------------------------------------------------------

    fn hostEvent(self: *Vsock, data: u64, events: u32) void {
        const index: u32 = @truncate(data);
        switch (data & ~@as(u64, 0xffff_ffff)) {
            tag_listener => if (index < self.port_count) unix.acceptPort(self, index),
            tag_conn => if (index < self.conns.len) {
                const c = &self.conns[index];
                if (c.state == .free) return; // an event fetched before it closed
                if (c.tsi.phase != .none) {
                    if (self.tsi) |*s| return s.hostEvent(self, c, events);
                }
                self.connEvent(c, events);
            },
            else => {},
        }
    }

    /// Readiness on a connection's fd: reads are served by `serviceRx` (they need the
    /// guest's buffers and credit), writes resume here.
    pub fn connEvent(self: *Vsock, c: *Conn, events: u32) void {
        if (events & (linux.EPOLL.IN | linux.EPOLL.HUP | linux.EPOLL.ERR | linux.EPOLL.RDHUP) != 0) {
            c.readable = true;
            self.enqueue(c);
        }
        if (events & (linux.EPOLL.OUT | linux.EPOLL.ERR) != 0 and c.write_blocked) {
            c.write_blocked = false;
            self.drainToHost(c);
            if (c.state == .free) return;
        }
        self.updateInterest(c);
    }

    // ---- host → guest --------------------------------------------------------------------

    pub fn enqueue(self: *Vsock, c: *Conn) void {
        if (c.queued) return;
        c.queued = true;
        self.svc[(self.svc_head + self.svc_len) % conns_max] = @intCast(c - self.conns.ptr);
        self.svc_len += 1;
    }

    pub fn queueRst(self: *Vsock, guest_port: u32, host_port: u32) void {
        if (self.rst_len == rsts_max) {
            self.stats.rsts_dropped += 1;
            return;
        }
        self.rsts[(self.rst_head + self.rst_len) % rsts_max] = .{ .guest_port = guest_port, .host_port = host_port };
        self.rst_len += 1;
    }
};
