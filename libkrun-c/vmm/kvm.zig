//! Typed KVM: `Kvm` (/dev/kvm) → `Vm` → `VcpuFd`, each owning its fd (and the vCPU its
//! kvm_run mapping). One method per ioctl; errors are sys.zig's errno errors (error.INTR, ...),
//! so no raw return value escapes this file.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const abi = @import("kvm_abi.zig");
const sys = @import("../sys/linux.zig");

const log = std.log.scoped(.vmm);

pub const Kvm = struct {
    fd: sys.fd_t,

    pub const OpenError = error{ KvmUnavailable, SystemResources };

    pub fn open() OpenError!Kvm {
        const fd = sys.open("/dev/kvm", .{ .ACCMODE = .RDWR, .CLOEXEC = true }) catch |err| {
            log.err("cannot open /dev/kvm: {t}", .{err});
            return switch (err) {
                error.MFILE, error.NFILE, error.NOMEM => error.SystemResources,
                else => error.KvmUnavailable,
            };
        };
        errdefer sys.close(fd);
        const version = sys.ioctl(fd, abi.KVM_GET_API_VERSION, 0) catch return error.KvmUnavailable;
        if (version != abi.api_version) {
            log.err("/dev/kvm API version {d}, expected {d}", .{ version, abi.api_version });
            return error.KvmUnavailable;
        }
        return .{ .fd = fd };
    }

    pub fn close(self: *Kvm) void {
        sys.close(self.fd);
        self.* = undefined;
    }

    /// KVM_CHECK_EXTENSION: 0 when unsupported, else the capability's value.
    pub fn checkExtension(self: Kvm, cap: abi.Cap) u32 {
        const rc = sys.ioctl(self.fd, abi.KVM_CHECK_EXTENSION, @backingInt(cap)) catch return 0;
        return @intCast(rc);
    }

    pub fn maxVcpus(self: Kvm) u32 {
        const max = self.checkExtension(.max_vcpus);
        // Per the KVM API doc: without KVM_CAP_MAX_VCPUS, the limit is KVM_CAP_NR_VCPUS.
        return if (max != 0) max else self.checkExtension(.nr_vcpus);
    }

    pub fn vcpuMmapSize(self: Kvm) sys.Error!usize {
        const size = try sys.ioctl(self.fd, abi.KVM_GET_VCPU_MMAP_SIZE, 0);
        if (size < @sizeOf(abi.kvm_run)) return error.INVAL;
        return size;
    }

    pub fn supportedCpuid(self: Kvm, out: *abi.kvm_cpuid2) sys.Error!void {
        out.nent = abi.cpuid_entries_max;
        _ = try sys.ioctl(self.fd, abi.KVM_GET_SUPPORTED_CPUID, @intFromPtr(out));
        assert(out.nent <= abi.cpuid_entries_max);
    }

    pub fn createVm(self: Kvm) sys.Error!Vm {
        while (true) {
            const fd = sys.ioctl(self.fd, abi.KVM_CREATE_VM, 0) catch |err| switch (err) {
                // KVM_CREATE_VM can fail with EINTR while the kernel sets up the MMU notifier.
                error.INTR => continue,
                else => return err,
            };
            return .{ .fd = @intCast(fd) };
        }
    }
};

pub const Vm = struct {
    fd: sys.fd_t,

    pub fn close(self: *Vm) void {
        sys.close(self.fd);
        self.* = undefined;
    }

    pub fn setUserMemoryRegion(self: Vm, slot: u32, guest_addr: u64, host: []u8) sys.Error!void {
        assert(guest_addr % std.heap.page_size_min == 0);
        assert(@intFromPtr(host.ptr) % std.heap.page_size_min == 0);
        var region: abi.kvm_userspace_memory_region = .{
            .slot = slot,
            .guest_phys_addr = guest_addr,
            .memory_size = host.len,
            .userspace_addr = @intFromPtr(host.ptr),
        };
        _ = try sys.ioctl(self.fd, abi.KVM_SET_USER_MEMORY_REGION, @intFromPtr(&region));
    }

    pub fn setTssAddr(self: Vm, addr: u32) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_SET_TSS_ADDR, addr);
    }

    pub fn createIrqchip(self: Vm) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_CREATE_IRQCHIP, 0);
    }

    pub fn createPit2(self: Vm) sys.Error!void {
        var config: abi.kvm_pit_config = .{ .flags = abi.KVM_PIT_SPEAKER_DUMMY };
        _ = try sys.ioctl(self.fd, abi.KVM_CREATE_PIT2, @intFromPtr(&config));
    }

    pub fn irqfd(self: Vm, fd: sys.fd_t, gsi: u32) sys.Error!void {
        var req: abi.kvm_irqfd = .{ .fd = @intCast(fd), .gsi = gsi };
        _ = try sys.ioctl(self.fd, abi.KVM_IRQFD, @intFromPtr(&req));
    }

    /// An MMIO ioeventfd of 4 bytes at `addr` that fires only for writes of `datamatch`.
    pub fn ioeventfd(self: Vm, fd: sys.fd_t, addr: u64, datamatch: u64) sys.Error!void {
        var req: abi.kvm_ioeventfd = .{
            .datamatch = datamatch,
            .addr = addr,
            .len = 4,
            .fd = fd,
            .flags = abi.KVM_IOEVENTFD_FLAG_DATAMATCH,
        };
        _ = try sys.ioctl(self.fd, abi.KVM_IOEVENTFD, @intFromPtr(&req));
    }

    pub fn createVcpu(self: Vm, id: u32, mmap_size: usize) sys.Error!VcpuFd {
        const fd: sys.fd_t = @intCast(try sys.ioctl(self.fd, abi.KVM_CREATE_VCPU, id));
        errdefer sys.close(fd);
        const mapping = try sys.mmap(mmap_size, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, fd, 0);
        return .{ .fd = fd, .mapping = mapping };
    }
};

