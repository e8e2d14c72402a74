//! Getting a guest kernel into guest memory, libkrun's ways (libkrun.md §2.4, §6):
//! - libkrunfw: `dlopen("libkrunfw.so.5")` once per process (at krun_create_ctx, as libkrun),
//!   `krunfw_get_kernel` hands back a page-aligned array
//!   of the vmlinux PT_LOAD segments, a load address and an entry point. The guest runs straight
//!   out of those pages, without a copy: each VM maps the library file's pages that back the
//!   array privately (copy-on-write) into its own memory slot, so VMs in one process never see
//!   each other's kernel writes and the page cache is shared.
//! - krun_set_kernel ELF: PT_LOAD segments (read by the `kernel_elf` module, libkrun-c/elf.zig)
//!   copied into RAM at p_paddr, entry at e_entry.
//! - krun_set_kernel RAW: a libkrunfw-style bundle file, mapped privately at 16 MiB.
//! - krun_set_kernel IMAGE_GZ (aarch64): a gzipped arm64 Image, inflated (gunzip.zig, size
//!   limited, CRC checked) into fresh anonymous memory that then is the kernel's RAM slot.
//! - an initramfs read into the top of RAM below the MMIO gap.
//! Guest memory is never mapped executable in the host, and is kept out of core dumps and forks.
//! Anonymous guest RAM is advised MADV_HUGEPAGE, placed so KVM can map it in 2 MiB blocks.
//! Every value from a file is checked; a bad file is `error.KernelInvalid`, never a crash.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");
const arch = @import("arch.zig").current;
const layout = arch.layout;
const GuestMemory = @import("guest_memory");
const elf = @import("kernel_elf");
const gunzip = @import("gunzip.zig");

const log = std.log.scoped(.vmm);

pub const Error = error{ KernelNotFound, KernelInvalid, OutOfMemory, SystemResources };

pub const page = std.heap.page_size_min;
pub const Mapping = []align(page) u8;

/// libkrunfw's soname; on macOS its install name (libkrun's, too).
pub const krunfw_name = if (@import("builtin").os.tag == .macos) "libkrunfw.5.dylib" else "libkrunfw.so.5";

const GetKernelFn = *const fn (load_addr: *usize, entry_addr: *usize, size: *usize) callconv(.c) ?[*]u8;

/// An open libkrunfw and the bundle it exports (the library's pages; never written by us).
/// One per process: opened by krun_create_ctx (libkrun's time: clients such as crun create the
/// context before they enter a container that has no libkrunfw) or else by the first VM start,
/// and kept until the process exits, as libkrun keeps its dlopen handle.
pub const Firmware = struct {
    handle: *anyopaque,
    bundle: []const u8,
    load_addr: u64,
    entry: u64,
    /// The library file behind `bundle`, opened with the library, so VMs built after the
    /// process chroots (no /proc, no library path) still map the file's pages copy-on-write.
    backing: ?BackingFd,

    /// The process's firmware, opened on the first call. A failure is not remembered: a later
    /// call (another context, or the start) tries again. `quiet` logs a failure at debug level
    /// only (krun_create_ctx: a context given krun_set_kernel needs no libkrunfw).
    pub fn shared(quiet: bool) Error!*const Firmware {
        const rc = std.c.pthread_mutex_lock(&shared_mutex);
        assert(rc == .SUCCESS);
        defer assert(std.c.pthread_mutex_unlock(&shared_mutex) == .SUCCESS);
        if (shared_firmware) |*fw| return fw;
        shared_firmware = try open(quiet);
        return &shared_firmware.?;
    }

    pub fn hasTsi(self: *const Firmware) bool {
        switch (shared_tsi.load(.acquire)) {
            1 => return true,
            2 => return false,
            else => {
                const yes = kernelHasTsi(self.bundle);
                shared_tsi.store(if (yes) 1 else 2, .release);
                return yes;
            },
        }
    }

    fn open(quiet: bool) Error!Firmware {
        const handle = std.c.dlopen(krunfw_name, .{ .NOW = true }) orelse openBesideLibkrun() orelse {
            const why = if (std.c.dlerror()) |m| std.mem.span(m) else "?";
            if (quiet) log.debug("cannot load {s}: {s}", .{ krunfw_name, why }) else log.warn("cannot load {s}: {s}", .{ krunfw_name, why });
            return error.KernelNotFound;
        };
        errdefer _ = std.c.dlclose(handle);
        const sym = std.c.dlsym(handle, "krunfw_get_kernel") orelse {
            log.warn("{s} has no krunfw_get_kernel", .{krunfw_name});
            return error.KernelInvalid;
        };
        const get_kernel: GetKernelFn = @ptrCast(@alignCast(sym));
        var load_addr: usize = 0;
        var entry: usize = 0;
        var size: usize = 0;
        const ptr = get_kernel(&load_addr, &entry, &size) orelse return error.KernelInvalid;
        try checkBundle(@intFromPtr(ptr), load_addr, entry, size);
        const bundle = ptr[0..size];
        return .{ .handle = handle, .bundle = bundle, .load_addr = load_addr, .entry = entry, .backing = backingOf(bundle) };
    }
};

