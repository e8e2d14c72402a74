//! Disk setters (virtio-blk): krun_add_disk/2/3, the deprecated krun_set_root_disk and
//! krun_set_data_disk, and krun_set_root_disk_remount. Each image is opened once at call time
//! (outside the context lock: a slow filesystem holds up no other context) so that a missing
//! file, a directory, a wrong format, a corrupt qcow2 header or an image another VM holds is an
//! error now, with its reason; the VMM opens and locks it again when the VM is built.
const std = @import("std");
const test_tmp = @import("../test_tmp.zig");
const sys = @import("../sys/linux.zig");
const Config = @import("../Config.zig");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const fs = @import("fs.zig");
const Image = @import("../virtio/blk/Image.zig");
const Error = errors.Error;
const reject = errors.reject;

/// A block id is the guest-visible serial (first 20 bytes); this bounds the copy we keep.
pub const block_id_max = 255;
/// Disks per context: virtio-MMIO slots are shared with balloon, rng, console and fs.
pub const disks_max = 8;
/// krun_set_root_disk_remount's strings travel as one kernel-cmdline token each.
const remount_value_max = 200;

pub fn krun_add_disk(ctx_id: u32, block_id: cstr.CString, disk_path: cstr.CString, read_only: bool) callconv(.c) i32 {
    return errors.result(addDisk("krun_add_disk", ctx_id, block_id, disk_path, @backingInt(Config.DiskFormat.raw), read_only, false, @backingInt(Config.SyncMode.full), .modern));
}

pub fn krun_add_disk2(ctx_id: u32, block_id: cstr.CString, disk_path: cstr.CString, disk_format: u32, read_only: bool) callconv(.c) i32 {
    return errors.result(addDisk("krun_add_disk2", ctx_id, block_id, disk_path, disk_format, read_only, false, @backingInt(Config.SyncMode.full), .modern));
}

pub fn krun_add_disk3(ctx_id: u32, block_id: cstr.CString, disk_path: cstr.CString, disk_format: u32, read_only: bool, direct_io: bool, sync_mode: u32) callconv(.c) i32 {
    return errors.result(addDisk("krun_add_disk3", ctx_id, block_id, disk_path, disk_format, read_only, direct_io, sync_mode, .modern));
}

/// Deprecated in libkrun: a raw, writable disk with block id "root".
pub fn krun_set_root_disk(ctx_id: u32, disk_path: cstr.CString) callconv(.c) i32 {
    return errors.result(addDisk("krun_set_root_disk", ctx_id, "root", disk_path, 0, false, false, @backingInt(Config.SyncMode.full), .legacy));
}

/// Deprecated in libkrun: a raw, writable disk with block id "data".
pub fn krun_set_data_disk(ctx_id: u32, disk_path: cstr.CString) callconv(.c) i32 {
    return errors.result(addDisk("krun_set_data_disk", ctx_id, "data", disk_path, 0, false, false, @backingInt(Config.SyncMode.full), .legacy));
}

/// libkrun refuses mixing the deprecated setters with krun_add_disk*.
const Api = enum { modern, legacy };

