//! The VM's virtio-MMIO slots, whatever hypervisor runs it: slot n's address and interrupt line
//! (the arch's: `deviceSlotAddr`, `deviceSlotIrq`), the device model on it (owned: attach takes
//! it), its transport on the MMIO bus, and the event-loop handlers that run a queue's work when
//! the queue's notify fd fires and a device backend's when one of its fds is ready. How a
//! slot's interrupts and queue notifications travel is the backend's, wired between `reserve`
//! and `finish`: KVM (vmm/DeviceManager.zig) uses an irqfd and one ioeventfd per queue;
//! Hypervisor.framework (vmm/hvf/Devices.zig) a `raise` callback pulsing the slot's SPI and one
//! Notifier per queue that QueueNotify exits signal. Either way queue work runs on the event-loop
//! thread. Resets and releases every model at the end.
const std = @import("std");
const GuestMemory = @import("guest_memory");
const Device = @import("../virtio/Device.zig");
const virtio_mmio = @import("../virtio/mmio.zig");
const Transport = virtio_mmio.Transport;
const console = @import("../virtio/console.zig");
const arch = @import("arch.zig").current;
const MmioBus = @import("MmioBus.zig");
const EventLoop = @import("EventLoop.zig");
const OutputBuffer = @import("OutputBuffer.zig");

const log = std.log.scoped(.vmm);

const DeviceSlots = @This();

pub const Error = error{ InvalidConfig, OutOfMemory, SystemResources };

/// virtio-MMIO QueueNotify register: the offset an ioeventfd matches, or an MMIO exit reports.
pub const notify_offset: u64 = virtio_mmio.Reg.queue_notify;

/// The device model behind a slot, owned here: any type with `device()` (and `destroy()`, or
/// `deinit()` / `deinit(gpa)` before it is freed). `of` makes the release function at compile
/// time, so a new device needs no entry here; `as` gives the model back by type.
pub const Owner = struct {
    ptr: *anyopaque,
    release: *const fn (ptr: *anyopaque, gpa: std.mem.Allocator) void,

    pub fn of(model: anytype) Owner {
        const T = @typeInfo(@TypeOf(model)).pointer.child;
        return .{ .ptr = model, .release = releaseFn(T) };
    }

    /// The model if it is a `T`.
    pub fn as(owner: Owner, comptime T: type) ?*T {
        return if (owner.release == releaseFn(T)) @ptrCast(@alignCast(owner.ptr)) else null;
    }

    fn releaseFn(comptime T: type) *const fn (*anyopaque, std.mem.Allocator) void {
        return &struct {
            fn release(ptr: *anyopaque, gpa: std.mem.Allocator) void {
                const model: *T = @ptrCast(@alignCast(ptr));
                if (@hasDecl(T, "destroy")) return model.destroy(); // frees itself
                if (@hasDecl(T, "deinit")) switch (@typeInfo(@TypeOf(T.deinit)).@"fn".param_types.len) {
                    1 => model.deinit(),
                    2 => model.deinit(gpa),
                    else => @compileError(@typeName(T) ++ ".deinit takes (self) or (self, gpa)"),
                };
                gpa.destroy(model);
            }
        }.release;
    }
};

pub const Slot = struct {
    /// Slot n of the arch's virtio slots (MMIO slot n; on aarch64 window slot n + 1).
    index: u32 = 0,
    device: Device = undefined,
    transport: *Transport = undefined,
    owner: Owner = undefined,

    /// The slot's guest-physical base (the FDT's `reg`, the x86 command line's address).
    pub fn addr(self: *const Slot) u64 {
        return arch.deviceSlotAddr(self.index);
    }

    /// Its interrupt line: the KVM irqfd's GSI; on aarch64 the SPI number (from 0).
    pub fn irq(self: *const Slot) u32 {
        return arch.deviceSlotIrq(self.index);
    }

    /// One notify fd per queue: the device's queue table, compiled in.
    pub fn queueCount(self: *const Slot) usize {
        return self.device.vtable.queue_sizes_max.len;
    }
};

gpa: std.mem.Allocator,
mem: *const GuestMemory,
loop: *EventLoop,
mmio: *MmioBus,
slots: [arch.device_slots_max]Slot = @splat(.{}),
count: u32 = 0,

/// The slots attached so far, in attach order (slot n is virtio slot n).
pub fn attached(self: *DeviceSlots) []Slot {
    return self.slots[0..self.count];
}

