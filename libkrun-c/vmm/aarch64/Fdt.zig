//! A flattened device tree (DTB, devicetree spec v0.4 chapter 5: version 17, last compatible 16)
//! written in one pass: nodes and properties go into a fixed-size structure block and a
//! deduplicated strings block inside this struct (no allocation), and `finish` lays out header,
//! empty memory-reservation map, structure and strings into the caller's buffer. Every limit is
//! checked and reported as an error: the tree describes guest-visible configuration, which
//! comes from the C API caller, so nothing here asserts on it.
const std = @import("std");

const Fdt = @This();

pub const magic: u32 = 0xd00d_feed;
pub const version: u32 = 17;
pub const last_compatible_version: u32 = 16;
pub const header_size = 40;
const token_begin_node: u32 = 1;
const token_end_node: u32 = 2;
const token_prop: u32 = 3;
const token_end: u32 = 9;

/// Structure-block bytes: a VM with 16 vCPUs and 32 devices needs about 6 KiB.
pub const max_struct = 32 * 1024;
pub const max_strings = 4 * 1024;
/// Nesting limit: our trees are 3 levels deep.
pub const max_depth = 8;
/// Longest node name (with unit address) and property name the spec allows (31 characters for
/// names; unit addresses add up to 16 hex digits).
pub const max_name = 64;

pub const Error = error{ FdtTooLarge, FdtBadName, FdtUnbalanced };

struct_buf: [max_struct]u8 = undefined,
struct_len: usize = 0,
strings_buf: [max_strings]u8 = undefined,
strings_len: usize = 0,
depth: usize = 0,
ended: bool = false,

pub fn beginNode(f: *Fdt, name: []const u8) Error!void {
    // The root's name is empty; every other node needs one.
    if (name.len > max_name or std.mem.indexOfScalar(u8, name, 0) != null) return error.FdtBadName;
    if ((name.len == 0) != (f.depth == 0)) return error.FdtBadName;
    if (f.depth == max_depth or f.ended) return error.FdtUnbalanced;
    try f.appendU32(token_begin_node);
    try f.appendPadded(name, true);
    f.depth += 1;
}

pub fn endNode(f: *Fdt) Error!void {
    if (f.depth == 0) return error.FdtUnbalanced;
    try f.appendU32(token_end_node);
    f.depth -= 1;
    if (f.depth == 0) f.ended = true;
}

/// A property with raw bytes as its value.
pub fn prop(f: *Fdt, name: []const u8, value: []const u8) Error!void {
    if (f.depth == 0) return error.FdtUnbalanced;
    if (value.len > max_struct) return error.FdtTooLarge;
    const name_offset = try f.stringOffset(name);
    try f.appendU32(token_prop);
    try f.appendU32(@intCast(value.len));
    try f.appendU32(name_offset);
    try f.appendPadded(value, false);
}

pub fn propEmpty(f: *Fdt, name: []const u8) Error!void {
    try f.prop(name, &.{});
}

pub fn propU32(f: *Fdt, name: []const u8, value: u32) Error!void {
    try f.propCells(name, &.{value});
}

pub fn propU64(f: *Fdt, name: []const u8, value: u64) Error!void {
    var b: [8]u8 = undefined;
    std.mem.writeInt(u64, &b, value, .big);
    try f.prop(name, &b);
}

/// A list of big-endian 32-bit cells (`<a b c>` in dts).
pub fn propCells(f: *Fdt, name: []const u8, cells: []const u32) Error!void {
    var b: [64 * 4]u8 = undefined;
    if (cells.len > 64) return error.FdtTooLarge;
    for (cells, 0..) |c, i| std.mem.writeInt(u32, b[i * 4 ..][0..4], c, .big);
    try f.prop(name, b[0 .. cells.len * 4]);
}

/// 64-bit values as pairs of cells (`reg` with #address-cells = #size-cells = 2).
pub fn propU64s(f: *Fdt, name: []const u8, values: []const u64) Error!void {
    var b: [32 * 8]u8 = undefined;
    if (values.len > 32) return error.FdtTooLarge;
    for (values, 0..) |v, i| std.mem.writeInt(u64, b[i * 8 ..][0..8], v, .big);
    try f.prop(name, b[0 .. values.len * 8]);
}

pub fn propString(f: *Fdt, name: []const u8, value: []const u8) Error!void {
    try f.propStrings(name, &.{value});
}

/// A string list: each string NUL-terminated, back to back.
pub fn propStrings(f: *Fdt, name: []const u8, values: []const []const u8) Error!void {
    var total: usize = 0;
    for (values) |v| {
        if (std.mem.indexOfScalar(u8, v, 0) != null) return error.FdtBadName;
        total += v.len + 1;
    }
    if (f.depth == 0) return error.FdtUnbalanced;
    if (total > max_struct) return error.FdtTooLarge;
    const name_offset = try f.stringOffset(name);
    try f.appendU32(token_prop);
    try f.appendU32(@intCast(total));
    try f.appendU32(name_offset);
    for (values) |v| {
        try f.appendBytes(v);
        try f.appendBytes(&.{0});
    }
    try f.pad4();
}

/// The blob's size once finished.
pub fn totalSize(f: *const Fdt) usize {
    return header_size + 16 + f.struct_len + 4 + f.strings_len;
}

