//! Test-side virtio driver: plays the guest over a `GuestMemory` built on plain host buffers.
//! `Guest` is guest RAM with a bump allocator; `DriverQueue` lays out one split virtqueue and
//! posts chains (direct or indirect) the way Linux's virtio_ring does; `MmioDriver` runs the
//! virtio-MMIO init sequence (status, features, queue setup) against a `Transport`.
//! Raw setters (`setDesc`, `pushAvail`, `setAvailIdx`) let tests build hostile rings.
//! Test code only: it asserts instead of returning errors.
const std = @import("std");
const assert = std.debug.assert;
const GuestMemory = @import("guest_memory");
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");

pub const Guest = struct {
    mem: GuestMemory = .{},
    base: u64,
    len: u64,
    next_free: u64,

    /// Guest RAM at guest address `base`, backed by `backing` (zeroed here).
    pub fn init(backing: []u8, base: u64) Guest {
        @memset(backing, 0);
        var g: Guest = .{ .base = base, .len = backing.len, .next_free = base };
        g.mem.addRegion(base, backing) catch unreachable;
        return g;
    }

    /// Bump-allocates guest memory (never freed; tests are short).
    pub fn alloc(g: *Guest, len: u64, alignment: u64) u64 {
        const addr = std.mem.alignForward(u64, g.next_free, alignment);
        assert(addr + len <= g.base + g.len);
        g.next_free = addr + len;
        return addr;
    }

    pub fn bytes(g: *Guest, addr: u64, len: u64) []u8 {
        return g.mem.slice(addr, len) catch unreachable;
    }

    pub fn put(g: *Guest, data: []const u8) u64 {
        const addr = g.alloc(data.len, 1);
        @memcpy(g.bytes(addr, data.len), data);
        return addr;
    }
};

/// What a posted chain looks like to the test: its head and where its writable bytes went
/// (allocated contiguously, so they read back as one slice).
pub const Posted = struct { head: u16, in_addr: u64, in_len: u64 };

