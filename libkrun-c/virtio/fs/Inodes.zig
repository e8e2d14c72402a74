//! The inode table: every node id the server ever hands the guest maps to a slot here, and
//! only to a slot here. A host inode holds an O_PATH|O_NOFOLLOW fd opened relative to its
//! parent's fd; a virtual inode names an overlay entry. Node ids carry a generation, so a
//! forged or stale id (freed slot, wrong generation, out of range) is refused, never
//! dereferenced. Host inodes are deduplicated by (dev, ino) so hard links share a node id.
//! The table is sized once at creation; lookups and frees never allocate. Slots are initialized
//! as they are first handed out (`used`; slot_table.zig, shared with Handles), and the (dev, ino)
//! index is zero pages from the OS, so the untouched part of either costs no memory: a server
//! starts without writing 65,536 slots or a hash map's 2.7 MiB (page faults included).
const std = @import("std");
const assert = std.debug.assert;
const sys = @import("sys.zig").backend;
const untouched = @import("../../untouched.zig");
const slot_table = @import("slot_table.zig");

const Inodes = @This();

pub const Kind = enum(u8) { free, host, virtual };

pub const Inode = struct {
    kind: Kind = .free,
    generation: u32 = 0,
    /// Lookup count the guest holds (FORGET decrements it).
    refs: u64 = 0,
    fd: sys.fd_t = -1,
    /// S_IFMT bits: an inode's type never changes, so open/readlink checks need no syscall.
    type: u32 = 0,
    dev: u64 = 0,
    ino: u64 = 0,
    /// Virtual inodes: the overlay entry. Host directories: the overlay tree node whose
    /// children may shadow names in it (Virtual.none if none).
    entry: u16 = 0,
};

pub const Key = struct { dev: u64, ino: u64 };

/// Only `slots[0..used]` is initialized; the rest is untouched memory.
slots: []Inode,
used: u32 = 0,
/// The (dev, ino) index of indexed slots (host inodes, virtual ones; a virtual root is not
/// indexed): open addressing, linear probing, each bucket a slot index + 1 (0: empty). At most
/// half full (twice as many buckets as slots), so every probe ends at an empty bucket. The keys
/// live in the slots; deletion shifts entries back, so there are no tombstones to rehash.
buckets: []u32,
/// Freed slot indexes (below `used`), a stack; empty until a slot is freed.
free_list: []u32,
free_count: u32 = 0,
live: u32 = 0,

pub const count_max = 1 << 30;

pub fn init(gpa: std.mem.Allocator, count: u32) !Inodes {
    assert(count >= 2 and count <= count_max); // tidy: table invariant; guest node ids are checked by find() first
    const slots = try untouched.alloc(gpa, Inode, count);
    errdefer untouched.free(gpa, slots);
    const free_list = try untouched.alloc(gpa, u32, count);
    errdefer untouched.free(gpa, free_list);
    const buckets = try untouched.allocZeroed(u32, std.math.ceilPowerOfTwoAssert(usize, 2 * @as(usize, count)));
    return .{ .slots = slots, .buckets = buckets, .free_list = free_list };
}

pub fn deinit(self: *Inodes, gpa: std.mem.Allocator) void {
    for (self.slots[0..self.used]) |*s| if (s.kind == .host) sys.close(s.fd);
    untouched.freeZeroed(self.buckets);
    untouched.free(gpa, self.slots);
    untouched.free(gpa, self.free_list);
    self.* = undefined;
}

pub fn nodeId(self: *const Inodes, index: u32) u64 {
    const s = &self.slots[index];
    assert(s.kind != .free); // tidy: table invariant; guest node ids are checked by find() first
    return (@as(u64, s.generation) << 32) | (index + 1);
}

/// The slot index a guest node id names, or null if it is not live.
pub fn find(self: *const Inodes, nodeid: u64) ?u32 {
    return slot_table.find(self, nodeid);
}

pub fn get(self: *Inodes, index: u32) *Inode {
    assert(self.slots[index].kind != .free); // tidy: table invariant; guest node ids are checked by find() first
    return &self.slots[index];
}

/// A free slot (slot_table.take: low indexes first, so the root gets slot 0).
fn take(self: *Inodes) ?u32 {
    const index = slot_table.take(self) orelse return null;
    assert(self.slots[index].kind == .free); // tidy: table invariant; guest node ids are checked by find() first
    self.live += 1;
    return index;
}

