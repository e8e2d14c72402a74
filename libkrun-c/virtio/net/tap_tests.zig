//! virtio-net on a real tap device (backend.zig) in a private network namespace, the host
//! kernel at the other end (root only, else skipped), driven by the test-side guest of
//! net/testing.zig.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const backend = @import("backend.zig");
const frame = @import("frame.zig");
const net = @import("Net.zig");
const Fixture = @import("testing.zig").Fixture;
const rx_buf = @import("testing.zig").rx_buf;
const guest_mac = @import("testing.zig").guest_mac;

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