/// Whether a kernel speaks TSI: it knows the `tsi_hijack` parameter.
pub fn kernelHasTsi(image: []const u8) bool {
    return std.mem.indexOf(u8, image, "tsi_hijack\x00") != null;
}

/// The process's firmware's answer to kernelHasTsi, found once (0 unknown, 1 yes, 2 no): the
/// scan reads the whole kernel (7+ MiB), which every VM start with vsock used to fault in.
/// Two first callers may both scan; they store the same answer.
var shared_tsi: std.atomic.Value(u8) = .init(0);

var shared_mutex: std.c.pthread_mutex_t = .{};
/// Guarded by `shared_mutex` until set; never changed or closed after.
var shared_firmware: ?Firmware = null;

/// glibc's Dl_info, for dladdr (std.c declares dladdr only for Darwin).
const DlInfo = extern struct {
    fname: ?[*:0]const u8,
    fbase: ?*anyopaque,
    sname: ?[*:0]const u8,
    saddr: ?*anyopaque,
};
extern "c" fn dladdr(addr: *const anyopaque, info: *DlInfo) c_int;

/// The path of the loaded libkrun (dladdr on one of its own functions); null when unknown.
pub fn libraryPath() ?[*:0]const u8 {
    var info: DlInfo = undefined;
    if (dladdr(@ptrCast(&libraryPath), &info) == 0) return null;
    return info.fname;
}

/// libkrun finds libkrunfw by soname only. Users who run zkrun from a build tree or an
/// unpacked prefix expect the copy installed next to libkrun.so.1 to be found too (a RUNPATH
/// in the program does not apply to libkrun's own dlopen), so that is tried second.
fn openBesideLibkrun() ?*anyopaque {
    const self_path = std.mem.span(libraryPath() orelse return null);
    const dir = std.fs.path.dirname(self_path) orelse return null;
    var buf: [4096]u8 = undefined;
    const path = std.mem.printSentinel(&buf, "{s}/{s}", .{ dir, krunfw_name }, 0) catch return null;
    return std.c.dlopen(path, .{ .NOW = true });
}

/// libkrun's rule (resources.rs `set_kernel_bundle`): host and guest addresses page aligned;
/// ours adds that the bundle must fit between 1 MiB and the MMIO gap and the entry lie inside.
pub fn checkBundle(host_addr: usize, load_addr: u64, entry: u64, size: u64) Error!void {
    if (host_addr % page != 0 or load_addr % page != 0) {
        log.warn("kernel bundle not page aligned (host 0x{x}, guest 0x{x})", .{ host_addr, load_addr });
        return error.KernelInvalid;
    }
    if (size == 0 or load_addr < layout.himem_start or load_addr >= layout.mmio_gap_start or
        size > layout.mmio_gap_start - load_addr or entry < load_addr or entry - load_addr >= size)
    {
        log.warn("kernel bundle out of range (guest 0x{x}, size 0x{x}, entry 0x{x})", .{ load_addr, size, entry });
        return error.KernelInvalid;
    }
}

/// An open file and the offset in it of a bundle's first page.
pub const BackingFd = struct {
    fd: sys.fd_t,
    offset: u64,
};

