//! qcow2 writing (read side: qcow2.zig): cluster allocation with refcounts (new refcount
//! blocks, a growing refcount table), new L2 tables, copy-on-write of partial clusters from the
//! backing file, zero or compressed clusters, write-zeroes and discard as zero clusters.
//! Crash behaviour and its reasons: QCOW2.md.
//!
//! Rules that keep the image consistent after the VMM dies at any point (every step is a
//! completed pwrite, in this order):
//! - a cluster's refcount is written before anything points at it (a crash leaks, never
//!   corrupts);
//! - a cluster's contents (data, a zeroed L2 table, a refcount block) are written before the
//!   pointer to it (L2 entry, L1 entry, refcount table entry, header);
//! - a cluster is released (refcount decremented) only after the last pointer to it is gone.
//! Clusters are appended at the end of the file and never reused while the image is open, so a
//! worker writing in place into a cluster that another request just released cannot hit a
//! cluster that now holds something else.
//!
//! Threads: writes into an allocated (COPIED) cluster run in place, in parallel, after a lookup
//! under `meta`; everything that allocates or changes tables runs under `meta`.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const qcow2 = @import("qcow2.zig");
const Qcow2 = qcow2.Qcow2;

const log = std.log.scoped(.virtio);

/// qemu's QCOW_MAX_REFTABLE_SIZE.
pub const refcount_table_bytes_max: u64 = 8 << 20;
/// L1/L2 flag: the cluster's refcount is exactly 1, so it may be written in place.
const copied: u64 = 1 << 63;
/// New refcount blocks may need refcounts in further new blocks; bounded.
const recursion_max = 6;
/// Host offsets an L2 entry can hold.
const host_offset_max: u64 = 1 << 56;

pub const EnableError = error{ NotSupported, Corrupt, OutOfMemory };
pub const WriteError = error{ InputOutput, NoSpace };

pub const Writer = struct {
    gpa: std.mem.Allocator,
    /// The refcount table (native byte order), where it lives and its size in clusters.
    table: []u64,
    table_offset: u64,
    table_clusters: u64,
    /// Bytes per refcount entry: 1, 2, 4 or 8 (refcount_order 3..6; qemu's default is 2).
    entry_bytes: u8,
    /// The next cluster handed out: clusters are appended (see the file comment).
    next_free: u64,
    /// One cluster: a partial write's old contents plus the new bytes (under `meta`).
    cow: []u8,
    /// One cluster for new metadata clusters (L2 tables, refcount blocks; under `meta`).
    meta_buf: []u8,

    pub fn destroy(w: *Writer) void {
        w.gpa.free(w.meta_buf);
        w.gpa.free(w.cow);
        w.gpa.free(w.table);
        w.gpa.destroy(w);
    }
};

