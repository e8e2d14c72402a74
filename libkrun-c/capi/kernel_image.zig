//! krun_set_kernel's check of an external kernel at call time, so a bad file fails the setter
//! with a reason instead of failing later inside krun_start_enter. ELF (x86_64 only, as libkrun;
//! aarch64 boots an Image as RAW): an x86_64 ELF64
//! executable whose program headers and PT_LOAD segments lie inside the file, read by the
//! `kernel_elf` module (libkrun-c/elf.zig) that the VMM's loader uses too. RAW: a non-empty
//! file. The VMM's loader still validates everything it maps.
const std = @import("std");
const builtin = @import("builtin");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const elf = @import("kernel_elf");
const Error = errors.Error;
const reject = errors.reject;

pub fn check(func: []const u8, path: [:0]const u8, format: Config.KernelFormat) Error!void {
    return checkFor(builtin.cpu.arch, func, path, format);
}

/// `arch` is a parameter so the aarch64 answers are unit tested on x86_64 too.
fn checkFor(arch: std.Target.Cpu.Arch, func: []const u8, path: [:0]const u8, format: Config.KernelFormat) Error!void {
    switch (format) {
        .raw => {},
        // As libkrun: its ELF loader is x86_64's; an arm64 kernel boots as an Image (RAW).
        .elf => if (arch == .aarch64) return reject(func, error.NotSupported, "kernel format elf is not supported on aarch64 (as in libkrun): pass the arm64 Image as KRUN_KERNEL_FORMAT_RAW", .{}),
        .pe_gz, .image_bz2, .image_gz, .image_zstd => return reject(func, error.NotSupported, "kernel format {t} is not supported (use {s})", .{ format, if (arch == .aarch64) "RAW: an uncompressed arm64 Image" else "ELF or RAW" }),
    }
    var file = try host.File.open(func, "kernel", path);
    defer file.close();
    switch (format) {
        .raw => if (file.size == 0) return reject(func, error.InvalidArgument, "kernel \"{s}\" is empty", .{path}),
        .elf => try checkElf(func, path, file),
        .pe_gz, .image_bz2, .image_gz, .image_zstd => unreachable, // tidy: rejected by the switch above
    }
}

fn checkElf(func: []const u8, path: []const u8, file: host.File) Error!void {
    var head: [@sizeOf(elf.Ehdr)]u8 = undefined;
    if (!file.readExact(&head, 0)) {
        return reject(func, error.InvalidArgument, "kernel \"{s}\" is shorter than an ELF header ({d} bytes)", .{ path, file.size });
    }
    const eh = elf.header(&head, file.size) catch |err| return bad(func, path, err);
    var table: [elf.table_size_max]u8 = undefined;
    const size = elf.tableSize(eh);
    if (!file.readExact(table[0..size], eh.phoff)) return bad(func, path, error.ProgramHeadersOutOfFile);
    var loads: elf.Loads = .{ .table = table[0..size], .file_size = file.size };
    var count: u32 = 0;
    while (loads.next() catch |err| return bad(func, path, err)) |_| count += 1;
    if (count == 0) return reject(func, error.InvalidArgument, "kernel \"{s}\" is not a usable ELF: no PT_LOAD segment", .{path});
}

fn bad(func: []const u8, path: []const u8, err: elf.Error) Error {
    return reject(func, error.InvalidArgument, "kernel \"{s}\" is not a usable ELF: {t}", .{ path, err });
}

test "an ELF kernel check accepts x86_64 executables and rejects truncated ones" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    // The test binary itself is an x86_64 ELF with PT_LOAD segments.
    try check("t", "/proc/self/exe", .elf);
    try check("t", "/proc/self/exe", .raw);
    try std.testing.expectError(error.InvalidArgument, check("t", "/proc/self/status", .elf));
    try std.testing.expectError(error.NotFound, check("t", "/nonexistent/vmlinux", .elf));
    try std.testing.expectError(error.NotSupported, check("t", "/proc/self/exe", .image_gz));
    try std.testing.expectError(error.NotSupported, checkFor(.aarch64, "t", "/proc/self/exe", .elf));
    try checkFor(.aarch64, "t", "/proc/self/exe", .raw);
}
