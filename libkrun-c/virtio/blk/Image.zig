//! A disk image behind a virtio-blk device: the host file (or block device), its format and the
//! I/O the device's workers do on it. Raw images are read and written in place with
//! preadv/pwritev straight from and into guest memory; qcow2 images go through qcow2.zig
//! (reads) and qcow2_write.zig (writes, write-zeroes, discard; crash behaviour: QCOW2.md).
//! Every method is safe to call from several worker threads at once (positional I/O only;
//! qcow2 serializes its own metadata).
//!
//! Opening takes a flock on the image (shared for read-only, exclusive otherwise), held until
//! `close`: a second VM, in this process or another, cannot open the same image for writing.
const std = @import("std");
const test_tmp = @import("../../test_tmp.zig");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const Qcow2 = @import("qcow2.zig").Qcow2;
const qcow2_write = @import("qcow2_write.zig");

const log = std.log.scoped(.virtio);

const Image = @This();

pub const sector_size: u64 = 512;

pub const Format = enum(u32) { raw = 0, qcow2 = 1, vmdk = 2 };

/// KRUN_SYNC_*: what a guest flush does. libkrun: RELAXED is FULL on Linux.
pub const SyncMode = enum(u32) {
    /// Flush requests succeed without touching the host (FLUSH is not offered).
    none = 0,
    relaxed = 1,
    full = 2,
};

pub const Options = struct {
    format: Format = .raw,
    read_only: bool = false,
    direct_io: bool = false,
    sync: SyncMode = .full,
};

pub const OpenError = error{
    NotFound,
    PermissionDenied,
    IsDirectory,
    /// Not a regular file or block device, or an image whose format header is wrong.
    InvalidImage,
    /// Another open of the image holds a conflicting lock.
    InUse,
    /// A format or mode this build cannot serve (VMDK, qcow2 features we do not know, a
    /// writable qcow2 with internal snapshots, dirty, or on a block device).
    NotSupported,
    SystemResources,
    OutOfMemory,
};

pub const IoError = error{ InputOutput, NoSpace, ReadOnly };

fd: linux.fd_t,
/// The buffered fd for requests O_DIRECT refuses (misaligned guest buffers); == fd otherwise.
fd_buffered: linux.fd_t,
/// Bytes the guest sees, a multiple of the sector size.
capacity: u64,
options: Options,
qcow2: ?*Qcow2 = null,
gpa: std.mem.Allocator,

/// Opens and locks `path` (NUL-terminated). A qcow2 image is checked here (header, tables'
/// placement, backing chain): a corrupt one is an error now, not in the guest.
pub fn open(gpa: std.mem.Allocator, path: [*:0]const u8, options: Options) OpenError!*Image {
    if (options.format == .vmdk) return error.NotSupported;
    const fd = try openFile(path, options.read_only, false);
    errdefer sys.close(fd);
    try lockFile(fd, options.read_only);
    const size = try fileSize(fd);
    const self = gpa.create(Image) catch return error.OutOfMemory;
    errdefer gpa.destroy(self);
    self.* = .{ .fd = fd, .fd_buffered = fd, .capacity = size / sector_size * sector_size, .options = options, .gpa = gpa };
    if (options.format == .qcow2) {
        const dir = openDir(path);
        defer if (dir != linux.AT.FDCWD) sys.close(dir);
        self.qcow2 = Qcow2.open(gpa, fd, size, dir, 0) catch |err| return switch (err) {
            error.OutOfMemory => error.OutOfMemory,
            error.NotSupported => error.NotSupported,
            error.NotFound => error.NotFound,
            error.PermissionDenied => error.PermissionDenied,
            error.SystemResources => error.SystemResources,
            else => error.InvalidImage,
        };
        self.capacity = self.qcow2.?.size;
        if (!options.read_only) qcow2_write.enable(self.qcow2.?) catch |err| {
            self.qcow2.?.destroy();
            return switch (err) {
                error.OutOfMemory => error.OutOfMemory,
                error.NotSupported => error.NotSupported,
                error.Corrupt => error.InvalidImage,
            };
        };
    }
    if (options.direct_io) {
        self.fd = try openFile(path, options.read_only, true);
    }
    return self;
}