/// Makes an open image writable: checks and loads its refcount table. Refused (NotSupported)
/// for what we do not maintain: internal snapshots (shared clusters), a dirty image (its
/// refcounts may be stale), sub-byte refcounts, an image that is not a regular file.
pub fn enable(q: *Qcow2) EnableError!void {
    const h = q.header;
    if (h.snapshots != 0) return error.NotSupported;
    if (h.incompat & qcow2.incompat_dirty != 0) return error.NotSupported;
    if (h.refcount_order < 3) return error.NotSupported;
    if (qcow2.regularSize(q.fd) == null) return error.NotSupported;
    const cluster = h.clusterSize();
    const table_bytes = @as(u64, h.refcount_table_clusters) * cluster;
    if (table_bytes == 0) return error.Corrupt;
    if (table_bytes > refcount_table_bytes_max) return error.NotSupported;
    if (h.refcount_table_offset % cluster != 0 or !qcow2.inside(h.refcount_table_offset, table_bytes, q.file_size))
        return error.Corrupt;
    const w = q.gpa.create(Writer) catch return error.OutOfMemory;
    errdefer q.gpa.destroy(w);
    const table = q.gpa.alloc(u64, @intCast(table_bytes / 8)) catch return error.OutOfMemory;
    errdefer q.gpa.free(table);
    qcow2.preadAll(q.fd, std.mem.sliceAsBytes(table), h.refcount_table_offset) catch return error.Corrupt;
    for (table) |*e| {
        e.* = std.mem.bigToNative(u64, e.*);
        if (e.* % cluster != 0 or (e.* != 0 and !qcow2.inside(e.*, cluster, q.file_size))) return error.Corrupt;
    }
    const cow = q.gpa.alloc(u8, @intCast(cluster)) catch return error.OutOfMemory;
    errdefer q.gpa.free(cow);
    const meta_buf = q.gpa.alloc(u8, @intCast(cluster)) catch return error.OutOfMemory;
    errdefer q.gpa.free(meta_buf);
    // Autoclear features (bitmaps, ...) are ones we do not keep up to date: clear them, as the
    // spec asks of a writer that does not know them.
    if (h.version == 3) {
        var autoclear: [8]u8 = undefined;
        qcow2.preadAll(q.fd, &autoclear, 88) catch return error.Corrupt;
        if (!std.mem.allEqual(u8, &autoclear, 0)) pwriteAll(q.fd, &@as([8]u8, @splat(0)), 88) catch return error.Corrupt;
    }
    w.* = .{
        .gpa = q.gpa,
        .table = table,
        .table_offset = h.refcount_table_offset,
        .table_clusters = h.refcount_table_clusters,
        .entry_bytes = @intCast(@as(u32, 1) << @intCast(h.refcount_order - 3)),
        .next_free = std.mem.alignForward(u64, q.file_size, cluster),
        .cow = cow,
        .meta_buf = meta_buf,
    };
    q.writer = w;
}

/// Writes the `iov` buffers at guest byte `offset` (the range lies inside the disk).
pub fn writev(q: *Qcow2, iov: []const std.posix.iovec, offset: u64) WriteError!void {
    var total: u64 = 0;
    for (iov) |v| total += v.len;
    var src: Source = .{ .iov = iov };
    try writeRange(q, offset, total, &src);
}

/// Write-zeroes (`discard` false) and discard (true). Whole clusters become zero clusters
/// (version 3; version 2 without a backing file: unallocated) and their old clusters are
/// released. A partial cluster is written with zeros, or left alone by a discard (advisory).
pub fn zeroRange(q: *Qcow2, offset: u64, len: u64, discard: bool) WriteError!void {
    const cluster = q.header.clusterSize();
    var done: u64 = 0;
    while (done < len) {
        const at = offset + done;
        const n = @min(len - done, cluster - (at & (cluster - 1)));
        done += n;
        if (at >= q.size) break;
        if (n == cluster and try zeroCluster(q, at)) continue;
        if (discard) continue;
        var src: Source = .{ .iov = &.{}, .zeros = true };
        try writeRange(q, at, n, &src);
    }
}

fn writeRange(q: *Qcow2, offset: u64, total: u64, src: *Source) WriteError!void {
    const cluster = q.header.clusterSize();
    var done: u64 = 0;
    while (done < total) {
        const at = offset + done;
        const n = @min(total - done, cluster - (at & (cluster - 1)));
        if (at >= q.size) return error.InputOutput; // the decoder checked; defensive
        try writeCluster(q, at, @intCast(n), src);
        done += n;
    }
}

/// The guest bytes of one write, consumed in order: guest buffers or zeros.
const Source = struct {
    iov: []const std.posix.iovec,
    i: usize = 0,
    skip: usize = 0,
    zeros: bool = false,

    const zero_page: [4096]u8 = @splat(0);

    /// The next contiguous piece, at most `max` bytes (empty: nothing left).
    fn next(s: *Source, max: usize) []const u8 {
        if (s.zeros) return zero_page[0..@min(max, zero_page.len)];
        while (s.i < s.iov.len and s.skip == s.iov[s.i].len) {
            s.i += 1;
            s.skip = 0;
        }
        if (s.i == s.iov.len) return &.{};
        const v = s.iov[s.i];
        const n = @min(max, v.len - s.skip);
        const piece = v.base[s.skip..][0..n];
        s.skip += n;
        return piece;
    }

    fn copyTo(s: *Source, dest: []u8) WriteError!void {
        var done: usize = 0;
        while (done < dest.len) {
            const piece = s.next(dest.len - done);
            if (piece.len == 0) return error.InputOutput;
            @memcpy(dest[done..][0..piece.len], piece);
            done += piece.len;
        }
    }

    fn writeTo(s: *Source, fd: linux.fd_t, len: usize, host: u64) WriteError!void {
        var done: usize = 0;
        while (done < len) {
            const piece = s.next(len - done);
            if (piece.len == 0) return error.InputOutput;
            try pwriteAll(fd, piece, host + done);
            done += piece.len;
        }
    }
};

