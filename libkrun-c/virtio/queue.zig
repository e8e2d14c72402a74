//! Split virtqueues (virtio 1.x §2.7): the driver-owned rings in guest memory, walked with
//! every guest value checked. The `Queue` holds what the driver configured plus the device's
//! private ring positions; it never owns memory (every method takes the `GuestMemory`).
//!
//! Device loop (the whole protocol a device needs):
//!
//!     while (try q.pop(mem)) |chain| {
//!         var r = chain.reader();   // the driver's readable bytes
//!         var w = chain.writer();   // the driver's writable bytes
//!         ... r.read / w.write / peek+consume for zero-copy ...
//!         try q.addUsed(mem, chain.head, w.written);
//!     }
//!     if (try q.needsNotification(mem)) interrupt.signal(Interrupt.vring);
//!
//! Any `Error` means the driver broke the protocol: `pop` marks the queue broken itself; a
//! device that gets an error from a Reader/Writer calls `q.markBroken()` and
//! `Interrupt.fail()`, and stops using the queue until reset. Nothing here allocates, and every
//! loop has a bound (queue size, indirect table size, GuestMemory.regions_max).
const std = @import("std");
const builtin = @import("builtin");
const assert = std.debug.assert;
const GuestMemory = @import("guest_memory");

comptime {
    // Virtio 1.x rings are little-endian; we read them as native integers.
    assert(builtin.cpu.arch.endian() == .little);
}

/// The spec's upper bound for a split queue's size.
pub const size_limit: u16 = 32768;
/// An indirect table may hold at most this many descriptors (64 KiB of table). Linux sizes
/// indirect tables by the request's scatter-gather count, far below this.
pub const indirect_entries_max: u32 = 4096;

pub const desc_f_next: u16 = 1;
pub const desc_f_write: u16 = 2;
pub const desc_f_indirect: u16 = 4;
pub const avail_f_no_interrupt: u16 = 1;
pub const used_f_no_notify: u16 = 1;

/// Feature bits the queue layer implements (the transport and devices offer them).
pub const feature_indirect_desc: u6 = 28;
pub const feature_event_idx: u6 = 29;

pub const Error = error{
    /// The queue was already found broken; it stays unusable until reset.
    QueueBroken,
    /// Size not a power of two / above the maximum, misaligned or unmapped rings.
    QueueConfigInvalid,
    /// The available index ran more than a queue size ahead of us.
    AvailIndexInvalid,
    DescriptorIndexInvalid,
    /// More descriptors than the queue (or indirect table) holds: a loop.
    ChainTooLong,
    /// Nested, empty, misaligned in size, oversized, or combined with NEXT.
    IndirectTableInvalid,
    /// A readable descriptor after a writable one.
    DescriptorOrderInvalid,
    /// A buffer outside guest memory, or whose end overflows.
    BufferInvalid,
    /// The readable or writable total exceeds 4 GiB - 1 (the used ring's length field).
    ChainLengthOverflow,
    /// The device needed more bytes than the chain holds (device-protocol level).
    ChainTooShort,
    /// A ring access outside guest memory (GuestMemory's own error; rings are validated at
    /// DRIVER_OK, so this only shows up when a queue is used without `validate`).
    GuestAddressInvalid,
};

pub const Descriptor = extern struct {
    addr: u64,
    len: u32,
    flags: u16,
    next: u16,
};

const UsedElem = extern struct { id: u32, len: u32 };

comptime {
    assert(@sizeOf(Descriptor) == 16);
    assert(@sizeOf(UsedElem) == 8);
}

