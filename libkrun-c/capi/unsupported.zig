//! Every libkrun function for a feature zkrun does not build: it exists so that clients
//! which resolve all symbols (crun dlsyms with RTLD_NOW) load us, and answers -ENOTSUP with a
//! log line naming what is missing. An unknown context is still -ENOENT first, as for every
//! ctx function. krun_has_feature reports these features as absent. A request that asks
//! nothing of the missing feature is honoured, so real clients' call sequences go through:
//! an empty SMBIOS string list, sound turned off.
const std = @import("std");
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");

fn unsupported(func: []const u8, ctx_id: u32, why: []const u8) i32 {
    contexts.lock();
    defer contexts.unlock();
    _ = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    return errors.errno(errors.reject(func, error.NotSupported, "not supported by zkrun: {s}", .{why}));
}

/// 0 for a context that exists when `request_empty`, else -ENOTSUP with `why`.
fn honouredIfEmpty(func: []const u8, ctx_id: u32, request_empty: bool, why: []const u8) i32 {
    if (!request_empty) return unsupported(func, ctx_id, why);
    contexts.lock();
    defer contexts.unlock();
    _ = contexts.config(func, ctx_id) catch |err| return errors.errno(err);
    return 0;
}

/// A NULL array, or one whose first entry is the terminator.
fn emptyArray(array: cstr.CStringArray) bool {
    const entries = array orelse return true;
    return entries[0] == null;
}

pub fn krun_set_smbios_oem_strings(ctx_id: u32, oem_strings: cstr.CStringArray) callconv(.c) i32 {
    return honouredIfEmpty("krun_set_smbios_oem_strings", ctx_id, emptyArray(oem_strings), "SMBIOS tables are not written on x86_64 (as in libkrun)");
}

pub fn krun_set_firmware(ctx_id: u32, firmware_path: cstr.CString) callconv(.c) i32 {
    _ = firmware_path;
    return unsupported("krun_set_firmware", ctx_id, "EFI firmware boot is not built");
}

pub fn krun_add_serial_console_default(ctx_id: u32, input_fd: c_int, output_fd: c_int) callconv(.c) i32 {
    _ = input_fd;
    _ = output_fd;
    return unsupported("krun_add_serial_console_default", ctx_id, "serial consoles are not built (the guest kernel has no 8250 driver)");
}

pub fn krun_add_virtio_console_multiport(ctx_id: u32) callconv(.c) i32 {
    return unsupported("krun_add_virtio_console_multiport", ctx_id, "multiport consoles are not built (use krun_add_virtio_console_default)");
}

pub fn krun_add_console_port_tty(ctx_id: u32, console_id: u32, name: cstr.CString, tty_fd: c_int) callconv(.c) i32 {
    _ = console_id;
    _ = name;
    _ = tty_fd;
    return unsupported("krun_add_console_port_tty", ctx_id, "multiport consoles are not built");
}

pub fn krun_add_console_port_inout(ctx_id: u32, console_id: u32, name: cstr.CString, input_fd: c_int, output_fd: c_int) callconv(.c) i32 {
    _ = console_id;
    _ = name;
    _ = input_fd;
    _ = output_fd;
    return unsupported("krun_add_console_port_inout", ctx_id, "multiport consoles are not built");
}

pub fn krun_set_gpu_options(ctx_id: u32, virgl_flags: u32) callconv(.c) i32 {
    _ = virgl_flags;
    return unsupported("krun_set_gpu_options", ctx_id, "virtio-gpu is not built");
}

pub fn krun_set_gpu_options2(ctx_id: u32, virgl_flags: u32, shm_size: u64) callconv(.c) i32 {
    _ = virgl_flags;
    _ = shm_size;
    return unsupported("krun_set_gpu_options2", ctx_id, "virtio-gpu is not built");
}

pub fn krun_add_display(ctx_id: u32, width: u32, height: u32) callconv(.c) i32 {
    _ = width;
    _ = height;
    return unsupported("krun_add_display", ctx_id, "displays are not built");
}

pub fn krun_display_set_edid(ctx_id: u32, display_id: u32, edid_blob: ?[*]const u8, blob_size: usize) callconv(.c) i32 {
    _ = display_id;
    _ = edid_blob;
    _ = blob_size;
    return unsupported("krun_display_set_edid", ctx_id, "displays are not built");
}

pub fn krun_display_set_dpi(ctx_id: u32, display_id: u32, dpi: u32) callconv(.c) i32 {
    _ = display_id;
    _ = dpi;
    return unsupported("krun_display_set_dpi", ctx_id, "displays are not built");
}

