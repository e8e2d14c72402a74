//! virtio-net driven by a test-side guest (virtio/testing.zig) over simulated guest memory, with
//! a real socketpair as the backend (the passt side is the test): frames both ways with passt
//! framing, checksum completion, hostile headers and lengths from either side, back-pressure
//! from a peer that does not read, and the datagram backend; and a real tap device (backend.zig)
//! in a private network namespace with the host kernel at the other end (root only, else
//! skipped).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const t = @import("../testing.zig");
const mmio = @import("../mmio.zig");
const frame = @import("frame.zig");
const net = @import("Net.zig");
const Net = net.Net;
const backend = @import("backend.zig");

const rx_buf = frame.header_size + 1514;
const guest_mac = [6]u8{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };

const Fixture = struct {
    backing: [8 << 20]u8 align(4096) = undefined,
    g: t.Guest = undefined,
    tr: mmio.Transport = undefined,
    d: t.MmioDriver = undefined,
    rx: t.DriverQueue = undefined,
    tx: t.DriverQueue = undefined,
    dev: Net = undefined,
    /// The backend's other end: the test plays passt.
    peer: i32 = -1,
    /// The features the driver acks (of those offered).
    wanted: u64 = ~@as(u64, 0),

    fn init(self: *Fixture, kind: net.Kind, features: u32) !void {
        const sock_type: u32 = if (kind == .unixstream) linux.SOCK.STREAM else linux.SOCK.DGRAM;
        const fds = try sys.socketpair(linux.AF.UNIX, sock_type | linux.SOCK.CLOEXEC, 0);
        self.peer = fds[1];
        try self.initFd(fds[0], kind, features);
    }

    /// The device on `fd` (taken), driver set up with every offered feature.
    fn initFd(self: *Fixture, fd: i32, kind: net.Kind, features: u32) !void {
        try self.dev.init(testing.allocator, .{ .fd = fd, .kind = kind, .mac = guest_mac, .features = features });
        self.g = t.Guest.init(&self.backing, 0x10_0000);
        self.tr.init(self.dev.device(), &self.g.mem);
        self.d = .{ .t = &self.tr };
        try testing.expectEqual(@as(u32, 1), self.d.read32(mmio.Reg.device_id));
        try testing.expect(self.d.negotiate(self.wanted));
        self.rx = t.DriverQueue.init(&self.g, 256);
        self.tx = t.DriverQueue.init(&self.g, 256);
        self.d.setupQueue(0, &self.rx);
        self.d.setupQueue(1, &self.tx);
        self.d.addStatus(mmio.Status.driver_ok);
    }

    fn deinit(self: *Fixture) void {
        self.tr.shutdown();
        self.dev.deinit(testing.allocator);
        if (self.peer >= 0) sys.close(self.peer);
    }

    /// A unixstream fixture with libkrun's compat features, on the heap (its 8 MiB of guest RAM
    /// is too big for the stack); `destroy` tears it down.
    fn create() !*Fixture {
        const fx = try testing.allocator.create(Fixture);
        errdefer testing.allocator.destroy(fx);
        fx.* = .{};
        try fx.init(.unixstream, @import("../../Config.zig").compat_net_features);
        return fx;
    }

    fn destroy(self: *Fixture) void {
        self.deinit();
        testing.allocator.destroy(self);
    }

    fn send(self: *Fixture, h: frame.Header, payload: []const u8) void {
        var hh = h;
        _ = self.tx.post(&.{ std.mem.asBytes(&hh), payload }, &.{});
        self.d.notify(1);
    }

    fn postRx(self: *Fixture, n: u32, len: u32) void {
        for (0..n) |_| _ = self.rx.post(&.{}, &.{len});
        self.d.notify(0);
    }

    /// The event loop's part: serve the device's epoll fd while it is ready.
    fn pump(self: *Fixture) void {
        for (0..256) |_| {
            var pfd = [1]linux.pollfd{.{ .fd = self.dev.epfd, .events = linux.POLL.IN, .revents = 0 }};
            if ((sys.poll(&pfd, 0) catch 0) != 1) break;
            self.dev.device().vtable.backendReady.?(&self.dev, self.dev.epfd);
        }
    }

    fn peerWrite(self: *Fixture, bytes: []const u8) !void {
        try testing.expectEqual(bytes.len, try sys.write(self.peer, bytes));
    }

    fn peerRead(self: *Fixture, buf: []u8) usize {
        return sys.recvfrom(self.peer, buf, linux.MSG.DONTWAIT, null, null) catch 0;
    }
};

fn ethFrame(buf: []u8, fill: u8) []u8 {
    @memset(buf, fill);
    return buf;
}

fn framed(out: []u8, f: []const u8) []u8 {
    std.mem.writeInt(u32, out[0..4], @intCast(f.len), .big);
    @memcpy(out[4..][0..f.len], f);
    return out[0 .. 4 + f.len];
}

test "net: config space has the MAC, features are the served subset" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0xffff_ffff);
    defer fx.deinit();
    var mac: [6]u8 = undefined;
    for (&mac, 0..) |*b, i| b.* = @truncate(fx.d.read32(mmio.Reg.config + i) & 0xff);
    try testing.expectEqualSlices(u8, &.{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee }, &mac);
    const f = fx.d.deviceFeatures();
    try testing.expect(f & (1 << net.feature_csum) != 0);
    try testing.expect(f & (1 << net.feature_host_tso4) == 0);
    try testing.expect(f & (1 << mmio.feature_version_1) != 0);
}