/// Puts the device model `model` (a pointer made with `gpa`) and a new transport for it on the
/// next slot, which the caller then wires and hands to `finish`. Takes ownership of the model
/// whatever happens: on error it is released here; once its slot is counted, by `deinit`.
pub fn reserve(self: *DeviceSlots, model: anytype) Error!*Slot {
    const owner: Owner = .of(model);
    if (self.count == arch.device_slots_max) {
        owner.release(owner.ptr, self.gpa);
        log.warn("more than {d} virtio devices", .{arch.device_slots_max});
        return error.InvalidConfig;
    }
    const t = self.gpa.create(Transport) catch |err| {
        owner.release(owner.ptr, self.gpa);
        return err;
    };
    const device: Device = model.device();
    t.init(device, self.mem);
    const slot = &self.slots[self.count];
    slot.* = .{ .index = self.count, .device = device, .transport = t, .owner = owner };
    self.count += 1;
    return slot;
}

/// Completes a reserved slot: each queue's notify fd (`queue_fds`: one per queue, an ioeventfd
/// or a Notifier's fd) calls the device's queueNotify from the event loop, or is handed to the
/// device when it waits on them itself (`Device.takeNotifyFds`); the device's backend fds are
/// watched; `handler` answers the slot's MMIO exits.
pub fn finish(self: *DeviceSlots, slot: *Slot, queue_fds: []const i32, handler: MmioBus.Handler) Error!void {
    const d = slot.device;
    std.debug.assert(queue_fds.len == slot.queueCount()); // tidy: the backend made one per queue
    if (d.vtable.takeNotifyFds) |take| {
        take(d.ptr, queue_fds); // the device's own thread waits on them
    } else for (queue_fds, 0..) |fd, q| {
        _ = self.loop.addNotifier(fd, .{ .ctx = slot, .call = queueNotified, .arg = @intCast(q) }) catch return error.SystemResources;
    }
    if (d.vtable.pollFds) |pollFds| if (d.vtable.backendReady != null) {
        var fds: [8]i32 = undefined;
        const count = pollFds(d.ptr, &fds);
        std.debug.assert(count <= fds.len); // tidy: a device reports at most 8 fds
        for (fds[0..count]) |fd| {
            _ = self.loop.add(.{ .fd = fd, .handler = .{ .ctx = slot, .call = backendReady, .arg = @bitCast(fd) } }) catch return error.SystemResources;
        }
    };
    self.mmio.attach(slot.addr(), handler);
}

/// Event-loop handlers: the loop knows fds and handlers, the slot knows its device.
fn queueNotified(ctx: *anyopaque, queue_index: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    slot.device.vtable.queueNotify(slot.device.ptr, @intCast(queue_index));
}

fn backendReady(ctx: *anyopaque, fd: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    slot.device.vtable.backendReady.?(slot.device.ptr, @bitCast(fd));
}

/// The first attached model of type `T` (the vsock device, a console), if any.
pub fn find(self: *DeviceSlots, comptime T: type) ?*T {
    for (self.attached()) |s| if (s.owner.as(T)) |m| return m;
    return null;
}

/// The end of a VM (event-loop thread, vCPUs joined): every console writes out what the guest
/// left in its queues, within `budget`.
pub fn flushConsoles(self: *DeviceSlots, budget: *OutputBuffer.Budget) void {
    for (self.attached()) |s| if (s.owner.as(console.Console)) |c| c.flushFinal(budget);
}

/// Resets every started device (the console discards what is left, the fs worker stops).
/// Idempotent: deinit resets them again, which is then a no-op.
pub fn shutdown(self: *DeviceSlots) void {
    for (self.attached()) |s| s.transport.shutdown();
}

/// Stops the devices, then releases the models and transports. The event loop that watched
/// their fds is gone already; the backend closes its own fds.
pub fn deinit(self: *DeviceSlots) void {
    self.shutdown();
    for (self.attached()) |s| {
        s.owner.release(s.owner.ptr, self.gpa);
        self.gpa.destroy(s.transport);
    }
    self.count = 0;
}

