//! virtio-net driven by a test-side guest (virtio/testing.zig) over simulated guest memory, with
//! a real socketpair as the backend (the passt side is the test): frames both ways with passt
//! framing, checksum completion, hostile headers and lengths from either side, back-pressure
//! from a peer that does not read, and the datagram backend; and a real tap device (backend.zig)
//! in a private network namespace with the host kernel at the other end (root only, else
//! skipped).
const std = @import("std");
const linux = std.os.linux;
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

    fn init(self: *Fixture, kind: net.Kind, features: u32) !void {
        var fds: [2]i32 = undefined;
        const sock_type: u32 = if (kind == .unixstream) linux.SOCK.STREAM else linux.SOCK.DGRAM;
        try testing.expectEqual(@as(usize, 0), linux.socketpair(linux.AF.UNIX, sock_type | linux.SOCK.CLOEXEC, 0, &fds));
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
        try testing.expect(self.d.negotiate(~@as(u64, 0)));
        self.rx = t.DriverQueue.init(&self.g, 256);
        self.tx = t.DriverQueue.init(&self.g, 256);
        self.d.setupQueue(0, &self.rx);
        self.d.setupQueue(1, &self.tx);
        self.d.addStatus(mmio.Status.driver_ok);
    }

    fn deinit(self: *Fixture) void {
        self.tr.shutdown();
        self.dev.deinit(testing.allocator);
        _ = linux.close(self.peer);
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
            if (linux.poll(&pfd, 1, 0) != 1) break;
            self.dev.device().vtable.backendReady.?(&self.dev, self.dev.epfd);
        }
    }

    fn peerWrite(self: *Fixture, bytes: []const u8) !void {
        try testing.expectEqual(bytes.len, linux.write(self.peer, bytes.ptr, bytes.len));
    }

    fn peerRead(self: *Fixture, buf: []u8) usize {
        const rc = linux.recvfrom(self.peer, buf.ptr, buf.len, linux.MSG.DONTWAIT, null, null);
        if (linux.errno(rc) != .SUCCESS) return 0;
        return rc;
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
    var fx: Fixture = .{};
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
    _ = linux.setsockopt(fx.dev.fd, linux.SOL.SOCKET, linux.SO.SNDBUF, std.mem.asBytes(&small), 4);
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
    _ = linux.close(fx.peer);
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
    const pid = linux.fork();
    if (linux.errno(pid) != .SUCCESS) return error.SkipZigTest;
    if (pid == 0) {
        const code: u8 = tapChild() catch |e| blk: {
            std.debug.print("tap test: {t}\n", .{e});
            break :blk 1;
        };
        linux.exit_group(code);
    }
    var raw: i32 = 0;
    _ = linux.waitpid(@intCast(pid), &raw, 0);
    const status: u32 = @bitCast(raw);
    try testing.expect(linux.W.IFEXITED(status));
    if (linux.W.EXITSTATUS(status) == 77) return error.SkipZigTest;
    try testing.expectEqual(@as(u8, 0), linux.W.EXITSTATUS(status));
}

fn tapChild() !u8 {
    if (linux.errno(linux.unshare(linux.CLONE.NEWNET)) != .SUCCESS) return 77;
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
        _ = linux.poll(&pfd, 1, 200);
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
    const s: i32 = @intCast(linux.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0));
    defer _ = linux.close(s);
    var req: IfAddrReq = .{ .name = @splat(0), .addr = tap_host };
    @memcpy(req.name[0..name.len], name);
    try testing.expectEqual(@as(usize, 0), linux.ioctl(s, 0x8916, @intFromPtr(&req))); // SIOCSIFADDR
    req.addr = .{ 255, 255, 255, 0 };
    try testing.expectEqual(@as(usize, 0), linux.ioctl(s, 0x891c, @intFromPtr(&req))); // SIOCSIFNETMASK
    const flags: *align(1) u16 = @ptrCast(&req.family);
    flags.* = 1 | 0x40; // IFF_UP | IFF_RUNNING
    try testing.expectEqual(@as(usize, 0), linux.ioctl(s, 0x8914, @intFromPtr(&req))); // SIOCSIFFLAGS
}

test "IfAddrReq is struct ifreq's size" {
    try testing.expectEqual(@as(usize, 40), @sizeOf(IfAddrReq));
}