/// Takes ownership of `fd` (an O_PATH fd of `st`) and returns its slot with one more lookup
/// reference: an existing slot for the same (dev, ino), whose fd is kept, or a new one.
/// Null when the table is full (the fd is closed).
pub fn addHost(self: *Inodes, fd: sys.fd_t, st: *const sys.Stat, entry: u16) ?u32 {
    const key: Key = .{ .dev = st.dev, .ino = st.ino };
    if (self.lookup(key)) |index| {
        sys.close(fd);
        const s = &self.slots[index];
        assert(s.kind == .host); // tidy: table invariant; guest node ids are checked by find() first
        s.refs += 1;
        return index;
    }
    const index = self.take() orelse {
        sys.close(fd);
        return null;
    };
    const s = &self.slots[index];
    s.* = .{
        .kind = .host,
        .generation = s.generation,
        .refs = 1,
        .fd = fd,
        .type = st.mode & sys.S.IFMT,
        .dev = st.dev,
        .ino = st.ino,
        .entry = entry,
    };
    self.link(key, index);
    return index;
}

/// A slot for overlay entry `entry` (one per entry: repeated lookups share it).
pub fn addVirtual(self: *Inodes, entry: u16, file_type: u32) ?u32 {
    const key: Key = .{ .dev = std.math.maxInt(u64), .ino = entry };
    if (self.lookup(key)) |index| {
        self.slots[index].refs += 1;
        return index;
    }
    const index = self.take() orelse return null;
    const s = &self.slots[index];
    s.* = .{ .kind = .virtual, .generation = s.generation, .refs = 1, .type = file_type, .dev = key.dev, .ino = key.ino, .entry = entry };
    self.link(key, index);
    return index;
}

/// Installs the root in slot 0 (node id 1, generation 0), never freed.
pub fn setRoot(self: *Inodes, root: Inode) void {
    assert(self.used == 0); // tidy: table invariant; guest node ids are checked by find() first
    assert(root.kind != .free); // tidy: table invariant; guest node ids are checked by find() first
    const index = self.take().?;
    assert(index == 0); // tidy: table invariant; guest node ids are checked by find() first
    self.slots[0] = root;
    self.slots[0].refs = std.math.maxInt(u64) / 2;
    if (root.kind == .host) self.link(.{ .dev = root.dev, .ino = root.ino }, 0);
}

/// FORGET: drops `n` references; at zero the slot is freed and its generation bumped, so the
/// old node id dies with it. Over-forgetting (a hostile guest) just frees it.
pub fn forget(self: *Inodes, index: u32, n: u64) void {
    if (index == 0) return;
    const s = &self.slots[index];
    assert(s.kind != .free); // tidy: table invariant; guest node ids are checked by find() first
    s.refs -|= n;
    if (s.refs > 0) return;
    self.unlink(index);
    if (s.kind == .host) sys.close(s.fd);
    s.* = .{ .generation = s.generation +% 1 };
    slot_table.release(self, index);
    self.live -= 1;
}

/// The bucket a key's probe starts at. Keys are host inode numbers (or overlay entry numbers),
/// which the guest does not choose.
fn home(self: *const Inodes, key: Key) usize {
    const h = std.hash.Wyhash.hash(0, std.mem.asBytes(&key));
    return @as(usize, @truncate(h)) & (self.buckets.len - 1);
}

fn homeOf(self: *const Inodes, index: u32) usize {
    const s = &self.slots[index];
    return self.home(.{ .dev = s.dev, .ino = s.ino });
}

/// The indexed slot holding `key`, or null.
fn lookup(self: *const Inodes, key: Key) ?u32 {
    const mask = self.buckets.len - 1;
    var b = self.home(key);
    // At most half full: an empty bucket ends every probe within buckets.len steps.
    for (0..self.buckets.len) |_| {
        const v = self.buckets[b];
        if (v == 0) return null;
        const s = &self.slots[v - 1];
        if (s.dev == key.dev and s.ino == key.ino) return v - 1;
        b = (b + 1) & mask;
    }
    unreachable; // tidy: table invariant (at most half full), not a guest value
}

/// Indexes slot `index` under `key` (not indexed yet; one bucket per slot at most).
fn link(self: *Inodes, key: Key, index: u32) void {
    const mask = self.buckets.len - 1;
    var b = self.home(key);
    while (self.buckets[b] != 0) b = (b + 1) & mask;
    self.buckets[b] = index + 1;
}

/// Removes slot `index` (indexed, its key still in the slot) and moves later entries of its
/// probe run back into the hole, so no probe ever passes a gap it should not.
fn unlink(self: *Inodes, index: u32) void {
    const mask = self.buckets.len - 1;
    var hole = self.homeOf(index);
    while (self.buckets[hole] != index + 1) hole = (hole + 1) & mask;
    var j = hole;
    while (true) {
        j = (j + 1) & mask;
        const v = self.buckets[j];
        if (v == 0) break;
        // v may fill the hole only if the hole lies on its probe path: home .. j.
        if (((j -% self.homeOf(v - 1)) & mask) >= ((j -% hole) & mask)) {
            self.buckets[hole] = v;
            hole = j;
        }
    }
    self.buckets[hole] = 0;
}

