//! virtio-net setters: krun_add_net_unixstream / _unixgram / _tap, and the legacy single-NIC
//! krun_set_passt_fd / krun_set_gvproxy_path / krun_set_net_mac. They validate and record
//! (Config.nics); the VMM connects paths, duplicates fds and opens taps when it builds the VM.
//! With a NIC configured the implicit vsock has no TSI (Config.vsockDevice), as in libkrun.
const std = @import("std");
const Config = @import("../Config.zig");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

pub const net_flag_vfkit: u32 = 1 << 0;
pub const net_flag_dhcp_client: u32 = 1 << 1;
/// NET_FEATURE_CSUM .. HOST_UFO (libkrun's NET_ALL_FEATURES).
pub const net_all_features: u32 = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11) | (1 << 12) | (1 << 14);
const guest_offloads: u32 = (1 << 7) | (1 << 8) | (1 << 10);
const guest_csum: u32 = 1 << 1;
/// NICs per context: virtio-MMIO slots are shared with every other device.
pub const nics_max = 4;
/// sockaddr_un's path; IFNAMSIZ - 1 for tap names.
const socket_path_max = 107;
const ifname_max = 15;

pub fn krun_add_net_unixstream(ctx_id: u32, c_path: cstr.CString, fd: c_int, c_mac: ?[*]u8, features: u32, flags: u32) callconv(.c) i32 {
    return errors.result(addSocketNic("krun_add_net_unixstream", ctx_id, c_path, fd, c_mac, features, flags, .stream));
}

pub fn krun_add_net_unixgram(ctx_id: u32, c_path: cstr.CString, fd: c_int, c_mac: ?[*]u8, features: u32, flags: u32) callconv(.c) i32 {
    return errors.result(addSocketNic("krun_add_net_unixgram", ctx_id, c_path, fd, c_mac, features, flags, .dgram));
}

pub fn krun_add_net_tap(ctx_id: u32, c_tap_name: ?[*:0]u8, c_mac: ?[*]u8, features: u32, flags: u32) callconv(.c) i32 {
    return errors.result(addTap(ctx_id, c_tap_name, c_mac, features, flags));
}

/// Deprecated in libkrun: the legacy NIC on a passt fd (COMPAT_NET_FEATURES, krun_set_net_mac's MAC).
pub fn krun_set_passt_fd(ctx_id: u32, fd: c_int) callconv(.c) i32 {
    const func = "krun_set_passt_fd";
    if (fd < 0) return errors.errno(reject(func, error.InvalidArgument, "fd {d} is negative", .{fd}));
    return errors.result(setLegacy(func, ctx_id, .{ .unixstream_fd = fd }));
}

/// Deprecated in libkrun: the legacy NIC on gvproxy's vfkit-mode datagram socket.
pub fn krun_set_gvproxy_path(ctx_id: u32, c_path: ?[*:0]u8) callconv(.c) i32 {
    const func = "krun_set_gvproxy_path";
    const path = cstr.required(func, "c_path", c_path, socket_path_max + 1) catch |err| return errors.errno(err);
    if (path.len == 0 or path.len > socket_path_max)
        return errors.errno(reject(func, error.InvalidArgument, "a socket path is 1..{d} bytes", .{socket_path_max}));
    return errors.result(setLegacy(func, ctx_id, .{ .unixgram_path = .{ .path = path, .vfkit = true } }));
}

pub fn krun_set_net_mac(ctx_id: u32, c_mac: ?[*]u8) callconv(.c) i32 {
    const func = "krun_set_net_mac";
    const mac = readMac(func, c_mac) catch |err| return errors.errno(err);
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config(func, ctx_id) catch |err| return errors.errno(err);
    cfg.legacy_mac = mac;
    return 0;
}

const SocketKind = enum { stream, dgram };

