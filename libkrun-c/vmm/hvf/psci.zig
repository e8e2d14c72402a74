//! PSCI 1.0 over HVC (the FDT's psci node says method "hvc"), for the HVF backend: on KVM the
//! kernel answers these calls, on Hypervisor.framework the HVC traps to the vCPU loop, which
//! asks `call` what to answer and what to do. Pure: unit-tested on Linux. Function ids and
//! return codes: Arm DEN0022 (PSCI) and DEN0028 (SMCCC).
const std = @import("std");

pub const fid = struct {
    pub const smccc_version: u32 = 0x8000_0000;
    pub const smccc_arch_features: u32 = 0x8000_0001;
    pub const version: u32 = 0x8400_0000;
    pub const cpu_suspend64: u32 = 0xc400_0001;
    pub const cpu_off: u32 = 0x8400_0002;
    pub const cpu_on32: u32 = 0x8400_0003;
    pub const cpu_on64: u32 = 0xc400_0003;
    pub const affinity_info64: u32 = 0xc400_0004;
    pub const migrate_info_type: u32 = 0x8400_0006;
    pub const system_off: u32 = 0x8400_0008;
    pub const system_reset: u32 = 0x8400_0009;
    pub const features: u32 = 0x8400_000a;
    pub const system_reset2_32: u32 = 0x8400_0012;
    pub const system_reset2_64: u32 = 0xc400_0012;
};

pub const success: i64 = 0;
pub const not_supported: i64 = -1;
pub const invalid_parameters: i64 = -2;
pub const already_on: i64 = -4;
pub const internal_failure: i64 = -6;

/// PSCI 1.0 (major << 16 | minor).
pub const version_1_0: u64 = 1 << 16;
/// MIGRATE_INFO_TYPE: no trusted OS needing migration.
const migrate_not_needed: u64 = 2;

/// What the loop does after writing `x0`.
pub const Effect = union(enum) {
    none,
    /// Start the vCPU whose MPIDR affinity is `target` at `entry` with x0 = `context`.
    cpu_on: struct { target: u64, entry: u64, context: u64 },
    /// This vCPU stops until another CPU_ON.
    cpu_off,
    /// End the VM: power off, or a reset (warm = SYSTEM_RESET2, the guest's panic path).
    system_off,
    system_reset: struct { warm: bool },
};

pub const Answer = struct { x0: u64, effect: Effect = .none };

/// Whether the vCPU with MPIDR affinity `target` is on: for CPU_ON's ALREADY_ON and
/// AFFINITY_INFO. Null: no such vCPU.
pub const CpuState = *const fn (ctx: *anyopaque, target: u64) ?bool;

/// The answer to the call in x0 with arguments x1..x3 (guest values: anything).
pub fn call(x: [4]u64, ctx: *anyopaque, cpuOn: CpuState) Answer {
    const f: u32 = if (x[0] >> 32 == 0) @truncate(x[0]) else return ret(not_supported);
    return switch (f) {
        fid.version => .{ .x0 = version_1_0 },
        fid.smccc_version => .{ .x0 = 0x1_0001 }, // SMCCC 1.1: ARCH_FEATURES exists
        fid.smccc_arch_features => ret(not_supported), // no workarounds offered
        fid.migrate_info_type => .{ .x0 = migrate_not_needed },
        fid.features => if (supported(@truncate(x[1]))) .{ .x0 = 0 } else ret(not_supported),
        fid.cpu_off => .{ .x0 = 0, .effect = .cpu_off },
        fid.cpu_on32, fid.cpu_on64 => cpuOnCall(f, x, ctx, cpuOn),
        fid.affinity_info64 => if (cpuOn(ctx, affinity(x[1]))) |on| .{ .x0 = if (on) 0 else 1 } else ret(invalid_parameters),
        fid.cpu_suspend64 => .{ .x0 = 0 }, // a standby state: returns at once (as after a wake-up)
        fid.system_off => .{ .x0 = 0, .effect = .system_off },
        fid.system_reset => .{ .x0 = 0, .effect = .{ .system_reset = .{ .warm = false } } },
        fid.system_reset2_32, fid.system_reset2_64 => .{ .x0 = 0, .effect = .{ .system_reset = .{ .warm = true } } },
        else => ret(not_supported),
    };
}

fn cpuOnCall(f: u32, x: [4]u64, ctx: *anyopaque, cpuOn: CpuState) Answer {
    const wide = f == fid.cpu_on64;
    const target = affinity(x[1]);
    const entry = if (wide) x[2] else x[2] & 0xffff_ffff;
    const on = cpuOn(ctx, target) orelse return ret(invalid_parameters);
    if (on) return ret(already_on);
    return .{ .x0 = 0, .effect = .{ .cpu_on = .{ .target = target, .entry = entry, .context = if (wide) x[3] else x[3] & 0xffff_ffff } } };
}

