//! Hypervisor.framework (arm64) as zkrun calls it: the types and constants of the public
//! headers (Hypervisor/hv_types.h, hv_vcpu_types.h, hv_gic.h), written by hand because no macOS
//! SDK exists where zkrun is built, and the functions resolved at run time with dlopen + dlsym,
//! so libkrun.1.dylib links nothing but libSystem and loads on a Mac without the framework
//! (then it reports -ENOTSUP). The layouts are checked by the tests below (they run on Linux:
//! the structs are plain C, the same on every LP64 ABI).
const std = @import("std");

pub const framework_path = "/System/Library/Frameworks/Hypervisor.framework/Hypervisor";

/// hv_return_t is a mach_error_t (int).
pub const Return = c_int;
pub const success: Return = 0;
/// HV_ERROR and friends: 0xfae940xx as a signed int.
pub const Status = enum(Return) {
    success = 0,
    err = @bitCast(@as(u32, 0xfae94001)),
    busy = @bitCast(@as(u32, 0xfae94002)),
    bad_argument = @bitCast(@as(u32, 0xfae94003)),
    illegal_guest_state = @bitCast(@as(u32, 0xfae94004)),
    no_resources = @bitCast(@as(u32, 0xfae94005)),
    no_device = @bitCast(@as(u32, 0xfae94006)),
    denied = @bitCast(@as(u32, 0xfae94007)),
    unsupported = @bitCast(@as(u32, 0xfae9400f)),
    _,
};

pub const Ipa = u64;
/// hv_vcpu_t on arm64 (a 64-bit id, not an fd).
pub const VcpuId = u64;

/// hv_memory_flags_t.
pub const memory_read: u64 = 1 << 0;
pub const memory_write: u64 = 1 << 1;
pub const memory_exec: u64 = 1 << 2;

/// hv_exit_reason_t.
pub const ExitReason = enum(u32) {
    canceled = 0,
    exception = 1,
    vtimer_activated = 2,
    unknown = 3,
    _,
};

/// hv_vcpu_exit_exception_t: ESR_EL2, FAR_EL2 and the faulting IPA (HPFAR-derived).
pub const ExitException = extern struct {
    syndrome: u64,
    virtual_address: u64,
    physical_address: Ipa,
};

/// hv_vcpu_exit_t: written by the framework, read after every hv_vcpu_run.
pub const VcpuExit = extern struct {
    reason: ExitReason,
    exception: ExitException,
};

/// hv_reg_t: X0..X30 are 0..30.
pub const Reg = enum(u32) {
    pc = 31,
    fpcr = 32,
    fpsr = 33,
    cpsr = 34,
    _,

    pub fn x(n: u5) Reg {
        std.debug.assert(n <= 30); // tidy: x31 is xzr/sp, not a register here
        return @fromBackingInt(@intCast(n));
    }
};

/// hv_sys_reg_t: op0<<14 | op1<<11 | CRn<<7 | CRm<<3 | op2 (the MRS/MSR encoding).
pub const SysReg = enum(u16) {
    mpidr_el1 = sysReg(3, 0, 0, 0, 5),
    sctlr_el1 = sysReg(3, 0, 1, 0, 0),
    cntv_ctl_el0 = sysReg(3, 3, 14, 3, 1),
    cntv_cval_el0 = sysReg(3, 3, 14, 3, 2),
    sp_el1 = sysReg(3, 4, 4, 1, 0),
    _,
};

pub fn sysReg(op0: u2, op1: u3, crn: u4, crm: u4, op2: u3) u16 {
    return @as(u16, op0) << 14 | @as(u16, op1) << 11 | @as(u16, crn) << 7 | @as(u16, crm) << 3 | op2;
}

/// hv_interrupt_type_t.
pub const InterruptType = enum(u32) { irq = 0, fiq = 1 };

/// Opaque os_object configs (hv_vm_config_t, hv_vcpu_config_t, hv_gic_config_t); NULL is the
/// default for the first two.
pub const Config = ?*anyopaque;

/// The functions zkrun calls. `gic_*` exist from macOS 15 only: null before.
pub const Api = struct {
    vm_create: *const fn (Config) callconv(.c) Return,
    vm_destroy: *const fn () callconv(.c) Return,
    vm_map: *const fn (addr: *anyopaque, ipa: Ipa, size: usize, flags: u64) callconv(.c) Return,
    vm_unmap: *const fn (ipa: Ipa, size: usize) callconv(.c) Return,
    vcpu_create: *const fn (vcpu: *VcpuId, exit: **VcpuExit, config: Config) callconv(.c) Return,
    vcpu_destroy: *const fn (VcpuId) callconv(.c) Return,
    vcpu_run: *const fn (VcpuId) callconv(.c) Return,
    vcpus_exit: *const fn (vcpus: [*]const VcpuId, count: u32) callconv(.c) Return,
    vcpu_get_reg: *const fn (VcpuId, Reg, *u64) callconv(.c) Return,
    vcpu_set_reg: *const fn (VcpuId, Reg, u64) callconv(.c) Return,
    vcpu_get_sys_reg: *const fn (VcpuId, SysReg, *u64) callconv(.c) Return,
    vcpu_set_sys_reg: *const fn (VcpuId, SysReg, u64) callconv(.c) Return,
    vcpu_set_pending_interrupt: *const fn (VcpuId, InterruptType, bool) callconv(.c) Return,
    vcpu_set_vtimer_mask: *const fn (VcpuId, bool) callconv(.c) Return,
    /// macOS 15+.
    vm_get_max_vcpu_count: ?*const fn (*u32) callconv(.c) Return = null,
    gic: ?Gic = null,
};