fn addSocketNic(func: []const u8, ctx_id: u32, c_path: cstr.CString, fd: c_int, c_mac: ?[*]u8, features: u32, flags: u32, kind: SocketKind) Error!void {
    const path = try cstr.optional(func, "c_path", c_path, socket_path_max + 1);
    if (path != null and fd >= 0) return reject(func, error.InvalidArgument, "give a path or an fd, not both", .{});
    if (path == null and fd < 0) return reject(func, error.InvalidArgument, "give a path or an fd (fd {d} is negative)", .{fd});
    if (path) |p| if (p.len == 0 or p.len > socket_path_max)
        return reject(func, error.InvalidArgument, "a socket path is 1..{d} bytes", .{socket_path_max});
    const mac = try readMac(func, c_mac);
    try checkFeatures(func, features);
    const allowed: u32 = if (kind == .stream) net_flag_dhcp_client else net_flag_vfkit | net_flag_dhcp_client;
    if (flags & ~allowed != 0) return reject(func, error.InvalidArgument, "flags 0x{x} has bits this backend does not take (allowed: 0x{x})", .{ flags, allowed });
    if (kind == .dgram and fd >= 0 and flags & net_flag_vfkit != 0)
        return reject(func, error.InvalidArgument, "NET_FLAG_VFKIT needs a path (the magic is sent on connect)", .{});

    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config(func, ctx_id);
    const backend: Config.NicBackend = switch (kind) {
        .stream => if (path) |p| .{ .unixstream_path = try cstr.dupe(func, cfg, p) } else .{ .unixstream_fd = fd },
        .dgram => if (path) |p| .{ .unixgram_path = .{ .path = try cstr.dupe(func, cfg, p), .vfkit = flags & net_flag_vfkit != 0 } } else .{ .unixgram_fd = fd },
    };
    try append(func, cfg, ctx_id, .{ .backend = backend, .mac = mac, .features = features, .dhcp = flags & net_flag_dhcp_client != 0 });
}

fn addTap(ctx_id: u32, c_tap_name: ?[*:0]u8, c_mac: ?[*]u8, features: u32, flags: u32) Error!void {
    const func = "krun_add_net_tap";
    const name = try cstr.required(func, "c_tap_name", c_tap_name, ifname_max + 1);
    if (name.len == 0 or name.len > ifname_max) return reject(func, error.InvalidArgument, "a tap name is 1..{d} bytes", .{ifname_max});
    const mac = try readMac(func, c_mac);
    try checkFeatures(func, features);
    if (features & guest_offloads != 0 and features & guest_csum == 0)
        return reject(func, error.InvalidArgument, "GUEST_TSO4/TSO6/UFO need NET_FEATURE_GUEST_CSUM", .{});
    if (flags & ~net_flag_dhcp_client != 0) return reject(func, error.InvalidArgument, "flags 0x{x}: the tap backend takes only NET_FLAG_DHCP_CLIENT", .{flags});
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config(func, ctx_id);
    const backend: Config.NicBackend = .{ .tap = try cstr.dupe(func, cfg, name) };
    try append(func, cfg, ctx_id, .{ .backend = backend, .mac = mac, .features = features, .dhcp = flags & net_flag_dhcp_client != 0 });
}

fn append(func: []const u8, cfg: *Config, ctx_id: u32, nic: Config.Nic) Error!void {
    if (cfg.legacy_nic != null)
        return reject(func, error.InvalidArgument, "context {d} has the legacy NIC (krun_set_passt_fd/krun_set_gvproxy_path)", .{ctx_id});
    if (cfg.nics.items.len == nics_max) return reject(func, error.NoSpace, "context {d} has {d} NICs already (the most)", .{ ctx_id, nics_max });
    if (cfg.port_map != null) return reject(func, error.InvalidArgument, "context {d} has a TSI port map; a NIC turns TSI off", .{ctx_id});
    cfg.nics.ensureUnusedCapacity(cfg.allocator(), 1) catch return reject(func, error.OutOfMemory, "out of memory", .{});
    cfg.nics.appendAssumeCapacity(nic);
}

fn setLegacy(func: []const u8, ctx_id: u32, backend: Config.NicBackend) Error!void {
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config(func, ctx_id);
    // libkrun: the legacy interface supports one NIC, and none from krun_add_net_*.
    if (cfg.nics.items.len > 0) return reject(func, error.InvalidArgument, "context {d} has krun_add_net_* NICs; the legacy NIC cannot be added", .{ctx_id});
    var b = backend;
    switch (b) {
        .unixgram_path => |*g| g.path = try cstr.dupe(func, cfg, g.path),
        else => {},
    }
    cfg.legacy_nic = b;
}

