//! One Hypervisor.framework exit handled: what the vCPU loop (vmm/hvf/Vcpu.zig) does after
//! hv_vcpu_run returns. Data aborts go to the same MMIO bus the KVM backend serves
//! (vmm/MmioBus.zig: the serial port, the virtio-MMIO slots), HVCs to PSCI (psci.zig), WFI to
//! a wait, the vtimer to the timer interrupt. The registers are reached through `Regs`, so the
//! logic runs in unit tests on Linux against a plain register array (the framework cannot run
//! here); on macOS `Regs` is hv_vcpu_get_reg/set_reg.
const std = @import("std");
const hv = @import("hv.zig");
const esr = @import("esr.zig");
const psci = @import("psci.zig");
const MmioBus = @import("../MmioBus.zig");

const log = std.log.scoped(.hvf);

pub const Regs = struct {
    ctx: *anyopaque,
    get: *const fn (ctx: *anyopaque, reg: hv.Reg) u64,
    set: *const fn (ctx: *anyopaque, reg: hv.Reg, value: u64) void,

    fn x(r: Regs, n: u5) u64 {
        return if (n == 31) 0 else r.get(r.ctx, hv.Reg.x(n)); // 31: XZR
    }

    fn setX(r: Regs, n: u5, value: u64) void {
        if (n != 31) r.set(r.ctx, hv.Reg.x(n), value);
    }

    fn skip(r: Regs) void {
        r.set(r.ctx, .pc, r.get(r.ctx, .pc) +% 4);
    }
};

/// Why a vCPU stops for good (the Machine's outcome).
pub const End = enum { poweroff, reset, panic_reset, failure };

pub const Step = union(enum) {
    /// Run the guest again.
    run,
    /// WFI: sleep until an interrupt is pending or the vCPU is kicked.
    wait,
    /// The vtimer fired (the framework masked it): raise the timer interrupt.
    timer,
    cpu_on: @FieldType(psci.Effect, "cpu_on"),
    cpu_off,
    end: End,
};

/// The PSCI view of the other vCPUs (psci.CpuState).
pub const Cpus = struct { ctx: *anyopaque, state: psci.CpuState };

pub fn handle(exit: *const hv.VcpuExit, regs: Regs, bus: *MmioBus, cpus: Cpus) Step {
    return switch (exit.reason) {
        .canceled => .run, // hv_vcpus_exit: the loop looks at its stop and pause flags
        .vtimer_activated => .timer,
        .exception => exception(exit.exception, regs, bus, cpus),
        .unknown, _ => {
            log.warn("hv_vcpu_run: exit reason {d}", .{@backingInt(exit.reason)});
            return .{ .end = .failure };
        },
    };
}

fn exception(e: hv.ExitException, regs: Regs, bus: *MmioBus, cpus: Cpus) Step {
    switch (esr.decode(e.syndrome, e.physical_address)) {
        .mmio => |m| {
            if (m.write) {
                var buf: [8]u8 = undefined;
                bus.write(m.addr, m.storeBytes(regs.x(m.reg), &buf));
            } else {
                var buf: [8]u8 = @splat(0);
                bus.read(m.addr, buf[0..m.size]);
                regs.setX(m.reg, m.loadValue(&buf));
            }
            regs.skip();
            return .run;
        },
        .wfi => {
            regs.skip();
            return .wait;
        },
        .wfe => {
            regs.skip();
            return .run;
        },
        // HVC returns past itself; a trapped SMC does not (the PC is the SMC's).
        .hvc => return call(regs, cpus),
        .smc => {
            regs.skip();
            return call(regs, cpus);
        },
        .sysreg => |s| {
            // Registers the framework traps to us (debug, OS lock): read as zero, writes ignored.
            if (s.read) regs.setX(s.reg, 0);
            regs.skip();
            return .run;
        },
        .unhandled => |class| {
            log.warn("guest exception the VMM cannot emulate: EC 0x{x} (ESR 0x{x}, IPA 0x{x}, PC 0x{x})", .{ class, e.syndrome, e.physical_address, regs.get(regs.ctx, .pc) });
            return .{ .end = .failure };
        },
    }
}

