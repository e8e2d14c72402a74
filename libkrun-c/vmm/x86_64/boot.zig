//! The Linux x86_64 64-bit boot protocol as libkrun drives it (libkrun.md §2.4): the zero page
//! (boot_params) with its e820 table, the kernel command line, identity page tables, the boot
//! GDT/IDT, and the register, segment, FPU and MSR values a vCPU starts with. Every builder is a
//! pure function over GuestMemory or a plain value, so each field is unit tested.
const std = @import("std");
const assert = std.debug.assert;
const GuestMemory = @import("guest_memory");
const abi = @import("../kvm_abi.zig");
const layout = @import("layout.zig");

// ---- e820 ---------------------------------------------------------------------------------

pub const E820Entry = extern struct {
    addr: u64 align(4),
    size: u64 align(4),
    type: u32,
};
comptime {
    assert(@sizeOf(E820Entry) == 20);
}
pub const e820_ram: u32 = 1;
pub const e820_reserved: u32 = 2;
pub const e820_entries_max = 128;

/// e820 map for `ram`: [0, EBDA) then everything from 1 MiB as RAM, adjacent ranges merged.
pub fn e820FromRam(ram: *const layout.Ram, out: []E820Entry) usize {
    assert(ram.count > 0 and ram.ranges[0].start == 0);
    assert(ram.ranges[0].len > layout.himem_start);
    assert(out.len >= ram.count + 1);
    out[0] = .{ .addr = 0, .size = layout.mptable_addr, .type = e820_ram };
    var n: usize = 1;
    for (ram.slice()) |r| {
        const start = @max(r.start, layout.himem_start);
        if (start >= r.end()) continue;
        const prev = &out[n - 1];
        if (n > 1 and prev.addr + prev.size == start) {
            prev.size += r.end() - start;
        } else {
            out[n] = .{ .addr = start, .size = r.end() - start, .type = e820_ram };
            n += 1;
        }
    }
    return n;
}

// ---- zero page (struct boot_params) -------------------------------------------------------

/// Offsets in struct boot_params (arch/x86/include/uapi/asm/bootparam.h).
pub const bp = struct {
    pub const ext_ramdisk_image = 0x0c0;
    pub const ext_ramdisk_size = 0x0c4;
    pub const ext_cmd_line_ptr = 0x0c8;
    pub const e820_entries = 0x1e8;
    pub const hdr = 0x1f1;
    pub const boot_flag = 0x1fe;
    pub const header = 0x202;
    pub const type_of_loader = 0x210;
    pub const loadflags = 0x211;
    pub const ramdisk_image = 0x218;
    pub const ramdisk_size = 0x21c;
    pub const cmd_line_ptr = 0x228;
    pub const initrd_addr_max = 0x22c;
    pub const kernel_alignment = 0x230;
    pub const cmdline_size = 0x238;
    pub const e820_table = 0x2d0;
    pub const size = 4096;
};

pub const boot_flag_magic: u16 = 0xAA55;
pub const header_magic: u32 = 0x53726448; // "HdrS"
pub const loader_undefined: u8 = 0xff;
pub const kernel_alignment_default: u32 = 0x100_0000;
/// loadflags: the kernel is loaded high (at 1 MiB or above).
pub const loadflags_loaded_high: u8 = 0x01;

pub const ZeroPage = struct {
    cmdline_addr: u64,
    /// Length of the command line without its NUL.
    cmdline_len: u32,
    initramfs: ?layout.Range = null,
    e820: []const E820Entry,
};

fn put(comptime T: type, page: *[bp.size]u8, offset: usize, value: T) void {
    std.mem.writeInt(T, page[offset..][0..@sizeOf(T)], value, .little);
}