pub fn close(self: *Image) void {
    if (self.qcow2) |q| q.destroy();
    if (self.fd != self.fd_buffered) sys.close(self.fd);
    sys.close(self.fd_buffered); // drops the flock
    self.gpa.destroy(self);
}

/// The directory holding `path` (backing files are named relative to it); FDCWD for a bare name.
fn openDir(path: [*:0]const u8) linux.fd_t {
    const p = std.mem.span(path);
    const slash = std.mem.lastIndexOfScalar(u8, p, '/') orelse return linux.AT.FDCWD;
    var buf: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (slash >= buf.len) return linux.AT.FDCWD;
    const dir = if (slash == 0) "/" else p[0..slash];
    @memcpy(buf[0..dir.len], dir);
    buf[dir.len] = 0;
    return sys.open(@ptrCast(&buf), .{ .ACCMODE = .RDONLY, .DIRECTORY = true, .CLOEXEC = true }) catch linux.AT.FDCWD;
}

fn openFile(path: [*:0]const u8, read_only: bool, direct: bool) OpenError!linux.fd_t {
    // sys.open restarts EINTR.
    return sys.open(path, .{
        .ACCMODE = if (read_only) .RDONLY else .RDWR,
        .CLOEXEC = true,
        .DIRECT = direct,
    }) catch |err| switch (err) {
        error.NOENT, error.NOTDIR, error.NXIO, error.NODEV => error.NotFound,
        error.ACCES, error.PERM, error.ROFS, error.TXTBSY => error.PermissionDenied,
        error.ISDIR => error.IsDirectory,
        error.INVAL => error.NotSupported, // O_DIRECT on a filesystem without it
        error.MFILE, error.NFILE, error.NOMEM => error.SystemResources,
        else => {
            log.warn("blk: open: {t}", .{err});
            return error.InvalidImage;
        },
    };
}

fn lockFile(fd: linux.fd_t, read_only: bool) OpenError!void {
    // flock(2): LOCK_SH 1, LOCK_EX 2, LOCK_NB 4.
    const op: i32 = @as(i32, if (read_only) 1 else 2) | 4;
    while (true) {
        sys.flock(fd, op) catch |err| switch (err) {
            error.INTR => continue,
            error.AGAIN => return error.InUse,
            // Filesystems without locks (some network ones): serve the image unlocked.
            error.OPNOTSUPP, error.NOLCK => return,
            else => return error.SystemResources,
        };
        return;
    }
}

/// The size of a regular file or block device; anything else is not an image.
fn fileSize(fd: linux.fd_t) OpenError!u64 {
    const st = sys.fstatx(fd, .{ .TYPE = true, .SIZE = true }) catch return error.SystemResources;
    const kind = st.mode & linux.S.IFMT;
    if (kind == linux.S.IFDIR) return error.IsDirectory;
    if (kind == linux.S.IFREG) return st.size;
    if (kind != linux.S.IFBLK) return error.InvalidImage;
    var size: u64 = 0;
    const blkgetsize64: u32 = 0x80081272; // _IOR(0x12, 114, size_t)
    _ = sys.ioctl(fd, blkgetsize64, @intFromPtr(&size)) catch return error.InvalidImage;
    return size;
}

/// Fills the `iov` buffers from the image at byte `offset` (inside the capacity: the request
/// decoder checked it). Bytes past the end of a raw file read as zeros.
pub fn readv(self: *Image, iov: []const std.posix.iovec, offset: u64) IoError!void {
    if (self.qcow2) |q| return q.readv(iov, offset) catch error.InputOutput;
    return self.transferAll(.read, iov, offset);
}

/// Writes the `iov` buffers to the image at byte `offset`.
pub fn writev(self: *Image, iov: []const std.posix.iovec, offset: u64) IoError!void {
    if (self.options.read_only) return error.ReadOnly;
    if (self.qcow2) |q| return qcow2_write.writev(q, iov, offset) catch |err| switch (err) {
        error.NoSpace => error.NoSpace,
        error.InputOutput => error.InputOutput,
    };
    return self.transferAll(.write, iov, offset);
}

