//! virtio-net's test support (net_tests.zig, tap_tests.zig, bulk_tests.zig): the device driven
//! by a test-side guest (virtio/testing.zig) over simulated guest memory, with the backend's
//! other end held by the test, which plays passt.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const t = @import("../testing.zig");
const mmio = @import("../mmio.zig");
const frame = @import("frame.zig");
const net = @import("Net.zig");
const Net = net.Net;

/// A receive buffer's size: the virtio-net header and a full Ethernet frame (MTU 1500).
pub const rx_buf = frame.header_size + 1514;
pub const guest_mac = [6]u8{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };

pub const Fixture = struct {
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

    pub fn init(self: *Fixture, kind: net.Kind, features: u32) !void {
        const sock_type: u32 = if (kind == .unixstream) linux.SOCK.STREAM else linux.SOCK.DGRAM;
        const fds = try sys.socketpair(linux.AF.UNIX, sock_type | linux.SOCK.CLOEXEC, 0);
        self.peer = fds[1];
        try self.initFd(fds[0], kind, features);
    }

    /// The device on `fd` (taken), driver set up with every offered feature.
    pub fn initFd(self: *Fixture, fd: i32, kind: net.Kind, features: u32) !void {
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

    pub fn deinit(self: *Fixture) void {
        self.tr.shutdown();
        self.dev.deinit(testing.allocator);
        if (self.peer >= 0) sys.close(self.peer);
    }

    /// A unixstream fixture with libkrun's compat features, on the heap (its 8 MiB of guest RAM
    /// is too big for the stack); `destroy` tears it down.
    pub fn create() !*Fixture {
        const fx = try testing.allocator.create(Fixture);
        errdefer testing.allocator.destroy(fx);
        fx.* = .{};
        try fx.init(.unixstream, @import("../../Config.zig").compat_net_features);
        return fx;
    }

    pub fn destroy(self: *Fixture) void {
        self.deinit();
        testing.allocator.destroy(self);
    }

    pub fn send(self: *Fixture, h: frame.Header, payload: []const u8) void {
        var hh = h;
        _ = self.tx.post(&.{ std.mem.asBytes(&hh), payload }, &.{});
        self.d.notify(1);
    }

    pub fn postRx(self: *Fixture, n: u32, len: u32) void {
        for (0..n) |_| _ = self.rx.post(&.{}, &.{len});
        self.d.notify(0);
    }

    /// The event loop's part: serve the device's epoll fd while it is ready.
    pub fn pump(self: *Fixture) void {
        for (0..256) |_| {
            var pfd = [1]linux.pollfd{.{ .fd = self.dev.epfd, .events = linux.POLL.IN, .revents = 0 }};
            if ((sys.poll(&pfd, 0) catch 0) != 1) break;
            self.dev.device().vtable.backendReady.?(&self.dev, self.dev.epfd);
        }
    }

    pub fn peerWrite(self: *Fixture, bytes: []const u8) !void {
        try testing.expectEqual(bytes.len, try sys.write(self.peer, bytes));
    }

    pub fn peerRead(self: *Fixture, buf: []u8) usize {
        return sys.recvfrom(self.peer, buf, linux.MSG.DONTWAIT, null, null) catch 0;
    }
};

pub fn ethFrame(buf: []u8, fill: u8) []u8 {
    @memset(buf, fill);
    return buf;
}

pub fn framed(out: []u8, f: []const u8) []u8 {
    std.mem.writeInt(u32, out[0..4], @intCast(f.len), .big);
    @memcpy(out[4..][0..f.len], f);
    return out[0 .. 4 + f.len];
}
