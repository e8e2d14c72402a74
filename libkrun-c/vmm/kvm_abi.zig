//! The KVM userspace ABI (x86_64) as hand-written `extern struct`s, with the ioctl numbers built
//! from their sizes. Layouts follow include/uapi/linux/kvm.h and arch/x86/include/uapi/asm/kvm.h;
//! the tests at the bottom pin every size and the offsets that matter, so a typo cannot hide.
//! The generic part (kvm_run, memory regions, irqfd, ioeventfd, exits) serves both backends;
//! the x86 register, CPUID, LAPIC and PIT structs are used by x86_64/arch.zig only (aarch64's
//! one-reg, vCPU-init and device structs are in aarch64/kvm_arm.zig), so nothing x86 is
//! compiled into an aarch64 build.
const std = @import("std");
const IOCTL = std.os.linux.IOCTL;

pub const KVMIO: u8 = 0xAE;
pub const api_version = 12;

pub const kvm_regs = extern struct {
    rax: u64 = 0,
    rbx: u64 = 0,
    rcx: u64 = 0,
    rdx: u64 = 0,
    rsi: u64 = 0,
    rdi: u64 = 0,
    rsp: u64 = 0,
    rbp: u64 = 0,
    r8: u64 = 0,
    r9: u64 = 0,
    r10: u64 = 0,
    r11: u64 = 0,
    r12: u64 = 0,
    r13: u64 = 0,
    r14: u64 = 0,
    r15: u64 = 0,
    rip: u64 = 0,
    rflags: u64 = 0,
};

pub const kvm_segment = extern struct {
    base: u64 = 0,
    limit: u32 = 0,
    selector: u16 = 0,
    type: u8 = 0,
    present: u8 = 0,
    dpl: u8 = 0,
    db: u8 = 0,
    s: u8 = 0,
    l: u8 = 0,
    g: u8 = 0,
    avl: u8 = 0,
    unusable: u8 = 0,
    padding: u8 = 0,
};

pub const kvm_dtable = extern struct {
    base: u64 = 0,
    limit: u16 = 0,
    padding: [3]u16 = @splat(0),
};

pub const kvm_sregs = extern struct {
    cs: kvm_segment = .{},
    ds: kvm_segment = .{},
    es: kvm_segment = .{},
    fs: kvm_segment = .{},
    gs: kvm_segment = .{},
    ss: kvm_segment = .{},
    tr: kvm_segment = .{},
    ldt: kvm_segment = .{},
    gdt: kvm_dtable = .{},
    idt: kvm_dtable = .{},
    cr0: u64 = 0,
    cr2: u64 = 0,
    cr3: u64 = 0,
    cr4: u64 = 0,
    cr8: u64 = 0,
    efer: u64 = 0,
    apic_base: u64 = 0,
    interrupt_bitmap: [4]u64 = @splat(0),
};

pub const kvm_fpu = extern struct {
    fpr: [8][16]u8 = @splat(@splat(0)),
    fcw: u16 = 0,
    fsw: u16 = 0,
    ftwx: u8 = 0,
    pad1: u8 = 0,
    last_opcode: u16 = 0,
    last_ip: u64 = 0,
    last_dp: u64 = 0,
    xmm: [16][16]u8 = @splat(@splat(0)),
    mxcsr: u32 = 0,
    pad2: u32 = 0,
};

pub const kvm_msr_entry = extern struct {
    index: u32,
    reserved: u32 = 0,
    data: u64,
};

/// `struct kvm_msrs` with a fixed-capacity tail (the kernel reads `nmsrs` entries).
pub fn KvmMsrs(comptime capacity: u32) type {
    return extern struct {
        nmsrs: u32 = 0,
        pad: u32 = 0,
        entries: [capacity]kvm_msr_entry = undefined,
    };
}
pub const kvm_msrs_header = KvmMsrs(0);

pub const kvm_cpuid_entry2 = extern struct {
    function: u32 = 0,
    index: u32 = 0,
    flags: u32 = 0,
    eax: u32 = 0,
    ebx: u32 = 0,
    ecx: u32 = 0,
    edx: u32 = 0,
    padding: [3]u32 = @splat(0),
};
pub const KVM_CPUID_FLAG_SIGNIFCANT_INDEX: u32 = 1 << 0;