/// For tests (here and vmm/hvf/Devices.zig): an empty guest memory, a real event loop (not
/// started) and MMIO bus, for slots to sit on.
pub const TestBed = struct {
    mem: GuestMemory = .{},
    loop: EventLoop = undefined,
    bus: MmioBus = .{},

    pub fn init(t: *TestBed) !void {
        t.* = .{};
        try t.loop.init();
    }

    pub fn deinit(t: *TestBed) void {
        t.loop.deinit();
    }

    pub fn slots(t: *TestBed, gpa: std.mem.Allocator) DeviceSlots {
        return .{ .gpa = gpa, .mem = &t.mem, .loop = &t.loop, .mmio = &t.bus };
    }
};

// ---- tests: real devices, transports, MMIO bus and event loop -----------------------------
const testing = std.testing;
const Rng = @import("../virtio/rng.zig").Rng;
const Balloon = @import("../virtio/balloon.zig").Balloon;
const Notifier = @import("Notifier.zig");

test "Owner: the release function follows the model's deinit shape; as() tells types apart" {
    const gpa = testing.allocator;
    const Plain = struct { x: u8 = 0 };
    const WithGpa = struct {
        buf: []u8,
        pub fn deinit(self: *@This(), a: std.mem.Allocator) void {
            a.free(self.buf);
        }
    };
    const plain = try gpa.create(Plain);
    plain.* = .{};
    const with_gpa = try gpa.create(WithGpa);
    with_gpa.* = .{ .buf = try gpa.alloc(u8, 16) };
    const owners = [_]Owner{ .of(plain), .of(with_gpa) };
    try testing.expectEqual(plain, owners[0].as(Plain).?);
    try testing.expectEqual(@as(?*WithGpa, null), owners[0].as(WithGpa));
    try testing.expectEqual(with_gpa, owners[1].as(WithGpa).?);
    for (owners) |o| o.release(o.ptr, gpa); // the testing allocator reports anything leaked
}

fn readReg(bus: *MmioBus, addr: u64) u32 {
    var b: [4]u8 = undefined;
    bus.read(addr, &b);
    return std.mem.readInt(u32, &b, .little);
}

test "slots: the arch's addresses and lines in attach order, the device's registers on the bus, queue fds watched, overflow released" {
    const gpa = testing.allocator;
    var bed: TestBed = undefined;
    try bed.init();
    defer bed.deinit();
    const loop = &bed.loop;
    const bus = &bed.bus;
    var slots = bed.slots(gpa);
    defer slots.deinit();
    var notifiers: [2 * Device.queues_max]Notifier = undefined;
    var made: usize = 0;
    defer for (notifiers[0..made]) |*n| n.deinit();
    const sources_before = loop.count;
    const balloon = try gpa.create(Balloon);
    balloon.* = .{};
    const rng = try gpa.create(Rng);
    rng.* = .{};
    inline for (.{ balloon, rng }, 0..) |model, n| {
        const slot = try slots.reserve(model);
        try testing.expectEqual(@as(u32, n), slot.index);
        try testing.expectEqual(arch.deviceSlotAddr(n), slot.addr());
        try testing.expectEqual(arch.deviceSlotIrq(n), slot.irq());
        var fds: [Device.queues_max]i32 = undefined;
        for (0..slot.queueCount()) |q| {
            notifiers[made] = try Notifier.init();
            fds[q] = notifiers[made].fd;
            made += 1;
        }
        try slots.finish(slot, fds[0..slot.queueCount()], MmioBus.Handler.of(Transport, slot.transport));
    }
    try testing.expectEqual(@as(u32, 2), slots.count);
    // Each queue's fd is an event-loop source (rng has 1 queue; the balloon its own count).
    try testing.expectEqual(sources_before + @as(u32, @intCast(made)), loop.count);
    // The guest's view: virtio-MMIO magic and device ids at the slots' addresses.
    try testing.expectEqual(virtio_mmio.magic, readReg(bus, arch.deviceSlotAddr(0) + virtio_mmio.Reg.magic_value));
    try testing.expectEqual(Balloon.device_id, readReg(bus, arch.deviceSlotAddr(0) + virtio_mmio.Reg.device_id));
    try testing.expectEqual(Rng.device_id, readReg(bus, arch.deviceSlotAddr(1) + virtio_mmio.Reg.device_id));
    try testing.expectEqual(rng, slots.find(Rng).?);
    try testing.expectEqual(@as(?*console.Console, null), slots.find(console.Console));
    // Past the last slot the model is released, not leaked, and nothing is counted.
    slots.count = arch.device_slots_max;
    const extra = try gpa.create(Rng);
    extra.* = .{};
    try testing.expectError(error.InvalidConfig, slots.reserve(extra));
    slots.count = 2;
}