test "net: frames both ways over passt framing" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    var fb: [60]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 0xab));
    var got: [256]u8 = undefined;
    const n = fx.peerRead(&got);
    try testing.expectEqual(@as(usize, 64), n);
    try testing.expectEqual(@as(u32, 60), std.mem.readInt(u32, got[0..4], .big));
    try testing.expectEqualSlices(u8, &fb, got[4..64]);
    try testing.expectEqual(@as(u16, 1), fx.tx.usedIdx());

    // Host → guest: two frames in one write, the second split across writes.
    var wire: [512]u8 = undefined;
    var f1: [100]u8 = undefined;
    var f2: [70]u8 = undefined;
    const a = framed(wire[0..], ethFrame(&f1, 1));
    const b = framed(wire[a.len..], ethFrame(&f2, 2));
    fx.postRx(4, rx_buf);
    try fx.peerWrite(wire[0 .. a.len + 10]);
    fx.pump();
    try fx.peerWrite(wire[a.len + 10 .. a.len + b.len]);
    fx.pump();
    const r1 = fx.rx.takeUsedBytes().?;
    try testing.expectEqual(@as(usize, frame.header_size + 100), r1.len);
    try testing.expectEqualSlices(u8, &f1, r1[frame.header_size..]);
    try testing.expectEqual(@as(u16, 1), std.mem.readInt(u16, r1[10..12], .little)); // num_buffers
    const r2 = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &f2, r2[frame.header_size..]);
    try testing.expectEqual(@as(?[]u8, null), fx.rx.takeUsedBytes());
}

test "net: checksum completion and hostile guest headers" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 1 << net.feature_csum);
    defer fx.deinit();
    var fb: [40]u8 = @splat(0);
    fb[20] = 0x12;
    fb[21] = 0x34;
    fx.send(.{ .flags = frame.flag_needs_csum, .csum_start = 20, .csum_offset = 4 }, &fb);
    var got: [256]u8 = undefined;
    try testing.expectEqual(@as(usize, 44), fx.peerRead(&got));
    try testing.expectEqual(~@as(u16, 0x1234), std.mem.readInt(u16, got[4 + 24 ..][0..2], .big));
    // Bad: checksum field past the end, GSO never offered, runt, no header at all.
    fx.send(.{ .flags = frame.flag_needs_csum, .csum_start = 30, .csum_offset = 9 }, &fb);
    fx.send(.{ .gso_type = 1, .gso_size = 1000 }, &fb);
    fx.send(.{}, fb[0..10]);
    _ = fx.tx.post(&.{"short"}, &.{});
    fx.d.notify(1);
    try testing.expectEqual(@as(usize, 0), fx.peerRead(&got));
    try testing.expectEqual(@as(u64, 4), fx.dev.stats.tx_dropped);
    try testing.expectEqual(@as(u16, 5), fx.tx.usedIdx()); // every chain returned
    // The device still works.
    fx.send(.{}, &fb);
    try testing.expectEqual(@as(usize, 44), fx.peerRead(&got));
}

test "net: hostile backend lengths are skipped; small guest buffers drop frames, not the device" {
    var fx: Fixture = .{ .wanted = ~@as(u64, 1 << net.feature_mrg_rxbuf) };
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    fx.postRx(2, rx_buf);
    var wire: [4096]u8 = undefined;
    // A 5-byte "frame" (runt), then a 2000-byte one too big for the guest's buffer (dropped,
    // the buffer stays), then a good one.
    var runt: [5]u8 = @splat(9);
    var big: [2000]u8 = undefined;
    var good: [64]u8 = undefined;
    const a = framed(wire[0..], &runt);
    const b = framed(wire[a.len..], ethFrame(&big, 3));
    const c = framed(wire[a.len + b.len ..], ethFrame(&good, 4));
    try fx.peerWrite(wire[0 .. a.len + b.len + c.len]);
    fx.pump();
    const r = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &good, r[frame.header_size..]);
    try testing.expectEqual(@as(u64, 2), fx.dev.stats.rx_dropped);
    // A length of 4 GiB: skipped as its bytes arrive, then the stream is in step again.
    std.mem.writeInt(u32, wire[0..4], 0xffff_fff0, .big);
    try fx.peerWrite(wire[0..4]);
    try fx.peerWrite(wire[0..1000]);
    fx.pump();
    try testing.expect(fx.dev.rx_skip > 0);
    try testing.expectEqual(@as(u32, 0), fx.dev.rx.len());
}

test "net: a backend that does not read pushes back on the guest, then drains" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    // A small socket buffer: 250 frames are more than it and our ring hold together.
    const small: i32 = 4096;
    sys.setsockopt(fx.dev.fd, linux.SOL.SOCKET, linux.SO.SNDBUF, std.mem.asBytes(&small)) catch {};
    var chain: [frame.header_size + 1514]u8 = undefined;
    @memset(chain[0..frame.header_size], 0);
    _ = ethFrame(chain[frame.header_size..], 7);
    var sent: u32 = 0;
    while (sent < 250) : (sent += 1) _ = fx.tx.post(&.{&chain}, &.{});
    fx.d.notify(1);
    const done_first = fx.tx.usedIdx();
    try testing.expect(done_first < 250);
    try testing.expect(fx.dev.tx_waiting);
    // The peer reads everything; EPOLLOUT resumes the queue until all chains are used.
    var total: usize = 0;
    var buf: [65536]u8 = undefined;
    for (0..1000) |_| {
        const n = fx.peerRead(&buf);
        total += n;
        fx.pump();
        if (fx.tx.usedIdx() == 250 and n == 0) break;
    }
    try testing.expectEqual(@as(u16, 250), fx.tx.usedIdx());
    try testing.expectEqual(@as(usize, 250 * (1514 + 4)), total);
}

