//! The kernel bundler: turns a vmlinux (ELF64, x86_64) into libkrunfw's x86_64 kernel bundle
//! (libkrun.md §2.4): the PT_LOAD segments laid out at their physical offsets from the first
//! segment, file bytes only (p_filesz: the kernel clears its own .bss), zero-filled gaps, the
//! total rounded up to 4 KiB. The VMM maps the bundle at `load_addr` (the first segment's
//! physical address, 0x1000000 for our kernel) and enters at `entry` (e_entry, physical).
//!
//! The input is a file from disk, so every header value is checked before it is used: a
//! truncated or hostile ELF yields a named error, never a crash or an out-of-bounds access.
//! The ELF headers and segments are read by the `kernel_elf` module (libkrun-c/elf.zig), the
//! parser the VMM's loader uses too; the layout rules are this file's.
//!
//! On aarch64 the kernel is a raw arm64 `Image` (kernelfw/build-kernel.sh --arch aarch64),
//! recognized by its header's magic ("ARM\x64" at 0x38): the bundle is the file itself, rounded
//! up to 4 KiB, with load = entry = 0x8000_0000 (libkrunfw's aarch64 bundle; libkrun.md §2.4).
//! The header's text_offset must be 0 (every kernel since 5.10): the Image runs where it is loaded.
//!
//! Run as a build-time tool: `bundler <vmlinux|Image> <bundle.bin> <meta.zig>` writes the bundle
//! and a Zig file with its load address, entry and size (imported by libkrunfw.zig).
const std = @import("std");
const assert = std.debug.assert;
const elf_file = @import("kernel_elf");

pub const page_size = 4096;
/// Explicit limits: a vmlinux has a handful of program headers and is tens of MiB.
pub const phnum_max = elf_file.phnum_max;
pub const bundle_size_max = 512 << 20;

pub const Error = elf_file.Error || error{
    /// p_paddr + p_memsz overflows.
    SegmentAddressOverflow,
    /// PT_LOAD segments must come in ascending physical order without overlapping.
    SegmentsOverlap,
    NoLoadSegment,
    /// The first segment's physical address is not 4 KiB aligned (libkrun requires it).
    LoadAddressUnaligned,
    BundleTooLarge,
    /// e_entry is not inside the file-backed part of a PT_LOAD segment.
    EntryNotLoaded,
    /// An arm64 Image whose header asks for a text_offset other than 0.
    ImageTextOffset,
};

/// arm64 Image header (Documentation/arch/arm64/booting.rst): magic "ARM\x64" at 0x38.
pub const arm64_image_magic: u32 = 0x644d_5241;
pub const arm64_header_size = 64;
/// Where libkrun loads and enters the aarch64 Image (start of guest RAM).
pub const arm64_load_addr: u64 = 0x8000_0000;

pub fn isArm64Image(data: []const u8) bool {
    return data.len >= arm64_header_size and
        std.mem.readInt(u32, data[0x38..0x3c], .little) == arm64_image_magic;
}

/// The aarch64 plan: the whole Image at 0x8000_0000, rounded up to a page.
pub fn planImage(image: []const u8) Error!Plan {
    if (!isArm64Image(image)) return error.Truncated;
    if (std.mem.readInt(u64, image[0x08..0x10], .little) != 0) return error.ImageTextOffset;
    if (image.len > bundle_size_max) return error.BundleTooLarge;
    var p: Plan = .{ .load_addr = arm64_load_addr, .entry = arm64_load_addr, .size = std.mem.alignForward(u64, image.len, page_size), .pieces = undefined, .count = 1 };
    p.pieces[0] = .{ .file_offset = 0, .bundle_offset = 0, .len = image.len };
    return p;
}

const Ehdr = elf_file.Ehdr;
const Phdr = elf_file.Phdr;
const pt_load = elf_file.pt_load;
const et_exec = elf_file.et_exec;
const em_x86_64 = elf_file.em_x86_64;
const ev_current = elf_file.ev_current;
comptime {
    assert(bundle_size_max % page_size == 0);
}

/// A PT_LOAD segment's file bytes and where they go in the bundle.
pub const Piece = struct {
    file_offset: u64,
    bundle_offset: u64,
    len: u64,
};