/// The file behind `bundle` (pages this process has mapped), opened read-only, or null when
/// the pages are anonymous or the file cannot be opened (then VMs copy the bundle).
pub fn backingOf(bundle: []const u8) ?BackingFd {
    assert(@intFromPtr(bundle.ptr) % page == 0);
    // No /proc/self/maps on macOS: VMs there copy the bundle.
    if (@import("builtin").os.tag == .macos) return null;
    const len = std.mem.alignForward(usize, bundle.len, page);
    const backing = fileOf(@intFromPtr(bundle.ptr), len) orelse return null;
    var path_z: [std.fs.max_path_bytes + 1]u8 = undefined;
    @memcpy(path_z[0..backing.path.len], backing.path);
    path_z[backing.path.len] = 0;
    const fd = sys.open(@ptrCast(&path_z), .{ .ACCMODE = .RDONLY, .CLOEXEC = true }) catch return null;
    return .{ .fd = fd, .offset = backing.offset };
}

/// Maps `bundle` privately at a new address: the pages of `backing` (its file), copy-on-write
/// for this VM alone. Falls back to an anonymous copy when there is no backing file or it no
/// longer holds the bundle (then RSS grows by the bundle size, but VMs still stay isolated).
pub fn mapBundlePrivate(bundle: []const u8, backing: ?BackingFd) Error!Mapping {
    assert(@intFromPtr(bundle.ptr) % page == 0);
    const len = std.mem.alignForward(usize, bundle.len, page);
    if (backing) |b| {
        if (mapFilePrivate(b.fd, len, b.offset)) |m| {
            // The file must still hold what the library mapped (not replaced on disk).
            if (std.mem.eql(u8, m[0..page], bundle[0..page]) and
                std.mem.eql(u8, m[len - page ..][0 .. bundle.len - (len - page)], bundle[len - page ..]))
                return m;
            sys.munmap(m);
        } else |_| {}
    }
    log.warn("kernel bundle is not file backed; copying it", .{});
    const m = sys.mmap(len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0) catch
        return error.OutOfMemory;
    @memcpy(m[0..bundle.len], bundle);
    return m;
}

/// Guest memory is never executable in the host: KVM runs guest code from its own page
/// tables, and a host mapping that is writable and executable is a gift to an exploit.
fn mapFilePrivate(fd: sys.fd_t, len: usize, offset: u64) sys.Error!Mapping {
    return sys.mmap(len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE }, fd, offset);
}

/// Keeps a guest RAM mapping out of the embedding process's core dumps (a dump of a server
/// would hold every guest's memory) and out of its fork() children (a fork would copy the
/// page tables of gigabytes of guest RAM, and a child has no use for them).
pub fn adviseGuestMemory(m: Mapping) void {
    inline for (.{ linux.MADV.DONTDUMP, linux.MADV.DONTFORK }) |advice| {
        sys.madvise(m, advice) catch |err| log.warn("madvise({d}) on guest memory: {t}", .{ advice, err });
    }
}

/// The transparent huge page size KVM maps guest RAM with (x86_64 and arm64 with 4 KiB pages).
pub const huge_page: usize = 2 << 20;

/// Anonymous guest RAM for the `len` bytes at guest address `guest_addr`, advised
/// MADV_HUGEPAGE and placed so that host address ≡ guest address (mod 2 MiB). KVM maps a guest
/// page with one 2 MiB stage-2 / EPT entry only when the host backs it with a huge page *and*
/// the two addresses agree modulo 2 MiB (arm64 kvm/mmu.c fault_supports_stage2_huge_mapping,
/// x86 kvm_mmu_max_mapping_level); otherwise every 4 KiB the guest touches first is one exit
/// (the aarch64 bench: ~5,000 stage-2 aborts per boot against QEMU's ~700, which does the same
/// as this). The advice is about this mapping only: the process's other memory and the
/// system-wide THP setting (/sys/kernel/mm/transparent_hugepage/enabled) are not touched; with
/// THP "never" or not built in, the advice does nothing (EINVAL is ignored) and RAM is 4 KiB
/// pages as before. Cost: a guest's first touch of a 2 MiB block makes all of it resident
/// (zeroed), so a mostly idle guest's RSS grows in 2 MiB steps; MADV_DONTNEED of 4 KiB pieces
/// (balloon, free page reporting) still frees memory (the kernel splits the huge page).
/// NORESERVE: RAM the guest never touches costs no commit charge.
pub fn mapGuestRam(len: usize, guest_addr: u64) Error!Mapping {
    assert(len > 0 and len % page == 0 and guest_addr % page == 0);
    // Over-map by 2 MiB, then cut the head and tail so the congruence holds.
    const span = std.math.add(usize, len, huge_page) catch return error.OutOfMemory;
    const whole = sys.mmap(span, .{ .READ = true, .WRITE = true }, .{
        .TYPE = .PRIVATE,
        .ANONYMOUS = true,
        .NORESERVE = true,
    }, -1, 0) catch return error.OutOfMemory;
    const head = congruentOffset(@intFromPtr(whole.ptr), guest_addr);
    if (head > 0) sys.munmap(whole[0..head]);
    if (span - head - len > 0) sys.munmap(@alignCast(whole[head + len ..]));
    const m: Mapping = @alignCast(whole[head..][0..len]);
    // Not a warning: a kernel without THP answers EINVAL, and RAM simply stays 4 KiB pages.
    sys.madvise(m, linux.MADV.HUGEPAGE) catch |err| log.debug("madvise(MADV_HUGEPAGE) on guest RAM: {t}", .{err});
    return m;
}