pub const DriverQueue = struct {
    guest: *Guest,
    size: u16,
    desc: u64,
    avail: u64,
    used: u64,
    avail_idx: u16 = 0,
    next_desc: u16 = 0,
    last_used: u16 = 0,
    /// Where each posted chain's writable bytes live, by head index (for `takeUsedBytes`).
    in_addrs: [256]u64 = @splat(0),

    pub fn init(guest: *Guest, size: u16) DriverQueue {
        assert(std.math.isPowerOfTwo(size) and size <= 256);
        const n: u64 = size;
        return .{
            .guest = guest,
            .size = size,
            .desc = guest.alloc(16 * n, 16),
            .avail = guest.alloc(6 + 2 * n, 2),
            .used = guest.alloc(6 + 8 * n, 4),
        };
    }

    /// The device side of this queue as the transport would hand it over after DRIVER_OK.
    pub fn deviceQueue(dq: *const DriverQueue, size_max: u16) queue.Queue {
        var q = queue.Queue.init(size_max);
        q.size = dq.size;
        q.desc_addr = dq.desc;
        q.avail_addr = dq.avail;
        q.used_addr = dq.used;
        q.ready = true;
        return q;
    }

    pub fn setDesc(dq: *DriverQueue, index: u16, d: queue.Descriptor) void {
        dq.guest.mem.write(queue.Descriptor, dq.desc + 16 * @as(u64, index), d) catch unreachable;
    }

    /// Puts `head` in the avail ring and publishes it (avail->idx += 1).
    pub fn pushAvail(dq: *DriverQueue, head: u16) void {
        dq.guest.mem.write(u16, dq.avail + 4 + 2 * @as(u64, dq.avail_idx % dq.size), head) catch unreachable;
        dq.avail_idx +%= 1;
        dq.setAvailIdx(dq.avail_idx);
    }

    pub fn setAvailIdx(dq: *DriverQueue, idx: u16) void {
        dq.guest.mem.write(u16, dq.avail + 2, idx) catch unreachable;
    }

    pub fn setAvailFlags(dq: *DriverQueue, flags: u16) void {
        dq.guest.mem.write(u16, dq.avail, flags) catch unreachable;
    }

    pub fn setUsedEvent(dq: *DriverQueue, v: u16) void {
        dq.guest.mem.write(u16, dq.avail + 4 + 2 * @as(u64, dq.size), v) catch unreachable;
    }

    pub fn availEvent(dq: *const DriverQueue) u16 {
        return dq.guest.mem.read(u16, dq.used + 4 + 8 * @as(u64, dq.size)) catch unreachable;
    }

    pub fn usedIdx(dq: *const DriverQueue) u16 {
        return dq.guest.mem.read(u16, dq.used + 2) catch unreachable;
    }

    pub const Used = struct { id: u32, len: u32 };

    /// The next used element the device published, if any.
    pub fn takeUsed(dq: *DriverQueue) ?Used {
        if (dq.usedIdx() == dq.last_used) return null;
        const e = dq.guest.mem.read(Used, dq.used + 4 + 8 * @as(u64, dq.last_used % dq.size)) catch unreachable;
        dq.last_used +%= 1;
        return e;
    }

    /// The next used element's written bytes (a chain posted with `post`/`postIndirect`).
    pub fn takeUsedBytes(dq: *DriverQueue) ?[]u8 {
        const u = dq.takeUsed() orelse return null;
        assert(u.id < dq.size);
        return dq.guest.bytes(dq.in_addrs[u.id], u.len);
    }

    fn takeDesc(dq: *DriverQueue) u16 {
        const i = dq.next_desc;
        dq.next_desc = (dq.next_desc + 1) % dq.size;
        return i;
    }

    /// Posts a chain: one readable descriptor per `out` slice, then one writable descriptor
    /// per `in_lens` entry. Descriptors are taken round-robin (tests keep few in flight).
    pub fn post(dq: *DriverQueue, out: []const []const u8, in_lens: []const u32) Posted {
        assert(out.len + in_lens.len > 0 and out.len + in_lens.len <= dq.size);
        const posted = dq.buildChain(out, in_lens, null);
        dq.in_addrs[posted.head] = posted.in_addr;
        dq.pushAvail(posted.head);
        return posted;
    }

    /// Posts the same chain through one indirect table (one ring descriptor).
    pub fn postIndirect(dq: *DriverQueue, out: []const []const u8, in_lens: []const u32) Posted {
        const n = out.len + in_lens.len;
        assert(n > 0);
        const table = dq.guest.alloc(16 * n, 16);
        var posted = dq.buildChain(out, in_lens, table);
        const head = dq.takeDesc();
        dq.setDesc(head, .{ .addr = table, .len = @intCast(16 * n), .flags = queue.desc_f_indirect, .next = 0 });
        posted.head = head;
        dq.in_addrs[head] = posted.in_addr;
        dq.pushAvail(head);
        return posted;
    }

    /// Writes the descriptors into the ring (table == null) or into an indirect table.
    fn buildChain(dq: *DriverQueue, out: []const []const u8, in_lens: []const u32, table: ?u64) Posted {
        const n = out.len + in_lens.len;
        var indices: [64]u16 = undefined;
        assert(n <= indices.len);
        for (indices[0..n], 0..) |*idx, k| idx.* = if (table == null) dq.takeDesc() else @intCast(k);
        var in_total: u64 = 0;
        for (in_lens) |l| in_total += l;
        const in_addr = dq.guest.alloc(in_total, 1);
        var in_at = in_addr;
        for (0..n) |k| {
            const last = k + 1 == n;
            var d: queue.Descriptor = .{ .addr = 0, .len = 0, .flags = 0, .next = if (last) 0 else indices[k + 1] };
            if (!last) d.flags |= queue.desc_f_next;
            if (k < out.len) {
                d.addr = dq.guest.put(out[k]);
                d.len = @intCast(out[k].len);
            } else {
                d.addr = in_at;
                d.len = in_lens[k - out.len];
                d.flags |= queue.desc_f_write;
                in_at += d.len;
            }
            if (table) |t| {
                dq.guest.mem.write(queue.Descriptor, t + 16 * k, d) catch unreachable;
            } else dq.setDesc(indices[k], d);
        }
        return .{ .head = indices[0], .in_addr = in_addr, .in_len = in_total };
    }
};

