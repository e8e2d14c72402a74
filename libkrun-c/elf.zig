//! ELF64 kernel files (an x86_64 vmlinux): the one parser of them, the build's `kernel_elf`
//! module. Its users: the bundler that turns the vmlinux into libkrunfw's bundle
//! (kernelfw/bundler.zig), the VMM's loader for krun_set_kernel's ELF (vmm/kernel_loader.zig)
//! and krun_set_kernel's early check (capi/kernel_image.zig). The arm64 `Image` format is not
//! ELF and lives apart.
//!
//! Files come from disk, so every value is checked before it is used: headers have raw integer
//! fields (a hostile file cannot make an invalid enum), the program header table and every
//! PT_LOAD segment's file bytes must lie inside the file, and a bad file is a named error,
//! never a crash or an out-of-bounds access.
const std = @import("std");
const assert = std.debug.assert;

pub const Ehdr = extern struct {
    ident: [16]u8,
    type: u16,
    machine: u16,
    version: u32,
    entry: u64,
    phoff: u64,
    shoff: u64,
    flags: u32,
    ehsize: u16,
    phentsize: u16,
    phnum: u16,
    shentsize: u16,
    shnum: u16,
    shstrndx: u16,
};
pub const Phdr = extern struct {
    type: u32,
    flags: u32,
    offset: u64,
    vaddr: u64,
    paddr: u64,
    filesz: u64,
    memsz: u64,
    @"align": u64,
};
comptime {
    assert(@sizeOf(Ehdr) == 64 and @sizeOf(Phdr) == 56);
}

pub const pt_load = 1;
pub const et_exec = 2;
pub const et_dyn = 3;
pub const em_x86_64 = 62;
pub const elfclass64 = 2;
pub const elfdata2lsb = 1;
pub const ev_current = 1;
/// A vmlinux has a handful of program headers; more means a file we should not trust.
pub const phnum_max = 64;
/// The largest program header table `header` accepts.
pub const table_size_max = phnum_max * @sizeOf(Phdr);

pub const HeaderError = error{
    /// Shorter than an ELF64 header.
    Truncated,
    NotElf,
    NotElf64,
    NotLittleEndian,
    BadElfVersion,
    /// Neither ET_EXEC (a vmlinux) nor ET_DYN (a position-independent executable).
    NotExecutable,
    NotX86_64,
    BadHeaderSize,
    BadProgramHeaderSize,
    NoProgramHeaders,
    TooManyProgramHeaders,
    ProgramHeadersOutOfFile,
};

pub const SegmentError = error{
    /// p_filesz > p_memsz.
    SegmentFileSizeTooLarge,
    /// p_offset + p_filesz lies past the end of the file (or overflows).
    SegmentOutOfFile,
};

pub const Error = HeaderError || SegmentError;

/// The ELF header at the start of `bytes`, checked for an x86_64 ELF64 executable whose program
/// header table lies inside a file of `file_size` bytes.
pub fn header(bytes: []const u8, file_size: u64) HeaderError!Ehdr {
    if (bytes.len < @sizeOf(Ehdr) or file_size < @sizeOf(Ehdr)) return error.Truncated;
    var eh: Ehdr = undefined;
    @memcpy(std.mem.asBytes(&eh), bytes[0..@sizeOf(Ehdr)]);
    if (!std.mem.eql(u8, eh.ident[0..4], "\x7fELF")) return error.NotElf;
    if (eh.ident[4] != elfclass64) return error.NotElf64;
    if (eh.ident[5] != elfdata2lsb) return error.NotLittleEndian;
    if (eh.ident[6] != ev_current or eh.version != ev_current) return error.BadElfVersion;
    if (eh.type != et_exec and eh.type != et_dyn) return error.NotExecutable;
    if (eh.machine != em_x86_64) return error.NotX86_64;
    if (eh.ehsize != @sizeOf(Ehdr)) return error.BadHeaderSize;
    if (eh.phentsize != @sizeOf(Phdr)) return error.BadProgramHeaderSize;
    if (eh.phnum == 0) return error.NoProgramHeaders;
    if (eh.phnum > phnum_max) return error.TooManyProgramHeaders; // also PN_XNUM (0xffff)
    if (eh.phoff > file_size or tableSize(eh) > file_size - eh.phoff) return error.ProgramHeadersOutOfFile;
    return eh;
}

/// The program header table's length in bytes (at most `table_size_max` for a checked header).
pub fn tableSize(eh: Ehdr) usize {
    return @as(usize, eh.phnum) * @sizeOf(Phdr);
}

/// The PT_LOAD segments that occupy memory (p_memsz > 0), in table order, each checked:
/// p_filesz ≤ p_memsz and the file bytes inside the file. Addresses are the caller's to check.
pub const Loads = struct {
    /// The program header table's bytes.
    table: []const u8,
    file_size: u64,
    index: usize = 0,

    pub fn next(self: *Loads) SegmentError!?Phdr {
        while (self.index < self.table.len / @sizeOf(Phdr)) {
            var ph: Phdr = undefined;
            @memcpy(std.mem.asBytes(&ph), self.table[self.index * @sizeOf(Phdr) ..][0..@sizeOf(Phdr)]);
            self.index += 1;
            if (ph.type != pt_load or ph.memsz == 0) continue;
            if (ph.filesz > ph.memsz) return error.SegmentFileSizeTooLarge;
            if (ph.offset > self.file_size or ph.filesz > self.file_size - ph.offset) return error.SegmentOutOfFile;
            return ph;
        }
        return null;
    }
};

