//! Opens a NIC's host side when the VM is built (Config.NicBackend → one fd the device owns):
//! connects unix stream/datagram sockets by path, duplicates callers' fds (the caller's fd stays
//! theirs: frames use MSG_DONTWAIT, so its file flags are never changed), and attaches to a tap
//! device by name (O_NONBLOCK on our own open). Runs on the thread that starts the VM, once.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const Config = @import("../../Config.zig");
const Net = @import("Net.zig");
const frame = @import("frame.zig");

const log = std.log.scoped(.net);

pub const Opened = struct { fd: i32, kind: Net.Kind };

pub const OpenError = error{ InvalidConfig, SystemResources };

pub fn open(b: Config.NicBackend) OpenError!Opened {
    return switch (b) {
        .unixstream_path => |p| .{ .fd = try connectUnix(p, linux.SOCK.STREAM, false), .kind = .unixstream },
        .unixstream_fd => |fd| .{ .fd = try dup(fd), .kind = .unixstream },
        .unixgram_path => |g| .{ .fd = try connectUnix(g.path, linux.SOCK.DGRAM, g.vfkit), .kind = .unixgram },
        .unixgram_fd => |fd| .{ .fd = try dup(fd), .kind = .unixgram },
        .tap => |name| .{ .fd = try openTap(name), .kind = .tap },
    };
}

fn dup(fd: i32) OpenError!i32 {
    const rc = sys.fcntl(fd, linux.F.DUPFD_CLOEXEC, 3) catch |err| switch (err) {
        error.BADF => {
            log.warn("NIC fd {d} is not open", .{fd});
            return error.InvalidConfig;
        },
        else => return error.SystemResources,
    };
    return @intCast(rc);
}

/// gvproxy's vfkit mode wants this datagram first, to learn the peer's address.
const vfkit_magic = "VFKT";

fn connectUnix(path: []const u8, sock_type: u32, vfkit: bool) OpenError!i32 {
    var addr: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = @splat(0) };
    if (path.len == 0 or path.len >= addr.path.len) return error.InvalidConfig;
    @memcpy(addr.path[0..path.len], path);
    const fd = sys.socket(linux.AF.UNIX, sock_type | linux.SOCK.CLOEXEC, 0) catch return error.SystemResources;
    errdefer sys.close(fd);
    if (sock_type == linux.SOCK.DGRAM) {
        // An autobound abstract address, so the peer can answer us.
        var local: linux.sockaddr.un = .{ .family = linux.AF.UNIX, .path = @splat(0) };
        sys.bind(fd, @ptrCast(&local), @sizeOf(linux.sa_family_t)) catch return error.SystemResources;
    }
    sys.connect(fd, &addr, @sizeOf(linux.sockaddr.un)) catch |err| {
        log.warn("NIC socket {s}: connect: {t}", .{ path, err });
        return error.InvalidConfig;
    };
    if (vfkit) {
        _ = sys.sendto(fd, vfkit_magic, linux.MSG.NOSIGNAL, null, 0) catch |err| {
            log.warn("NIC socket {s}: the VFKT handshake failed: {t}", .{ path, err });
            return error.InvalidConfig;
        };
    }
    return fd;
}

const tunsetiff: u32 = 0x400454ca;
const tunsetvnethdrsz: u32 = 0x400454d8;
const iff_tap: u16 = 0x0002;
const iff_no_pi: u16 = 0x1000;
/// Every read and write carries a virtio_net_hdr first (Net.zig passes the guest's through).
const iff_vnet_hdr: u16 = 0x4000;

const IfReq = extern struct {
    name: [16]u8,
    flags: u16,
    pad: [22]u8 = @splat(0),
};

fn openTap(name: []const u8) OpenError!i32 {
    var req: IfReq = .{ .name = @splat(0), .flags = iff_tap | iff_no_pi | iff_vnet_hdr };
    if (name.len == 0 or name.len >= req.name.len) return error.InvalidConfig;
    @memcpy(req.name[0..name.len], name);
    const fd = sys.open("/dev/net/tun", .{ .ACCMODE = .RDWR, .NONBLOCK = true, .CLOEXEC = true }) catch |err| {
        log.warn("tap {s}: /dev/net/tun: {t}", .{ name, err });
        return error.InvalidConfig;
    };
    errdefer sys.close(fd);
    _ = sys.ioctl(fd, tunsetiff, @intFromPtr(&req)) catch |err| {
        log.warn("tap {s}: TUNSETIFF: {t}", .{ name, err });
        return error.InvalidConfig;
    };
    // The 12-byte virtio 1.x header (with num_buffers), the guest's own layout.
    var hdr_size: i32 = frame.header_size;
    _ = sys.ioctl(fd, tunsetvnethdrsz, @intFromPtr(&hdr_size)) catch |err| {
        log.warn("tap {s}: TUNSETVNETHDRSZ: {t}", .{ name, err });
        return error.InvalidConfig;
    };
    return fd;
}

test "IfReq is struct ifreq's size" {
    try std.testing.expectEqual(@as(usize, 40), @sizeOf(IfReq));
}
