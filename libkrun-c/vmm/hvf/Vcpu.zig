//! One Hypervisor.framework vCPU: its own thread (hv_vcpu_create binds the vCPU to the thread
//! that creates it, and every hv_vcpu_* call must come from that thread), the boot registers
//! (vCPU 0 enters the Image with x0 = the FDT; the others wait for PSCI CPU_ON), and the run
//! loop: hv_vcpu_run, then exit.zig decides. Compiled for macOS, never run (docs/HVF.md).
const std = @import("std");
const hv = @import("hv.zig");
const exit_step = @import("exit.zig");
const psci = @import("psci.zig");
const MmioBus = @import("../MmioBus.zig");

const log = std.log.scoped(.hvf);

const Vcpu = @This();

pub const State = enum(u8) { off, starting, on, stopped };

index: u32,
api: *const hv.Api,
bus: *MmioBus,
/// All vCPUs of the VM (PSCI looks up CPU_ON's target here).
peers: []Vcpu,
/// Set by the Machine to end every loop; a kick then takes the vCPU out of hv_vcpu_run.
stopping: *std.atomic.Value(bool),
/// The first vCPU to end the VM writes it (poweroff, reset, failure).
outcome: *std.atomic.Value(u8),
state: std.atomic.Value(State) = .init(.off),
/// Guarded by `state` (written before it becomes `starting`).
entry: u64 = 0,
context: u64 = 0,
/// Valid once the thread created its vCPU; hv_vcpus_exit takes it from any thread.
id: std.atomic.Value(u64) = .init(no_id),
thread: ?std.Thread = null,
exits: std.atomic.Value(u64) = .init(0),

const no_id = std.math.maxInt(u64);
/// PSTATE at entry: EL1h, D, A, I and F masked (the Linux arm64 boot protocol).
const cpsr_el1h_masked: u64 = 0x3c5;

/// vCPU 0's boot: the Image entry and the FDT address in x0.
pub fn bootPrimary(self: *Vcpu, entry: u64, fdt: u64) void {
    self.entry = entry;
    self.context = fdt;
    self.state.store(.starting, .release);
}

pub fn spawn(self: *Vcpu) std.Thread.SpawnError!void {
    self.thread = try std.Thread.spawn(.{ .stack_size = 256 * 1024 }, threadMain, .{self});
}

/// Takes the vCPU out of hv_vcpu_run (any thread). Before its thread created it: nothing to do,
/// the loop reads `stopping` before it first runs.
pub fn kick(self: *Vcpu) void {
    const id = self.id.load(.acquire);
    if (id == no_id) return;
    _ = self.api.vcpus_exit(@ptrCast(&id), 1);
}

pub fn join(self: *Vcpu) void {
    if (self.thread) |t| t.join();
    self.thread = null;
}

fn threadMain(self: *Vcpu) void {
    var id: hv.VcpuId = undefined;
    var exit: *hv.VcpuExit = undefined;
    if (self.api.vcpu_create(&id, &exit, null) != hv.success) {
        log.warn("vCPU {d}: hv_vcpu_create failed", .{self.index});
        return self.end(.failure);
    }
    self.id.store(id, .release);
    defer _ = self.api.vcpu_destroy(id);
    _ = self.api.vcpu_set_sys_reg(id, .mpidr_el1, psci.mpidrOf(self.index));
    while (!self.stopping.load(.acquire)) {
        // Off until CPU_ON (vCPU 0 starts `starting`): poll, bounded, no guest state touched.
        switch (self.state.load(.acquire)) {
            .off => {
                pause1ms();
                continue;
            },
            .starting => self.enter(id),
            .on => {},
            .stopped => return,
        }
        if (self.api.vcpu_run(id) != hv.success) return self.end(.failure);
        _ = self.exits.fetchAdd(1, .monotonic);
        const step = exit_step.handle(exit, self.regs(id), self.bus, .{ .ctx = self, .state = cpuState });
        switch (step) {
            .run => {},
            // WFI: the in-kernel GIC holds the interrupt state and hv_vcpu_run returns when
            // one is pending, so a short pause only keeps an idle guest off the host CPU.
            .wait => pause1ms(),
            .timer => {
                // The framework masked the vtimer when it fired; the in-kernel GIC (hv_gic)
                // delivers its PPI. Unmask so the next expiry exits again.
                _ = self.api.vcpu_set_vtimer_mask(id, false);
            },
            .cpu_on => |on| self.cpuOn(on.target, on.entry, on.context),
            .cpu_off => self.state.store(.off, .release),
            .end => |why| return self.end(why),
        }
    }
}