fn call(regs: Regs, cpus: Cpus) Step {
    const answer = psci.call(.{ regs.x(0), regs.x(1), regs.x(2), regs.x(3) }, cpus.ctx, cpus.state);
    regs.setX(0, answer.x0);
    return switch (answer.effect) {
        .none => .run,
        .cpu_on => |on| .{ .cpu_on = on },
        .cpu_off => .cpu_off,
        .system_off => .{ .end = .poweroff },
        .system_reset => |r| .{ .end = if (r.warm) .panic_reset else .reset },
    };
}

// ---- tests: the real MMIO bus, a register array standing in for the vCPU ------------------
const testing = std.testing;
const arch = @import("../arch.zig").current;

const FakeRegs = struct {
    r: [35]u64 = @splat(0),
    fn get(ctx: *anyopaque, reg: hv.Reg) u64 {
        const self: *FakeRegs = @ptrCast(@alignCast(ctx));
        return self.r[@backingInt(reg)];
    }
    fn set(ctx: *anyopaque, reg: hv.Reg, value: u64) void {
        const self: *FakeRegs = @ptrCast(@alignCast(ctx));
        self.r[@backingInt(reg)] = value;
    }
    fn regs(self: *FakeRegs) Regs {
        return .{ .ctx = self, .get = get, .set = set };
    }
};

const Device = struct {
    bytes: [16]u8 = .{ 0x81, 0x82, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88, 0, 0, 0, 0, 0, 0, 0, 0 },
    written: [8]u8 = @splat(0),
    written_len: usize = 0,
    pub fn read(self: *Device, offset: u64, data: []u8) void {
        @memcpy(data, self.bytes[@intCast(offset)..][0..data.len]);
    }
    pub fn write(self: *Device, offset: u64, data: []const u8) void {
        _ = offset;
        @memcpy(self.written[0..data.len], data);
        self.written_len = data.len;
    }
};

const NoCpus = struct {
    fn state(_: *anyopaque, target: u64) ?bool {
        return if (target == 0) true else if (target == 1) false else null;
    }
};

fn abort(iss: u25, ipa: u64) hv.VcpuExit {
    return .{ .reason = .exception, .exception = .{ .syndrome = @as(u64, 0x24) << 26 | 1 << 25 | iss, .virtual_address = 0, .physical_address = ipa } };
}

fn setup(bus: *MmioBus, dev: *Device) void {
    bus.attach(arch.mmio_window_base, MmioBus.Handler.of(Device, dev));
}

test "an MMIO store of w3 reaches the device on the bus and the PC moves past it" {
    var bus: MmioBus = .{};
    var dev: Device = .{};
    setup(&bus, &dev);
    var f: FakeRegs = .{};
    f.r[3] = 0xffff_ffff_1122_3344;
    f.r[31] = 0x8000_1000;
    var nobody: u8 = 0;
    const e = abort(1 << 24 | 2 << 22 | 3 << 16 | 1 << 6, arch.mmio_window_base);
    try testing.expectEqual(Step.run, handle(&e, f.regs(), &bus, .{ .ctx = &nobody, .state = NoCpus.state }));
    try testing.expectEqualSlices(u8, &.{ 0x44, 0x33, 0x22, 0x11 }, dev.written[0..dev.written_len]);
    try testing.expectEqual(@as(u64, 0x8000_1004), f.r[31]);
}

test "an MMIO load sign-extends into its register; a load into xzr changes nothing; unclaimed reads zero" {
    var bus: MmioBus = .{};
    var dev: Device = .{};
    setup(&bus, &dev);
    var f: FakeRegs = .{};
    var nobody: u8 = 0;
    const cpus: Cpus = .{ .ctx = &nobody, .state = NoCpus.state };
    // ldrsb x5: byte 0x81 → 0xffff...ff81.
    _ = handle(&abort(1 << 24 | 0 << 22 | 1 << 21 | 5 << 16 | 1 << 15, arch.mmio_window_base), f.regs(), &bus, cpus);
    try testing.expectEqual(@as(u64, 0xffff_ffff_ffff_ff81), f.r[5]);
    // ldr w6 at offset 4: 0x88878685, zero-extended.
    _ = handle(&abort(1 << 24 | 2 << 22 | 6 << 16, arch.mmio_window_base + 4), f.regs(), &bus, cpus);
    try testing.expectEqual(@as(u64, 0x8887_8685), f.r[6]);
    const before = f.r;
    _ = handle(&abort(1 << 24 | 3 << 22 | 31 << 16 | 1 << 15, arch.mmio_window_base), f.regs(), &bus, cpus);
    try testing.expectEqualSlices(u64, before[0..31], f.r[0..31]);
    f.r[7] = 0xdead;
    _ = handle(&abort(1 << 24 | 3 << 22 | 7 << 16 | 1 << 15, arch.mmio_window_base + arch.mmio_slot_size), f.regs(), &bus, cpus);
    try testing.expectEqual(@as(u64, 0), f.r[7]);
    try testing.expectEqual(@as(u64, 1), bus.unclaimed.load(.monotonic));
}

