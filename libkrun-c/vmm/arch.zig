//! The VMM's architecture interface: the one backend this build runs (`current`, chosen at
//! compile time from the target: x86_64/arch.zig or aarch64/arch.zig), and the list of
//! declarations every backend provides. The builder (vmm/builder.zig), the device manager
//! (vmm/DeviceManager.zig), the MMIO bus, the kernel loader, the vCPU loop and the runtime
//! (vmm/Machine.zig) reach architecture-specific code only through `current`.
//!
//! A backend is a file exporting:
//! - memory layout: `layout` (the memory map kernel_loader.zig reads), `Range`, `Ram` (ranges,
//!   `slice()`, `kernel_index`), `ranges_max`, `ram_mib_max`, `kernel_load_addr`,
//!   `ramWithKernel(ram_mib, load_addr, kernel_size)`, `ramPlain(ram_mib)`, `vcpus_max`;
//! - the MMIO window vmm/MmioBus.zig routes (`mmio_window_base`, `mmio_slot_size`,
//!   `mmio_window_slots`) and its virtio slots: `device_slots_max`, `deviceSlotAddr(n)`,
//!   `deviceSlotIrq(n)` (the GSI an irqfd raises);
//! - the VM: `SetupError`, `setupVm(vm)` (before the vCPUs: x86_64's irqchip), `finishVm(vm,
//!   vcpus)` (once every vCPU exists, before any irqfd: aarch64's vgic);
//! - arch devices: `LegacyBus` and `legacyBus(ram)` (a `serial` array: the console's UART),
//!   `has_pio` (whether vCPUs see port I/O), `attachLegacy(bus, mmio)` (aarch64: the ns16550a on
//!   the MMIO window), `console_serial_irq`;
//! - boot: `checkKernel(bytes, ram_mib)` (a bundle before it is mapped), `Cmdline` (libkrun's
//!   prolog, `append`, `appendVirtioMmio`), `Boot`, `BootError`, `writeBoot(mem, ram, boot)`
//!   (everything the kernel reads at entry: x86_64's zero page and tables, aarch64's FDT);
//! - vCPUs: `VcpuTemplate`, `vcpuTemplate(kvm, vm, template)`, `VcpuBoot`,
//!   `setupVcpu(fd, template, boot)`, `logCrashState(fd, index, outcome, exits)` (the registers
//!   of a vCPU that ended the VM by crashing, for bug reports);
//! - the end: `resetWasPanic(mem)` (x86_64: the BIOS warm-reset flag) and
//!   `reset_flag_psci_reset2` (aarch64: a panic resets warm through PSCI SYSTEM_RESET2, which
//!   vmm/Vcpu.zig reads from the reset event).
//! Backends build `Ram` with vmm/ram.zig and `Cmdline` with vmm/Cmdline.zig, giving only their
//! addresses, size and prolog; `SetupError`, `BootError` and `Boot` are the ones below, which
//! every backend re-exports, and `setupFailed` maps their KVM errors.
//!
//! Not done on aarch64 yet: krun_set_kernel's ELF format (an arm64 vmlinux; RAW takes an
//! Image), nested virtualization, and a run on macOS (vmm/hvf/ and docs/HVF.md: the
//! Hypervisor.framework backend builds a VM there, never run on a Mac).
const std = @import("std");
const builtin = @import("builtin");
const sys = @import("../sys/linux.zig");

pub const current = switch (builtin.cpu.arch) {
    .x86_64 => @import("x86_64/arch.zig"),
    .aarch64 => @import("aarch64/arch.zig"),
    else => @compileError("zkrun's VMM has KVM backends for x86_64 and aarch64 only"),
};

/// Every declaration a backend must export (checked at compile time, below).
pub const required = [_][]const u8{
    "Range",              "Ram",          "ranges_max",       "ram_mib_max",      "kernel_load_addr",
    "ramWithKernel",      "ramPlain",     "vcpus_max",        "device_slots_max", "deviceSlotAddr",
    "deviceSlotIrq",      "SetupError",   "setupVm",          "LegacyBus",        "legacyBus",
    "Cmdline",            "Boot",         "writeBoot",        "VcpuTemplate",     "vcpuTemplate",
    "VcpuBoot",           "setupVcpu",    "logCrashState",    "finishVm",         "resetWasPanic",
    "layout",             "has_pio",      "mmio_window_base", "mmio_slot_size",   "mmio_window_slots",
    "console_serial_irq", "attachLegacy", "BootError",        "checkKernel",      "reset_flag_psci_reset2",
};

/// The error of every backend's VM and vCPU setup (`setupVm`, `finishVm`, `vcpuTemplate`).
pub const SetupError = error{ KvmFailed, OutOfMemory, SystemResources };

/// A setup call that failed: logged with `what`, and mapped to a SetupError.
pub fn setupFailed(what: []const u8, err: anyerror) SetupError {
    std.log.scoped(.vmm).err("{s}: {t}", .{ what, err });
    return sys.shortage(err) orelse error.KvmFailed;
}

pub const BootError = error{InvalidConfig};

/// What `writeBoot` writes for: a backend's `Boot` is `Boot(its Cmdline, its Range)`.
pub fn Boot(comptime Cmdline: type, comptime Range: type) type {
    return struct {
        cmdline: *const Cmdline,
        vcpus: u32,
        initramfs: ?Range,
        /// virtio slots in use: aarch64's device tree lists each (x86_64 names them on the
        /// command line instead).
        devices: u32,
    };
}

comptime {
    for (required) |decl| {
        if (!@hasDecl(current, decl)) @compileError("arch backend " ++ current.name ++ " lacks " ++ decl);
    }
}
