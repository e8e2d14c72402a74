//! Filesystem setters: krun_set_root, krun_add_virtiofs/2/3, krun_disable_implicit_init,
//! krun_get_default_init, krun_fs_add_overlay_file/_dir, krun_set_mapped_volumes. Host
//! directories are checked at call time; the embedded init is attached to the root filesystem
//! as the one-shot overlay file "init.krun" (libkrun's `init_virtual_entry`).
const std = @import("std");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const Error = errors.Error;
const reject = errors.reject;

/// The guest init binary, built by build.zig and embedded into libkrun.so.
pub const init_bin: []const u8 = @embedFile("init_bin");
pub const init_name = "init.krun";
/// krun_set_root's DAX window (libkrun: 1 << 29).
pub const root_shm_size: u64 = 512 << 20;
/// The largest DAX window accepted: it takes guest-physical space above RAM.
pub const shm_size_max: u64 = 64 << 30;
const page_size = 4096;

const mode_type_mask: u32 = 0o170000;
const mode_regular: u32 = 0o100000;
const mode_directory: u32 = 0o040000;

pub fn krun_set_root(ctx_id: u32, root_path: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addFs("krun_set_root", ctx_id, Config.root_tag, root_path, .required, root_shm_size, false));
}

pub fn krun_add_virtiofs(ctx_id: u32, c_tag: cstr.CString, c_path: cstr.CString) callconv(.c) i32 {
    return addFsC("krun_add_virtiofs", ctx_id, c_tag, c_path, 0, false);
}

pub fn krun_add_virtiofs2(ctx_id: u32, c_tag: cstr.CString, c_path: cstr.CString, shm_size: u64) callconv(.c) i32 {
    return addFsC("krun_add_virtiofs2", ctx_id, c_tag, c_path, shm_size, false);
}

pub fn krun_add_virtiofs3(ctx_id: u32, c_tag: cstr.CString, c_path: cstr.CString, shm_size: u64, read_only: bool) callconv(.c) i32 {
    return addFsC("krun_add_virtiofs3", ctx_id, c_tag, c_path, shm_size, read_only);
}

fn addFsC(func: []const u8, ctx_id: u32, c_tag: cstr.CString, c_path: cstr.CString, shm_size: u64, read_only: bool) i32 {
    contexts.lock();
    defer contexts.unlock();
    const outcome = blk: {
        // The context first: an unknown id is -ENOENT whatever the other arguments are.
        _ = contexts.config(func, ctx_id) catch |err| break :blk err;
        const tag = cstr.required(func, "c_tag", c_tag, Config.fs_tag_max + 1) catch |err| break :blk err;
        break :blk addFs(func, ctx_id, tag, c_path, .optional, shm_size, read_only);
    };
    return errors.result(outcome);
}

/// krun_set_root requires a path; krun_add_virtiofs* allow NULL (a virtual-only fs).
const PathRule = enum { required, optional };

fn addFs(func: []const u8, ctx_id: u32, tag: []const u8, c_path: cstr.CString, rule: PathRule, shm_size: u64, read_only: bool) Error!void {
    const cfg = try contexts.config(func, ctx_id);
    const is_root = std.mem.eql(u8, tag, Config.root_tag);
    const path = switch (rule) {
        .required => try cstr.required(func, "root_path", c_path, cstr.path_bytes_max),
        .optional => try cstr.optional(func, "c_path", c_path, cstr.path_bytes_max),
    };
    if (tag.len == 0 or tag.len > Config.fs_tag_max) {
        return reject(func, error.InvalidArgument, "tag \"{s}\" must be 1..{d} bytes", .{ tag, Config.fs_tag_max });
    }
    if (shm_size % page_size != 0 or shm_size > shm_size_max) {
        return reject(func, error.InvalidArgument, "shm_size {d} must be a multiple of {d} and at most {d}", .{ shm_size, page_size, shm_size_max });
    }
    if (path) |p| try host.directory(func, if (is_root) "root directory" else "shared directory", p);
    if (findFs(cfg, tag) != null) {
        return reject(func, error.AlreadyExists, "context {d} already has a virtio-fs with tag \"{s}\"", .{ ctx_id, tag });
    }
    if (cfg.virtiofs.items.len == Config.virtio_devices_max) {
        return reject(func, error.NoSpace, "context {d} has no virtio slot left ({d} at most)", .{ ctx_id, Config.virtio_devices_max });
    }
    const entry: Config.VirtioFs = .{
        .tag = try cstr.dupe(func, cfg, tag),
        .path = if (path) |p| try cstr.dupe(func, cfg, p) else null,
        .shm_size = shm_size,
        .read_only = read_only,
    };
    try reserve(func, cfg, 1);
    cfg.virtiofs.appendAssumeCapacity(entry);
    if (is_root and cfg.implicit_init) {
        try checkOverlayCount(func, cfg);
        try reserveFiles(func, cfg);
        cfg.overlay_files.appendAssumeCapacity(.{
            .fs_tag = entry.tag,
            .path = init_name,
            .data = init_bin, // static: no copy needed
            .mode = mode_regular | 0o755,
            .one_shot = true,
        });
    }
}

