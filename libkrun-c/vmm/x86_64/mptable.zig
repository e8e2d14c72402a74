//! The Intel MultiProcessor table (MP spec 1.4) at the EBDA: how an ACPI-less guest finds its
//! CPUs, the ISA bus, the IOAPIC and how IRQs and LINT pins are wired (libkrun's mptable.rs).
//! Built into a fixed buffer and copied into guest memory; checksums make each part sum to 0.
const std = @import("std");
const assert = std.debug.assert;
const GuestMemory = @import("guest_memory");
const layout = @import("layout.zig");

const apic_version: u8 = 0x14;
const cpu_stepping: u32 = 0x600;
const cpu_feature_apic: u32 = 0x200;
const cpu_feature_fpu: u32 = 0x001;
/// IOAPIC pins; one interrupt-source entry each.
pub const irq_count = 24;

const floating_size = 16;
const header_size = 44;
const processor_size = 20;
const small_entry_size = 8;

pub fn tableSize(cpus: u32) usize {
    return floating_size + header_size + cpus * processor_size +
        (1 + 1 + irq_count + 2) * small_entry_size;
}

/// The most vCPUs whose MP table still fits between the EBDA and 640 KiB.
pub const cpus_max: u32 = (layout.mptable_end - layout.mptable_addr - tableSize(0)) / processor_size;

pub const Error = error{TooManyCpus} || GuestMemory.Error;

/// Writes the MP table for `cpus` vCPUs (APIC ids 0..cpus-1) at `layout.mptable_addr`.
pub fn write(mem: *const GuestMemory, cpus: u32) Error!void {
    if (cpus == 0 or cpus > cpus_max) return error.TooManyCpus;
    const size = tableSize(cpus);
    const out = try mem.slice(layout.mptable_addr, size);
    build(out, cpus);
}

fn checksum(bytes: []const u8) u8 {
    var sum: u8 = 0;
    for (bytes) |b| sum +%= b;
    return 0 -% sum;
}

const Writer = struct {
    buf: []u8,
    at: usize = 0,

    fn int(w: *Writer, comptime T: type, v: T) void {
        std.mem.writeInt(T, w.buf[w.at..][0..@sizeOf(T)], v, .little);
        w.at += @sizeOf(T);
    }

    fn bytes(w: *Writer, s: []const u8) void {
        @memcpy(w.buf[w.at..][0..s.len], s);
        w.at += s.len;
    }
};

pub fn build(out: []u8, cpus: u32) void {
    assert(cpus > 0 and cpus <= cpus_max);
    assert(out.len == tableSize(cpus));
    @memset(out, 0);
    const ioapic_id: u8 = @intCast(cpus + 1);
    const table_addr: u32 = @intCast(layout.mptable_addr + floating_size);
    var w: Writer = .{ .buf = out };
    // Floating pointer structure.
    w.bytes("_MP_");
    w.int(u32, table_addr);
    w.int(u8, 1); // length in 16-byte units
    w.int(u8, 4); // spec revision 1.4
    w.at = floating_size; // checksum and feature bytes: 0, checksum filled below

    // Configuration table header.
    const header_at = w.at;
    w.bytes("PCMP");
    w.int(u16, @intCast(out.len - floating_size));
    w.int(u8, 4);
    w.int(u8, 0); // checksum, below
    w.bytes("FC      ");
    w.bytes("000000000000");
    w.int(u32, 0); // oem table pointer
    w.int(u16, 0); // oem table size
    w.int(u16, @intCast(cpus + 1 + 1 + irq_count + 2)); // entry count
    w.int(u32, layout.lapic_addr);
    w.int(u32, 0);
    assert(w.at == header_at + header_size);

    for (0..cpus) |i| {
        w.int(u8, 0); // processor
        w.int(u8, @intCast(i));
        w.int(u8, apic_version);
        w.int(u8, 1 | @as(u8, if (i == 0) 2 else 0)); // enabled, bootstrap
        w.int(u32, cpu_stepping);
        w.int(u32, cpu_feature_apic | cpu_feature_fpu);
        w.int(u64, 0);
    }
    w.int(u8, 1); // bus
    w.int(u8, 0);
    w.bytes("ISA   ");
    w.int(u8, 2); // IOAPIC
    w.int(u8, ioapic_id);
    w.int(u8, apic_version);
    w.int(u8, 1); // enabled
    w.int(u32, layout.ioapic_addr);
    for (0..irq_count) |irq| {
        w.int(u8, 3); // I/O interrupt source
        w.int(u8, 0); // INT
        w.int(u16, 0); // conforming polarity and trigger
        w.int(u8, 0); // source bus
        w.int(u8, @intCast(irq));
        w.int(u8, ioapic_id);
        w.int(u8, @intCast(irq));
    }
    // Local interrupt sources: ExtINT on LINT0 of the BSP, NMI on LINT1 of all CPUs.
    w.bytes(&.{ 4, 3, 0, 0, 0, 0, 0, 0 });
    w.bytes(&.{ 4, 1, 0, 0, 0, 0, 0xff, 1 });
    assert(w.at == out.len);

    out[header_at + 7] = checksum(out[header_at..]);
    out[10] = checksum(out[0..floating_size]);
}