/// Writes `n` bytes at guest byte `at`, all inside one cluster.
fn writeCluster(q: *Qcow2, at: u64, n: usize, src: *Source) WriteError!void {
    const w = q.writer orelse return error.InputOutput;
    const cluster = q.header.clusterSize();
    const start = at & ~(cluster - 1);
    const in: usize = @intCast(at - start);
    q.meta.lock();
    var slot = q.l2Slot(at) catch {
        q.meta.unlock();
        return error.InputOutput;
    };
    const mapping = decode(q, slot.entry, at) catch {
        q.meta.unlock();
        return error.InputOutput;
    };
    if (mapping == .data and slot.entry & copied != 0) {
        // Allocated and ours alone: in place, in parallel with other requests.
        q.meta.unlock();
        return src.writeTo(q.fd, n, mapping.data + in);
    }
    defer q.meta.unlock();
    // A zero cluster that still owns its host cluster (refcount 1) is rewritten in place.
    const prealloc = slot.entry & qcow2.l2_zero != 0 and slot.entry & copied != 0 and
        slot.entry & qcow2.l2_offset_mask != 0;
    if (n < cluster) switch (mapping) {
        .zero => @memset(w.cow, 0),
        .backing => q.readBacking(w.cow, start) catch return error.InputOutput,
        .compressed => |c| q.readCompressed(w.cow, start, 0, c.offset, c.len) catch return error.InputOutput,
        .data => |host| qcow2.preadAll(q.fd, w.cow, host) catch return error.InputOutput, // shared
    };
    try src.copyTo(w.cow[in..][0..n]);
    if (slot.l2 == 0) slot.l2 = try newL2(q, w, slot.l1_index);
    const target = if (prealloc) slot.entry & qcow2.l2_offset_mask else try allocCluster(q, w);
    try pwriteAll(q.fd, w.cow, target);
    try pwriteBe64(q.fd, target | copied, slot.l2 + 8 * slot.l2_index);
    if (!prealloc) try release(q, w, slot.entry);
    if (mapping == .compressed) forgetCompressed(q);
}

/// Makes the whole cluster at guest byte `start` read as zeros without writing data; false
/// when the format cannot say so (version 2 over a backing file).
fn zeroCluster(q: *Qcow2, start: u64) WriteError!bool {
    const w = q.writer orelse return error.InputOutput;
    q.meta.lock();
    defer q.meta.unlock();
    var slot = q.l2Slot(start) catch return error.InputOutput;
    const mapping = decode(q, slot.entry, start) catch return error.InputOutput;
    const v3 = q.header.version == 3;
    if (!v3 and q.backing != null) return false;
    // Already zeros: nothing to do.
    if (slot.entry == qcow2.l2_zero or (slot.entry == 0 and q.backing == null)) return true;
    const value: u64 = if (v3) qcow2.l2_zero else 0; // v2 here has no backing file
    if (slot.l2 == 0) slot.l2 = try newL2(q, w, slot.l1_index);
    try pwriteBe64(q.fd, value, slot.l2 + 8 * slot.l2_index);
    try release(q, w, slot.entry);
    if (mapping == .compressed) forgetCompressed(q);
    return true;
}

fn decode(q: *Qcow2, entry: u64, at: u64) error{Corrupt}!qcow2.Mapping {
    return qcow2.decodeL2(entry, q.header.cluster_bits, q.file_size) catch |err| {
        log.warn("qcow2: corrupt L2 entry {x} for guest offset {d}", .{ entry, at });
        return err;
    };
}

/// The decompression cache may hold a cluster that is no longer compressed.
fn forgetCompressed(q: *Qcow2) void {
    q.lock.lock();
    defer q.lock.unlock();
    q.cached_cluster = null;
}

