//! The aarch64 KVM backend of the VMM's architecture interface (vmm/arch.zig lists what every
//! backend provides), as libkrun's aarch64 VMM builds its machine: RAM from 2 GiB with the arm64
//! Image at its start (layout.zig), the in-kernel GICv3 (vgic) placed at setupVm and initialized
//! at finishVm, an ns16550a serial port on the MMIO window's slot 0 and the virtio-MMIO devices
//! on the slots after it (SPI n for slot n, raised through irqfds), the device tree at the end of
//! RAM (devicetree.zig: memory, cpus with PSCI, GIC, timer, serial, every virtio slot, bootargs),
//! vCPUs initialized with PSCI 0.2 (secondaries powered off until the guest's CPU_ON) and the
//! boot vCPU entered per the arm64 boot protocol (kvm_arm.zig). There is no port I/O.
const std = @import("std");
const GuestMemory = @import("guest_memory");
const arch = @import("../arch.zig");
const kvm = @import("../kvm.zig");
const sys = @import("../../sys/linux.zig");
const Serial = @import("../legacy/Serial.zig");
const MmioBus = @import("../MmioBus.zig");
const kvm_arm = @import("kvm_arm.zig");
const devicetree = @import("devicetree.zig");
const Fdt = @import("Fdt.zig");
const image = @import("image.zig");

const log = std.log.scoped(.vmm);

pub const name = "aarch64";

/// The memory map (vmm/kernel_loader.zig reads `Ram`, `himem_start`, `mmio_gap_start`).
pub const layout = @import("layout.zig");

// ---- memory layout ------------------------------------------------------------------------

pub const Range = layout.Range;
pub const Ram = layout.Ram;
pub const ranges_max = layout.ranges_max;
pub const ram_mib_max = layout.ram_mib_max;
pub const kernel_load_addr = layout.kernel_load_addr;
pub const ramWithKernel = layout.ramWithBundle;
pub const ramPlain = layout.ramPlain;

/// The FDT's cpu nodes (and our kernel's NR_CPUS is 16; a bigger count still boots, unused).
pub const vcpus_max: u32 = devicetree.max_vcpus;

// ---- the MMIO window and its slots ----------------------------------------------------------

pub const mmio_window_base: u64 = layout.mmio_start;
pub const mmio_slot_size: u64 = layout.device_slot_size;
pub const mmio_window_slots: u32 = layout.max_device_slots;

/// Slot 0 is the serial port; virtio device n is on slot n + 1.
pub const device_slots_max: u32 = layout.max_device_slots - 1;
pub fn deviceSlotAddr(n: u32) u64 {
    std.debug.assert(n < device_slots_max); // tidy: DeviceManager checks the count
    return layout.slotBase(n + 1);
}
/// The irqfd GSI of virtio device n: with the vgic's default routing GSI g is SPI g.
pub fn deviceSlotIrq(n: u32) u32 {
    std.debug.assert(n < device_slots_max); // tidy: DeviceManager checks the count
    return layout.spi_base + n + 1;
}
/// The serial console's irqfd GSI (SPI of slot 0).
pub const console_serial_irq: u32 = layout.spi_base + layout.serial_slot;

/// Interrupts the vgic implements: the 32 private ones and one SPI per slot, rounded up.
const gic_irqs: u32 = 32 + 64;
comptime {
    std.debug.assert(gic_irqs % 32 == 0 and layout.spi_base + layout.max_device_slots <= gic_irqs - 32);
}

// ---- the VM -------------------------------------------------------------------------------

pub const SetupError = arch.SetupError;

/// Nothing before the vCPUs exist: the vgic is created in finishVm, after them (the order
/// Firecracker and libkrun use), and irqfds are registered after that (the builder's order).
pub fn setupVm(vm: kvm.Vm) SetupError!void {
    _ = vm;
}

