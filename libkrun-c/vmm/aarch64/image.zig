//! The arm64 `Image` the aarch64 backend boots (Documentation/arch/arm64/booting.rst): a raw
//! kernel with a 64-byte header, mapped at the start of RAM and entered at its first byte. This
//! checks a header before the VMM maps the file (libkrunfw's aarch64 bundle, krun_set_kernel
//! RAW): the magic, a text_offset of 0 (every kernel since 5.10: it runs where it is loaded,
//! 2 MiB aligned), little-endian, and an image_size (text + data + bss) within what RAM gives.
//! Kept apart from the ELF parsing (libkrun-c/elf.zig, used by vmm/kernel_loader.zig and kernelfw/bundler.zig).
const std = @import("std");

pub const header_size = 64;
pub const magic: u32 = 0x644d_5241; // "ARM\x64" at 0x38

pub const Header = struct {
    text_offset: u64,
    /// Bytes the kernel occupies from its load address, bss included (0 in kernels before 3.17:
    /// then unknown, treated as the file size).
    image_size: u64,
    flags: u64,
};

pub const Error = error{KernelInvalid};

/// Reads and checks an Image header from the start of `bytes`.
pub fn parse(bytes: []const u8) Error!Header {
    if (bytes.len < header_size) return error.KernelInvalid;
    if (std.mem.readInt(u32, bytes[0x38..0x3c], .little) != magic) return error.KernelInvalid;
    const h: Header = .{
        .text_offset = std.mem.readInt(u64, bytes[0x08..0x10], .little),
        .image_size = std.mem.readInt(u64, bytes[0x10..0x18], .little),
        .flags = std.mem.readInt(u64, bytes[0x18..0x20], .little),
    };
    if (h.text_offset != 0) return error.KernelInvalid;
    // flags bit 0: the kernel's endianness (1 = big-endian); we boot little-endian only.
    if (h.flags & 1 != 0) return error.KernelInvalid;
    return h;
}

/// Whether a kernel of `file_len` bytes with header `h` fits in `ram_bytes` of RAM from its load
/// address, leaving `reserved` bytes at the end (the device tree).
pub fn fits(h: Header, file_len: u64, ram_bytes: u64, reserved: u64) bool {
    const need = @max(h.image_size, file_len);
    return ram_bytes >= reserved and need <= ram_bytes - reserved;
}

test "image: header checks" {
    var img: [header_size]u8 = @splat(0);
    try std.testing.expectError(error.KernelInvalid, parse(&img));
    std.mem.writeInt(u32, img[0x38..0x3c], magic, .little);
    std.mem.writeInt(u64, img[0x10..0x18], 30 << 20, .little);
    std.mem.writeInt(u64, img[0x18..0x20], 0xa, .little);
    const h = try parse(&img);
    try std.testing.expectEqual(@as(u64, 30 << 20), h.image_size);
    try std.testing.expect(fits(h, 20 << 20, 64 << 20, 2 << 20));
    try std.testing.expect(!fits(h, 20 << 20, 31 << 20, 2 << 20));
    try std.testing.expect(!fits(h, 20 << 20, 1 << 20, 2 << 20));
    try std.testing.expectError(error.KernelInvalid, parse(img[0..63]));
    std.mem.writeInt(u64, img[0x08..0x10], 0x80000, .little); // pre-5.10 text_offset
    try std.testing.expectError(error.KernelInvalid, parse(&img));
    std.mem.writeInt(u64, img[0x08..0x10], 0, .little);
    img[0x18] |= 1; // big-endian
    try std.testing.expectError(error.KernelInvalid, parse(&img));
}
