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
//!
//! A device type `T` does not write its VTable: `Impl(T)` (or `vtableOf` for a device whose
//! queue count is known only when it is built, the console) builds it at compile time from
//! T's public declarations, and `pub const device = Device.Impl(T).device;` gives `t.device()`:
//! - `device_id: u32` and `queue_sizes_max: [N]u16` (one entry a queue; not for `vtableOf`);
//! - `features`: a `u64` constant, or a method `fn (self: *T) u64`;
//! - methods `activate(self: *T, a: Activation) ActivateError!void`,
//!   `queueNotify(self: *T, index: u16) void` and `reset(self: *T) void`;
//! - optional methods: `readConfig(self: *T, offset: u32, data: []u8) void` (without it the
//!   config space reads as zeros), `writeConfig(self: *T, offset: u32, data: []const u8) void`
//!   (without it writes are ignored), `pollFds(self: *T, out: []i32) usize` together with
//!   `backendReady(self: *T, fd: i32) void`, `shmRegion(self: *T) ?ShmRegion`,
//!   `takeNotifyFds(self: *T, fds: []const i32) void`. They must be `pub`: a private one is
//!   invisible from here and would fall back to the default.
const std = @import("std");
const GuestMemory = @import("guest_memory");
const queue = @import("queue.zig");
const sys = @import("../sys/linux.zig");

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

    /// Runs `work(ctx, a)` on queue `index` unless that queue is broken. An error from it is
    /// the driver breaking the protocol: logged to `log` (the device's scope), the queue
    /// stops, and the driver is asked for a reset (`Interrupt.fail`).
    pub fn run(a: Activation, index: u16, comptime log: type, ctx: anytype, comptime work: fn (@TypeOf(ctx), Activation) queue.Error!void) void {
        if (a.queues[index].isBroken()) return;
        work(ctx, a) catch |err| {
            log.warn("queue {d}: {t}", .{ index, err });
            a.queues[index].markBroken();
            a.interrupt.fail();
        };
    }
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
        if (self.irqfd >= 0) sys.eventfdSignal(self.irqfd);
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

/// The VTable and `device()` of a device type with a fixed queue count (see the file comment).
pub fn Impl(comptime T: type) type {
    return struct {
        pub const vtable: VTable = vtableOf(T, &T.queue_sizes_max);

        pub fn device(self: *T) Device {
            return .{ .ptr = self, .vtable = &vtable };
        }
    };
}

/// The VTable of device type `T` (see the file comment) with `queue_sizes` as its queues.
pub fn vtableOf(comptime T: type, queue_sizes: []const u16) VTable {
    comptime if (@hasDecl(T, "pollFds") != @hasDecl(T, "backendReady"))
        @compileError(@typeName(T) ++ ": pollFds and backendReady go together");
    const f = Thunks(T);
    return .{
        .device_id = T.device_id,
        .queue_sizes_max = queue_sizes,
        .features = f.features,
        .readConfig = f.readConfig,
        .writeConfig = f.writeConfig,
        .activate = f.activate,
        .queueNotify = f.queueNotify,
        .reset = f.reset,
        .pollFds = if (@hasDecl(T, "pollFds")) f.pollFds else null,
        .backendReady = if (@hasDecl(T, "backendReady")) f.backendReady else null,
        .shmRegion = if (@hasDecl(T, "shmRegion")) f.shmRegion else null,
        .takeNotifyFds = if (@hasDecl(T, "takeNotifyFds")) f.takeNotifyFds else null,
    };
}