/// The offset from `host` (page aligned) of the first address ≡ `guest` (mod 2 MiB): < 2 MiB.
pub fn congruentOffset(host: usize, guest: u64) usize {
    const want: usize = @intCast(guest % huge_page);
    return (want + huge_page - host % huge_page) % huge_page;
}

/// krun_set_kernel IMAGE_GZ: the gzip file at `path` inflated into anonymous memory placed as
/// guest RAM at `guest_addr` (mapGuestRam: 2 MiB congruent, huge pages), cut to whole pages;
/// the bytes after the Image up to the page end are zero. The file is read, not mapped (a
/// client truncating it under us gets a short read, not SIGBUS). A bad file is KernelInvalid
/// with the reason logged (krun_start_enter's -EINVAL carries it).
pub fn inflateFile(path: []const u8, guest_addr: u64) Error!Mapping {
    const fd = try openFile(path);
    defer sys.close(fd);
    const size = sys.fileSize(fd) catch return error.KernelInvalid;
    if (size == 0 or size > gunzip.kernel_bytes_max) {
        log.warn("kernel {s}: {d} bytes of gzip data (the limit is {d} MiB)", .{ path, size, gunzip.kernel_bytes_max >> 20 });
        return error.KernelInvalid;
    }
    const packed_len = std.mem.alignForward(usize, @intCast(size), page);
    const input = sys.mmap(packed_len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0) catch
        return error.OutOfMemory;
    defer sys.munmap(input);
    sys.preadAll(fd, input[0..@intCast(size)], 0) catch {
        log.warn("kernel {s}: cannot read its {d} bytes", .{ path, size });
        return error.KernelInvalid;
    };
    const out = try mapGuestRam(gunzip.kernel_bytes_max, guest_addr);
    const n = gunzip.decompress(input[0..@intCast(size)], out) catch |err| {
        sys.munmap(out);
        log.warn("kernel {s}: {s} (limit {d} MiB)", .{ path, gunzip.describe(err), gunzip.kernel_bytes_max >> 20 });
        return error.KernelInvalid;
    };
    if (n == 0) {
        sys.munmap(out);
        log.warn("kernel {s}: the gzip data decompresses to nothing", .{path});
        return error.KernelInvalid;
    }
    const len = std.mem.alignForward(usize, n, page);
    if (len < out.len) sys.munmap(@alignCast(out[len..]));
    return out[0..len];
}

/// Opens `path` and maps it privately (a RAW bundle file), rounded up to whole pages.
pub fn mapFile(path: []const u8) Error!Mapping {
    const fd = try openFile(path);
    defer sys.close(fd);
    const size = sys.fileSize(fd) catch return error.KernelInvalid;
    if (size == 0 or size > layout.mmio_gap_start) return error.KernelInvalid;
    return mapFilePrivate(fd, std.mem.alignForward(usize, size, page), 0) catch return error.OutOfMemory;
}

pub fn openFile(path: []const u8) Error!sys.fd_t {
    var path_z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (path.len > std.fs.max_path_bytes) return error.KernelNotFound;
    @memcpy(path_z[0..path.len], path);
    path_z[path.len] = 0;
    return sys.open(@ptrCast(&path_z), .{ .ACCMODE = .RDONLY, .CLOEXEC = true }) catch |err| {
        log.warn("cannot open {s}: {t}", .{ path, err });
        return switch (err) {
            error.MFILE, error.NFILE, error.NOMEM => error.SystemResources,
            else => error.KernelNotFound,
        };
    };
}