/// Fills a zero page the way libkrun's `configure_64bit_boot` does.
pub fn buildZeroPage(page: *[bp.size]u8, zp: ZeroPage) void {
    assert(zp.e820.len > 0 and zp.e820.len <= e820_entries_max);
    assert(zp.cmdline_len < layout.cmdline_size_max);
    @memset(page, 0);
    put(u16, page, bp.boot_flag, boot_flag_magic);
    put(u32, page, bp.header, header_magic);
    put(u8, page, bp.type_of_loader, loader_undefined);
    put(u8, page, bp.loadflags, loadflags_loaded_high);
    put(u32, page, bp.cmd_line_ptr, @truncate(zp.cmdline_addr));
    put(u32, page, bp.ext_cmd_line_ptr, @truncate(zp.cmdline_addr >> 32));
    put(u32, page, bp.cmdline_size, zp.cmdline_len);
    put(u32, page, bp.kernel_alignment, kernel_alignment_default);
    if (zp.initramfs) |rd| {
        put(u32, page, bp.ramdisk_image, @truncate(rd.start));
        put(u32, page, bp.ramdisk_size, @truncate(rd.len));
        put(u32, page, bp.ext_ramdisk_image, @truncate(rd.start >> 32));
        put(u32, page, bp.ext_ramdisk_size, @truncate(rd.len >> 32));
    }
    put(u8, page, bp.e820_entries, @intCast(zp.e820.len));
    for (zp.e820, 0..) |e, i| {
        const at = bp.e820_table + i * @sizeOf(E820Entry);
        put(u64, page, at, e.addr);
        put(u64, page, at + 8, e.size);
        put(u32, page, at + 16, e.type);
    }
}

// ---- kernel command line ------------------------------------------------------------------

/// libkrun's prolog around `console=`; the guest finds the virtio-MMIO slots on the line.
pub const Cmdline = @import("../Cmdline.zig").Cmdline(.{
    .size_max = layout.cmdline_size_max,
    .prolog_head = "reboot=k,panic_warm panic=-1 panic_print=0 nomodule",
    .prolog_tail = "rootfstype=virtiofs rw quiet no-kvmapf init=/init.krun",
    .virtio_mmio_slot = virtioMmioSlot,
});

fn virtioMmioSlot(slot: u32) @import("../Cmdline.zig").VirtioMmioSlot {
    return .{ .addr = layout.virtioSlotAddr(slot), .irq = layout.virtioSlotIrq(slot) };
}

/// Writes the line and its NUL at `addr` (the zero page's cmd_line_ptr points there).
pub fn storeCmdline(c: *const Cmdline, mem: *const GuestMemory, addr: u64) GuestMemory.Error!void {
    const dest = try mem.slice(addr, c.len + 1);
    @memcpy(dest[0..c.len], c.bytes());
    dest[c.len] = 0;
}

// ---- page tables, GDT, IDT ----------------------------------------------------------------

pub const pte_present: u64 = 1 << 0;
pub const pte_writable: u64 = 1 << 1;
pub const pte_huge: u64 = 1 << 7;

/// Identity map of the first GiB: PML4[0] → PDPT[0] → 512 × 2 MiB pages.
pub fn writePageTables(mem: *const GuestMemory) GuestMemory.Error!void {
    const pml4 = try mem.slice(layout.pml4_addr, 4096);
    const pdpt = try mem.slice(layout.pdpt_addr, 4096);
    const pd = try mem.slice(layout.pd_addr, 4096);
    @memset(pml4, 0);
    @memset(pdpt, 0);
    std.mem.writeInt(u64, pml4[0..8], layout.pdpt_addr | pte_present | pte_writable, .little);
    std.mem.writeInt(u64, pdpt[0..8], layout.pd_addr | pte_present | pte_writable, .little);
    for (0..512) |i| {
        const entry = (@as(u64, i) << 21) | pte_present | pte_writable | pte_huge;
        std.mem.writeInt(u64, pd[i * 8 ..][0..8], entry, .little);
    }
}

