//! qcow2 images, read-only (versions 2 and 3, as Debian's qemu-img writes them): the header,
//! the L1 table (loaded at open), L2 entries (read on demand), zero clusters, compressed
//! clusters (deflate), and backing files (raw or qcow2, chained up to `backing_depth_max`).
//! Every value read from the image is checked before use: offsets inside the file and aligned,
//! table sizes bounded, the L1 table covering the disk. A corrupt header or L1 table is an
//! error at open (krun_add_disk2); a corrupt L2 entry or compressed cluster is an I/O error for
//! that request only. Writing is not built: a qcow2 disk is offered to the guest read-only.
//!
//! Threads: `readv` runs on several workers at once; everything is positional reads except
//! compressed clusters, which share one decompression buffer (and a one-cluster cache, so
//! small sequential reads do not inflate the same cluster again) under `lock`.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../../sys/linux.zig");
const Lock = @import("../Lock.zig");
const Writer = @import("qcow2_write.zig").Writer;

const log = std.log.scoped(.virtio);

pub const magic: u32 = 0x514649fb; // "QFI\xfb"
pub const backing_depth_max = 8;
/// qemu's QCOW_MAX_L1_SIZE: 32 MiB of L1 table.
pub const l1_bytes_max: u64 = 32 << 20;
/// Cluster sizes qemu allows: 512 B .. 2 MiB.
pub const cluster_bits_min = 9;
pub const cluster_bits_max = 21;
/// The largest virtual disk accepted (qemu's limit is 2^63 - 512; ours keeps every
/// offset computation far from overflow).
pub const size_max: u64 = 1 << 56;
const backing_name_max = 1023;

pub const l1_offset_mask: u64 = 0x00ff_ffff_ffff_fe00;
pub const l2_offset_mask: u64 = 0x00ff_ffff_ffff_fe00;
pub const l2_compressed: u64 = 1 << 62;
pub const l2_zero: u64 = 1;

pub const incompat_dirty: u64 = 1 << 0;
const incompat_corrupt: u64 = 1 << 1;
const incompat_known: u64 = incompat_dirty | incompat_corrupt | (1 << 3);
const incompat_compression_type: u64 = 1 << 3;

const ext_end: u32 = 0;
const ext_backing_format: u32 = 0xe2792aca;

pub const OpenError = error{ NotSupported, NotFound, PermissionDenied, SystemResources, OutOfMemory, Corrupt };
pub const ReadError = error{InputOutput};