/// Where everything goes; computed from the ELF alone, without allocating.
pub const Plan = struct {
    load_addr: u64,
    entry: u64,
    /// Bundle size: a multiple of `page_size`.
    size: u64,
    /// The segments with file bytes, in ascending order.
    pieces: [phnum_max]Piece,
    count: usize,
};

/// Validates `elf` and computes the bundle layout.
pub fn plan(elf: []const u8) Error!Plan {
    var file = try elf_file.File.parse(elf);
    const eh = file.header;
    if (eh.type != et_exec) return error.NotExecutable; // a vmlinux, never a PIE

    var result: Plan = .{ .load_addr = 0, .entry = eh.entry, .size = 0, .pieces = undefined, .count = 0 };
    var next_free: u64 = 0; // first physical address past the previous segment (memsz)
    var end: u64 = 0; // first bundle offset past the previous segment's file bytes
    var entry_found = false;
    var loads: usize = 0;
    while (try file.loads.next()) |ph| {
        const seg_end = std.math.add(u64, ph.paddr, ph.memsz) catch return error.SegmentAddressOverflow;
        if (loads == 0) {
            if (ph.paddr % page_size != 0) return error.LoadAddressUnaligned;
            result.load_addr = ph.paddr;
        } else if (ph.paddr < next_free) {
            return error.SegmentsOverlap;
        }
        next_free = seg_end;
        const bundle_offset = ph.paddr - result.load_addr;
        if (bundle_offset > bundle_size_max or ph.filesz > bundle_size_max - bundle_offset)
            return error.BundleTooLarge;
        loads += 1;
        if (ph.filesz == 0) continue; // all .bss: nothing in the bundle
        end = bundle_offset + ph.filesz;
        if (eh.entry >= ph.paddr and eh.entry - ph.paddr < ph.filesz) entry_found = true;
        result.pieces[result.count] = .{ .file_offset = ph.offset, .bundle_offset = bundle_offset, .len = ph.filesz };
        result.count += 1;
    }
    if (loads == 0) return error.NoLoadSegment;
    if (!entry_found) return error.EntryNotLoaded;
    result.size = std.mem.alignForward(u64, end, page_size);
    if (result.size > bundle_size_max) return error.BundleTooLarge;
    assert(result.size > 0 and result.entry - result.load_addr < result.size);
    return result;
}

/// Fills `out` (exactly `p.size` bytes) with the bundle that `p` describes for `elf`.
pub fn fill(p: *const Plan, elf: []const u8, out: []u8) void {
    assert(out.len == p.size);
    @memset(out, 0);
    for (p.pieces[0..p.count]) |piece| {
        assert(piece.bundle_offset + piece.len <= out.len);
        assert(piece.file_offset + piece.len <= elf.len);
        @memcpy(out[piece.bundle_offset..][0..piece.len], elf[piece.file_offset..][0..piece.len]);
    }
}

pub const Bundle = struct {
    bytes: []u8,
    load_addr: u64,
    entry: u64,
};

/// Validates `kernel` (a vmlinux ELF or an arm64 Image) and returns its bundle (owned by the
/// caller, allocated with `gpa`).
pub fn bundle(gpa: std.mem.Allocator, elf: []const u8) (Error || error{OutOfMemory})!Bundle {
    const p = if (isArm64Image(elf)) try planImage(elf) else try plan(elf);
    const bytes = try gpa.alloc(u8, p.size);
    fill(&p, elf, bytes);
    return .{ .bytes = bytes, .load_addr = p.load_addr, .entry = p.entry };
}

