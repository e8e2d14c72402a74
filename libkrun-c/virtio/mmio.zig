//! The virtio-MMIO transport, version 2 (virtio 1.x §4.2.2): the register window of one device
//! slot. The VMM's MMIO bus calls `Transport.read`/`write` on every exit in the slot; this file
//! validates every driver write (status machine, feature negotiation, queue setup) before the
//! device sees anything, and owns the device's queues and interrupt line.
//!
//! Wiring (the VMM side):
//!     const t = try gpa.create(Transport);          // must not move: devices keep pointers
//!     t.init(device, &machine.mem);
//!     try machine.attachDevice(device, MmioBus.Handler.of(Transport, t), &t.interrupt);
//! The queue count for ioeventfds is `device.vtable.queue_sizes_max.len` (= `t.queue_count`);
//! ioeventfd writes go straight to `Device.queueNotify`; MMIO writes to QueueNotify (when no
//! ioeventfd matched) are forwarded to it too.
//!
//! Threading: one `Lock` serializes all register accesses (several vCPUs may probe at once).
//! Device callbacks that run under it: activate, reset, readConfig, writeConfig.
const std = @import("std");
const assert = std.debug.assert;
const Device = @import("Device.zig");
const GuestMemory = @import("guest_memory");
const queue = @import("queue.zig");
const Lock = @import("Lock.zig");

const log = std.log.scoped(.virtio);

pub const magic: u32 = 0x74726976; // "virt"
pub const version: u32 = 2;
/// libkrun (like Firecracker) reports vendor 0.
pub const vendor_id: u32 = 0;

/// Register offsets (virtio 1.x §4.2.2, table "MMIO Device Register Layout").
pub const Reg = struct {
    pub const magic_value = 0x000;
    pub const version = 0x004;
    pub const device_id = 0x008;
    pub const vendor_id = 0x00c;
    pub const device_features = 0x010;
    pub const device_features_sel = 0x014;
    pub const driver_features = 0x020;
    pub const driver_features_sel = 0x024;
    pub const queue_sel = 0x030;
    pub const queue_num_max = 0x034;
    pub const queue_num = 0x038;
    pub const queue_ready = 0x044;
    pub const queue_notify = 0x050;
    pub const interrupt_status = 0x060;
    pub const interrupt_ack = 0x064;
    pub const status = 0x070;
    pub const queue_desc_low = 0x080;
    pub const queue_desc_high = 0x084;
    pub const queue_driver_low = 0x090;
    pub const queue_driver_high = 0x094;
    pub const queue_device_low = 0x0a0;
    pub const queue_device_high = 0x0a4;
    pub const shm_sel = 0x0ac;
    pub const shm_len_low = 0x0b0;
    pub const shm_len_high = 0x0b4;
    pub const shm_base_low = 0x0b8;
    pub const shm_base_high = 0x0bc;
    pub const config_generation = 0x0fc;
    pub const config = 0x100;
};

/// Device status bits (virtio 1.x §2.1).
pub const Status = struct {
    pub const acknowledge: u32 = 1;
    pub const driver: u32 = 2;
    pub const driver_ok: u32 = 4;
    pub const features_ok: u32 = 8;
    pub const device_needs_reset: u32 = 64;
    pub const failed: u32 = 128;
};

pub const feature_version_1: u6 = 32;

/// The slot is 4 KiB; config space is what is left after the registers.
pub const window_size = 0x1000;