/// The header fields we use, decoded and checked (pure: fuzzed by fuzz.zig).
pub const Header = struct {
    version: u32,
    cluster_bits: u6,
    size: u64,
    l1_size: u32,
    l1_offset: u64,
    backing_offset: u64,
    backing_len: u32,
    /// Where the header extensions start, and the end of the area they may use.
    ext_start: u64,
    ext_end: u64,
    /// Refcount table and snapshot count: checked only when the image is opened writable
    /// (qcow2_write.zig); a reader never looks at them.
    refcount_table_offset: u64 = 0,
    refcount_table_clusters: u32 = 0,
    refcount_order: u32 = 4,
    snapshots: u32 = 0,
    incompat: u64 = 0,

    pub fn clusterSize(h: Header) u64 {
        return @as(u64, 1) << h.cluster_bits;
    }

    /// Parses the first bytes of the image (at least 104 for version 3, 72 for version 2).
    pub fn parse(bytes: []const u8, file_size: u64) OpenError!Header {
        if (bytes.len < 72) return error.Corrupt;
        if (be(u32, bytes, 0) != magic) return error.Corrupt;
        const version = be(u32, bytes, 4);
        if (version != 2 and version != 3) return error.NotSupported;
        const cluster_bits = be(u32, bytes, 20);
        if (cluster_bits < cluster_bits_min or cluster_bits > cluster_bits_max) return error.Corrupt;
        const cluster: u64 = @as(u64, 1) << @intCast(cluster_bits);
        const size = be(u64, bytes, 24);
        if (size > size_max) return error.NotSupported;
        if (be(u32, bytes, 32) != 0) return error.NotSupported; // encrypted
        const l1_size = be(u32, bytes, 36);
        const l1_offset = be(u64, bytes, 40);
        var ext_start: u64 = 72;
        var refcount_order: u32 = 4;
        var incompat: u64 = 0;
        if (version == 3) {
            if (bytes.len < 104) return error.Corrupt;
            incompat = be(u64, bytes, 72);
            if (incompat & incompat_corrupt != 0) return error.Corrupt;
            if (incompat & ~incompat_known != 0) return error.NotSupported; // external data, extended L2, ...
            refcount_order = be(u32, bytes, 96);
            if (refcount_order > 6) return error.Corrupt;
            const header_len = be(u32, bytes, 100);
            if (header_len < 104 or header_len > cluster) return error.Corrupt;
            if (incompat & incompat_compression_type != 0) {
                if (header_len < 105 or bytes.len < 105) return error.Corrupt;
                if (bytes[104] != 0) return error.NotSupported; // zstd
            }
            ext_start = header_len;
        }
        // L1 must cover the whole disk, lie inside the file, cluster-aligned, bounded.
        const l2_entries_bits: u6 = @intCast(cluster_bits - 3);
        const span_bits: u6 = @intCast(cluster_bits + l2_entries_bits);
        const l1_needed = (size + (@as(u64, 1) << span_bits) - 1) >> span_bits;
        if (l1_size < l1_needed) return error.Corrupt;
        const l1_bytes = @as(u64, l1_size) * 8;
        if (l1_bytes > l1_bytes_max) return error.NotSupported;
        if (l1_size > 0 and (l1_offset % cluster != 0 or l1_offset == 0 or !inside(l1_offset, l1_bytes, file_size)))
            return error.Corrupt;
        const backing_offset = be(u64, bytes, 8);
        const backing_len = be(u32, bytes, 16);
        if (backing_offset != 0) {
            if (backing_len == 0 or backing_len > backing_name_max) return error.Corrupt;
            if (!inside(backing_offset, backing_len, @min(file_size, cluster))) return error.Corrupt;
        }
        return .{
            .version = version,
            .cluster_bits = @intCast(cluster_bits),
            .size = size,
            .l1_size = l1_size,
            .l1_offset = l1_offset,
            .backing_offset = backing_offset,
            .backing_len = if (backing_offset != 0) backing_len else 0,
            .ext_start = ext_start,
            .ext_end = @min(cluster, file_size),
            .refcount_table_offset = be(u64, bytes, 48),
            .refcount_table_clusters = be(u32, bytes, 56),
            .refcount_order = refcount_order,
            .snapshots = be(u32, bytes, 60),
            .incompat = incompat,
        };
    }
};

pub fn be(comptime T: type, bytes: []const u8, at: usize) T {
    return std.mem.readInt(T, bytes[at..][0..@sizeOf(T)], .big);
}

/// [offset, offset + len) inside [0, limit), without overflow.
pub fn inside(offset: u64, len: u64, limit: u64) bool {
    return offset <= limit and len <= limit - offset;
}

/// What one guest cluster maps to (decoded from its L2 entry, checked).
pub const Mapping = union(enum) {
    /// Unallocated: the backing file's bytes, or zeros without one.
    backing,
    zero,
    /// Host offset of the cluster's data.
    data: u64,
    compressed: struct { offset: u64, len: u64 },
};

/// Decodes an L2 entry (pure: fuzzed). `file_size` bounds every host offset.
pub fn decodeL2(entry: u64, cluster_bits: u6, file_size: u64) error{Corrupt}!Mapping {
    const cluster = @as(u64, 1) << cluster_bits;
    if (entry & l2_compressed != 0) {
        const x: u6 = @intCast(62 - (@as(u32, cluster_bits) - 8));
        const offset = entry & ((@as(u64, 1) << x) - 1);
        const sectors = ((entry & ((@as(u64, 1) << 62) - 1)) >> x) + 1;
        const len = sectors * 512 - (offset & 511);
        if (offset == 0 or len > 2 * cluster) return error.Corrupt;
        // The last sectors of a compressed cluster may lie past the end of the file.
        if (offset >= file_size) return error.Corrupt;
        return .{ .compressed = .{ .offset = offset, .len = @min(len, file_size - offset) } };
    }
    const offset = entry & l2_offset_mask;
    if (entry & l2_zero != 0) return .zero;
    if (offset == 0) return .backing;
    if (offset % cluster != 0 or !inside(offset, cluster, file_size + cluster)) return error.Corrupt;
    return .{ .data = offset };
}

