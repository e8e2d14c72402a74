//! The guest's DHCP client (KRUN_DHCP=1, from NET_FLAG_DHCP_CLIENT; libkrun.md §3.3 step 5):
//! brings eth0 up, runs DISCOVER → OFFER → REQUEST → ACK (RFC 2131) over a UDP socket bound to
//! eth0 (SO_BINDTODEVICE, broadcast flag set so replies reach an interface with no address yet),
//! and replies read from an AF_PACKET socket on eth0 (a server may answer unicast to the address
//! it offers, which the IP stack drops while eth0 has no address: passt before 2024 does),
//! and applies the lease: address and netmask, default route through the router, and the DNS
//! servers in /etc/resolv.conf. Like net.zig's generated files, resolv.conf is shown through an
//! overlay on /etc (upper layer in a tmpfs), so nothing is written into the user's root.
//! The MTU stays 1500 (the device does not offer mergeable rx buffers, so the guest's receive
//! buffers hold 1514-byte frames; passt follows the guest's MSS). Every server value is checked:
//! a reply for another transaction or MAC, a malformed option list, a zero, loopback, multicast
//! or broadcast address, a non-contiguous netmask or a router outside the subnet is ignored.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");
const net = @import("net.zig");

pub const iface = "eth0";
const server_port = 67;
const client_port = 68;
const magic_cookie = [4]u8{ 99, 130, 83, 99 };
const options_offset = 240;
/// Bytes of a DHCP message we send (BOOTP's 300-byte minimum) and accept.
const message_size = 300;
const reply_max = 1500;
const tries = 4;
const reply_wait_ms = 1000;
pub const dns_max = 3;

const msg_discover = 1;
const msg_offer = 2;
const msg_request = 3;
const msg_ack = 5;
const msg_nak = 6;

pub const Lease = struct {
    addr: [4]u8,
    mask: [4]u8 = .{ 255, 255, 255, 0 },
    router: ?[4]u8 = null,
    server: ?[4]u8 = null,
    dns: [dns_max][4]u8 = undefined,
    dns_len: u8 = 0,
};

/// A request message: DISCOVER, or REQUEST for `offer`.
pub fn build(buf: *[message_size]u8, xid: u32, mac: [6]u8, kind: u8, offer: ?Lease) []const u8 {
    @memset(buf, 0);
    buf[0] = 1; // BOOTREQUEST
    buf[1] = 1; // Ethernet
    buf[2] = 6;
    std.mem.writeInt(u32, buf[4..8], xid, .big);
    std.mem.writeInt(u16, buf[10..12], 0x8000, .big); // broadcast replies: we have no address yet
    @memcpy(buf[28..34], &mac);
    @memcpy(buf[236..240], &magic_cookie);
    var i: usize = options_offset;
    const opts = [_][]const u8{ &.{ 53, 1, kind }, &.{ 55, 3, 1, 3, 6 } };
    for (opts) |o| {
        @memcpy(buf[i..][0..o.len], o);
        i += o.len;
    }
    if (offer) |l| {
        buf[i] = 50;
        buf[i + 1] = 4;
        @memcpy(buf[i + 2 ..][0..4], &l.addr);
        i += 6;
        if (l.server) |s| {
            buf[i] = 54;
            buf[i + 1] = 4;
            @memcpy(buf[i + 2 ..][0..4], &s);
            i += 6;
        }
    }
    buf[i] = 255;
    return buf[0..];
}

