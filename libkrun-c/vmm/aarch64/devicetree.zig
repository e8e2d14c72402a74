//! The aarch64 guest's device tree: what the kernel learns about the machine (RAM, vCPUs and
//! PSCI as their enable method, the GICv3, the arch timer's PPIs, the serial port, every
//! virtio-mmio device with its SPI, the command line and initrd in /chosen), written with
//! aarch64/Fdt.zig. Node names, compatibles and interrupt flags follow the kernel's bindings
//! (Documentation/devicetree/bindings: arm/cpus, interrupt-controller/arm,gic-v3, timer/arm,arch_timer,
//! arm/psci, serial/8250, virtio/mmio), as libkrun's aarch64 VMM describes its machine.
const std = @import("std");
const Fdt = @import("Fdt.zig");

pub const max_vcpus = 64;
pub const max_devices = 32;
/// Linux arm64 keeps COMMAND_LINE_SIZE (2048) bytes of bootargs.
pub const max_cmdline = 2048;

const phandle_gic: u32 = 1;
// Interrupt specifiers (arm,gic-v3 binding): <type number flags>.
const irq_type_spi: u32 = 0;
const irq_type_ppi: u32 = 1;
const irq_edge_rising: u32 = 1;
const irq_level_high: u32 = 4;
/// GICv3 maintenance interrupt and the arch timer's PPIs (secure, non-secure, virtual,
/// hypervisor), as INTID - 16.
const ppi_gic_maintenance: u32 = 9;
const timer_ppis = [_]u32{ 13, 14, 11, 10 };
/// 8250 input clock: the classic 1.8432 MHz (a baud-rate divisor of 1 means 115200).
const serial_clock_hz: u32 = 1_843_200;

pub const Device = struct {
    base: u64,
    size: u64,
    /// SPI number: GIC INTID - 32.
    spi: u32,
};

pub const Description = struct {
    ram_base: u64,
    ram_size: u64,
    vcpus: u32,
    gic_dist_base: u64,
    gic_dist_size: u64,
    gic_redist_base: u64,
    /// All redistributor frames together (vcpus × 128 KiB).
    gic_redist_size: u64,
    serial: ?Device = null,
    virtio: []const Device = &.{},
    cmdline: []const u8,
    initrd: ?struct { start: u64, size: u64 } = null,
};

pub const Error = Fdt.Error || error{InvalidDescription};

/// Writes the tree for `d` into `out` and returns the blob (a prefix of `out`).
pub fn write(d: Description, fdt: *Fdt, out: []u8) Error![]u8 {
    try validate(d);
    try fdt.beginNode("");
    try fdt.propString("compatible", "linux,dummy-virt");
    try fdt.propU32("#address-cells", 2);
    try fdt.propU32("#size-cells", 2);
    try fdt.propU32("interrupt-parent", phandle_gic);
    try writeCpus(fdt, d.vcpus);
    try writeMemory(fdt, d);
    try writeChosen(fdt, d);
    try writeGic(fdt, d);
    try writeTimer(fdt);
    try writePsci(fdt);
    if (d.serial) |s| try writeSerial(fdt, s);
    for (d.virtio) |v| try writeVirtio(fdt, v);
    try fdt.endNode();
    return fdt.finish(out);
}

fn validate(d: Description) Error!void {
    if (d.vcpus == 0 or d.vcpus > max_vcpus) return error.InvalidDescription;
    if (d.virtio.len > max_devices) return error.InvalidDescription;
    if (d.cmdline.len >= max_cmdline or std.mem.indexOfScalar(u8, d.cmdline, 0) != null) return error.InvalidDescription;
    if (d.ram_size == 0 or d.ram_base +% d.ram_size < d.ram_base) return error.InvalidDescription;
    // SPIs 0..987 (INTIDs 32..1019).
    if (d.serial) |s| if (s.spi > 987) return error.InvalidDescription;
    for (d.virtio) |v| if (v.spi > 987) return error.InvalidDescription;
}

fn nodeName(buf: []u8, name: []const u8, unit: u64) Error![]const u8 {
    return std.fmt.bufPrint(buf, "{s}@{x}", .{ name, unit }) catch error.FdtBadName;
}

