//! virtio-vsock's guest → host path (Vsock.zig's tx queue): each packet the guest sends is
//! checked where it enters (packet.zig), then opens a connection (REQUEST: a vsock port's unix
//! socket or TSI), updates its credit, or moves its payload into the connection's guest → host
//! ring, which Vsock.zig drains to the host fd.
const std = @import("std");
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const packet = @import("packet.zig");
const Header = packet.Header;
const Op = packet.Op;
const unix = @import("unix.zig");
const tsi = @import("../../tsi/Service.zig");
const vsock = @import("Vsock.zig");
const Vsock = vsock.Vsock;
const Conn = vsock.Conn;
const PortConfig = vsock.PortConfig;
const conns_max = vsock.conns_max;
const to_host_size = vsock.to_host_size;

const log = std.log.scoped(.vsock);

/// Takes every packet the guest queued on the tx queue: each is checked where it enters, then
/// handled (a bad one gets RST or is dropped).
pub fn process(self: *Vsock, a: Device.Activation) queue.Error!void {
    const q = &a.queues[1];
    var used = false;
    while (try q.pop(a.mem)) |chain| {
        var r = chain.reader();
        var h: Header = undefined;
        const got = try r.read(std.mem.asBytes(&h));
        self.stats.packets_tx += 1;
        if (got < packet.header_size) {
            self.stats.dropped += 1;
        } else if (packet.check(&h, chain.readable_len)) |why| {
            self.stats.dropped += 1;
            log.debug("bad packet from guest port {d} to {d}: {t}", .{ h.src_port, h.dst_port, why });
            if (packet.answerWithRst(&h, why)) self.queueRst(h.src_port, h.dst_port);
        } else try handlePacket(self, &h, &r);
        try q.addUsed(a.mem, chain.head, 0);
        used = true;
    }
    if (used and try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
}

fn handlePacket(self: *Vsock, h: *const Header, r: *queue.Reader) queue.Error!void {
    if (h.op == Op.request) return openFromGuest(self, h);
    const c = self.find(h.src_port, h.dst_port) orelse {
        if (h.op != Op.rst) self.queueRst(h.src_port, h.dst_port);
        return;
    };
    if (h.op == Op.rst) return self.free(c);
    // Every packet carries the guest's credit; fwd_cnt beyond what we sent is a lie.
    if (h.fwd_cnt -% c.peer_fwd_cnt > c.tx_cnt -% c.peer_fwd_cnt) return self.abort(c, "fwd_cnt ahead of what was sent");
    const had_credit = c.credit() > 0;
    c.peer_buf_alloc = h.buf_alloc;
    c.peer_fwd_cnt = h.fwd_cnt;
    if (!had_credit and c.credit() > 0) self.enqueue(c);
    switch (h.op) {
        Op.response => {
            if (c.state != .requesting) return self.abort(c, "RESPONSE on an established connection");
            c.state = .established;
            self.enqueue(c);
            self.updateInterest(c);
        },
        Op.rw => try receive(self, c, h, r),
        Op.credit_update => {},
        Op.credit_request => {
            c.send_credit = true;
            self.enqueue(c);
        },
        Op.shutdown => {
            if (h.flags & packet.shutdown_send != 0) c.guest_shut_send = true;
            if (h.flags & packet.shutdown_rcv != 0) c.guest_shut_rcv = true;
            self.drainToHost(c);
        },
        else => unreachable, // tidy: packet.check admitted only these ops
    }
}

/// RW: the payload joins the connection's ring (the guest's credit guarantees room).
fn receive(self: *Vsock, c: *Conn, h: *const Header, r: *queue.Reader) queue.Error!void {
    if (c.state != .established or c.guest_shut_send) return self.abort(c, "data on a connection not open for it");
    if (h.len > to_host_size - c.toHostLen()) {
        self.stats.credit_violations += 1;
        return self.abort(c, "more data than the credit we gave");
    }
    var left = h.len;
    while (left > 0) {
        const at = c.tail % to_host_size;
        const n = @min(left, to_host_size - at);
        try r.readAll(c.to_host[at..][0..n]);
        c.tail +%= n;
        left -= n;
    }
    self.stats.bytes_to_host += h.len;
    self.drainToHost(c);
}

/// REQUEST from the guest: a vsock port's unix socket, TSI, or RST.
fn openFromGuest(self: *Vsock, h: *const Header) void {
    if (self.find(h.src_port, h.dst_port)) |old| return self.abort(old, "REQUEST for a connection that exists");
    const is_tsi = h.dst_port == tsi.port and self.tsi != null;
    const port = portFor(self, h.dst_port);
    if (!is_tsi and (port == null or port.?.listen)) {
        self.stats.conns_refused += 1;
        return self.queueRst(h.src_port, h.dst_port);
    }
    const c = self.alloc(h.src_port, h.dst_port, .established) orelse {
        log.debug("{d} connections: refusing guest port {d} → {d}", .{ conns_max, h.src_port, h.dst_port });
        self.stats.conns_refused += 1;
        return self.queueRst(h.src_port, h.dst_port);
    };
    c.peer_buf_alloc = h.buf_alloc;
    c.peer_fwd_cnt = h.fwd_cnt;
    if (is_tsi) {
        self.tsi.?.open(self, c);
    } else {
        const fd = unix.unixConnect(port.?.path) catch |err| {
            log.debug("vsock port {d}: connect {s}: {t}", .{ h.dst_port, port.?.path, err });
            self.stats.conns_refused += 1;
            return self.abort(c, null);
        };
        self.attachFd(c, fd);
    }
    c.send_response = true;
    self.enqueue(c);
}

fn portFor(self: *Vsock, port: u32) ?*const PortConfig {
    for (self.ports[0..self.port_count]) |*p| if (p.port == port) return p;
    return null;
}
