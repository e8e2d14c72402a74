//! The virtio-blk request decoder (virtio 1.x §5.2.6): what one chain asks for, checked before
//! any I/O. Pure: it sees the 16-byte header and the chain's readable/writable byte counts, and
//! answers either a request to run or the status to return at once. A hostile guest gets
//! IOERR or UNSUPP here, never an out-of-range access later. Fuzzed by fuzz.zig.
const std = @import("std");

pub const sector_size: u64 = 512;
pub const header_len: u32 = 16;
/// One discard / write-zeroes segment: sector u64, num_sectors u32, flags u32.
pub const segment_len: u32 = 16;

pub const t_in: u32 = 0;
pub const t_out: u32 = 1;
pub const t_flush: u32 = 4;
pub const t_get_id: u32 = 8;
pub const t_discard: u32 = 11;
pub const t_write_zeroes: u32 = 13;

pub const Status = enum(u8) { ok = 0, ioerr = 1, unsupp = 2 };

pub const id_len = 20;
pub const write_zeroes_flag_unmap: u32 = 1;

/// Limits the device advertises in its config space and enforces here.
pub const Limits = struct {
    capacity_sectors: u64,
    read_only: bool,
    /// Bytes of data in one read or write (the guest's max_hw_sectors stays below this).
    data_bytes_max: u32 = 32 << 20,
    discard_segments_max: u32 = 1,
    /// Sectors per discard / write-zeroes segment.
    discard_sectors_max: u32 = 1 << 22,
    write_zeroes: bool = true,
    discard: bool = true,
};

pub const Header = extern struct { type: u32, reserved: u32, sector: u64 };

comptime {
    std.debug.assert(@sizeOf(Header) == header_len);
}

pub const Kind = enum { read, write, flush, get_id, discard, write_zeroes };

pub const Request = struct {
    kind: Kind,
    /// Byte offset in the disk (read/write).
    offset: u64 = 0,
    /// Data bytes: read/write data, get_id's writable room, discard/write-zeroes segment bytes.
    data_len: u32 = 0,
};

pub const Decoded = union(enum) {
    /// No writable byte for the status: nothing can be reported; the chain is returned unused.
    no_status,
    /// Answer with this status at once (no I/O).
    fail: Status,
    run: Request,
};

/// `readable` and `writable` are the chain's byte counts; the status byte is the last writable
/// byte, the header the first 16 readable bytes.
pub fn decode(hdr: ?Header, readable: u32, writable: u32, limits: Limits) Decoded {
    if (writable == 0) return .no_status;
    const h = hdr orelse return .{ .fail = .ioerr }; // fewer than 16 readable bytes
    if (readable < header_len) return .{ .fail = .ioerr };
    const in_room = writable - 1; // writable bytes before the status byte
    const out_data = readable - header_len; // readable bytes after the header
    switch (h.type) {
        t_in => {
            if (out_data != 0) return .{ .fail = .ioerr };
            return dataRequest(.read, h.sector, in_room, limits);
        },
        t_out => {
            if (in_room != 0) return .{ .fail = .ioerr };
            if (limits.read_only) return .{ .fail = .ioerr };
            return dataRequest(.write, h.sector, out_data, limits);
        },
        t_flush => return .{ .run = .{ .kind = .flush } },
        t_get_id => {
            if (in_room == 0) return .{ .fail = .ioerr };
            return .{ .run = .{ .kind = .get_id, .data_len = @min(in_room, id_len) } };
        },
        t_discard, t_write_zeroes => {
            const kind: Kind = if (h.type == t_discard) .discard else .write_zeroes;
            const offered = if (kind == .discard) limits.discard else limits.write_zeroes;
            if (!offered) return .{ .fail = .unsupp };
            if (limits.read_only) return .{ .fail = .ioerr };
            if (in_room != 0 or out_data == 0 or out_data % segment_len != 0) return .{ .fail = .ioerr };
            if (out_data / segment_len > limits.discard_segments_max) return .{ .fail = .ioerr };
            return .{ .run = .{ .kind = kind, .data_len = out_data } };
        },
        else => return .{ .fail = .unsupp },
    }
}

fn dataRequest(kind: Kind, sector: u64, len: u32, limits: Limits) Decoded {
    if (len % sector_size != 0 or len > limits.data_bytes_max) return .{ .fail = .ioerr };
    if (!rangeOk(sector, len / sector_size, limits.capacity_sectors)) return .{ .fail = .ioerr };
    return .{ .run = .{ .kind = kind, .offset = sector * sector_size, .data_len = len } };
}

