//! One vsock connection's state (Vsock.zig re-exports it): its slot in the table, its host fd
//! and epoll interest, the control packets it owes the guest, the guest → host ring, the
//! host → guest staging and both directions' credit counters.
const std = @import("std");
const assert = std.debug.assert;
const tsi = @import("../../tsi/Service.zig");
const Vsock = @import("Vsock.zig");
const to_host_size = Vsock.to_host_size;
const to_guest_size = Vsock.to_guest_size;

pub const State = enum(u8) {
    free,
    /// We sent (or will send) REQUEST toward the guest and wait for RESPONSE.
    requesting,
    established,
};

pub const Conn = struct {
    state: State = .free,
    /// Distinguishes this use of the slot from earlier ones (TSI's accepted connections name
    /// their listener by index and serial).
    serial: u32 = 0,
    /// In the rx service queue (kept across free/reuse: the queue skips free slots).
    queued: bool = false,
    guest_port: u32 = 0,
    host_port: u32 = 0,
    fd: i32 = -1,
    /// The epoll interest we set on `fd` (0: not in the set).
    events: u32 = 0,
    /// Epoll said readable and no read has hit EAGAIN since.
    readable: bool = false,
    /// A write to `fd` hit EAGAIN: watch EPOLLOUT.
    write_blocked: bool = false,
    // Control packets owed to the guest.
    send_request: bool = false,
    send_response: bool = false,
    send_credit: bool = false,
    send_shutdown: u32 = 0,
    // Guest → host ring: bytes [head, tail) as running counters (tail = bytes received from
    // the guest, head = our fwd_cnt).
    to_host: []u8 = &.{},
    head: u32 = 0,
    tail: u32 = 0,
    fwd_advertised: u32 = 0,
    // Host → guest staging: bytes [tg_off, tg_len) are sent before anything read from `fd`.
    to_guest: []u8 = &.{},
    tg_off: u32 = 0,
    tg_len: u32 = 0,
    // The guest's credit: its buf_alloc and fwd_cnt, and what we sent it.
    peer_buf_alloc: u32 = 0,
    peer_fwd_cnt: u32 = 0,
    tx_cnt: u32 = 0,
    guest_shut_send: bool = false,
    guest_shut_rcv: bool = false,
    host_eof: bool = false,
    host_shut_wr: bool = false,
    /// Host fd reads are not forwarded (TSI phases that frame or wait).
    hold_reads: bool = false,
    /// TSI's per-connection state (tsi/Service.zig); `.none` for plain vsock ports.
    tsi: tsi.ConnState = .{},

    pub fn toHostLen(c: *const Conn) u32 {
        return c.tail -% c.head;
    }

    /// Bytes the guest can still take (0 when its counters are inconsistent).
    pub fn credit(c: *const Conn) u32 {
        const in_flight = c.tx_cnt -% c.peer_fwd_cnt;
        if (in_flight > c.peer_buf_alloc) return 0;
        return c.peer_buf_alloc - in_flight;
    }

    /// The ring's bytes as at most two contiguous pieces.
    pub fn toHostPieces(c: *const Conn) [2][]const u8 {
        const len = c.toHostLen();
        const start = c.head % to_host_size;
        const first = @min(len, to_host_size - start);
        return .{ c.to_host[start..][0..first], c.to_host[0 .. len - first] };
    }

    /// Marks `n` ring bytes as taken out (our fwd_cnt grows).
    pub fn consumeToHost(c: *Conn, n: u32) void {
        assert(n <= c.toHostLen()); // tidy: n counted from our own ring
        c.head +%= n;
    }

    /// Copies the ring's first `dest.len` bytes without consuming them.
    pub fn peekToHost(c: *const Conn, dest: []u8) void {
        assert(dest.len <= c.toHostLen()); // tidy: callers check the length first
        const p = c.toHostPieces();
        const a = @min(dest.len, p[0].len);
        @memcpy(dest[0..a], p[0][0..a]);
        @memcpy(dest[a..], p[1][0 .. dest.len - a]);
    }

    /// Queues bytes for the guest ahead of the host fd's (TSI headers, datagram frames).
    pub fn stageToGuest(c: *Conn, bytes: []const u8) bool {
        if (c.tg_off == c.tg_len) {
            c.tg_off = 0;
            c.tg_len = 0;
        }
        if (bytes.len > c.to_guest.len - c.tg_len) return false;
        @memcpy(c.to_guest[c.tg_len..][0..bytes.len], bytes);
        c.tg_len += @intCast(bytes.len);
        return true;
    }

    pub fn stagedLen(c: *const Conn) u32 {
        return c.tg_len - c.tg_off;
    }
};
