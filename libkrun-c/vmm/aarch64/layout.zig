//! The aarch64 guest's physical address map, as libkrun's (Firecracker-derived) aarch64 VMM lays
//! it out (libkrun.md §2.4, §6): RAM from 2 GiB, where the raw Image is loaded (libkrunfw's
//! aarch64 bundle: load = entry = 0x8000_0000); the GICv3 distributor and redistributors just
//! below 1 GiB; MMIO devices (serial, virtio-mmio slots) from 1 GiB; the FDT at the end of RAM.
//! SPIs for devices start at 32 + `spi_base` in GIC INTID terms; the device tree names them by
//! SPI number (INTID - 32).
const std = @import("std");
const assert = std.debug.assert;
const guest_ram = @import("../ram.zig");

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

/// Where an initramfs must end in RAM that ends at `ram_end`: below the FDT's window, which
/// writeBoot fills after the initramfs is loaded (kernel_loader.zig's bound).
pub fn initramfsCeiling(ram_end: u64) u64 {
    return fdtAddr(ram_end - dram_start);
}

// ---- guest RAM (../ram.zig builds it from these addresses) ----------------------------------

pub const page_size = guest_ram.page_size;
/// 64 GiB of RAM from 2 GiB: inside KVM's default 40-bit IPA space.
pub const ram_mib_max: u32 = 64 * 1024;
/// Where a kernel bundle (libkrunfw, krun_set_kernel RAW: an arm64 Image) is mapped and entered.
pub const kernel_load_addr: u64 = kernel_start;
/// The lowest address a kernel or initramfs may take (kernel_loader.zig's bound).
pub const himem_start: u64 = dram_start;
/// The end of the RAM window (kernel_loader.zig's upper bound; there is no MMIO gap above RAM).
pub const mmio_gap_start: u64 = dram_start + (@as(u64, ram_mib_max) << 20) + (1 << 30);

pub const ranges_max = 2;

pub const Range = guest_ram.Range;
/// RAM as the guest sees it: one contiguous span from dram_start, as at most two KVM slots
/// (the kernel bundle mapped copy-on-write, then anonymous RAM).
pub const Ram = guest_ram.Ram(.{ .ranges_max = ranges_max, .ram_start = dram_start, .ram_mib_max = ram_mib_max });

/// The kernel bundle at `load_addr` (= dram_start), then `ram_mib` MiB of RAM after it (as on
/// x86_64, the bundle's pages come on top of the RAM asked for).
pub fn ramWithBundle(ram_mib: u32, load_addr: u64, kernel_size: u64) Ram {
    assert(load_addr == kernel_load_addr);
    return Ram.withKernel(ram_mib, load_addr, kernel_size);
}

pub const ramPlain = Ram.plain;

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
