//! The HVF Machine's virtio devices: the slots (vmm/DeviceSlots.zig: address, SPI, device model,
//! transport, event-loop handlers, shared with KVM's DeviceManager) wired without KVM's irqfds
//! and ioeventfds. A slot's interrupt is its transport's `Interrupt.raise`, which pulses the
//! slot's SPI through `Vm.setSpi` (edge-triggered in the FDT, like the serial port's). A
//! QueueNotify write is an MMIO exit on a vCPU thread: the slot's MMIO handler (`Wire`) signals
//! that queue's Notifier instead of handing the write to the transport, so the device's
//! queueNotify runs on the event-loop thread as it does on KVM (device work may write host fds
//! and take the device's lock; a vCPU thread only records the kick). Every other register
//! access goes to the transport. Owns the models (DeviceSlots) and the Notifiers.
//! Compiled for macOS (the Machine) and Linux (the unit test below); never run on a Mac.
const std = @import("std");
const Device = @import("../../virtio/Device.zig");
const Transport = @import("../../virtio/mmio.zig").Transport;
const arch = @import("../arch.zig").current;
const MmioBus = @import("../MmioBus.zig");
const Notifier = @import("../Notifier.zig");
const OutputBuffer = @import("../OutputBuffer.zig");
const DeviceSlots = @import("../DeviceSlots.zig");
const Vm = @import("Vm.zig");

const Devices = @This();

pub const Error = DeviceSlots.Error;

/// One slot's HVF wiring: its MMIO handler and interrupt line.
pub const Wire = struct {
    vm: *const Vm,
    spi: u32,
    transport: *Transport,
    notifiers: [Device.queues_max]Notifier = undefined,
    /// Notifiers made (one per queue once attached).
    queue_count: u8 = 0,

    /// MMIO read: the transport's registers.
    pub fn read(w: *Wire, offset: u64, data: []u8) void {
        w.transport.read(offset, data);
    }

    /// MMIO write: a QueueNotify for one of the device's queues wakes the event loop (the
    /// queue's Notifier) like an ioeventfd; the rest (and a bad QueueNotify, which the
    /// transport ignores) goes to the transport. The value is the guest's: checked here.
    pub fn write(w: *Wire, offset: u64, data: []const u8) void {
        if (offset == DeviceSlots.notify_offset and data.len == 4) {
            const q = std.mem.readInt(u32, data[0..4], .little);
            if (q < w.queue_count) return w.notifiers[q].signal();
        }
        w.transport.write(offset, data);
    }

    /// Interrupt.raise (whatever thread signals): a pulse, as the FDT says edge-triggered.
    fn raise(ctx: *anyopaque) void {
        const w: *Wire = @ptrCast(@alignCast(ctx));
        w.vm.setSpi(w.spi, true);
        w.vm.setSpi(w.spi, false);
    }
};

slots: DeviceSlots,
vm: *const Vm,
wires: [arch.device_slots_max]Wire = undefined,
/// Wires made so far (their Notifiers are closed by deinit).
wired: u32 = 0,

/// How many devices are attached (the FDT lists that many slots).
pub fn count(self: *const Devices) u32 {
    return self.slots.count;
}

/// Puts the device model `model` (a pointer made with `gpa`) on the next slot, behind a new
/// transport, its interrupt pulsing the slot's SPI and one Notifier per queue. Takes ownership
/// of the model whatever happens (DeviceSlots.reserve).
pub fn attachOwned(self: *Devices, model: anytype) Error!void {
    const slot = try self.slots.reserve(model);
    const w = &self.wires[slot.index];
    w.* = .{ .vm = self.vm, .spi = slot.irq(), .transport = slot.transport };
    self.wired = slot.index + 1;
    slot.transport.interrupt.raise = .{ .ctx = w, .call = Wire.raise };
    var fds: [Device.queues_max]i32 = undefined;
    for (0..slot.queueCount()) |q| {
        w.notifiers[q] = Notifier.init() catch return error.SystemResources;
        w.queue_count += 1;
        fds[q] = w.notifiers[q].fd;
    }
    try self.slots.finish(slot, fds[0..w.queue_count], MmioBus.Handler.of(Wire, w));
}

/// The end of a VM (event-loop thread, vCPUs joined): consoles write out what is left.
pub fn flushConsoles(self: *Devices, budget: *OutputBuffer.Budget) void {
    self.slots.flushConsoles(budget);
}

/// Resets every started device. Idempotent.
pub fn shutdown(self: *Devices) void {
    self.slots.shutdown();
}

/// Stops the devices, releases the models and transports, then the Notifiers. The event
/// loop that watched them is gone already.
pub fn deinit(self: *Devices) void {
    self.slots.deinit();
    for (self.wires[0..self.wired]) |*w| {
        for (w.notifiers[0..w.queue_count]) |*n| n.deinit();
        w.queue_count = 0;
    }
    self.wired = 0;
}

// ---- tests (Linux): the real transport, MMIO bus, Notifiers and event loop ----------------
const testing = std.testing;
const Rng = @import("../../virtio/rng.zig").Rng;
const mmio = @import("../../virtio/mmio.zig");

test "a QueueNotify write signals the queue's Notifier, not the transport; other registers reach the transport" {
    const gpa = testing.allocator;
    var bed: DeviceSlots.TestBed = undefined;
    try bed.init();
    defer bed.deinit();
    const loop = &bed.loop;
    const bus = &bed.bus;
    // No VM here (the framework is macOS's): the Wire's raise is the only user of it.
    var devices: Devices = .{ .slots = bed.slots(gpa), .vm = undefined };
    defer devices.deinit();
    const rng = try gpa.create(Rng);
    rng.* = .{};
    const sources = loop.count;
    try devices.attachOwned(rng);
    try testing.expectEqual(@as(u32, 1), devices.count());
    const w = &devices.wires[0];
    try testing.expectEqual(arch.deviceSlotIrq(0), w.spi);
    try testing.expectEqual(@as(u8, 1), w.queue_count);
    try testing.expect(devices.slots.slots[0].transport.interrupt.raise != null);
    try testing.expectEqual(sources + 1, loop.count); // the queue's Notifier is a loop source
    const base = arch.deviceSlotAddr(0);
    var b: [4]u8 = undefined;
    bus.read(base + mmio.Reg.device_id, &b);
    try testing.expectEqual(Rng.device_id, std.mem.readInt(u32, &b, .little));
    // Queue 0: the Notifier fires (the loop would call Rng.queueNotify on its thread).
    bus.write(base + mmio.Reg.queue_notify, &.{ 0, 0, 0, 0 });
    try testing.expectEqual(@as(u64, 1), Notifier.drain(w.notifiers[0].fd));
    // A queue the device does not have (a guest value) is the transport's to ignore.
    bus.write(base + mmio.Reg.queue_notify, &.{ 7, 0, 0, 0 });
    try testing.expectEqual(@as(u64, 0), Notifier.drain(w.notifiers[0].fd));
    // Other registers are the transport's: QueueSel 0 → QueueNumMax is rng's queue size.
    bus.write(base + mmio.Reg.queue_sel, &.{ 0, 0, 0, 0 });
    bus.read(base + mmio.Reg.queue_num_max, &b);
    try testing.expectEqual(@as(u32, Rng.queue_sizes_max[0]), std.mem.readInt(u32, &b, .little));
}