/// A new, zeroed L2 table for L1 entry `l1_index`: table first, then the L1 entry.
fn newL2(q: *Qcow2, w: *Writer, l1_index: usize) WriteError!u64 {
    const table = try allocCluster(q, w);
    @memset(w.meta_buf, 0);
    try pwriteAll(q.fd, w.meta_buf, table);
    try pwriteBe64(q.fd, table | copied, q.header.l1_offset + 8 * @as(u64, l1_index));
    q.l1[l1_index] = table | copied;
    return table;
}

/// Hands out the next cluster with refcount 1 (written before the caller points at it).
fn allocCluster(q: *Qcow2, w: *Writer) WriteError!u64 {
    const host = try reserve(q, w, 1);
    try setRefcount(q, w, host, 1, 0);
    return host;
}

/// Moves `next_free` past `count` clusters; no refcounts yet.
fn reserve(q: *Qcow2, w: *Writer, count: u64) WriteError!u64 {
    const cluster = q.header.clusterSize();
    const host = w.next_free;
    if (count > host_offset_max / cluster or host > host_offset_max - count * cluster) return error.NoSpace;
    w.next_free += count * cluster;
    q.file_size = @max(q.file_size, w.next_free);
    return host;
}

/// Releases what the L2 entry `entry` pointed at (a data, zero-allocated or compressed cluster).
fn release(q: *Qcow2, w: *Writer, entry: u64) WriteError!void {
    const cb = q.header.cluster_bits;
    if (entry & qcow2.l2_compressed != 0) {
        const x: u6 = @intCast(62 - (@as(u32, cb) - 8));
        const offset = entry & ((@as(u64, 1) << x) - 1);
        const sectors = ((entry & ((@as(u64, 1) << 62) - 1)) >> x) + 1;
        const first = (offset & ~@as(u64, 511)) >> cb;
        const last = ((offset & ~@as(u64, 511)) + sectors * 512 - 1) >> cb;
        if (last - first > 2) return error.InputOutput; // decodeL2 bounds it; defensive
        var c = first;
        while (c <= last) : (c += 1) try decrement(q, w, c << cb);
        return;
    }
    const host = entry & qcow2.l2_offset_mask;
    if (host != 0) try decrement(q, w, host);
}

fn decrement(q: *Qcow2, w: *Writer, host: u64) WriteError!void {
    const value = try getRefcount(q, w, host);
    if (value == 0) {
        log.warn("qcow2: cluster at {d} is in use with refcount 0 (left alone)", .{host});
        return;
    }
    try setRefcount(q, w, host, value - 1, 0);
}

const Place = struct { index: u64, at: u64 };

/// Which refcount table entry covers host cluster `host`, and the entry's byte offset inside
/// its refcount block.
fn place(q: *Qcow2, w: *Writer, host: u64) Place {
    const cb = q.header.cluster_bits;
    const per_block = q.header.clusterSize() / w.entry_bytes;
    const c = host >> cb;
    return .{ .index = c / per_block, .at = (c % per_block) * w.entry_bytes };
}

fn getRefcount(q: *Qcow2, w: *Writer, host: u64) WriteError!u64 {
    const p = place(q, w, host);
    if (p.index >= w.table.len or w.table[@intCast(p.index)] == 0) return 0;
    var bytes: [8]u8 = @splat(0);
    qcow2.preadAll(q.fd, bytes[8 - w.entry_bytes ..], w.table[@intCast(p.index)] + p.at) catch return error.InputOutput;
    return std.mem.readInt(u64, &bytes, .big);
}

fn setRefcount(q: *Qcow2, w: *Writer, host: u64, value: u64, depth: u32) WriteError!void {
    if (depth > recursion_max) return error.InputOutput;
    if (w.entry_bytes < 8 and value >> @intCast(@as(u32, w.entry_bytes) * 8) != 0) return error.InputOutput;
    const p = place(q, w, host);
    if (p.index >= w.table.len) try growTable(q, w, p.index + 1, depth);
    if (w.table[@intCast(p.index)] == 0) try addBlock(q, w, p.index, depth);
    try writeEntry(q, w, w.table[@intCast(p.index)] + p.at, value);
}

