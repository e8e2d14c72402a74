//! Open file and directory handles (the `fh` of FUSE requests). Each holds a host fd opened for
//! I/O, or an overlay entry for virtual files. Handle ids carry a generation like node ids, so a
//! forged or released fh is refused. Sized once at creation; slots are initialized as they are
//! first handed out (`used`; slot_table.zig, shared with Inodes).
const std = @import("std");
const assert = std.debug.assert;
const sys = @import("sys.zig").backend;
const untouched = @import("../../untouched.zig");
const slot_table = @import("slot_table.zig");

const Handles = @This();

pub const Kind = enum(u8) { free, file, dir, virtual_file, virtual_dir };

pub const Handle = struct {
    kind: Kind = .free,
    generation: u32 = 0,
    fd: sys.fd_t = -1,
    /// Node id of the inode it was opened from (re-validated where it matters).
    nodeid: u64 = 0,
    /// Overlay entry for virtual handles.
    entry: u16 = 0,
    writable: bool = false,
};

/// Only `slots[0..used]` is initialized; the rest is untouched memory.
slots: []Handle,
used: u32 = 0,
/// Released slot indexes (below `used`), a stack.
free_list: []u32,
free_count: u32 = 0,

pub fn init(gpa: std.mem.Allocator, count: u32) !Handles {
    assert(count >= 1); // tidy: table invariant; guest handles are checked by find() first
    const slots = try untouched.alloc(gpa, Handle, count);
    errdefer untouched.free(gpa, slots);
    const free_list = try untouched.alloc(gpa, u32, count);
    return .{ .slots = slots, .free_list = free_list };
}

pub fn deinit(self: *Handles, gpa: std.mem.Allocator) void {
    for (self.slots[0..self.used]) |*h| if (h.fd >= 0) sys.close(h.fd);
    untouched.free(gpa, self.slots);
    untouched.free(gpa, self.free_list);
    self.* = undefined;
}

/// Stores `h` (taking its fd) and returns its fh; null when full (the fd is closed).
pub fn add(self: *Handles, h: Handle) ?u64 {
    assert(h.kind != .free); // tidy: table invariant; guest handles are checked by find() first
    const index = slot_table.take(self) orelse {
        if (h.fd >= 0) sys.close(h.fd);
        return null;
    };
    const s = &self.slots[index];
    assert(s.kind == .free); // tidy: table invariant; guest handles are checked by find() first
    const generation = s.generation;
    s.* = h;
    s.generation = generation;
    return (@as(u64, generation) << 32) | (index + 1);
}

pub fn find(self: *Handles, fh: u64) ?*Handle {
    return &self.slots[slot_table.find(self, fh) orelse return null];
}

pub fn remove(self: *Handles, fh: u64) bool {
    const s = self.find(fh) orelse return false;
    if (s.fd >= 0) sys.close(s.fd);
    s.* = .{ .generation = s.generation +% 1 };
    slot_table.release(self, @as(u32, @truncate(fh)) - 1);
    return true;
}

test "handles: released and forged fh are refused; the table has a limit" {
    var t = try Handles.init(std.testing.allocator, 2);
    defer t.deinit(std.testing.allocator);
    const a = t.add(.{ .kind = .virtual_file }).?;
    const b = t.add(.{ .kind = .virtual_file }).?;
    try std.testing.expectEqual(null, t.add(.{ .kind = .virtual_file }));
    try std.testing.expect(t.find(a) != null);
    try std.testing.expect(t.remove(a));
    try std.testing.expect(!t.remove(a));
    try std.testing.expectEqual(null, t.find(a));
    try std.testing.expectEqual(null, t.find(0));
    try std.testing.expectEqual(null, t.find(b + 7));
    // Slots are initialized as they are handed out: both, here.
    try std.testing.expectEqual(2, t.used);
    const c = t.add(.{ .kind = .virtual_file }).?;
    try std.testing.expect(c != a);
}