/// [sector, sector + count) lies inside the disk (no overflow).
pub fn rangeOk(sector: u64, count: u64, capacity_sectors: u64) bool {
    return sector <= capacity_sectors and count <= capacity_sectors - sector;
}

pub const Segment = extern struct { sector: u64, num_sectors: u32, flags: u32 };

comptime {
    std.debug.assert(@sizeOf(Segment) == segment_len);
}

/// A discard / write-zeroes segment as a byte range, or the status to fail with.
pub const Range = union(enum) { fail: Status, range: struct { offset: u64, len: u64, unmap: bool } };

pub fn checkSegment(kind: Kind, seg: Segment, limits: Limits) Range {
    const allowed: u32 = if (kind == .write_zeroes) write_zeroes_flag_unmap else 0;
    if (seg.flags & ~allowed != 0) return .{ .fail = .unsupp };
    if (seg.num_sectors > limits.discard_sectors_max) return .{ .fail = .ioerr };
    if (!rangeOk(seg.sector, seg.num_sectors, limits.capacity_sectors)) return .{ .fail = .ioerr };
    return .{ .range = .{
        .offset = seg.sector * sector_size,
        .len = @as(u64, seg.num_sectors) * sector_size,
        .unmap = seg.flags & write_zeroes_flag_unmap != 0,
    } };
}

const testing = std.testing;

test "decode: reads, writes and their limits" {
    const lim: Limits = .{ .capacity_sectors = 100, .read_only = false };
    const h = struct {
        fn of(t: u32, sector: u64) Header {
            return .{ .type = t, .reserved = 0, .sector = sector };
        }
    }.of;
    try testing.expectEqual(Decoded.no_status, decode(h(t_in, 0), 16, 0, lim));
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(null, 8, 513, lim));
    const r = decode(h(t_in, 99), 16, 513, lim);
    try testing.expectEqual(Kind.read, r.run.kind);
    try testing.expectEqual(@as(u64, 99 * 512), r.run.offset);
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, 100), 16, 513, lim)); // past the end
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, 99), 16, 1025, lim)); // straddles
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, std.math.maxInt(u64)), 16, 513, lim));
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, 0), 16, 100, lim)); // not sectors
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, 0), 16 + 512, 513, lim)); // data both ways
    try testing.expectEqual(Kind.read, decode(h(t_in, 100), 16, 1, lim).run.kind); // empty read at the end
    try testing.expectEqual(Kind.write, decode(h(t_out, 0), 16 + 1024, 1, lim).run.kind);
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_out, 0), 16 + 1024, 2, lim));
    const ro: Limits = .{ .capacity_sectors = 100, .read_only = true };
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_out, 0), 16 + 512, 1, ro));
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_write_zeroes, 0), 32, 1, ro));
    try testing.expectEqual(Decoded{ .fail = .unsupp }, decode(h(77, 0), 16, 1, lim));
    try testing.expectEqual(Kind.flush, decode(h(t_flush, 0), 16, 1, lim).run.kind);
    try testing.expectEqual(@as(u32, 20), decode(h(t_get_id, 0), 16, 21, lim).run.data_len);
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_discard, 0), 16 + 32, 1, lim)); // 2 segments
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_discard, 0), 16 + 8, 1, lim));
    const big: Limits = .{ .capacity_sectors = 1 << 40, .read_only = false };
    try testing.expectEqual(Decoded{ .fail = .ioerr }, decode(h(t_in, 0), 16, (64 << 20) + 1, big)); // huge
}

test "segments: flags, range, size" {
    const lim: Limits = .{ .capacity_sectors = 100, .read_only = false };
    try testing.expectEqual(@as(u64, 512), checkSegment(.discard, .{ .sector = 1, .num_sectors = 1, .flags = 0 }, lim).range.offset);
    try testing.expectEqual(Status.unsupp, checkSegment(.discard, .{ .sector = 1, .num_sectors = 1, .flags = 1 }, lim).fail);
    try testing.expect(checkSegment(.write_zeroes, .{ .sector = 1, .num_sectors = 1, .flags = 1 }, lim).range.unmap);
    try testing.expectEqual(Status.ioerr, checkSegment(.discard, .{ .sector = 99, .num_sectors = 2, .flags = 0 }, lim).fail);
}