/// Checks a server's reply and returns its message type and lease, or null to ignore it.
pub fn parse(reply: []const u8, xid: u32, mac: [6]u8) ?struct { kind: u8, lease: Lease } {
    if (reply.len < options_offset + 1 or reply.len > reply_max) return null;
    if (reply[0] != 2 or reply[1] != 1 or reply[2] != 6) return null; // BOOTREPLY, Ethernet
    if (std.mem.readInt(u32, reply[4..8], .big) != xid) return null;
    if (!std.mem.eql(u8, reply[28..34], &mac)) return null;
    if (!std.mem.eql(u8, reply[236..240], &magic_cookie)) return null;
    var lease: Lease = .{ .addr = reply[16..20].* };
    var kind: u8 = 0;
    var i: usize = options_offset;
    while (i < reply.len) {
        const code = reply[i];
        if (code == 255) break;
        if (code == 0) {
            i += 1;
            continue;
        }
        if (i + 2 > reply.len) return null;
        const len = reply[i + 1];
        if (i + 2 + len > reply.len) return null;
        const data = reply[i + 2 ..][0..len];
        switch (code) {
            53 => if (len == 1) {
                kind = data[0];
            },
            1 => if (len == 4) {
                lease.mask = data[0..4].*;
            },
            3 => if (len >= 4 and usable(data[0..4].*)) {
                lease.router = data[0..4].*;
            },
            54 => if (len == 4) {
                lease.server = data[0..4].*;
            },
            6 => {
                var k: usize = 0;
                while (k + 4 <= len and lease.dns_len < dns_max) : (k += 4) {
                    const a = data[k..][0..4].*;
                    if (!usable(a)) continue;
                    lease.dns[lease.dns_len] = a;
                    lease.dns_len += 1;
                }
            },
            else => {},
        }
        i += 2 + len;
    }
    if (kind == 0) return null;
    if (kind == msg_nak) return .{ .kind = kind, .lease = lease };
    if (!usable(lease.addr) or prefixLen(lease.mask) == null) return null;
    const prefix = prefixLen(lease.mask).?;
    if (prefix == 0 or prefix > 30) return null;
    if (lease.router) |r| if (!sameSubnet(r, lease.addr, lease.mask) or std.mem.eql(u8, &r, &lease.addr)) {
        lease.router = null;
    };
    return .{ .kind = kind, .lease = lease };
}

/// Not 0.0.0.0/8, loopback, multicast, reserved or broadcast.
fn usable(a: [4]u8) bool {
    return a[0] != 0 and a[0] != 127 and a[0] < 224;
}

/// The prefix length of a contiguous netmask, or null.
fn prefixLen(mask: [4]u8) ?u6 {
    const m = std.mem.readInt(u32, &mask, .big);
    const ones: u6 = @intCast(@clz(~m));
    if (ones < 32 and m << @intCast(ones) != 0) return null;
    return ones;
}

fn sameSubnet(a: [4]u8, b: [4]u8, mask: [4]u8) bool {
    const m = std.mem.readInt(u32, &mask, .big);
    return std.mem.readInt(u32, &a, .big) & m == std.mem.readInt(u32, &b, .big) & m;
}

/// True when the init environment asks for DHCP (KRUN_DHCP=1).
pub fn wanted(envp: []const [*:0]const u8) bool {
    for (envp) |e| if (std.mem.eql(u8, std.mem.span(e), "KRUN_DHCP=1")) return true;
    return false;
}

/// Best effort, each failure said: the workload runs without a lease.
pub fn run() void {
    const fd = sys.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0) catch |e| return sys.say("dhcp: socket: {t}", .{e});
    defer sys.close(fd);
    const mac = interfaceUp(fd) orelse return;
    if (!bindToInterface(fd)) return;
    const pfd = packetSocket(fd) orelse return;
    defer sys.close(pfd);
    var seed: [4]u8 = undefined;
    _ = sys.getrandom(&seed) catch 0;
    const xid = std.mem.readInt(u32, &seed, .little) ^ 0x7a6b7275;
    const offer = exchange(fd, pfd, xid, mac, msg_discover, null, msg_offer) orelse
        return sys.say("dhcp: no offer on {s}", .{iface});
    const ack = exchange(fd, pfd, xid, mac, msg_request, offer, msg_ack) orelse
        return sys.say("dhcp: no acknowledgement on {s}", .{iface});
    apply(fd, ack);
}

fn interfaceUp(fd: i32) ?[6]u8 {
    var req = std.mem.zeroes(linux.ifreq);
    @memcpy(req.ifrn.name[0..iface.len], iface);
    sys.ioctl(fd, linux.SIOCGIFFLAGS, @intFromPtr(&req)) catch |e| {
        sys.say("dhcp: {s}: {t}", .{ iface, e });
        return null;
    };
    req.ifru.flags.UP = true;
    sys.ioctl(fd, linux.SIOCSIFFLAGS, @intFromPtr(&req)) catch |e| {
        sys.say("dhcp: {s} up: {t}", .{ iface, e });
        return null;
    };
    sys.ioctl(fd, linux.SIOCGIFHWADDR, @intFromPtr(&req)) catch |e| {
        sys.say("dhcp: {s} MAC: {t}", .{ iface, e });
        return null;
    };
    return std.mem.asBytes(&req.ifru.hwaddr)[2..8].*;
}

