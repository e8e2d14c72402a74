//! Guest physical memory as seen by the VMM: a fixed, small table of regions (guest address →
//! host mapping). Every access a device makes goes through the checked accessors here; a guest
//! address or length that is out of range, overflows, or straddles two regions is an error,
//! never a crash and never a raw pointer computation in device code.
//!
//! The table is built once when the VM is built (no allocation afterwards). Tests build it over
//! ordinary host buffers, so queue and device logic run without /dev/kvm.
const std = @import("std");
const assert = std.debug.assert;

const GuestMemory = @This();

/// x86_64 needs at most: low RAM, the kernel bundle, RAM above it, RAM above 4 GiB, SHM windows.
pub const regions_max = 8;

pub const Region = struct {
    guest_addr: u64,
    host: [*]u8,
    len: u64,

    fn contains(r: Region, addr: u64, len: u64) bool {
        if (addr < r.guest_addr) return false;
        const off = addr - r.guest_addr;
        return off <= r.len and len <= r.len - off;
    }
};

pub const Error = error{GuestAddressInvalid};

regions: [regions_max]Region = undefined,
count: u8 = 0,

/// Adds a region. Regions must not overlap; the caller owns the host mapping.
pub fn addRegion(self: *GuestMemory, guest_addr: u64, host: []u8) error{ TooManyRegions, Overlap }!void {
    assert(host.len > 0); // tidy: host mapping, ours
    if (self.count == regions_max) return error.TooManyRegions;
    const end = std.math.add(u64, guest_addr, host.len) catch return error.Overlap;
    for (self.regions[0..self.count]) |r| {
        if (guest_addr < r.guest_addr + r.len and r.guest_addr < end) return error.Overlap;
    }
    self.regions[self.count] = .{ .guest_addr = guest_addr, .host = host.ptr, .len = host.len };
    self.count += 1;
}

pub fn regionSlice(self: *const GuestMemory) []const Region {
    return self.regions[0..self.count];
}

/// The host bytes backing [addr, addr+len). The range must lie inside one region.
pub fn slice(self: *const GuestMemory, addr: u64, len: u64) Error![]u8 {
    for (self.regions[0..self.count]) |r| {
        if (r.contains(addr, len)) {
            const off: usize = @intCast(addr - r.guest_addr);
            return r.host[off..][0..@intCast(len)];
        }
    }
    return error.GuestAddressInvalid;
}

/// A naturally aligned pointer into guest memory, for ring indices that need atomic access.
pub fn ptr(self: *const GuestMemory, comptime T: type, addr: u64) Error!*T {
    if (addr % @alignOf(T) != 0) return error.GuestAddressInvalid;
    const bytes = try self.slice(addr, @sizeOf(T));
    return @ptrCast(@alignCast(bytes.ptr));
}

/// Reads a plain value (any alignment) from guest memory.
pub fn read(self: *const GuestMemory, comptime T: type, addr: u64) Error!T {
    var value: T = undefined;
    @memcpy(std.mem.asBytes(&value), try self.slice(addr, @sizeOf(T)));
    return value;
}

/// Writes a plain value (any alignment) to guest memory.
pub fn write(self: *const GuestMemory, comptime T: type, addr: u64, value: T) Error!void {
    @memcpy(try self.slice(addr, @sizeOf(T)), std.mem.asBytes(&value));
}

pub fn readBytes(self: *const GuestMemory, addr: u64, dest: []u8) Error!void {
    @memcpy(dest, try self.slice(addr, dest.len));
}

pub fn writeBytes(self: *const GuestMemory, addr: u64, src: []const u8) Error!void {
    @memcpy(try self.slice(addr, src.len), src);
}

test "accesses inside a region succeed, everything else is an error" {
    var low: [0x1000]u8 align(8) = @splat(0);
    var high: [0x2000]u8 align(8) = @splat(0);
    var mem: GuestMemory = .{};
    try mem.addRegion(0, &low);
    try mem.addRegion(0x10000, &high);
    try std.testing.expectError(error.Overlap, mem.addRegion(0x800, &high));

    try mem.write(u32, 0x10ffc, 0xdeadbeef);
    try std.testing.expectEqual(@as(u32, 0xdeadbeef), try mem.read(u32, 0x10ffc));
    try std.testing.expectEqual(@as(u8, 0xef), high[0xffc]);
    // Last byte of a region is fine, one past is not; no straddling; no overflow.
    _ = try mem.slice(0xfff, 1);
    try std.testing.expectError(error.GuestAddressInvalid, mem.slice(0x1000, 1));
    try std.testing.expectError(error.GuestAddressInvalid, mem.slice(0xff0, 0x20));
    try std.testing.expectError(error.GuestAddressInvalid, mem.slice(std.math.maxInt(u64), 2));
    try std.testing.expectError(error.GuestAddressInvalid, mem.slice(0x10000, std.math.maxInt(u64)));
    try std.testing.expectError(error.GuestAddressInvalid, mem.ptr(u16, 0x10001));
    const p = try mem.ptr(u16, 0x10002);
    p.* = 7;
    try std.testing.expectEqual(@as(u8, 7), high[2]);
}