pub fn main(init: std.process.Init) !void {
    const io = init.io;
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    if (args.len != 4) {
        std.log.err("usage: bundler <vmlinux|Image> <bundle.bin> <meta.zig>", .{});
        std.process.exit(2);
    }
    const cwd = std.Io.Dir.cwd();
    const elf = cwd.readFileAlloc(io, args[1], init.gpa, .limited(1 << 30)) catch |err| {
        std.log.err("cannot read {s}: {t}", .{ args[1], err });
        std.process.exit(1);
    };
    defer init.gpa.free(elf);
    const b = bundle(init.gpa, elf) catch |err| {
        std.log.err("{s} is not a usable vmlinux or arm64 Image: {t}", .{ args[1], err });
        std.process.exit(1);
    };
    defer init.gpa.free(b.bytes);
    try cwd.writeFile(io, .{ .sub_path = args[2], .data = b.bytes });
    const meta = try std.fmt.allocPrint(init.arena.allocator(),
        \\//! Generated by kernelfw/bundler.zig from {s}.
        \\pub const load_addr: usize = 0x{x};
        \\pub const entry: usize = 0x{x};
        \\pub const size: usize = {d};
        \\
    , .{ std.fs.path.basename(args[1]), b.load_addr, b.entry, b.bytes.len });
    try cwd.writeFile(io, .{ .sub_path = args[3], .data = meta });
}

// ---- tests: ELF files built in the test --------------------------------------------------

const testing = std.testing;

const TestSeg = elf_file.TestSegment;
const testElf = elf_file.testElf;

test "segments with gaps land at their physical offsets; .bss excluded; 4 KiB rounding" {
    var buf: [0x4000]u8 = undefined;
    const segs = [_]TestSeg{
        .{ .paddr = 0x1000000, .filesz = 0x1234, .memsz = 0x1234 },
        .{ .type = 4, .paddr = 0, .filesz = 0x10, .memsz = 0x10 }, // PT_NOTE: ignored
        .{ .paddr = 0x1003000, .filesz = 0x100, .memsz = 0x100 }, // gap before it
        .{ .paddr = 0x1005000, .filesz = 0x80, .memsz = 0x9000 }, // .bss: not in the bundle
        .{ .paddr = 0x1010000, .filesz = 0, .memsz = 0x1000 }, // all .bss: not in the bundle
    };
    const len = testElf(&buf, 0x1000010, &segs);
    const elf = buf[0..len];
    const b = try bundle(testing.allocator, elf);
    defer testing.allocator.free(b.bytes);
    try testing.expectEqual(@as(u64, 0x1000000), b.load_addr);
    try testing.expectEqual(@as(u64, 0x1000010), b.entry);
    try testing.expectEqual(@as(usize, 0x6000), b.bytes.len); // 0x5080 rounded up
    try testing.expectEqualSlices(u8, elf[0x1000..][0..0x1234], b.bytes[0..0x1234]);
    try testing.expect(std.mem.allEqual(u8, b.bytes[0x1234..0x3000], 0));
    try testing.expectEqual(@as(u8, 3 * 16), b.bytes[0x3000]);
    try testing.expectEqual(@as(u8, (3 * 16 + 0xff) % 256), b.bytes[0x30ff]);
    try testing.expect(std.mem.allEqual(u8, b.bytes[0x3100..0x5000], 0));
    try testing.expectEqual(@as(u8, 4 * 16), b.bytes[0x5000]);
    try testing.expect(std.mem.allEqual(u8, b.bytes[0x5080..], 0));
    // The bytes at the entry are the ELF's bytes at the entry's file offset.
    try testing.expectEqual(elf[0x1000 + 0x10], b.bytes[b.entry - b.load_addr]);
}

test "exactly page-sized segments need no rounding; a single segment works" {
    var buf: [0x3000]u8 = undefined;
    const len = testElf(&buf, 0x1000000, &.{.{ .paddr = 0x1000000, .filesz = 0x2000, .memsz = 0x2000 }});
    const p = try plan(buf[0..len]);
    try testing.expectEqual(@as(u64, 0x2000), p.size);
    try testing.expectEqual(@as(usize, 1), p.count);
}

test "plan rejects truncated input at every length" {
    var buf: [0x3000]u8 = undefined;
    const len = testElf(&buf, 0x1000000, &.{
        .{ .paddr = 0x1000000, .filesz = 0x200, .memsz = 0x200 },
        .{ .paddr = 0x1002000, .filesz = 0x200, .memsz = 0x400 },
    });
    _ = try plan(buf[0..len]);
    // Every strict prefix is rejected (the last segment ends at the file's end).
    var n: usize = 0;
    while (n < 0x1300) : (n += 1) {
        if (plan(buf[0..n])) |_| return error.TestUnexpectedSuccess else |_| {}
    }
}

