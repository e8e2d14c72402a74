//! vsock and TSI setters: krun_add_vsock_port, krun_add_vsock_port2, krun_add_vsock,
//! krun_set_port_map (krun_disable_implicit_vsock is in vm.zig). They validate and record into
//! the Config; the device (virtio/vsock/) and TSI (tsi/) are built at start. A rejected call
//! changes nothing.
const std = @import("std");
const test_tmp = @import("../test_tmp.zig");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const Config = @import("../Config.zig");
const vsock = @import("../virtio/vsock/Vsock.zig");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

/// sun_path holds 108 bytes, the NUL included.
const unix_path_bytes_max = 107;

pub fn krun_add_vsock_port(ctx_id: u32, port: u32, c_filepath: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addPort("krun_add_vsock_port", ctx_id, port, c_filepath, false));
}

pub fn krun_add_vsock_port2(ctx_id: u32, port: u32, c_filepath: cstr.CString, listen: bool) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addPort("krun_add_vsock_port2", ctx_id, port, c_filepath, listen));
}

fn addPort(func: []const u8, ctx_id: u32, port: u32, c_filepath: cstr.CString, listen: bool) Error!void {
    const cfg = try contexts.config(func, ctx_id);
    const path = try cstr.required(func, "c_filepath", c_filepath, unix_path_bytes_max);
    if (path.len == 0) return reject(func, error.InvalidArgument, "c_filepath is empty", .{});
    if (port == Config.tsi_port) return reject(func, error.InvalidArgument, "port {d} is reserved for TSI", .{port});
    // Not vsockDevice(): with a NIC the implicit device exists once it has a port (libkrun).
    if (cfg.vsock_explicit == null and !cfg.implicit_vsock) return reject(func, error.NoDevice, "vsock is disabled (krun_disable_implicit_vsock without krun_add_vsock)", .{});
    for (cfg.vsock_ports.items) |p| if (p.port == port) {
        return reject(func, error.AlreadyExists, "port {d} is already bridged to \"{s}\"", .{ port, p.path });
    };
    if (cfg.vsock_ports.items.len == vsock.ports_max) {
        return reject(func, error.InvalidArgument, "at most {d} vsock ports per context", .{vsock.ports_max});
    }
    if (listen) {
        var st: linux.Statx = undefined;
        if (sys.resultErrno(sys.statx(linux.AT.FDCWD, path, linux.AT.SYMLINK_NOFOLLOW, .{}, &st)) == .SUCCESS)
            return reject(func, error.AlreadyExists, "\"{s}\" exists (the listening socket is created at start)", .{path});
    }
    const copy = try cstr.dupe(func, cfg, path);
    cfg.vsock_ports.append(cfg.allocator(), .{ .port = port, .path = copy, .listen = listen }) catch
        return reject(func, error.OutOfMemory, "out of memory", .{});
}

pub fn krun_add_vsock(ctx_id: u32, tsi_features: u32) callconv(.c) i32 {
    const func = "krun_add_vsock";
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config(func, ctx_id) catch |err| return errors.errno(err);
    const known = Config.tsi_hijack_inet | Config.tsi_hijack_unix;
    if (tsi_features & ~known != 0) {
        return errors.errno(reject(func, error.InvalidArgument, "tsi_features 0x{x}: only KRUN_TSI_HIJACK_INET and KRUN_TSI_HIJACK_UNIX exist", .{tsi_features}));
    }
    if (cfg.implicit_vsock) {
        return errors.errno(reject(func, error.AlreadyExists, "the implicit vsock exists: call krun_disable_implicit_vsock first", .{}));
    }
    if (cfg.vsock_explicit != null) {
        return errors.errno(reject(func, error.AlreadyExists, "this context already has a vsock device", .{}));
    }
    cfg.vsock_explicit = tsi_features;
    return 0;
}

/// libkrun's format: "host_port:guest_port" entries; neither side may repeat.
pub fn krun_set_port_map(ctx_id: u32, port_map: cstr.CStringArray) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setPortMap(ctx_id, port_map));
}