/// Transport-side queue state: what the driver configured through the MMIO registers, plus the
/// device's private ring positions.
pub const Queue = struct {
    size_max: u16,
    size: u16 = 0,
    ready: bool = false,
    desc_addr: u64 = 0,
    avail_addr: u64 = 0,
    used_addr: u64 = 0,
    next_avail: u16 = 0,
    next_used: u16 = 0,
    event_idx: bool = false,
    /// Set when the driver handed us an invalid chain; the device stops using the queue.
    /// Written with `markBroken` (atomically: the transport reads it from a vCPU thread).
    broken: bool = false,
    /// The used index at the last `needsNotification` (EVENT_IDX bookkeeping).
    signalled_used: u16 = 0,

    /// The state after a reset: no rings, size = size_max (MMIO's QueueNum is write-only, so
    /// the device's default must be usable).
    pub fn init(size_max: u16) Queue {
        assert(size_max > 0 and size_max <= size_limit); // tidy: size_max from the device code
        assert(std.math.isPowerOfTwo(size_max)); // tidy: size_max from the device code
        return .{ .size_max = size_max, .size = size_max };
    }

    pub fn reset(q: *Queue) void {
        q.* = init(q.size_max);
    }

    pub fn markBroken(q: *Queue) void {
        @atomicStore(bool, &q.broken, true, .release);
    }

    pub fn isBroken(q: *const Queue) bool {
        return @atomicLoad(bool, &q.broken, .acquire);
    }

    fn availRingAddr(q: *const Queue, slot: u16) u64 {
        return q.avail_addr + 4 + 2 * @as(u64, slot);
    }
    fn usedEventAddr(q: *const Queue) u64 {
        return q.avail_addr + 4 + 2 * @as(u64, q.size);
    }
    fn usedRingAddr(q: *const Queue, slot: u16) u64 {
        return q.used_addr + 4 + 8 * @as(u64, slot);
    }
    fn availEventAddr(q: *const Queue) u64 {
        return q.used_addr + 4 + 8 * @as(u64, q.size);
    }

    /// Checks what the driver configured before the device may use the queue (called by the
    /// transport at DRIVER_OK for every ready queue): power-of-two size within the maximum,
    /// the spec's ring alignments, and all three rings inside guest memory.
    pub fn validate(q: *const Queue, mem: *const GuestMemory) Error!void {
        if (q.size == 0 or q.size > q.size_max or !std.math.isPowerOfTwo(q.size))
            return error.QueueConfigInvalid;
        if (q.desc_addr % 16 != 0 or q.avail_addr % 2 != 0 or q.used_addr % 4 != 0)
            return error.QueueConfigInvalid;
        const n: u64 = q.size;
        checkRange(mem, q.desc_addr, 16 * n) catch return error.QueueConfigInvalid;
        checkRange(mem, q.avail_addr, 6 + 2 * n) catch return error.QueueConfigInvalid;
        checkRange(mem, q.used_addr, 6 + 8 * n) catch return error.QueueConfigInvalid;
    }

    /// Takes the next available chain, validated end to end (see `Chain`), or null when the
    /// driver has none. Any protocol violation marks the queue broken.
    pub fn pop(q: *Queue, mem: *const GuestMemory) Error!?Chain {
        assert(q.ready); // tidy: devices call this only on a ready queue (checked at notify), with a popped head
        assert(q.size > 0); // tidy: devices call this only on a ready queue (checked at notify), with a popped head
        if (q.isBroken()) return error.QueueBroken;
        errdefer q.markBroken();
        var pending = try q.pendingCount(mem);
        if (pending == 0 and q.event_idx) {
            // Going idle: ask for a kick at the next buffer, then look again, since the driver
            // may have added one before it could see avail_event.
            const p = try mem.ptr(u16, q.availEventAddr());
            @atomicStore(u16, p, q.next_avail, .seq_cst);
            pending = try q.pendingCount(mem);
        }
        if (pending == 0) return null;
        // The acquire load of avail->idx orders the ring entry and descriptor reads after it.
        const head = try mem.read(u16, q.availRingAddr(q.next_avail % q.size));
        if (head >= q.size) return error.DescriptorIndexInvalid;
        const chain = try Chain.init(mem, q, head);
        q.next_avail +%= 1;
        return chain;
    }

    /// Gives back the chain `pop` just returned, untouched (e.g. a console found no input to
    /// put in it): the next `pop` returns it again. Only valid right after that pop.
    pub fn undoPop(q: *Queue) void {
        q.next_avail -%= 1;
    }

    /// Gives back the last `n` popped chains, untouched (a receive frame that needs more
    /// buffers than are available waits for them): the next pops return them again.
    pub fn undoPops(q: *Queue, n: u16) void {
        q.next_avail -%= n;
    }

    /// Chains the driver has made available that we have not popped yet.
    fn pendingCount(q: *const Queue, mem: *const GuestMemory) Error!u16 {
        const idx_ptr = try mem.ptr(u16, q.avail_addr + 2);
        const avail_idx = @atomicLoad(u16, idx_ptr, .acquire);
        const pending = avail_idx -% q.next_avail;
        if (pending > q.size) return error.AvailIndexInvalid;
        return pending;
    }

    /// Returns a chain to the driver with `len` bytes written into its writable part.
    /// The element is written before the index is published (release/seq_cst store).
    pub fn addUsed(q: *Queue, mem: *const GuestMemory, head: u16, len: u32) Error!void {
        try q.putUsed(mem, head, len);
        try q.publishUsed(mem);
    }

    /// Writes a used element without publishing it: several buffers that carry one frame
    /// (virtio-net's MRG_RXBUF) must reach the driver together, by one `publishUsed`.
    pub fn putUsed(q: *Queue, mem: *const GuestMemory, head: u16, len: u32) Error!void {
        assert(q.ready); // tidy: devices call this only on a ready queue (checked at notify), with a popped head
        assert(head < q.size); // tidy: devices call this only on a ready queue (checked at notify), with a popped head
        if (q.isBroken()) return error.QueueBroken;
        try mem.write(UsedElem, q.usedRingAddr(q.next_used % q.size), .{ .id = head, .len = len });
        q.next_used +%= 1;
    }

    /// Publishes the used elements put so far (the index store after the elements).
    pub fn publishUsed(q: *Queue, mem: *const GuestMemory) Error!void {
        const idx_ptr = try mem.ptr(u16, q.used_addr + 2);
        // seq_cst: with EVENT_IDX, the used_event load in needsNotification must not be
        // ordered before this store (the driver's matching fence is in virtqueue_enable_cb).
        @atomicStore(u16, idx_ptr, q.next_used, .seq_cst);
    }

    /// Whether the driver wants an interrupt for the used entries added since the last call
    /// (used_event with EVENT_IDX, else the avail ring's NO_INTERRUPT flag).
    pub fn needsNotification(q: *Queue, mem: *const GuestMemory) Error!bool {
        assert(q.ready); // tidy: devices call this only on a ready queue (checked at notify), with a popped head
        const old = q.signalled_used;
        const new = q.next_used;
        q.signalled_used = new;
        if (q.event_idx) {
            const used_event = @atomicLoad(u16, try mem.ptr(u16, q.usedEventAddr()), .seq_cst);
            // vring_need_event: did we just move past used_event?
            return new -% used_event -% 1 < new -% old;
        }
        const flags = @atomicLoad(u16, try mem.ptr(u16, q.avail_addr), .seq_cst);
        return flags & avail_f_no_interrupt == 0;
    }
};