/// The `*anyopaque` entry points of `T`'s typed methods.
fn Thunks(comptime T: type) type {
    return struct {
        fn cast(ptr: *anyopaque) *T {
            return @ptrCast(@alignCast(ptr));
        }
        fn features(ptr: *anyopaque) u64 {
            if (@typeInfo(@TypeOf(T.features)) == .@"fn") return T.features(cast(ptr));
            return T.features;
        }
        fn readConfig(ptr: *anyopaque, offset: u32, data: []u8) void {
            if (@hasDecl(T, "readConfig")) return T.readConfig(cast(ptr), offset, data);
            @memset(data, 0); // no config space
        }
        fn writeConfig(ptr: *anyopaque, offset: u32, data: []const u8) void {
            if (@hasDecl(T, "writeConfig")) return T.writeConfig(cast(ptr), offset, data);
        }
        fn activate(ptr: *anyopaque, a: Activation) ActivateError!void {
            return T.activate(cast(ptr), a);
        }
        fn queueNotify(ptr: *anyopaque, index: u16) void {
            T.queueNotify(cast(ptr), index);
        }
        fn reset(ptr: *anyopaque) void {
            T.reset(cast(ptr));
        }
        fn pollFds(ptr: *anyopaque, out: []i32) usize {
            return T.pollFds(cast(ptr), out);
        }
        fn backendReady(ptr: *anyopaque, fd: i32) void {
            T.backendReady(cast(ptr), fd);
        }
        fn shmRegion(ptr: *anyopaque) ?ShmRegion {
            return T.shmRegion(cast(ptr));
        }
        fn takeNotifyFds(ptr: *anyopaque, fds: []const i32) void {
            T.takeNotifyFds(cast(ptr), fds);
        }
    };
}

const testing = std.testing;

test "Impl: the VTable follows the type's declarations, with defaults for what it leaves out" {
    // Fixed queues, a constant feature set, a config space, no backend fds.
    const Fixed = struct {
        config: [4]u8 = "cfg!".*,
        pub const device_id: u32 = 42;
        pub const queue_sizes_max = [_]u16{16};
        pub const features: u64 = 1 << 32 | 1 << 3;
        pub fn readConfig(f: *@This(), offset: u32, data: []u8) void {
            @memcpy(data, f.config[offset..][0..data.len]);
        }
        pub fn writeConfig(f: *@This(), offset: u32, data: []const u8) void {
            @memcpy(f.config[offset..][0..data.len], data);
        }
        pub fn activate(_: *@This(), _: Activation) ActivateError!void {}
        pub fn queueNotify(_: *@This(), _: u16) void {}
        pub fn reset(_: *@This()) void {}
    };
    var fixed: Fixed = .{};
    const d = Impl(Fixed).device(&fixed);
    try testing.expectEqual(@as(u32, 42), d.deviceId());
    try testing.expectEqualSlices(u16, &.{16}, d.vtable.queue_sizes_max);
    try testing.expectEqual(Fixed.features, d.vtable.features(d.ptr));
    try testing.expect(d.vtable.pollFds == null and d.vtable.backendReady == null);
    try testing.expect(d.vtable.shmRegion == null and d.vtable.takeNotifyFds == null);
    d.vtable.writeConfig(d.ptr, 1, "XY");
    var cfg: [4]u8 = undefined;
    d.vtable.readConfig(d.ptr, 0, &cfg);
    try testing.expectEqualStrings("cXY!", &cfg);

    // No readConfig/writeConfig: the config space reads as zeros and writes vanish; features
    // from a method; backend fds; a queue count known only at run time (the console's case).
    const Bare = struct {
        n: u32 = 0,
        pub const device_id: u32 = 7;
        pub fn features(b: *@This()) u64 {
            return @as(u64, 1) << 32 | b.n;
        }
        pub fn activate(_: *@This(), _: Activation) ActivateError!void {}
        pub fn queueNotify(b: *@This(), index: u16) void {
            b.n += index;
        }
        pub fn reset(b: *@This()) void {
            b.n = 0;
        }
        pub fn pollFds(_: *@This(), out: []i32) usize {
            out[0] = 9;
            return 1;
        }
        pub fn backendReady(b: *@This(), fd: i32) void {
            b.n = @intCast(fd);
        }
    };
    var bare: Bare = .{};
    const sizes = [_]u16{ 8, 4 };
    const v = vtableOf(Bare, &sizes);
    try testing.expectEqualSlices(u16, &sizes, v.queue_sizes_max);
    cfg = "junk".*;
    v.readConfig(&bare, 0, &cfg);
    try testing.expectEqual([4]u8{ 0, 0, 0, 0 }, cfg);
    v.writeConfig(&bare, 0, "abcd");
    v.queueNotify(&bare, 3);
    try testing.expectEqual(@as(u64, 1 << 32 | 3), v.features(&bare));
    var fds: [1]i32 = undefined;
    try testing.expectEqual(@as(usize, 1), v.pollFds.?(&bare, &fds));
    v.backendReady.?(&bare, fds[0]);
    try testing.expectEqual(@as(u32, 9), bare.n);
    v.reset(&bare);
    try testing.expectEqual(@as(u32, 0), bare.n);
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