/// Enough for every leaf KVM reports on current hosts (typically 50-80 entries).
pub const cpuid_entries_max = 256;

/// `struct kvm_cpuid2` with a fixed-capacity tail.
pub const kvm_cpuid2 = extern struct {
    nent: u32 = 0,
    padding: u32 = 0,
    entries: [cpuid_entries_max]kvm_cpuid_entry2 = undefined,
};
pub const kvm_cpuid2_header = extern struct { nent: u32, padding: u32 };

pub const kvm_userspace_memory_region = extern struct {
    slot: u32,
    flags: u32 = 0,
    guest_phys_addr: u64,
    memory_size: u64,
    userspace_addr: u64,
};

/// KVM_PRE_FAULT_MEMORY's range; the kernel writes back what is left of it.
pub const kvm_pre_fault_memory = extern struct {
    gpa: u64,
    size: u64,
    flags: u64 = 0,
    padding: [5]u64 = @splat(0),
};

pub const kvm_irqfd = extern struct {
    fd: u32,
    gsi: u32,
    flags: u32 = 0,
    resamplefd: u32 = 0,
    pad: [16]u8 = @splat(0),
};
pub const KVM_IRQFD_FLAG_DEASSIGN: u32 = 1 << 0;

pub const kvm_ioeventfd = extern struct {
    datamatch: u64 = 0,
    addr: u64,
    len: u32,
    fd: i32,
    flags: u32 = 0,
    pad: [36]u8 = @splat(0),
};
pub const KVM_IOEVENTFD_FLAG_DATAMATCH: u32 = 1 << 0;
pub const KVM_IOEVENTFD_FLAG_PIO: u32 = 1 << 1;
pub const KVM_IOEVENTFD_FLAG_DEASSIGN: u32 = 1 << 2;

pub const kvm_pit_config = extern struct {
    flags: u32 = 0,
    pad: [15]u32 = @splat(0),
};
pub const KVM_PIT_SPEAKER_DUMMY: u32 = 1;

pub const kvm_lapic_state = extern struct {
    regs: [1024]u8 = @splat(0),
};

// ---- struct kvm_run (the vCPU's shared page) ----------------------------------------------

pub const Exit = enum(u32) {
    unknown = 0,
    exception = 1,
    io = 2,
    hypercall = 3,
    debug = 4,
    hlt = 5,
    mmio = 6,
    irq_window_open = 7,
    shutdown = 8,
    fail_entry = 9,
    intr = 10,
    set_tpr = 11,
    tpr_access = 12,
    nmi = 16,
    internal_error = 17,
    system_event = 24,
    _,
};

pub const KVM_EXIT_IO_IN: u8 = 0;
pub const KVM_EXIT_IO_OUT: u8 = 1;

pub const KVM_SYSTEM_EVENT_SHUTDOWN: u32 = 1;
pub const KVM_SYSTEM_EVENT_RESET: u32 = 2;
pub const KVM_SYSTEM_EVENT_CRASH: u32 = 3;

pub const ExitIo = extern struct {
    direction: u8,
    size: u8,
    port: u16,
    count: u32,
    /// Offset of the data bytes from the start of kvm_run.
    data_offset: u64,
};

pub const ExitMmio = extern struct {
    phys_addr: u64,
    data: [8]u8,
    len: u32,
    is_write: u8,
};

pub const ExitFailEntry = extern struct {
    hardware_entry_failure_reason: u64,
    cpu: u32,
};

pub const ExitInternal = extern struct {
    suberror: u32,
    ndata: u32,
    data: [16]u64,
};

pub const ExitSystemEvent = extern struct {
    type: u32,
    ndata: u32,
    data: [16]u64,
};

pub const ExitUnion = extern union {
    io: ExitIo,
    mmio: ExitMmio,
    fail_entry: ExitFailEntry,
    internal: ExitInternal,
    system_event: ExitSystemEvent,
    padding: [256]u8,
};

