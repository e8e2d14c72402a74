//! The VMM's architecture interface: the one backend this build runs (`current`, chosen at
//! compile time from the target), and the list of declarations every backend provides. The
//! builder (vmm/builder.zig), the device manager (vmm/DeviceManager.zig) and the runtime
//! (vmm/Machine.zig) reach architecture-specific code only through `current`.
//!
//! A backend is a file exporting (x86_64/arch.zig is the reference):
//! - memory layout: `Range`, `Ram` (ranges, `slice()`, `kernel_index`), `ranges_max`,
//!   `ram_mib_max`, `kernel_load_addr`, `ramWithKernel(ram_mib, load_addr, kernel_size)`,
//!   `ramPlain(ram_mib)`, `vcpus_max`;
//! - virtio-MMIO slots: `device_slots_max`, `deviceSlotAddr(n)`, `deviceSlotIrq(n)` (the GSI
//!   an irqfd raises);
//! - the VM: `SetupError`, `setupVm(vm)` (interrupt controller and VM-wide state, before
//!   devices attach), `finishVm(vm, vcpus)` (once every vCPU exists);
//! - arch devices: `LegacyBus` and `legacyBus(ram)` (the port-I/O bus the vCPUs' PIO exits
//!   reach);
//! - boot: `Cmdline` (libkrun's prolog, `append`, `appendVirtioMmio`, `store`), `Boot`,
//!   `writeBoot(mem, ram, boot)` (everything the kernel reads at entry);
//! - vCPUs: `VcpuTemplate`, `vcpuTemplate(kvm, template)`, `VcpuBoot`,
//!   `setupVcpu(fd, template, boot)`, `logCrashState(fd, index, outcome, exits)` (the registers
//!   of a vCPU that ended the VM by crashing, for bug reports);
//! - the end: `resetWasPanic(mem)` (a guest reset that came from its panic path).
//!
//! aarch64/ holds the pieces of the second backend (address map, FDT, vgic and PSCI vCPU
//! setup); its arch.zig is not written yet, so other targets fail to compile here. What it
//! still needs, beyond exporting the list above from those pieces:
//! - the vgic's CTRL_INIT goes into `finishVm` (a no-op on x86_64);
//! - `writeBoot` writes the FDT (aarch64/devicetree.zig), which lists every virtio slot and
//!   the serial port: `Boot` then carries the slot count; its `Cmdline` has no x86 prolog
//!   (`reboot=k`, `no-kvmapf`) and no `virtio_mmio.device=` tokens (the FDT names the slots);
//! - there is no port I/O: `LegacyBus` is empty and the 8250 serial is an MMIO device on slot 0
//!   (aarch64/layout.zig), so vmm/Vcpu.zig's exit dispatch (PIO, the x86 crash registers) and
//!   vmm/kvm.zig / kvm_abi.zig (x86 register structs, irqchip/PIT/TSS ioctls) split per arch;
//! - `resetWasPanic`: arm64 Linux has no warm-reset flag; PSCI SYSTEM_RESET after a panic
//!   needs another signal (e.g. the panic notifier's pvpanic, or a kernel cmdline choice);
//! - the kernel loader takes arm64 `Image` files (kernel_loader.zig reads x86 ELF and bundles).
const builtin = @import("builtin");

pub const current = switch (builtin.cpu.arch) {
    .x86_64 => @import("x86_64/arch.zig"),
    else => @compileError("zkrun's VMM has only an x86_64 backend today (vmm/aarch64/ holds the pieces of the next)"),
};

/// Every declaration a backend must export (checked at compile time, below).
pub const required = [_][]const u8{
    "Range",         "Ram",        "ranges_max",    "ram_mib_max",      "kernel_load_addr",
    "ramWithKernel", "ramPlain",   "vcpus_max",     "device_slots_max", "deviceSlotAddr",
    "deviceSlotIrq", "SetupError", "setupVm",       "LegacyBus",        "legacyBus",
    "Cmdline",       "Boot",       "writeBoot",     "VcpuTemplate",     "vcpuTemplate",
    "VcpuBoot",      "setupVcpu",  "logCrashState", "finishVm",         "resetWasPanic",
};

comptime {
    for (required) |decl| {
        if (!@hasDecl(current, decl)) @compileError("arch backend " ++ current.name ++ " lacks " ++ decl);
    }
}