// ---- /proc/self/maps ----------------------------------------------------------------------

pub const Backing = struct {
    path: []const u8,
    offset: u64,
};

/// One line of /proc/self/maps: "start-end perms offset dev inode   path".
pub const MapsLine = struct {
    start: u64,
    end: u64,
    offset: u64,
    path: []const u8,

    pub fn parse(line: []const u8) ?MapsLine {
        var it = std.mem.tokenizeScalar(u8, line, ' ');
        const range = it.next() orelse return null;
        _ = it.next() orelse return null; // perms
        const offset = it.next() orelse return null;
        _ = it.next() orelse return null; // dev
        const inode = it.next() orelse return null;
        const dash = std.mem.indexOfScalar(u8, range, '-') orelse return null;
        const rest = std.mem.trimStart(u8, it.rest(), " ");
        if (std.mem.eql(u8, inode, "0") or rest.len == 0 or rest[0] != '/') return .{
            .start = std.fmt.parseInt(u64, range[0..dash], 16) catch return null,
            .end = std.fmt.parseInt(u64, range[dash + 1 ..], 16) catch return null,
            .offset = 0,
            .path = "",
        };
        return .{
            .start = std.fmt.parseInt(u64, range[0..dash], 16) catch return null,
            .end = std.fmt.parseInt(u64, range[dash + 1 ..], 16) catch return null,
            .offset = std.fmt.parseInt(u64, offset, 16) catch return null,
            .path = rest,
        };
    }
};

var maps_buf_lock: std.atomic.Mutex = .unlocked;
var maps_buf: [64 * 1024]u8 = undefined;
var path_buf: [std.fs.max_path_bytes]u8 = undefined;

/// The file and offset behind [addr, addr+len) if one file-backed mapping covers it all. The
/// returned path lives in a static buffer: callers hold it only until their next call, and
/// the lock keeps concurrent VM builds apart.
fn fileOf(addr: u64, len: u64) ?Backing {
    while (!maps_buf_lock.tryLock()) std.atomic.spinLoopHint();
    defer maps_buf_lock.unlock();
    const fd = sys.open("/proc/self/maps", .{ .ACCMODE = .RDONLY, .CLOEXEC = true }) catch return null;
    defer sys.close(fd);
    var filled: usize = 0;
    while (true) {
        const rc = sys.read(fd, maps_buf[filled..]) catch |err| switch (err) {
            error.INTR => continue,
            else => return null,
        };
        filled += rc;
        const eof = rc == 0;
        var start: usize = 0;
        while (std.mem.indexOfScalarPos(u8, maps_buf[0..filled], start, '\n')) |nl| : (start = nl + 1) {
            const m = MapsLine.parse(maps_buf[start..nl]) orelse continue;
            if (addr < m.start or addr >= m.end) continue;
            if (m.path.len == 0 or addr + len > m.end or m.path.len > path_buf.len) return null;
            @memcpy(path_buf[0..m.path.len], m.path);
            return .{ .path = path_buf[0..m.path.len], .offset = m.offset + (addr - m.start) };
        }
        if (eof) return null;
        // Keep the partial last line; a line longer than the buffer cannot be ours.
        std.mem.copyForwards(u8, maps_buf[0 .. filled - start], maps_buf[start..filled]);
        filled -= start;
        if (filled == maps_buf.len) return null;
    }
}

// ---- ELF vmlinux --------------------------------------------------------------------------

pub const Loaded = struct {
    entry: u64,
    /// First byte past the highest loaded segment.
    end: u64,
};

