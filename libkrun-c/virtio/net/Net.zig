//! virtio-net (device id 1): one receive and one transmit queue, the MAC in config space, and
//! one host backend fd: a unix stream with passt/QEMU framing (passt, socket_vmnet), a unix
//! datagram socket (one frame per datagram: gvproxy, vmnet-helper) or a tap device opened with
//! IFF_VNET_HDR, where the guest's virtio_net_hdr passes through both ways: the tap kernel
//! completes partial checksums and segments TSO frames from the guest (HOST_TSO4/TSO6 are
//! offered for a tap only), and TUNSETOFFLOAD hands the guest partial-checksum and TSO frames
//! as far as it acked GUEST_CSUM/TSO4/TSO6.
//!
//! Everything runs on the event loop, non-blocking: the backend fd sits in an epoll set of the
//! device's own (pollFds) whose interest follows what can progress. Frames both ways pass
//! through bounded byte rings of length-prefixed records (frame.zig's stream framing):
//! - guest → host: tx chains are copied into `tx` and flushed; when `tx` has no room for one
//!   more frame the chain stays in the queue (the guest's queue fills: back-pressure) and
//!   EPOLLOUT resumes the work once the backend takes bytes again.
//! - host → guest: the backend is read into `rx` only while it has room for a whole frame;
//!   frames go to the guest's rx buffers as they are posted; with none posted, `rx` fills and
//!   reading stops until the guest posts more (the backend's socket buffer then pushes back).
//! Every guest header is checked (frame.checkTx); a bad one drops that frame, never the device.
//! MRG_RXBUF, INDIRECT_DESC and EVENT_IDX are always offered (see ring_features: why receive
//! needs them).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const assert = std.debug.assert;
const Device = @import("../Device.zig");
const queue = @import("../queue.zig");
const mmio = @import("../mmio.zig");
const Lock = @import("../Lock.zig");
const GuestMemory = @import("guest_memory");
const frame = @import("frame.zig");
const Ring = @import("Ring.zig");

const log = std.log.scoped(.net);

pub const queue_size: u16 = 256;
/// A record: the length prefix, then (tap only) the 12-byte virtio_net_hdr, then the frame.
pub const record_max = frame.prefix_size + frame.header_size + frame.frame_max;
/// Each ring holds several maximum records, so small frames batch and one big one always fits.
pub const ring_size: u32 = 4 * record_max;

/// virtio-net feature bits (virtio 1.x §5.1.3); the C API's NET_FEATURE_* use the same numbers.
pub const feature_csum: u6 = 0;
pub const feature_guest_csum: u6 = 1;
pub const feature_guest_tso4: u6 = 7;
pub const feature_guest_tso6: u6 = 8;
pub const feature_guest_ufo: u6 = 10;
pub const feature_host_tso4: u6 = 11;
pub const feature_host_tso6: u6 = 12;
pub const feature_host_ufo: u6 = 14;
pub const feature_mac: u6 = 5;
pub const feature_mrg_rxbuf: u6 = 15;
pub const feature_status: u6 = 16;

/// Offloads served for any backend: CSUM (the device completes partial checksums before a
/// frame leaves; a tap's kernel does it) and the GUEST_* receive bits (GUEST_TSO* makes Linux
/// post 64 KiB buffers, so passt's large frames fit).
pub const offloads_served: u64 = (1 << feature_csum) | (1 << feature_guest_csum) |
    (1 << feature_guest_tso4) | (1 << feature_guest_tso6) | (1 << feature_guest_ufo);
/// A tap (vnet header) also takes TSO frames from the guest: its kernel segments them. Stream
/// and datagram peers get whole frames only (no segmentation is built here), and HOST_UFO is
/// never offered (Linux's driver no longer sends UFO).
pub const offloads_served_tap: u64 = offloads_served | (1 << feature_host_tso4) | (1 << feature_host_tso6);

