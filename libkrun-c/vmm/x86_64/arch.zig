//! The x86_64 backend of the VMM's architecture interface (vmm/arch.zig lists what every backend
//! provides): libkrun's memory map and RAM ranges, the virtio-MMIO slots and their GSIs, the
//! VM-wide KVM setup (TSS, in-kernel irqchip, PIT), the boot structures (command line, identity
//! page tables, GDT/IDT, MP table, zero page with its e820 table), each vCPU's boot state (CPUID,
//! long-mode registers, LAPIC LINT pins), and how a guest's reset tells a panic from a reboot.
//! The details live in layout.zig, boot.zig, mptable.zig and cpuid.zig beside this file.
const std = @import("std");
const GuestMemory = @import("guest_memory");
const arch = @import("../arch.zig");
const abi = @import("../kvm_abi.zig");
const kvm = @import("../kvm.zig");
const sys = @import("../../sys/linux.zig");
/// The memory map (vmm/kernel_loader.zig reads `Ram`, `himem_start`, `mmio_gap_start`).
pub const layout = @import("layout.zig");
const boot = @import("boot.zig");
const mptable = @import("mptable.zig");
const cpuid = @import("cpuid.zig");
const Pio = @import("../legacy/Pio.zig");
const Serial = @import("../legacy/Serial.zig");
const MmioBus = @import("../MmioBus.zig");
const Cmos = @import("../legacy/Cmos.zig");

const log = std.log.scoped(.vmm);

pub const name = "x86_64";

// ---- memory layout ------------------------------------------------------------------------

pub const Range = layout.Range;
pub const Ram = layout.Ram;
pub const ranges_max = layout.ranges_max;
pub const ram_mib_max = layout.ram_mib_max;
/// Where a raw kernel given by krun_set_kernel is mapped and entered.
pub const kernel_load_addr = layout.kernel_load_addr;

/// RAM for `ram_mib` MiB with a kernel bundle of `kernel_size` bytes mapped at `load_addr`.
pub const ramWithKernel = layout.ramWithBundle;
/// RAM for `ram_mib` MiB into which an ELF kernel is copied.
pub const ramPlain = layout.ramPlain;

/// The most vCPUs the boot structures can describe (the MP table's processor entries).
pub const vcpus_max: u32 = mptable.cpus_max;

// ---- virtio-MMIO slots --------------------------------------------------------------------

pub const device_slots_max: u32 = layout.virtio_slots_max;
/// Guest-physical base of MMIO slot `n` (0x1000 bytes each).
pub const deviceSlotAddr = layout.virtioSlotAddr;
/// The GSI (IOAPIC pin) of MMIO slot `n`.
pub const deviceSlotIrq = layout.virtioSlotIrq;

/// The MMIO window vmm/MmioBus.zig routes: exactly the virtio slots.
pub const mmio_window_base: u64 = layout.virtio_mmio_base;
pub const mmio_slot_size: u64 = layout.virtio_slot_size;
pub const mmio_window_slots: u32 = layout.virtio_slots_max;

// ---- the VM -------------------------------------------------------------------------------

pub const SetupError = arch.SetupError;

/// What the VM needs before devices attach: the TSS address, the in-kernel irqchip (PIC +
/// IOAPIC + LAPICs, so irqfds have somewhere to go) and the PIT.
pub fn setupVm(vm: kvm.Vm) SetupError!void {
    vm.setTssAddr(layout.tss_addr) catch |err| return failed("KVM_SET_TSS_ADDR", err);
    vm.createIrqchip() catch |err| return failed("KVM_CREATE_IRQCHIP", err);
    vm.createPit2() catch |err| return failed("KVM_CREATE_PIT2", err);
}

// ---- arch devices -------------------------------------------------------------------------

/// The port-I/O devices (i8042, CMOS, COM1-4) the vCPUs' PIO exits reach.
pub const LegacyBus = Pio;
/// vCPUs see port I/O (KVM_EXIT_IO) here.
pub const has_pio = true;
/// COM1's GSI (IOAPIC pin), for the serial console's irqfd.
pub const console_serial_irq: u32 = Serial.com_irqs[0];

/// Nothing: the legacy devices sit on the port-I/O bus, not the MMIO window.
pub fn attachLegacy(bus: *LegacyBus, mmio: *MmioBus) void {
    _ = bus;
    _ = mmio;
}

/// The legacy bus for a VM with `ram`: CMOS reports RAM below and above 4 GiB apart.
pub fn legacyBus(ram: *const Ram) LegacyBus {
    var below: u64 = 0;
    var above: u64 = 0;
    for (ram.slice()) |r| {
        if (r.start >= layout.mmio_gap_end) above += r.len else below += r.len;
    }
    return Pio.init(Cmos.init(below, above));
}