test "node ids: root is 1, stale and forged ids are refused" {
    var t = try Inodes.init(std.testing.allocator, 4);
    defer t.deinit(std.testing.allocator);
    const root = try sys.openat(sys.AT.FDCWD, "/", sys.O.PATH | sys.O.CLOEXEC, 0);
    const rst = try sys.fstat(root);
    t.setRoot(.{ .kind = .host, .fd = root, .type = sys.S.IFDIR, .dev = rst.dev, .ino = rst.ino });
    try std.testing.expectEqual(1, t.nodeId(0));
    try std.testing.expectEqual(0, t.find(1).?);

    const fd = try sys.openat(root, "tmp", sys.O.PATH | sys.O.NOFOLLOW | sys.O.CLOEXEC, 0);
    const st = try sys.fstat(fd);
    const i = t.addHost(fd, &st, 0).?;
    const id = t.nodeId(i);
    const fd2 = try sys.openat(root, "tmp", sys.O.PATH | sys.O.NOFOLLOW | sys.O.CLOEXEC, 0);
    try std.testing.expectEqual(i, t.addHost(fd2, &st, 0).?);
    try std.testing.expectEqual(2, t.get(i).refs);
    t.forget(i, 1);
    try std.testing.expectEqual(i, t.find(id).?);
    t.forget(i, 100);
    try std.testing.expectEqual(null, t.find(id));
    try std.testing.expectEqual(null, t.find(0));
    try std.testing.expectEqual(null, t.find(5));
    try std.testing.expectEqual(null, t.find(0xdead_0000_0001));
    try std.testing.expectEqual(null, t.find(std.math.maxInt(u64)));
}

test "slots are handed out low first, reused after a free, and never-used ones are refused" {
    var t = try Inodes.init(std.testing.allocator, 8);
    defer t.deinit(std.testing.allocator);
    t.setRoot(.{ .kind = .virtual, .type = sys.S.IFDIR });
    try std.testing.expectEqual(1, t.used);
    // Node ids of slots the table has never handed out: in range of the allocation, refused.
    try std.testing.expectEqual(null, t.find(2));
    try std.testing.expectEqual(null, t.find(8));
    const a = t.addVirtual(1, sys.S.IFREG).?;
    const b = t.addVirtual(2, sys.S.IFREG).?;
    try std.testing.expectEqual(1, a);
    try std.testing.expectEqual(2, b);
    try std.testing.expectEqual(3, t.used);
    t.forget(a, 1);
    try std.testing.expectEqual(null, t.find(2));
    const c = t.addVirtual(3, sys.S.IFREG).?;
    try std.testing.expectEqual(a, c); // the freed slot, before a new one
    try std.testing.expectEqual(3, t.used);
    try std.testing.expectEqual(1, t.get(c).generation);
    // Full: every slot taken, the next add is refused.
    for (4..9) |e| _ = t.addVirtual(@intCast(e), sys.S.IFREG).?;
    try std.testing.expectEqual(8, t.used);
    try std.testing.expectEqual(null, t.addVirtual(9, sys.S.IFREG));
}

test "index: collisions, backward shift on removal, agreement with a reference map" {
    const gpa = std.testing.allocator;
    // 16 slots, 32 buckets: random keys collide and wrap around the end often.
    var t = try Inodes.init(gpa, 16);
    defer t.deinit(gpa);
    try std.testing.expectEqual(32, t.buckets.len);
    t.setRoot(.{ .kind = .virtual, .type = sys.S.IFDIR });
    var ref: std.AutoHashMapUnmanaged(u16, u32) = .empty;
    defer ref.deinit(gpa);
    var prng = std.Random.DefaultPrng.init(0x2b1d);
    const random = prng.random();
    for (0..20_000) |_| {
        const entry = random.intRangeLessThan(u16, 1, 40);
        if (ref.get(entry)) |index| {
            if (random.boolean()) {
                t.forget(index, 1);
                _ = ref.remove(entry);
            } else {
                // A repeated lookup finds the same slot (one more reference, dropped again).
                try std.testing.expectEqual(index, t.addVirtual(entry, sys.S.IFREG).?);
                t.forget(index, 1);
            }
        } else if (t.addVirtual(entry, sys.S.IFREG)) |index| {
            try ref.put(gpa, entry, index);
        } else try std.testing.expectEqual(15, ref.count()); // full: every slot but the root's
        // Every key the reference holds is found at its slot; every other key is absent.
        for (1..40) |e| {
            const want = ref.get(@intCast(e));
            try std.testing.expectEqual(want, t.lookup(.{ .dev = std.math.maxInt(u64), .ino = e }));
        }
        var filled: u32 = 0;
        for (t.buckets) |v| filled += @intFromBool(v != 0);
        try std.testing.expectEqual(ref.count(), filled);
    }
}