fn bindToInterface(fd: i32) bool {
    const one: i32 = 1;
    sys.setsockopt(fd, linux.SOL.SOCKET, linux.SO.BROADCAST, std.mem.asBytes(&one)) catch {};
    sys.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, std.mem.asBytes(&one)) catch {};
    sys.setsockopt(fd, linux.SOL.SOCKET, linux.SO.BINDTODEVICE, iface) catch |e| {
        sys.say("dhcp: SO_BINDTODEVICE: {t}", .{e});
        return false;
    };
    const any: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, client_port), .addr = 0 };
    sys.bind(fd, @ptrCast(&any), @sizeOf(linux.sockaddr.in)) catch |e| {
        sys.say("dhcp: bind port 68: {t}", .{e});
        return false;
    };
    return true;
}

const eth_p_ip: u16 = 0x0800;

/// An AF_PACKET socket receiving eth0's IPv4 packets (IP header onwards).
fn packetSocket(fd: i32) ?i32 {
    var req = std.mem.zeroes(linux.ifreq);
    @memcpy(req.ifrn.name[0..iface.len], iface);
    sys.ioctl(fd, linux.SIOCGIFINDEX, @intFromPtr(&req)) catch |e| {
        sys.say("dhcp: {s} index: {t}", .{ iface, e });
        return null;
    };
    const pfd = sys.socket(linux.AF.PACKET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, std.mem.nativeToBig(u16, eth_p_ip)) catch |e| {
        sys.say("dhcp: packet socket: {t}", .{e});
        return null;
    };
    var ll = std.mem.zeroes(linux.sockaddr.ll);
    ll.family = linux.AF.PACKET;
    ll.protocol = std.mem.nativeToBig(u16, eth_p_ip);
    ll.ifindex = req.ifru.ivalue;
    sys.bind(pfd, @ptrCast(&ll), @sizeOf(linux.sockaddr.ll)) catch |e| {
        sys.say("dhcp: packet socket bind: {t}", .{e});
        sys.close(pfd);
        return null;
    };
    return pfd;
}

/// The UDP payload of an IPv4 packet to port 68, or null (every length checked).
pub fn dhcpPayload(pkt: []const u8) ?[]const u8 {
    if (pkt.len < 20 or pkt[0] >> 4 != 4 or pkt[9] != 17) return null;
    const ihl: usize = @as(usize, pkt[0] & 0x0f) * 4;
    const total: usize = std.mem.readInt(u16, pkt[2..4], .big);
    if (ihl < 20 or total < ihl + 8 or total > pkt.len) return null;
    if (std.mem.readInt(u16, pkt[4..8][2..4], .big) & 0x3fff != 0) return null; // fragments
    const udp = pkt[ihl..total];
    if (std.mem.readInt(u16, udp[2..4], .big) != client_port) return null;
    const ulen: usize = std.mem.readInt(u16, udp[4..6], .big);
    if (ulen < 8 or ulen > udp.len) return null;
    return udp[8..ulen];
}

/// Sends a message and waits for a reply of type `want` (a NAK ends it), retrying.
fn exchange(fd: i32, pfd: i32, xid: u32, mac: [6]u8, kind: u8, offer: ?Lease, want: u8) ?Lease {
    var out: [message_size]u8 = undefined;
    const msg = build(&out, xid, mac, kind, offer);
    const to: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, server_port), .addr = 0xffff_ffff };
    for (0..tries) |_| {
        _ = sys.sendto(fd, msg, @ptrCast(&to), @sizeOf(linux.sockaddr.in)) catch |e|
            sys.say("dhcp: send: {t}", .{e});
        var waited: u32 = 0;
        while (waited < reply_wait_ms) : (waited += 100) {
            var pfds = [1]linux.pollfd{.{ .fd = pfd, .events = linux.POLL.IN, .revents = 0 }};
            if ((sys.poll(&pfds, 100) catch 0) != 1) continue;
            var in: [reply_max + 60]u8 = undefined;
            const n = sys.recv(pfd, &in, linux.MSG.DONTWAIT) catch continue;
            var drain: [reply_max]u8 = undefined; // the UDP socket's copy of a broadcast reply
            while (sys.recv(fd, &drain, linux.MSG.DONTWAIT)) |_| {} else |_| {}
            const payload = dhcpPayload(in[0..@min(n, in.len)]) orelse continue;
            const r = parse(payload, xid, mac) orelse continue;
            if (r.kind == msg_nak) return null;
            if (r.kind == want) return r.lease;
        }
    }
    return null;
}