/// After every vCPU exists: nothing on x86_64 (the irqchip was complete at setupVm). aarch64
/// initializes its vgic here (CTRL_INIT needs all vCPUs).
pub fn finishVm(vm: kvm.Vm, vcpus: u32) SetupError!void {
    _ = vm;
    _ = vcpus;
}

// ---- boot ---------------------------------------------------------------------------------

pub const Cmdline = boot.Cmdline;

pub const Boot = arch.Boot(Cmdline, Range);
pub const BootError = arch.BootError;

/// Nothing to check before mapping a bundle here (kernel_loader.zig checks its range).
pub fn checkKernel(bytes: []const u8, ram_mib: u32) error{KernelInvalid}!void {
    _ = bytes;
    _ = ram_mib;
}

/// Writes what the kernel reads at entry: the command line, identity page tables, GDT/IDT, the
/// MP table and the zero page. The builder checked `vcpus` and mapped low RAM already.
pub fn writeBoot(mem: *const GuestMemory, ram: *const Ram, b: Boot) BootError!void {
    boot.storeCmdline(b.cmdline, mem, layout.cmdline_addr) catch unreachable; // tidy: low RAM always exists
    boot.writePageTables(mem) catch unreachable; // tidy: low RAM always exists
    boot.writeGdtIdt(mem) catch unreachable; // tidy: low RAM always exists
    mptable.write(mem, b.vcpus) catch unreachable; // tidy: vcpus <= vcpus_max was checked
    var e820: [ranges_max + 1]boot.E820Entry = undefined;
    const n = boot.e820FromRam(ram, &e820);
    const page = mem.slice(layout.zero_page_addr, boot.bp.size) catch unreachable; // tidy: low RAM always exists
    boot.buildZeroPage(page[0..boot.bp.size], .{
        .cmdline_addr = layout.cmdline_addr,
        .cmdline_len = @intCast(b.cmdline.len),
        .initramfs = b.initramfs,
        .e820 = e820[0..n],
    });
}

// ---- vCPUs --------------------------------------------------------------------------------

/// What every vCPU of one VM starts from, read once from /dev/kvm.
pub const VcpuTemplate = struct {
    supported: abi.kvm_cpuid2,
};

pub fn vcpuTemplate(k: kvm.Kvm, vm: kvm.Vm, t: *VcpuTemplate) SetupError!void {
    _ = vm;
    k.supportedCpuid(&t.supported) catch |err| return failed("KVM_GET_SUPPORTED_CPUID", err);
}

pub const VcpuBoot = struct {
    index: u32,
    count: u32,
    entry: u64,
    nested_virt: bool,
    /// The guest's RAM (aarch64 finds its device tree from it; unused here).
    ram: *const Ram,
};

/// Boot state for one vCPU: CPUID before sregs (strict KVM wants it so), then long-mode sregs,
/// registers, FPU, MSRs, and the LAPIC LINT pins.
pub fn setupVcpu(fd: kvm.VcpuFd, t: *const VcpuTemplate, b: VcpuBoot) sys.Error!void {
    const supported = &t.supported;
    var table: abi.kvm_cpuid2 = undefined;
    table.nent = supported.nent;
    table.padding = 0;
    @memcpy(table.entries[0..supported.nent], supported.entries[0..supported.nent]);
    cpuid.filter(table.entries[0..table.nent], .{ .id = b.index, .count = b.count, .nested_virt = b.nested_virt });
    try fd.setCpuid2(&table);

    const sregs = boot.longModeSregs(try fd.getSregs());
    try fd.setSregs(&sregs);
    const regs = boot.bootRegs(b.entry);
    try fd.setRegs(&regs);
    const fpu = boot.bootFpu();
    try fd.setFpu(&fpu);
    var msrs = boot.bootMsrs();
    try fd.setMsrs(&msrs);
    var lapic = try fd.getLapic();
    boot.setLint(&lapic);
    try fd.setLapic(&lapic);
}