test "net: a guest that posts no rx buffers stops the reads (bounded), then gets the frames" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    var wire: [1600]u8 = undefined;
    var fb: [1500]u8 = undefined;
    const one = framed(&wire, ethFrame(&fb, 5));
    var written: u32 = 0;
    while (written < 40) : (written += 1) try fx.peerWrite(one);
    fx.pump();
    try testing.expect(fx.dev.rx.len() <= net.ring_size);
    fx.postRx(64, rx_buf);
    fx.pump();
    var got: u32 = 0;
    while (fx.rx.takeUsedBytes()) |r| : (got += 1) try testing.expectEqual(@as(usize, frame.header_size + 1500), r.len);
    try testing.expectEqual(@as(u32, 40), got);
}

test "net: MRG_RXBUF: a 64 KiB frame (passt's MTU) across 4 KiB buffers, waiting for enough of them" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, @import("../../Config.zig").compat_net_features);
    defer fx.deinit();
    try testing.expect(fx.tr.driver_features & (1 << net.feature_mrg_rxbuf) != 0);
    const wire = try testing.allocator.alloc(u8, 4 + 65534);
    defer testing.allocator.free(wire);
    const big = wire[4..];
    for (big, 0..) |*b, i| b.* = @truncate(i *% 7 +% (i >> 9));
    std.mem.writeInt(u32, wire[0..4], @intCast(big.len), .big);
    const bufs: u32 = (frame.header_size + 65534 + 4095) / 4096; // 17
    // Too few buffers: the frame waits in the device (no drop), the reads stop.
    fx.postRx(bufs - 1, 4096);
    try fx.peerWrite(wire);
    fx.pump();
    try testing.expectEqual(@as(u16, 0), fx.rx.usedIdx());
    try testing.expectEqual(@as(u64, 0), fx.dev.stats.rx_dropped);
    // One more: all 17 come back at once, the first header says how many, each filled in turn.
    fx.postRx(1, 4096);
    fx.pump();
    try testing.expectEqual(@as(u16, bufs), fx.rx.usedIdx());
    var got: std.ArrayList(u8) = .empty;
    defer got.deinit(testing.allocator);
    var k: u32 = 0;
    while (fx.rx.takeUsedBytes()) |r| : (k += 1) {
        if (k == 0) {
            try testing.expectEqual(@as(u16, @intCast(bufs)), std.mem.readInt(u16, r[10..12], .little));
            try got.appendSlice(testing.allocator, r[frame.header_size..]);
        } else try got.appendSlice(testing.allocator, r);
        if (k + 1 < bufs) try testing.expectEqual(@as(usize, 4096), r.len);
    }
    try testing.expectEqualSlices(u8, big, got.items);
    // A driver error: a buffer smaller than a header breaks the queue, not the device.
    fx.postRx(1, 8);
    std.mem.writeInt(u32, wire[0..4], 100, .big);
    try fx.peerWrite(wire[0 .. 4 + 100]);
    fx.pump();
    try testing.expect(fx.tr.queues[0].isBroken());
}

test "net: datagram backend carries one frame per datagram" {
    var fx: Fixture = .{};
    try fx.init(.unixgram, 0);
    defer fx.deinit();
    var fb: [80]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 6));
    var got: [256]u8 = undefined;
    try testing.expectEqual(@as(usize, 80), fx.peerRead(&got));
    fx.postRx(2, rx_buf);
    try fx.peerWrite(ethFrame(&fb, 8));
    try fx.peerWrite(fb[0..3]); // a runt datagram: dropped
    fx.pump();
    const r = fx.rx.takeUsedBytes().?;
    try testing.expectEqualSlices(u8, &fb, r[frame.header_size..]);
    try testing.expectEqual(@as(?[]u8, null), fx.rx.takeUsedBytes());
}

test "net: peer hangs up: the NIC stops quietly, chains still come back" {
    var fx: Fixture = .{};
    try fx.init(.unixstream, 0);
    defer fx.deinit();
    sys.close(fx.peer);
    fx.peer = -1;
    fx.pump();
    var fb: [60]u8 = undefined;
    fx.send(.{}, ethFrame(&fb, 1));
    fx.send(.{}, &fb);
    try testing.expect(fx.dev.dead);
    try testing.expectEqual(@as(u16, 2), fx.tx.usedIdx());
}

// A tap device with the kernel's own IPv4 stack behind it: the test guest ARPs for the host
// address and pings it (the ICMP checksum left to the device: NEEDS_CSUM), the kernel's
// replies come back through the tap. Runs in a forked child that unshares its network
// namespace, so nothing touches the machine's interfaces; skipped without root or /dev/net/tun.
const tap_host = [4]u8{ 198, 51, 100, 1 };
const tap_guest = [4]u8{ 198, 51, 100, 2 };

test "net: a real tap device (vnet header): ARP, ping with a partial checksum, a TSO segment from the guest" {
    const pid = sys.fork() catch return error.SkipZigTest;
    if (pid == 0) {
        const code: u8 = tapChild() catch |e| blk: {
            std.debug.print("tap test: {t}\n", .{e});
            break :blk 1;
        };
        sys.exit_group(code);
    }
    const raw = try sys.waitpid(pid, 0);
    const status: u32 = @bitCast(raw);
    try testing.expect(linux.W.IFEXITED(status));
    if (linux.W.EXITSTATUS(status) == 77) return error.SkipZigTest;
    try testing.expectEqual(@as(u8, 0), linux.W.EXITSTATUS(status));
}

