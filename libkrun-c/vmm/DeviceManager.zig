//! The VM's virtio devices: one MMIO slot each (its address range and GSI from the arch
//! backend), the device model and its transport, the irqfd that carries its interrupts, one
//! ioeventfd per queue and its backend fds registered with the event loop as handlers. Owns
//! every device model (attach takes it), and resets and releases them all at the end. The
//! builder (vmm/builder.zig) decides which devices a VM gets and in which order.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const GuestMemory = @import("guest_memory");
const Device = @import("../virtio/Device.zig");
const Transport = @import("../virtio/mmio.zig").Transport;
const console = @import("../virtio/console.zig");
const vsock = @import("../virtio/vsock/Vsock.zig");
const arch = @import("arch.zig").current;
const kvm = @import("kvm.zig");
const sys = @import("sys.zig");
const MmioBus = @import("MmioBus.zig");
const EventLoop = @import("EventLoop.zig");
const OutputBuffer = @import("OutputBuffer.zig");

const log = std.log.scoped(.vmm);

const DeviceManager = @This();

pub const Error = error{ InvalidConfig, OutOfMemory, SystemResources, KvmFailed };

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
    device: ?Device = null,
    transport: ?*Transport = null,
    owner: ?Owner = null,
    irq_fd: sys.fd_t = -1,
    queue_fds: [Device.queues_max]sys.fd_t = @splat(-1),
    queue_count: u8 = 0,
};

/// virtio-MMIO QueueNotify register.
pub const notify_offset: u64 = 0x50;

gpa: std.mem.Allocator,
vm: kvm.Vm,
mem: *const GuestMemory,
loop: *EventLoop,
mmio: *MmioBus,
slots: [arch.device_slots_max]Slot = @splat(.{}),
count: u32 = 0,

/// The slots attached so far, in attach order (slot n is MMIO slot n).
pub fn attached(self: *DeviceManager) []Slot {
    return self.slots[0..self.count];
}

/// A transport for the device model `model` (a pointer made with `gpa`) on the next slot.
/// Takes ownership of it whatever happens: on error it is released here or (once its slot is
/// counted) by `deinit`.
pub fn attachOwned(self: *DeviceManager, model: anytype) Error!void {
    const owner: Owner = .of(model);
    const device: Device = model.device();
    if (self.count == arch.device_slots_max) {
        owner.release(owner.ptr, self.gpa);
        log.warn("more than {d} virtio devices", .{arch.device_slots_max});
        return error.InvalidConfig;
    }
    const t = self.gpa.create(Transport) catch |err| {
        owner.release(owner.ptr, self.gpa);
        return err;
    };
    t.init(device, self.mem);
    const slot = &self.slots[self.count];
    slot.transport = t;
    slot.owner = owner;
    try self.attach(device, MmioBus.Handler.of(Transport, t), &t.interrupt);
}