pub const Qcow2 = struct {
    gpa: std.mem.Allocator,
    fd: linux.fd_t,
    file_size: u64,
    header: Header,
    /// The guest-visible size.
    size: u64,
    l1: []u64,
    backing: ?Backing = null,
    lock: Lock = .{},
    /// Compressed clusters: input and output buffers and which cluster `out` holds.
    comp_in: []u8,
    comp_out: []u8,
    cached_cluster: ?u64 = null,
    /// Set when the image is writable (qcow2_write.zig): refcounts, allocation, the COW buffer.
    writer: ?*Writer = null,
    /// Held while the L1/L2 tables or refcounts change, and by lookups of a writable image.
    meta: Lock = .{},

    const Backing = union(enum) {
        raw: struct { fd: linux.fd_t, size: u64 },
        qcow2: *Qcow2,
    };

    /// Reads and checks the header and L1 table of the image open on `fd` (not owned), and
    /// opens its backing chain (`dir_fd` resolves relative backing names; `depth` counts the
    /// chain so far).
    pub fn open(gpa: std.mem.Allocator, fd: linux.fd_t, file_size: u64, dir_fd: linux.fd_t, depth: u32) OpenError!*Qcow2 {
        if (depth > backing_depth_max) return error.NotSupported;
        var first: [4096]u8 = undefined;
        const got = preadSome(fd, &first, 0) catch return error.Corrupt;
        const header = try Header.parse(first[0..got], file_size);
        const self = gpa.create(Qcow2) catch return error.OutOfMemory;
        errdefer gpa.destroy(self);
        const cluster = header.clusterSize();
        self.* = .{
            .gpa = gpa,
            .fd = fd,
            .file_size = file_size,
            .header = header,
            .size = header.size,
            .l1 = &.{},
            .comp_in = &.{},
            .comp_out = &.{},
        };
        self.l1 = gpa.alloc(u64, header.l1_size) catch return error.OutOfMemory;
        errdefer gpa.free(self.l1);
        preadAll(fd, std.mem.sliceAsBytes(self.l1), header.l1_offset) catch return error.Corrupt;
        for (self.l1) |*e| {
            e.* = std.mem.bigToNative(u64, e.*);
            const off = e.* & l1_offset_mask;
            if (off != 0 and (off % cluster != 0 or !inside(off, cluster, file_size))) return error.Corrupt;
        }
        self.comp_in = gpa.alloc(u8, @intCast(2 * cluster)) catch return error.OutOfMemory;
        errdefer gpa.free(self.comp_in);
        self.comp_out = gpa.alloc(u8, @intCast(cluster)) catch return error.OutOfMemory;
        errdefer gpa.free(self.comp_out);
        if (header.backing_offset != 0) self.backing = try self.openBacking(dir_fd, depth);
        return self;
    }

    pub fn destroy(self: *Qcow2) void {
        if (self.writer) |w| w.destroy();
        if (self.backing) |b| switch (b) {
            .raw => |r| sys.close(r.fd),
            .qcow2 => |q| {
                const fd = q.fd;
                q.destroy();
                sys.close(fd);
            },
        };
        self.gpa.free(self.comp_out);
        self.gpa.free(self.comp_in);
        self.gpa.free(self.l1);
        self.gpa.destroy(self);
    }

    fn openBacking(self: *Qcow2, dir_fd: linux.fd_t, depth: u32) OpenError!Backing {
        const h = self.header;
        var name: [backing_name_max + 1]u8 = undefined;
        preadAll(self.fd, name[0..h.backing_len], h.backing_offset) catch return error.Corrupt;
        name[h.backing_len] = 0;
        if (std.mem.indexOfScalar(u8, name[0..h.backing_len], 0) != null) return error.Corrupt;
        if (std.mem.indexOf(u8, name[0..h.backing_len], ":") != null and !std.mem.startsWith(u8, name[0..h.backing_len], "/"))
            return error.NotSupported; // a protocol ("nbd:", "json:", ...), not a file
        const format = try self.backingFormat();
        // Read-only, no lock: a base image is shared by its overlays.
        const fd = sys.openat(dir_fd, @ptrCast(&name), .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0) catch |err| switch (err) {
            error.NOENT, error.NOTDIR => {
                log.warn("qcow2: backing file {s} not found", .{name[0..h.backing_len]});
                return error.NotFound;
            },
            error.ACCES, error.PERM => return error.PermissionDenied,
            else => return error.SystemResources,
        };
        errdefer sys.close(fd);
        const size = regularSize(fd) orelse return error.Corrupt;
        // The backing's own relative names resolve against its directory.
        var dir_buf: [backing_name_max + 1]u8 = undefined;
        const slash = std.mem.lastIndexOfScalar(u8, name[0..h.backing_len], '/');
        var sub_dir = dir_fd;
        if (slash) |s| {
            @memcpy(dir_buf[0..s], name[0..s]);
            dir_buf[s] = 0;
            sub_dir = sys.openat(dir_fd, if (s == 0) "/" else @ptrCast(&dir_buf), .{ .ACCMODE = .RDONLY, .DIRECTORY = true, .CLOEXEC = true }, 0) catch
                return error.NotFound;
        }
        defer if (sub_dir != dir_fd) sys.close(sub_dir);
        const is_qcow2 = switch (format) {
            .raw => false,
            .qcow2 => true,
            .probe => probeQcow2(fd),
        };
        if (!is_qcow2) return .{ .raw = .{ .fd = fd, .size = size } };
        return .{ .qcow2 = try Qcow2.open(self.gpa, fd, size, sub_dir, depth + 1) };
    }

    const BackingFormat = enum { raw, qcow2, probe };

    /// The backing format header extension ("raw" or "qcow2"); probe when absent, as qemu.
    fn backingFormat(self: *Qcow2) OpenError!BackingFormat {
        var at = self.header.ext_start;
        var count: u32 = 0;
        while (at + 8 <= self.header.ext_end and count < 64) : (count += 1) {
            var head: [8]u8 = undefined;
            preadAll(self.fd, &head, at) catch return error.Corrupt;
            const typ = be(u32, &head, 0);
            const len = be(u32, &head, 4);
            if (typ == ext_end) break;
            if (!inside(at + 8, len, self.header.ext_end)) return error.Corrupt;
            if (typ == ext_backing_format) {
                var fmt: [16]u8 = undefined;
                if (len > fmt.len) return error.NotSupported;
                preadAll(self.fd, fmt[0..len], at + 8) catch return error.Corrupt;
                if (std.mem.eql(u8, fmt[0..len], "raw")) return .raw;
                if (std.mem.eql(u8, fmt[0..len], "qcow2")) return .qcow2;
                return error.NotSupported;
            }
            at += 8 + std.mem.alignForward(u64, len, 8);
        }
        return .probe;
    }

    /// The mapping of the cluster holding guest byte `offset` (< size). A writable image's
    /// tables change under `meta`, so its lookups take it (briefly: one 8-byte read).
    fn lookup(self: *Qcow2, offset: u64) ReadError!Mapping {
        if (self.writer == null) return self.lookupLocked(offset);
        self.meta.lock();
        defer self.meta.unlock();
        return self.lookupLocked(offset);
    }

    pub fn lookupLocked(self: *Qcow2, offset: u64) ReadError!Mapping {
        const slot = try self.l2Slot(offset);
        return decodeL2(slot.entry, self.header.cluster_bits, self.file_size) catch {
            log.warn("qcow2: corrupt L2 entry {x} for guest offset {d}", .{ slot.entry, offset });
            return error.InputOutput;
        };
    }

    /// Where the L2 entry of guest byte `offset` lives (`l2` 0: no L2 table) and its raw value.
    pub const Slot = struct { l1_index: usize, l2: u64, l2_index: u64, entry: u64 };

    pub fn l2Slot(self: *Qcow2, offset: u64) ReadError!Slot {
        const cb = self.header.cluster_bits;
        const l2_bits: u6 = cb - 3;
        const l1_index = offset >> (cb + l2_bits);
        if (l1_index >= self.l1.len) return error.InputOutput; // checked at open; defensive
        const l2_offset = self.l1[@intCast(l1_index)] & l1_offset_mask;
        const l2_index = (offset >> cb) & ((@as(u64, 1) << l2_bits) - 1);
        var slot: Slot = .{ .l1_index = @intCast(l1_index), .l2 = l2_offset, .l2_index = l2_index, .entry = 0 };
        if (l2_offset == 0) return slot;
        var entry_bytes: [8]u8 = undefined;
        preadAll(self.fd, &entry_bytes, l2_offset + 8 * l2_index) catch return error.InputOutput;
        slot.entry = std.mem.readInt(u64, &entry_bytes, .big);
        return slot;
    }

    /// Fills `iov` from guest byte `offset` (the range lies inside `size`).
    pub fn readv(self: *Qcow2, iov: []const std.posix.iovec, offset: u64) ReadError!void {
        var at = offset;
        for (iov) |v| {
            try self.read(v.base[0..v.len], at);
            at += v.len;
        }
    }

    /// Fills `dest` from guest byte `offset`, one cluster piece at a time.
    pub fn read(self: *Qcow2, dest: []u8, offset: u64) ReadError!void {
        const cluster = self.header.clusterSize();
        var done: usize = 0;
        while (done < dest.len) {
            const at = offset + done;
            const in_cluster = at & (cluster - 1);
            const n: usize = @intCast(@min(dest.len - done, cluster - in_cluster));
            const piece = dest[done..][0..n];
            if (at >= self.size) {
                @memset(piece, 0);
            } else switch (try self.lookup(at)) {
                .zero => @memset(piece, 0),
                .backing => try self.readBacking(piece, at),
                .data => |host| try preadZeroTail(self.fd, piece, host + in_cluster),
                .compressed => |c| try self.readCompressed(piece, at - in_cluster, in_cluster, c.offset, c.len),
            }
            done += n;
        }
    }

    pub fn readBacking(self: *Qcow2, dest: []u8, offset: u64) ReadError!void {
        const b = self.backing orelse return @memset(dest, 0);
        switch (b) {
            .qcow2 => |q| return q.read(dest, offset),
            .raw => |r| {
                if (offset >= r.size) return @memset(dest, 0);
                const n: usize = @intCast(@min(dest.len, r.size - offset));
                try preadZeroTail(r.fd, dest[0..n], offset);
                @memset(dest[n..], 0);
            },
        }
    }

    pub fn readCompressed(self: *Qcow2, dest: []u8, cluster_start: u64, in_cluster: u64, host: u64, len: u64) ReadError!void {
        self.lock.lock();
        defer self.lock.unlock();
        if (self.cached_cluster == null or self.cached_cluster.? != cluster_start) {
            self.cached_cluster = null;
            const input = self.comp_in[0..@intCast(len)];
            preadZeroTail(self.fd, input, host) catch return error.InputOutput;
            inflate(input, self.comp_out) catch {
                log.warn("qcow2: corrupt compressed cluster at host offset {d}", .{host});
                return error.InputOutput;
            };
            self.cached_cluster = cluster_start;
        }
        const from: usize = @intCast(in_cluster);
        @memcpy(dest, self.comp_out[from..][0..dest.len]);
    }
};