fn readMac(func: []const u8, c_mac: ?[*]u8) Error![6]u8 {
    const p = c_mac orelse return reject(func, error.InvalidArgument, "c_mac is NULL", .{});
    const mac = p[0..6].*;
    if (mac[0] & 1 != 0) return reject(func, error.InvalidArgument, "MAC {x:0>2}:{x:0>2}:.. is a multicast address", .{ mac[0], mac[1] });
    return mac;
}

fn checkFeatures(func: []const u8, features: u32) Error!void {
    if (features & ~net_all_features != 0)
        return reject(func, error.InvalidArgument, "features 0x{x} has bits that are not NET_FEATURE_* (0x{x})", .{ features, net_all_features });
}

const testing = std.testing;

test "net setters: arguments checked, NICs recorded in order, TSI off" {
    const ctx: u32 = @intCast(@import("context.zig").krun_create_ctx());
    defer _ = @import("context.zig").krun_free_ctx(ctx);
    var mac = [6]u8{ 0x52, 0x54, 0, 0x12, 0x34, 0x56 };
    const einval: i32 = -22;
    try testing.expectEqual(einval, krun_add_net_unixstream(ctx, null, -1, &mac, 0, 0));
    try testing.expectEqual(einval, krun_add_net_unixstream(ctx, "/tmp/x", 3, &mac, 0, 0));
    try testing.expectEqual(einval, krun_add_net_unixstream(ctx, "/tmp/x", -1, null, 0, 0));
    try testing.expectEqual(einval, krun_add_net_unixstream(ctx, "/tmp/x", -1, &mac, 1 << 20, 0));
    try testing.expectEqual(einval, krun_add_net_unixstream(ctx, "/tmp/x", -1, &mac, 0, net_flag_vfkit));
    var tap = "zk0tap".*;
    try testing.expectEqual(einval, krun_add_net_tap(ctx, &tap, &mac, 1 << 7, 0));
    try testing.expectEqual(@as(i32, -2), krun_add_net_unixstream(ctx + 1000, "/tmp/x", -1, &mac, 0, 0));
    try testing.expectEqual(@as(i32, 0), krun_add_net_unixstream(ctx, "/tmp/x", -1, &mac, Config.compat_net_features, net_flag_dhcp_client));
    try testing.expectEqual(@as(i32, 0), krun_add_net_unixgram(ctx, "/tmp/y", -1, &mac, 0, net_flag_vfkit));
    try testing.expectEqual(@as(i32, 0), krun_add_net_tap(ctx, &tap, &mac, 0, 0));
    try testing.expectEqual(einval, krun_set_passt_fd(ctx, 5));
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config("test", ctx);
    try testing.expectEqual(@as(usize, 3), cfg.nicCount());
    try testing.expect(cfg.nics.items[0].dhcp);
    try testing.expectEqual(@as(?u32, null), cfg.vsockDevice());
}

test "legacy NIC: passt fd with the default MAC, then krun_set_net_mac" {
    const ctx: u32 = @intCast(@import("context.zig").krun_create_ctx());
    defer _ = @import("context.zig").krun_free_ctx(ctx);
    try testing.expectEqual(@as(i32, -22), krun_set_passt_fd(ctx, -1));
    try testing.expectEqual(@as(i32, 0), krun_set_passt_fd(ctx, 7));
    var mac = [6]u8{ 0x02, 1, 2, 3, 4, 5 };
    try testing.expectEqual(@as(i32, 0), krun_set_net_mac(ctx, &mac));
    var m2 = mac;
    try testing.expectEqual(@as(i32, -22), krun_add_net_unixstream(ctx, "/tmp/x", -1, &m2, 0, 0));
    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config("test", ctx);
    var buf: [1]Config.Nic = undefined;
    const nics = cfg.allNics(&buf);
    try testing.expectEqual(@as(usize, 1), nics.len);
    try testing.expectEqual(@as(i32, 7), nics[0].backend.unixstream_fd);
    try testing.expectEqualSlices(u8, &mac, &nics[0].mac);
}