pub const Transport = struct {
    lock: Lock = .{},
    device: Device,
    mem: *const GuestMemory,
    interrupt: Device.Interrupt = .{},
    queues: [Device.queues_max]queue.Queue,
    queue_count: u16,
    /// What the driver wrote (without NEEDS_RESET, which is derived on read).
    status: u32 = 0,
    device_features_sel: u32 = 0,
    driver_features_sel: u32 = 0,
    driver_features: u64 = 0,
    queue_sel: u32 = 0,
    shm_sel: u32 = 0,
    activated: bool = false,
    /// Driver accesses that broke the register protocol (counted, logged once).
    rejected: u32 = 0,

    /// Sets up the transport for `device` in place (it must not move afterwards).
    pub fn init(t: *Transport, device: Device, mem: *const GuestMemory) void {
        const sizes = device.vtable.queue_sizes_max;
        assert(sizes.len > 0 and sizes.len <= Device.queues_max); // tidy: the device vtable, our code
        t.* = .{ .device = device, .mem = mem, .queues = undefined, .queue_count = @intCast(sizes.len) };
        for (&t.queues, 0..) |*q, i| q.* = queue.Queue.init(if (i < sizes.len) sizes[i] else 1);
        assert(t.deviceFeatures() & (@as(u64, 1) << feature_version_1) != 0); // tidy: the device vtable, our code
    }

    fn deviceFeatures(t: *const Transport) u64 {
        return t.device.vtable.features(t.device.ptr);
    }

    /// An MMIO read of `data.len` bytes at `offset` in the slot.
    pub fn read(t: *Transport, offset: u64, data: []u8) void {
        @memset(data, 0);
        if (offset >= window_size or data.len > window_size - offset) return;
        t.lock.lock();
        defer t.lock.unlock();
        if (offset >= Reg.config) {
            if (!configWidthOk(data.len)) return t.reject("config read width", offset);
            return t.device.vtable.readConfig(t.device.ptr, @intCast(offset - Reg.config), data);
        }
        if (data.len != 4 or offset % 4 != 0) return t.reject("register read width", offset);
        const value = t.readRegister(@intCast(offset));
        std.mem.writeInt(u32, data[0..4], value, .little);
    }

    /// An MMIO write of `data.len` bytes at `offset` in the slot.
    pub fn write(t: *Transport, offset: u64, data: []const u8) void {
        if (offset >= window_size or data.len > window_size - offset) return;
        var notify: ?u16 = null;
        {
            t.lock.lock();
            defer t.lock.unlock();
            if (offset >= Reg.config) {
                if (!configWidthOk(data.len)) return t.reject("config write width", offset);
                return t.device.vtable.writeConfig(t.device.ptr, @intCast(offset - Reg.config), data);
            }
            if (data.len != 4 or offset % 4 != 0) return t.reject("register write width", offset);
            const value = std.mem.readInt(u32, data[0..4], .little);
            notify = t.writeRegister(@intCast(offset), value);
        }
        // Outside our lock: device work may be long (the device takes its own lock).
        if (notify) |q| t.device.vtable.queueNotify(t.device.ptr, q);
    }

    fn configWidthOk(len: usize) bool {
        return len == 1 or len == 2 or len == 4 or len == 8;
    }

    fn reject(t: *Transport, what: []const u8, offset: u64) void {
        if (t.rejected == 0) log.warn("virtio-mmio (device {d}): bad {s} at 0x{x}", .{ t.device.deviceId(), what, offset });
        t.rejected +|= 1;
    }

    fn selectedQueue(t: *Transport) ?*queue.Queue {
        if (t.queue_sel >= t.queue_count) return null;
        return &t.queues[t.queue_sel];
    }

    fn shmRegion(t: *const Transport) ?Device.ShmRegion {
        if (t.shm_sel != 0) return null;
        const f = t.device.vtable.shmRegion orelse return null;
        return f(t.device.ptr);
    }

    fn readRegister(t: *Transport, offset: u32) u32 {
        return switch (offset) {
            Reg.magic_value => magic,
            Reg.version => version,
            Reg.device_id => t.device.deviceId(),
            Reg.vendor_id => vendor_id,
            Reg.device_features => switch (t.device_features_sel) {
                0 => @truncate(t.deviceFeatures()),
                1 => @truncate(t.deviceFeatures() >> 32),
                else => 0,
            },
            Reg.queue_num_max => if (t.selectedQueue()) |q| q.size_max else 0,
            Reg.queue_ready => if (t.selectedQueue()) |q| @intFromBool(q.ready) else 0,
            Reg.interrupt_status => t.interrupt.status.load(.seq_cst),
            Reg.status => t.readStatus(),
            Reg.shm_len_low => if (t.shmRegion()) |r| @truncate(r.len) else 0xffff_ffff,
            Reg.shm_len_high => if (t.shmRegion()) |r| @truncate(r.len >> 32) else 0xffff_ffff,
            Reg.shm_base_low => if (t.shmRegion()) |r| @truncate(r.guest_addr) else 0xffff_ffff,
            Reg.shm_base_high => if (t.shmRegion()) |r| @truncate(r.guest_addr >> 32) else 0xffff_ffff,
            Reg.config_generation => t.interrupt.config_generation.load(.seq_cst),
            else => 0,
        };
    }

    fn readStatus(t: *Transport) u32 {
        var s = t.status;
        if (t.interrupt.needs_reset.load(.seq_cst)) s |= Status.device_needs_reset;
        if (t.activated) for (t.queues[0..t.queue_count]) |*q| {
            if (q.isBroken()) s |= Status.device_needs_reset;
        };
        return s;
    }

    /// Returns a queue index when the write was a QueueNotify to forward.
    fn writeRegister(t: *Transport, offset: u32, value: u32) ?u16 {
        switch (offset) {
            Reg.device_features_sel => t.device_features_sel = value,
            Reg.driver_features_sel => t.driver_features_sel = value,
            Reg.driver_features => t.writeDriverFeatures(value),
            Reg.queue_sel => t.queue_sel = value,
            Reg.queue_num, Reg.queue_ready, Reg.queue_desc_low, Reg.queue_desc_high, Reg.queue_driver_low, Reg.queue_driver_high, Reg.queue_device_low, Reg.queue_device_high => t.writeQueue(offset, value),
            Reg.queue_notify => {
                if (!t.activated or value >= t.queue_count) return null;
                return @intCast(value);
            },
            Reg.interrupt_ack => _ = t.interrupt.status.fetchAnd(~value, .seq_cst),
            Reg.status => t.writeStatus(value),
            Reg.shm_sel => t.shm_sel = value,
            else => t.reject("register write", offset),
        }
        return null;
    }

    fn writeDriverFeatures(t: *Transport, value: u32) void {
        // Features may change only between DRIVER and FEATURES_OK (§3.1.1).
        if (t.status != Status.acknowledge | Status.driver) return t.reject("feature write in this state", Reg.driver_features);
        switch (t.driver_features_sel) {
            0 => t.driver_features = (t.driver_features & 0xffff_ffff_0000_0000) | value,
            1 => t.driver_features = (t.driver_features & 0xffff_ffff) | (@as(u64, value) << 32),
            else => if (value != 0) t.reject("feature bits beyond 64", Reg.driver_features),
        }
    }

    fn writeQueue(t: *Transport, offset: u32, value: u32) void {
        // Queues are set up after FEATURES_OK and frozen from DRIVER_OK on (§4.2.3.2).
        const setup = Status.acknowledge | Status.driver | Status.features_ok;
        if (t.status != setup) return t.reject("queue write in this state", offset);
        const q = t.selectedQueue() orelse return t.reject("queue select", offset);
        if (offset == Reg.queue_ready) {
            q.ready = value == 1;
            return;
        }
        if (q.ready) return t.reject("queue write while ready", offset);
        switch (offset) {
            // An out-of-range size is kept as 0 so that DRIVER_OK fails validation.
            Reg.queue_num => q.size = if (value <= q.size_max) @intCast(value) else 0,
            Reg.queue_desc_low => q.desc_addr = setLow(q.desc_addr, value),
            Reg.queue_desc_high => q.desc_addr = setHigh(q.desc_addr, value),
            Reg.queue_driver_low => q.avail_addr = setLow(q.avail_addr, value),
            Reg.queue_driver_high => q.avail_addr = setHigh(q.avail_addr, value),
            Reg.queue_device_low => q.used_addr = setLow(q.used_addr, value),
            Reg.queue_device_high => q.used_addr = setHigh(q.used_addr, value),
            else => unreachable, // tidy: offset from the enclosing switch
        }
    }

    fn writeStatus(t: *Transport, value: u32) void {
        if (value == 0) return t.resetLocked();
        const old = t.status;
        if (value & Status.failed != 0) {
            t.status = old | Status.failed; // the driver gave up; nothing else changes
            return;
        }
        // A driver only ever adds one bit at a time, in this order (§3.1.1).
        const next_expected: u32 = switch (old) {
            0 => Status.acknowledge,
            Status.acknowledge => Status.driver,
            Status.acknowledge | Status.driver => Status.features_ok,
            Status.acknowledge | Status.driver | Status.features_ok => Status.driver_ok,
            else => 0,
        };
        if (value == old) return;
        if (next_expected == 0 or value != old | next_expected) return t.reject("status transition", Reg.status);
        switch (next_expected) {
            Status.features_ok => if (t.featuresAcceptable()) {
                t.status = value;
            } else {
                // Leaving FEATURES_OK clear tells the driver we refused (§3.1.1 step 6).
                t.reject("driver features", Reg.driver_features);
            },
            Status.driver_ok => t.activate(value),
            else => t.status = value,
        }
    }

    fn featuresAcceptable(t: *const Transport) bool {
        const offered = t.deviceFeatures();
        if (t.driver_features & ~offered != 0) return false;
        return t.driver_features & (@as(u64, 1) << feature_version_1) != 0;
    }

    fn activate(t: *Transport, value: u32) void {
        t.status = value;
        const event_idx = t.driver_features & (@as(u64, 1) << queue.feature_event_idx) != 0;
        for (t.queues[0..t.queue_count], 0..) |*q, i| {
            if (!q.ready) continue;
            q.event_idx = event_idx;
            q.validate(t.mem) catch |err| {
                log.warn("virtio-mmio (device {d}): queue {d}: {t}", .{ t.device.deviceId(), i, err });
                t.interrupt.fail();
                return;
            };
        }
        t.device.vtable.activate(t.device.ptr, .{
            .mem = t.mem,
            .queues = t.queues[0..t.queue_count],
            .interrupt = &t.interrupt,
            .acked_features = t.driver_features,
        }) catch |err| {
            log.warn("virtio-mmio (device {d}): activation failed: {t}", .{ t.device.deviceId(), err });
            t.interrupt.fail();
            return;
        };
        t.activated = true;
    }

    /// Writing 0 to Status: the device drops its queues, everything returns to power-on state.
    fn resetLocked(t: *Transport) void {
        if (t.activated) t.device.vtable.reset(t.device.ptr);
        t.activated = false;
        for (t.queues[0..t.queue_count]) |*q| q.reset();
        t.status = 0;
        t.device_features_sel = 0;
        t.driver_features_sel = 0;
        t.driver_features = 0;
        t.queue_sel = 0;
        t.shm_sel = 0;
        t.interrupt.status.store(0, .seq_cst);
        t.interrupt.needs_reset.store(false, .seq_cst);
    }

    /// Host-side teardown (VM exit): stop the device if the driver had started it.
    pub fn shutdown(t: *Transport) void {
        t.lock.lock();
        defer t.lock.unlock();
        t.resetLocked();
    }
};

fn setLow(v: u64, low: u32) u64 {
    return (v & 0xffff_ffff_0000_0000) | low;
}

fn setHigh(v: u64, high: u32) u64 {
    return (v & 0xffff_ffff) | (@as(u64, high) << 32);
}

/// For devices' readConfig: copies the part of `config` at [offset, offset+data.len), zeros
/// past its end (a driver reading beyond the config space gets zeros, never host memory).
pub fn readConfigBytes(config: []const u8, offset: u32, data: []u8) void {
    @memset(data, 0);
    if (offset >= config.len) return;
    const n = @min(data.len, config.len - offset);
    @memcpy(data[0..n], config[offset..][0..n]);
}