/// A raw image's readv or writev: the iovecs in batches of `iov_batch`, continued after short
/// transfers. A read that reaches the end of the file fills the rest of its batch with zeros
/// and ends; a write that makes no progress fails.
fn transferAll(self: *Image, comptime dir: Direction, iov: []const std.posix.iovec, offset: u64) IoError!void {
    var at = offset;
    var i: usize = 0;
    var first_skip: usize = 0;
    while (i < iov.len) {
        var local: [iov_batch]std.posix.iovec = undefined;
        const n = trimmed(&local, iov[i..], first_skip);
        const rc = try self.transferv(dir, local[0..n], at);
        if (rc == 0) switch (dir) {
            .read => { // past the end of the file: zeros
                for (local[0..n]) |v| @memset(v.base[0..v.len], 0);
                return;
            },
            .write => return error.InputOutput,
        };
        at += rc;
        advance(iov, &i, &first_skip, rc);
    }
}

/// iovecs per preadv/pwritev: a whole request of Blk's (seg_max 254 segments) in one call,
/// so a 1 MiB guest write is one syscall and one take of the file's inode lock, not four
/// (measured: BENCHMARKS.md "virtio-blk", 4-job sequential writes).
const iov_batch = 256;

/// Copies up to `iov_batch` entries of `rest` into `out`, the first one minus `skip` bytes.
fn trimmed(out: *[iov_batch]std.posix.iovec, rest: []const std.posix.iovec, skip: usize) usize {
    const n = @min(rest.len, out.len);
    @memcpy(out[0..n], rest[0..n]);
    out[0].base += skip;
    out[0].len -= skip;
    return n;
}

/// Moves (i, skip) forward by `done` bytes over `iov` (a short transfer resumes mid-buffer).
fn advance(iov: []const std.posix.iovec, i: *usize, skip: *usize, done: usize) void {
    var left = done;
    while (left > 0 and i.* < iov.len) {
        const rest = iov[i.*].len - skip.*;
        if (left < rest) {
            skip.* += left;
            return;
        }
        left -= rest;
        i.* += 1;
        skip.* = 0;
    }
    // Skip empty entries so the loop ends.
    while (i.* < iov.len and iov[i.*].len == skip.*) {
        i.* += 1;
        skip.* = 0;
    }
}

const Direction = enum { read, write };

/// One preadv or pwritev at `offset`, retried on EINTR/EAGAIN, and on the buffered fd when the
/// O_DIRECT one refuses it.
fn transferv(self: *Image, comptime dir: Direction, iov: []const std.posix.iovec, offset: u64) IoError!usize {
    var fd = self.fd;
    while (true) {
        const result = switch (dir) {
            .read => sys.preadv(fd, iov, offset),
            .write => sys.pwritev(fd, @ptrCast(iov), offset),
        };
        return result catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            // O_DIRECT refuses buffers or offsets not aligned to the host's block size.
            error.INVAL => if (fd != self.fd_buffered) {
                fd = self.fd_buffered;
                continue;
            } else return error.InputOutput,
            error.NOSPC, error.DQUOT, error.FBIG => if (dir == .write) return error.NoSpace else return transferFailed(dir, err),
            else => return transferFailed(dir, err),
        };
    }
}

fn transferFailed(comptime dir: Direction, e: sys.Error) IoError {
    log.warn("blk: p{t}v: {t}", .{ dir, e });
    return error.InputOutput;
}

/// A guest flush: the image's data reaches stable storage (KRUN_SYNC_NONE: nothing to do).
pub fn flush(self: *Image) IoError!void {
    if (self.options.sync == .none or self.options.read_only) return;
    while (true) {
        sys.fdatasync(self.fd_buffered) catch |err| switch (err) {
            error.INTR => continue,
            error.INVAL, error.ROFS => return, // a file type without sync (nothing cached to write)
            else => {
                log.warn("blk: fdatasync: {t}", .{err});
                return error.InputOutput;
            },
        };
        return;
    }
}