fn addDisk(func: []const u8, ctx_id: u32, c_block_id: cstr.CString, c_path: cstr.CString, format_raw: u32, read_only: bool, direct_io: bool, sync_raw: u32, api: Api) Error!void {
    // Arguments first, the image outside the lock, then the context under it.
    {
        contexts.lock();
        defer contexts.unlock();
        _ = try contexts.config(func, ctx_id);
    }
    const block_id = try cstr.required(func, "block_id", c_block_id, block_id_max + 1);
    if (block_id.len == 0) return reject(func, error.InvalidArgument, "block_id is empty", .{});
    const path = try cstr.required(func, "disk_path", c_path, cstr.path_bytes_max);
    if (format_raw > @backingInt(Config.DiskFormat.vmdk)) {
        return reject(func, error.InvalidArgument, "disk_format {d} is not a KRUN_DISK_FORMAT_* (0 raw, 1 qcow2, 2 vmdk)", .{format_raw});
    }
    if (sync_raw > @backingInt(Config.SyncMode.full)) {
        return reject(func, error.InvalidArgument, "sync_mode {d} is not a KRUN_SYNC_* (0 none, 1 relaxed, 2 full)", .{sync_raw});
    }
    const format: Config.DiskFormat = @fromBackingInt(format_raw);
    const sync: Config.SyncMode = @fromBackingInt(sync_raw);
    try probe(func, path, format, read_only, direct_io);

    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config(func, ctx_id);
    if (api == .modern and cfg.legacy_disks) {
        return reject(func, error.InvalidArgument, "context {d} uses krun_set_root_disk/krun_set_data_disk, which cannot be mixed with krun_add_disk*", .{ctx_id});
    }
    if (api == .legacy and cfg.disks.items.len > 0 and !cfg.legacy_disks) {
        return reject(func, error.InvalidArgument, "context {d} uses krun_add_disk*, which cannot be mixed with the deprecated disk setters", .{ctx_id});
    }
    for (cfg.disks.items) |d| {
        if (std.mem.eql(u8, d.block_id, block_id))
            return reject(func, error.AlreadyExists, "context {d} already has a disk with block_id \"{s}\"", .{ ctx_id, block_id });
        if (std.mem.eql(u8, d.path, path))
            return reject(func, error.Busy, "\"{s}\" is already disk \"{s}\" of context {d}", .{ path, d.block_id, ctx_id });
    }
    if (cfg.disks.items.len == disks_max) {
        return reject(func, error.NoSpace, "context {d} has {d} disks already (the most)", .{ ctx_id, disks_max });
    }
    cfg.disks.ensureUnusedCapacity(cfg.allocator(), 1) catch return reject(func, error.OutOfMemory, "out of memory", .{});
    cfg.disks.appendAssumeCapacity(.{
        .block_id = try cstr.dupe(func, cfg, block_id),
        .path = try cstr.dupe(func, cfg, path),
        .format = format,
        .read_only = read_only,
        .direct_io = direct_io,
        .sync = sync,
    });
    if (api == .legacy) cfg.legacy_disks = true;
}

/// Opens the image the way the VMM will (format header, lock, O_DIRECT) and closes it again.
fn probe(func: []const u8, path: [:0]const u8, format: Config.DiskFormat, read_only: bool, direct_io: bool) Error!void {
    const image = Image.open(std.heap.c_allocator, path.ptr, .{
        .format = @fromBackingInt(@backingInt(format)),
        .read_only = read_only,
        .direct_io = direct_io,
    }) catch |err| return switch (err) {
        error.NotFound => reject(func, error.NotFound, "disk image \"{s}\" does not exist", .{path}),
        error.PermissionDenied => reject(func, error.PermissionDenied, "disk image \"{s}\" cannot be opened {s}", .{ path, if (read_only) "for reading" else "for reading and writing" }),
        error.IsDirectory => reject(func, error.IsDirectory, "disk image \"{s}\" is a directory", .{path}),
        error.InvalidImage => reject(func, error.InvalidArgument, "\"{s}\" is not a {t} disk image (not a regular file or block device, or a corrupt header)", .{ path, format }),
        error.InUse => reject(func, error.Busy, "disk image \"{s}\" is in use (locked by another VM or process)", .{path}),
        error.NotSupported => if (format == .vmdk)
            reject(func, error.NotSupported, "VMDK images are not supported by zkrun (no VMDK reader; convert with `qemu-img convert -O qcow2`)", .{})
        else if (direct_io)
            reject(func, error.NotSupported, "\"{s}\": O_DIRECT is not supported there, or the image uses a {t} feature zkrun does not read", .{ path, format })
        else if (format == .qcow2 and !read_only)
            reject(func, error.NotSupported, "\"{s}\": zkrun writes qcow2 images without internal snapshots, dirty flag or sub-byte refcounts, in a regular file (open it read-only, or `qemu-img check -r all` / convert it)", .{path})
        else
            reject(func, error.NotSupported, "\"{s}\" uses a {t} feature zkrun does not read", .{ path, format }),
        error.SystemResources => reject(func, error.TryAgain, "out of host resources opening \"{s}\"", .{path}),
        error.OutOfMemory => reject(func, error.OutOfMemory, "out of memory", .{}),
    };
    image.close();
}

/// Boot from a block device: a virtual root filesystem serves init, which mounts `device` (of
/// type `fstype`, with `options`) and makes it `/`. Needs a disk first; no root fs may exist.
pub fn krun_set_root_disk_remount(ctx_id: u32, device: cstr.CString, fstype: cstr.CString, options: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setRootRemount(ctx_id, device, fstype, options));
}

