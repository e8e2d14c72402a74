//! Guest networking when TSI is on (the kernel command line has `tsi_hijack`; the guest kernel's
//! TSI is kernelfw/patches/0002-tsi-*): dummy0 gets 203.0.113.1/24 and the default route, as
//! libkrun's init does, so programs that want a non-loopback address or route (getaddrinfo's
//! AI_ADDRCONFIG, "is the network up" checks) find one; TSI carries every non-local destination
//! to the host whatever the routes say. 203.0.113.2 is the guest's name for the host's loopback
//! (the guest's own 127.0.0.0/8 stays in the guest; PROTOCOL.md "Guest kernel rules").
//! When the root has no /etc/resolv.conf or /etc/hosts, init generates them in a tmpfs and
//! shows them through an overlay on /etc (upper layer in that tmpfs), so nothing is ever written
//! into the user's root: /etc changes then last for the VM's life only.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("sys.zig");

pub const guest_addr = [4]u8{ 203, 0, 113, 1 };
pub const host_alias = [4]u8{ 203, 0, 113, 2 };

/// Generated only when the root has none (krunvm's default name server, as scripts/mkrootfs.sh).
const resolv_conf = "# zkrun: generated (the root has no /etc/resolv.conf)\nnameserver 1.1.1.1\n";

/// Everything the guest needs when the command line turns TSI on; best effort, each failure said.
pub fn setup() void {
    var buf: [4096]u8 = undefined;
    const cmdline = (sys.readFile("/proc/cmdline", &buf) catch return) orelse return;
    if (!tsiEnabled(cmdline)) return;
    dummyUp();
    etcFiles();
}

/// True when the kernel command line (before any "--") turns TSI on.
pub fn tsiEnabled(cmdline: []const u8) bool {
    var it = std.mem.tokenizeAny(u8, cmdline, " \t\n");
    while (it.next()) |tok| {
        if (std.mem.eql(u8, tok, "--")) return false;
        for ([_][]const u8{ "tsi_hijack", "tsi_hijack_unix" }) |name| {
            if (std.mem.eql(u8, tok, name)) return true;
            if (tok.len > name.len and std.mem.startsWith(u8, tok, name) and tok[name.len] == '=')
                return tok.len > name.len + 1 and tok[name.len + 1] != '0' and tok[name.len + 1] != 'n';
        }
    }
    return false;
}

/// The routing ioctl's argument (<linux/route.h>); no std definition.
pub const RtEntry = extern struct {
    pad1: usize = 0,
    dst: linux.sockaddr,
    gateway: linux.sockaddr,
    genmask: linux.sockaddr,
    flags: u16,
    pad2: i16 = 0,
    pad3: usize = 0,
    pad4: ?*anyopaque = null,
    metric: i16 = 0,
    dev: ?[*:0]const u8,
    mtu: usize = 0,
    window: usize = 0,
    irtt: u16 = 0,
};
pub const rtf_up = 0x0001;
pub const rtf_gateway = 0x0002;

comptime {
    std.debug.assert(@sizeOf(RtEntry) == 120);
    std.debug.assert(@offsetOf(RtEntry, "flags") == 56);
    std.debug.assert(@offsetOf(RtEntry, "dev") == 88);
}

pub fn inAddr(a: [4]u8) linux.sockaddr {
    var out: linux.sockaddr = undefined;
    const in: linux.sockaddr.in = .{ .port = 0, .addr = @bitCast(a) };
    @memcpy(std.mem.asBytes(&out), std.mem.asBytes(&in));
    return out;
}

fn dummyUp() void {
    const fd = sys.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0) catch |e| return sys.say("dummy0: socket: {t}", .{e});
    defer sys.close(fd);
    var req = std.mem.zeroes(linux.ifreq);
    @memcpy(req.ifrn.name[0..6], "dummy0");
    const steps = [_]struct { []const u8, u32, linux.sockaddr }{
        .{ "address", linux.SIOCSIFADDR, inAddr(guest_addr) },
        .{ "netmask", linux.SIOCSIFNETMASK, inAddr(.{ 255, 255, 255, 0 }) },
    };
    for (steps) |s| {
        req.ifru = .{ .addr = s[2] };
        sys.ioctl(fd, s[1], @intFromPtr(&req)) catch |e| return sys.say("dummy0 {s}: {t}", .{ s[0], e });
    }
    req.ifru = .{ .flags = .{ .UP = true, .RUNNING = true } };
    sys.ioctl(fd, linux.SIOCSIFFLAGS, @intFromPtr(&req)) catch |e| return sys.say("dummy0 up: {t}", .{e});
    var rt: RtEntry = .{
        .dst = inAddr(.{ 0, 0, 0, 0 }),
        .gateway = inAddr(.{ 0, 0, 0, 0 }),
        .genmask = inAddr(.{ 0, 0, 0, 0 }),
        .flags = rtf_up,
        .dev = "dummy0",
    };
    sys.ioctl(fd, linux.SIOCADDRT, @intFromPtr(&rt)) catch |e| if (e != error.EXIST) sys.say("default route: {t}", .{e});
}