/// Discard: the range's host blocks are released (a hole). Advisory: a host that cannot
/// punch holes leaves the data, which the guest may not rely on anyway.
pub fn discard(self: *Image, offset: u64, len: u64) IoError!void {
    if (self.options.read_only) return error.ReadOnly;
    if (self.qcow2) |q| return qcow2Zero(q, offset, len, true);
    _ = self.fallocate(linux.FALLOC.FL_PUNCH_HOLE | linux.FALLOC.FL_KEEP_SIZE, offset, len);
}

/// Write-zeroes: the range reads back as zeros afterwards (a hole when `unmap`, else zeroed
/// blocks); written out with zero buffers where the host cannot do either.
pub fn writeZeroes(self: *Image, offset: u64, len: u64, unmap: bool) IoError!void {
    if (self.options.read_only) return error.ReadOnly;
    if (self.qcow2) |q| return qcow2Zero(q, offset, len, false);
    if (unmap and self.fallocate(linux.FALLOC.FL_PUNCH_HOLE | linux.FALLOC.FL_KEEP_SIZE, offset, len)) return;
    if (self.fallocate(linux.FALLOC.FL_ZERO_RANGE | linux.FALLOC.FL_KEEP_SIZE, offset, len)) return;
    const zeros: [64 * 1024]u8 = @splat(0);
    var at = offset;
    const end = offset + len;
    while (at < end) {
        const n: usize = @intCast(@min(end - at, zeros.len));
        const v = [1]std.posix.iovec{.{ .base = @constCast(&zeros), .len = n }};
        const rc = try self.transferv(.write, &v, at);
        if (rc == 0) return error.InputOutput;
        at += rc;
    }
}

fn qcow2Zero(q: *Qcow2, offset: u64, len: u64, is_discard: bool) IoError!void {
    qcow2_write.zeroRange(q, offset, len, is_discard) catch |err| return switch (err) {
        error.NoSpace => error.NoSpace,
        error.InputOutput => error.InputOutput,
    };
}

fn fallocate(self: *Image, mode: u32, offset: u64, len: u64) bool {
    while (true) {
        sys.fallocate(self.fd_buffered, mode, offset, len) catch |err| switch (err) {
            error.INTR => continue,
            else => return false,
        };
        return true;
    }
}

const testing = std.testing;

test "raw image: open, lock, read past the end as zeros, write, discard, zero, errors" {
    const path = test_tmp.path("blk-image-test.img");
    {
        const fd = try sys.openMode(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644);
        defer sys.close(fd);
        const data: [1024 + 100]u8 = @splat(0xab);
        try sys.pwriteAll(fd, &data, 0);
    }
    const img = try Image.open(testing.allocator, path, .{});
    defer img.close();
    try testing.expectEqual(@as(u64, 1024), img.capacity);
    try testing.expectError(error.InUse, Image.open(testing.allocator, path, .{ .read_only = true }));
    var a: [512]u8 = undefined;
    var b: [1024]u8 = undefined;
    const iov = [_]std.posix.iovec{ .{ .base = &a, .len = a.len }, .{ .base = &b, .len = b.len } };
    try img.readv(&iov, 512); // 512 + 100 bytes of file, then zeros
    try testing.expect(std.mem.allEqual(u8, &a, 0xab));
    try testing.expect(std.mem.allEqual(u8, b[0..100], 0xab));
    try testing.expect(std.mem.allEqual(u8, b[100..], 0));
    @memset(&a, 0x11);
    try img.writev(iov[0..1], 0);
    try img.writeZeroes(512, 512, false);
    try img.flush();
    try img.readv(iov[1..2], 0);
    try testing.expect(std.mem.allEqual(u8, b[0..512], 0x11));
    try testing.expect(std.mem.allEqual(u8, b[512..], 0));
    try img.discard(0, 512);
    try testing.expectError(error.IsDirectory, Image.open(testing.allocator, "/tmp", .{}));
    try testing.expectError(error.NotFound, Image.open(testing.allocator, "/nonexistent/zkrun.img", .{}));
    try testing.expectError(error.NotSupported, Image.open(testing.allocator, path, .{ .format = .vmdk }));
    try testing.expectError(error.InvalidImage, Image.open(testing.allocator, "/dev/null", .{ .read_only = true }));
}