fn setRootRemount(ctx_id: u32, c_device: cstr.CString, c_fstype: cstr.CString, c_options: cstr.CString) Error!void {
    const func = "krun_set_root_disk_remount";
    const cfg = try contexts.config(func, ctx_id);
    const device = try cstr.required(func, "device", c_device, remount_value_max + 1);
    const fstype = try cstr.optional(func, "fstype", c_fstype, remount_value_max + 1);
    const options = try cstr.optional(func, "options", c_options, remount_value_max + 1);
    for ([_]?[]const u8{ device, fstype, options }) |value| if (value) |v| {
        for (v) |c| if (c <= ' ' or c > '~' or c == '"' or c == '\'') {
            return reject(func, error.InvalidArgument, "\"{s}\" has a space, quote or non-printable byte (it must be one kernel command-line token)", .{v});
        };
    };
    if (device.len == 0) return reject(func, error.InvalidArgument, "device is empty", .{});
    if (cfg.disks.items.len == 0) return reject(func, error.InvalidArgument, "context {d} has no disk: add one first (krun_add_disk*)", .{ctx_id});
    if (fs.hasRootFs(cfg)) return reject(func, error.AlreadyExists, "context {d} already has a root filesystem (krun_set_root or a \"/dev/root\" virtio-fs)", .{ctx_id});
    if (cfg.block_root != null) return reject(func, error.AlreadyExists, "context {d} already boots from a disk", .{ctx_id});
    const root: Config.BlockRoot = .{
        .device = try cstr.dupe(func, cfg, device),
        .fstype = if (fstype) |f| (if (f.len > 0) try cstr.dupe(func, cfg, f) else null) else null,
        .options = if (options) |o| (if (o.len > 0) try cstr.dupe(func, cfg, o) else null) else null,
    };
    try fs.addBlockBootRoot(func, ctx_id);
    cfg.block_root = root;
}

const testing = std.testing;

test "disk setters: bad input gets -errno and a reason; good disks are recorded" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    const ctx = @import("context.zig");
    const img = test_tmp.path("capi-disk-test.img");
    {
        const fd = try sys.openMode(img, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644);
        defer sys.close(fd);
        try sys.ftruncate(fd, 1 << 20);
    }
    try testing.expectEqual(@as(i32, -2), krun_add_disk(999_999, "a", img, false));
    const id: u32 = @intCast(ctx.krun_create_ctx());
    defer _ = ctx.krun_free_ctx(id);
    try testing.expectEqual(@as(i32, -2), krun_add_disk(id, "a", "/nonexistent/x.img", false));
    try testing.expectEqual(@as(i32, -21), krun_add_disk(id, "a", "/tmp", false));
    try testing.expectEqual(@as(i32, -22), krun_add_disk(id, null, img, false));
    try testing.expectEqual(@as(i32, -22), krun_add_disk(id, "", img, false));
    try testing.expectEqual(@as(i32, -22), krun_add_disk2(id, "a", img, 7, false));
    try testing.expectEqual(@as(i32, -95), krun_add_disk2(id, "a", img, 2, false));
    try testing.expectEqual(@as(i32, -22), krun_add_disk3(id, "a", img, 0, false, false, 3));
    try testing.expectEqual(@as(i32, -22), krun_set_root_disk_remount(id, "/dev/vda", "ext4", null)); // no disk yet
    try testing.expectEqual(@as(i32, 0), krun_add_disk(id, "a", img, false));
    try testing.expectEqual(@as(i32, -17), krun_add_disk(id, "a", img, true));
    try testing.expectEqual(@as(i32, -16), krun_add_disk(id, "b", img, true)); // same image twice
    try testing.expectEqual(@as(i32, -22), krun_set_data_disk(id, img)); // mixing APIs
    try testing.expectEqual(@as(i32, -22), krun_set_root_disk_remount(id, "/dev/vda", "ext4", "a b"));
    try testing.expectEqual(@as(i32, 0), krun_set_root_disk_remount(id, "/dev/vda", "ext4", "noatime"));
    try testing.expectEqual(@as(i32, -17), krun_set_root_disk_remount(id, "/dev/vda", null, null));
    contexts.lock();
    const cfg = contexts.config("test", id) catch unreachable;
    try testing.expectEqual(@as(usize, 1), cfg.disks.items.len);
    try testing.expectEqualStrings("noatime", cfg.block_root.?.options.?);
    try testing.expect(cfg.rootFs() != null and cfg.rootFs().?.path == null);
    contexts.unlock();
    // An image a running VM holds (its flock) is -EBUSY with a reason.
    const id2: u32 = @intCast(ctx.krun_create_ctx());
    defer _ = ctx.krun_free_ctx(id2);
    const held = try Image.open(testing.allocator, img, .{});
    try testing.expectEqual(@as(i32, -16), krun_add_disk(id2, "c", img, true));
    held.close();
    try testing.expectEqual(@as(i32, 0), krun_set_root_disk(id2, img));
    try testing.expectEqual(@as(i32, -22), krun_add_disk(id2, "x", img, false));
}
