//! A byte ring of records (4-byte big-endian length + frame), linear with compaction: the
//! bounded buffer between virtio-net's queues and its backend fd, one per direction.
const std = @import("std");
const Net = @import("Net.zig");

const Ring = @This();

buf: []u8 = &.{},
head: u32 = 0,
tail: u32 = 0,

pub fn len(r: *const Ring) u32 {
    return r.tail - r.head;
}

/// Room at the end after compacting: what one more append may use.
pub fn room(r: *Ring) u32 {
    if (r.head == r.tail) {
        r.head = 0;
        r.tail = 0;
    } else if (r.head > 0 and @as(u32, @intCast(r.buf.len)) - r.tail < Net.record_max) {
        std.mem.copyForwards(u8, r.buf[0..r.len()], r.buf[r.head..r.tail]);
        r.tail -= r.head;
        r.head = 0;
    }
    return @as(u32, @intCast(r.buf.len)) - r.tail;
}

pub fn data(r: *const Ring) []u8 {
    return r.buf[r.head..r.tail];
}