// The routing ioctl's argument and sockaddr helper are net.zig's (one definition, layout-tested there).
const RtEntry = net.RtEntry;
const rtf_up = net.rtf_up;
const rtf_gateway = net.rtf_gateway;
const inAddr = net.inAddr;

fn apply(fd: i32, l: Lease) void {
    var req = std.mem.zeroes(linux.ifreq);
    @memcpy(req.ifrn.name[0..iface.len], iface);
    req.ifru = .{ .addr = inAddr(l.addr) };
    sys.ioctl(fd, linux.SIOCSIFADDR, @intFromPtr(&req)) catch |e| return sys.say("dhcp: {s} address: {t}", .{ iface, e });
    req.ifru = .{ .netmask = inAddr(l.mask) };
    sys.ioctl(fd, linux.SIOCSIFNETMASK, @intFromPtr(&req)) catch |e| return sys.say("dhcp: {s} netmask: {t}", .{ iface, e });
    if (l.router) |r| {
        var rt: RtEntry = .{
            .dst = inAddr(.{ 0, 0, 0, 0 }),
            .gateway = inAddr(r),
            .genmask = inAddr(.{ 0, 0, 0, 0 }),
            .flags = rtf_up | rtf_gateway,
            .dev = iface,
        };
        sys.ioctl(fd, linux.SIOCADDRT, @intFromPtr(&rt)) catch |e| if (e != error.EXIST) sys.say("dhcp: default route: {t}", .{e});
    }
    if (l.dns_len > 0) writeResolvConf(l);
}

/// /etc/resolv.conf with the lease's name servers, through an overlay on /etc.
fn writeResolvConf(l: Lease) void {
    var text: [256]u8 = undefined;
    var w: std.Io.Writer = .fixed(&text);
    w.writeAll("# zkrun: from DHCP on eth0\n") catch return;
    for (l.dns[0..l.dns_len]) |a| w.print("nameserver {d}.{d}.{d}.{d}\n", .{ a[0], a[1], a[2], a[3] }) catch return;
    const base = "/dev/.krun-dhcp";
    sys.mkdir(base) catch return sys.say("dhcp: {s}: mkdir failed", .{base});
    sys.mount("tmpfs", base, "tmpfs", linux.MS.NOSUID | linux.MS.NODEV) catch |e| return sys.say("dhcp: {s}: mount tmpfs: {t}", .{ base, e });
    sys.mkdir(base ++ "/upper") catch {};
    sys.mkdir(base ++ "/work") catch {};
    const fd = sys.open(base ++ "/upper/resolv.conf", .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644) catch |e| return sys.say("dhcp: resolv.conf: {t}", .{e});
    sys.writeAll(fd, w.buffered());
    sys.close(fd);
    const opts = "lowerdir=/etc,upperdir=" ++ base ++ "/upper,workdir=" ++ base ++ "/work";
    sys.mountData("overlay", "/etc", "overlay", 0, opts) catch |e| sys.say("dhcp: /etc overlay for resolv.conf: {t}", .{e});
}

const testing = std.testing;

fn testReply(buf: []u8, xid: u32, mac: [6]u8, yiaddr: [4]u8, options: []const u8) []u8 {
    @memset(buf, 0);
    buf[0] = 2;
    buf[1] = 1;
    buf[2] = 6;
    std.mem.writeInt(u32, buf[4..8], xid, .big);
    @memcpy(buf[16..20], &yiaddr);
    @memcpy(buf[28..34], &mac);
    @memcpy(buf[236..240], &magic_cookie);
    @memcpy(buf[240..][0..options.len], options);
    return buf[0 .. 240 + options.len];
}