/// Ring features, always offered (as QEMU does). MRG_RXBUF: one received frame may fill
/// several guest buffers (num_buffers in its header says how many), so Linux posts small
/// (page-sized) receive buffers, about 1 MiB for a 256-entry ring, instead of 64 KiB big-packet
/// ones (16 MiB), and a frame that needs more buffers than are posted waits for them.
/// INDIRECT_DESC: for a driver that does not ack MRG_RXBUF but acked
/// GUEST_TSO*/UFO posts 64 KiB receive buffers of MAX_SKB_FRAGS + 2 = 19 pieces (Linux's big
/// packets); in the ring itself only 13 such buffers fit in 256 entries, so each guest round
/// trip (interrupt, NAPI, refill, kick) carried at most 13 frames and a slow guest starved
/// passt (issue 12: a 16 MiB host → guest transfer stalled where QEMU + passt finished). In
/// indirect tables every ring entry is a buffer: 256 of them. EVENT_IDX: both sides suppress
/// the kicks and interrupts the other does not need (queue.zig keeps avail_event/used_event).
pub const ring_features: u64 = (1 << feature_mrg_rxbuf) | (1 << queue.feature_indirect_desc) | (1 << queue.feature_event_idx);

/// tun ioctls and TUN_F_* offload bits (linux/if_tun.h).
const tunsetoffload: u32 = 0x400454d0;
const tun_f_csum: u32 = 0x01;
const tun_f_tso4: u32 = 0x02;
const tun_f_tso6: u32 = 0x04;

pub const Kind = enum { unixstream, unixgram, tap };

pub const Config = struct {
    /// Owned from here on (closed by deinit).
    fd: i32,
    kind: Kind,
    mac: [6]u8,
    /// The caller's NET_FEATURE_* bits (virtio numbering); unserved ones are not offered.
    features: u32,
};

pub const Stats = struct {
    frames_tx: u64 = 0,
    frames_rx: u64 = 0,
    /// Guest frames refused (bad header, length, or an unserved offload request).
    tx_dropped: u64 = 0,
    /// Host frames dropped (bad length on the stream, or a guest buffer too small for it).
    rx_dropped: u64 = 0,
};

