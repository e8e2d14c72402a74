//! ESR_EL2 (the syndrome Hypervisor.framework hands back in hv_vcpu_exit_t) decoded into what
//! the HVF vCPU loop acts on: an MMIO access for the bus, a WFI/WFE, an HVC/SMC call (PSCI),
//! a trapped system-register access, or something it cannot emulate. Pure: unit-tested on Linux
//! (Arm ARM D24.2.40 "ESR_EL2"; the ISS layouts of EC 0x01, 0x16/0x17, 0x18 and 0x24).
const std = @import("std");

/// Exception classes the loop knows (ESR_EL2.EC, bits 31:26).
pub const Class = enum(u6) {
    wfx = 0x01,
    hvc64 = 0x16,
    smc64 = 0x17,
    sysreg = 0x18,
    instruction_abort_lower = 0x20,
    data_abort_lower = 0x24,
    _,
};

/// A data abort the bus can serve: ISV set (the access is described), no stage-1 walk fault.
pub const Mmio = struct {
    addr: u64,
    /// 1, 2, 4 or 8 bytes.
    size: u8,
    write: bool,
    /// The transfer register; 31 is XZR (writes zero, a read is discarded).
    reg: u5,
    /// A narrow load sign-extends into the register (LDRSB/LDRSH/LDRSW).
    sign_extend: bool,
    /// The register is 64-bit (else the result is zero-extended from 32 bits).
    wide: bool,

    /// The value a read puts into the register, from the bytes the device returned
    /// (little endian, `size` of them).
    pub fn loadValue(m: Mmio, bytes: []const u8) u64 {
        std.debug.assert(bytes.len >= m.size); // tidy: the loop passes the access's buffer
        var v: u64 = 0;
        for (bytes[0..m.size], 0..) |b, i| v |= @as(u64, b) << @intCast(8 * i);
        const bits: u7 = @as(u7, @intCast(m.size)) * 8;
        if (m.sign_extend and bits < 64) {
            const shift: u6 = @intCast(64 - @as(u7, bits));
            v = @bitCast(@as(i64, @bitCast(v << shift)) >> shift);
        }
        return if (m.wide) v else v & 0xffff_ffff;
    }

    /// The bytes a write stores, from the register's value.
    pub fn storeBytes(m: Mmio, value: u64, out: *[8]u8) []const u8 {
        std.mem.writeInt(u64, out, value, .little);
        return out[0..m.size];
    }
};

/// A trapped MRS/MSR (EC 0x18): the hv_sys_reg_t-style encoding, the register, the direction.
pub const SysRegAccess = struct {
    encoding: u16,
    reg: u5,
    read: bool,
};

pub const Exit = union(enum) {
    mmio: Mmio,
    wfi,
    wfe,
    hvc: u16,
    smc: u16,
    sysreg: SysRegAccess,
    /// An exception the VMM cannot emulate (its class, for the log): a data abort without a
    /// valid syndrome (a load/store pair, a cache maintenance op on MMIO), a stage-1 walk into
    /// MMIO, an instruction fetch from MMIO, any other class.
    unhandled: u6,
};

pub fn class(esr: u64) Class {
    return @fromBackingInt(@intCast(@as(u6, @truncate(esr >> 26))));
}

/// Instruction length bit: 4-byte instruction (always for AArch64).
pub fn isWide(esr: u64) bool {
    return esr & (1 << 25) != 0;
}

pub fn decode(esr: u64, ipa: u64) Exit {
    const iss: u32 = @truncate(esr & 0x1ff_ffff);
    const ec: u6 = @truncate(esr >> 26);
    return switch (class(esr)) {
        .wfx => if (iss & 1 == 0) .wfi else .wfe,
        .hvc64 => .{ .hvc = @truncate(iss) },
        .smc64 => .{ .smc = @truncate(iss) },
        .sysreg => .{
            .sysreg = .{
                // ISS: Op0 21:20, Op2 19:17, Op1 16:14, CRn 13:10, Rt 9:5, CRm 4:1, Direction 0.
                .encoding = @import("hv.zig").sysReg(
                    @truncate(iss >> 20),
                    @truncate(iss >> 14),
                    @truncate(iss >> 10),
                    @truncate(iss >> 1),
                    @truncate(iss >> 17),
                ),
                .reg = @truncate(iss >> 5),
                .read = iss & 1 != 0,
            },
        },
        .data_abort_lower => dataAbort(iss, ipa) orelse .{ .unhandled = ec },
        else => .{ .unhandled = ec },
    };
}