/// hv_gic_* (macOS 15+): the in-kernel GICv3 (distributor, redistributors; SPIs by level).
pub const Gic = struct {
    config_create: *const fn () callconv(.c) Config,
    config_set_distributor_base: *const fn (Config, Ipa) callconv(.c) Return,
    config_set_redistributor_base: *const fn (Config, Ipa) callconv(.c) Return,
    create: *const fn (Config) callconv(.c) Return,
    set_spi: *const fn (intid: u32, level: bool) callconv(.c) Return,
    get_distributor_size: *const fn (*usize) callconv(.c) Return,
    get_redistributor_size: *const fn (*usize) callconv(.c) Return,
    get_spi_interrupt_range: *const fn (base: *u32, count: *u32) callconv(.c) Return,
};

pub const LoadError = error{ FrameworkMissing, SymbolMissing };

var api_mutex: std.c.pthread_mutex_t = .{};
var api_tried = false;
var api_loaded: ?Api = null;
var api_error: LoadError = error.FrameworkMissing;

/// The framework's functions, loaded once per process (the handle is never closed: vCPU
/// threads may run its code until the process exits).
pub fn api() LoadError!*const Api {
    _ = std.c.pthread_mutex_lock(&api_mutex);
    defer _ = std.c.pthread_mutex_unlock(&api_mutex);
    if (!api_tried) loadOnce();
    api_tried = true;
    if (api_loaded) |*a| return a;
    return api_error;
}

/// The functions, once `api()` succeeded (the vCPU threads' hot path: no lock). The Api never
/// changes after it is loaded, and the threads are spawned after that.
pub fn loaded() *const Api {
    return &api_loaded.?;
}

fn loadOnce() void {
    const handle = std.c.dlopen(framework_path, .{ .NOW = true }) orelse {
        api_error = error.FrameworkMissing;
        return;
    };
    api_loaded = resolve(Api, handle) catch |err| {
        api_error = err;
        return;
    };
    api_loaded.?.gic = resolve(Gic, handle) catch null;
}

/// Fills every function field of `T` from `handle`: `hv_<field>` (gic fields: `hv_gic_<field>`).
/// Optional fields may be missing; required ones fail the load.
fn resolve(comptime T: type, handle: *anyopaque) LoadError!T {
    var out: T = undefined;
    const s = @typeInfo(T).@"struct";
    inline for (s.field_names, s.field_types) |name, F| {
        if (F == ?Gic) {
            @field(out, name) = null;
            continue;
        }
        const prefix = if (T == Gic) "hv_gic_" else "hv_";
        const sym = std.c.dlsym(handle, prefix ++ name);
        if (@typeInfo(F) == .optional) {
            @field(out, name) = if (sym) |p| @ptrCast(@alignCast(p)) else null;
        } else {
            @field(out, name) = @ptrCast(@alignCast(sym orelse return error.SymbolMissing));
        }
    }
    return out;
}

/// The framework's status as a Zig error, for the callers' error sets.
pub fn check(r: Return) error{HvFailed}!void {
    if (r != success) return error.HvFailed;
}

test "hv_vcpu_exit_t layout matches Hypervisor/hv_vcpu_types.h" {
    try std.testing.expectEqual(24, @sizeOf(ExitException));
    try std.testing.expectEqual(32, @sizeOf(VcpuExit));
    try std.testing.expectEqual(8, @alignOf(VcpuExit));
    try std.testing.expectEqual(0, @offsetOf(VcpuExit, "reason"));
    try std.testing.expectEqual(8, @offsetOf(VcpuExit, "exception"));
    try std.testing.expectEqual(0, @offsetOf(ExitException, "syndrome"));
    try std.testing.expectEqual(8, @offsetOf(ExitException, "virtual_address"));
    try std.testing.expectEqual(16, @offsetOf(ExitException, "physical_address"));
    try std.testing.expectEqual(4, @sizeOf(Reg));
    try std.testing.expectEqual(2, @sizeOf(SysReg));
}

test "register ids are the header's values" {
    try std.testing.expectEqual(@as(u16, 0xc005), @backingInt(SysReg.mpidr_el1)); // HV_SYS_REG_MPIDR_EL1
    try std.testing.expectEqual(@as(u16, 0xc080), @backingInt(SysReg.sctlr_el1));
    try std.testing.expectEqual(@as(u16, 0xdf19), @backingInt(SysReg.cntv_ctl_el0));
    try std.testing.expectEqual(@as(u16, 0xdf1a), @backingInt(SysReg.cntv_cval_el0));
    try std.testing.expectEqual(@as(u16, 0xe208), @backingInt(SysReg.sp_el1));
    try std.testing.expectEqual(@as(u32, 30), @backingInt(Reg.x(30)));
    try std.testing.expectEqual(@as(u32, 31), @backingInt(Reg.pc));
    try std.testing.expectEqual(@as(u32, 34), @backingInt(Reg.cpsr));
    try std.testing.expectEqual(@as(c_int, -85377023), @backingInt(Status.err)); // HV_ERROR
    try std.testing.expectEqual(@as(c_int, -85377009), @backingInt(Status.unsupported));
}

test "api() on a host without the framework reports FrameworkMissing" {
    // On Linux no Hypervisor.framework exists: api() must say so, not crash.
    if (@import("builtin").os.tag != .macos) try std.testing.expectError(error.FrameworkMissing, api());
}