/// krun_set_root_disk_remount's root: a virtual-only root filesystem serving init.krun and the
/// empty directories init needs before it mounts the block device (libkrun's NullFs root).
pub fn addBlockBootRoot(func: []const u8, ctx_id: u32) Error!void {
    try addFs(func, ctx_id, Config.root_tag, null, .optional, 0, false);
    const cfg = try contexts.config(func, ctx_id);
    for ([_][]const u8{ "dev", "proc", "sys", "newroot" }) |dir| {
        try checkOverlayCount(func, cfg);
        try reserveFiles(func, cfg);
        cfg.overlay_files.appendAssumeCapacity(.{ .fs_tag = Config.root_tag, .path = dir, .data = "", .mode = mode_directory | 0o755, .one_shot = false });
    }
}

pub fn hasRootFs(cfg: *const Config) bool {
    return findFs(cfg, Config.root_tag) != null;
}

fn findFs(cfg: *const Config, tag: []const u8) ?*const Config.VirtioFs {
    for (cfg.virtiofs.items) |*fs| {
        if (std.mem.eql(u8, fs.tag, tag)) return fs;
    }
    return null;
}

fn reserve(func: []const u8, cfg: *Config, n: usize) Error!void {
    cfg.virtiofs.ensureUnusedCapacity(cfg.allocator(), n) catch
        return reject(func, error.OutOfMemory, "out of memory", .{});
}

fn reserveFiles(func: []const u8, cfg: *Config) Error!void {
    cfg.overlay_files.ensureUnusedCapacity(cfg.allocator(), 1) catch
        return reject(func, error.OutOfMemory, "out of memory", .{});
}

pub fn krun_disable_implicit_init(ctx_id: u32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_disable_implicit_init", ctx_id) catch |err| return errors.errno(err);
    cfg.implicit_init = false;
    return 0;
}

pub fn krun_get_default_init(data_out: ?*?[*]const u8, len_out: ?*usize) callconv(.c) i32 {
    const func = "krun_get_default_init";
    const data = data_out orelse return errors.errno(reject(func, error.InvalidArgument, "data_out is NULL", .{}));
    const len = len_out orelse return errors.errno(reject(func, error.InvalidArgument, "len_out is NULL", .{}));
    assert(init_bin.len > 0); // tidy: embedded at build time
    data.* = init_bin.ptr;
    len.* = init_bin.len;
    return 0;
}

pub fn krun_set_mapped_volumes(ctx_id: u32, mapped_volumes: cstr.CStringArray) callconv(.c) i32 {
    _ = mapped_volumes;
    const func = "krun_set_mapped_volumes";
    contexts.lock();
    defer contexts.unlock();
    _ = contexts.config(func, ctx_id) catch |err| return errors.errno(err);
    return errors.errno(reject(func, error.InvalidArgument, "no longer supported (as in libkrun): use krun_add_virtiofs", .{}));
}

// ---- overlay entries ---------------------------------------------------------------------

pub fn krun_fs_add_overlay_file(
    ctx_id: u32,
    fs_tag: cstr.CString,
    path: cstr.CString,
    data: ?[*]const u8,
    data_len: usize,
    mode: u32,
    one_shot: bool,
) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addOverlayFile(ctx_id, fs_tag, path, data, data_len, mode, one_shot));
}