fn writeCpus(fdt: *Fdt, vcpus: u32) Error!void {
    try fdt.beginNode("cpus");
    try fdt.propU32("#address-cells", 1);
    try fdt.propU32("#size-cells", 0);
    var i: u32 = 0;
    while (i < vcpus) : (i += 1) {
        var buf: [Fdt.max_name]u8 = undefined;
        try fdt.beginNode(try nodeName(&buf, "cpu", i));
        try fdt.propString("device_type", "cpu");
        try fdt.propString("compatible", "arm,arm-v8");
        try fdt.propString("enable-method", "psci");
        // MPIDR affinity: KVM gives vCPU n Aff0 = n % 16, Aff1 = n / 16 (arch/arm64/kvm/sys_regs.c reset_mpidr).
        try fdt.propU32("reg", (i / 16) << 8 | (i % 16));
        try fdt.endNode();
    }
    try fdt.endNode();
}

fn writeMemory(fdt: *Fdt, d: Description) Error!void {
    var buf: [Fdt.max_name]u8 = undefined;
    try fdt.beginNode(try nodeName(&buf, "memory", d.ram_base));
    try fdt.propString("device_type", "memory");
    try fdt.propU64s("reg", &.{ d.ram_base, d.ram_size });
    try fdt.endNode();
}

fn writeChosen(fdt: *Fdt, d: Description) Error!void {
    try fdt.beginNode("chosen");
    try fdt.propString("bootargs", d.cmdline);
    if (d.initrd) |r| {
        try fdt.propU64("linux,initrd-start", r.start);
        try fdt.propU64("linux,initrd-end", r.start + r.size);
    }
    if (d.serial) |s| {
        var buf: [Fdt.max_name + 1]u8 = undefined;
        const path = std.fmt.bufPrint(&buf, "/uart@{x}", .{s.base}) catch return error.FdtBadName;
        try fdt.propString("stdout-path", path);
    }
    try fdt.endNode();
}

fn writeGic(fdt: *Fdt, d: Description) Error!void {
    var buf: [Fdt.max_name]u8 = undefined;
    try fdt.beginNode(try nodeName(&buf, "intc", d.gic_dist_base));
    try fdt.propString("compatible", "arm,gic-v3");
    try fdt.propU32("#interrupt-cells", 3);
    try fdt.propEmpty("interrupt-controller");
    try fdt.propU64s("reg", &.{ d.gic_dist_base, d.gic_dist_size, d.gic_redist_base, d.gic_redist_size });
    try fdt.propU32("phandle", phandle_gic);
    try fdt.propCells("interrupts", &.{ irq_type_ppi, ppi_gic_maintenance, irq_level_high });
    try fdt.endNode();
}

fn writeTimer(fdt: *Fdt) Error!void {
    try fdt.beginNode("timer");
    try fdt.propString("compatible", "arm,armv8-timer");
    try fdt.propEmpty("always-on");
    var cells: [timer_ppis.len * 3]u32 = undefined;
    for (timer_ppis, 0..) |ppi, i| cells[i * 3 ..][0..3].* = .{ irq_type_ppi, ppi, irq_level_high };
    try fdt.propCells("interrupts", &cells);
    try fdt.endNode();
}

fn writePsci(fdt: *Fdt) Error!void {
    try fdt.beginNode("psci");
    try fdt.propStrings("compatible", &.{ "arm,psci-1.0", "arm,psci-0.2" });
    try fdt.propString("method", "hvc");
    try fdt.endNode();
}

fn writeSerial(fdt: *Fdt, s: Device) Error!void {
    var buf: [Fdt.max_name]u8 = undefined;
    try fdt.beginNode(try nodeName(&buf, "uart", s.base));
    try fdt.propString("compatible", "ns16550a");
    try fdt.propU64s("reg", &.{ s.base, s.size });
    try fdt.propU32("clock-frequency", serial_clock_hz);
    try fdt.propCells("interrupts", &.{ irq_type_spi, s.spi, irq_edge_rising });
    try fdt.endNode();
}

fn writeVirtio(fdt: *Fdt, v: Device) Error!void {
    var buf: [Fdt.max_name]u8 = undefined;
    try fdt.beginNode(try nodeName(&buf, "virtio_mmio", v.base));
    try fdt.propString("compatible", "virtio,mmio");
    try fdt.propU64s("reg", &.{ v.base, v.size });
    try fdt.propCells("interrupts", &.{ irq_type_spi, v.spi, irq_edge_rising });
    try fdt.propEmpty("dma-coherent");
    try fdt.endNode();
}