fn tapChild() !u8 {
    sys.unshare(linux.CLONE.NEWNET) catch return 77;
    const opened = backend.open(.{ .tap = "zkt0" }) catch return 77;
    const fx = try testing.allocator.create(Fixture);
    fx.* = .{};
    try fx.initFd(opened.fd, opened.kind, 1 << net.feature_csum | 1 << net.feature_host_tso4);
    // A tap offers HOST_TSO4 (its kernel segments); stream and datagram backends never do.
    try testing.expect(fx.dev.offered & (1 << net.feature_host_tso4) != 0);
    try ifUp("zkt0");
    fx.postRx(64, rx_buf);

    var arp: [42]u8 = undefined;
    @memset(arp[0..6], 0xff);
    @memcpy(arp[6..12], &guest_mac);
    @memcpy(arp[12..22], &[_]u8{ 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1 });
    @memcpy(arp[22..28], &guest_mac);
    @memcpy(arp[28..32], &tap_guest);
    @memset(arp[32..38], 0);
    @memcpy(arp[38..42], &tap_host);
    fx.send(.{}, &arp);
    const reply = try waitFrame(fx, isArpReply);
    var host_mac: [6]u8 = undefined;
    @memcpy(&host_mac, reply[22..28]);

    var ping: [14 + 20 + 16]u8 = undefined;
    @memcpy(ping[0..6], &host_mac);
    @memcpy(ping[6..12], &guest_mac);
    @memcpy(ping[12..24], &[_]u8{ 0x08, 0x00, 0x45, 0, 0, 36, 0x12, 0x34, 0, 0, 64, 1 });
    @memset(ping[24..26], 0);
    @memcpy(ping[26..30], &tap_guest);
    @memcpy(ping[30..34], &tap_host);
    std.mem.writeInt(u16, ping[24..26], checksum(ping[14..34]), .big);
    @memcpy(ping[34..42], &[_]u8{ 8, 0, 0, 0, 0x7a, 0x6b, 0, 1 }); // echo request, checksum left 0
    @memset(ping[42..], 0x5c);
    fx.send(.{ .flags = frame.flag_needs_csum, .csum_start = 34, .csum_offset = 2 }, &ping);
    _ = try waitFrame(fx, isEchoReply);
    try testing.expectEqual(@as(u64, 0), fx.dev.stats.tx_dropped);

    // One 3000-byte TCP segment as a TSO frame (gso_size 1000) to a closed port: the tap takes
    // it whole and the kernel answers with a reset. Without vnet header passthrough this
    // frame could only be dropped.
    var seg: [14 + 20 + 20 + 3000]u8 = undefined;
    @memcpy(seg[0..6], &host_mac);
    @memcpy(seg[6..12], &guest_mac);
    @memcpy(seg[12..24], &[_]u8{ 0x08, 0x00, 0x45, 0, 0x0b, 0xe0, 0x12, 0x35, 0x40, 0, 64, 6 }); // 3040 bytes, DF
    @memset(seg[24..26], 0);
    @memcpy(seg[26..30], &tap_guest);
    @memcpy(seg[30..34], &tap_host);
    std.mem.writeInt(u16, seg[24..26], checksum(seg[14..34]), .big);
    @memcpy(seg[34..54], &[_]u8{ 0x9c, 0x40, 0, 9, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0 });
    @memset(seg[54..], 0x33);
    fx.send(.{ .flags = frame.flag_needs_csum, .gso_type = frame.gso_tcpv4, .hdr_len = 54, .gso_size = 1000, .csum_start = 34, .csum_offset = 16 }, &seg);
    _ = try waitFrame(fx, isReset);
    try testing.expectEqual(@as(u64, 0), fx.dev.stats.tx_dropped);
    return 0;
}

fn isReset(f: []const u8) bool {
    return f.len >= 54 and f[12] == 0x08 and f[13] == 0x00 and f[23] == 6 and
        std.mem.eql(u8, f[26..30], &tap_host) and f[36] == 0x9c and f[37] == 0x40 and f[47] & 0x04 != 0;
}

/// The guest's view of frames from the tap until `want` matches one (bounded: 10 s, for a
/// loaded machine; a reply normally comes within milliseconds).
fn waitFrame(fx: *Fixture, want: *const fn ([]const u8) bool) ![]u8 {
    for (0..50) |_| {
        var pfd = [1]linux.pollfd{.{ .fd = fx.dev.epfd, .events = linux.POLL.IN, .revents = 0 }};
        _ = sys.poll(&pfd, 200) catch 0;
        fx.pump();
        while (fx.rx.takeUsedBytes()) |b| {
            fx.postRx(1, rx_buf);
            if (b.len > frame.header_size and want(b[frame.header_size..])) return b[frame.header_size..];
        }
    }
    std.debug.print("tap test: no reply; device stats {any}\n", .{fx.dev.stats});
    return error.NoReply;
}

fn isArpReply(f: []const u8) bool {
    return f.len >= 42 and std.mem.eql(u8, f[0..6], &guest_mac) and f[12] == 0x08 and f[13] == 0x06 and
        f[21] == 2 and std.mem.eql(u8, f[28..32], &tap_host);
}

fn isEchoReply(f: []const u8) bool {
    return f.len >= 50 and f[12] == 0x08 and f[13] == 0x00 and f[23] == 1 and
        std.mem.eql(u8, f[26..30], &tap_host) and f[34] == 0 and f[38] == 0x7a and f[39] == 0x6b and
        std.mem.allEqual(u8, f[42..50], 0x5c);
}

/// The Internet checksum (RFC 1071) over an even-length header.
fn checksum(b: []const u8) u16 {
    var sum: u32 = 0;
    var i: usize = 0;
    while (i + 1 < b.len) : (i += 2) sum += std.mem.readInt(u16, b[i..][0..2], .big);
    while (sum > 0xffff) sum = (sum & 0xffff) + (sum >> 16);
    return ~@as(u16, @intCast(sum));
}

/// struct ifreq with a sockaddr_in (SIOCSIFADDR) or flags.
const IfAddrReq = extern struct {
    name: [16]u8,
    family: u16 = linux.AF.INET,
    port: u16 = 0,
    addr: [4]u8,
    zero: [16]u8 = @splat(0),
};