/// Where a crashed guest was, for bug reports (logged at error level, the default). On AMD,
/// KVM resets the vCPU at a shutdown intercept: a triple fault then shows the reset state
/// (rip 0xfff0), and only the exit count says how far the guest got.
pub fn logCrashState(fd: kvm.VcpuFd, index: u32, outcome: []const u8, exits: u64) void {
    const regs = fd.getRegs() catch return;
    const sregs = fd.getSregs() catch return;
    log.err("vCPU {d} ended the VM ({s}): rip 0x{x} rsp 0x{x} rflags 0x{x} cs 0x{x} cr0 0x{x} cr2 0x{x} cr3 0x{x} cr4 0x{x} efer 0x{x} idt 0x{x}/{d} exits {d}", .{
        index,     outcome,   regs.rip,  regs.rsp,   regs.rflags,    sregs.cs.selector, sregs.cr0,
        sregs.cr2, sregs.cr3, sregs.cr4, sregs.efer, sregs.idt.base, sregs.idt.limit,   exits,
    });
}

// ---- the guest clock across a pause ----------------------------------------------------------

/// KVM's struct kvm_clock_data (linux/kvm.h): the guest's kvmclock in ns.
pub const Clock = extern struct {
    clock: u64 = 0,
    flags: u32 = 0,
    pad0: u32 = 0,
    realtime: u64 = 0,
    host_tsc: u64 = 0,
    pad: [4]u32 = @splat(0),
};
const KVM_SET_CLOCK = std.os.linux.IOCTL.IOW(0xAE, 0x7b, Clock);
const KVM_GET_CLOCK = std.os.linux.IOCTL.IOR(0xAE, 0x7c, Clock);

/// krun_vm_pause, vCPUs parked: the guest's clock now (null: KVM cannot say, KVM_CAP_ADJUST_CLOCK).
pub fn saveClock(vm: kvm.Vm) ?Clock {
    var c: Clock = .{};
    _ = sys.ioctl(vm.fd, KVM_GET_CLOCK, @intFromPtr(&c)) catch |err| {
        log.warn("KVM_GET_CLOCK: {t}: the guest clock runs on across the pause", .{err});
        return null;
    };
    return c;
}

/// krun_vm_resume, before the vCPUs run: the guest's clock goes on from where the pause
/// stopped it (as QEMU does across a stop), so the paused time does not pass in the guest and
/// its armed timers do not all fire at once.
pub fn restoreClock(vm: kvm.Vm, saved: Clock) void {
    const c: Clock = .{ .clock = saved.clock };
    _ = sys.ioctl(vm.fd, KVM_SET_CLOCK, @intFromPtr(&c)) catch |err|
        log.warn("KVM_SET_CLOCK: {t}: the guest clock jumps by the paused time", .{err});
}

test "kvm_clock_data layout" {
    try std.testing.expectEqual(48, @sizeOf(Clock));
    try std.testing.expectEqual(16, @offsetOf(Clock, "realtime"));
}

// ---- how the guest ended ------------------------------------------------------------------

/// Guest-physical address of the BIOS warm-reset flag. Linux's reboot path writes 0x1234 there
/// when its reboot mode is "warm" and 0 otherwise, just before the i8042 reset. Our command line
/// says `reboot=k,panic_warm`: only the panic path switches to warm mode, so the flag tells a
/// kernel panic from init's own reboot, with no kernel change.
pub const warm_reset_flag_addr: u64 = 0x472;
pub const warm_reset_flag: u16 = 0x1234;

/// PSCI's warm-reset flag in a reset event (aarch64); KVM on x86_64 never sets it.
pub const reset_flag_psci_reset2: u64 = 1;

/// Whether the guest's last reset came from its panic path.
pub fn resetWasPanic(mem: *const GuestMemory) bool {
    const flag = mem.read(u16, warm_reset_flag_addr) catch return false;
    return std.mem.littleToNative(u16, flag) == warm_reset_flag;
}

const failed = arch.setupFailed;

test "legacy bus: CMOS counts RAM below and above the MMIO gap apart; slots as the cmdline names them" {
    // 4 GiB of RAM with a 4 MiB bundle: RAM resumes at 4 GiB past the gap.
    const ram = ramWithKernel(4096, kernel_load_addr, 4 << 20);
    var bus = legacyBus(&ram);
    defer for (&bus.serial) |*com| com.deinit();
    var below: u64 = 0;
    var above: u64 = 0;
    for (ram.slice()) |r| {
        if (r.start >= layout.mmio_gap_end) above += r.len else below += r.len;
    }
    try std.testing.expect(above > 0 and below > 0);
    const expected = Cmos.init(below, above);
    try std.testing.expectEqualSlices(u8, &expected.regs, &bus.cmos.regs);
    try std.testing.expectEqual(@as(u64, 0xD000_0000), deviceSlotAddr(0));
    try std.testing.expectEqual(@as(u32, 5), deviceSlotIrq(0));
    try std.testing.expectEqual(@as(u32, 11), device_slots_max);
}
