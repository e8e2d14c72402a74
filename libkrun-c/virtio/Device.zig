//! The contract between the virtio-MMIO transport (virtio/mmio.zig) and a device model
//! (console, fs, rng, balloon, vsock, ...). A device knows its queues, features and config
//! space; it never sees KVM. The transport validates every driver write before a device sees
//! it, and hands the device its queues, guest memory and an interrupt line on activation.
//!
//! Threading: `activate`, `reset`, `readConfig`, `writeConfig` run on the thread that handles
//! the MMIO exit (a vCPU thread) with the transport's lock held. `queueNotify` runs on the
//! event-loop thread when the guest kicks a queue (ioeventfd), unless the device took its
//! ioeventfds (`takeNotifyFds`). `backendReady` runs on the
//! event-loop thread when one of the device's backend fds (see `pollFds`) is readable.
//!
//! The rest of the contract:
//! - `queues_max` is 16: a multiport console with its console port plus
//!   krun-stdin/stdout/stderr has 2 + 2*4 = 10 queues.
//! - Devices serialize `queueNotify`/`backendReady` against `activate`/`reset` with their
//!   own lock (virtio/Lock.zig); the transport never holds a device's lock.
//! - `Interrupt.fail()`: a device found a queue broken → DEVICE_NEEDS_RESET plus a config
//!   interrupt; `Interrupt.configChanged()` bumps ConfigGeneration and raises a config interrupt.
//! - Backend fds are watched level-triggered by the event loop, so a device must make its fd
//!   quiet when it cannot make progress (no guest buffers, input at EOF): the console hands out
//!   an epoll set of its own whose inputs are EPOLLONESHOT and re-armed only when it can read.
//! - The transport (virtio/mmio.zig `Transport`) owns the queues and the `Interrupt`; the VMM
//!   passes `&transport.interrupt` to attachDevice and `MmioBus.Handler.of(Transport, transport)` (vmm/MmioBus.zig).
const std = @import("std");
const GuestMemory = @import("guest_memory");
const queue = @import("queue.zig");

const is_macos = @import("builtin").os.tag == .macos;

const Device = @This();

ptr: *anyopaque,
vtable: *const VTable,

pub const queues_max = 16;

pub const VTable = struct {
    /// Virtio device id (3 console, 26 fs, 4 rng, 5 balloon, 19 vsock, 2 blk, 1 net).
    device_id: u32,
    /// Maximum size of each queue; its length is the device's queue count.
    queue_sizes_max: []const u16,
    /// Feature bits offered (VIRTIO_F_VERSION_1 included by the device).
    features: *const fn (ptr: *anyopaque) u64,
    readConfig: *const fn (ptr: *anyopaque, offset: u32, data: []u8) void,
    writeConfig: *const fn (ptr: *anyopaque, offset: u32, data: []const u8) void,
    /// Called once the driver sets DRIVER_OK. An error marks the device broken (NEEDS_RESET).
    activate: *const fn (ptr: *anyopaque, ctx: Activation) ActivateError!void,
    queueNotify: *const fn (ptr: *anyopaque, queue_index: u16) void,
    /// Stop using the queues; after it returns the device holds no guest memory references.
    reset: *const fn (ptr: *anyopaque) void,
    /// Host fds the event loop should watch for this device (e.g. console input). Optional.
    pollFds: ?*const fn (ptr: *anyopaque, out: []i32) usize = null,
    backendReady: ?*const fn (ptr: *anyopaque, fd: i32) void = null,
    /// Shared-memory region (virtio-fs DAX window): guest address and length, if any.
    shmRegion: ?*const fn (ptr: *anyopaque) ?ShmRegion = null,
    /// Optional: the device waits on its queues' ioeventfds itself (virtio-fs's worker), so a
    /// kick reaches it without a hop through the event loop; the loop then never watches them
    /// and `queueNotify` only runs for MMIO QueueNotify writes. Called once at attach, before
    /// `activate`; the fds (index = queue) stay the VMM's and outlive the device.
    takeNotifyFds: ?*const fn (ptr: *anyopaque, fds: []const i32) void = null,
};