/// Drives a `Transport` through the virtio-MMIO register protocol, as Linux's virtio_mmio does.
pub const MmioDriver = struct {
    t: *mmio.Transport,

    pub fn read32(d: MmioDriver, offset: u64) u32 {
        var b: [4]u8 = undefined;
        d.t.read(offset, &b);
        return std.mem.readInt(u32, &b, .little);
    }

    pub fn write32(d: MmioDriver, offset: u64, v: u32) void {
        var b: [4]u8 = undefined;
        std.mem.writeInt(u32, &b, v, .little);
        d.t.write(offset, &b);
    }

    pub fn deviceFeatures(d: MmioDriver) u64 {
        d.write32(mmio.Reg.device_features_sel, 0);
        const lo = d.read32(mmio.Reg.device_features);
        d.write32(mmio.Reg.device_features_sel, 1);
        const hi = d.read32(mmio.Reg.device_features);
        return @as(u64, hi) << 32 | lo;
    }

    pub fn writeFeatures(d: MmioDriver, f: u64) void {
        d.write32(mmio.Reg.driver_features_sel, 0);
        d.write32(mmio.Reg.driver_features, @truncate(f));
        d.write32(mmio.Reg.driver_features_sel, 1);
        d.write32(mmio.Reg.driver_features, @truncate(f >> 32));
    }

    pub fn status(d: MmioDriver) u32 {
        return d.read32(mmio.Reg.status);
    }

    pub fn addStatus(d: MmioDriver, bits: u32) void {
        d.write32(mmio.Reg.status, d.status() | bits);
    }

    /// ACKNOWLEDGE, DRIVER, features (all offered ∩ `wanted`), FEATURES_OK. Returns whether
    /// the device accepted the features.
    pub fn negotiate(d: MmioDriver, wanted: u64) bool {
        d.write32(mmio.Reg.status, 0);
        d.addStatus(mmio.Status.acknowledge);
        d.addStatus(mmio.Status.driver);
        d.writeFeatures(d.deviceFeatures() & wanted);
        d.addStatus(mmio.Status.features_ok);
        return d.status() & mmio.Status.features_ok != 0;
    }

    pub fn setupQueue(d: MmioDriver, index: u32, dq: *const DriverQueue) void {
        d.write32(mmio.Reg.queue_sel, index);
        assert(d.read32(mmio.Reg.queue_ready) == 0);
        assert(d.read32(mmio.Reg.queue_num_max) >= dq.size);
        d.write32(mmio.Reg.queue_num, dq.size);
        d.write32(mmio.Reg.queue_desc_low, @truncate(dq.desc));
        d.write32(mmio.Reg.queue_desc_high, @truncate(dq.desc >> 32));
        d.write32(mmio.Reg.queue_driver_low, @truncate(dq.avail));
        d.write32(mmio.Reg.queue_driver_high, @truncate(dq.avail >> 32));
        d.write32(mmio.Reg.queue_device_low, @truncate(dq.used));
        d.write32(mmio.Reg.queue_device_high, @truncate(dq.used >> 32));
        d.write32(mmio.Reg.queue_ready, 1);
    }

    pub fn notify(d: MmioDriver, index: u32) void {
        d.write32(mmio.Reg.queue_notify, index);
    }

    /// Reads and acknowledges the interrupt status, as the guest's IRQ handler does.
    pub fn ackInterrupt(d: MmioDriver) u32 {
        const s = d.read32(mmio.Reg.interrupt_status);
        d.write32(mmio.Reg.interrupt_ack, s);
        return s;
    }
};
