//! arm64 KVM: the ioctls and structures the aarch64 backend needs beyond the generic ones
//! (include/uapi/linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h), and the steps libkrun's aarch64
//! VMM takes to make a VM bootable: the in-kernel GICv3 (vgic: distributor and redistributor
//! addresses, SPI count, then CTRL_INIT once every vCPU exists), vCPU init with PSCI 0.2 (the
//! secondaries powered off until the guest's PSCI CPU_ON), and the boot vCPU's registers for the
//! arm64 Image protocol (Documentation/arch/arm64/booting.rst: x0 = the FDT's address, x1-x3 = 0,
//! EL1h with DAIF masked, PC = the Image). The arch timer needs nothing: KVM provides it once the
//! vgic is initialized. Every call returns the errno as an error; nothing here asserts.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");

// ---- ioctl numbers (_IO/_IOR/_IOW/_IOWR on 0xAE) -----------------------------------------
pub const KVM_GET_API_VERSION = 0xAE00;
pub const KVM_CREATE_VM = 0xAE01;
pub const KVM_GET_VCPU_MMAP_SIZE = 0xAE04;
pub const KVM_CREATE_VCPU = 0xAE41;
pub const KVM_SET_USER_MEMORY_REGION = 0x4020AE46;
pub const KVM_RUN = 0xAE80;
pub const KVM_GET_ONE_REG = 0x4010AEAB;
pub const KVM_SET_ONE_REG = 0x4010AEAC;
pub const KVM_ARM_VCPU_INIT = 0x4020AEAE;
pub const KVM_ARM_PREFERRED_TARGET = 0x8020AEAF;
pub const KVM_CREATE_DEVICE = 0xC00CAEE0;
pub const KVM_SET_DEVICE_ATTR = 0x4018AEE1;
pub const KVM_IRQ_LINE = 0x4008AE61;

pub const KVM_ARM_VCPU_POWER_OFF = 0;
pub const KVM_ARM_VCPU_PSCI_0_2 = 2;

pub const KVM_DEV_TYPE_ARM_VGIC_V3 = 7;
pub const KVM_DEV_ARM_VGIC_GRP_ADDR = 0;
pub const KVM_DEV_ARM_VGIC_GRP_NR_IRQS = 3;
pub const KVM_DEV_ARM_VGIC_GRP_CTRL = 4;
pub const KVM_DEV_ARM_VGIC_CTRL_INIT = 0;
pub const KVM_VGIC_V3_ADDR_TYPE_DIST = 2;
pub const KVM_VGIC_V3_ADDR_TYPE_REDIST = 3;

pub const KVM_EXIT_MMIO = 6;
pub const KVM_EXIT_FAIL_ENTRY = 9;
pub const KVM_EXIT_INTERNAL_ERROR = 17;
pub const KVM_EXIT_SYSTEM_EVENT = 24;
pub const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
pub const KVM_SYSTEM_EVENT_RESET = 2;

/// KVM_IRQ_LINE's irq field on arm64: type (bits 24-27: 1 = SPI) and the INTID.
pub fn irqLineSpi(spi: u32) u32 {
    return (1 << 24) | (spi + 32);
}

pub const VcpuInit = extern struct { target: u32, features: [7]u32 };
pub const OneReg = extern struct { id: u64, addr: u64 };
pub const CreateDevice = extern struct { type: u32, fd: u32, flags: u32 };
pub const DeviceAttr = extern struct { flags: u32, group: u32, attr: u64, addr: u64 };
pub const MemoryRegion = extern struct { slot: u32, flags: u32, guest_phys_addr: u64, memory_size: u64, userspace_addr: u64 };
pub const IrqLevel = extern struct { irq: u32, level: u32 };
/// struct kvm_run's MMIO exit, at byte 32.
pub const RunMmio = extern struct { phys_addr: u64, data: [8]u8, len: u32, is_write: u8 };
pub const RunSystemEvent = extern struct { type: u32, ndata: u32, data: [16]u64 };
pub const run_exit_reason_offset = 8;
pub const run_union_offset = 32;

comptime {
    std.debug.assert(@sizeOf(VcpuInit) == 32);
    std.debug.assert(@sizeOf(OneReg) == 16);
    std.debug.assert(@sizeOf(CreateDevice) == 12);
    std.debug.assert(@sizeOf(DeviceAttr) == 24);
    std.debug.assert(@sizeOf(MemoryRegion) == 32);
    std.debug.assert(@sizeOf(IrqLevel) == 8);
    std.debug.assert(@offsetOf(RunMmio, "len") == 16 and @offsetOf(RunMmio, "is_write") == 20);
}

// ---- register ids: KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | offset/4 --------
pub fn coreReg(offset_bytes: u64) u64 {
    return 0x6030_0000_0010_0000 | (offset_bytes / 4);
}
/// x0..x30 in struct user_pt_regs (regs[31], sp, pc, pstate).
pub fn xReg(n: u5) u64 {
    return coreReg(@as(u64, n) * 8);
}
pub const reg_sp = coreReg(31 * 8);
pub const reg_pc = coreReg(32 * 8);
pub const reg_pstate = coreReg(33 * 8);
/// EL1h (SP_EL1) with D, A, I and F masked: the state the Image must be entered in.
pub const pstate_el1h_daif: u64 = 0x3c5;

pub const Error = error{Kvm};

/// One ioctl; EINTR retried; any other failure logged by the caller through `last_errno`.
pub var last_errno: linux.E = .SUCCESS;
pub fn ioctl(fd: linux.fd_t, request: u32, arg: usize) Error!usize {
    while (true) {
        return sys.ioctl(fd, request, arg) catch |err| switch (err) {
            error.INTR => continue,
            else => {
                last_errno = sys.errnoOf(err);
                return error.Kvm;
            },
        };
    }
}

