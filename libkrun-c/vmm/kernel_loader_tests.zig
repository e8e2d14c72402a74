//! Unit tests of kernel_loader.zig: the libkrunfw bundle checks and copy-on-write mapping, guest
//! RAM placement, /proc/self/maps parsing, the ELF loader against hostile headers and where an
//! initramfs goes on both architectures.
const std = @import("std");
const test_tmp = @import("../test_tmp.zig");
const linux = std.os.linux;
const testing = std.testing;
const kl = @import("kernel_loader.zig");
const sys = @import("../sys/linux.zig");
const layout = @import("arch.zig").current.layout;
const GuestMemory = @import("guest_memory");
const elf = @import("kernel_elf");

test "kernelHasTsi: the parameter's NUL-terminated name, nothing longer" {
    try testing.expect(kl.kernelHasTsi("\x7fELF..tsi_hijack\x00tsi_hijack_unix\x00"));
    try testing.expect(!kl.kernelHasTsi("tsi_hijack_unix\x00tsi_hijackx\x00"));
    try testing.expect(!kl.kernelHasTsi(""));
}

test "checkBundle enforces alignment and range" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the warnings are the point of this test
    defer testing.log_level = saved_level;
    try kl.checkBundle(0x10000, 0x1000000, 0x1000000, 0x100000);
    try testing.expectError(error.KernelInvalid, kl.checkBundle(0x10010, 0x1000000, 0x1000000, 0x1000));
    try testing.expectError(error.KernelInvalid, kl.checkBundle(0x10000, 0x1000800, 0x1000800, 0x1000));
    try testing.expectError(error.KernelInvalid, kl.checkBundle(0x10000, 0x1000000, 0x2000000, 0x1000));
    try testing.expectError(error.KernelInvalid, kl.checkBundle(0x10000, 0xcfff0000, 0xcfff0000, 0x20000));
    try testing.expectError(error.KernelInvalid, kl.checkBundle(0x10000, 0x1000000, 0x1000000, 0));
}

test "mapGuestRam: host address congruent to the guest's modulo 2 MiB, exact length, writable" {
    try testing.expectEqual(@as(usize, 0), kl.congruentOffset(0x7f0000200000, 0x8000_0000));
    try testing.expectEqual(@as(usize, 0x1ff000), kl.congruentOffset(0x7f0000201000, 0x8000_0000));
    try testing.expectEqual(@as(usize, 0x3000), kl.congruentOffset(0x7f0000200000, 0x8160_3000));
    for ([_]u64{ 0, 0x1000, 0x8160_3000, 0x1_0000_0000, 0x1_001f_f000 }) |guest| {
        const m = try kl.mapGuestRam(3 * kl.huge_page + kl.page, guest);
        defer sys.munmap(m);
        try testing.expectEqual(3 * kl.huge_page + kl.page, m.len);
        try testing.expectEqual(guest % kl.huge_page, @intFromPtr(m.ptr) % kl.huge_page);
        m[0] = 1;
        m[m.len - 1] = 2;
        try testing.expectEqual(@as(u8, 1), m[0]);
    }
}

test "maps line parsing" {
    const l = kl.MapsLine.parse("7f12a4000000-7f12a5400000 rw-p 00123000 08:01 1234    /usr/lib/libkrunfw.so.5").?;
    try testing.expectEqual(@as(u64, 0x7f12a4000000), l.start);
    try testing.expectEqual(@as(u64, 0x7f12a5400000), l.end);
    try testing.expectEqual(@as(u64, 0x123000), l.offset);
    try testing.expectEqualStrings("/usr/lib/libkrunfw.so.5", l.path);
    const anon = kl.MapsLine.parse("7f12a4000000-7f12a5400000 rw-p 00000000 00:00 0 ").?;
    try testing.expectEqualStrings("", anon.path);
    try testing.expect(kl.MapsLine.parse("garbage") == null);
}

test "mapBundlePrivate: file-backed pages are remapped copy-on-write, not shared" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the warnings are the point of this test
    defer testing.log_level = saved_level;
    // A page-aligned array in a file we map ourselves stands in for the library's data.
    const path = test_tmp.path("vmm-bundle-test");
    const fd = try sys.open(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true });
    defer sys.close(fd);
    var content: [3 * kl.page]u8 = undefined;
    for (&content, 0..) |*b, i| b.* = @truncate(i * 7);
    try testing.expectEqual(content.len, try sys.pwrite(fd, &content, 0));
    const lib = try sys.mmap(3 * kl.page, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE }, fd, 0);
    defer sys.munmap(lib);
    const bundle = lib[kl.page..][0 .. kl.page + 100];
    const backing = kl.backingOf(bundle).?;
    defer sys.close(backing.fd);
    const a = try kl.mapBundlePrivate(bundle, backing);
    defer sys.munmap(a);
    const b = try kl.mapBundlePrivate(bundle, backing);
    defer sys.munmap(b);
    try testing.expect(a.ptr != bundle.ptr and a.ptr != b.ptr);
    try testing.expectEqualSlices(u8, bundle, a[0..bundle.len]);
    a[0] ^= 0xff;
    try testing.expectEqual(bundle[0], b[0]);
    try testing.expectEqual(content[kl.page], bundle[0]);
    // Anonymous memory has no file: the copy fallback still yields the same bytes.
    const anon = try sys.mmap(kl.page, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0);
    defer sys.munmap(anon);
    anon[5] = 42;
    try testing.expect(kl.backingOf(anon) == null);
    const c = try kl.mapBundlePrivate(anon, null);
    defer sys.munmap(c);
    try testing.expectEqual(@as(u8, 42), c[5]);
}