/// Puts a device on the next MMIO slot: `handler` answers the slot's MMIO exits, an irqfd on
/// the slot's GSI carries its interrupts, one ioeventfd per queue (base+0x50, datamatch =
/// queue index) carries the guest's notifications to the event loop (or to a device that takes
/// them, `Device.takeNotifyFds`), and its backend fds are watched.
pub fn attach(self: *DeviceManager, device: Device, handler: MmioBus.Handler, interrupt: *Device.Interrupt) Error!void {
    assert(self.count < arch.device_slots_max); // tidy: attachOwned checked the slot count
    const n = self.count;
    const slot = &self.slots[n];
    slot.device = device;
    self.count += 1; // from here deinit releases the slot's fds
    const base = arch.deviceSlotAddr(n);
    slot.irq_fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    self.vm.irqfd(slot.irq_fd, arch.deviceSlotIrq(n)) catch |err| return kvmFailed("KVM_IRQFD", err);
    interrupt.irqfd = slot.irq_fd;
    const queues = device.vtable.queue_sizes_max.len;
    assert(queues <= Device.queues_max); // tidy: device tables, compiled in
    for (0..queues) |q| {
        const fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
        slot.queue_fds[q] = fd;
        slot.queue_count += 1;
        self.vm.ioeventfd(fd, base + notify_offset, q) catch |err| return kvmFailed("KVM_IOEVENTFD", err);
        if (device.vtable.takeNotifyFds != null) continue; // the device's own thread waits on it
        _ = self.loop.addNotifier(fd, .{ .ctx = slot, .call = slotQueueNotify, .arg = @intCast(q) }) catch return error.SystemResources;
    }
    if (device.vtable.takeNotifyFds) |take| take(device.ptr, slot.queue_fds[0..queues]);
    if (device.vtable.pollFds) |pollFds| if (device.vtable.backendReady != null) {
        var fds: [8]i32 = undefined;
        const count = pollFds(device.ptr, &fds);
        assert(count <= fds.len); // tidy: a device reports at most 8 fds
        for (fds[0..count]) |fd| {
            _ = self.loop.add(.{ .fd = fd, .handler = .{ .ctx = slot, .call = slotBackendReady, .arg = @bitCast(fd) } }) catch return error.SystemResources;
        }
    };
    self.mmio.attach(arch.deviceSlotAddr(n), handler);
}

/// Event-loop handlers: the loop knows fds and handlers, the slot knows its device.
fn slotQueueNotify(ctx: *anyopaque, queue_index: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    const d = slot.device.?;
    d.vtable.queueNotify(d.ptr, @intCast(queue_index));
}

fn slotBackendReady(ctx: *anyopaque, fd: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    const d = slot.device.?;
    d.vtable.backendReady.?(d.ptr, @bitCast(fd));
}

/// The vsock device, if the VM has one.
pub fn vsockDevice(self: *const DeviceManager) ?*vsock.Vsock {
    for (self.slots[0..self.count]) |s| {
        if (s.owner) |o| if (o.as(vsock.Vsock)) |v| return v;
    }
    return null;
}

/// The end of a VM (event-loop thread, vCPUs joined): every console writes out what the guest
/// left in its queues, within `budget`.
pub fn flushConsoles(self: *DeviceManager, budget: *OutputBuffer.Budget) void {
    for (self.slots[0..self.count]) |*s| {
        if (s.owner) |o| if (o.as(console.Console)) |c| c.flushFinal(budget);
    }
}

/// Resets every started device (the console discards what is left, the fs worker stops).
/// Idempotent: deinit resets them again, which is then a no-op.
pub fn shutdown(self: *DeviceManager) void {
    for (self.slots[0..self.count]) |*s| {
        if (s.transport) |t| t.shutdown();
    }
}

/// Stops the devices, then releases the models, transports and fds. The event loop that
/// watched their fds is gone already.
pub fn deinit(self: *DeviceManager) void {
    self.shutdown();
    for (self.slots[0..self.count]) |*s| {
        if (s.owner) |o| o.release(o.ptr, self.gpa);
        if (s.transport) |t| self.gpa.destroy(t);
        for (s.queue_fds[0..s.queue_count]) |fd| sys.close(fd);
        if (s.irq_fd >= 0) sys.close(s.irq_fd);
    }
    self.count = 0;
}

fn kvmFailed(what: []const u8, err: anyerror) Error {
    log.err("{s}: {t}", .{ what, err });
    return sys.shortage(err) orelse error.KvmFailed;
}

test "Owner: the release function follows the model's deinit shape; as() tells types apart" {
    const gpa = std.testing.allocator;
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
    try std.testing.expectEqual(plain, owners[0].as(Plain).?);
    try std.testing.expectEqual(@as(?*WithGpa, null), owners[0].as(WithGpa));
    try std.testing.expectEqual(with_gpa, owners[1].as(WithGpa).?);
    for (owners) |o| o.release(o.ptr, gpa); // the testing allocator reports anything leaked
}