pub const VcpuFd = struct {
    fd: sys.fd_t,
    /// The kvm_run page(s): the kernel writes exit information here.
    mapping: []align(std.heap.page_size_min) u8,

    pub fn close(self: *VcpuFd) void {
        sys.munmap(self.mapping);
        sys.close(self.fd);
        self.* = undefined;
    }

    pub fn kvmRun(self: VcpuFd) *volatile abi.kvm_run {
        return @ptrCast(self.mapping.ptr);
    }

    /// One KVM_RUN. error.INTR means a signal (or immediate_exit) kicked us out.
    pub fn run(self: VcpuFd) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_RUN, 0);
    }

    /// KVM_PRE_FAULT_MEMORY: maps guest [gpa, gpa + size) in KVM's nested page tables now, as
    /// a guest read would, instead of one exit per page at the guest's first touch. The kernel
    /// moves the range on as it goes and stops early only on a signal (retried, a few times).
    pub fn preFaultMemory(self: VcpuFd, gpa: u64, size: u64) sys.Error!void {
        var range: abi.kvm_pre_fault_memory = .{ .gpa = gpa, .size = size };
        var tries: u32 = 0;
        while (range.size > 0) : (tries += 1) {
            _ = sys.ioctl(self.fd, abi.KVM_PRE_FAULT_MEMORY, @intFromPtr(&range)) catch |err| switch (err) {
                error.INTR, error.AGAIN => if (tries < 8) continue else return err,
                else => return err,
            };
        }
    }

    pub fn getRegs(self: VcpuFd) sys.Error!abi.kvm_regs {
        var regs: abi.kvm_regs = .{};
        _ = try sys.ioctl(self.fd, abi.KVM_GET_REGS, @intFromPtr(&regs));
        return regs;
    }

    pub fn setRegs(self: VcpuFd, regs: *const abi.kvm_regs) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_SET_REGS, @intFromPtr(regs));
    }

    pub fn getSregs(self: VcpuFd) sys.Error!abi.kvm_sregs {
        var sregs: abi.kvm_sregs = .{};
        _ = try sys.ioctl(self.fd, abi.KVM_GET_SREGS, @intFromPtr(&sregs));
        return sregs;
    }

    pub fn setSregs(self: VcpuFd, sregs: *const abi.kvm_sregs) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_SET_SREGS, @intFromPtr(sregs));
    }

    pub fn setFpu(self: VcpuFd, fpu: *const abi.kvm_fpu) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_SET_FPU, @intFromPtr(fpu));
    }

    /// KVM_SET_MSRS returns how many entries it set; anything short of all is an error.
    pub fn setMsrs(self: VcpuFd, msrs: anytype) sys.Error!void {
        const set = try sys.ioctl(self.fd, abi.KVM_SET_MSRS, @intFromPtr(msrs));
        if (set != msrs.nmsrs) {
            log.err("KVM_SET_MSRS set {d} of {d} (first refused: 0x{x})", .{
                set, msrs.nmsrs, if (set < msrs.nmsrs) msrs.entries[set].index else 0,
            });
            return error.INVAL;
        }
    }

    pub fn setCpuid2(self: VcpuFd, cpuid: *const abi.kvm_cpuid2) sys.Error!void {
        assert(cpuid.nent <= abi.cpuid_entries_max);
        _ = try sys.ioctl(self.fd, abi.KVM_SET_CPUID2, @intFromPtr(cpuid));
    }

    pub fn getLapic(self: VcpuFd) sys.Error!abi.kvm_lapic_state {
        var state: abi.kvm_lapic_state = .{};
        _ = try sys.ioctl(self.fd, abi.KVM_GET_LAPIC, @intFromPtr(&state));
        return state;
    }

    pub fn setLapic(self: VcpuFd, state: *const abi.kvm_lapic_state) sys.Error!void {
        _ = try sys.ioctl(self.fd, abi.KVM_SET_LAPIC, @intFromPtr(state));
    }
};

test "Kvm.open reports a missing or unusable /dev/kvm as KvmUnavailable, not a crash" {
    // Whatever this machine has, open() either works and yields a sane API, or says why not.
    var kvm = Kvm.open() catch |err| {
        try std.testing.expect(err == error.KvmUnavailable or err == error.SystemResources);
        return;
    };
    defer kvm.close();
    try std.testing.expect(kvm.maxVcpus() >= 1);
    try std.testing.expect(try kvm.vcpuMmapSize() >= @sizeOf(abi.kvm_run));
}

test "KVM_PRE_FAULT_MEMORY maps a memory slot's pages and refuses a range outside every slot" {
    var kvm = Kvm.open() catch return error.SkipZigTest; // no /dev/kvm here: nothing to run
    defer kvm.close();
    // KVM before Linux 6.10, arm64 KVM and a VM without nested paging: builder.zig then skips it.
    if (kvm.checkExtension(.pre_fault_memory) == 0) return error.SkipZigTest;
    var vm = try kvm.createVm();
    defer vm.close();
    const len = 4 * std.heap.page_size_min;
    const host = try sys.mmap(len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0);
    defer sys.munmap(host);
    @memset(host, 0x5a);
    try vm.setUserMemoryRegion(0, 0x10000, host);
    var vcpu = try vm.createVcpu(0, try kvm.vcpuMmapSize());
    defer vcpu.close();
    try vcpu.preFaultMemory(0x10000, len);
    try std.testing.expectError(error.NOENT, vcpu.preFaultMemory(0x100000, std.heap.page_size_min));
}