pub const kvm_run = extern struct {
    request_interrupt_window: u8,
    immediate_exit: u8,
    padding1: [6]u8,
    exit_reason: u32,
    ready_for_interrupt_injection: u8,
    if_flag: u8,
    flags: u16,
    cr8: u64,
    apic_base: u64,
    exit: ExitUnion,
    kvm_valid_regs: u64,
    kvm_dirty_regs: u64,
    s: [2048]u8,
};

// ---- capabilities -------------------------------------------------------------------------

pub const Cap = enum(u32) {
    irqchip = 0,
    nr_vcpus = 9,
    user_memory = 3,
    set_tss_addr = 4,
    pit2 = 33,
    irqfd = 32,
    ioeventfd = 36,
    max_vcpus = 66,
    immediate_exit = 136,
    pre_fault_memory = 236,
    _,
};

// ---- ioctl request numbers ----------------------------------------------------------------

pub const KVM_GET_API_VERSION = IOCTL.IO(KVMIO, 0x00);
pub const KVM_CREATE_VM = IOCTL.IO(KVMIO, 0x01);
pub const KVM_CHECK_EXTENSION = IOCTL.IO(KVMIO, 0x03);
pub const KVM_GET_VCPU_MMAP_SIZE = IOCTL.IO(KVMIO, 0x04);
pub const KVM_GET_SUPPORTED_CPUID = IOCTL.IOWR(KVMIO, 0x05, kvm_cpuid2_header);
pub const KVM_CREATE_VCPU = IOCTL.IO(KVMIO, 0x41);
pub const KVM_SET_USER_MEMORY_REGION = IOCTL.IOW(KVMIO, 0x46, kvm_userspace_memory_region);
pub const KVM_SET_TSS_ADDR = IOCTL.IO(KVMIO, 0x47);
pub const KVM_CREATE_IRQCHIP = IOCTL.IO(KVMIO, 0x60);
pub const KVM_IRQFD = IOCTL.IOW(KVMIO, 0x76, kvm_irqfd);
pub const KVM_CREATE_PIT2 = IOCTL.IOW(KVMIO, 0x77, kvm_pit_config);
pub const KVM_IOEVENTFD = IOCTL.IOW(KVMIO, 0x79, kvm_ioeventfd);
pub const KVM_RUN = IOCTL.IO(KVMIO, 0x80);
pub const KVM_GET_REGS = IOCTL.IOR(KVMIO, 0x81, kvm_regs);
pub const KVM_SET_REGS = IOCTL.IOW(KVMIO, 0x82, kvm_regs);
pub const KVM_GET_SREGS = IOCTL.IOR(KVMIO, 0x83, kvm_sregs);
pub const KVM_SET_SREGS = IOCTL.IOW(KVMIO, 0x84, kvm_sregs);
pub const KVM_SET_MSRS = IOCTL.IOW(KVMIO, 0x89, kvm_msrs_header);
pub const KVM_GET_FPU = IOCTL.IOR(KVMIO, 0x8c, kvm_fpu);
pub const KVM_SET_FPU = IOCTL.IOW(KVMIO, 0x8d, kvm_fpu);
pub const KVM_GET_LAPIC = IOCTL.IOR(KVMIO, 0x8e, kvm_lapic_state);
pub const KVM_SET_LAPIC = IOCTL.IOW(KVMIO, 0x8f, kvm_lapic_state);
pub const KVM_SET_CPUID2 = IOCTL.IOW(KVMIO, 0x90, kvm_cpuid2_header);
pub const KVM_PRE_FAULT_MEMORY = IOCTL.IOWR(KVMIO, 0xd5, kvm_pre_fault_memory);

const testing = std.testing;