fn testElf(buf: []u8, paddr: u64, entry: u64, filesz: u64, memsz: u64) void {
    @memset(buf, 0);
    var eh = std.mem.zeroes(elf.Ehdr);
    eh.ident[0..7].* = "\x7fELF\x02\x01\x01".*;
    eh.type = elf.et_exec;
    eh.version = elf.ev_current;
    eh.ehsize = 64;
    eh.machine = elf.em_x86_64;
    eh.entry = entry;
    eh.phoff = 64;
    eh.phentsize = 56;
    eh.phnum = 1;
    @memcpy(buf[0..64], std.mem.asBytes(&eh));
    const ph: elf.Phdr = .{ .type = elf.pt_load, .flags = 5, .offset = 0x100, .vaddr = 0xffffffff81000000, .paddr = paddr, .filesz = filesz, .memsz = memsz, .@"align" = 0x1000 };
    @memcpy(buf[64..][0..56], std.mem.asBytes(&ph));
    for (buf[0x100..], 0..) |*b, i| b.* = @truncate(i | 1);
}

test "loadElf copies PT_LOAD to p_paddr, zero-fills bss, rejects hostile headers" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the warnings are the point of this test
    defer testing.log_level = saved_level;
    const ram_bytes = try testing.allocator.alignedAlloc(u8, .fromByteUnits(kl.page), 4 << 20);
    defer testing.allocator.free(ram_bytes);
    @memset(ram_bytes, 0xaa);
    var mem: GuestMemory = .{};
    try mem.addRegion(0, ram_bytes);
    const ram = layout.ramPlain(4);
    var file: [0x300]u8 = undefined;
    testElf(&file, 0x200000, 0x200000, 0x200, 0x1000);
    const got = try kl.loadElf(&mem, &ram, &file);
    try testing.expectEqual(@as(u64, 0x200000), got.entry);
    try testing.expectEqual(@as(u64, 0x201000), got.end);
    try testing.expectEqualSlices(u8, file[0x100..0x300], ram_bytes[0x200000..0x200200]);
    try testing.expectEqual(@as(u8, 0), ram_bytes[0x200200]);
    try testing.expectEqual(@as(u8, 0xaa), ram_bytes[0x201000]);
    // A virtual entry is translated through its segment.
    testElf(&file, 0x200000, 0xffffffff81000010, 0x200, 0x1000);
    try testing.expectEqual(@as(u64, 0x200010), (try kl.loadElf(&mem, &ram, &file)).entry);
    // Hostile: beyond RAM, filesz > memsz, past the file, entry nowhere, truncated.
    testElf(&file, 0x3ff000, 0x3ff000, 0x200, 0x2000);
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, &file));
    testElf(&file, 0x200000, 0x200000, 0x2000, 0x1000);
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, &file));
    testElf(&file, 0x200000, 0x200000, 0x201, 0x1000);
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, &file));
    testElf(&file, 0x200000, 0x900000, 0x200, 0x1000);
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, &file));
    testElf(&file, 0x1000, 0x1000, 0x200, 0x1000);
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, &file));
    try testing.expectError(error.KernelInvalid, kl.loadElf(&mem, &ram, file[0..100]));
}

test "aarch64: an initramfs ends below the FDT's window, which writeBoot fills after it" {
    const a64 = @import("aarch64/layout.zig");
    const ram = a64.ramWithBundle(128, a64.kernel_load_addr, 20 << 20);
    const fdt = a64.fdtAddr(ram.end() - a64.dram_start);
    // 3 MiB: more than the FDT window's 2 MiB, so the top of RAM alone would overlap it.
    const r = kl.placeInitramfsIn(a64, &ram, 3 << 20, a64.dram_start + (20 << 20)).?;
    try testing.expect(r.start + r.len <= fdt);
    try testing.expectEqual(@as(u64, 0), r.start % kl.page);
    try testing.expect(r.start >= a64.dram_start + (20 << 20));
    const small = kl.placeInitramfsIn(a64, &ram, 4096, a64.dram_start + (20 << 20)).?;
    try testing.expectEqual(fdt - 4096, small.start);
    try testing.expect(kl.placeInitramfsIn(a64, &ram, 127 << 20, a64.dram_start + (20 << 20)) == null);
}

test "initramfs goes to the top of RAM below the gap" {
    const ram = layout.ramWithBundle(256, layout.kernel_load_addr, 0x1400000);
    const r = kl.placeInitramfs(&ram, 0x12345, 0x2400000).?;
    try testing.expectEqual(@as(u64, 0x12345), r.len);
    try testing.expectEqual(std.mem.alignBackward(u64, ram.ranges[2].end() - 0x12345, kl.page), r.start);
    try testing.expect(kl.placeInitramfs(&ram, 300 << 20, 0x2400000) == null);
    const big = layout.ramPlain(5000);
    const b = kl.placeInitramfs(&big, 0x1000, 0x2000000).?;
    try testing.expectEqual(@as(u64, layout.mmio_gap_start - 0x1000), b.start);
}
