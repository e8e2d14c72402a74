//! The aarch64 guest's physical address map, as libkrun's (Firecracker-derived) aarch64 VMM lays
//! it out (libkrun.md §2.4, §6): RAM from 2 GiB, where the raw Image is loaded (libkrunfw's
//! aarch64 bundle: load = entry = 0x8000_0000); the GICv3 distributor and redistributors just
//! below 1 GiB; MMIO devices (serial, virtio-mmio slots) from 1 GiB; the FDT at the end of RAM.
//! SPIs for devices start at 32 + `spi_base` in GIC INTID terms; the device tree names them by
//! SPI number (INTID - 32).
const std = @import("std");
const assert = std.debug.assert;

pub const dram_start: u64 = 0x8000_0000;
/// The kernel Image sits at the start of RAM (its header's text_offset is 0 since Linux 5.10).
pub const kernel_start: u64 = dram_start;
/// The device tree blob: at most this big, at the end of RAM, 2 MiB aligned (arm64 Linux maps
/// it with one block entry).
pub const fdt_max_size: u64 = 0x20_0000;

pub const mmio_start: u64 = 0x4000_0000; // 1 GiB
pub const gic_dist_size: u64 = 0x1_0000;
pub const gic_dist_base: u64 = mmio_start - gic_dist_size;
/// One redistributor region (RD_base + SGI_base frames) per vCPU.
pub const gic_redist_size_per_cpu: u64 = 0x2_0000;
pub fn gicRedistBase(vcpus: u32) u64 {
    return gic_dist_base - gic_redist_size_per_cpu * vcpus;
}

/// Device slots from mmio_start, 4 KiB each: slot 0 the serial port, then virtio-mmio devices.
pub const device_slot_size: u64 = 0x1000;
pub const max_device_slots = 32;
/// SPI numbers (device tree) for the slots: slot n gets SPI spi_base + n (INTID 32 + that).
pub const spi_base: u32 = 0;
pub const serial_slot = 0;

pub fn slotBase(slot: u32) u64 {
    return mmio_start + device_slot_size * slot;
}

/// Where the FDT goes for a guest with `ram_size` bytes of RAM: the last fdt_max_size bytes,
/// rounded down to 2 MiB.
pub fn fdtAddr(ram_size: u64) u64 {
    return (dram_start + ram_size - fdt_max_size) & ~@as(u64, fdt_max_size - 1);
}

// ---- guest RAM (the shape vmm/kernel_loader.zig and the builder share with x86_64) --------

pub const page_size: u64 = 4096;
/// 64 GiB of RAM from 2 GiB: inside KVM's default 40-bit IPA space.
pub const ram_mib_max: u32 = 64 * 1024;
/// Where a kernel bundle (libkrunfw, krun_set_kernel RAW: an arm64 Image) is mapped and entered.
pub const kernel_load_addr: u64 = kernel_start;
/// The lowest address a kernel or initramfs may take (kernel_loader.zig's bound).
pub const himem_start: u64 = dram_start;
/// The end of the RAM window (kernel_loader.zig's upper bound; there is no MMIO gap above RAM).
pub const mmio_gap_start: u64 = dram_start + (@as(u64, ram_mib_max) << 20) + (1 << 30);

pub const Range = struct {
    start: u64,
    len: u64,

    pub fn end(r: Range) u64 {
        return r.start + r.len;
    }
};

pub const ranges_max = 2;

/// RAM as the guest sees it: one contiguous span from dram_start, as at most two KVM slots
/// (the kernel bundle mapped copy-on-write, then anonymous RAM).
pub const Ram = struct {
    ranges: [ranges_max]Range = undefined,
    count: u8 = 0,
    kernel_index: ?u8 = null,

    pub fn slice(self: *const Ram) []const Range {
        return self.ranges[0..self.count];
    }

    fn push(self: *Ram, r: Range) void {
        assert(self.count < ranges_max and r.len > 0);
        self.ranges[self.count] = r;
        self.count += 1;
    }

    pub fn total(self: *const Ram) u64 {
        var sum: u64 = 0;
        for (self.slice()) |r| sum += r.len;
        return sum;
    }

    /// One past the last RAM byte (RAM is contiguous from dram_start).
    pub fn end(self: *const Ram) u64 {
        return if (self.count == 0) dram_start else self.ranges[self.count - 1].end();
    }

    pub fn ramContaining(self: *const Ram, addr: u64, len: u64) ?Range {
        for (self.slice(), 0..) |r, i| {
            if (self.kernel_index != null and self.kernel_index.? == i) continue;
            if (addr >= r.start and len <= r.len and addr - r.start <= r.len - len) return r;
        }
        return null;
    }
};

/// The kernel bundle at `load_addr` (= dram_start), then `ram_mib` MiB of RAM after it (as on
/// x86_64, the bundle's pages come on top of the RAM asked for).
pub fn ramWithBundle(ram_mib: u32, load_addr: u64, kernel_size: u64) Ram {
    assert(ram_mib > 0 and ram_mib <= ram_mib_max);
    assert(load_addr == kernel_load_addr and kernel_size > 0 and kernel_size % page_size == 0);
    var ram: Ram = .{};
    ram.kernel_index = 0;
    ram.push(.{ .start = load_addr, .len = kernel_size });
    ram.push(.{ .start = load_addr + kernel_size, .len = @as(u64, ram_mib) << 20 });
    return ram;
}

pub fn ramPlain(ram_mib: u32) Ram {
    assert(ram_mib > 0 and ram_mib <= ram_mib_max);
    var ram: Ram = .{};
    ram.push(.{ .start = dram_start, .len = @as(u64, ram_mib) << 20 });
    return ram;
}

test "layout: RAM is one span from 2 GiB, the bundle first" {
    const ram = ramWithBundle(128, kernel_load_addr, 20 << 20);
    try std.testing.expectEqual(@as(u64, dram_start + (148 << 20)), ram.end());
    try std.testing.expect(ram.ramContaining(dram_start, 4096) == null);
    try std.testing.expect(ram.ramContaining(dram_start + (20 << 20), 4096) != null);
    try std.testing.expectEqual(@as(u64, dram_start + (148 << 20) - fdt_max_size), fdtAddr(ram.end() - dram_start));
}

test "layout: the GIC sits below the device slots, the FDT inside RAM" {
    try std.testing.expectEqual(@as(u64, 0x3fff_0000), gic_dist_base);
    try std.testing.expectEqual(@as(u64, 0x3ffb_0000), gicRedistBase(2));
    try std.testing.expect(gicRedistBase(16) > 0x3000_0000);
    try std.testing.expectEqual(@as(u64, 0x8000_0000 + (128 << 20) - 0x20_0000), fdtAddr(128 << 20));
    try std.testing.expect(slotBase(max_device_slots) <= dram_start);
}