/// A whole ELF file in memory: its checked header and its PT_LOAD segments.
pub const File = struct {
    header: Ehdr,
    loads: Loads,

    pub fn parse(bytes: []const u8) HeaderError!File {
        const eh = try header(bytes, bytes.len);
        return .{ .header = eh, .loads = .{ .table = bytes[eh.phoff..][0..tableSize(eh)], .file_size = bytes.len } };
    }
};

// ---- tests -------------------------------------------------------------------------------------

const testing = std.testing;

/// Test support (here and in kernelfw/bundler.zig's tests): one segment of `testElf`.
pub const TestSegment = struct {
    paddr: u64,
    filesz: u64,
    memsz: u64,
    type: u32 = pt_load,
    /// Overrides the computed file offset (the bytes there are left as they are).
    offset: ?u64 = null,
};

/// Test support: builds an ELF64 x86_64 executable in `buf` with the given segments; segment
/// i's file bytes are `(i + 1) * 16 + j` (mod 256) so each is recognisable. Returns the used
/// length.
pub fn testElf(buf: []u8, entry: u64, segs: []const TestSegment) usize {
    @memset(buf, 0);
    var eh = std.mem.zeroes(Ehdr);
    eh.ident[0..7].* = "\x7fELF\x02\x01\x01".*;
    eh.type = et_exec;
    eh.machine = em_x86_64;
    eh.version = ev_current;
    eh.entry = entry;
    eh.phoff = @sizeOf(Ehdr);
    eh.ehsize = @sizeOf(Ehdr);
    eh.phentsize = @sizeOf(Phdr);
    eh.phnum = @intCast(segs.len);
    @memcpy(buf[0..@sizeOf(Ehdr)], std.mem.asBytes(&eh));
    var offset: u64 = 0x1000;
    for (segs, 0..) |s, i| {
        const off = s.offset orelse offset;
        const ph: Phdr = .{
            .type = s.type,
            .flags = 5,
            .offset = off,
            .vaddr = 0xffffffff80000000 +% s.paddr,
            .paddr = s.paddr,
            .filesz = s.filesz,
            .memsz = s.memsz,
            .@"align" = 0x1000,
        };
        @memcpy(buf[@sizeOf(Ehdr) + i * @sizeOf(Phdr) ..][0..@sizeOf(Phdr)], std.mem.asBytes(&ph));
        if (s.offset == null) {
            for (buf[off..][0..s.filesz], 0..) |*b, j| b.* = @truncate((i + 1) * 16 + j);
            offset = std.mem.alignForward(u64, off + s.filesz, 0x100);
        }
    }
    return offset;
}

/// A valid ELF in `buf` (0x300 bytes): a PT_NOTE, then one PT_LOAD whose file bytes are at 0x100.
fn testFile(buf: *[0x300]u8, filesz: u64, memsz: u64) void {
    _ = testElf(buf, 0, &.{
        .{ .type = 4, .paddr = 0, .filesz = 8, .memsz = 8, .offset = 0 },
        .{ .paddr = 0x200000, .filesz = filesz, .memsz = memsz, .offset = 0x100 },
    });
}

test "File.parse: checked header, PT_LOAD segments only, each inside the file" {
    var buf: [0x300]u8 = undefined;
    testFile(&buf, 0x200, 0x1000);
    var f = try File.parse(&buf);
    const ph = (try f.loads.next()).?;
    try testing.expectEqual(@as(u64, 0x200000), ph.paddr);
    try testing.expectEqual(@as(?Phdr, null), try f.loads.next());
    testFile(&buf, 0x201, 0x1000);
    f = try File.parse(&buf);
    try testing.expectError(error.SegmentOutOfFile, f.loads.next());
    testFile(&buf, 0x200, 0x100);
    f = try File.parse(&buf);
    try testing.expectError(error.SegmentFileSizeTooLarge, f.loads.next());
    testFile(&buf, 0x200, 0x1000);
    try testing.expectError(error.ProgramHeadersOutOfFile, File.parse(buf[0..150]));
    try testing.expectError(error.Truncated, File.parse(buf[0..63]));
    buf[18] = 183; // EM_AARCH64
    try testing.expectError(error.NotX86_64, File.parse(&buf));
}

test "header: every strict prefix of a valid file is refused or yields an in-file table" {
    var buf: [0x300]u8 = undefined;
    testFile(&buf, 0x200, 0x1000);
    for (0..buf.len) |n| {
        const f = File.parse(buf[0..n]) catch continue;
        var loads = f.loads;
        while (loads.next() catch null) |ph| try testing.expect(ph.offset + ph.filesz <= n);
    }
}
