//! virtio-vsock's host → guest path (Vsock.zig's rx queue): pending RSTs first, then each
//! queued connection one packet at a time, round-robin: the control packets it owes, then data
//! (staged bytes, else its host fd) within the guest's credit.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const packet = @import("packet.zig");
const Header = packet.Header;
const Op = packet.Op;
const vsock = @import("Vsock.zig");
const Vsock = vsock.Vsock;
const Conn = vsock.Conn;
const conns_max = vsock.conns_max;
const rsts_max = vsock.rsts_max;
const to_host_size = vsock.to_host_size;

const log = std.log.scoped(.vsock);

/// Fills the guest's rx buffers: pending RSTs, then each queued connection one packet at
/// a time (round-robin), while there are buffers.
pub fn service(self: *Vsock, a: Device.Activation) queue.Error!void {
    const q = &a.queues[0];
    var used = false;
    defer if (used) {
        if (q.needsNotification(a.mem) catch false) a.interrupt.signal(Device.Interrupt.vring);
    };
    while (self.rst_len > 0) {
        const chain = (try q.pop(a.mem)) orelse return;
        const k = self.rsts[self.rst_head];
        var h = packet.toGuest(Op.rst, k.host_port, k.guest_port);
        try deliver(self, q, a, chain, &h, &.{});
        self.rst_head = (self.rst_head + 1) % rsts_max;
        self.rst_len -= 1;
        self.stats.rsts_sent += 1;
        used = true;
    }
    // Each round serves every queued connection once; a connection with nothing to send
    // leaves the queue, so the loop ends when the queue or the buffers run out.
    var turns: u32 = 4 * conns_max; // a bound, far above what one call can send
    while (self.svc_len > 0 and turns > 0) : (turns -= 1) {
        const index = self.svc[self.svc_head];
        self.svc_head = (self.svc_head + 1) % conns_max;
        self.svc_len -= 1;
        const c = &self.conns[index];
        c.queued = false;
        if (c.state == .free) continue;
        switch (try serveOne(self, q, a, c)) {
            .sent => {
                used = true;
                self.enqueue(c);
            },
            .again => self.enqueue(c),
            .idle => {},
            .no_buffers => {
                // Back to the front: it keeps its turn when the guest adds buffers.
                self.svc_head = (self.svc_head + conns_max - 1) % conns_max;
                self.svc[self.svc_head] = index;
                self.svc_len += 1;
                c.queued = true;
                return;
            },
        }
    }
}

/// sent: a packet went out; again: nothing went out but more is due (re-queue).
const Served = enum { sent, again, idle, no_buffers };

/// One packet for `c`: a control packet it owes, else data within the guest's credit.
fn serveOne(self: *Vsock, q: *queue.Queue, a: Device.Activation, c: *Conn) queue.Error!Served {
    const op: u16, const flags: u32 = if (c.send_request)
        .{ Op.request, 0 }
    else if (c.send_response)
        .{ Op.response, 0 }
    else if (c.send_shutdown != 0 and c.stagedLen() == 0)
        .{ Op.shutdown, c.send_shutdown }
    else
        .{ 0, 0 };
    if (op != 0) {
        const chain = (try q.pop(a.mem)) orelse return .no_buffers;
        var h = headerFor(c, op);
        h.flags = flags;
        try deliver(self, q, a, chain, &h, &.{});
        switch (op) {
            Op.request => c.send_request = false,
            Op.response => c.send_response = false,
            else => c.send_shutdown = 0,
        }
        return .sent;
    }
    if (try serveData(self, q, a, c)) |served| return served;
    if (c.send_credit) {
        const chain = (try q.pop(a.mem)) orelse return .no_buffers;
        var h = headerFor(c, Op.credit_update);
        try deliver(self, q, a, chain, &h, &.{});
        return .sent;
    }
    return .idle;
}

/// Data for the guest: staged bytes first, then the host fd. Null when there is none.
fn serveData(self: *Vsock, q: *queue.Queue, a: Device.Activation, c: *Conn) queue.Error!?Served {
    if (c.state != .established or c.guest_shut_rcv) return null;
    const credit = c.credit();
    const staged = c.stagedLen();
    const from_fd = staged == 0 and c.readable and !c.host_eof and !c.hold_reads and c.fd >= 0;
    if (staged == 0 and !from_fd) return null;
    if (credit == 0) return null; // the guest's CREDIT_UPDATE (or any packet) resumes it
    const chain = (try q.pop(a.mem)) orelse return .no_buffers;
    if (chain.writable_len < packet.header_size) return error.ChainTooShort;
    const room = @min(chain.writable_len - packet.header_size, credit, packet.payload_max);
    var data: []const u8 = undefined;
    if (staged > 0) {
        data = c.to_guest[c.tg_off..][0..@min(staged, room)];
        c.tg_off += @intCast(data.len);
    } else {
        const n = readHost(self, c, room);
        if (n == 0) {
            q.undoPop();
            if (c.state == .free) return .idle;
            if (c.host_eof) {
                if (self.tsi != null and c.tsi.phase != .none) self.tsi.?.hostEof(self, c) else c.send_shutdown |= packet.shutdown_send;
                return .again; // the SHUTDOWN goes next
            }
            return .idle;
        }
        data = self.scratch[0..n];
    }
    var h = headerFor(c, Op.rw);
    h.len = @intCast(data.len);
    try deliver(self, q, a, chain, &h, data);
    c.tx_cnt +%= @intCast(data.len);
    self.stats.bytes_to_guest += data.len;
    if (staged > 0 and c.stagedLen() == 0 and self.tsi != null and c.tsi.phase != .none) self.tsi.?.stagedSent(self, c);
    return .sent;
}

/// Reads at most `room` bytes of the host fd into `scratch`; 0 with `readable` cleared
/// (would block), `host_eof` set, or the connection reset (an error).
fn readHost(self: *Vsock, c: *Conn, room: u32) usize {
    while (true) {
        const n = sys.recvfrom(c.fd, self.scratch[0..@min(room, self.scratch.len)], linux.MSG.DONTWAIT, null, null) catch |err| switch (err) {
            error.INTR => continue,
            error.AGAIN => {
                c.readable = false;
                self.updateInterest(c);
                return 0;
            },
            else => {
                log.debug("conn {d}:{d}: recv: {t}", .{ c.guest_port, c.host_port, err });
                self.abort(c, "host recv failed");
                return 0;
            },
        };
        if (n == 0) {
            c.host_eof = true;
            self.updateInterest(c);
        }
        return n;
    }
}

fn headerFor(c: *Conn, op: u16) Header {
    var h = packet.toGuest(op, c.host_port, c.guest_port);
    h.buf_alloc = to_host_size;
    h.fwd_cnt = c.head;
    c.fwd_advertised = c.head;
    c.send_credit = false;
    return h;
}

fn deliver(self: *Vsock, q: *queue.Queue, a: Device.Activation, chain: queue.Chain, h: *const Header, data: []const u8) queue.Error!void {
    var w = chain.writer();
    try w.writeAll(std.mem.asBytes(h));
    try w.writeAll(data);
    try q.addUsed(a.mem, chain.head, w.written);
    self.stats.packets_rx += 1;
}