/// Checks that [addr, addr+len) lies in guest memory (possibly across adjacent regions).
fn checkRange(mem: *const GuestMemory, addr: u64, len: u64) Error!void {
    if (std.math.maxInt(u64) - addr < len) return error.BufferInvalid;
    var at = addr;
    var left = len;
    var pieces: u32 = 0;
    while (left > 0) : (pieces += 1) {
        if (pieces == GuestMemory.regions_max) return error.BufferInvalid;
        const piece = try pieceAt(mem, at, left);
        at += piece.len;
        left -= piece.len;
    }
}

/// The longest prefix of [addr, addr+len) that one region backs, as host bytes (len > 0).
fn pieceAt(mem: *const GuestMemory, addr: u64, len: u64) Error![]u8 {
    assert(len > 0); // tidy: length computed by the walker
    for (mem.regionSlice()) |r| {
        if (addr < r.guest_addr or addr - r.guest_addr >= r.len) continue;
        const off = addr - r.guest_addr;
        const n = @min(len, r.len - off);
        return r.host[@intCast(off)..][0..@intCast(n)];
    }
    return error.BufferInvalid;
}

/// Iterates the descriptors of one chain: the main table, then at most one indirect table.
/// Every step re-checks what it reads, so a driver that rewrites descriptors while we walk
/// them gets an error, never a bad access.
const Walker = struct {
    mem: *const GuestMemory,
    table: u64,
    table_len: u32,
    index: u32,
    /// Descriptors we may still visit in this table; 0 with more to come means a loop.
    ttl: u32,
    in_indirect: bool = false,
    done: bool = false,
    seen_writable: bool = false,

    fn next(w: *Walker) Error!?Descriptor {
        if (w.done) return null;
        const d = try w.load();
        if (d.flags & desc_f_indirect != 0) {
            try w.enterIndirect(d);
            const first = try w.load();
            if (first.flags & desc_f_indirect != 0) return error.IndirectTableInvalid;
            return try w.accept(first);
        }
        return try w.accept(d);
    }

    fn load(w: *Walker) Error!Descriptor {
        if (w.ttl == 0) return error.ChainTooLong;
        w.ttl -= 1;
        if (w.index >= w.table_len) return error.DescriptorIndexInvalid;
        return w.mem.read(Descriptor, w.table + 16 * @as(u64, w.index)) catch error.BufferInvalid;
    }

    fn enterIndirect(w: *Walker, d: Descriptor) Error!void {
        if (w.in_indirect) return error.IndirectTableInvalid; // only one level (§2.7.5.3.1)
        if (d.flags & desc_f_next != 0) return error.IndirectTableInvalid;
        if (d.len == 0 or d.len % 16 != 0) return error.IndirectTableInvalid;
        if (d.len / 16 > indirect_entries_max) return error.IndirectTableInvalid;
        checkRange(w.mem, d.addr, d.len) catch return error.IndirectTableInvalid;
        w.* = .{
            .mem = w.mem,
            .table = d.addr,
            .table_len = d.len / 16,
            .index = 0,
            .ttl = d.len / 16,
            .in_indirect = true,
            .seen_writable = w.seen_writable,
        };
    }

    fn accept(w: *Walker, d: Descriptor) Error!Descriptor {
        if (d.flags & desc_f_write != 0) {
            w.seen_writable = true;
        } else if (w.seen_writable) {
            return error.DescriptorOrderInvalid;
        }
        try checkRange(w.mem, d.addr, d.len);
        if (d.flags & desc_f_next != 0) w.index = d.next else w.done = true;
        return d;
    }
};

