//! The aarch64 guest's physical address map, as libkrun's (Firecracker-derived) aarch64 VMM lays
//! it out (libkrun.md §2.4, §6): RAM from 2 GiB, where the raw Image is loaded (libkrunfw's
//! aarch64 bundle: load = entry = 0x8000_0000); the GICv3 distributor and redistributors just
//! below 1 GiB; MMIO devices (serial, virtio-mmio slots) from 1 GiB; the FDT at the end of RAM.
//! SPIs for devices start at 32 + `spi_base` in GIC INTID terms; the device tree names them by
//! SPI number (INTID - 32).
const std = @import("std");

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

test "layout: the GIC sits below the device slots, the FDT inside RAM" {
    try std.testing.expectEqual(@as(u64, 0x3fff_0000), gic_dist_base);
    try std.testing.expectEqual(@as(u64, 0x3ffb_0000), gicRedistBase(2));
    try std.testing.expect(gicRedistBase(16) > 0x3000_0000);
    try std.testing.expectEqual(@as(u64, 0x8000_0000 + (128 << 20) - 0x20_0000), fdtAddr(128 << 20));
    try std.testing.expect(slotBase(max_device_slots) <= dram_start);
}