/// Raw deflate of one cluster: the output must fill `out` exactly.
pub fn inflate(input: []const u8, out: []u8) error{Corrupt}!void {
    var in: std.Io.Reader = .fixed(input);
    var d = std.compress.flate.Decompress.init(&in, .raw, &.{});
    var w: std.Io.Writer = .fixed(out);
    d.reader.streamExact(&w, out.len) catch return error.Corrupt;
}

fn probeQcow2(fd: linux.fd_t) bool {
    var m: [4]u8 = undefined;
    preadAll(fd, &m, 0) catch return false;
    return std.mem.readInt(u32, &m, .big) == magic;
}

pub fn regularSize(fd: linux.fd_t) ?u64 {
    const st = sys.fstatx(fd, .{ .TYPE = true, .SIZE = true }) catch return null;
    if (st.mode & linux.S.IFMT != linux.S.IFREG) return null;
    return st.size;
}

/// Reads up to dest.len bytes; returns how many (fewer only at the end of the file).
fn preadSome(fd: linux.fd_t, dest: []u8, offset: u64) error{InputOutput}!usize {
    var done: usize = 0;
    while (done < dest.len) {
        const n = sys.pread(fd, dest[done..], offset + done) catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            else => return error.InputOutput,
        };
        if (n == 0) return done;
        done += n;
    }
    return done;
}