pub const gdt_code64: u16 = 0xa09b;
pub const gdt_data: u16 = 0xc093;
pub const gdt_tss: u16 = 0x808b;
/// null, code, data, TSS: selectors 0x08, 0x10, 0x18.
pub const gdt_table = [4]u64{
    0,
    gdtEntry(gdt_code64, 0, 0xfffff),
    gdtEntry(gdt_data, 0, 0xfffff),
    gdtEntry(gdt_tss, 0, 0xfffff),
};

/// Packs a segment descriptor: `flags` holds the access byte (bits 0-7) and G/DB/L/AVL (12-15).
pub fn gdtEntry(flags: u16, base: u32, limit: u32) u64 {
    const b: u64 = base;
    const l: u64 = limit;
    const f: u64 = flags;
    return ((b & 0xff00_0000) << 32) | ((f & 0xf0ff) << 40) | ((l & 0x000f_0000) << 32) |
        ((b & 0x00ff_ffff) << 16) | (l & 0xffff);
}

/// The kvm_segment KVM wants for GDT entry `index`.
pub fn segmentFromGdt(entry: u64, index: u16) abi.kvm_segment {
    const base: u64 = ((entry >> 16) & 0x00ff_ffff) | ((entry >> 32) & 0xff00_0000);
    const raw_limit: u32 = @truncate((entry & 0xffff) | ((entry >> 32) & 0x000f_0000));
    const g: u8 = @truncate((entry >> 55) & 1);
    return .{
        .base = base,
        .limit = if (g == 1) (raw_limit << 12) | 0xfff else raw_limit,
        .selector = index * 8,
        .type = @truncate((entry >> 40) & 0xf),
        .s = @truncate((entry >> 44) & 1),
        .dpl = @truncate((entry >> 45) & 3),
        .present = @truncate((entry >> 47) & 1),
        .avl = @truncate((entry >> 52) & 1),
        .l = @truncate((entry >> 53) & 1),
        .db = @truncate((entry >> 54) & 1),
        .g = g,
        .unusable = @intFromBool((entry >> 47) & 1 == 0),
    };
}

pub fn writeGdtIdt(mem: *const GuestMemory) GuestMemory.Error!void {
    for (gdt_table, 0..) |e, i| try mem.write(u64, layout.gdt_addr + i * 8, e);
    try mem.write(u64, layout.idt_addr, 0);
}

// ---- vCPU state ---------------------------------------------------------------------------

pub const cr0_pe: u64 = 1 << 0;
pub const cr0_pg: u64 = 1 << 31;
pub const cr4_pae: u64 = 1 << 5;
pub const efer_lme: u64 = 1 << 8;
pub const efer_lma: u64 = 1 << 10;

/// Long mode with our GDT and page tables, on top of the vCPU's reset sregs.
pub fn longModeSregs(reset: abi.kvm_sregs) abi.kvm_sregs {
    var s = reset;
    const code = segmentFromGdt(gdt_table[1], 1);
    const data = segmentFromGdt(gdt_table[2], 2);
    s.cs = code;
    s.ds = data;
    s.es = data;
    s.fs = data;
    s.gs = data;
    s.ss = data;
    s.tr = segmentFromGdt(gdt_table[3], 3);
    s.gdt = .{ .base = layout.gdt_addr, .limit = @sizeOf(@TypeOf(gdt_table)) - 1 };
    s.idt = .{ .base = layout.idt_addr, .limit = 7 };
    s.cr0 |= cr0_pe | cr0_pg;
    s.cr3 = layout.pml4_addr;
    s.cr4 |= cr4_pae;
    s.efer |= efer_lme | efer_lma;
    return s;
}

pub fn bootRegs(entry: u64) abi.kvm_regs {
    return .{
        .rflags = 0x2,
        .rip = entry,
        .rsp = layout.boot_stack_pointer,
        .rbp = layout.boot_stack_pointer,
        .rsi = layout.zero_page_addr,
    };
}