/// Registers for a fresh start: PC, x0, PSTATE (CPU_ON's entry and context, or the boot's).
fn enter(self: *Vcpu, id: hv.VcpuId) void {
    _ = self.api.vcpu_set_reg(id, .pc, self.entry);
    _ = self.api.vcpu_set_reg(id, hv.Reg.x(0), self.context);
    _ = self.api.vcpu_set_reg(id, .cpsr, cpsr_el1h_masked);
    self.state.store(.on, .release);
}

fn cpuOn(self: *Vcpu, target: u64, entry: u64, context: u64) void {
    for (self.peers) |*p| {
        if (psci.mpidrOf(p.index) != target) continue;
        p.entry = entry;
        p.context = context;
        p.state.store(.starting, .release);
        return;
    }
}

fn cpuState(ctx: *anyopaque, target: u64) ?bool {
    const self: *Vcpu = @ptrCast(@alignCast(ctx));
    for (self.peers) |*p| {
        if (psci.mpidrOf(p.index) == target) return p.state.load(.acquire) != .off;
    }
    return null;
}

fn end(self: *Vcpu, why: exit_step.End) void {
    self.state.store(.stopped, .release);
    _ = self.outcome.cmpxchgStrong(0, @as(u8, @backingInt(why)) + 1, .acq_rel, .acquire);
    self.stopping.store(true, .release);
    for (self.peers) |*p| if (p != self) p.kick();
}

fn regs(self: *Vcpu, id: hv.VcpuId) exit_step.Regs {
    // The vCPU id fits in the pointer-sized context: no per-exit allocation.
    _ = self;
    return .{ .ctx = @ptrFromInt(@as(usize, @intCast(id)) + 1), .get = getReg, .set = setReg };
}

fn getReg(ctx: *anyopaque, reg: hv.Reg) u64 {
    var v: u64 = 0;
    _ = hv.loaded().vcpu_get_reg(@intFromPtr(ctx) - 1, reg, &v);
    return v;
}

fn setReg(ctx: *anyopaque, reg: hv.Reg, value: u64) void {
    _ = hv.loaded().vcpu_set_reg(@intFromPtr(ctx) - 1, reg, value);
}

fn pause1ms() void {
    var ts: std.c.timespec = .{ .sec = 0, .nsec = 1_000_000 };
    _ = std.c.nanosleep(&ts, null);
}

test "a vCPU whose thread never created it ignores kicks and joins at once" {
    // The loop itself needs the framework (never run here); this pins the states around it.
    var stopping = std.atomic.Value(bool).init(false);
    var outcome = std.atomic.Value(u8).init(0);
    var bus: MmioBus = .{};
    var v: [1]Vcpu = .{.{ .index = 0, .api = undefined, .bus = &bus, .peers = &.{}, .stopping = &stopping, .outcome = &outcome }};
    v[0].peers = &v;
    v[0].kick();
    v[0].join();
    try std.testing.expectEqual(State.off, v[0].state.load(.acquire));
    v[0].bootPrimary(0x8000_0000, 0x8800_0000);
    try std.testing.expectEqual(State.starting, v[0].state.load(.acquire));
    try std.testing.expectEqual(@as(?bool, true), cpuState(&v[0], 0));
    try std.testing.expectEqual(@as(?bool, null), cpuState(&v[0], 1));
    _ = &threadMain; // analyzed on Linux too
}

test "a vCPU's end records the first outcome, failure included (End's u2 + 1 must not overflow)" {
    var stopping = std.atomic.Value(bool).init(false);
    var outcome = std.atomic.Value(u8).init(0);
    var bus: MmioBus = .{};
    var v: [2]Vcpu = undefined;
    for (&v, 0..) |*x, i| x.* = .{ .index = @intCast(i), .api = undefined, .bus = &bus, .peers = &v, .stopping = &stopping, .outcome = &outcome };
    v[1].end(.failure); // its peer has no thread: the kick is ignored
    try std.testing.expectEqual(@as(u8, @backingInt(exit_step.End.failure)) + 1, outcome.load(.acquire));
    try std.testing.expect(stopping.load(.acquire));
    try std.testing.expectEqual(State.stopped, v[1].state.load(.acquire));
    v[0].end(.poweroff); // the first outcome stays
    try std.testing.expectEqual(@as(u8, 4), outcome.load(.acquire));
}