/// Copies the PT_LOAD segments of the vmlinux in `file` to their physical addresses in RAM.
pub fn loadElf(mem: *const GuestMemory, ram: *const layout.Ram, file: []const u8) Error!Loaded {
    var elf_file = elf.File.parse(file) catch |err| return invalidElf(err);
    const eh = elf_file.header;
    var loaded: Loaded = .{ .entry = 0, .end = 0 };
    var entry_found = false;
    while (elf_file.loads.next() catch |err| return invalidElf(err)) |ph| {
        if (ph.paddr < layout.himem_start or ram.ramContaining(ph.paddr, ph.memsz) == null) {
            log.warn("kernel segment 0x{x}+0x{x} is outside guest RAM", .{ ph.paddr, ph.memsz });
            return error.KernelInvalid;
        }
        const dest = mem.slice(ph.paddr, ph.memsz) catch return error.KernelInvalid;
        @memcpy(dest[0..ph.filesz], file[ph.offset..][0..ph.filesz]);
        @memset(dest[ph.filesz..], 0);
        loaded.end = @max(loaded.end, ph.paddr + ph.memsz);
        // e_entry is physical in a vmlinux; a virtual one is translated through its segment.
        if (eh.entry >= ph.paddr and eh.entry - ph.paddr < ph.memsz) {
            loaded.entry = eh.entry;
            entry_found = true;
        } else if (!entry_found and eh.entry >= ph.vaddr and eh.entry - ph.vaddr < ph.memsz) {
            loaded.entry = ph.paddr + (eh.entry - ph.vaddr);
            entry_found = true;
        }
    }
    if (!entry_found) {
        log.warn("kernel entry 0x{x} is in no loaded segment", .{eh.entry});
        return error.KernelInvalid;
    }
    return loaded;
}

fn invalidElf(err: elf.Error) Error {
    log.warn("kernel ELF: {t}", .{err});
    return error.KernelInvalid;
}

/// Where an initramfs of `size` bytes goes: page aligned at the top of the highest RAM range
/// below the MMIO gap, above `kernel_end`, and ending below what the arch writes at the end of
/// RAM after it (aarch64: the FDT's window). Both backends place it here (builder.zig through
/// loadInitramfs on KVM, hvf/Machine.zig on macOS).
pub fn placeInitramfs(ram: *const layout.Ram, size: u64, kernel_end: u64) ?layout.Range {
    return placeInitramfsIn(layout, ram, size, kernel_end);
}

/// placeInitramfs for any arch's layout `L` (its tests run for both on any host).
pub fn placeInitramfsIn(comptime L: type, ram: *const L.Ram, size: u64, kernel_end: u64) ?L.Range {
    if (size == 0) return null;
    const ceiling = L.initramfsCeiling(ram.end());
    var i = ram.count;
    while (i > 0) {
        i -= 1;
        if (ram.kernel_index != null and ram.kernel_index.? == i) continue;
        const r = ram.ranges[i];
        const top = @min(r.end(), ceiling);
        if (r.start >= L.mmio_gap_start or top <= r.start or size > top - r.start) continue;
        const start = std.mem.alignBackward(u64, top - size, page);
        if (start < r.start or start < kernel_end or start < L.himem_start) return null;
        return .{ .start = start, .len = size };
    }
    return null;
}

/// Guest RAM for a bundle kernel (libkrunfw's, or a krun_set_kernel RAW file) of `bundle`'s
/// size, checked by the arch first: the bundle as RAM's kernel range at `load_addr`, `ram_mib`
/// MiB of RAM after it, entered at `entry`. Both backends decide the layout here (builder.zig
/// on KVM, hvf/Machine.zig on macOS).
pub const BundlePlan = struct { ram: layout.Ram, entry: u64, kernel_end: u64 };

pub fn planBundle(bundle: []const u8, load_addr: u64, entry: u64, ram_mib: u32) Error!BundlePlan {
    try arch.checkKernel(bundle, ram_mib);
    const len = std.mem.alignForward(u64, bundle.len, layout.page_size);
    return .{ .ram = arch.ramWithKernel(ram_mib, load_addr, len), .entry = entry, .kernel_end = load_addr + len };
}

/// Reads the initramfs at `path` into guest RAM; returns where it went.
pub fn loadInitramfs(mem: *const GuestMemory, ram: *const layout.Ram, path: []const u8, kernel_end: u64) Error!layout.Range {
    const fd = try openFile(path);
    defer sys.close(fd);
    const size = sys.fileSize(fd) catch return error.KernelInvalid;
    const where = placeInitramfs(ram, size, kernel_end) orelse {
        log.warn("initramfs of {d} bytes does not fit in guest RAM", .{size});
        return error.KernelInvalid;
    };
    const dest = mem.slice(where.start, where.len) catch return error.KernelInvalid;
    sys.preadAll(fd, dest, 0) catch return error.KernelInvalid;
    return where;
}