test "KVM struct sizes match the kernel ABI" {
    try testing.expectEqual(144, @sizeOf(kvm_regs));
    try testing.expectEqual(24, @sizeOf(kvm_segment));
    try testing.expectEqual(16, @sizeOf(kvm_dtable));
    try testing.expectEqual(312, @sizeOf(kvm_sregs));
    try testing.expectEqual(416, @sizeOf(kvm_fpu));
    try testing.expectEqual(16, @sizeOf(kvm_msr_entry));
    try testing.expectEqual(8, @sizeOf(kvm_msrs_header));
    try testing.expectEqual(40, @sizeOf(kvm_cpuid_entry2));
    try testing.expectEqual(8, @sizeOf(kvm_cpuid2_header));
    try testing.expectEqual(8 + 40 * cpuid_entries_max, @sizeOf(kvm_cpuid2));
    try testing.expectEqual(32, @sizeOf(kvm_userspace_memory_region));
    try testing.expectEqual(64, @sizeOf(kvm_pre_fault_memory));
    try testing.expectEqual(32, @sizeOf(kvm_irqfd));
    try testing.expectEqual(64, @sizeOf(kvm_ioeventfd));
    try testing.expectEqual(64, @sizeOf(kvm_pit_config));
    try testing.expectEqual(1024, @sizeOf(kvm_lapic_state));
    try testing.expectEqual(256, @sizeOf(ExitUnion));
    try testing.expectEqual(2352, @sizeOf(kvm_run));
}

test "KVM struct field offsets match the kernel ABI" {
    try testing.expectEqual(128, @offsetOf(kvm_regs, "rip"));
    try testing.expectEqual(14, @offsetOf(kvm_segment, "type"));
    try testing.expectEqual(22, @offsetOf(kvm_segment, "unusable"));
    try testing.expectEqual(168, @offsetOf(kvm_sregs, "ldt"));
    try testing.expectEqual(192, @offsetOf(kvm_sregs, "gdt"));
    try testing.expectEqual(224, @offsetOf(kvm_sregs, "cr0"));
    try testing.expectEqual(264, @offsetOf(kvm_sregs, "efer"));
    try testing.expectEqual(280, @offsetOf(kvm_sregs, "interrupt_bitmap"));
    try testing.expectEqual(128, @offsetOf(kvm_fpu, "fcw"));
    try testing.expectEqual(152, @offsetOf(kvm_fpu, "xmm"));
    try testing.expectEqual(408, @offsetOf(kvm_fpu, "mxcsr"));
    try testing.expectEqual(8, @offsetOf(kvm_ioeventfd, "addr"));
    try testing.expectEqual(20, @offsetOf(kvm_ioeventfd, "fd"));
    try testing.expectEqual(1, @offsetOf(kvm_run, "immediate_exit"));
    try testing.expectEqual(8, @offsetOf(kvm_run, "exit_reason"));
    try testing.expectEqual(32, @offsetOf(kvm_run, "exit"));
    try testing.expectEqual(288, @offsetOf(kvm_run, "kvm_valid_regs"));
    try testing.expectEqual(304, @offsetOf(kvm_run, "s"));
    try testing.expectEqual(8, @offsetOf(ExitMmio, "data"));
    try testing.expectEqual(20, @offsetOf(ExitMmio, "is_write"));
    try testing.expectEqual(8, @offsetOf(ExitIo, "data_offset"));
}

test "ioctl numbers match the kernel's" {
    // Values from linux/kvm.h as compiled on x86_64.
    try testing.expectEqual(0xAE00, KVM_GET_API_VERSION);
    try testing.expectEqual(0xAE01, KVM_CREATE_VM);
    try testing.expectEqual(0xAE80, KVM_RUN);
    try testing.expectEqual(0x4020AE46, KVM_SET_USER_MEMORY_REGION);
    try testing.expectEqual(0xC008AE05, KVM_GET_SUPPORTED_CPUID);
    try testing.expectEqual(0x4008AE90, KVM_SET_CPUID2);
    try testing.expectEqual(0x8138AE83, KVM_GET_SREGS);
    try testing.expectEqual(0x4138AE84, KVM_SET_SREGS);
    try testing.expectEqual(0x4090AE82, KVM_SET_REGS);
    try testing.expectEqual(0x41A0AE8D, KVM_SET_FPU);
    try testing.expectEqual(0x4008AE89, KVM_SET_MSRS);
    try testing.expectEqual(0x4020AE76, KVM_IRQFD);
    try testing.expectEqual(0x4040AE79, KVM_IOEVENTFD);
    try testing.expectEqual(0x4040AE77, KVM_CREATE_PIT2);
    try testing.expectEqual(0x8400AE8E, KVM_GET_LAPIC);
    try testing.expectEqual(0x4400AE8F, KVM_SET_LAPIC);
    try testing.expectEqual(0xC040AED5, KVM_PRE_FAULT_MEMORY);
}