test "plan rejects hostile headers with named errors" {
    var buf: [0x3000]u8 = undefined;
    const good = [_]TestSeg{.{ .paddr = 0x1000000, .filesz = 0x200, .memsz = 0x1000 }};
    // Each case overwrites one little-endian header field of a valid ELF.
    const Case = struct { err: Error, offset: usize, width: u8, value: u64 };
    const cases = [_]Case{
        .{ .err = error.NotElf, .offset = 1, .width = 1, .value = 'X' },
        .{ .err = error.NotElf64, .offset = 4, .width = 1, .value = 1 },
        .{ .err = error.NotLittleEndian, .offset = 5, .width = 1, .value = 2 },
        .{ .err = error.BadElfVersion, .offset = 6, .width = 1, .value = 0 },
        .{ .err = error.NotExecutable, .offset = 16, .width = 2, .value = 1 }, // ET_REL
        .{ .err = error.NotX86_64, .offset = 18, .width = 2, .value = 183 }, // aarch64
        .{ .err = error.BadElfVersion, .offset = 20, .width = 4, .value = 2 },
        .{ .err = error.BadHeaderSize, .offset = 52, .width = 2, .value = 52 },
        .{ .err = error.BadProgramHeaderSize, .offset = 54, .width = 2, .value = 32 },
        .{ .err = error.NoProgramHeaders, .offset = 56, .width = 2, .value = 0 },
        .{ .err = error.TooManyProgramHeaders, .offset = 56, .width = 2, .value = 0xffff }, // PN_XNUM
        .{ .err = error.ProgramHeadersOutOfFile, .offset = 32, .width = 8, .value = std.math.maxInt(u64) - 8 },
        .{ .err = error.ProgramHeadersOutOfFile, .offset = 32, .width = 8, .value = 0x1200 - 40 }, // last phdr byte past the end
        .{ .err = error.EntryNotLoaded, .offset = 24, .width = 8, .value = 0x1000200 }, // in .bss
        .{ .err = error.EntryNotLoaded, .offset = 24, .width = 8, .value = 0xfff000 }, // below
    };
    for (cases) |c| {
        const len = testElf(&buf, 0x1000000, &good);
        switch (c.width) {
            1 => buf[c.offset] = @intCast(c.value),
            2 => std.mem.writeInt(u16, buf[c.offset..][0..2], @intCast(c.value), .little),
            4 => std.mem.writeInt(u32, buf[c.offset..][0..4], @intCast(c.value), .little),
            8 => std.mem.writeInt(u64, buf[c.offset..][0..8], c.value, .little),
            else => unreachable,
        }
        try testing.expectEqual(@as(usize, 0x1200), len);
        try testing.expectError(c.err, plan(buf[0..len]));
    }
}