fn ifUp(name: []const u8) !void {
    const s = try sys.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0);
    defer sys.close(s);
    var req: IfAddrReq = .{ .name = @splat(0), .addr = tap_host };
    @memcpy(req.name[0..name.len], name);
    _ = try sys.ioctl(s, 0x8916, @intFromPtr(&req)); // SIOCSIFADDR
    req.addr = .{ 255, 255, 255, 0 };
    _ = try sys.ioctl(s, 0x891c, @intFromPtr(&req)); // SIOCSIFNETMASK
    const flags: *align(1) u16 = @ptrCast(&req.family);
    flags.* = 1 | 0x40; // IFF_UP | IFF_RUNNING
    _ = try sys.ioctl(s, 0x8914, @intFromPtr(&req)); // SIOCSIFFLAGS
}

test "IfAddrReq is struct ifreq's size" {
    try testing.expectEqual(@as(usize, 40), @sizeOf(IfAddrReq));
}

// Bulk host → guest over passt framing (issue 12: a 16 MiB transfer through passt stalled in
// the test host while QEMU + passt finished it). The test plays passt (writes as fast as the
// socket takes) and Linux's virtio-net driver with COMPAT_NET_FEATURES: GUEST_TSO4 without
// MRG_RXBUF selects its big-packet receive layout, MAX_SKB_FRAGS + 2 = 19 scatter-gather
// entries per buffer (a 12-byte header, the rest of that page, 17 pages), put in an indirect
// table when INDIRECT_DESC was negotiated, else straight in the ring (then only 13 fit in 256
// entries). Buffers are refilled until the ring is full, kicks follow EVENT_IDX's avail_event
// (else the NO_NOTIFY flag), used buffers are taken only after an interrupt, at most a NAPI
// budget of 64 per round, with callbacks re-armed as virtqueue_enable_cb_prepare does.
const big_sg = 19;
const big_first = 4096 - 16; // the header's page after padded_vnet_hdr
/// Pages 3.. of every buffer share one scratch area: the frames here stay below 12 KiB, so
/// only the header, the first page and two more are ever written, per buffer.
const big_own = frame.header_size + big_first + 2 * 4096;
const bulk_total: usize = 6 << 20;

fn bulkByte(at: usize) u8 {
    return @truncate(at ^ (at >> 8) ^ (at >> 17));
}

/// Frame lengths passt sends: mostly full 1514-byte frames (guest MTU 1500), some ACK-sized
/// ones and some 9014-byte jumbo frames spanning three buffer pages, so records straddle
/// reads and pages in every way.
/// Fills `wire` with the next whole passt-framed bulk frames (4-byte big-endian length +
/// payload) from byte `sent.*` and frame `frames.*` on, as many as fit; advances both.
fn fillBulkWire(wire: []u8, sent: *usize, frames: *usize) []const u8 {
    var n: usize = 0;
    while (sent.* < bulk_total) {
        const len = bulkFrameLen(frames.*);
        if (n + frame.prefix_size + len > wire.len) break;
        std.mem.writeInt(u32, wire[n..][0..4], len, .big);
        for (wire[n + 4 ..][0..len], sent.*..) |*b, at| b.* = bulkByte(at);
        n += frame.prefix_size + len;
        sent.* += len;
        frames.* += 1;
    }
    return wire[0..n];
}

fn bulkFrameLen(k: usize) u32 {
    return switch (k % 16) {
        3 => 60,
        11 => 9014,
        else => 1514,
    };
}

