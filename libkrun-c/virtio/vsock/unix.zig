//! The host unix sockets behind vsock ports: a non-blocking connect for `krun_add_vsock_port`,
//! a listener for `krun_add_vsock_port2(listen)` and its accepts (each host client becomes a
//! connection toward the guest).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const vsock = @import("Vsock.zig");
const Vsock = vsock.Vsock;
const conns_max = vsock.conns_max;
const tag_listener = vsock.tag_listener;

const log = std.log.scoped(.vsock);

/// Host clients accepted per listener event (the rest wait in the kernel's backlog).
const accepts_per_event = 16;

pub const Listener = struct { fd: i32 = -1, port: u32 = 0, events: u32 = 0 };

/// A host client on a listen port: a connection toward (3, port), REQUEST first.
pub fn acceptPort(self: *Vsock, i: u32) void {
    const l = &self.listeners[i];
    if (l.fd < 0 or self.act == null) return;
    for (0..accepts_per_event) |_| {
        if (self.live_len == conns_max) {
            // At the cap: the clients wait in the kernel's backlog until a slot frees.
            setListenerEvents(self, l, 0);
            return;
        }
        const fd = sys.accept4(l.fd, null, null, linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC) catch |err| switch (err) {
            error.INTR, error.CONNABORTED => continue,
            error.AGAIN => return,
            else => return log.warn("vsock port {d}: accept: {t}", .{ l.port, err }),
        };
        const c = self.alloc(l.port, self.pickHostPort(l.port), .requesting).?;
        c.send_request = true;
        self.attachFd(c, fd);
        self.enqueue(c);
    }
}

pub fn setListenerEvents(self: *Vsock, l: *Listener, events: u32) void {
    if (l.events == events) return;
    var ev: linux.epoll_event = .{ .events = events, .data = .{ .u64 = tag_listener | (l - &self.listeners) } };
    sys.epoll_ctl(self.epfd, linux.EPOLL.CTL_MOD, l.fd, &ev) catch |err|
        log.warn("vsock port {d}: epoll_ctl: {t}", .{ l.port, err });
    l.events = events;
}

fn unixAddr(path: []const u8) linux.sockaddr.un {
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = @splat(0) };
    @memcpy(addr.path[0..path.len], path);
    return addr;
}

fn unixSocket() error{SystemResources}!i32 {
    return sys.socket(linux.AF.UNIX, linux.SOCK.STREAM | linux.SOCK.NONBLOCK | linux.SOCK.CLOEXEC, 0) catch error.SystemResources;
}

/// A non-blocking connect to a unix socket: it completes at once or fails (a full backlog
/// is EAGAIN: the guest gets RST, as for a refused connection).
pub fn unixConnect(path: []const u8) error{ SystemResources, ConnectFailed }!i32 {
    const fd = try unixSocket();
    const addr = unixAddr(path);
    sys.connect(fd, &addr, @sizeOf(linux.sockaddr.un)) catch {
        sys.close(fd);
        return error.ConnectFailed;
    };
    return fd;
}

pub fn unixListen(path: []const u8) Vsock.InitError!i32 {
    const fd = try unixSocket();
    errdefer sys.close(fd);
    const addr = unixAddr(path);
    sys.bind(fd, @ptrCast(&addr), @sizeOf(linux.sockaddr.un)) catch |err| return switch (err) {
        error.ADDRINUSE => error.AddressInUse,
        else => error.SystemResources,
    };
    sys.listen(fd, 128) catch return error.SystemResources;
    return fd;
}