/// The file type bits of `path` (a symlink itself unless `follow`), or null when absent.
fn fileType(path: [*:0]const u8, follow: bool) ?u32 {
    const flags: u32 = if (follow) 0 else linux.AT.SYMLINK_NOFOLLOW;
    const stx = sys.statx(path, flags, .{ .TYPE = true }) catch return null;
    return @as(u32, stx.mode) & linux.S.IFMT;
}

fn exists(path: [*:0]const u8) bool {
    return fileType(path, false) != null;
}

fn isDir(path: [*:0]const u8) bool {
    return fileType(path, true) == linux.S.IFDIR;
}

fn writeNew(path: [*:0]const u8, bytes: []const u8) bool {
    const fd = sys.open(path, .{ .ACCMODE = .WRONLY, .CREAT = true, .EXCL = true, .CLOEXEC = true }, 0o644) catch return false;
    defer sys.close(fd);
    sys.writeAll(fd, bytes);
    return true;
}

/// /etc/resolv.conf and /etc/hosts for a root that lacks them, through an overlay on /etc.
fn etcFiles() void {
    const need_resolv = !exists("/etc/resolv.conf");
    const need_hosts = !exists("/etc/hosts");
    if (!need_resolv and !need_hosts) return;
    if (!isDir("/etc")) return; // nowhere to show them without writing into the root
    const base = "/dev/.krun-etc";
    sys.mkdir(base) catch return sys.say("{s}: mkdir failed", .{base});
    sys.mount("tmpfs", base, "tmpfs", linux.MS.NOSUID | linux.MS.NODEV) catch |e| return sys.say("{s}: mount tmpfs: {t}", .{ base, e });
    sys.mkdir(base ++ "/upper") catch {};
    sys.mkdir(base ++ "/work") catch {};
    if (need_resolv) _ = writeNew(base ++ "/upper/resolv.conf", resolv_conf);
    if (need_hosts) {
        var uts: linux.utsname = undefined;
        const name: []const u8 = if (sys.uname(&uts)) |_| std.mem.sliceTo(&uts.nodename, 0) else |_| "localhost";
        var buf: [512]u8 = undefined;
        const hosts = std.fmt.bufPrint(&buf, "# zkrun: generated (the root has no /etc/hosts)\n" ++
            "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n" ++
            "203.0.113.1\t{s}\n203.0.113.2\thost.zkrun.internal host.containers.internal host.docker.internal\n", .{name}) catch return;
        _ = writeNew(base ++ "/upper/hosts", hosts);
    }
    const opts = "lowerdir=/etc,upperdir=" ++ base ++ "/upper,workdir=" ++ base ++ "/work";
    sys.mountData("overlay", "/etc", "overlay", 0, opts) catch |e| sys.say("/etc overlay for generated resolv.conf/hosts: {t}", .{e});
}

test tsiEnabled {
    try std.testing.expect(tsiEnabled("console=hvc0 tsi_hijack quiet"));
    try std.testing.expect(tsiEnabled("tsi_hijack_unix"));
    try std.testing.expect(tsiEnabled("a tsi_hijack=1"));
    try std.testing.expect(!tsiEnabled("a tsi_hijack=0"));
    try std.testing.expect(!tsiEnabled("console=hvc0 quiet"));
    try std.testing.expect(!tsiEnabled("tsi_hijackx"));
    try std.testing.expect(!tsiEnabled("init=/init.krun -- tsi_hijack"));
    try std.testing.expect(!tsiEnabled(""));
}

test RtEntry {
    const rt: RtEntry = .{ .dst = inAddr(.{ 0, 0, 0, 0 }), .gateway = inAddr(.{ 0, 0, 0, 0 }), .genmask = inAddr(.{ 0, 0, 0, 0 }), .flags = rtf_up, .dev = "dummy0" };
    try std.testing.expectEqual(@as(u16, linux.AF.INET), std.mem.bytesAsValue(u16, std.mem.asBytes(&rt)[8..10]).*);
    try std.testing.expectEqualSlices(u8, &.{ 203, 0, 113, 1 }, std.mem.asBytes(&inAddr(guest_addr))[4..8]);
}