pub fn setReg(vcpu: linux.fd_t, id: u64, value: u64) Error!void {
    var v = value;
    const r = OneReg{ .id = id, .addr = @intFromPtr(&v) };
    _ = try ioctl(vcpu, KVM_SET_ONE_REG, @intFromPtr(&r));
}

pub fn getReg(vcpu: linux.fd_t, id: u64) Error!u64 {
    var v: u64 = 0;
    const r = OneReg{ .id = id, .addr = @intFromPtr(&v) };
    _ = try ioctl(vcpu, KVM_GET_ONE_REG, @intFromPtr(&r));
    return v;
}

/// KVM_ARM_VCPU_INIT with the host's preferred target and PSCI 0.2; vCPUs other than the boot
/// one start powered off and wait for the guest's PSCI CPU_ON.
pub fn initVcpu(vm: linux.fd_t, vcpu: linux.fd_t, boot_cpu: bool) Error!void {
    var init: VcpuInit = std.mem.zeroes(VcpuInit);
    _ = try ioctl(vm, KVM_ARM_PREFERRED_TARGET, @intFromPtr(&init));
    init.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
    if (!boot_cpu) init.features[0] |= 1 << KVM_ARM_VCPU_POWER_OFF;
    _ = try ioctl(vcpu, KVM_ARM_VCPU_INIT, @intFromPtr(&init));
}

/// The boot vCPU's registers for the arm64 Image protocol.
pub fn setBootRegs(vcpu: linux.fd_t, entry: u64, fdt_addr: u64) Error!void {
    try setReg(vcpu, reg_pstate, pstate_el1h_daif);
    try setReg(vcpu, reg_pc, entry);
    try setReg(vcpu, xReg(0), fdt_addr);
    try setReg(vcpu, xReg(1), 0);
    try setReg(vcpu, xReg(2), 0);
    try setReg(vcpu, xReg(3), 0);
}

pub const Gic = struct {
    fd: linux.fd_t,
};

/// Creates the in-kernel GICv3 and places its distributor and redistributors; `irqs` counts
/// every interrupt including the 32 private ones (a multiple of 32, at most 1024).
pub fn createGicV3(vm: linux.fd_t, dist_base: u64, redist_base: u64, irqs: u32) Error!Gic {
    var dev = CreateDevice{ .type = KVM_DEV_TYPE_ARM_VGIC_V3, .fd = 0, .flags = 0 };
    _ = try ioctl(vm, KVM_CREATE_DEVICE, @intFromPtr(&dev));
    const fd: linux.fd_t = @intCast(dev.fd);
    errdefer sys.close(fd);
    try setAttr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_DIST, @intFromPtr(&dist_base));
    try setAttr(fd, KVM_DEV_ARM_VGIC_GRP_ADDR, KVM_VGIC_V3_ADDR_TYPE_REDIST, @intFromPtr(&redist_base));
    var n: u32 = irqs;
    try setAttr(fd, KVM_DEV_ARM_VGIC_GRP_NR_IRQS, 0, @intFromPtr(&n));
    return .{ .fd = fd };
}

/// After every vCPU exists and before the first KVM_RUN.
pub fn initGic(gic: Gic) Error!void {
    try setAttr(gic.fd, KVM_DEV_ARM_VGIC_GRP_CTRL, KVM_DEV_ARM_VGIC_CTRL_INIT, 0);
}

fn setAttr(fd: linux.fd_t, group: u32, attr: u64, addr: usize) Error!void {
    const a = DeviceAttr{ .flags = 0, .group = group, .attr = attr, .addr = addr };
    _ = try ioctl(fd, KVM_SET_DEVICE_ATTR, @intFromPtr(&a));
}

test "kvm_arm: register ids and ioctl numbers match the kernel's encoding" {
    // _IOW(0xAE, 0xae, 32 bytes) = dir 1 << 30 | size << 16 | 0xAE << 8 | nr.
    const iow = struct {
        fn f(nr: u32, size: u32) u32 {
            return (1 << 30) | (size << 16) | (0xAE << 8) | nr;
        }
    }.f;
    try std.testing.expectEqual(@as(u32, KVM_ARM_VCPU_INIT), iow(0xae, @sizeOf(VcpuInit)));
    try std.testing.expectEqual(@as(u32, KVM_SET_ONE_REG), iow(0xac, @sizeOf(OneReg)));
    try std.testing.expectEqual(@as(u32, KVM_SET_DEVICE_ATTR), iow(0xe1, @sizeOf(DeviceAttr)));
    try std.testing.expectEqual(@as(u32, KVM_SET_USER_MEMORY_REGION), iow(0x46, @sizeOf(MemoryRegion)));
    try std.testing.expectEqual(@as(u32, KVM_IRQ_LINE), iow(0x61, @sizeOf(IrqLevel)));
    try std.testing.expectEqual(@as(u32, KVM_CREATE_DEVICE), (3 << 30) | (12 << 16) | 0xAEE0);
    // Documented ids (arch/arm64/include/uapi/asm/kvm.h): PC is core offset 0x40, PSTATE 0x42.
    try std.testing.expectEqual(@as(u64, 0x6030_0000_0010_0040), reg_pc);
    try std.testing.expectEqual(@as(u64, 0x6030_0000_0010_0042), reg_pstate);
    try std.testing.expectEqual(@as(u64, 0x6030_0000_0010_0002), xReg(1));
    try std.testing.expectEqual(@as(u32, 0x0100_0021), irqLineSpi(1));
}
