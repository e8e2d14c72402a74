//! The VM's virtio devices on KVM: the slots (vmm/DeviceSlots.zig: address, GSI, device model,
//! transport, event-loop handlers, shared with the Hypervisor.framework backend) wired the KVM
//! way: an irqfd on the slot's GSI carries its interrupts, one ioeventfd per queue its
//! notifications. Owns every device model (attach takes it) and those fds, and resets and
//! releases them all at the end. The builder (vmm/builder.zig) decides which devices a VM gets
//! and in which order.
const std = @import("std");
const linux = std.os.linux;
const Device = @import("../virtio/Device.zig");
const Transport = @import("../virtio/mmio.zig").Transport;
const vsock = @import("../virtio/vsock/Vsock.zig");
const arch = @import("arch.zig").current;
const kvm = @import("kvm.zig");
const sys = @import("../sys/linux.zig");
const MmioBus = @import("MmioBus.zig");
const OutputBuffer = @import("OutputBuffer.zig");
const DeviceSlots = @import("DeviceSlots.zig");

const log = std.log.scoped(.vmm);

const DeviceManager = @This();

pub const Error = DeviceSlots.Error || error{KvmFailed};

/// A slot's KVM fds (slot n's are `fds[n]`).
const SlotFds = struct {
    irq_fd: sys.fd_t = -1,
    queue_fds: [Device.queues_max]sys.fd_t = @splat(-1),
    queue_count: u8 = 0,
};

slots: DeviceSlots,
vm: kvm.Vm,
fds: [arch.device_slots_max]SlotFds = @splat(.{}),

/// How many devices are attached (slot n is virtio slot n).
pub fn count(self: *const DeviceManager) u32 {
    return self.slots.count;
}

/// Puts the device model `model` (a pointer made with `gpa`) on the next slot, behind a new
/// transport: an irqfd on the slot's GSI carries its interrupts, one ioeventfd per queue
/// (base+0x50, datamatch = queue index) the guest's notifications to the event loop (or to a
/// device that takes them, `Device.takeNotifyFds`), and its backend fds are watched. Takes
/// ownership of the model whatever happens (DeviceSlots.reserve).
pub fn attachOwned(self: *DeviceManager, model: anytype) Error!void {
    const slot = try self.slots.reserve(model);
    const fds = &self.fds[slot.index]; // from here deinit closes what is in it
    fds.irq_fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    self.vm.irqfd(fds.irq_fd, slot.irq()) catch |err| return kvmFailed("KVM_IRQFD", err);
    slot.transport.interrupt.irqfd = fds.irq_fd;
    for (0..slot.queueCount()) |q| {
        const fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
        fds.queue_fds[q] = fd;
        fds.queue_count += 1;
        self.vm.ioeventfd(fd, slot.addr() + DeviceSlots.notify_offset, q) catch |err| return kvmFailed("KVM_IOEVENTFD", err);
    }
    try self.slots.finish(slot, fds.queue_fds[0..fds.queue_count], MmioBus.Handler.of(Transport, slot.transport));
}

/// The vsock device, if the VM has one.
pub fn vsockDevice(self: *DeviceManager) ?*vsock.Vsock {
    return self.slots.find(vsock.Vsock);
}

/// The end of a VM (event-loop thread, vCPUs joined): every console writes out what the guest
/// left in its queues, within `budget`.
pub fn flushConsoles(self: *DeviceManager, budget: *OutputBuffer.Budget) void {
    self.slots.flushConsoles(budget);
}

/// Resets every started device (the console discards what is left, the fs worker stops).
/// Idempotent: deinit resets them again, which is then a no-op.
pub fn shutdown(self: *DeviceManager) void {
    self.slots.shutdown();
}

/// Stops the devices, then releases the models, transports and fds. The event loop that
/// watched their fds is gone already.
pub fn deinit(self: *DeviceManager) void {
    const n = self.slots.count;
    self.slots.deinit();
    for (self.fds[0..n]) |*f| {
        for (f.queue_fds[0..f.queue_count]) |fd| sys.close(fd);
        if (f.irq_fd >= 0) sys.close(f.irq_fd);
        f.* = .{};
    }
}

fn kvmFailed(what: []const u8, err: anyerror) Error {
    log.err("{s}: {t}", .{ what, err });
    return sys.shortage(err) orelse error.KvmFailed;
}