pub fn bootFpu() abi.kvm_fpu {
    return .{ .fcw = 0x37f, .mxcsr = 0x1f80 };
}

pub const msr = struct {
    pub const tsc = 0x10;
    pub const sysenter_cs = 0x174;
    pub const sysenter_esp = 0x175;
    pub const sysenter_eip = 0x176;
    pub const misc_enable = 0x1a0;
    pub const mtrr_def_type = 0x2ff;
    pub const star = 0xc0000081;
    pub const lstar = 0xc0000082;
    pub const cstar = 0xc0000083;
    pub const syscall_mask = 0xc0000084;
    pub const kernel_gs_base = 0xc0000102;
    pub const misc_enable_fast_string: u64 = 1;
    pub const mtrr_enable: u64 = 1 << 11;
    pub const mtrr_mem_type_wb: u64 = 6;
};

pub const BootMsrs = abi.KvmMsrs(11);

/// libkrun's `create_boot_msr_entries`.
pub fn bootMsrs() BootMsrs {
    const entries = [_]abi.kvm_msr_entry{
        .{ .index = msr.sysenter_cs, .data = 0 },
        .{ .index = msr.sysenter_esp, .data = 0 },
        .{ .index = msr.sysenter_eip, .data = 0 },
        .{ .index = msr.star, .data = 0 },
        .{ .index = msr.cstar, .data = 0 },
        .{ .index = msr.kernel_gs_base, .data = 0 },
        .{ .index = msr.syscall_mask, .data = 0 },
        .{ .index = msr.lstar, .data = 0 },
        .{ .index = msr.tsc, .data = 0 },
        .{ .index = msr.misc_enable, .data = msr.misc_enable_fast_string },
        .{ .index = msr.mtrr_def_type, .data = msr.mtrr_enable | msr.mtrr_mem_type_wb },
    };
    var m: BootMsrs = .{ .nmsrs = entries.len };
    m.entries = entries;
    return m;
}

/// LAPIC LVT LINT0 → ExtINT, LINT1 → NMI (libkrun's `set_lint`).
pub const apic_lvt_lint0 = 0x350;
pub const apic_lvt_lint1 = 0x360;
pub const apic_mode_nmi: u32 = 0x4;
pub const apic_mode_extint: u32 = 0x7;

pub fn setLint(state: *abi.kvm_lapic_state) void {
    setDeliveryMode(state, apic_lvt_lint0, apic_mode_extint);
    setDeliveryMode(state, apic_lvt_lint1, apic_mode_nmi);
}

fn setDeliveryMode(state: *abi.kvm_lapic_state, reg: usize, mode: u32) void {
    const p = state.regs[reg..][0..4];
    const v = std.mem.readInt(u32, p, .little);
    std.mem.writeInt(u32, p, (v & ~@as(u32, 0x700)) | (mode << 8), .little);
}

const testing = std.testing;

test "e820: low RAM to the EBDA, then RAM from 1 MiB with the bundle merged in" {
    const ram = layout.ramWithBundle(256, layout.kernel_load_addr, 0x1400000);
    var out: [8]E820Entry = undefined;
    const n = e820FromRam(&ram, &out);
    try testing.expectEqual(@as(usize, 2), n);
    try testing.expectEqual(@as(u64, 0), out[0].addr);
    try testing.expectEqual(@as(u64, 0x9fc00), out[0].size);
    try testing.expectEqual(@as(u64, 0x100000), out[1].addr);
    try testing.expectEqual(ram.total() - 0x100000, out[1].size);
    try testing.expectEqual(e820_ram, out[1].type);

    const big = layout.ramPlain(5000);
    const m = e820FromRam(&big, &out);
    try testing.expectEqual(@as(usize, 3), m);
    try testing.expectEqual(@as(u64, layout.mmio_gap_start - 0x100000), out[1].size);
    try testing.expectEqual(@as(u64, 1 << 32), out[2].addr);
}

