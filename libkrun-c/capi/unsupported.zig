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

/// The C function `name(uint32_t ctx_id, Rest...)` that answers `unsupported(name, ctx_id, why)`
/// whatever its other arguments: one line per libkrun function below, with the parameter types
/// of libkrun.h (tests/zig/capi_prototypes.zig checks them against the header).
fn NotBuilt(comptime name: []const u8, comptime Rest: []const type, comptime why: []const u8) type {
    const R = Rest;
    return switch (R.len) {
        0 => struct {
            fn call(ctx_id: u32) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        1 => struct {
            fn call(ctx_id: u32, _: R[0]) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        2 => struct {
            fn call(ctx_id: u32, _: R[0], _: R[1]) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        3 => struct {
            fn call(ctx_id: u32, _: R[0], _: R[1], _: R[2]) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        4 => struct {
            fn call(ctx_id: u32, _: R[0], _: R[1], _: R[2], _: R[3]) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        5 => struct {
            fn call(ctx_id: u32, _: R[0], _: R[1], _: R[2], _: R[3], _: R[4]) callconv(.c) i32 {
                return unsupported(name, ctx_id, why);
            }
        },
        else => @compileError(name ++ ": add a case for this many parameters"),
    };
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

pub const krun_set_firmware = NotBuilt("krun_set_firmware", &.{cstr.CString}, "EFI firmware boot is not built").call;

pub const krun_add_serial_console_default = NotBuilt("krun_add_serial_console_default", &.{ c_int, c_int }, "serial consoles are not built (the guest kernel has no 8250 driver)").call;

pub const krun_add_virtio_console_multiport = NotBuilt("krun_add_virtio_console_multiport", &.{}, "multiport consoles are not built (use krun_add_virtio_console_default)").call;

pub const krun_add_console_port_tty = NotBuilt("krun_add_console_port_tty", &.{ u32, cstr.CString, c_int }, "multiport consoles are not built").call;

pub const krun_add_console_port_inout = NotBuilt("krun_add_console_port_inout", &.{ u32, cstr.CString, c_int, c_int }, "multiport consoles are not built").call;

pub const krun_set_gpu_options = NotBuilt("krun_set_gpu_options", &.{u32}, "virtio-gpu is not built").call;

pub const krun_set_gpu_options2 = NotBuilt("krun_set_gpu_options2", &.{ u32, u64 }, "virtio-gpu is not built").call;

pub const krun_add_display = NotBuilt("krun_add_display", &.{ u32, u32 }, "displays are not built").call;

pub const krun_display_set_edid = NotBuilt("krun_display_set_edid", &.{ u32, ?[*]const u8, usize }, "displays are not built").call;

pub const krun_display_set_dpi = NotBuilt("krun_display_set_dpi", &.{ u32, u32 }, "displays are not built").call;

pub const krun_display_set_physical_size = NotBuilt("krun_display_set_physical_size", &.{ u32, u16, u16 }, "displays are not built").call;

pub const krun_display_set_refresh_rate = NotBuilt("krun_display_set_refresh_rate", &.{ u32, u32 }, "displays are not built").call;

pub const krun_set_display_backend = NotBuilt("krun_set_display_backend", &.{ ?*const anyopaque, usize }, "displays are not built").call;

pub const krun_add_input_device = NotBuilt("krun_add_input_device", &.{ ?*const anyopaque, usize, ?*const anyopaque, usize }, "virtio-input is not built").call;

pub const krun_add_input_device_fd = NotBuilt("krun_add_input_device_fd", &.{c_int}, "virtio-input is not built").call;

pub const krun_add_vhost_user_device = NotBuilt("krun_add_vhost_user_device", &.{ u32, cstr.CString, cstr.CString, u16, ?[*]const u16 }, "vhost-user devices are not built").call;

pub fn krun_set_snd_device(ctx_id: u32, enable: bool) callconv(.c) i32 {
    return honouredIfEmpty("krun_set_snd_device", ctx_id, !enable, "virtio-snd is not built");
}

pub const krun_display_set_edid_name = NotBuilt("krun_display_set_edid_name", &.{ u32, cstr.CString }, "displays are not built").call;

pub const krun_add_vfio_device = NotBuilt("krun_add_vfio_device", &.{ c_int, u8, u8 }, "VFIO device assignment (PCI) is not built").call;

pub const krun_set_tee_firmware = NotBuilt("krun_set_tee_firmware", &.{ u32, cstr.CString }, "TEE (SEV/TDX) variants are not built").call;

pub const krun_set_tee_config_file = NotBuilt("krun_set_tee_config_file", &.{cstr.CString}, "TEE (SEV/TDX) variants are not built").call;

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