fn writeEntry(q: *Qcow2, w: *Writer, at: u64, value: u64) WriteError!void {
    var bytes: [8]u8 = undefined;
    std.mem.writeInt(u64, &bytes, value, .big);
    try pwriteAll(q.fd, bytes[8 - w.entry_bytes ..], at);
}

/// A new refcount block for table entry `index`: the block (with its own refcount when it
/// covers itself) first, then the table entry.
fn addBlock(q: *Qcow2, w: *Writer, index: u64, depth: u32) WriteError!void {
    const block = try reserve(q, w, 1);
    const own = place(q, w, block);
    @memset(w.meta_buf, 0);
    if (own.index == index) {
        var one: [8]u8 = undefined;
        std.mem.writeInt(u64, &one, 1, .big);
        @memcpy(w.meta_buf[@intCast(own.at)..][0..w.entry_bytes], one[8 - w.entry_bytes ..]);
    }
    try pwriteAll(q.fd, w.meta_buf, block);
    if (own.index != index) try setRefcount(q, w, block, 1, depth + 1);
    w.table[@intCast(index)] = block;
    try pwriteBe64(q.fd, block, w.table_offset + 8 * index);
}

/// Moves the refcount table to a larger place at the end of the file: the new table (with
/// refcounts for its own clusters) is written whole, then the header points at it, then the
/// old table's clusters are released.
fn growTable(q: *Qcow2, w: *Writer, min_entries: u64, depth: u32) WriteError!void {
    const cluster = q.header.clusterSize();
    const span = cluster * (cluster / w.entry_bytes); // file bytes one table entry covers
    var clusters = @max(w.table_clusters * 2, (min_entries * 8 + cluster - 1) / cluster);
    while (true) : (clusters *= 2) {
        if (clusters * cluster > refcount_table_bytes_max) return error.NoSpace;
        // Room for the table itself and a few refcount blocks after it.
        const end = w.next_free + (clusters + 8) * cluster;
        if (clusters * cluster / 8 >= @max(min_entries, end / span + 1)) break;
    }
    const entries: usize = @intCast(clusters * cluster / 8);
    const table = w.gpa.alloc(u64, entries) catch return error.NoSpace;
    @memset(table, 0);
    @memcpy(table[0..w.table.len], w.table);
    const old_offset = w.table_offset;
    const old_clusters = w.table_clusters;
    w.gpa.free(w.table);
    w.table = table;
    w.table_offset = try reserve(q, w, clusters);
    w.table_clusters = clusters;
    var i: u64 = 0;
    while (i < clusters) : (i += 1) try setRefcount(q, w, w.table_offset + i * cluster, 1, depth + 1);
    {
        const bytes = w.gpa.alloc(u64, entries) catch return error.NoSpace;
        defer w.gpa.free(bytes);
        for (bytes, w.table) |*b, e| b.* = std.mem.nativeToBig(u64, e);
        try pwriteAll(q.fd, std.mem.sliceAsBytes(bytes), w.table_offset);
    }
    var header: [12]u8 = undefined;
    std.mem.writeInt(u64, header[0..8], w.table_offset, .big);
    std.mem.writeInt(u32, header[8..12], @intCast(clusters), .big);
    try pwriteAll(q.fd, &header, 48);
    i = 0;
    while (i < old_clusters) : (i += 1) try decrement(q, w, old_offset + i * cluster);
}

fn pwriteBe64(fd: linux.fd_t, value: u64, at: u64) WriteError!void {
    var bytes: [8]u8 = undefined;
    std.mem.writeInt(u64, &bytes, value, .big);
    try pwriteAll(fd, &bytes, at);
}

pub fn pwriteAll(fd: linux.fd_t, bytes: []const u8, offset: u64) WriteError!void {
    var done: usize = 0;
    while (done < bytes.len) {
        const n = sys.pwrite(fd, bytes[done..], offset + done) catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            error.NOSPC, error.DQUOT, error.FBIG => return error.NoSpace,
            else => {
                log.warn("qcow2: pwrite: {t}", .{err});
                return error.InputOutput;
            },
        };
        if (n == 0) return error.InputOutput;
        done += n;
    }
}