fn addOverlayFile(ctx_id: u32, fs_tag: cstr.CString, c_path: cstr.CString, data: ?[*]const u8, data_len: usize, mode: u32, one_shot: bool) Error!void {
    const func = "krun_fs_add_overlay_file";
    const cfg = try contexts.config(func, ctx_id);
    const tag, const path = try overlayTarget(func, cfg, fs_tag, c_path);
    const bytes = data orelse return reject(func, error.InvalidArgument, "data is NULL", .{});
    if (data_len > Config.overlay_file_bytes_max) {
        return reject(func, error.InvalidArgument, "data_len {d} is above {d}", .{ data_len, Config.overlay_file_bytes_max });
    }
    const full_mode = try typedMode(func, mode, mode_regular);
    try reserveFiles(func, cfg);
    try cstr.room(func, cfg, data_len);
    const copy = cfg.allocator().dupe(u8, bytes[0..data_len]) catch
        return reject(func, error.OutOfMemory, "out of memory copying {d} bytes", .{data_len});
    cfg.overlay_files.appendAssumeCapacity(.{
        .fs_tag = tag,
        .path = try cstr.dupe(func, cfg, path),
        .data = copy,
        .mode = full_mode,
        .one_shot = one_shot,
    });
}

pub fn krun_fs_add_overlay_dir(ctx_id: u32, fs_tag: cstr.CString, path: cstr.CString, mode: u32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addOverlayDir(ctx_id, fs_tag, path, mode));
}

fn addOverlayDir(ctx_id: u32, fs_tag: cstr.CString, c_path: cstr.CString, mode: u32) Error!void {
    const func = "krun_fs_add_overlay_dir";
    const cfg = try contexts.config(func, ctx_id);
    const tag, const path = try overlayTarget(func, cfg, fs_tag, c_path);
    const full_mode = try typedMode(func, mode, mode_directory);
    try reserveFiles(func, cfg);
    cfg.overlay_files.appendAssumeCapacity(.{
        .fs_tag = tag,
        .path = try cstr.dupe(func, cfg, path),
        .data = "",
        .mode = full_mode,
        .one_shot = false,
    });
}

/// Validates tag and path of a new overlay entry: the fs exists, the path is well formed, its
/// parents are overlay directories, and it is new. Returns the Config's copy of the tag.
fn overlayTarget(func: []const u8, cfg: *Config, fs_tag: cstr.CString, c_path: cstr.CString) Error!struct { []const u8, []const u8 } {
    const tag = try cstr.required(func, "fs_tag", fs_tag, Config.fs_tag_max + 1);
    const path = try cstr.required(func, "path", c_path, cstr.path_bytes_max);
    const fs = findFs(cfg, tag) orelse return reject(func, error.NotFound, "no virtio-fs with tag \"{s}\"", .{tag});
    var components = std.mem.splitScalar(u8, path, '/');
    while (components.next()) |c| {
        if (c.len == 0 or std.mem.eql(u8, c, ".") or std.mem.eql(u8, c, "..")) {
            return reject(func, error.InvalidArgument, "path \"{s}\" has an empty, \".\" or \"..\" component", .{path});
        }
    }
    try checkOverlayCount(func, cfg);
    // Each proper prefix ending before a '/' must be an overlay directory.
    var i: usize = 0;
    while (std.mem.indexOfScalarPos(u8, path, i, '/')) |slash| : (i = slash + 1) {
        const parent = path[0..slash];
        switch (lookup(cfg, fs.tag, parent)) {
            .dir => {},
            .file => return reject(func, error.NotDirectory, "\"{s}\" (parent of \"{s}\") is a file", .{ parent, path }),
            .none => return reject(func, error.NotFound, "parent directory \"{s}\" of \"{s}\" was not added", .{ parent, path }),
        }
    }
    if (lookup(cfg, fs.tag, path) != .none) return reject(func, error.AlreadyExists, "\"{s}\" already exists in \"{s}\"", .{ path, tag });
    return .{ fs.tag, path };
}