pub fn preadAll(fd: linux.fd_t, dest: []u8, offset: u64) error{InputOutput}!void {
    if (try preadSome(fd, dest, offset) != dest.len) return error.InputOutput;
}

/// Reads `dest`; bytes past the end of the file read as zeros (qemu may leave the last
/// cluster of an image short).
fn preadZeroTail(fd: linux.fd_t, dest: []u8, offset: u64) error{InputOutput}!void {
    const n = try preadSome(fd, dest, offset);
    @memset(dest[n..], 0);
}

const testing = std.testing;

test "header: checks magic, version, cluster size, L1 placement and coverage" {
    var h: [112]u8 = @splat(0);
    std.mem.writeInt(u32, h[0..4], magic, .big);
    std.mem.writeInt(u32, h[4..8], 3, .big);
    std.mem.writeInt(u32, h[20..24], 16, .big);
    std.mem.writeInt(u64, h[24..32], 1 << 30, .big);
    std.mem.writeInt(u32, h[36..40], 2, .big); // 1 GiB / 512 MiB per L2 table
    std.mem.writeInt(u64, h[40..48], 65536, .big);
    std.mem.writeInt(u32, h[96..100], 4, .big);
    std.mem.writeInt(u32, h[100..104], 112, .big);
    const ok = try Header.parse(&h, 1 << 20);
    try testing.expectEqual(@as(u64, 65536), ok.clusterSize());
    try testing.expectError(error.Corrupt, Header.parse(&h, 65536)); // L1 past the end of the file
    std.mem.writeInt(u32, h[36..40], 1, .big);
    try testing.expectError(error.Corrupt, Header.parse(&h, 1 << 20)); // L1 too small for the disk
    std.mem.writeInt(u32, h[36..40], 2, .big);
    std.mem.writeInt(u64, h[72..80], 1 << 2, .big); // external data file
    try testing.expectError(error.NotSupported, Header.parse(&h, 1 << 20));
    std.mem.writeInt(u64, h[72..80], incompat_corrupt, .big);
    try testing.expectError(error.Corrupt, Header.parse(&h, 1 << 20));
    std.mem.writeInt(u64, h[72..80], 0, .big);
    std.mem.writeInt(u32, h[20..24], 40, .big);
    try testing.expectError(error.Corrupt, Header.parse(&h, 1 << 20));
    std.mem.writeInt(u32, h[20..24], 16, .big);
    std.mem.writeInt(u32, h[32..36], 1, .big);
    try testing.expectError(error.NotSupported, Header.parse(&h, 1 << 20)); // encrypted
    std.mem.writeInt(u32, h[0..4], 0, .big);
    try testing.expectError(error.Corrupt, Header.parse(&h, 1 << 20));
}

