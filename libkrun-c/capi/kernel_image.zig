//! krun_set_kernel's check of an external kernel at call time, so a bad file fails the setter
//! with a reason instead of failing later inside krun_start_enter. ELF (x86_64 only, as libkrun;
//! aarch64 boots an Image as RAW): an x86_64 ELF64
//! executable whose program headers and PT_LOAD segments lie inside the file, read by the
//! `kernel_elf` module (libkrun-c/elf.zig) that the VMM's loader uses too. RAW: a non-empty
//! file. IMAGE_GZ (aarch64 Linux): gzip whose first 64 inflated bytes are an arm64 Image header,
//! within the size limit; the whole stream (CRC, truncation, the inflated size) is checked when
//! the VMM inflates it at start. PE_GZ, IMAGE_BZ2, IMAGE_ZSTD: -ENOTSUP. The VMM's loader still
//! validates everything it maps.
const std = @import("std");
const builtin = @import("builtin");
const sys = @import("../sys/linux.zig");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const elf = @import("kernel_elf");
const gunzip = @import("../vmm/gunzip.zig");
const image = @import("../vmm/aarch64/image.zig");
const Error = errors.Error;
const reject = errors.reject;

pub fn check(func: []const u8, path: [:0]const u8, format: Config.KernelFormat) Error!void {
    return checkFor(builtin.cpu.arch, builtin.os.tag, func, path, format);
}

/// `arch` and `os` are parameters so the aarch64 answers are unit tested on x86_64 too.
fn checkFor(arch: std.Target.Cpu.Arch, os: std.Target.Os.Tag, func: []const u8, path: [:0]const u8, format: Config.KernelFormat) Error!void {
    switch (format) {
        .raw => {},
        // As libkrun: its ELF loader is x86_64's; an arm64 kernel boots as an Image (RAW).
        .elf => if (arch == .aarch64) return reject(func, error.NotSupported, "kernel format elf is not supported on aarch64 (as in libkrun): pass the arm64 Image as KRUN_KERNEL_FORMAT_RAW", .{}),
        .image_gz => if (arch != .aarch64 or os == .macos) return reject(func, error.NotSupported, "kernel format image_gz is not supported {s}", .{if (arch != .aarch64) "on x86_64 (use ELF or RAW)" else "on macOS yet (use RAW: an uncompressed arm64 Image)"}),
        .pe_gz, .image_bz2, .image_zstd => return reject(func, error.NotSupported, "kernel format {t} is not supported (use {s})", .{ format, if (arch == .aarch64) "RAW (an arm64 Image) or IMAGE_GZ" else "ELF or RAW" }),
    }
    var file = try host.File.open(func, "kernel", path);
    defer file.close();
    switch (format) {
        .raw => if (file.size == 0) return reject(func, error.InvalidArgument, "kernel \"{s}\" is empty", .{path}),
        .elf => try checkElf(func, path, file),
        .image_gz => try checkImageGz(func, path, file),
        .pe_gz, .image_bz2, .image_zstd => unreachable, // tidy: rejected by the switch above
    }
}

/// The head of an Image.gz: gzip, and its first inflated bytes an arm64 Image header. 64 KiB
/// of input is far more than the header needs (it is in the first deflate block).
fn checkImageGz(func: []const u8, path: []const u8, file: host.File) Error!void {
    if (file.size > gunzip.kernel_bytes_max) return reject(func, error.InvalidArgument, "kernel \"{s}\" is {d} bytes; an IMAGE_GZ kernel may have {d} MiB", .{ path, file.size, gunzip.kernel_bytes_max >> 20 });
    var input: [64 << 10]u8 = undefined;
    const want: usize = @intCast(@min(file.size, input.len));
    if (!file.readExact(input[0..want], 0)) return reject(func, error.InvalidArgument, "kernel \"{s}\" cannot be read", .{path});
    var head: [image.header_size]u8 = undefined;
    const n = gunzip.head(input[0..want], &head) catch |err| switch (err) {
        // A cut at our 64 KiB is not the file's: only a whole short file is truncated.
        error.Truncated => if (want < file.size) head.len else return reject(func, error.InvalidArgument, "kernel \"{s}\": {s}", .{ path, gunzip.describe(err) }),
        else => return reject(func, error.InvalidArgument, "kernel \"{s}\": {s}", .{ path, gunzip.describe(err) }),
    };
    if (n < head.len) return reject(func, error.InvalidArgument, "kernel \"{s}\" inflates to {d} bytes, less than an arm64 Image header", .{ path, n });
    _ = image.parse(&head) catch return reject(func, error.InvalidArgument, "kernel \"{s}\" is gzip but not of an arm64 Image (no \"ARM\\x64\" header, text_offset != 0 or big-endian)", .{path});
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
    try std.testing.expectError(error.NotSupported, checkFor(.x86_64, .linux, "t", "/proc/self/exe", .image_gz));
    try std.testing.expectError(error.NotSupported, checkFor(.aarch64, .linux, "t", "/proc/self/exe", .elf));
    try std.testing.expectError(error.NotSupported, checkFor(.aarch64, .linux, "t", "/proc/self/exe", .image_zstd));
    try checkFor(.aarch64, .linux, "t", "/proc/self/exe", .raw);
}

test "an IMAGE_GZ kernel check (aarch64) takes gzip of an arm64 Image and names what is wrong otherwise" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    const tmp = @import("../test_tmp.zig");
    const gz = @embedFile("../vmm/testdata/fixture.bin.gz"); // starts with an arm64 Image header
    const cases = [_]struct { name: []const u8, bytes: []const u8, ok: bool, why: []const u8 }{
        .{ .name = "kernel-image-gz-ok", .bytes = gz, .ok = true, .why = "" },
        .{ .name = "kernel-image-gz-cut", .bytes = gz[0..40], .ok = false, .why = "truncated" },
        .{ .name = "kernel-image-gz-plain", .bytes = "ARM\x64 but not gzip at all.....", .ok = false, .why = "not gzip" },
        .{ .name = "kernel-image-gz-zeros", .bytes = @embedFile("../vmm/testdata/zeros-8MiB.gz"), .ok = false, .why = "not of an arm64 Image" },
    };
    inline for (cases) |c| {
        const path = tmp.path(c.name);
        const fd = try sys.openMode(path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o600);
        defer sys.close(fd);
        try std.testing.expectEqual(c.bytes.len, try sys.write(fd, c.bytes));
        if (c.ok) {
            try checkFor(.aarch64, .linux, "t", path, .image_gz);
            try std.testing.expectError(error.NotSupported, checkFor(.aarch64, .macos, "t", path, .image_gz));
        } else {
            try std.testing.expectError(error.InvalidArgument, checkFor(.aarch64, .linux, "t", path, .image_gz));
            try std.testing.expect(std.mem.indexOf(u8, errors.lastError(), c.why) != null);
        }
    }
}