fn setPortMap(ctx_id: u32, port_map: cstr.CStringArray) Error!void {
    const func = "krun_set_port_map";
    const cfg = try contexts.config(func, ctx_id);
    if (cfg.nicCount() > 0) return reject(func, error.InvalidArgument, "a NIC is configured: TSI (and its port map) is off", .{});
    if (cfg.vsockDevice() == null) return reject(func, error.NoDevice, "vsock is disabled (krun_disable_implicit_vsock)", .{});
    const entries = port_map orelse {
        cfg.port_map = null; // as never called: guest listeners on the host's loopback only
        return;
    };
    var count: usize = 0;
    while (entries[count] != null) : (count += 1) {
        if (count == Config.args_max) return reject(func, error.InvalidArgument, "port_map has more than {d} entries (no NULL terminator?)", .{Config.args_max});
    }
    try cstr.room(func, cfg, count * @sizeOf(Config.PortMapEntry));
    const out = cfg.allocator().alloc(Config.PortMapEntry, count) catch
        return reject(func, error.OutOfMemory, "out of memory", .{});
    for (out, 0..) |*slot, i| {
        const text = try cstr.required(func, "port_map entry", entries[i], 32);
        slot.* = parseEntry(text) orelse
            return reject(func, error.InvalidArgument, "port_map[{d}] \"{s}\" is not \"host_port:guest_port\" (1..65535 each)", .{ i, text });
        for (out[0..i], 0..) |prev, k| {
            if (prev.host == slot.host) return reject(func, error.InvalidArgument, "port_map[{d}] \"{s}\": host port {d} is already mapped by entry {d}", .{ i, text, slot.host, k });
            if (prev.guest == slot.guest) return reject(func, error.InvalidArgument, "port_map[{d}] \"{s}\": guest port {d} is already mapped by entry {d}", .{ i, text, slot.guest, k });
        }
    }
    for (out, 0..) |e, i| switch (probeHostPort(e.host)) {
        .ADDRINUSE => return reject(func, error.AddressInUse, "port_map[{d}]: host port {d} is in use (something on the host listens on it)", .{ i, e.host }),
        .ACCES => return reject(func, error.AccessDenied, "port_map[{d}]: host port {d} needs CAP_NET_BIND_SERVICE to bind", .{ i, e.host }),
        else => {},
    };
    cfg.port_map = out;
}

/// Binds a TCP socket to the wildcard at `port` and closes it: ADDRINUSE when a host listener
/// holds the port, ACCES when this process may not bind it. Why now: otherwise the failure
/// only shows when the guest listens, inside the guest. TCP only (a UDP socket on the same
/// number does not conflict with a TCP listener); SO_REUSEADDR so TIME_WAIT does not count.
/// It is a snapshot: a port taken after this call still fails the guest's bind (EADDRINUSE),
/// as in libkrun. Other errors (no sockets left, no IPv6) answer SUCCESS: the probe could not
/// tell, and the guest's bind will.
fn probeHostPort(port: u16) linux.E {
    if (sys.socket(linux.AF.INET6, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0)) |v6| return probeBind(v6, port, true) else |_| {}
    if (sys.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0)) |v4| return probeBind(v4, port, false) else |_| {}
    return .SUCCESS;
}

fn probeBind(fd: i32, port: u16, v6: bool) linux.E {
    defer sys.close(fd);
    const one: i32 = 1;
    const zero: i32 = 0;
    sys.setsockopt(fd, linux.SOL.SOCKET, linux.SO.REUSEADDR, std.mem.asBytes(&one)) catch {};
    if (v6) {
        // Dual-stack [::]: conflicts with IPv4 and IPv6 listeners alike.
        sys.setsockopt(fd, linux.IPPROTO.IPV6, linux.IPV6.V6ONLY, std.mem.asBytes(&zero)) catch {};
        var sa: linux.sockaddr.in6 = .{ .port = std.mem.nativeToBig(u16, port), .flowinfo = 0, .addr = @splat(0), .scope_id = 0 };
        return sys.resultErrno(sys.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in6)));
    }
    var sa: linux.sockaddr.in = .{ .port = std.mem.nativeToBig(u16, port), .addr = 0 };
    return sys.resultErrno(sys.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in)));
}

fn parseEntry(text: []const u8) ?Config.PortMapEntry {
    const colon = std.mem.indexOfScalar(u8, text, ':') orelse return null;
    const host = parsePort(text[0..colon]) orelse return null;
    const guest = parsePort(text[colon + 1 ..]) orelse return null;
    return .{ .host = host, .guest = guest };
}

fn parsePort(text: []const u8) ?u16 {
    if (text.len == 0 or text.len > 5) return null;
    for (text) |ch| if (ch < '0' or ch > '9') return null;
    const v = std.fmt.parseInt(u16, text, 10) catch return null;
    return if (v == 0) null else v;
}