test "zero page: every field libkrun sets" {
    var page: [bp.size]u8 = undefined;
    const e820 = [_]E820Entry{
        .{ .addr = 0, .size = 0x9fc00, .type = 1 },
        .{ .addr = 0x100000, .size = 0x1000_0000, .type = 1 },
    };
    buildZeroPage(&page, .{
        .cmdline_addr = 0x20000,
        .cmdline_len = 42,
        .initramfs = .{ .start = 0x0f00_0000, .len = 0x12345 },
        .e820 = &e820,
    });
    const rd = std.mem.readInt;
    try testing.expectEqual(@as(u16, 0xaa55), rd(u16, page[0x1fe..0x200], .little));
    try testing.expectEqual(@as(u32, 0x53726448), rd(u32, page[0x202..0x206], .little));
    try testing.expectEqual(@as(u8, 0xff), page[0x210]);
    try testing.expectEqual(@as(u32, 0x20000), rd(u32, page[0x228..0x22c], .little));
    try testing.expectEqual(@as(u32, 42), rd(u32, page[0x238..0x23c], .little));
    try testing.expectEqual(@as(u32, 0x100_0000), rd(u32, page[0x230..0x234], .little));
    try testing.expectEqual(@as(u32, 0x0f00_0000), rd(u32, page[0x218..0x21c], .little));
    try testing.expectEqual(@as(u32, 0x12345), rd(u32, page[0x21c..0x220], .little));
    try testing.expectEqual(@as(u8, 2), page[0x1e8]);
    try testing.expectEqual(@as(u64, 0x100000), rd(u64, page[0x2d0 + 20 ..][0..8], .little));
    try testing.expectEqual(@as(u64, 0x1000_0000), rd(u64, page[0x2d0 + 28 ..][0..8], .little));
    try testing.expectEqual(@as(u32, 1), rd(u32, page[0x2d0 + 36 ..][0..4], .little));
    try testing.expectEqual(@as(u8, 0), page[0x2d0 + 40]);
}

test "cmdline: prolog, devices, printable ASCII only, bounded" {
    var c: Cmdline = .{};
    try c.appendProlog("hvc0");
    try c.appendVirtioMmio(0);
    try c.appendVirtioMmio(2);
    try testing.expectEqualStrings("reboot=k,panic_warm panic=-1 panic_print=0 nomodule console=hvc0 " ++
        "rootfstype=virtiofs rw quiet no-kvmapf init=/init.krun " ++
        "virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0002000:7", c.bytes());
    try testing.expectError(error.CmdlineInvalidChar, c.append("a\nb"));
    try testing.expectError(error.CmdlineInvalidChar, c.append("\xff"));
    var long: Cmdline = .{};
    const chunk: [1000]u8 = @splat('x');
    try long.append(&chunk);
    try long.append(&chunk);
    try testing.expectError(error.CmdlineTooLong, long.append(&chunk));
    try testing.expectEqual(@as(usize, 2001), long.len);
    const tail: [45]u8 = @splat('y');
    try long.append(&tail);
    try testing.expectEqual(@as(usize, 2047), long.len);
    try testing.expectError(error.CmdlineTooLong, long.append("z"));

    var low: [0x30000]u8 align(4096) = @splat(0xaa);
    var mem: GuestMemory = .{};
    try mem.addRegion(0, &low);
    try storeCmdline(&c, &mem, layout.cmdline_addr);
    try testing.expectEqualStrings(c.bytes(), low[0x20000..][0..c.len]);
    try testing.expectEqual(@as(u8, 0), low[0x20000 + c.len]);
}