fn lookup(cfg: *const Config, tag: []const u8, path: []const u8) enum { none, dir, file } {
    for (cfg.overlay_files.items) |f| {
        if (!std.mem.eql(u8, f.fs_tag, tag) or !std.mem.eql(u8, f.path, path)) continue;
        return if (f.mode & mode_type_mask == mode_directory) .dir else .file;
    }
    return .none;
}

fn checkOverlayCount(func: []const u8, cfg: *const Config) Error!void {
    if (cfg.overlay_files.items.len >= Config.overlay_entries_max) {
        return reject(func, error.NoSpace, "{d} overlay entries at most", .{Config.overlay_entries_max});
    }
}

/// Mode bits with the file type: a missing type is `kind`; another type is an error.
fn typedMode(func: []const u8, mode: u32, kind: u32) Error!u32 {
    const kind_of_mode = mode & mode_type_mask;
    if (mode & ~(mode_type_mask | 0o7777) != 0 or (kind_of_mode != 0 and kind_of_mode != kind)) {
        return reject(func, error.InvalidArgument, "mode 0{o} is not a {s} mode", .{ mode, if (kind == mode_directory) "directory" else "regular file" });
    }
    return kind | (mode & 0o7777);
}

test "root, tags, overlays and copies" {
    const tc = try @import("context.zig").TestContext.init();
    defer tc.deinit();
    const id = tc.id;
    try std.testing.expectEqual(@as(i32, -2), krun_set_root(id, "/nonexistent/root"));
    try std.testing.expectEqual(@as(i32, -20), krun_set_root(id, "/proc/self/status"));
    try std.testing.expectEqual(@as(i32, -22), krun_set_root(id, null));
    var root = "/tmp".*;
    try std.testing.expectEqual(@as(i32, 0), krun_set_root(id, &root));
    root[1] = 'X';
    try std.testing.expectEqual(@as(i32, -17), krun_set_root(id, "/"));
    var tag = "data".*;
    try std.testing.expectEqual(@as(i32, 0), krun_add_virtiofs2(id, &tag, null, 1 << 20));
    tag[0] = 'X';
    try std.testing.expectEqual(@as(i32, -22), krun_add_virtiofs(id, "0123456789012345678901234567890123456", null));
    try std.testing.expectEqual(@as(i32, -22), krun_add_virtiofs2(id, "odd", null, 4095));
    try std.testing.expectEqual(@as(i32, 0), krun_fs_add_overlay_dir(id, "data", "etc", 0o755));
    try std.testing.expectEqual(@as(i32, -2), krun_fs_add_overlay_file(id, "data", "usr/x", "hi", 2, 0o644, false));
    try std.testing.expectEqual(@as(i32, -20), krun_fs_add_overlay_file(id, "/dev/root", "init.krun/x", "hi", 2, 0o644, false));
    try std.testing.expectEqual(@as(i32, -17), krun_fs_add_overlay_dir(id, "/dev/root", "init.krun", 0o755));
    try std.testing.expectEqual(@as(i32, -22), krun_fs_add_overlay_dir(id, "data", "/abs", 0o755));
    var content = "hello".*;
    try std.testing.expectEqual(@as(i32, 0), krun_fs_add_overlay_file(id, "data", "etc/hostname", &content, 5, 0o100644, false));
    content[0] = 'X';
    try std.testing.expectEqual(@as(i32, -22), krun_fs_add_overlay_file(id, "data", "etc/dir", "x", 1, 0o040755, false));

    contexts.lock();
    defer contexts.unlock();
    const cfg = try contexts.config("t", id);
    try std.testing.expectEqualStrings("/tmp", cfg.rootFs().?.path.?);
    try std.testing.expectEqual(root_shm_size, cfg.rootFs().?.shm_size);
    try std.testing.expectEqualStrings("data", cfg.virtiofs.items[1].tag);
    try std.testing.expectEqualStrings(init_name, cfg.overlay_files.items[0].path);
    try std.testing.expectEqual(@as(u32, 0o040755), cfg.overlay_files.items[1].mode);
    try std.testing.expectEqualStrings("etc/hostname", cfg.overlay_files.items[2].path);
    try std.testing.expectEqualStrings("hello", cfg.overlay_files.items[2].data);
    try std.testing.expectEqual(@as(u32, 0o100644), cfg.overlay_files.items[2].mode);
}