test "vsock setters: libkrun's validation, nothing half-configured" {
    const tc = try @import("context.zig").TestContext.init();
    defer tc.deinit();
    const id = tc.id;
    const vm = @import("vm.zig");
    const t = std.testing;
    try t.expectEqual(@as(i32, -22), krun_add_vsock_port(id, 620, "/tmp/x"));
    try t.expectEqual(@as(i32, -22), krun_add_vsock_port(id, 1, ""));
    try t.expectEqual(@as(i32, -22), krun_add_vsock_port(id, 1, null));
    var long: [109:0]u8 = @splat('x');
    long[0] = '/';
    try t.expectEqual(@as(i32, -22), krun_add_vsock_port(id, 1, &long));
    try t.expectEqual(@as(i32, 0), krun_add_vsock_port(id, 1, test_tmp.path("capi-vsock-1")));
    try t.expectEqual(@as(i32, -17), krun_add_vsock_port2(id, 1, test_tmp.path("capi-vsock-2"), false));
    try t.expectEqual(@as(i32, -17), krun_add_vsock_port2(id, 2, "/tmp", true)); // exists
    try t.expectEqual(@as(i32, 0), krun_add_vsock_port2(id, 2, test_tmp.path("capi-vsock-none"), true));
    var free_a: [16]u8 = undefined;
    var free_b: [16]u8 = undefined;
    const good = [_]?[*:0]const u8{ try freePortEntry(&free_a, 80), try freePortEntry(&free_b, 22), null };
    const dup_host = [_]?[*:0]const u8{ "8080:80", "8080:81", null };
    const dup_guest = [_]?[*:0]const u8{ "8080:80", "8081:80", null };
    const bad = [_][*:0]const u8{ "80", "a:b", "0:80", "65536:1", "1:2:3", ":1", "1:", " 1:2" };
    try t.expectEqual(@as(i32, 0), krun_set_port_map(id, &good));
    try t.expectEqual(@as(i32, -22), krun_set_port_map(id, &dup_host));
    try t.expectEqual(@as(i32, -22), krun_set_port_map(id, &dup_guest));
    for (bad) |entry| {
        const arr = [_]?[*:0]const u8{ "1:1", entry, null };
        try t.expectEqual(@as(i32, -22), krun_set_port_map(id, &arr));
    }
    {
        contexts.lock();
        defer contexts.unlock();
        const cfg = try contexts.config("t", id);
        try t.expectEqual(@as(usize, 2), cfg.port_map.?.len); // the rejected calls kept the good map
        try t.expect(cfg.port_map.?[1].host != cfg.port_map.?[0].host);
        try t.expectEqual(@as(u16, 22), cfg.port_map.?[1].guest);
    }
    // krun_add_vsock needs the implicit one gone; after that, once.
    try t.expectEqual(@as(i32, -17), krun_add_vsock(id, 1));
    try t.expectEqual(@as(i32, 0), vm.krun_disable_implicit_vsock(id));
    try t.expectEqual(@as(i32, -19), krun_add_vsock_port(id, 3, "/tmp/y"));
    try t.expectEqual(@as(i32, -19), krun_set_port_map(id, &good));
    try t.expectEqual(@as(i32, -22), krun_add_vsock(id, 4));
    try t.expectEqual(@as(i32, 0), krun_add_vsock(id, 3));
    try t.expectEqual(@as(i32, -17), krun_add_vsock(id, 1));
    try t.expectEqual(@as(i32, 0), krun_add_vsock_port(id, 3, "/tmp/y"));
    try t.expectEqual(@as(i32, -2), krun_add_vsock_port(id + 999, 3, "/tmp/y"));
}

/// "<a host port free right now>:<guest>", so the tests do not depend on what the machine runs.
fn freePortEntry(buf: *[16]u8, guest: u16) ![*:0]const u8 {
    const l = try listenLoopback();
    sys.close(l.fd);
    return (try std.fmt.bufPrintSentinel(buf, "{d}:{d}", .{ l.port, guest }, 0)).ptr;
}

fn listenLoopback() !struct { fd: i32, port: u16 } {
    const fd = try sys.socket(linux.AF.INET, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0);
    var sa: linux.sockaddr.in = .{ .port = 0, .addr = std.mem.nativeToBig(u32, 0x7f000001) };
    try sys.bind(fd, @ptrCast(&sa), @sizeOf(linux.sockaddr.in));
    try sys.listen(fd, 1);
    var len: u32 = @sizeOf(linux.sockaddr.in);
    try sys.getsockname(fd, @ptrCast(&sa), &len);
    return .{ .fd = fd, .port = std.mem.bigToNative(u16, sa.port) };
}

test "krun_set_port_map: a host port something listens on is -EADDRINUSE, and changes nothing" {
    const tc = try @import("context.zig").TestContext.init();
    defer tc.deinit();
    const id = tc.id;
    const t = std.testing;
    var free_buf: [16]u8 = undefined;
    const free = [_]?[*:0]const u8{ try freePortEntry(&free_buf, 80), null };
    try t.expectEqual(@as(i32, 0), krun_set_port_map(id, &free));
    // A listener on the loopback only still takes the port from the guest's wildcard bind.
    const l = try listenLoopback();
    defer sys.close(l.fd);
    var busy_buf: [16]u8 = undefined;
    const busy_entry = try std.fmt.bufPrintSentinel(&busy_buf, "{d}:81", .{l.port}, 0);
    const busy = [_]?[*:0]const u8{ free[0], busy_entry.ptr, null };
    try t.expectEqual(@as(i32, -98), krun_set_port_map(id, &busy));
    try t.expect(std.mem.indexOf(u8, errors.lastError(), "is in use") != null);
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config("t", id);
    try t.expectEqual(@as(usize, 1), cfg.port_map.?.len); // the rejected call kept the first map
}
