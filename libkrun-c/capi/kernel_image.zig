//! krun_set_kernel's check of an external kernel at call time, so a bad file fails the setter
//! with a reason instead of failing later inside krun_start_enter. ELF: an x86_64 ELF64
//! executable whose program headers and PT_LOAD segments lie inside the file. RAW: a
//! non-empty file. The VMM's loader still validates everything it maps.
const std = @import("std");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const Error = errors.Error;
const reject = errors.reject;

const ehdr_size = 64;
const phdr_size = 56;
/// vmlinux has a handful of program headers; more means a file we should not trust.
pub const phdrs_max = 64;
const em_x86_64 = 62;
const pt_load = 1;

pub fn check(func: []const u8, path: [:0]const u8, format: Config.KernelFormat) Error!void {
    switch (format) {
        .elf, .raw => {},
        .pe_gz, .image_bz2, .image_gz, .image_zstd => return reject(func, error.NotSupported, "kernel format {t} is not supported (use ELF or RAW)", .{format}),
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
    var ehdr: [ehdr_size]u8 = undefined;
    if (!file.readExact(&ehdr, 0)) {
        return reject(func, error.InvalidArgument, "kernel \"{s}\" is shorter than an ELF header ({d} bytes)", .{ path, file.size });
    }
    if (!std.mem.eql(u8, ehdr[0..4], "\x7fELF")) return bad(func, path, "no ELF magic");
    if (ehdr[4] != 2) return bad(func, path, "not ELF64");
    if (ehdr[5] != 1) return bad(func, path, "not little-endian");
    if (int(u16, &ehdr, 18) != em_x86_64) return bad(func, path, "not an x86_64 ELF");
    const phoff = int(u64, &ehdr, 32);
    const phentsize = int(u16, &ehdr, 54);
    const phnum = int(u16, &ehdr, 56);
    if (phentsize != phdr_size) return bad(func, path, "unexpected program header size");
    if (phnum == 0 or phnum > phdrs_max) return bad(func, path, "program header count out of range");
    var loads: u32 = 0;
    for (0..phnum) |i| {
        var phdr: [phdr_size]u8 = undefined;
        const at = std.math.add(u64, phoff, i * phdr_size) catch return bad(func, path, "program headers out of range");
        if (!file.readExact(&phdr, at)) return bad(func, path, "truncated: program headers lie past the end");
        if (int(u32, &phdr, 0) != pt_load) continue;
        const offset = int(u64, &phdr, 8);
        const filesz = int(u64, &phdr, 32);
        const end = std.math.add(u64, offset, filesz) catch return bad(func, path, "segment out of range");
        if (end > file.size) return bad(func, path, "truncated: a PT_LOAD segment lies past the end");
        loads += 1;
    }
    if (loads == 0) return bad(func, path, "no PT_LOAD segment");
}

fn int(comptime T: type, bytes: []const u8, offset: usize) T {
    assert(offset + @sizeOf(T) <= bytes.len); // tidy: callers check the header size first
    return std.mem.readInt(T, bytes[offset..][0..@sizeOf(T)], .little);
}

fn bad(func: []const u8, path: []const u8, comptime why: []const u8) Error {
    return reject(func, error.InvalidArgument, "kernel \"{s}\" is not a usable ELF: " ++ why, .{path});
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
}