test "an MMIO access without a syndrome (ldp) ends the vCPU as a failure, untouched" {
    var bus: MmioBus = .{};
    var f: FakeRegs = .{};
    var nobody: u8 = 0;
    const e = abort(3 << 22, arch.mmio_window_base);
    try testing.expectEqual(Step{ .end = .failure }, handle(&e, f.regs(), &bus, .{ .ctx = &nobody, .state = NoCpus.state }));
    try testing.expectEqual(@as(u64, 0), f.r[31]);
}

test "HVC PSCI calls: VERSION answers in x0, CPU_ON starts vCPU 1, SYSTEM_RESET2 is a panic reset" {
    var bus: MmioBus = .{};
    var f: FakeRegs = .{};
    var nobody: u8 = 0;
    const cpus: Cpus = .{ .ctx = &nobody, .state = NoCpus.state };
    const hvc: hv.VcpuExit = .{ .reason = .exception, .exception = .{ .syndrome = @as(u64, 0x16) << 26 | 1 << 25, .virtual_address = 0, .physical_address = 0 } };
    f.r[0] = psci.fid.version;
    f.r[31] = 0x1000;
    try testing.expectEqual(Step.run, handle(&hvc, f.regs(), &bus, cpus));
    try testing.expectEqual(psci.version_1_0, f.r[0]);
    try testing.expectEqual(@as(u64, 0x1000), f.r[31]); // HVC's return address is already past it
    f.r[0] = psci.fid.cpu_on64;
    f.r[1] = 1;
    f.r[2] = 0x8020_0000;
    f.r[3] = 7;
    try testing.expectEqualDeep(Step{ .cpu_on = .{ .target = 1, .entry = 0x8020_0000, .context = 7 } }, handle(&hvc, f.regs(), &bus, cpus));
    f.r[0] = psci.fid.system_reset2_64;
    try testing.expectEqual(Step{ .end = .panic_reset }, handle(&hvc, f.regs(), &bus, cpus));
    f.r[0] = psci.fid.system_off;
    try testing.expectEqual(Step{ .end = .poweroff }, handle(&hvc, f.regs(), &bus, cpus));
}

test "WFI waits past itself, the vtimer raises the timer, a cancel runs again, an unknown reason fails" {
    var bus: MmioBus = .{};
    var f: FakeRegs = .{};
    var nobody: u8 = 0;
    const cpus: Cpus = .{ .ctx = &nobody, .state = NoCpus.state };
    const wfi: hv.VcpuExit = .{ .reason = .exception, .exception = .{ .syndrome = @as(u64, 0x01) << 26 | 1 << 25, .virtual_address = 0, .physical_address = 0 } };
    try testing.expectEqual(Step.wait, handle(&wfi, f.regs(), &bus, cpus));
    try testing.expectEqual(@as(u64, 4), f.r[31]);
    try testing.expectEqual(Step.timer, handle(&.{ .reason = .vtimer_activated, .exception = undefined }, f.regs(), &bus, cpus));
    try testing.expectEqual(Step.run, handle(&.{ .reason = .canceled, .exception = undefined }, f.regs(), &bus, cpus));
    try testing.expectEqual(Step{ .end = .failure }, handle(&.{ .reason = @fromBackingInt(@intCast(77)), .exception = undefined }, f.regs(), &bus, cpus));
}