/// Lays the blob out in `out` (header, an empty reservation map, structure, strings) and returns
/// the used prefix. The tree must be complete (the root closed).
pub fn finish(f: *Fdt, out: []u8) Error![]u8 {
    if (!f.ended or f.depth != 0) return error.FdtUnbalanced;
    const total = f.totalSize();
    if (out.len < total or total > std.math.maxInt(u32)) return error.FdtTooLarge;
    const rsv_off: usize = header_size; // 8-byte aligned, as the spec wants
    const struct_off = rsv_off + 16;
    const struct_size = f.struct_len + 4; // + FDT_END
    const strings_off = struct_off + struct_size;
    const fields = [_]u32{
        magic,                 @intCast(total),   @intCast(struct_off),
        @intCast(strings_off), @intCast(rsv_off), version,
        last_compatible_version, 0, // boot_cpuid_phys
        @intCast(f.strings_len), @intCast(struct_size),
    };
    for (fields, 0..) |v, i| std.mem.writeInt(u32, out[i * 4 ..][0..4], v, .big);
    @memset(out[rsv_off..struct_off], 0);
    @memcpy(out[struct_off..][0..f.struct_len], f.struct_buf[0..f.struct_len]);
    std.mem.writeInt(u32, out[struct_off + f.struct_len ..][0..4], token_end, .big);
    @memcpy(out[strings_off..][0..f.strings_len], f.strings_buf[0..f.strings_len]);
    return out[0..total];
}

fn stringOffset(f: *Fdt, name: []const u8) Error!u32 {
    if (name.len == 0 or name.len > max_name or std.mem.indexOfScalar(u8, name, 0) != null) return error.FdtBadName;
    // Reuse an existing entry (only whole names: a suffix match would also be legal, but dtc
    // does not do it either and it buys nothing at this size).
    var at: usize = 0;
    while (at < f.strings_len) {
        const end = std.mem.indexOfScalarPos(u8, f.strings_buf[0..f.strings_len], at, 0).?;
        if (std.mem.eql(u8, f.strings_buf[at..end], name)) return @intCast(at);
        at = end + 1;
    }
    if (f.strings_len + name.len + 1 > max_strings) return error.FdtTooLarge;
    const offset = f.strings_len;
    @memcpy(f.strings_buf[offset..][0..name.len], name);
    f.strings_buf[offset + name.len] = 0;
    f.strings_len += name.len + 1;
    return @intCast(offset);
}

fn appendU32(f: *Fdt, v: u32) Error!void {
    var b: [4]u8 = undefined;
    std.mem.writeInt(u32, &b, v, .big);
    try f.appendBytes(&b);
}

fn appendBytes(f: *Fdt, bytes: []const u8) Error!void {
    // Room for FDT_END is kept back, so finish never fails on it.
    if (f.struct_len + bytes.len + 4 > max_struct) return error.FdtTooLarge;
    @memcpy(f.struct_buf[f.struct_len..][0..bytes.len], bytes);
    f.struct_len += bytes.len;
}

fn appendPadded(f: *Fdt, bytes: []const u8, nul: bool) Error!void {
    try f.appendBytes(bytes);
    if (nul) try f.appendBytes(&.{0});
    try f.pad4();
}

fn pad4(f: *Fdt) Error!void {
    const pad = (4 - f.struct_len % 4) % 4;
    try f.appendBytes(("\x00\x00\x00")[0..pad]);
}

// ---- tests (the decoder is Debian's dtc: aarch64/fdt_tests.zig) ------------------------------

test "fdt: header fields and layout of a minimal tree" {
    var f: Fdt = .{};
    try f.beginNode("");
    try f.propU32("#address-cells", 2);
    try f.endNode();
    var out: [256]u8 = undefined;
    const blob = try f.finish(&out);
    const be = struct {
        fn at(b: []const u8, i: usize) u32 {
            return std.mem.readInt(u32, b[i * 4 ..][0..4], .big);
        }
    };
    try std.testing.expectEqual(magic, be.at(blob, 0));
    try std.testing.expectEqual(@as(u32, @intCast(blob.len)), be.at(blob, 1));
    try std.testing.expectEqual(@as(u32, 56), be.at(blob, 2)); // struct after header + rsvmap
    try std.testing.expectEqual(@as(u32, 17), be.at(blob, 5));
    try std.testing.expectEqual(@as(u32, 16), be.at(blob, 6));
    // begin(root) "" pad, prop len nameoff value, end node, end
    try std.testing.expectEqual(@as(u32, 4 + 4 + 12 + 4 + 4 + 4), be.at(blob, 9));
    try std.testing.expectEqual(@as(u32, "#address-cells".len + 1), be.at(blob, 8));
}

test "fdt: misuse and overflow are errors, never a crash" {
    var f: Fdt = .{};
    try std.testing.expectError(error.FdtUnbalanced, f.propU32("x", 1));
    try std.testing.expectError(error.FdtBadName, f.beginNode("notroot"));
    try f.beginNode("");
    try std.testing.expectError(error.FdtBadName, f.beginNode(""));
    try std.testing.expectError(error.FdtBadName, f.beginNode("a\x00b"));
    try std.testing.expectError(error.FdtBadName, f.propString("s", "a\x00"));
    var out: [16]u8 = undefined;
    try std.testing.expectError(error.FdtUnbalanced, f.finish(&out));
    var big: [max_struct]u8 = @splat('x');
    try std.testing.expectError(error.FdtTooLarge, f.prop("big", &big));
    try f.endNode();
    try std.testing.expectError(error.FdtUnbalanced, f.endNode());
    try std.testing.expectError(error.FdtUnbalanced, f.beginNode(""));
    try std.testing.expectError(error.FdtTooLarge, f.finish(&out));
}