test "plan rejects hostile segments with named errors" {
    var buf: [0x3000]u8 = undefined;
    const max = std.math.maxInt(u64);
    const Case = struct { err: Error, entry: u64 = 0x1000000, segs: []const TestSeg };
    const cases = [_]Case{
        .{ .err = error.SegmentFileSizeTooLarge, .segs = &.{.{ .paddr = 0x1000000, .filesz = 0x200, .memsz = 0x100 }} },
        .{ .err = error.SegmentOutOfFile, .segs = &.{.{ .paddr = 0x1000000, .filesz = 0x200, .memsz = 0x200, .offset = 0x2f00 }} },
        .{ .err = error.SegmentOutOfFile, .segs = &.{.{ .paddr = 0x1000000, .filesz = 0x200, .memsz = 0x200, .offset = max - 0x100 }} },
        .{ .err = error.SegmentOutOfFile, .segs = &.{.{ .paddr = 0x1000000, .filesz = max, .memsz = max, .offset = 0x1000 }} },
        .{ .err = error.SegmentAddressOverflow, .entry = max - 0xfff, .segs = &.{.{ .paddr = max - 0xfff, .filesz = 0x100, .memsz = 0x2000 }} },
        .{ .err = error.LoadAddressUnaligned, .segs = &.{.{ .paddr = 0x1000010, .filesz = 0x100, .memsz = 0x100 }} },
        .{ .err = error.NoLoadSegment, .segs = &.{.{ .type = 4, .paddr = 0x1000000, .filesz = 0x100, .memsz = 0x100 }} },
        .{ .err = error.NoLoadSegment, .segs = &.{.{ .paddr = 0x1000000, .filesz = 0, .memsz = 0 }} },
        // Out of physical order, or overlapping (including the earlier segment's .bss).
        .{ .err = error.SegmentsOverlap, .segs = &.{
            .{ .paddr = 0x1002000, .filesz = 0x100, .memsz = 0x100 },
            .{ .paddr = 0x1000000, .filesz = 0x100, .memsz = 0x100 },
        } },
        .{ .err = error.SegmentsOverlap, .segs = &.{
            .{ .paddr = 0x1000000, .filesz = 0x100, .memsz = 0x2000 },
            .{ .paddr = 0x1001000, .filesz = 0x100, .memsz = 0x100 },
        } },
        // A segment far away would make a huge bundle: refused, not allocated.
        .{ .err = error.BundleTooLarge, .segs = &.{
            .{ .paddr = 0x1000000, .filesz = 0x100, .memsz = 0x100 },
            .{ .paddr = 0x1000000 + bundle_size_max, .filesz = 0x100, .memsz = 0x100 },
        } },
        .{ .err = error.BundleTooLarge, .segs = &.{
            .{ .paddr = 0x1000000, .filesz = 0x100, .memsz = 0x100 },
            .{ .paddr = 0x1000000 + bundle_size_max - 0x80, .filesz = 0x100, .memsz = 0x100 },
        } },
    };
    for (cases) |c| {
        const len = testElf(&buf, c.entry, c.segs);
        try testing.expectError(c.err, plan(buf[0..@max(len, 0x2000)]));
    }
}

test "plan never crashes on random mutations of a valid ELF" {
    var buf: [0x3000]u8 = undefined;
    var work: [0x3000]u8 = undefined;
    const len = testElf(&buf, 0x1000010, &.{
        .{ .paddr = 0x1000000, .filesz = 0x300, .memsz = 0x300 },
        .{ .paddr = 0x1002000, .filesz = 0x100, .memsz = 0x800 },
    });
    var prng = std.Random.DefaultPrng.init(0x5eed);
    const random = prng.random();
    var ok: usize = 0;
    for (0..20000) |_| {
        @memcpy(work[0..len], buf[0..len]);
        // Flip a few bytes in the headers, where all the checks live.
        for (0..random.intRangeAtMost(usize, 1, 4)) |_| {
            work[random.uintLessThan(usize, @sizeOf(Ehdr) + 2 * @sizeOf(Phdr))] = random.int(u8);
        }
        const cut = if (random.boolean()) len else random.uintAtMost(usize, len);
        const p = plan(work[0..cut]) catch continue;
        // Whatever passes validation must be safe to fill.
        ok += 1;
        if (p.size > 1 << 20) continue;
        const out = try testing.allocator.alloc(u8, p.size);
        defer testing.allocator.free(out);
        fill(&p, work[0..cut], out);
    }
    try testing.expect(ok > 0);
}

test "arm64 Image: the whole file at 0x80000000, page-rounded; text_offset must be 0" {
    var img: [5000]u8 = @splat(0x5a);
    @memset(img[0..arm64_header_size], 0);
    std.mem.writeInt(u32, img[0x38..0x3c], arm64_image_magic, .little);
    try testing.expect(isArm64Image(&img));
    const b = try bundle(testing.allocator, &img);
    defer testing.allocator.free(b.bytes);
    try testing.expectEqual(@as(u64, 0x8000_0000), b.load_addr);
    try testing.expectEqual(@as(u64, 0x8000_0000), b.entry);
    try testing.expectEqual(@as(usize, 8192), b.bytes.len);
    try testing.expectEqualSlices(u8, &img, b.bytes[0..img.len]);
    try testing.expect(std.mem.allEqual(u8, b.bytes[img.len..], 0));
    std.mem.writeInt(u64, img[0x08..0x10], 0x80000, .little);
    try testing.expectError(error.ImageTextOffset, bundle(testing.allocator, &img));
    try testing.expect(!isArm64Image(img[0..63]));
}
