//! The virtio-vsock packet header (virtio 1.x §5.10.6, struct virtio_vsock_hdr) and the check
//! every guest packet passes where it enters the device: addresses, type, op, flags, length
//! against the 64 KiB bound and against the bytes the chain really holds. A packet that fails
//! gets a reason; the muxer answers it with RST (or drops it when RST itself is invalid).
const std = @import("std");
const assert = std.debug.assert;

/// Little-endian, packed (44 bytes): the u64 fields sit at 4-byte-aligned offsets after the
/// first two, so they are declared align(4) to keep the C layout without padding.
pub const Header = extern struct {
    src_cid: u64 align(4),
    dst_cid: u64 align(4),
    src_port: u32,
    dst_port: u32,
    len: u32,
    type: u16,
    op: u16,
    flags: u32,
    buf_alloc: u32,
    fwd_cnt: u32,
};

pub const header_size = 44;

comptime {
    assert(@sizeOf(Header) == header_size);
    assert(@offsetOf(Header, "dst_cid") == 8);
    assert(@offsetOf(Header, "src_port") == 16);
    assert(@offsetOf(Header, "dst_port") == 20);
    assert(@offsetOf(Header, "len") == 24);
    assert(@offsetOf(Header, "type") == 28);
    assert(@offsetOf(Header, "op") == 30);
    assert(@offsetOf(Header, "flags") == 32);
    assert(@offsetOf(Header, "buf_alloc") == 36);
    assert(@offsetOf(Header, "fwd_cnt") == 40);
}

pub const host_cid: u64 = 2;
pub const guest_cid: u64 = 3;

pub const type_stream: u16 = 1;

pub const Op = struct {
    pub const request: u16 = 1;
    pub const response: u16 = 2;
    pub const rst: u16 = 3;
    pub const shutdown: u16 = 4;
    pub const rw: u16 = 5;
    pub const credit_update: u16 = 6;
    pub const credit_request: u16 = 7;
};

/// SHUTDOWN flags: the sender will receive no more / send no more.
pub const shutdown_rcv: u32 = 1;
pub const shutdown_send: u32 = 2;

/// Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE: no payload is longer.
pub const payload_max: u32 = 64 * 1024;

pub const Invalid = enum {
    /// Fewer readable bytes than a header: nothing to answer (no valid addresses).
    short,
    /// Not from CID 3 to CID 2: dropped (answering would address someone else).
    address,
    /// A type other than STREAM (no SEQPACKET, no DGRAM offered).
    type,
    op,
    flags,
    /// len above 64 KiB, or more than the chain holds after the header.
    length,
};

/// Checks a guest → host header read from a chain with `readable` bytes in all.
pub fn check(h: *const Header, readable: u32) ?Invalid {
    if (readable < header_size) return .short;
    if (h.src_cid != guest_cid or h.dst_cid != host_cid) return .address;
    if (h.type != type_stream) return .type;
    if (h.op < Op.request or h.op > Op.credit_request) return .op;
    if (h.op == Op.shutdown) {
        if (h.flags & ~(shutdown_rcv | shutdown_send) != 0) return .flags;
    } else if (h.flags != 0) return .flags;
    if (h.len > payload_max or h.len > readable - header_size) return .length;
    if (h.op != Op.rw and h.len != 0) return .length;
    return null;
}

/// Whether an invalid packet deserves an RST (addresses are good and it was not an RST).
pub fn answerWithRst(h: *const Header, why: Invalid) bool {
    return switch (why) {
        .short, .address => false,
        else => h.op != Op.rst,
    };
}

/// A host → guest header for the connection (host_port → guest_port).
pub fn toGuest(op: u16, host_port: u32, guest_port: u32) Header {
    return .{
        .src_cid = host_cid,
        .dst_cid = guest_cid,
        .src_port = host_port,
        .dst_port = guest_port,
        .len = 0,
        .type = type_stream,
        .op = op,
        .flags = 0,
        .buf_alloc = 0,
        .fwd_cnt = 0,
    };
}

const testing = std.testing;

fn good() Header {
    var h = toGuest(Op.rw, 1024, 620);
    h.src_cid = guest_cid;
    h.dst_cid = host_cid;
    h.len = 10;
    return h;
}

test "vsock header: byte layout as in the spec (little-endian, packed)" {
    var h = good();
    h.src_port = 0x11223344;
    h.buf_alloc = 0xaabbccdd;
    const b = std.mem.asBytes(&h);
    try testing.expectEqual(@as(usize, 44), b.len);
    try testing.expectEqual(@as(u8, 3), b[0]);
    try testing.expectEqual(@as(u8, 2), b[8]);
    try testing.expectEqual(@as(u32, 0x11223344), std.mem.readInt(u32, b[16..20], .little));
    try testing.expectEqual(@as(u16, 5), std.mem.readInt(u16, b[30..32], .little));
    try testing.expectEqual(@as(u32, 0xaabbccdd), std.mem.readInt(u32, b[36..40], .little));
}

test "vsock header: every guest field is checked" {
    var h = good();
    try testing.expectEqual(@as(?Invalid, null), check(&h, 54));
    try testing.expectEqual(@as(?Invalid, .short), check(&h, 43));
    try testing.expectEqual(@as(?Invalid, .length), check(&h, 53)); // len 10, 9 bytes present
    h.len = payload_max + 1;
    try testing.expectEqual(@as(?Invalid, .length), check(&h, 200_000));
    h = good();
    h.src_cid = 4;
    try testing.expectEqual(@as(?Invalid, .address), check(&h, 54));
    h = good();
    h.dst_cid = 3;
    try testing.expectEqual(@as(?Invalid, .address), check(&h, 54));
    h = good();
    h.type = 2;
    try testing.expectEqual(@as(?Invalid, .type), check(&h, 54));
    h = good();
    h.op = 0;
    try testing.expectEqual(@as(?Invalid, .op), check(&h, 54));
    h.op = 8;
    try testing.expectEqual(@as(?Invalid, .op), check(&h, 54));
    h = good();
    h.flags = 1;
    try testing.expectEqual(@as(?Invalid, .flags), check(&h, 54));
    h.op = Op.shutdown;
    h.len = 0;
    h.flags = 3;
    try testing.expectEqual(@as(?Invalid, null), check(&h, 44));
    h.flags = 4;
    try testing.expectEqual(@as(?Invalid, .flags), check(&h, 44));
    h = good();
    h.op = Op.request; // only RW carries a payload
    try testing.expectEqual(@as(?Invalid, .length), check(&h, 54));
    try testing.expect(answerWithRst(&h, .length));
    h.op = Op.rst;
    try testing.expect(!answerWithRst(&h, .length));
    try testing.expect(!answerWithRst(&h, .address));
}