const testing = std.testing;

test "MP table: structure, counts and checksums" {
    var low: [0xA0000]u8 align(4096) = @splat(0xaa);
    var mem: GuestMemory = .{};
    try mem.addRegion(0, &low);
    try write(&mem, 2);
    const t = low[layout.mptable_addr..][0..tableSize(2)];
    try testing.expectEqualStrings("_MP_", t[0..4]);
    try testing.expectEqual(@as(u32, 0x9fc10), std.mem.readInt(u32, t[4..8], .little));
    try testing.expectEqual(@as(u8, 4), t[9]);
    try testing.expectEqual(@as(u8, 0), checksum(t[0..16]) -% 0);
    var sum: u8 = 0;
    for (t[0..16]) |b| sum +%= b;
    try testing.expectEqual(@as(u8, 0), sum);
    sum = 0;
    for (t[16..]) |b| sum +%= b;
    try testing.expectEqual(@as(u8, 0), sum);
    try testing.expectEqualStrings("PCMP", t[16..20]);
    try testing.expectEqual(@as(u16, @intCast(t.len - 16)), std.mem.readInt(u16, t[20..22], .little));
    try testing.expectEqual(@as(u16, 2 + 2 + 24 + 2), std.mem.readInt(u16, t[16 + 34 ..][0..2], .little));
    try testing.expectEqual(@as(u32, 0xfee00000), std.mem.readInt(u32, t[16 + 36 ..][0..4], .little));
    // CPU 0 is the enabled BSP, CPU 1 enabled only.
    try testing.expectEqual(@as(u8, 0), t[60]);
    try testing.expectEqual(@as(u8, 3), t[63]);
    try testing.expectEqual(@as(u8, 1), t[81]);
    try testing.expectEqual(@as(u8, 1), t[83]);
    // Bus, then the IOAPIC with id cpus+1 at 0xfec00000.
    try testing.expectEqualStrings("ISA   ", t[102..108]);
    try testing.expectEqual(@as(u8, 2), t[108]);
    try testing.expectEqual(@as(u8, 3), t[109]);
    try testing.expectEqual(@as(u32, 0xfec00000), std.mem.readInt(u32, t[112..116], .little));
    // IRQ 5 goes to IOAPIC pin 5.
    const irq5 = t[116 + 5 * 8 ..][0..8];
    try testing.expectEqual(@as(u8, 3), irq5[0]);
    try testing.expectEqual(@as(u8, 5), irq5[5]);
    try testing.expectEqual(@as(u8, 5), irq5[7]);
    // The bytes after the table are untouched.
    try testing.expectEqual(@as(u8, 0xaa), low[layout.mptable_addr + t.len]);
    try testing.expectError(error.TooManyCpus, write(&mem, cpus_max + 1));
    try testing.expectError(error.TooManyCpus, write(&mem, 0));
    try write(&mem, cpus_max);
    try testing.expect(layout.mptable_addr + tableSize(cpus_max) <= layout.mptable_end);
}