/// One available chain, validated when popped: no loops, indices in range, indirect tables
/// well-formed, every buffer inside guest memory, readable descriptors before writable ones.
pub const Chain = struct {
    mem: *const GuestMemory,
    /// The head descriptor index: what `Queue.addUsed` takes.
    head: u16,
    desc_table: u64,
    queue_size: u16,
    /// Bytes the driver offers to read / to write (at validation time).
    readable_len: u32,
    writable_len: u32,

    fn init(mem: *const GuestMemory, q: *const Queue, head: u16) Error!Chain {
        var chain: Chain = .{
            .mem = mem,
            .head = head,
            .desc_table = q.desc_addr,
            .queue_size = q.size,
            .readable_len = 0,
            .writable_len = 0,
        };
        var readable: u64 = 0;
        var writable: u64 = 0;
        var w = chain.walker();
        while (try w.next()) |d| {
            if (d.flags & desc_f_write != 0) writable += d.len else readable += d.len;
        }
        if (readable > std.math.maxInt(u32) or writable > std.math.maxInt(u32))
            return error.ChainLengthOverflow;
        chain.readable_len = @intCast(readable);
        chain.writable_len = @intCast(writable);
        return chain;
    }

    fn walker(c: *const Chain) Walker {
        return .{ .mem = c.mem, .table = c.desc_table, .table_len = c.queue_size, .index = c.head, .ttl = c.queue_size };
    }

    /// Reads the chain's readable (driver → device) part.
    pub fn reader(c: *const Chain) Reader {
        return .{ .seg = .{ .walker = c.walker(), .want_writable = false }, .left = c.readable_len };
    }

    /// Writes the chain's writable (device → driver) part.
    pub fn writer(c: *const Chain) Writer {
        return .{ .seg = .{ .walker = c.walker(), .want_writable = true }, .left = c.writable_len };
    }
};

/// The readable or writable segments of a chain, one contiguous host piece at a time.
const Segments = struct {
    walker: Walker,
    want_writable: bool,
    addr: u64 = 0,
    len: u64 = 0,
    end: bool = false,

    /// The current contiguous piece (never empty), or null at the end of our part.
    fn peek(s: *Segments) Error!?[]u8 {
        while (s.len == 0) {
            if (s.end) return null;
            const d = (try s.walker.next()) orelse {
                s.end = true;
                return null;
            };
            const writable = d.flags & desc_f_write != 0;
            if (writable != s.want_writable) {
                // Readers stop at the first writable descriptor; writers skip readable ones.
                if (!s.want_writable) s.end = true;
                continue;
            }
            s.addr = d.addr;
            s.len = d.len;
        }
        return try pieceAt(s.walker.mem, s.addr, s.len);
    }

    fn consume(s: *Segments, n: usize) void {
        assert(n <= s.len); // tidy: length computed by the walker
        s.addr += n;
        s.len -= n;
    }

    /// Fills `out` with up to `limit` bytes of pieces, without consuming them.
    fn iovecs(s: Segments, out: []std.posix.iovec, limit: usize) Error!usize {
        var copy = s;
        var count: usize = 0;
        var total: usize = 0;
        while (count < out.len and total < limit) {
            const piece = (try copy.peek()) orelse break;
            const n = @min(piece.len, limit - total);
            out[count] = .{ .base = piece.ptr, .len = n };
            copy.consume(n);
            count += 1;
            total += n;
        }
        return count;
    }
};