fn supported(f: u32) bool {
    return switch (f) {
        fid.version, fid.cpu_off, fid.cpu_on32, fid.cpu_on64, fid.affinity_info64, fid.cpu_suspend64, fid.migrate_info_type, fid.system_off, fid.system_reset, fid.features, fid.system_reset2_32, fid.system_reset2_64, fid.smccc_version => true,
        else => false,
    };
}

/// The affinity fields of an MPIDR (Aff3 39:32, Aff2..Aff0 23:0).
pub fn affinity(mpidr: u64) u64 {
    return mpidr & 0xff_00ff_ffff;
}

/// vCPU n's MPIDR affinity, as devicetree.zig writes each cpu node's reg (KVM's reset_mpidr
/// numbering: Aff0 = n % 16, Aff1 = n / 16).
pub fn mpidrOf(index: u32) u64 {
    return @as(u64, index % 16) | @as(u64, index / 16) << 8;
}

fn ret(code: i64) Answer {
    return .{ .x0 = @bitCast(code) };
}

const testing = std.testing;

const Cpus = struct {
    on: [4]bool = .{ true, false, false, false },
    fn state(ctx: *anyopaque, target: u64) ?bool {
        const self: *Cpus = @ptrCast(@alignCast(ctx));
        for (self.on, 0..) |on, i| if (mpidrOf(@intCast(i)) == target) return on;
        return null;
    }
};

test "PSCI_VERSION says 1.0 and FEATURES knows CPU_ON but not unknown ids" {
    var cpus: Cpus = .{};
    try testing.expectEqual(version_1_0, call(.{ fid.version, 0, 0, 0 }, &cpus, Cpus.state).x0);
    try testing.expectEqual(@as(u64, 0), call(.{ fid.features, fid.cpu_on64, 0, 0 }, &cpus, Cpus.state).x0);
    try testing.expectEqual(@as(u64, @bitCast(not_supported)), call(.{ fid.features, 0x8400_00ff, 0, 0 }, &cpus, Cpus.state).x0);
}

test "CPU_ON starts an off vCPU, refuses an on one and an unknown MPIDR" {
    var cpus: Cpus = .{};
    const a = call(.{ fid.cpu_on64, 1, 0x8008_0000, 0x1234 }, &cpus, Cpus.state);
    try testing.expectEqual(@as(u64, 0), a.x0);
    try testing.expectEqualDeep(Effect{ .cpu_on = .{ .target = 1, .entry = 0x8008_0000, .context = 0x1234 } }, a.effect);
    try testing.expectEqual(@as(u64, @bitCast(already_on)), call(.{ fid.cpu_on64, 0, 0, 0 }, &cpus, Cpus.state).x0);
    try testing.expectEqual(@as(u64, @bitCast(invalid_parameters)), call(.{ fid.cpu_on64, 0x10, 0, 0 }, &cpus, Cpus.state).x0);
    // The 32-bit call ignores the upper halves.
    const b = call(.{ fid.cpu_on32, 2, 0xffff_ffff_8000_0000, 0xffff_ffff_0000_0001 }, &cpus, Cpus.state);
    try testing.expectEqualDeep(Effect{ .cpu_on = .{ .target = 2, .entry = 0x8000_0000, .context = 1 } }, b.effect);
}

test "SYSTEM_OFF, SYSTEM_RESET and SYSTEM_RESET2 end the VM; junk ids are NOT_SUPPORTED" {
    var cpus: Cpus = .{};
    try testing.expectEqual(Effect.system_off, call(.{ fid.system_off, 0, 0, 0 }, &cpus, Cpus.state).effect);
    try testing.expectEqualDeep(Effect{ .system_reset = .{ .warm = false } }, call(.{ fid.system_reset, 0, 0, 0 }, &cpus, Cpus.state).effect);
    try testing.expectEqualDeep(Effect{ .system_reset = .{ .warm = true } }, call(.{ fid.system_reset2_64, 0, 0, 0 }, &cpus, Cpus.state).effect);
    try testing.expectEqual(@as(u64, @bitCast(not_supported)), call(.{ 0xdead_beef_8400_0008, 0, 0, 0 }, &cpus, Cpus.state).x0);
    try testing.expectEqual(Effect.none, call(.{ 0xc200_0000, 0, 0, 0 }, &cpus, Cpus.state).effect);
}

test "mpidrOf numbers vCPUs as the FDT's cpu nodes" {
    try testing.expectEqual(@as(u64, 0), mpidrOf(0));
    try testing.expectEqual(@as(u64, 15), mpidrOf(15));
    try testing.expectEqual(@as(u64, 0x100), mpidrOf(16));
    try testing.expectEqual(@as(u64, 0x101), affinity(0x8000_0101)); // bit 31 (RES1) dropped
}