pub fn krun_display_set_physical_size(ctx_id: u32, display_id: u32, width_mm: u16, height_mm: u16) callconv(.c) i32 {
    _ = display_id;
    _ = width_mm;
    _ = height_mm;
    return unsupported("krun_display_set_physical_size", ctx_id, "displays are not built");
}

pub fn krun_display_set_refresh_rate(ctx_id: u32, display_id: u32, refresh_rate: u32) callconv(.c) i32 {
    _ = display_id;
    _ = refresh_rate;
    return unsupported("krun_display_set_refresh_rate", ctx_id, "displays are not built");
}

pub fn krun_set_display_backend(ctx_id: u32, display_backend: ?*const anyopaque, backend_size: usize) callconv(.c) i32 {
    _ = display_backend;
    _ = backend_size;
    return unsupported("krun_set_display_backend", ctx_id, "displays are not built");
}

pub fn krun_add_input_device(ctx_id: u32, config_backend: ?*const anyopaque, config_backend_size: usize, events_backend: ?*const anyopaque, events_backend_size: usize) callconv(.c) i32 {
    _ = config_backend;
    _ = config_backend_size;
    _ = events_backend;
    _ = events_backend_size;
    return unsupported("krun_add_input_device", ctx_id, "virtio-input is not built");
}

pub fn krun_add_input_device_fd(ctx_id: u32, input_fd: c_int) callconv(.c) i32 {
    _ = input_fd;
    return unsupported("krun_add_input_device_fd", ctx_id, "virtio-input is not built");
}

pub fn krun_add_vhost_user_device(ctx_id: u32, device_type: u32, socket_path: cstr.CString, name: cstr.CString, num_queues: u16, queue_sizes: ?[*]const u16) callconv(.c) i32 {
    _ = device_type;
    _ = socket_path;
    _ = name;
    _ = num_queues;
    _ = queue_sizes;
    return unsupported("krun_add_vhost_user_device", ctx_id, "vhost-user devices are not built");
}

pub fn krun_set_snd_device(ctx_id: u32, enable: bool) callconv(.c) i32 {
    return honouredIfEmpty("krun_set_snd_device", ctx_id, !enable, "virtio-snd is not built");
}

pub fn krun_display_set_edid_name(ctx_id: u32, display_id: u32, name: cstr.CString) callconv(.c) i32 {
    _ = display_id;
    _ = name;
    return unsupported("krun_display_set_edid_name", ctx_id, "displays are not built");
}

pub fn krun_add_vfio_device(ctx_id: u32, fd: c_int, device: u8, function: u8) callconv(.c) i32 {
    _ = fd;
    _ = device;
    _ = function;
    return unsupported("krun_add_vfio_device", ctx_id, "VFIO device assignment (PCI) is not built");
}

pub fn krun_set_tee_firmware(ctx_id: u32, fw_type: u32, fw_path: cstr.CString) callconv(.c) i32 {
    _ = fw_type;
    _ = fw_path;
    return unsupported("krun_set_tee_firmware", ctx_id, "TEE (SEV/TDX) variants are not built");
}

pub fn krun_set_tee_config_file(ctx_id: u32, filepath: cstr.CString) callconv(.c) i32 {
    _ = filepath;
    return unsupported("krun_set_tee_config_file", ctx_id, "TEE (SEV/TDX) variants are not built");
}

test "stubs answer -ENOENT for unknown contexts and -ENOTSUP otherwise" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    const ctx = @import("context.zig");
    const id: u32 = @intCast(ctx.krun_create_ctx());
    try std.testing.expectEqual(@as(i32, -95), krun_set_gpu_options(id, 0));
    const empty = [_]?[*:0]const u8{null};
    const ports = [_]?[*:0]const u8{ "8080:80", null };
    try std.testing.expectEqual(@as(i32, 0), krun_set_snd_device(id, false));
    try std.testing.expectEqual(@as(i32, -95), krun_set_snd_device(id, true));
    try std.testing.expectEqual(@as(i32, 0), krun_set_smbios_oem_strings(id, &empty));
    try std.testing.expectEqual(@as(i32, -95), krun_set_smbios_oem_strings(id, &ports));
    try std.testing.expectEqual(@as(i32, -95), krun_add_vfio_device(id, 3, 1, 0));
    try std.testing.expectEqual(@as(i32, -95), krun_set_tee_firmware(id, 0, "/x"));
    try std.testing.expectEqual(@as(i32, -95), krun_display_set_edid_name(id, 0, "x"));
    try std.testing.expectEqual(@as(i32, 0), ctx.krun_free_ctx(id));
    try std.testing.expectEqual(@as(i32, -2), krun_set_snd_device(id, false));
}
