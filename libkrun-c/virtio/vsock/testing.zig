//! Test support for virtio-vsock (vsock_tests.zig, tsi/service_tests.zig, the vsock fuzzer): the
//! test-side guest driver on the three queues (over virtio/testing.zig's simulated guest memory),
//! packet headers, and a fixture of the device with its driver and optionally one vsock port to a
//! host unix listener.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const t = @import("../testing.zig");
const mmio = @import("../mmio.zig");
const packet = @import("packet.zig");
const Header = packet.Header;
const Op = packet.Op;
const vsock = @import("Vsock.zig");
const Vsock = vsock.Vsock;

/// The guest: a driver on the three queues, rx buffers of 4 KiB + header like Linux's.
pub const Driver = struct {
    g: t.Guest,
    tr: mmio.Transport,
    d: t.MmioDriver,
    rx: t.DriverQueue,
    tx: t.DriverQueue,
    ev: t.DriverQueue,
    dev: *Vsock,

    pub const rx_buf = 4096 + packet.header_size;

    pub fn init(self: *Driver, backing: []u8, dev: *Vsock) !void {
        self.g = t.Guest.init(backing, 0x10_0000);
        self.dev = dev;
        self.tr.init(dev.device(), &self.g.mem);
        self.d = .{ .t = &self.tr };
        try testing.expectEqual(@as(u32, Vsock.device_id), self.d.read32(mmio.Reg.device_id));
        try testing.expect(self.d.negotiate(~@as(u64, 0)));
        self.rx = t.DriverQueue.init(&self.g, 256);
        self.tx = t.DriverQueue.init(&self.g, 256);
        self.ev = t.DriverQueue.init(&self.g, 256);
        self.d.setupQueue(0, &self.rx);
        self.d.setupQueue(1, &self.tx);
        self.d.setupQueue(2, &self.ev);
        self.d.addStatus(mmio.Status.driver_ok);
    }

    pub fn deinit(self: *Driver) void {
        self.tr.shutdown();
    }

    /// Posts `n` rx buffers and kicks the rx queue.
    pub fn postRx(self: *Driver, n: u32) void {
        for (0..n) |_| _ = self.rx.post(&.{}, &.{rx_buf});
        self.d.notify(0);
    }

    pub fn send(self: *Driver, h: Header, payload: []const u8) void {
        var hh = h;
        _ = self.tx.post(&.{ std.mem.asBytes(&hh), payload }, &.{});
        self.d.notify(1);
    }

    pub fn sendRaw(self: *Driver, bytes: []const u8) void {
        _ = self.tx.post(&.{bytes}, &.{});
        self.d.notify(1);
    }

    /// The next packet the device gave the guest, header and payload.
    pub fn recv(self: *Driver) ?struct { h: Header, data: []u8 } {
        const bytes = self.rx.takeUsedBytes() orelse return null;
        std.debug.assert(bytes.len >= packet.header_size);
        var h: Header = undefined;
        @memcpy(std.mem.asBytes(&h), bytes[0..packet.header_size]);
        std.debug.assert(h.len == bytes.len - packet.header_size);
        return .{ .h = h, .data = bytes[packet.header_size..] };
    }

    /// Lets the device serve its host fds (the event loop's part), as often as it has work.
    pub fn pump(self: *Driver) void {
        for (0..64) |_| {
            var pfd = [1]linux.pollfd{.{ .fd = self.dev.epfd, .events = linux.POLL.IN, .revents = 0 }};
            if ((sys.poll(&pfd, 0) catch 0) != 1) break;
            self.dev.device().vtable.backendReady.?(self.dev, self.dev.epfd);
        }
    }
};

pub fn hdr(op: u16, guest_port: u32, host_port: u32) Header {
    var h = packet.toGuest(op, guest_port, host_port);
    h.src_cid = packet.guest_cid;
    h.dst_cid = packet.host_cid;
    h.buf_alloc = 256 * 1024;
    return h;
}

pub fn listenUnix(path: [:0]const u8) !i32 {
    sys.unlink(path) catch {};
    const fd = try sys.socket(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = @splat(0) };
    @memcpy(addr.path[0..path.len], path);
    try sys.bind(fd, @ptrCast(&addr), @sizeOf(linux.sockaddr.un));
    try sys.listen(fd, 16);
    return fd;
}

pub fn connectUnix(path: [:0]const u8) !i32 {
    const fd = try sys.socket(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = @splat(0) };
    @memcpy(addr.path[0..path.len], path);
    try sys.connect(fd, &addr, @sizeOf(linux.sockaddr.un));
    return fd;
}

pub fn setNonblock(fd: i32) void {
    sys.addStatusFlags(fd, .{ .NONBLOCK = true }) catch |err| std.debug.panic("O_NONBLOCK on fd {d}: {t}", .{ fd, err });
}

/// The device and its guest driver (shared with tsi/service_tests.zig), optionally with one vsock port
/// to a host unix listener (`lfd`, at `path`) that the test accepts from.
pub const Fixture = struct {
    backing: [16 << 20]u8 align(4096) = undefined,
    dev: Vsock = undefined,
    drv: Driver = undefined,
    lfd: i32 = -1,
    path: [:0]const u8 = "",

    pub fn create(cfg: vsock.Config) !*Fixture {
        const self = try testing.allocator.create(Fixture);
        errdefer testing.allocator.destroy(self);
        self.* = .{};
        try self.dev.init(testing.allocator, cfg);
        errdefer self.dev.deinit(testing.allocator);
        try self.drv.init(&self.backing, &self.dev);
        return self;
    }

    /// A fixture whose vsock `port` connects to a fresh unix listener at `path`.
    pub fn createWithListener(path: [:0]const u8, port: u32) !*Fixture {
        const lfd = try listenUnix(path);
        errdefer {
            sys.close(lfd);
            sys.unlink(path) catch {};
        }
        const self = try create(.{ .ports = &.{.{ .port = port, .path = path, .listen = false }} });
        self.lfd = lfd;
        self.path = path;
        return self;
    }

    pub fn destroy(self: *Fixture) void {
        self.drv.deinit();
        self.dev.deinit(testing.allocator);
        if (self.lfd >= 0) {
            sys.close(self.lfd);
            sys.unlink(self.path) catch {};
        }
        testing.allocator.destroy(self);
    }

    /// The guest connects (guest_port → host_port) with `req`'s credit; the device answers
    /// RESPONSE; returns the host end accepted from the listener.
    pub fn open(self: *Fixture, req: Header) !i32 {
        self.drv.send(req, &.{});
        const resp = self.drv.recv() orelse return error.TestUnexpectedResult;
        try testing.expectEqual(Op.response, resp.h.op);
        try testing.expectEqual(req.dst_port, resp.h.src_port);
        try testing.expectEqual(req.src_port, resp.h.dst_port);
        return sys.accept4(self.lfd, null, null, linux.SOCK.CLOEXEC);
    }
};