const BulkGuest = struct {
    fx: *Fixture,
    indirect: bool,
    event_idx: bool,
    slots: u16,
    own: u64 = 0,
    scratch: u64 = 0,
    tables: u64 = 0,
    kicked_at: u16 = 0,
    /// Payload bytes verified so far.
    got: usize = 0,
    frames: usize = 0,
    /// Interrupts that started a NAPI round.
    rounds: usize = 0,
    napi: bool = false,
    /// A kick the (lockstep) event loop has not served yet: an ioeventfd write returns to
    /// the guest at once, the device sees it later.
    kick_pending: bool = false,

    fn init(fx: *Fixture) BulkGuest {
        const acked = fx.tr.driver_features;
        var g: BulkGuest = .{
            .fx = fx,
            .indirect = acked & (1 << mmio_queue.feature_indirect_desc) != 0,
            .event_idx = acked & (1 << mmio_queue.feature_event_idx) != 0,
            .slots = undefined,
        };
        g.slots = if (g.indirect) 256 else 256 / big_sg;
        g.own = fx.g.alloc(@as(u64, g.slots) * big_own, 4096);
        g.scratch = fx.g.alloc(4096 * 15, 4096);
        g.tables = fx.g.alloc(@as(u64, g.slots) * big_sg * 16, 16);
        for (0..g.slots) |s| g.post(@intCast(s));
        g.kick(-1);
        return g;
    }

    fn sgEntry(g: *const BulkGuest, s: u16, k: usize) mmio_queue.Descriptor {
        const base = g.own + @as(u64, s) * big_own;
        const addr, const len: u32 = switch (k) {
            0 => .{ base, frame.header_size },
            1 => .{ base + frame.header_size, big_first },
            2, 3 => .{ base + frame.header_size + big_first + (k - 2) * 4096, 4096 },
            else => .{ g.scratch + (k - 4) * 4096, 4096 },
        };
        return .{ .addr = addr, .len = len, .flags = mmio_queue.desc_f_write, .next = 0 };
    }

    /// add_recvbuf_big: slot `s` again, as an indirect table or as 19 ring descriptors.
    fn post(g: *BulkGuest, s: u16) void {
        if (g.indirect) {
            const table = g.tables + @as(u64, s) * big_sg * 16;
            for (0..big_sg) |k| {
                var d = g.sgEntry(s, k);
                if (k + 1 < big_sg) {
                    d.flags |= mmio_queue.desc_f_next;
                    d.next = @intCast(k + 1);
                }
                g.fx.g.mem.write(mmio_queue.Descriptor, table + 16 * k, d) catch unreachable;
            }
            g.fx.rx.setDesc(s, .{ .addr = table, .len = big_sg * 16, .flags = mmio_queue.desc_f_indirect, .next = 0 });
            return g.fx.rx.pushAvail(s);
        }
        const first: u16 = s * big_sg;
        for (0..big_sg) |k| {
            var d = g.sgEntry(s, k);
            if (k + 1 < big_sg) {
                d.flags |= mmio_queue.desc_f_next;
                d.next = first + @as(u16, @intCast(k)) + 1;
            }
            g.fx.rx.setDesc(first + @as(u16, @intCast(k)), d);
        }
        g.fx.rx.pushAvail(first);
    }

    fn slotOf(g: *const BulkGuest, id: u32) ?u16 {
        const s = if (g.indirect) id else id / big_sg;
        if (s >= g.slots or (!g.indirect and id % big_sg != 0)) return null;
        return @intCast(s);
    }

    /// Buffer `s`'s first `len` written bytes (header and frame), gathered from its pages.
    fn read(g: *BulkGuest, s: u16, len: usize, out: []u8) []u8 {
        var at: usize = 0;
        var k: usize = 0;
        while (at < len) : (k += 1) {
            const d = g.sgEntry(s, k);
            const n = @min(d.len, len - at);
            @memcpy(out[at..][0..n], g.fx.g.bytes(d.addr, n));
            at += n;
        }
        return out[0..len];
    }

    /// virtqueue_kick_prepare: with EVENT_IDX only when avail_event was crossed, else
    /// unless the device set VRING_USED_F_NO_NOTIFY. Through `kick_fd` (an ioeventfd) if given.
    fn kick(g: *BulkGuest, kick_fd: i32) void {
        const new = g.fx.rx.avail_idx;
        const old = g.kicked_at;
        g.kicked_at = new;
        const want = if (g.event_idx)
            new -% g.fx.rx.availEvent() -% 1 < new -% old
        else
            (g.fx.g.mem.read(u16, g.fx.rx.used) catch unreachable) & 1 == 0;
        if (!want) return;
        if (kick_fd < 0) {
            g.kick_pending = true;
            return;
        }
        const one: u64 = 1;
        _ = sys.write(kick_fd, std.mem.asBytes(&one)) catch 0;
    }

    /// virtqueue_disable_cb / virtqueue_enable_cb_prepare: used_event with EVENT_IDX, else
    /// the avail ring's NO_INTERRUPT flag.
    fn callbacks(g: *BulkGuest, on: bool) void {
        if (g.event_idx) {
            if (on) g.fx.rx.setUsedEvent(g.fx.rx.last_used);
        } else g.fx.rx.setAvailFlags(if (on) 0 else 1);
    }

    /// One NAPI round: on an interrupt (or while still scheduled), take at most `budget` used
    /// buffers, check their bytes, refill, kick if asked; then re-enable callbacks.
    fn poll(g: *BulkGuest, budget: u32, kick_fd: i32) !void {
        if (g.fx.d.ackInterrupt() & 1 != 0 and !g.napi) {
            g.napi = true;
            g.rounds += 1;
            g.callbacks(false);
        }
        if (!g.napi) return;
        var n: u32 = 0;
        var buf: [frame.header_size + 9014]u8 = undefined;
        while (n < budget) : (n += 1) {
            const u = g.fx.rx.takeUsed() orelse break;
            const s = g.slotOf(u.id) orelse return error.TestUnexpectedResult;
            const want_len = bulkFrameLen(g.frames);
            try testing.expectEqual(@as(u32, frame.header_size + want_len), u.len);
            const bytes = g.read(s, u.len, &buf);
            for (bytes[frame.header_size..], g.got..) |b, at| if (b != bulkByte(at)) {
                std.debug.print("bulk: byte {d} of frame {d} is {d}, want {d}\n", .{ at, g.frames, b, bulkByte(at) });
                return error.TestUnexpectedResult;
            };
            g.got += want_len;
            g.frames += 1;
            g.post(s);
        }
        if (n > 0) g.kick(kick_fd);
        if (n == budget) return; // budget spent: NAPI stays scheduled
        g.callbacks(true);
        if (g.fx.rx.usedIdx() == g.fx.rx.last_used) g.napi = false else g.callbacks(false);
    }
};

const mmio_queue = @import("../queue.zig");

