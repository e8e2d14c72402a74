//! The MMIO bus of a VM: the arch's device window (vmm/arch.zig: `mmio_window_base`, 4 KiB
//! slots; x86_64: the virtio-MMIO slots from 0xd0000000; aarch64: the serial port, then the
//! virtio slots, from 0x40000000), each slot served by one handler (a virtio transport, the
//! aarch64 serial). KVM handles the interrupt controllers' pages itself, so any other address
//! that exits here is unclaimed: reads give zeros, writes are dropped.
//! Slots are filled while the VM is built and never change afterwards, so lookups need no lock.
const std = @import("std");
const assert = std.debug.assert;
const arch = @import("arch.zig").current;

const window_base = arch.mmio_window_base;
const slot_size = arch.mmio_slot_size;
const slots_max = arch.mmio_window_slots;

const MmioBus = @This();

pub const Handler = struct {
    ctx: *anyopaque,
    read: *const fn (ctx: *anyopaque, offset: u64, data: []u8) void,
    write: *const fn (ctx: *anyopaque, offset: u64, data: []const u8) void,

    /// A handler over any `*T` with `read(offset, data)` and `write(offset, data)` methods
    /// (the virtio transport's shape), whatever integer type its offset is.
    pub fn of(comptime T: type, ptr: *T) Handler {
        const thunks = struct {
            fn read(ctx: *anyopaque, offset: u64, data: []u8) void {
                const self: *T = @ptrCast(@alignCast(ctx));
                self.read(@intCast(offset), data);
            }
            fn write(ctx: *anyopaque, offset: u64, data: []const u8) void {
                const self: *T = @ptrCast(@alignCast(ctx));
                self.write(@intCast(offset), data);
            }
        };
        return .{ .ctx = ptr, .read = thunks.read, .write = thunks.write };
    }
};

slots: [slots_max]?Handler = @splat(null),
/// Accesses nobody claimed (a guest poking at random addresses is worth a count, not a log).
unclaimed: std.atomic.Value(u64) = .init(0),

/// Puts `handler` on the slot at guest-physical `addr` (a slot's base, inside the window).
pub fn attach(self: *MmioBus, addr: u64, handler: Handler) void {
    assert(addr >= window_base and (addr - window_base) % slot_size == 0); // tidy: setup
    const slot = (addr - window_base) / slot_size;
    assert(slot < slots_max); // tidy: setup
    assert(self.slots[slot] == null); // tidy: setup
    self.slots[slot] = handler;
}

fn lookup(self: *const MmioBus, addr: u64, len: usize) ?struct { h: Handler, offset: u64 } {
    if (addr < window_base) return null;
    const rel = addr - window_base;
    const slot = rel / slot_size;
    if (slot >= slots_max) return null;
    const offset = rel % slot_size;
    // An access straddling two slots belongs to neither.
    if (offset + len > slot_size) return null;
    const h = self.slots[@intCast(slot)] orelse return null;
    return .{ .h = h, .offset = offset };
}

pub fn read(self: *MmioBus, addr: u64, data: []u8) void {
    assert(data.len <= 8); // tidy: KVM bounds an MMIO access to 8 bytes
    if (self.lookup(addr, data.len)) |t| return t.h.read(t.h.ctx, t.offset, data);
    _ = self.unclaimed.fetchAdd(1, .monotonic);
    @memset(data, 0);
}

pub fn write(self: *MmioBus, addr: u64, data: []const u8) void {
    assert(data.len <= 8); // tidy: KVM bounds an MMIO access to 8 bytes
    if (self.lookup(addr, data.len)) |t| return t.h.write(t.h.ctx, t.offset, data);
    _ = self.unclaimed.fetchAdd(1, .monotonic);
}

const Probe = struct {
    last_offset: u32 = 0,
    last_value: u8 = 0,
    pub fn read(self: *Probe, offset: u32, data: []u8) void {
        self.last_offset = offset;
        @memset(data, 0x5a);
    }
    pub fn write(self: *Probe, offset: u32, data: []const u8) void {
        self.last_offset = offset;
        self.last_value = data[0];
    }
};

test "slot routing, offsets, unclaimed and straddling accesses" {
    var bus: MmioBus = .{};
    var p: Probe = .{};
    bus.attach(0xd0002000, Handler.of(Probe, &p));
    var b: [4]u8 = undefined;
    bus.read(0xd0002070, &b);
    try std.testing.expectEqual(@as(u32, 0x70), p.last_offset);
    try std.testing.expectEqual([4]u8{ 0x5a, 0x5a, 0x5a, 0x5a }, b);
    bus.write(0xd0002050, &.{ 1, 0, 0, 0 });
    try std.testing.expectEqual(@as(u32, 0x50), p.last_offset);
    try std.testing.expectEqual(@as(u8, 1), p.last_value);
    bus.read(0xd0001000, &b); // empty slot
    try std.testing.expectEqual([4]u8{ 0, 0, 0, 0 }, b);
    bus.read(0xd0002ffe, &b); // straddles into slot 3
    bus.read(0xd000b000, &b); // past the last slot
    bus.write(0x1000, &b);
    try std.testing.expectEqual(@as(u64, 4), bus.unclaimed.load(.monotonic));
}
