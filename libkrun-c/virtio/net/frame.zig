//! virtio-net's wire formats, as pure functions over bytes (no device state, no fds), so the
//! device, its unit tests and the fuzz target share one decoder: the per-packet
//! `virtio_net_hdr_v1` (virtio 1.x §5.1.6) the guest puts before every frame, its validation,
//! the checksum the device completes for VIRTIO_NET_HDR_F_NEEDS_CSUM, and the passt/QEMU stream
//! framing (a 4-byte big-endian length before each Ethernet frame).
const std = @import("std");

/// virtio_net_hdr_v1: with VERSION_1 the header always has num_buffers (12 bytes).
pub const Header = extern struct {
    flags: u8 = 0,
    gso_type: u8 = gso_none,
    hdr_len: u16 = 0,
    gso_size: u16 = 0,
    csum_start: u16 = 0,
    csum_offset: u16 = 0,
    num_buffers: u16 = 0,
};

pub const header_size = 12;
comptime {
    std.debug.assert(@sizeOf(Header) == header_size);
    std.debug.assert(@offsetOf(Header, "csum_start") == 6);
    std.debug.assert(@offsetOf(Header, "num_buffers") == 10);
}

pub const flag_needs_csum: u8 = 1;
pub const flag_data_valid: u8 = 2;
pub const gso_none: u8 = 0;
pub const gso_tcpv4: u8 = 1;
pub const gso_tcpv6: u8 = 4;
pub const gso_ecn: u8 = 0x80;

/// An Ethernet header; shorter frames are dropped.
pub const eth_header_size = 14;
/// The largest frame either direction carries: a 64 KiB IP packet plus Ethernet and VLAN
/// headers (passt's MTU is 65520). Bigger lengths on a stream are skipped, never buffered.
pub const frame_max = 65536 + 18;
/// The stream framing's length prefix.
pub const prefix_size = 4;

pub const TxVerdict = enum {
    ok,
    /// Too short for a header, or a frame below 14 or above frame_max bytes.
    bad_length,
    /// GSO asked for that was not negotiated (HOST_TSO4/TSO6), or a malformed GSO request
    /// (no partial checksum, zero segment size, headers longer than the frame).
    gso_not_offered,
    /// NEEDS_CSUM without the CSUM feature, unknown flag bits, or a checksum field outside
    /// the frame.
    bad_checksum_request,
};

/// The GSO types a device passes on (HOST_TSO4/TSO6 negotiated); none by default.
pub const Gso = struct { tcpv4: bool = false, tcpv6: bool = false };

/// Checks a guest's transmit header against the frame length, the negotiated CSUM bit and
/// the GSO types the device passes on (only the tap backend, which segments in the kernel).
pub fn checkTx(h: Header, frame_len: usize, csum_negotiated: bool, gso: Gso) TxVerdict {
    if (frame_len < eth_header_size or frame_len > frame_max) return .bad_length;
    if (h.gso_type != gso_none) {
        const ok = switch (h.gso_type) {
            gso_tcpv4 => gso.tcpv4,
            gso_tcpv6 => gso.tcpv6,
            else => false, // ECN (HOST_ECN is never offered), UDP, unknown
        };
        // A GSO frame is always CHECKSUM_PARTIAL in Linux's driver; the kernel rejects others.
        if (!ok or h.flags & flag_needs_csum == 0 or std.mem.littleToNative(u16, h.gso_size) == 0 or
            std.mem.littleToNative(u16, h.hdr_len) > frame_len) return .gso_not_offered;
    }
    if (h.flags & ~(flag_needs_csum | flag_data_valid) != 0) return .bad_checksum_request;
    if (h.flags & flag_needs_csum != 0) {
        if (!csum_negotiated) return .bad_checksum_request;
        const start: usize = std.mem.littleToNative(u16, h.csum_start);
        const field: usize = start + std.mem.littleToNative(u16, h.csum_offset);
        if (start >= frame_len or field + 2 > frame_len) return .bad_checksum_request;
    }
    return .ok;
}

/// Completes a partial checksum in place (checkTx said `.ok`): the ones'-complement sum of
/// frame[csum_start..] (the driver already put the pseudo-header sum in the field) is folded
/// and stored at csum_start + csum_offset. A zero UDP result stays as computed (0xffff).
pub fn completeChecksum(h: Header, frame: []u8) void {
    if (h.flags & flag_needs_csum == 0) return;
    const start: usize = std.mem.littleToNative(u16, h.csum_start);
    const field = start + std.mem.littleToNative(u16, h.csum_offset);
    var sum: u64 = 0;
    var i = start;
    while (i + 1 < frame.len) : (i += 2) sum += std.mem.readInt(u16, frame[i..][0..2], .big);
    if (i < frame.len) sum += @as(u64, frame[i]) << 8;
    while (sum >> 16 != 0) sum = (sum & 0xffff) + (sum >> 16);
    var result: u16 = ~@as(u16, @intCast(sum));
    if (result == 0) result = 0xffff;
    std.mem.writeInt(u16, frame[field..][0..2], result, .big);
}