test "net: bulk host->guest stream through a slow guest: every byte in order, reads bounded" {
    const fx = try Fixture.create();
    defer fx.destroy();
    _ = sys.fcntl(fx.peer, linux.F.SETFL, 0o4000) catch 0; // O_NONBLOCK
    var guest = BulkGuest.init(fx);

    // The peer's wire: frame k's payload continues the byte sequence where frame k-1 ended.
    const wire = try testing.allocator.alloc(u8, 256 << 10);
    defer testing.allocator.free(wire);
    var sent: usize = 0; // payload bytes framed so far
    var frames_out: usize = 0;
    var pending: []const u8 = &.{};
    var idle: u32 = 0;
    var rounds: u32 = 0;
    while (sent < bulk_total or guest.got < sent) : (rounds += 1) {
        if (pending.len == 0 and sent < bulk_total) {
            pending = fillBulkWire(wire, &sent, &frames_out);
        }
        const before = guest.got;
        if (pending.len > 0) {
            if (sys.sendto(fx.peer, pending, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL, null, 0)) |n| pending = pending[n..] else |_| {}
        }
        fx.pump();
        if (guest.kick_pending) {
            guest.kick_pending = false;
            fx.d.notify(0);
        }
        try testing.expect(fx.dev.rx.len() <= net.ring_size);
        try guest.poll(64, -1);
        idle = if (guest.got == before) idle + 1 else 0;
        if (idle > 2000) {
            std.debug.print("bulk: stalled after {d} of {d} bytes ({d} frames, {d} rounds); device rx ring {d} bytes, " ++
                "interest {x}, stats {any}, avail {d} avail_event {d} used {d}\n", .{
                guest.got,       bulk_total,         guest.frames,    rounds, fx.dev.rx.len(), fx.dev.events, fx.dev.stats,
                fx.rx.avail_idx, fx.rx.availEvent(), fx.rx.usedIdx(),
            });
            return error.TestUnexpectedResult;
        }
    }
    try testing.expectEqual(sent, guest.got);
    try testing.expectEqual(frames_out, guest.frames);
    try testing.expectEqual(@as(u64, 0), fx.dev.stats.rx_dropped);
    // What one guest round trip (interrupt, NAPI, refill, kick) carries: with 19 ring
    // descriptors per buffer only 13 buffers fit, so at most 13 frames; QEMU's guests post
    // 256. Under a slow (emulated) guest that bound is the throughput.
    const per_round = guest.frames / @max(guest.rounds, 1);
    if (per_round < 64) std.debug.print("bulk: {d} frames in {d} guest rounds ({d} per round), {d} rx buffers posted (indirect {}, event_idx {})\n", .{
        guest.frames, guest.rounds, per_round, guest.slots, guest.indirect, guest.event_idx,
    });
    try testing.expect(per_round >= 64);
}

fn nowMs() u64 {
    return @intCast(@divTrunc(sys.nowNs(), std.time.ns_per_ms));
}

const Threaded = struct {
    fx: *Fixture,
    kick: [2]i32,
    stop: std.atomic.Value(bool) = .init(false),
    sent: std.atomic.Value(usize) = .init(0),
    frames_out: std.atomic.Value(usize) = .init(0),
    peer_tx: std.atomic.Value(usize) = .init(0),

    /// The two queues' ioeventfds (closed by deinit).
    fn init(fx: *Fixture) Threaded {
        return .{ .fx = fx, .kick = .{
            sys.eventfd(linux.EFD.NONBLOCK) catch |e| std.debug.panic("eventfd: {t}", .{e}),
            sys.eventfd(linux.EFD.NONBLOCK) catch |e| std.debug.panic("eventfd: {t}", .{e}),
        } };
    }

    fn deinit(th: *Threaded) void {
        for (th.kick) |fd| sys.close(fd);
    }

    /// The VMM's event loop: the device's epoll fd and the two queues' ioeventfds.
    fn eventLoop(th: *Threaded) void {
        const ep = sys.epoll_create1(linux.EPOLL.CLOEXEC) catch |e| std.debug.panic("epoll_create1: {t}", .{e});
        defer sys.close(ep);
        const fds = [_]i32{ th.fx.dev.epfd, th.kick[0], th.kick[1] };
        for (fds, 0..) |fd, i| {
            var ev: linux.epoll_event = .{ .events = linux.EPOLL.IN, .data = .{ .u64 = i } };
            sys.epoll_ctl(ep, linux.EPOLL.CTL_ADD, fd, &ev) catch {};
        }
        var evs: [4]linux.epoll_event = undefined;
        while (!th.stop.load(.acquire)) {
            const n = sys.epoll_wait(ep, &evs, 50) catch continue;
            for (evs[0..n]) |ev| {
                const i: usize = @intCast(ev.data.u64);
                if (i == 0) {
                    th.fx.dev.device().vtable.backendReady.?(&th.fx.dev, th.fx.dev.epfd);
                } else {
                    var v: u64 = 0;
                    _ = sys.read(fds[i], std.mem.asBytes(&v)) catch 0;
                    th.fx.dev.device().vtable.queueNotify(&th.fx.dev, @intCast(i - 1));
                }
            }
        }
    }

    /// passt: frames to the guest as fast as the socket takes them; reads the guest's frames.
    fn passt(th: *Threaded) void {
        const wire = testing.allocator.alloc(u8, 256 << 10) catch return;
        defer testing.allocator.free(wire);
        var sink: [65536]u8 = undefined;
        var sent: usize = 0;
        var frames: usize = 0;
        var pending: []const u8 = &.{};
        while (!th.stop.load(.acquire)) {
            if (pending.len == 0 and sent < bulk_total) {
                pending = fillBulkWire(wire, &sent, &frames);
                th.sent.store(sent, .release);
                th.frames_out.store(frames, .release);
            }
            var pfd = [1]linux.pollfd{.{ .fd = th.fx.peer, .events = linux.POLL.IN | @as(i16, if (pending.len > 0) linux.POLL.OUT else 0), .revents = 0 }};
            _ = sys.poll(&pfd, 50) catch 0;
            if (pfd[0].revents & linux.POLL.IN != 0) {
                if (sys.recvfrom(th.fx.peer, &sink, linux.MSG.DONTWAIT, null, null)) |n| _ = th.peer_tx.fetchAdd(n, .monotonic) else |_| {}
            }
            if (pending.len > 0 and pfd[0].revents & linux.POLL.OUT != 0) {
                if (sys.sendto(th.fx.peer, pending, linux.MSG.DONTWAIT | linux.MSG.NOSIGNAL, null, 0)) |n| pending = pending[n..] else |_| {}
            }
        }
    }
};

