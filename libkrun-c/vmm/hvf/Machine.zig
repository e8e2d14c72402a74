//! The macOS Machine: the interface capi/ drives (vmm/backend.zig picks it on macOS), in front
//! of the Hypervisor.framework backend (vmm/hvf/). Today `create` loads Hypervisor.framework
//! and then refuses with error.HostUnsupported: the virtio devices, the console and the event
//! loop are built on Linux-only primitives (epoll, eventfd, irqfd/ioeventfd) that have no macOS
//! port yet, so no VM can be assembled. docs/HVF.md says what exists and what never ran on a Mac.
const std = @import("std");
const Config = @import("../../Config.zig");
const terminal = @import("../terminal.zig");
const linux_machine = @import("../Machine.zig");
const hv = @import("hv.zig");
const Vm = @import("Vm.zig");
const Vcpu = @import("Vcpu.zig");

const log = std.log.scoped(.hvf);

const Machine = @This();

pub const Error = linux_machine.Error;
pub const ExitReason = linux_machine.ExitReason;
pub const exit_code_failure = linux_machine.exit_code_failure;
pub const pause_timeout_ns = linux_machine.pause_timeout_ns;
pub const Stats = linux_machine.Stats;
pub const PauseError = linux_machine.PauseError;

/// Never constructed yet (create refuses); the methods below drive what a built one would hold.
vm: Vm,
vcpus: []Vcpu = &.{},
stopping: std.atomic.Value(bool) = .init(false),
exit_status: i32 = exit_code_failure,

pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    _ = gpa;
    _ = cfg;
    _ = hv.api() catch |err| {
        log.warn("Hypervisor.framework cannot be loaded ({t}); zkrun needs macOS 11+ on Apple silicon", .{err});
        return error.HostUnsupported;
    };
    log.warn("the HVF backend has no virtio device model on macOS yet (docs/HVF.md)", .{});
    return error.HostUnsupported;
}

pub fn start(self: *Machine) Error!void {
    for (self.vcpus) |*v| v.spawn() catch {
        self.stop();
        for (self.vcpus) |*w| w.join();
        return error.SystemResources;
    };
}

pub fn wait(self: *Machine, timeout_ms: i32) error{Timeout}!i32 {
    _ = timeout_ms;
    for (self.vcpus) |*v| v.join();
    return self.exit_status;
}

pub fn exitReason(self: *const Machine) ExitReason {
    _ = self;
    return .vmm_error;
}

pub fn stop(self: *Machine) void {
    self.stopping.store(true, .release);
    for (self.vcpus) |*v| v.kick();
}

pub fn pause(self: *Machine) PauseError!void {
    _ = self;
    return error.NotRunning;
}

pub fn unpause(self: *Machine) PauseError!void {
    _ = self;
    return error.NotRunning;
}

pub fn resizeConsole(self: *Machine, size: terminal.Size) error{ NoTerminal, Io }!void {
    _ = self;
    _ = size;
    return error.NoTerminal;
}

pub fn stats(self: *const Machine) Stats {
    var exits: u64 = 0;
    for (self.vcpus) |*v| exits += v.exits.load(.monotonic);
    return .{ .setup_ns = 0, .exits = exits, .guest_resident_bytes = 0 };
}

pub fn destroy(self: *Machine) void {
    self.stop();
    for (self.vcpus) |*v| v.join();
    self.vm.destroy();
}

/// hv_vm_get_max_vcpu_count (macOS 15+), capped by what the FDT describes; 1 when the
/// framework or the call is missing (the start then fails with -ENOTSUP anyway).
pub fn maxVcpus() Error!u32 {
    return Vm.maxVcpus();
}