fn dataAbort(iss: u32, ipa: u64) ?Exit {
    const isv = iss & (1 << 24) != 0;
    const s1ptw = iss & (1 << 7) != 0;
    const cache_op = iss & (1 << 8) != 0;
    if (!isv or s1ptw or cache_op) return null;
    return .{
        .mmio = .{
            .addr = ipa,
            .size = @as(u8, 1) << @as(u2, @truncate(iss >> 22)), // SAS, bits 23:22
            .write = iss & (1 << 6) != 0,
            .reg = @truncate(iss >> 16),
            .sign_extend = iss & (1 << 21) != 0,
            .wide = iss & (1 << 15) != 0,
        },
    };
}

const testing = std.testing;

fn esrOf(ec: u6, iss: u25) u64 {
    return @as(u64, ec) << 26 | 1 << 25 | iss;
}

test "a 32-bit store to MMIO (str w3, [x0]) decodes to a 4-byte write of w3" {
    // ISV, SAS=2 (word), SRT=3, WnR.
    const esr = esrOf(0x24, 1 << 24 | 2 << 22 | 3 << 16 | 1 << 6);
    const e = decode(esr, 0x4000_0000);
    try testing.expectEqualDeep(Exit{ .mmio = .{ .addr = 0x4000_0000, .size = 4, .write = true, .reg = 3, .sign_extend = false, .wide = false } }, e);
    var buf: [8]u8 = undefined;
    try testing.expectEqualSlices(u8, &.{ 0x44, 0x33, 0x22, 0x11 }, e.mmio.storeBytes(0xdead_beef_1122_3344, &buf));
}

test "a sign-extending byte load into x5 (ldrsb x5, [x1]) decodes and extends" {
    const esr = esrOf(0x24, 1 << 24 | 0 << 22 | 1 << 21 | 5 << 16 | 1 << 15);
    const e = decode(esr, 0x4000_1000);
    try testing.expectEqual(@as(u8, 1), e.mmio.size);
    try testing.expect(!e.mmio.write);
    try testing.expectEqual(@as(u5, 5), e.mmio.reg);
    try testing.expectEqual(@as(u64, 0xffff_ffff_ffff_ff80), e.mmio.loadValue(&.{0x80}));
    try testing.expectEqual(@as(u64, 0x7f), e.mmio.loadValue(&.{0x7f}));
}

test "ldrsh w2 sign-extends to 32 bits only; ldr x2 keeps 64" {
    const half = decode(esrOf(0x24, 1 << 24 | 1 << 22 | 1 << 21 | 2 << 16), 0);
    try testing.expectEqual(@as(u64, 0xffff_8001), half.mmio.loadValue(&.{ 0x01, 0x80 }));
    const dword = decode(esrOf(0x24, 1 << 24 | 3 << 22 | 2 << 16 | 1 << 15), 0);
    try testing.expectEqual(@as(u8, 8), dword.mmio.size);
    try testing.expectEqual(@as(u64, 0x8877_6655_4433_2211), dword.mmio.loadValue(&.{ 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88 }));
}

test "data aborts the bus cannot serve are unhandled, not guessed" {
    // No ISV (ldp/stp to MMIO), a stage-1 walk fault, a cache maintenance op.
    try testing.expectEqual(Exit{ .unhandled = 0x24 }, decode(esrOf(0x24, 3 << 22 | 1 << 6), 0));
    try testing.expectEqual(Exit{ .unhandled = 0x24 }, decode(esrOf(0x24, 1 << 24 | 1 << 7), 0));
    try testing.expectEqual(Exit{ .unhandled = 0x24 }, decode(esrOf(0x24, 1 << 24 | 1 << 8), 0));
    try testing.expectEqual(Exit{ .unhandled = 0x20 }, decode(esrOf(0x20, 0), 0));
    try testing.expectEqual(Exit{ .unhandled = 0x3f }, decode(esrOf(0x3f, 0), 0));
}

test "WFI, WFE, HVC #0 and SMC #0 decode" {
    try testing.expectEqual(Exit.wfi, decode(esrOf(0x01, 0), 0));
    try testing.expectEqual(Exit.wfe, decode(esrOf(0x01, 1), 0));
    try testing.expectEqual(Exit{ .hvc = 0 }, decode(esrOf(0x16, 0), 0));
    try testing.expectEqual(Exit{ .smc = 7 }, decode(esrOf(0x17, 7), 0));
}

test "a trapped MRS of CNTV_CTL_EL0 into x4 gives hv_sys_reg_t's encoding" {
    // op0=3 op2=1 op1=3 CRn=14 Rt=4 CRm=3 read.
    const iss: u25 = 3 << 20 | 1 << 17 | 3 << 14 | 14 << 10 | 4 << 5 | 3 << 1 | 1;
    const e = decode(esrOf(0x18, iss), 0);
    try testing.expectEqual(@as(u16, 0xdf19), e.sysreg.encoding);
    try testing.expectEqual(@as(u5, 4), e.sysreg.reg);
    try testing.expect(e.sysreg.read);
}