pub const ActivateError = error{ DeviceBroken, OutOfMemory };

pub const ShmRegion = struct { guest_addr: u64, len: u64 };

/// What a device gets on activation. Queues stay owned by the transport; the device may use
/// them until `reset` returns.
pub const Activation = struct {
    mem: *const GuestMemory,
    queues: []queue.Queue,
    interrupt: *Interrupt,
    acked_features: u64,
};

/// The device's interrupt line: sets the MMIO InterruptStatus bits and signals the guest
/// (irqfd on KVM; `raise` where there is none: on macOS the HVF Machine would pulse the slot's
/// SPI through Vm.setSpi, as it does for the serial port; nothing attaches a device there yet).
/// Safe to call from any thread.
pub const Interrupt = struct {
    /// VIRTIO_MMIO_INT_VRING (bit 0) and VIRTIO_MMIO_INT_CONFIG (bit 1).
    status: std.atomic.Value(u32) = .init(0),
    /// Set by `fail`: the transport reports DEVICE_NEEDS_RESET until the driver resets.
    needs_reset: std.atomic.Value(bool) = .init(false),
    /// The MMIO ConfigGeneration register; bumped by `configChanged`.
    config_generation: std.atomic.Value(u32) = .init(0),
    /// The irqfd eventfd; -1 in unit tests, where `count` records signals instead.
    irqfd: i32 = -1,
    /// Instead of `irqfd`: called after the status bits are set, from the signalling thread.
    raise: ?Raise = null,
    count: std.atomic.Value(u32) = .init(0),

    pub const Raise = struct {
        ctx: *anyopaque,
        call: *const fn (ctx: *anyopaque) void,
    };

    pub const vring: u32 = 1 << 0;
    pub const config: u32 = 1 << 1;

    pub fn signal(self: *Interrupt, why: u32) void {
        std.debug.assert(why == vring or why == config); // tidy: a constant of the device code
        _ = self.status.fetchOr(why, .seq_cst);
        _ = self.count.fetchAdd(1, .monotonic);
        if (self.raise) |r| return r.call(r.ctx);
        if (comptime is_macos) return; // no irqfd there
        if (self.irqfd >= 0) {
            const one: u64 = 1;
            _ = std.os.linux.write(self.irqfd, std.mem.asBytes(&one), 8);
        }
    }

    /// The driver broke the protocol (a queue error): DEVICE_NEEDS_RESET and a config
    /// interrupt, as virtio 1.x §2.1.2 asks.
    pub fn fail(self: *Interrupt) void {
        if (self.needs_reset.swap(true, .seq_cst)) return; // told the driver once already
        self.signal(config);
    }

    /// The device's config space changed (e.g. console size): new generation, interrupt.
    pub fn configChanged(self: *Interrupt) void {
        _ = self.config_generation.fetchAdd(1, .seq_cst);
        self.signal(config);
    }
};

pub fn deviceId(self: Device) u32 {
    return self.vtable.device_id;
}

test "an interrupt with a raise callback calls it after setting the status, and writes no irqfd" {
    const Seen = struct {
        status: u32 = 0,
        calls: u32 = 0,
        int: *Interrupt,
        fn call(ctx: *anyopaque) void {
            const self: *@This() = @ptrCast(@alignCast(ctx));
            self.status = self.int.status.load(.seq_cst);
            self.calls += 1;
        }
    };
    var int: Interrupt = .{ .irqfd = 1 << 20 }; // not an fd: a write to it would fail (EBADF)
    var seen: Seen = .{ .int = &int };
    int.raise = .{ .ctx = &seen, .call = Seen.call };
    int.signal(Interrupt.vring);
    try std.testing.expectEqual(@as(u32, 1), seen.calls);
    try std.testing.expectEqual(Interrupt.vring, seen.status);
    int.configChanged();
    try std.testing.expectEqual(@as(u32, 2), seen.calls);
    try std.testing.expectEqual(Interrupt.vring | Interrupt.config, seen.status);
}