test "dhcp: a well-formed ACK gives the lease; DNS entries are filtered" {
    const mac = [6]u8{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
    var buf: [600]u8 = undefined;
    const opts = [_]u8{ 53, 1, 5, 1, 4, 255, 255, 255, 0, 3, 4, 192, 0, 2, 2, 54, 4, 192, 0, 2, 2, 0, 6, 12, 192, 0, 2, 53, 0, 0, 0, 0, 9, 9, 9, 9, 255 };
    const r = parse(testReply(&buf, 7, mac, .{ 192, 0, 2, 15 }, &opts), 7, mac).?;
    try testing.expectEqual(@as(u8, msg_ack), r.kind);
    try testing.expectEqualSlices(u8, &.{ 192, 0, 2, 15 }, &r.lease.addr);
    try testing.expectEqualSlices(u8, &.{ 192, 0, 2, 2 }, &r.lease.router.?);
    try testing.expectEqual(@as(u8, 2), r.lease.dns_len);
    try testing.expectEqualSlices(u8, &.{ 9, 9, 9, 9 }, &r.lease.dns[1]);
}

test "dhcp: hostile or foreign replies are ignored" {
    const mac = [6]u8{ 2, 0, 0, 0, 0, 1 };
    var buf: [600]u8 = undefined;
    const ok = [_]u8{ 53, 1, 2, 255 };
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &ok), 8, mac) == null); // xid
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &ok), 7, .{ 2, 0, 0, 0, 0, 2 }) == null);
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 0, 0, 0, 0 }, &ok), 7, mac) == null);
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 127, 0, 0, 1 }, &ok), 7, mac) == null);
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 255, 255, 255, 255 }, &ok), 7, mac) == null);
    const holey = [_]u8{ 53, 1, 2, 1, 4, 255, 0, 255, 0, 255 };
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &holey), 7, mac) == null);
    const truncated = [_]u8{ 53, 1, 2, 6, 200, 1, 2 };
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &truncated), 7, mac) == null);
    const no_type = [_]u8{ 1, 4, 255, 255, 255, 0, 255 };
    try testing.expect(parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &no_type), 7, mac) == null);
    // A router outside the subnet is dropped, the lease kept.
    const far = [_]u8{ 53, 1, 2, 1, 4, 255, 255, 255, 0, 3, 4, 10, 9, 9, 9, 255 };
    const r = parse(testReply(&buf, 7, mac, .{ 10, 0, 0, 5 }, &far), 7, mac).?;
    try testing.expectEqual(@as(?[4]u8, null), r.lease.router);
}

test "dhcp: UDP payloads to port 68 are cut out of IPv4 packets, lengths checked" {
    var pkt: [40]u8 = @splat(0);
    pkt[0] = 0x45;
    pkt[9] = 17;
    std.mem.writeInt(u16, pkt[2..4], 32, .big);
    std.mem.writeInt(u16, pkt[22..24], 68, .big);
    std.mem.writeInt(u16, pkt[24..26], 12, .big);
    try testing.expectEqual(@as(usize, 4), dhcpPayload(&pkt).?.len);
    std.mem.writeInt(u16, pkt[24..26], 13, .big); // UDP length past the IP packet
    try testing.expect(dhcpPayload(&pkt) == null);
    std.mem.writeInt(u16, pkt[24..26], 12, .big);
    std.mem.writeInt(u16, pkt[2..4], 41, .big); // IP length past the buffer
    try testing.expect(dhcpPayload(&pkt) == null);
    std.mem.writeInt(u16, pkt[2..4], 32, .big);
    pkt[0] = 0x4f; // header of 60 bytes: longer than the packet
    try testing.expect(dhcpPayload(&pkt) == null);
    pkt[0] = 0x45;
    std.mem.writeInt(u16, pkt[22..24], 67, .big);
    try testing.expect(dhcpPayload(&pkt) == null);
}

test "dhcp: requests carry xid, MAC, type, and the offer's address and server" {
    var buf: [message_size]u8 = undefined;
    const mac = [6]u8{ 2, 0, 0, 0, 0, 1 };
    const m = build(&buf, 0x01020304, mac, msg_request, .{ .addr = .{ 10, 0, 0, 5 }, .server = .{ 10, 0, 0, 1 } });
    try testing.expectEqual(@as(usize, message_size), m.len);
    try testing.expectEqual(@as(u32, 0x01020304), std.mem.readInt(u32, m[4..8], .big));
    try testing.expectEqualSlices(u8, &mac, m[28..34]);
    try testing.expectEqualSlices(u8, &.{ 53, 1, msg_request }, m[240..243]);
    try testing.expectEqualSlices(u8, &.{ 50, 4, 10, 0, 0, 5, 54, 4, 10, 0, 0, 1, 255 }, m[248..261]);
    try testing.expectEqual(@as(?u6, 24), prefixLen(.{ 255, 255, 255, 0 }));
    try testing.expectEqual(@as(?u6, null), prefixLen(.{ 255, 0, 255, 0 }));
    try testing.expectEqual(@as(?u6, 32), prefixLen(.{ 255, 255, 255, 255 }));
}