test "net: bulk host->guest with guest, event loop and passt on their own threads" {
    const fx = try Fixture.create();
    defer fx.destroy();
    var th: Threaded = .init(fx);
    defer th.deinit();
    var guest = BulkGuest.init(fx);
    const loop_thread = try std.Thread.spawn(.{}, Threaded.eventLoop, .{&th});
    const passt_thread = try std.Thread.spawn(.{}, Threaded.passt, .{&th});
    // Kicks go through the ioeventfds from here on.
    const one: u64 = 1;
    var ack: [frame.header_size + 66]u8 = @splat(0);
    var tx_posted: u32 = 0;
    var last_progress = nowMs();
    var last_got: usize = 0;
    var ok = true;
    while (th.sent.load(.acquire) < bulk_total or guest.got < th.sent.load(.acquire)) {
        const before = guest.frames;
        try guest.poll(64, th.kick[0]);
        // An ACK every second frame, as TCP does; tx chains reclaimed as they come back.
        while (fx.tx.takeUsed()) |_| tx_posted -= 1;
        var k = before;
        var acks: u32 = 0;
        while (k < guest.frames) : (k += 2) if (tx_posted < 200) {
            _ = fx.tx.post(&.{&ack}, &.{});
            tx_posted += 1;
            acks += 1;
        };
        if (acks > 0) _ = sys.write(th.kick[1], std.mem.asBytes(&one)) catch 0;
        if (guest.got != last_got) {
            last_got = guest.got;
            last_progress = nowMs();
        } else if (nowMs() - last_progress > 5000) {
            std.debug.print("threaded bulk: stalled after {d} of {d} bytes ({d} frames); device rx ring {d}, interest {x}, " ++
                "tx ring {d} waiting {} blocked {}, stats {any}, rx avail {d} used {d} last {d} napi {}, peer got {d}\n", .{
                guest.got,         th.sent.load(.acquire),    guest.frames, fx.dev.rx.len(), fx.dev.events,   fx.dev.tx.len(),
                fx.dev.tx_waiting, fx.dev.tx_blocked,         fx.dev.stats, fx.rx.avail_idx, fx.rx.usedIdx(), fx.rx.last_used,
                guest.napi,        th.peer_tx.load(.acquire),
            });
            ok = false;
            break;
        } else std.Thread.yield() catch {};
    }
    th.stop.store(true, .release);
    loop_thread.join();
    passt_thread.join();
    try testing.expect(ok);
    try testing.expectEqual(th.sent.load(.acquire), guest.got);
    try testing.expectEqual(th.frames_out.load(.acquire), guest.frames);
}

const Reader = struct {
    fd: i32,
    stop: std.atomic.Value(bool) = .init(false),
    got: std.atomic.Value(usize) = .init(0),
    fn run(r: *Reader) void {
        var sink: [16384]u8 = undefined;
        var n: u32 = 0;
        while (!r.stop.load(.acquire)) : (n += 1) {
            var pfd = [1]linux.pollfd{.{ .fd = r.fd, .events = linux.POLL.IN, .revents = 0 }};
            _ = sys.poll(&pfd, 20) catch 0;
            if (sys.recvfrom(r.fd, &sink, linux.MSG.DONTWAIT, null, null)) |got| _ = r.got.fetchAdd(got, .monotonic) else |_| {}
            if (n % 8 == 0) std.Thread.yield() catch {};
        }
    }
};

test "net: bulk guest->host with a concurrent passt: the tx queue never wedges" {
    const fx = try Fixture.create();
    defer fx.destroy();
    var th: Threaded = .init(fx);
    defer th.deinit();
    th.sent.store(bulk_total, .release); // the passt thread sends nothing
    var rd: Reader = .{ .fd = fx.peer };
    const loop_thread = try std.Thread.spawn(.{}, Threaded.eventLoop, .{&th});
    const rd_thread = try std.Thread.spawn(.{}, Reader.run, .{&rd});
    const slots = 128;
    const len = frame.header_size + 1514;
    const base = fx.g.alloc(slots * len, 16);
    @memset(fx.g.bytes(base, slots * len), 0);
    var free: [slots]u16 = undefined;
    for (&free, 0..) |*s, i| s.* = @intCast(i);
    var nfree: u32 = slots;
    var frames: usize = 0;
    const total_frames = 4000;
    const one: u64 = 1;
    var last = nowMs();
    var last_frames: usize = 0;
    var reclaimed: usize = 0;
    var ok = true;
    while (reclaimed < total_frames) {
        while (fx.tx.takeUsed()) |u| {
            free[nfree] = @intCast(u.id);
            nfree += 1;
            reclaimed += 1;
        }
        var posted: u32 = 0;
        while (nfree > 0 and frames < total_frames) : (frames += 1) {
            nfree -= 1;
            const s = free[nfree];
            fx.tx.setDesc(s, .{ .addr = base + @as(u64, s) * len, .len = len, .flags = 0, .next = 0 });
            fx.tx.pushAvail(s);
            posted += 1;
        }
        if (posted > 0) _ = sys.write(th.kick[1], std.mem.asBytes(&one)) catch 0;
        if (reclaimed != last_frames) {
            last_frames = reclaimed;
            last = nowMs();
        } else if (nowMs() - last > 3000) {
            std.debug.print("tx wedge: {d} of {d} frames back; tx ring {d} waiting {} blocked {} interest {x}; peer got {d}\n", .{
                reclaimed, total_frames, fx.dev.tx.len(), fx.dev.tx_waiting, fx.dev.tx_blocked, fx.dev.events, rd.got.load(.acquire),
            });
            ok = false;
            break;
        } else std.Thread.yield() catch {};
    }
    th.stop.store(true, .release);
    rd.stop.store(true, .release);
    loop_thread.join();
    rd_thread.join();
    try testing.expect(ok);
}
