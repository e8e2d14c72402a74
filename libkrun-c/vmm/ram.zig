//! Guest RAM as KVM memory slots, for every architecture: a short ordered list of ranges, one of
//! which may be the kernel bundle (libkrunfw's, mapped copy-on-write and kept out of the RAM the
//! loader may write), with RAM that would cross the arch's MMIO gap resumed above it. Pure
//! arithmetic, no mappings. Each arch's layout.zig gives only its addresses (`Map`) and keeps its
//! own asserts on where a bundle may go; x86_64: RAM from 0 with a gap below 4 GiB, aarch64: RAM
//! from 2 GiB, no gap.
const std = @import("std");
const assert = std.debug.assert;

pub const page_size: u64 = 4096;

pub const Range = struct {
    start: u64,
    len: u64,

    pub fn end(r: Range) u64 {
        return r.start + r.len;
    }
};

/// One architecture's RAM addresses.
pub const Map = struct {
    /// How many KVM slots RAM may take.
    ranges_max: u8,
    /// Where guest RAM begins.
    ram_start: u64,
    ram_mib_max: u32,
    /// An MMIO hole RAM skips (RAM reaching into it resumes at `gap.end()`), if the arch has one.
    gap: ?Range = null,
};

pub fn Ram(comptime map: Map) type {
    return struct {
        const Self = @This();

        ranges: [map.ranges_max]Range = undefined,
        count: u8 = 0,
        /// Index of the bundle range, if the kernel is a mapped bundle.
        kernel_index: ?u8 = null,

        pub fn slice(self: *const Self) []const Range {
            return self.ranges[0..self.count];
        }

        fn push(self: *Self, r: Range) void {
            assert(self.count < map.ranges_max);
            assert(r.len > 0);
            assert(self.count == 0 or self.ranges[self.count - 1].end() <= r.start);
            self.ranges[self.count] = r;
            self.count += 1;
        }

        /// Adds `len` bytes of RAM from `start`, splitting around the gap.
        fn pushRam(self: *Self, start: u64, len: u64) void {
            if (len == 0) return;
            const gap = map.gap orelse return self.push(.{ .start = start, .len = len });
            if (start < gap.start and start + len > gap.start) {
                const below = gap.start - start;
                self.push(.{ .start = start, .len = below });
                self.push(.{ .start = gap.end(), .len = len - below });
            } else if (start >= gap.start and start < gap.end()) {
                self.push(.{ .start = gap.end() + (start - gap.start), .len = len });
            } else {
                self.push(.{ .start = start, .len = len });
            }
        }

        /// Total RAM bytes, bundle included.
        pub fn total(self: *const Self) u64 {
            var sum: u64 = 0;
            for (self.slice()) |r| sum += r.len;
            return sum;
        }

        /// One past the last RAM byte.
        pub fn end(self: *const Self) u64 {
            return if (self.count == 0) map.ram_start else self.ranges[self.count - 1].end();
        }

        /// The RAM range (not the bundle) that holds [addr, addr+len), if any.
        pub fn ramContaining(self: *const Self, addr: u64, len: u64) ?Range {
            for (self.slice(), 0..) |r, i| {
                if (self.kernel_index != null and self.kernel_index.? == i) continue;
                if (addr >= r.start and len <= r.len and addr - r.start <= r.len - len) return r;
            }
            return null;
        }

        /// RAM below `load_addr` (if any), the bundle of `kernel_size` bytes at `load_addr`, then
        /// `ram_mib` MiB after it (as libkrun: the bundle's pages come on top of the RAM asked for).
        pub fn withKernel(ram_mib: u32, load_addr: u64, kernel_size: u64) Self {
            assert(ram_mib > 0 and ram_mib <= map.ram_mib_max);
            assert(load_addr % page_size == 0 and load_addr >= map.ram_start);
            assert(kernel_size > 0 and kernel_size % page_size == 0);
            if (map.gap) |gap| assert(load_addr + kernel_size <= gap.start);
            var ram: Self = .{};
            ram.pushRam(map.ram_start, load_addr - map.ram_start);
            ram.kernel_index = ram.count;
            ram.push(.{ .start = load_addr, .len = kernel_size });
            ram.pushRam(load_addr + kernel_size, @as(u64, ram_mib) << 20);
            return ram;
        }

        /// Plain RAM from the start (an ELF or Image kernel is copied into it).
        pub fn plain(ram_mib: u32) Self {
            assert(ram_mib > 0 and ram_mib <= map.ram_mib_max);
            var ram: Self = .{};
            ram.pushRam(map.ram_start, @as(u64, ram_mib) << 20);
            return ram;
        }
    };
}

const testing = std.testing;

test "ram: a bundle between RAM below and after it, a gap skipped" {
    const R = Ram(.{ .ranges_max = 4, .ram_start = 0, .ram_mib_max = 1024, .gap = .{ .start = 0x1000_0000, .len = 0x1000_0000 } });
    const ram = R.withKernel(256, 0x100_0000, 0x10_0000);
    try testing.expectEqual(@as(u8, 4), ram.count);
    try testing.expectEqual(@as(?u8, 1), ram.kernel_index);
    try testing.expectEqual(Range{ .start = 0x110_0000, .len = 0x1000_0000 - 0x110_0000 }, ram.ranges[2]);
    try testing.expectEqual(Range{ .start = 0x2000_0000, .len = 0x110_0000 }, ram.ranges[3]);
    try testing.expectEqual((256 << 20) + 0x110_0000, ram.total());
    try testing.expect(ram.ramContaining(0x100_0000, 1) == null);
    try testing.expect(ram.ramContaining(0xfff_f000, 0x2000) == null); // straddles the gap
}

test "ram: no gap, the bundle at the start of RAM" {
    const R = Ram(.{ .ranges_max = 2, .ram_start = 0x8000_0000, .ram_mib_max = 1024 });
    const ram = R.withKernel(128, 0x8000_0000, 0x20_0000);
    try testing.expectEqual(@as(u8, 2), ram.count);
    try testing.expectEqual(@as(?u8, 0), ram.kernel_index);
    try testing.expectEqual(@as(u64, 0x8000_0000 + (130 << 20)), ram.end());
    try testing.expectEqual(@as(u64, 0x8000_0000), R.plain(1).ranges[0].start);
    try testing.expectEqual(@as(u64, 0x8000_0000), (R{}).end());
}