pub const Net = struct {
    lock: Lock = .{},
    act: ?Device.Activation = null,
    epfd: i32 = -1,
    fd: i32 = -1,
    kind: Kind = .unixstream,
    mac: [6]u8 = @splat(0),
    offered: u64 = 0,
    tx: Ring = .{},
    rx: Ring = .{},
    /// Stream bytes still to skip after a hostile length prefix.
    rx_skip: u32 = 0,
    /// The last flush hit EAGAIN: EPOLLOUT is wanted.
    tx_blocked: bool = false,
    /// A tx chain waits in the queue for room in `tx`.
    tx_waiting: bool = false,
    /// The backend hung up or failed: frames to it are dropped, nothing more is read.
    dead: bool = false,
    events: u32 = 0,
    stats: Stats = .{},
    /// The guest buffers one received frame is being written to (MRG_RXBUF: up to a ring).
    rx_chains: [queue_size]queue.Chain = undefined,

    pub const device_id: u32 = 1;
    pub const queue_sizes_max = [_]u16{ queue_size, queue_size };
    pub const device = Device.Impl(Net).device;

    pub const InitError = error{ SystemResources, OutOfMemory };

    /// Builds the device in place (it must not move); takes `cfg.fd` whatever happens.
    pub fn init(self: *Net, gpa: std.mem.Allocator, cfg: Config) InitError!void {
        self.* = .{ .fd = cfg.fd, .kind = cfg.kind, .mac = cfg.mac };
        errdefer self.deinit(gpa);
        const served = if (cfg.kind == .tap) offloads_served_tap else offloads_served;
        self.offered = (1 << mmio.feature_version_1) | (1 << feature_mac) | (1 << feature_status) |
            ring_features | (@as(u64, cfg.features) & served);
        // virtio: GUEST_TSO*/UFO only together with GUEST_CSUM, HOST_TSO* only with CSUM.
        if (self.offered & (1 << feature_guest_csum) == 0)
            self.offered &= ~@as(u64, (1 << feature_guest_tso4) | (1 << feature_guest_tso6) | (1 << feature_guest_ufo));
        if (self.offered & (1 << feature_csum) == 0)
            self.offered &= ~@as(u64, (1 << feature_host_tso4) | (1 << feature_host_tso6));
        self.epfd = sys.epoll_create1(linux.EPOLL.CLOEXEC) catch return error.SystemResources;
        self.tx.buf = try gpa.alloc(u8, ring_size);
        self.rx.buf = try gpa.alloc(u8, ring_size);
    }

    pub fn deinit(self: *Net, gpa: std.mem.Allocator) void {
        assert(self.act == null); // tidy: activation state, ours
        if (self.tx.buf.len > 0) gpa.free(self.tx.buf);
        if (self.rx.buf.len > 0) gpa.free(self.rx.buf);
        if (self.fd >= 0) sys.close(self.fd);
        if (self.epfd >= 0) sys.close(self.epfd);
        self.* = .{};
    }

    pub fn features(self: *Net) u64 {
        return self.offered;
    }

    /// mac[6], then status (VIRTIO_NET_S_LINK_UP): the link is always up.
    pub fn readConfig(self: *Net, offset: u32, data: []u8) void {
        var config: [8]u8 = undefined;
        @memcpy(config[0..6], &self.mac);
        std.mem.writeInt(u16, config[6..8], 1, .little);
        mmio.readConfigBytes(&config, offset, data);
    }

    pub fn writeConfig(_: *Net, offset: u32, data: []const u8) void {
        // Legacy drivers may write the MAC; a VERSION_1 driver must not. Ignored either way.
        log.debug("config write at {d} ({d} bytes) ignored", .{ offset, data.len });
    }

    pub fn activate(self: *Net, a: Device.Activation) Device.ActivateError!void {
        self.lock.lock();
        defer self.lock.unlock();
        if (a.queues.len < 2 or !a.queues[0].ready or !a.queues[1].ready) return error.DeviceBroken;
        self.act = a;
        if (self.kind == .tap) self.setTapOffload(a.acked_features);
        self.updateInterest();
    }

    /// What the tap may hand the guest: partial checksums and TSO frames as far as it acked.
    /// Best effort: a kernel that refuses sends plain frames, which every driver takes.
    fn setTapOffload(self: *Net, acked: u64) void {
        var f: u32 = 0;
        if (acked & (1 << feature_guest_csum) != 0) {
            f |= tun_f_csum;
            if (acked & (1 << feature_guest_tso4) != 0) f |= tun_f_tso4;
            if (acked & (1 << feature_guest_tso6) != 0) f |= tun_f_tso6;
        }
        _ = sys.ioctl(self.fd, tunsetoffload, f) catch |err| log.warn("tap: TUNSETOFFLOAD {x}: {t}", .{ f, err });
    }

    pub fn reset(self: *Net) void {
        self.lock.lock();
        defer self.lock.unlock();
        self.act = null;
        self.tx_waiting = false;
        if (self.kind == .tap) self.setTapOffload(0);
        // Bytes already framed stay: the stream to the backend must stay in step.
        self.updateInterest();
    }

    pub fn pollFds(self: *Net, out: []i32) usize {
        if (out.len == 0) return 0;
        out[0] = self.epfd;
        return 1;
    }

    pub fn queueNotify(self: *Net, index: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        const a = self.act orelse return;
        if (index == 1) a.run(1, log, self, processTx);
        a.run(0, log, self, deliverRx);
        self.updateInterest();
    }

    pub fn backendReady(self: *Net, fd: i32) void {
        self.lock.lock();
        defer self.lock.unlock();
        assert(fd == self.epfd); // tidy: our epoll fd
        var events: [1]linux.epoll_event = undefined;
        const n = sys.epoll_wait(self.epfd, &events, 0) catch return;
        if (n == 0) return;
        const ev = events[0].events;
        if (ev & (linux.EPOLL.OUT | linux.EPOLL.ERR) != 0) self.flush();
        if (ev & (linux.EPOLL.IN | linux.EPOLL.HUP | linux.EPOLL.ERR) != 0) self.readBackend();
        if (self.act) |a| {
            if (self.tx_waiting) a.run(1, log, self, processTx);
            a.run(0, log, self, deliverRx);
        }
        self.updateInterest();
    }

    /// The epoll interest that can make progress now (level-triggered, so never more).
    fn updateInterest(self: *Net) void {
        var want: u32 = 0;
        if (!self.dead) {
            if (self.act != null and self.rx.room() >= record_max) want |= linux.EPOLL.IN;
            // A chain waiting for room also wants OUT: should the last flush have emptied
            // `tx`, only the (then immediate) EPOLLOUT brings it back; no kick will.
            // (Not for a broken queue, which nothing serves: that would spin.)
            const waiting = if (self.act) |a| self.tx_waiting and !a.queues[1].isBroken() else false;
            if ((self.tx_blocked and self.tx.len() > 0) or waiting) want |= linux.EPOLL.OUT;
        }
        if (want == self.events) return;
        var ev: linux.epoll_event = .{ .events = want, .data = .{ .u64 = 0 } };
        const op: u32 = if (want == 0) linux.EPOLL.CTL_DEL else if (self.events == 0) linux.EPOLL.CTL_ADD else linux.EPOLL.CTL_MOD;
        sys.epoll_ctl(self.epfd, op, self.fd, &ev) catch {
            log.warn("backend fd cannot be watched: the NIC stops", .{});
            self.dead = true;
            self.events = 0;
            return;
        };
        self.events = want;
    }

    fn die(self: *Net, why: []const u8, e: ?sys.Error) void {
        if (!self.dead) log.warn("backend {s} ({s}); the NIC carries no more frames", .{ why, if (e) |x| @errorName(x) else "EOF" });
        self.dead = true;
        self.tx.head = 0;
        self.tx.tail = 0;
    }

    // ---- guest → host --------------------------------------------------------------------

    fn processTx(self: *Net, a: Device.Activation) queue.Error!void {
        const q = &a.queues[1];
        const csum = a.acked_features & (1 << feature_csum) != 0;
        const gso: frame.Gso = if (self.kind != .tap) .{} else .{
            .tcpv4 = a.acked_features & (1 << feature_host_tso4) != 0,
            .tcpv6 = a.acked_features & (1 << feature_host_tso6) != 0,
        };
        var used = false;
        self.tx_waiting = false;
        while (try q.pop(a.mem)) |chain| {
            if (!self.dead and self.tx.room() < record_max) self.flush();
            if (!self.dead and self.tx.room() < record_max) {
                q.undoPop();
                self.tx_waiting = true;
                break;
            }
            try self.takeTxChain(chain, csum, gso);
            try q.addUsed(a.mem, chain.head, 0);
            used = true;
        }
        self.flush();
        if (used and try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }

    /// Copies one guest frame into `tx` as a record, or drops it with a reason. A tap's record
    /// keeps the (checked) header for the kernel, which then completes the checksum itself.
    fn takeTxChain(self: *Net, chain: queue.Chain, csum: bool, gso: frame.Gso) queue.Error!void {
        var r = chain.reader();
        var h: frame.Header = .{};
        if (chain.readable_len < frame.header_size) {
            self.stats.tx_dropped += 1;
            return;
        }
        try r.readAll(std.mem.asBytes(&h));
        const len = chain.readable_len - frame.header_size;
        const verdict = frame.checkTx(h, len, csum, gso);
        if (verdict != .ok) {
            self.stats.tx_dropped += 1;
            log.debug("guest frame of {d} bytes dropped: {t}", .{ len, verdict });
            return;
        }
        if (self.dead) {
            self.stats.tx_dropped += 1;
            return;
        }
        const hdr: usize = if (self.kind == .tap) frame.header_size else 0;
        const rec = self.tx.buf[self.tx.tail..][0 .. frame.prefix_size + hdr + len];
        std.mem.writeInt(u32, rec[0..4], @intCast(hdr + len), .big);
        if (hdr > 0) {
            h.num_buffers = 0;
            @memcpy(rec[frame.prefix_size..][0..hdr], std.mem.asBytes(&h));
        }
        try r.readAll(rec[frame.prefix_size + hdr ..]);
        if (hdr == 0) frame.completeChecksum(h, rec[frame.prefix_size..]);
        self.tx.tail += @intCast(rec.len);
        self.stats.frames_tx += 1;
    }

    /// Writes buffered records to the backend until it would block.
    fn flush(self: *Net) void {
        self.tx_blocked = false;
        while (self.tx.len() > 0 and !self.dead) {
            const data = self.tx.data();
            const is_stream = self.kind == .unixstream;
            // Datagrams and tap writes carry one whole record each (a tap's with its header),
            // without the prefix.
            const out = if (is_stream) data else blk: {
                const len = std.mem.readInt(u32, data[0..4], .big);
                break :blk data[frame.prefix_size..][0..len];
            };
            const n = self.sendBytes(out) catch |err| switch (err) {
                error.INTR => continue,
                error.AGAIN => {
                    self.tx_blocked = true;
                    return;
                },
                // A datagram peer not there yet or out of buffers: that frame is lost, as on a wire.
                error.CONNREFUSED, error.NOBUFS, error.NOENT => if (!is_stream) {
                    self.tx.head += @intCast(out.len + frame.prefix_size);
                    self.stats.tx_dropped += 1;
                    continue;
                } else return self.die("write failed", err),
                else => return self.die("write failed", err),
            };
            self.tx.head += if (is_stream) @intCast(n) else @intCast(out.len + frame.prefix_size);
        }
    }

    fn sendBytes(self: *Net, bytes: []const u8) sys.Error!usize {
        if (self.kind == .tap) return sys.write(self.fd, bytes);
        return sys.sendto(self.fd, bytes, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL, null, 0);
    }

    // ---- host → guest --------------------------------------------------------------------

    /// Reads what the backend has while `rx` has room for a whole record.
    fn readBackend(self: *Net) void {
        var reads: u32 = 0;
        while (!self.dead and reads < 64) : (reads += 1) {
            if (self.rx.room() < record_max) return;
            const got = switch (self.kind) {
                .unixstream => self.readStream(),
                .unixgram, .tap => self.readFrame(),
            } orelse return;
            if (!got) return;
        }
    }

    /// A failed backend read, as readStream and readFrame return it: true after EINTR (read
    /// again), false after EAGAIN (nothing more for now), null after any other error (the
    /// backend is gone: `die`).
    fn readFailed(self: *Net, err: sys.Error) ?bool {
        switch (err) {
            error.INTR => return true,
            error.AGAIN => return false,
            else => {
                self.die("read failed", err);
                return null;
            },
        }
    }

    /// Stream: raw bytes into `rx`; records are cut out later. False when nothing more came.
    fn readStream(self: *Net) ?bool {
        const dest = self.rx.buf[self.rx.tail..];
        const rc = sys.recvfrom(self.fd, dest, linux.MSG.DONTWAIT, null, null) catch |err| return self.readFailed(err);
        if (rc == 0) {
            self.die("closed the connection", null);
            return null;
        }
        self.rx.tail += @intCast(rc);
        self.cutSkips();
        return true;
    }

    /// Datagram or tap: one frame per read (a tap's after its virtio_net_hdr), stored as a record.
    fn readFrame(self: *Net) ?bool {
        const hdr: usize = if (self.kind == .tap) frame.header_size else 0;
        const dest = self.rx.buf[self.rx.tail + frame.prefix_size ..][0 .. hdr + frame.frame_max];
        const got = if (self.kind == .tap)
            sys.read(self.fd, dest)
        else
            sys.recvfrom(self.fd, dest, linux.MSG.DONTWAIT | linux.MSG.TRUNC, null, null);
        const rc = got catch |err| return self.readFailed(err);
        if (rc < hdr + frame.eth_header_size or rc > hdr + frame.frame_max) {
            self.stats.rx_dropped += 1; // runt or truncated (MSG_TRUNC reports the real size)
            return true;
        }
        std.mem.writeInt(u32, self.rx.buf[self.rx.tail..][0..4], @intCast(rc), .big);
        self.rx.tail += @intCast(rc + frame.prefix_size);
        return true;
    }

    /// Drops hostile length prefixes (and their bytes) at the head of the stream data, so
    /// `rx` only ever holds frames it can deliver.
    fn cutSkips(self: *Net) void {
        while (true) {
            if (self.rx_skip > 0) {
                const n = @min(self.rx_skip, self.rx.len());
                self.rx.head += n;
                self.rx_skip -= n;
                if (self.rx_skip > 0) return;
            }
            // Only the head record can be judged; later ones are checked as they reach it.
            switch (frame.nextStreamItem(self.rx.data())) {
                .skip => |len| {
                    self.stats.rx_dropped += 1;
                    log.debug("backend frame length {d} skipped", .{len});
                    self.rx.head += frame.prefix_size;
                    self.rx_skip = len;
                },
                else => return,
            }
        }
    }

    /// The header a frame from a tap goes to the guest with: the tap's, when it is one the
    /// guest acked (TUNSETOFFLOAD follows the acks; checked again, the kernel being a peer
    /// too), else null: the frame is dropped.
    fn tapHeader(raw: []const u8, acked: u64) ?frame.Header {
        var h: frame.Header = undefined;
        @memcpy(std.mem.asBytes(&h), raw[0..frame.header_size]);
        if (acked & (1 << feature_guest_csum) == 0) {
            if (h.flags & frame.flag_needs_csum != 0) return null;
            h.flags = 0; // DATA_VALID is for GUEST_CSUM drivers only
        }
        const bit: ?u6 = switch (h.gso_type) {
            frame.gso_none => null,
            frame.gso_tcpv4 => feature_guest_tso4,
            frame.gso_tcpv6 => feature_guest_tso6,
            else => return null,
        };
        if (bit) |b| if (acked & (@as(u64, 1) << b) == 0) return null;
        return h;
    }

    fn deliverRx(self: *Net, a: Device.Activation) queue.Error!void {
        const q = &a.queues[0];
        const hdr: usize = if (self.kind == .tap) frame.header_size else 0;
        var used = false;
        defer if (used) {
            if (q.needsNotification(a.mem) catch false) a.interrupt.signal(Device.Interrupt.vring);
        };
        while (true) {
            // Stream bytes are checked here; datagram and tap records were written whole by
            // readFrame (a tap's is longer than frame_max by its header).
            const len = if (self.kind == .unixstream) switch (frame.nextStreamItem(self.rx.data())) {
                .frame => |len| len,
                .need_more, .skip => return,
            } else if (self.rx.len() < frame.prefix_size) return else std.mem.readInt(u32, self.rx.data()[0..frame.prefix_size], .big);
            const rec = self.rx.data()[frame.prefix_size..][0..len];
            const bytes = rec[hdr..];
            const h: ?frame.Header = if (hdr == 0) .{} else tapHeader(rec, a.acked_features);
            // A tap header the guest never acked, or a frame no buffer layout can take: dropped.
            const n = if (h == null) 0 else try self.takeRxBuffers(q, a, frame.header_size + bytes.len) orelse return;
            if (n == 0) {
                self.stats.rx_dropped += 1;
            } else {
                try self.fillRx(q, a.mem, h.?, bytes, n);
                used = true;
                self.stats.frames_rx += 1;
            }
            self.rx.head += frame.prefix_size + len;
            if (self.kind == .unixstream) self.cutSkips();
        }
    }

    /// Pops guest buffers into `rx_chains` until they hold `total` bytes: how many, 0 when
    /// they never can (nothing kept popped), or null to wait for the guest to post more (none
    /// kept popped either: the frame stays in `rx`, which stops the reads: back-pressure).
    /// Without MRG_RXBUF one buffer must hold the whole frame. With it, each buffer must hold
    /// at least a header (virtio 1.x §5.1.6.3.1); a smaller one is a driver error.
    fn takeRxBuffers(self: *Net, q: *queue.Queue, a: Device.Activation, total: usize) queue.Error!?u16 {
        const mrg = a.acked_features & (1 << feature_mrg_rxbuf) != 0;
        var n: u16 = 0;
        var room: usize = 0;
        while (room < total) {
            if (n == q.size or (!mrg and n == 1)) {
                q.undoPops(n); // the whole ring (or one buffer) is too small for it
                return 0;
            }
            const chain = (try q.pop(a.mem)) orelse {
                q.undoPops(n);
                return null;
            };
            if (mrg and chain.writable_len < frame.header_size) return error.ChainTooShort;
            self.rx_chains[n] = chain;
            n += 1;
            room += chain.writable_len;
        }
        return n;
    }

    /// Writes the header (num_buffers = n) and the frame across the first `n` of `rx_chains`,
    /// filling each in turn, and publishes them together: the driver reads the frame's
    /// buffers as one.
    fn fillRx(self: *Net, q: *queue.Queue, mem: *const GuestMemory, h: frame.Header, bytes: []const u8, n: u16) queue.Error!void {
        var head = h;
        head.num_buffers = n;
        var left = bytes;
        for (self.rx_chains[0..n], 0..) |*chain, i| {
            var w = chain.writer();
            if (i == 0) try w.writeObj(head);
            const k = @min(left.len, w.bytesLeft());
            try w.writeAll(left[0..k]);
            left = left[k..];
            try q.putUsed(mem, chain.head, w.written);
        }
        if (left.len != 0) return error.ChainTooShort; // the guest shrank a chain meanwhile
        try q.publishUsed(mem);
    }
};