/// Once every vCPU exists: the GICv3 with its distributor and one redistributor frame pair per
/// vCPU, then CTRL_INIT. The device fd is closed after: the vgic lives as long as the VM.
pub fn finishVm(vm: kvm.Vm, vcpus: u32) SetupError!void {
    var dev: kvm_arm.CreateDevice = .{ .type = kvm_arm.KVM_DEV_TYPE_ARM_VGIC_V3, .fd = 0, .flags = 0 };
    _ = sys.ioctl(vm.fd, kvm_arm.KVM_CREATE_DEVICE, @intFromPtr(&dev)) catch |err| return failed("KVM_CREATE_DEVICE (GICv3)", err);
    const fd: sys.fd_t = @intCast(dev.fd);
    defer sys.close(fd);
    const dist: u64 = layout.gic_dist_base;
    const redist: u64 = layout.gicRedistBase(vcpus);
    const irqs: u32 = gic_irqs;
    setAttr(fd, kvm_arm.KVM_DEV_ARM_VGIC_GRP_ADDR, kvm_arm.KVM_VGIC_V3_ADDR_TYPE_DIST, @intFromPtr(&dist)) catch |err| return failed("vgic distributor", err);
    setAttr(fd, kvm_arm.KVM_DEV_ARM_VGIC_GRP_ADDR, kvm_arm.KVM_VGIC_V3_ADDR_TYPE_REDIST, @intFromPtr(&redist)) catch |err| return failed("vgic redistributors", err);
    setAttr(fd, kvm_arm.KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, @intFromPtr(&irqs)) catch |err| return failed("vgic NR_IRQS", err);
    setAttr(fd, kvm_arm.KVM_DEV_ARM_VGIC_GRP_CTRL, kvm_arm.KVM_DEV_ARM_VGIC_CTRL_INIT, 0) catch |err| return failed("vgic CTRL_INIT", err);
}

fn setAttr(fd: sys.fd_t, group: u32, attr: u64, addr: usize) sys.Error!void {
    const a: kvm_arm.DeviceAttr = .{ .flags = 0, .group = group, .attr = attr, .addr = addr };
    _ = try sys.ioctl(fd, kvm_arm.KVM_SET_DEVICE_ATTR, @intFromPtr(&a));
}

// ---- arch devices -------------------------------------------------------------------------

/// No port I/O on arm64: the one legacy device is the ns16550a on the MMIO window's slot 0
/// (`attachLegacy`), kept here so the Machine owns it as it owns x86_64's COM ports.
pub const LegacyBus = struct {
    serial: [1]Serial = .{.{ .base = 0 }},
    /// The MMIO side of serial[0]: 8 byte-wide registers at the slot's start, the rest of the
    /// slot reads as zero.
    port: SerialMmio = .{},

    pub const SerialMmio = struct {
        serial: ?*Serial = null,

        pub fn read(self: *SerialMmio, offset: u64, data: []u8) void {
            const s = self.serial orelse return @memset(data, 0);
            if (offset >= Serial.port_count) return @memset(data, 0);
            s.read(@intCast(offset), data);
        }

        pub fn write(self: *SerialMmio, offset: u64, data: []const u8) void {
            const s = self.serial orelse return;
            if (offset >= Serial.port_count) return;
            s.write(@intCast(offset), data);
        }
    };
};

/// vCPUs never see port I/O here (a KVM_EXIT_IO would be a KVM bug: it ends the VM).
pub const has_pio = false;

pub fn legacyBus(ram: *const Ram) LegacyBus {
    _ = ram;
    return .{};
}

/// Puts the serial port on the MMIO window (the bus must not move afterwards: it is the
/// Machine's field, as the MMIO bus is).
pub fn attachLegacy(bus: *LegacyBus, mmio: *MmioBus) void {
    bus.port.serial = &bus.serial[0];
    mmio.attach(layout.slotBase(layout.serial_slot), MmioBus.Handler.of(LegacyBus.SerialMmio, &bus.port));
}

// ---- boot ---------------------------------------------------------------------------------

/// The command line, carried in the device tree's /chosen/bootargs: libkrun's prolog minus the
/// x86 tokens (`reboot=k`, `no-kvmapf`), with `reboot=panic_warm` so a panic resets warm (PSCI
/// SYSTEM_RESET2) and init's reboot cold (reset_flag_psci_reset2). No `virtio_mmio.device=`
/// tokens: the device tree names every slot. 2048: arm64's COMMAND_LINE_SIZE.
pub const Cmdline = @import("../Cmdline.zig").Cmdline(.{
    .size_max = 2048,
    .prolog_head = "reboot=panic_warm panic=-1 panic_print=0 nomodule",
    .prolog_tail = "rootfstype=virtiofs rw quiet init=/init.krun",
});

pub const Boot = arch.Boot(Cmdline, Range);
pub const BootError = arch.BootError;

/// Checks a kernel bundle (libkrunfw's, or krun_set_kernel RAW) before it is mapped: an arm64
/// Image whose bss still fits with `ram_mib` of RAM after it and the device tree.
pub fn checkKernel(bytes: []const u8, ram_mib: u32) error{KernelInvalid}!void {
    const h = image.parse(bytes) catch {
        log.warn("the kernel is not an arm64 Image (no \"ARM\\x64\" header, text_offset != 0 or big-endian)", .{});
        return error.KernelInvalid;
    };
    const ram = std.mem.alignForward(u64, bytes.len, layout.page_size) + (@as(u64, ram_mib) << 20);
    if (!image.fits(h, bytes.len, ram, 2 * layout.fdt_max_size)) {
        log.warn("the arm64 Image needs {d} bytes; {d} MiB of RAM is too little", .{ h.image_size, ram_mib });
        return error.KernelInvalid;
    }
}