test "page tables identity-map the first GiB with 2 MiB pages" {
    var low: [0x10000]u8 align(4096) = @splat(0xaa);
    var mem: GuestMemory = .{};
    try mem.addRegion(0, &low);
    try writePageTables(&mem);
    const rd = std.mem.readInt;
    try testing.expectEqual(@as(u64, 0xA003), rd(u64, low[0x9000..][0..8], .little));
    try testing.expectEqual(@as(u64, 0), rd(u64, low[0x9008..][0..8], .little));
    try testing.expectEqual(@as(u64, 0xB003), rd(u64, low[0xA000..][0..8], .little));
    try testing.expectEqual(@as(u64, 0x83), rd(u64, low[0xB000..][0..8], .little));
    try testing.expectEqual(@as(u64, 0x200083), rd(u64, low[0xB008..][0..8], .little));
    try testing.expectEqual(@as(u64, (511 << 21) | 0x83), rd(u64, low[0xBFF8..][0..8], .little));
}

test "GDT entries and the segments KVM gets from them" {
    try testing.expectEqual(@as(u64, 0x00af9b000000ffff), gdt_table[1]);
    try testing.expectEqual(@as(u64, 0x00cf93000000ffff), gdt_table[2]);
    try testing.expectEqual(@as(u64, 0x008f8b000000ffff), gdt_table[3]);
    const cs = segmentFromGdt(gdt_table[1], 1);
    try testing.expectEqual(@as(u16, 0x08), cs.selector);
    try testing.expectEqual(@as(u8, 0xb), cs.type);
    try testing.expectEqual(@as(u8, 1), cs.l);
    try testing.expectEqual(@as(u8, 0), cs.db);
    try testing.expectEqual(@as(u8, 1), cs.present);
    try testing.expectEqual(@as(u8, 1), cs.s);
    try testing.expectEqual(@as(u32, 0xffffffff), cs.limit);
    const ds = segmentFromGdt(gdt_table[2], 2);
    try testing.expectEqual(@as(u8, 3), ds.type);
    try testing.expectEqual(@as(u8, 1), ds.db);
    try testing.expectEqual(@as(u8, 0), ds.l);
    const tr = segmentFromGdt(gdt_table[3], 3);
    try testing.expectEqual(@as(u16, 0x18), tr.selector);
    try testing.expectEqual(@as(u8, 0), tr.s);
    try testing.expectEqual(@as(u8, 0), segmentFromGdt(0, 0).present);
    try testing.expectEqual(@as(u8, 1), segmentFromGdt(0, 0).unusable);

    const s = longModeSregs(.{ .cr0 = 0x60000010 });
    try testing.expectEqual(@as(u64, 0xe0000011), s.cr0);
    try testing.expectEqual(@as(u64, 0x9000), s.cr3);
    try testing.expectEqual(@as(u64, 0x20), s.cr4);
    try testing.expectEqual(@as(u64, 0x500), s.efer);
    try testing.expectEqual(@as(u16, 31), s.gdt.limit);
    try testing.expectEqual(@as(u64, 0x520), s.idt.base);
}

test "boot registers, FPU, MSRs and LINT" {
    const r = bootRegs(0x1000000);
    try testing.expectEqual(@as(u64, 0x1000000), r.rip);
    try testing.expectEqual(@as(u64, 0x7000), r.rsi);
    try testing.expectEqual(@as(u64, 0x8ff0), r.rsp);
    try testing.expectEqual(@as(u64, 2), r.rflags);
    try testing.expectEqual(@as(u16, 0x37f), bootFpu().fcw);
    const m = bootMsrs();
    try testing.expectEqual(@as(u32, 11), m.nmsrs);
    try testing.expectEqual(@as(u64, 0x806), m.entries[10].data);
    var lapic: abi.kvm_lapic_state = .{};
    std.mem.writeInt(u32, lapic.regs[0x350..0x354], 0x10700, .little);
    setLint(&lapic);
    try testing.expectEqual(@as(u32, 0x10700), std.mem.readInt(u32, lapic.regs[0x350..0x354], .little));
    try testing.expectEqual(@as(u32, 0x400), std.mem.readInt(u32, lapic.regs[0x360..0x364], .little));
}