/// One step of the stream decoder over buffered bytes.
pub const StreamItem = union(enum) {
    /// Not enough bytes buffered yet.
    need_more,
    /// A whole frame at bytes[prefix_size..][0..len]; consume prefix_size + len.
    frame: u32,
    /// A length outside [eth_header_size, frame_max]: consume the prefix, then skip `len`
    /// bytes as they arrive (the stream stays in step; nothing big is ever buffered).
    skip: u32,
};

pub fn nextStreamItem(bytes: []const u8) StreamItem {
    if (bytes.len < prefix_size) return .need_more;
    const len = std.mem.readInt(u32, bytes[0..prefix_size], .big);
    if (len < eth_header_size or len > frame_max) return .{ .skip = len };
    if (bytes.len - prefix_size < len) return .need_more;
    return .{ .frame = len };
}

const testing = std.testing;

test "stream decoder: whole frames, partial frames, hostile lengths" {
    var buf: [64]u8 = undefined;
    std.mem.writeInt(u32, buf[0..4], 20, .big);
    try testing.expectEqual(StreamItem.need_more, nextStreamItem(buf[0..3]));
    try testing.expectEqual(StreamItem.need_more, nextStreamItem(buf[0..23]));
    try testing.expectEqual(StreamItem{ .frame = 20 }, nextStreamItem(buf[0..24]));
    std.mem.writeInt(u32, buf[0..4], 0xffff_ffff, .big);
    try testing.expectEqual(StreamItem{ .skip = 0xffff_ffff }, nextStreamItem(buf[0..4]));
    std.mem.writeInt(u32, buf[0..4], 3, .big);
    try testing.expectEqual(StreamItem{ .skip = 3 }, nextStreamItem(buf[0..4]));
}

test "tx header checks and checksum completion" {
    try testing.expectEqual(TxVerdict.ok, checkTx(.{}, 60, false, .{}));
    try testing.expectEqual(TxVerdict.bad_length, checkTx(.{}, 13, false, .{}));
    try testing.expectEqual(TxVerdict.bad_length, checkTx(.{}, frame_max + 1, false, .{}));
    try testing.expectEqual(TxVerdict.gso_not_offered, checkTx(.{ .gso_type = 1 }, 60, true, .{}));
    const tso: Header = .{ .flags = flag_needs_csum, .gso_type = gso_tcpv4, .hdr_len = 54, .gso_size = 1448, .csum_start = 34, .csum_offset = 16 };
    try testing.expectEqual(TxVerdict.ok, checkTx(tso, 3000, true, .{ .tcpv4 = true }));
    try testing.expectEqual(TxVerdict.gso_not_offered, checkTx(tso, 3000, true, .{ .tcpv6 = true }));
    var bad = tso;
    bad.gso_size = 0;
    try testing.expectEqual(TxVerdict.gso_not_offered, checkTx(bad, 3000, true, .{ .tcpv4 = true }));
    bad = tso;
    bad.flags = 0;
    try testing.expectEqual(TxVerdict.gso_not_offered, checkTx(bad, 3000, true, .{ .tcpv4 = true }));
    bad = tso;
    bad.gso_type = gso_tcpv4 | gso_ecn;
    try testing.expectEqual(TxVerdict.gso_not_offered, checkTx(bad, 3000, true, .{ .tcpv4 = true }));
    try testing.expectEqual(TxVerdict.bad_checksum_request, checkTx(.{ .flags = 1, .csum_start = 34, .csum_offset = 16 }, 60, false, .{}));
    try testing.expectEqual(TxVerdict.bad_checksum_request, checkTx(.{ .flags = 1, .csum_start = 34, .csum_offset = 25 }, 60, true, .{}));
    try testing.expectEqual(TxVerdict.bad_checksum_request, checkTx(.{ .flags = 0x80 }, 60, true, .{}));
    try testing.expectEqual(TxVerdict.bad_checksum_request, checkTx(.{ .flags = 1, .csum_start = 0xffff, .csum_offset = 0xffff }, 60, true, .{}));
    // A 4-byte region whose sum is 0x1234 + 0x5678 (field zero): checksum ~0x68ac.
    var frame: [20]u8 = @splat(0);
    frame[14] = 0x12;
    frame[15] = 0x34;
    frame[16] = 0x56;
    frame[17] = 0x78;
    const h: Header = .{ .flags = flag_needs_csum, .csum_start = 14, .csum_offset = 4 };
    try testing.expectEqual(TxVerdict.ok, checkTx(h, frame.len, true, .{}));
    completeChecksum(h, &frame);
    try testing.expectEqual(@as(u16, ~@as(u16, 0x68ac)), std.mem.readInt(u16, frame[18..20], .big));
}