/// Writes the device tree at the end of RAM (`fdtAddr`): what the kernel reads at entry (x0).
pub fn writeBoot(mem: *const GuestMemory, ram: *const Ram, b: Boot) BootError!void {
    var virtio: [device_slots_max]devicetree.Device = undefined;
    if (b.devices > device_slots_max) return error.InvalidConfig;
    for (virtio[0..b.devices], 0..) |*d, n| d.* = .{
        .base = deviceSlotAddr(@intCast(n)),
        .size = layout.device_slot_size,
        .spi = deviceSlotIrq(@intCast(n)),
    };
    const fdt_addr = fdtAddr(ram);
    const out = mem.slice(fdt_addr, layout.fdt_max_size) catch return error.InvalidConfig;
    // 36 KiB: on the heap of no one (no allocator here), so static per call is not an option;
    // the builder runs on the caller's thread, whose stack takes it.
    var fdt: Fdt = .{};
    _ = devicetree.write(.{
        .ram_base = layout.dram_start,
        .ram_size = ram.end() - layout.dram_start,
        .vcpus = b.vcpus,
        .gic_dist_base = layout.gic_dist_base,
        .gic_dist_size = layout.gic_dist_size,
        .gic_redist_base = layout.gicRedistBase(b.vcpus),
        .gic_redist_size = layout.gic_redist_size_per_cpu * b.vcpus,
        .serial = .{ .base = layout.slotBase(layout.serial_slot), .size = layout.device_slot_size, .spi = console_serial_irq },
        .virtio = virtio[0..b.devices],
        .cmdline = b.cmdline.bytes(),
        .initrd = if (b.initramfs) |r| .{ .start = r.start, .size = r.len } else null,
    }, &fdt, out) catch |err| {
        log.warn("device tree: {t}", .{err});
        return error.InvalidConfig;
    };
}

/// Where writeBoot puts the FDT: x0 at entry (KVM's setupVcpu, HVF's vCPU 0).
pub fn fdtAddr(ram: *const Ram) u64 {
    return layout.fdtAddr(ram.end() - layout.dram_start);
}

// ---- vCPUs --------------------------------------------------------------------------------

/// The host's preferred vCPU target, read once per VM.
pub const VcpuTemplate = struct {
    init: kvm_arm.VcpuInit,
};

pub fn vcpuTemplate(k: kvm.Kvm, vm: kvm.Vm, t: *VcpuTemplate) SetupError!void {
    _ = k;
    t.init = std.mem.zeroes(kvm_arm.VcpuInit);
    _ = sys.ioctl(vm.fd, kvm_arm.KVM_ARM_PREFERRED_TARGET, @intFromPtr(&t.init)) catch |err| return failed("KVM_ARM_PREFERRED_TARGET", err);
}

pub const VcpuBoot = struct {
    index: u32,
    count: u32,
    entry: u64,
    nested_virt: bool,
    ram: *const Ram,
};

/// KVM_ARM_VCPU_INIT with PSCI 0.2 (vCPUs other than 0 powered off until the guest's
/// CPU_ON), then the boot vCPU's registers: EL1h with DAIF masked, PC = the Image, x0 = the FDT.
pub fn setupVcpu(fd: kvm.VcpuFd, t: *const VcpuTemplate, b: VcpuBoot) sys.Error!void {
    var init = t.init;
    init.features[0] |= 1 << kvm_arm.KVM_ARM_VCPU_PSCI_0_2;
    if (b.index != 0) init.features[0] |= 1 << kvm_arm.KVM_ARM_VCPU_POWER_OFF;
    _ = try sys.ioctl(fd.fd, kvm_arm.KVM_ARM_VCPU_INIT, @intFromPtr(&init));
    if (b.index != 0) return;
    try setReg(fd, kvm_arm.reg_pstate, kvm_arm.pstate_el1h_daif);
    try setReg(fd, kvm_arm.reg_pc, b.entry);
    try setReg(fd, kvm_arm.xReg(0), fdtAddr(b.ram));
    for (1..4) |n| try setReg(fd, kvm_arm.xReg(@intCast(n)), 0);
}

fn setReg(fd: kvm.VcpuFd, id: u64, value: u64) sys.Error!void {
    var v = value;
    const r: kvm_arm.OneReg = .{ .id = id, .addr = @intFromPtr(&v) };
    _ = try sys.ioctl(fd.fd, kvm_arm.KVM_SET_ONE_REG, @intFromPtr(&r));
}

