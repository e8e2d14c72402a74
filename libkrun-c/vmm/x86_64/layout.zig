//! x86_64 guest physical memory map (libkrun's, see libkrun.md §2.1) and the RAM ranges a VM
//! gets (built by ../ram.zig from these addresses): pure arithmetic, unit tested on its own.
const std = @import("std");
const assert = std.debug.assert;
const guest_ram = @import("../ram.zig");

pub const gdt_addr: u64 = 0x500;
pub const idt_addr: u64 = 0x520;
pub const zero_page_addr: u64 = 0x7000;
pub const boot_stack_pointer: u64 = 0x8ff0;
pub const pml4_addr: u64 = 0x9000;
pub const pdpt_addr: u64 = 0xA000;
pub const pd_addr: u64 = 0xB000;
pub const cmdline_addr: u64 = 0x20000;
/// The guest kernel keeps COMMAND_LINE_SIZE bytes (NUL included) on x86.
pub const cmdline_size_max: usize = 2048;
/// MP table at the EBDA; RAM below it is the first e820 entry.
pub const mptable_addr: u64 = 0x9FC00;
pub const mptable_end: u64 = 0xA0000;
pub const himem_start: u64 = 0x100000;
/// libkrunfw's bundle load address (CONFIG_PHYSICAL_START).
pub const kernel_load_addr: u64 = 0x1000000;
pub const mmio_gap_start: u64 = 0xD000_0000;
pub const mmio_gap_end: u64 = 1 << 32;
pub const virtio_mmio_base: u64 = mmio_gap_start;
pub const virtio_slot_size: u64 = 0x1000;
pub const virtio_irq_base: u32 = 5;
pub const virtio_irq_max: u32 = 15;
pub const virtio_slots_max: u32 = virtio_irq_max - virtio_irq_base + 1;
pub const ioapic_addr: u32 = 0xFEC0_0000;
pub const lapic_addr: u32 = 0xFEE0_0000;
pub const tss_addr: u32 = 0xFFFB_D000;
/// Page-table identity map covers this much (512 × 2 MiB).
pub const identity_map_size: u64 = 1 << 30;

pub const page_size = guest_ram.page_size;
/// 16 MiB below the bundle + requested RAM must fit below the 64-bit space we map.
pub const ram_mib_max: u32 = 64 * 1024;
pub const ranges_max = 4;

pub const Range = guest_ram.Range;
/// Guest RAM as up to `ranges_max` ranges. With a libkrunfw bundle the kernel sits in its own
/// range at `kernel_load_addr`, between RAM below it and RAM after it (libkrun adds 16 MiB and
/// the kernel size to the requested RAM); RAM that would cross the MMIO gap resumes at 4 GiB.
pub const Ram = guest_ram.Ram(.{
    .ranges_max = ranges_max,
    .ram_start = 0,
    .ram_mib_max = ram_mib_max,
    .gap = .{ .start = mmio_gap_start, .len = mmio_gap_end - mmio_gap_start },
});

/// RAM for a libkrunfw bundle of `kernel_size` bytes mapped at `load_addr` (page aligned).
pub fn ramWithBundle(ram_mib: u32, load_addr: u64, kernel_size: u64) Ram {
    assert(load_addr >= himem_start and load_addr < mmio_gap_start);
    return Ram.withKernel(ram_mib, load_addr, kernel_size);
}

/// Where an initramfs must end in RAM that ends at `ram_end`: anywhere in RAM (the boot
/// structures live below 1 MiB; kernel_loader.zig's bound).
pub fn initramfsCeiling(ram_end: u64) u64 {
    return ram_end;
}

/// Plain RAM from 0 (an external kernel is copied into it).
pub const ramPlain = Ram.plain;

pub fn virtioSlotAddr(slot: u32) u64 {
    assert(slot < virtio_slots_max);
    return virtio_mmio_base + @as(u64, slot) * virtio_slot_size;
}

pub fn virtioSlotIrq(slot: u32) u32 {
    assert(slot < virtio_slots_max);
    return virtio_irq_base + slot;
}

const testing = std.testing;

test "bundle layout: 16 MiB, the kernel, then the requested RAM" {
    const ram = ramWithBundle(256, kernel_load_addr, 0x1400000);
    try testing.expectEqual(@as(u8, 3), ram.count);
    try testing.expectEqual(@as(?u8, 1), ram.kernel_index);
    try testing.expectEqual(Range{ .start = 0, .len = 0x1000000 }, ram.ranges[0]);
    try testing.expectEqual(Range{ .start = 0x1000000, .len = 0x1400000 }, ram.ranges[1]);
    try testing.expectEqual(Range{ .start = 0x2400000, .len = 256 << 20 }, ram.ranges[2]);
    try testing.expectEqual((256 << 20) + 0x1000000 + 0x1400000, ram.total());
    try testing.expect(ram.ramContaining(0x1000000, 1) == null);
    try testing.expectEqual(@as(u64, 0x2400000), ram.ramContaining(0x3000000, 0x1000).?.start);
}

test "RAM crossing the MMIO gap resumes at 4 GiB" {
    const ram = ramPlain(4096);
    try testing.expectEqual(@as(u8, 2), ram.count);
    try testing.expectEqual(Range{ .start = 0, .len = mmio_gap_start }, ram.ranges[0]);
    try testing.expectEqual(Range{ .start = 1 << 32, .len = (4096 << 20) - mmio_gap_start }, ram.ranges[1]);
    try testing.expectEqual(@as(u64, 4096) << 20, ram.total());
    const small = ramPlain(128);
    try testing.expectEqual(@as(u8, 1), small.count);
    try testing.expectEqual(@as(u64, 0xd0001000), virtioSlotAddr(1));
    try testing.expectEqual(@as(u32, 15), virtioSlotIrq(10));
}