test "L2 entries: data, zero, unallocated, compressed, corrupt" {
    const fs: u64 = 1 << 20;
    try testing.expectEqual(Mapping{ .data = 65536 }, try decodeL2(65536 | 1 << 63, 16, fs));
    try testing.expectEqual(Mapping.zero, try decodeL2(1, 16, fs));
    try testing.expectEqual(Mapping.backing, try decodeL2(0, 16, fs));
    try testing.expectError(error.Corrupt, decodeL2(65536 + 512, 16, fs)); // misaligned
    try testing.expectError(error.Corrupt, decodeL2(1 << 40, 16, fs)); // past the file
    const c = try decodeL2(l2_compressed | (3 << 54) | 70000, 16, fs); // x = 54: 4 sectors
    try testing.expectEqual(@as(u64, 70000), c.compressed.offset);
    try testing.expectEqual(@as(u64, 4 * 512 - (70000 & 511)), c.compressed.len);
}

test "inflate: a raw deflate stream of one cluster, and garbage" {
    var out: [4096]u8 = undefined;
    // A stored block: BFINAL=1, BTYPE=00, LEN=4096, NLEN.
    var stored: [5 + 4096]u8 = undefined;
    stored[0] = 1;
    std.mem.writeInt(u16, stored[1..3], 4096, .little);
    std.mem.writeInt(u16, stored[3..5], ~@as(u16, 4096), .little);
    @memset(stored[5..], 0x5a);
    try inflate(&stored, &out);
    try testing.expect(std.mem.allEqual(u8, &out, 0x5a));
    try testing.expectError(error.Corrupt, inflate(stored[0..100], &out));
    const garbage: [64]u8 = @splat(0xff);
    try testing.expectError(error.Corrupt, inflate(&garbage, &out));
}