fn getReg(fd: kvm.VcpuFd, id: u64) ?u64 {
    var v: u64 = 0;
    const r: kvm_arm.OneReg = .{ .id = id, .addr = @intFromPtr(&v) };
    _ = sys.ioctl(fd.fd, kvm_arm.KVM_GET_ONE_REG, @intFromPtr(&r)) catch return null;
    return v;
}

/// Where a crashed guest was, for bug reports (logged at error level, the default).
pub fn logCrashState(fd: kvm.VcpuFd, index: u32, outcome: []const u8, exits: u64) void {
    log.err("vCPU {d} ended the VM ({s}): pc 0x{x} sp 0x{x} pstate 0x{x} x0 0x{x} exits {d}", .{
        index,                                   outcome,
        getReg(fd, kvm_arm.reg_pc) orelse 0,     getReg(fd, kvm_arm.reg_sp) orelse 0,
        getReg(fd, kvm_arm.reg_pstate) orelse 0, getReg(fd, kvm_arm.xReg(0)) orelse 0,
        exits,
    });
}

// ---- how the guest ended ------------------------------------------------------------------

/// KVM_SYSTEM_EVENT_RESET's data[0] bit for a PSCI SYSTEM_RESET2 (a warm reset). Our command
/// line says `reboot=panic_warm`: only Linux's panic path resets warm (SYSTEM_RESET2 where KVM
/// offers PSCI 1.1), init's own reboot is a cold SYSTEM_RESET. The vCPU loop reports it.
pub const reset_flag_psci_reset2: u64 = 1;

/// arm64 keeps no panic flag in guest memory: the vCPU loop tells a panic (warm reset) apart.
pub fn resetWasPanic(mem: *const GuestMemory) bool {
    _ = mem;
    return false;
}

const failed = arch.setupFailed;

test "aarch64 writeBoot: the FDT at the end of RAM lists the serial and exactly the virtio slots in use" {
    const testing = std.testing;
    const ram = ramPlain(64);
    const host = try testing.allocator.alignedAlloc(u8, .fromByteUnits(4096), layout.fdt_max_size);
    defer testing.allocator.free(host);
    @memset(host, 0);
    var mem: GuestMemory = .{};
    try mem.addRegion(fdtAddr(&ram), host);
    var c: Cmdline = .{};
    try c.appendProlog("hvc0");
    try writeBoot(&mem, &ram, .{ .cmdline = &c, .vcpus = 2, .initramfs = null, .devices = 3 });
    try testing.expectEqual(@as(u32, Fdt.magic), std.mem.readInt(u32, host[0..4], .big));
    try testing.expectEqual(layout.dram_start + (64 << 20) - layout.fdt_max_size, fdtAddr(&ram));
    const blob = host[0..std.mem.readInt(u32, host[4..8], .big)];
    for ([_][]const u8{ "uart@40000000", "virtio_mmio@40001000", "virtio_mmio@40003000", "cpu@1", c.bytes() }) |s|
        try testing.expect(std.mem.indexOf(u8, blob, s) != null);
    try testing.expect(std.mem.indexOf(u8, blob, "virtio_mmio@40004000") == null);
    try testing.expectEqual(@as(u64, 0x4000_1000), deviceSlotAddr(0));
    try testing.expectEqual(@as(u32, 1), deviceSlotIrq(0));
    try testing.expectError(error.InvalidConfig, writeBoot(&mem, &ram, .{ .cmdline = &c, .vcpus = 2, .initramfs = null, .devices = device_slots_max + 1 }));
}

test "aarch64 checkKernel: an arm64 Image whose bss fits, nothing else" {
    var img: [image.header_size]u8 = @splat(0);
    try std.testing.expectError(error.KernelInvalid, checkKernel(&img, 128));
    std.mem.writeInt(u32, img[0x38..0x3c], image.magic, .little);
    std.mem.writeInt(u64, img[0x10..0x18], 40 << 20, .little);
    try checkKernel(&img, 128);
    try std.testing.expectError(error.KernelInvalid, checkKernel(&img, 16));
}

test "aarch64 cmdline: prolog without x86 tokens, no slots on the line, bounded, printable" {
    var c: Cmdline = .{};
    try c.appendProlog("hvc0");
    try c.appendVirtioMmio(0);
    try std.testing.expectEqualStrings("reboot=panic_warm panic=-1 panic_print=0 nomodule console=hvc0 " ++
        "rootfstype=virtiofs rw quiet init=/init.krun", c.bytes());
    try std.testing.expectError(error.CmdlineInvalidChar, c.append("a\nb"));
    var long: [Cmdline.size_max]u8 = @splat('x');
    try std.testing.expectError(error.CmdlineTooLong, c.append(&long));
}