/// Copies out of the chain's readable part, across descriptor and region boundaries.
pub const Reader = struct {
    seg: Segments,
    /// Readable bytes not yet consumed (as validated at pop).
    left: u32,

    pub fn bytesLeft(r: *const Reader) u32 {
        return r.left;
    }

    /// The next contiguous readable piece (zero-copy), or null at the end.
    pub fn peek(r: *Reader) Error!?[]const u8 {
        return try r.seg.peek();
    }

    /// Marks `n` bytes of the last `peek` as read.
    pub fn consume(r: *Reader, n: usize) void {
        r.seg.consume(n);
        r.left -|= @intCast(n);
    }

    /// Copies up to dest.len bytes; returns how many (fewer only at the end of the part).
    pub fn read(r: *Reader, dest: []u8) Error!usize {
        var done: usize = 0;
        while (done < dest.len) {
            const piece = (try r.peek()) orelse break;
            const n = @min(piece.len, dest.len - done);
            @memcpy(dest[done..][0..n], piece[0..n]);
            r.consume(n);
            done += n;
        }
        return done;
    }

    pub fn readAll(r: *Reader, dest: []u8) Error!void {
        if (try r.read(dest) != dest.len) return error.ChainTooShort;
    }

    /// Reads a plain extern struct or integer (little-endian, any alignment).
    pub fn readObj(r: *Reader, comptime T: type) Error!T {
        var value: T = undefined;
        try r.readAll(std.mem.asBytes(&value));
        return value;
    }

    /// Skips up to n bytes; returns how many were skipped.
    pub fn skip(r: *Reader, n: usize) Error!usize {
        var done: usize = 0;
        while (done < n) {
            const piece = (try r.peek()) orelse break;
            const k = @min(piece.len, n - done);
            r.consume(k);
            done += k;
        }
        return done;
    }

    /// Up to `limit` bytes of the next pieces as iovecs (for writev/pwritev straight from
    /// guest memory); follow with `skip(bytes actually written)`.
    pub fn iovecs(r: *const Reader, out: []std.posix.iovec, limit: usize) Error!usize {
        return r.seg.iovecs(out, limit);
    }
};

/// Copies into the chain's writable part, across descriptor and region boundaries.
pub const Writer = struct {
    seg: Segments,
    left: u32,
    /// Bytes written so far: the length to pass to `Queue.addUsed`.
    written: u32 = 0,

    pub fn bytesLeft(w: *const Writer) u32 {
        return w.left;
    }

    /// The next contiguous writable piece (zero-copy), or null at the end.
    pub fn peek(w: *Writer) Error!?[]u8 {
        return try w.seg.peek();
    }

    /// Marks `n` bytes of the last `peek` as written.
    pub fn advance(w: *Writer, n: usize) void {
        w.seg.consume(n);
        w.left -|= @intCast(n);
        w.written +|= @intCast(n);
    }

    /// Copies up to src.len bytes; returns how many (fewer only when the part is full).
    pub fn write(w: *Writer, src: []const u8) Error!usize {
        var done: usize = 0;
        while (done < src.len) {
            const piece = (try w.peek()) orelse break;
            const n = @min(piece.len, src.len - done);
            @memcpy(piece[0..n], src[done..][0..n]);
            w.advance(n);
            done += n;
        }
        return done;
    }

    pub fn writeAll(w: *Writer, src: []const u8) Error!void {
        if (try w.write(src) != src.len) return error.ChainTooShort;
    }

    pub fn writeObj(w: *Writer, value: anytype) Error!void {
        try w.writeAll(std.mem.asBytes(&value));
    }

    /// Up to `limit` bytes of the next pieces as iovecs (for readv/preadv straight into guest
    /// memory); follow with `skipWritten(bytes actually read)`.
    pub fn iovecs(w: *const Writer, out: []std.posix.iovec, limit: usize) Error!usize {
        return w.seg.iovecs(out, limit);
    }

    /// Accounts n bytes filled through `iovecs` as written.
    pub fn skipWritten(w: *Writer, n: usize) Error!void {
        var done: usize = 0;
        while (done < n) {
            const piece = (try w.peek()) orelse return error.ChainTooShort;
            const k = @min(piece.len, n - done);
            w.advance(k);
            done += k;
        }
    }
};
