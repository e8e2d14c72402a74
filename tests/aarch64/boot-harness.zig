//! aarch64-boot: boots an arm64 Image on KVM the way the aarch64 backend will (run inside the
//! aarch64 test host): RAM at 0x8000_0000 with the Image at its start, the device tree from
//! vmm/aarch64/devicetree.zig at the end of RAM, the in-kernel GICv3, one vCPU initialized with PSCI
//! and entered per the arm64 boot protocol (x0 = FDT). The only device is the ns16550a the tree
//! names (libkrun's aarch64 serial port): transmit bytes go to stdout, the line status always
//! says "empty", the rest are plain registers; every other MMIO access reads as zero.
//! Ends at the guest's PSCI SYSTEM_OFF/SYSTEM_RESET (a SYSTEM_EVENT exit) or after --timeout.
//! Usage: aarch64-boot IMAGE [--mem MIB] [--timeout SECS] [--append CMDLINE]
//! Prints the console, then "aarch64-boot: system_event TYPE after N exits in T ms" (exit 0) or
//! "aarch64-boot: FAIL ..." (exit 1).
//! Built by `zig build aarch64-boot` (zig-out/aarch64-linux/bin/aarch64-boot), which
//! tests/aarch64/10-boot.prepare.sh runs; it reaches vmm/aarch64/ through the `zkrun` module.
const std = @import("std");
const linux = std.os.linux;
const vmm = @import("zkrun").vmm.aarch64;
const kvm = vmm.kvm_arm;
const layout = vmm.layout;

const Options = struct {
    image: [*:0]const u8 = undefined,
    mem_mib: u64 = 256,
    timeout_s: u32 = 120,
    append: []const u8 = "console=ttyS0 earlycon=uart8250,mmio,0x40000000 panic=-1",
};

var timed_out = std.atomic.Value(bool).init(false);
fn onAlarm(_: linux.SIG) callconv(.c) void {
    timed_out.store(true, .release);
}

fn fail(comptime fmt: []const u8, args: anytype) u8 {
    std.debug.print("aarch64-boot: FAIL " ++ fmt ++ "\n", args);
    return 1;
}

fn out(bytes: []const u8) void {
    _ = linux.write(1, bytes.ptr, bytes.len);
}

pub fn main(init: std.process.Init.Minimal) u8 {
    var o = Options{};
    const argv = init.args.vector;
    if (argv.len < 2) return fail("usage: aarch64-boot IMAGE [--mem MIB] [--timeout SECS] [--append CMDLINE]", .{});
    o.image = argv[1];
    var i: usize = 2;
    while (i + 1 < argv.len) : (i += 2) {
        const k = std.mem.span(argv[i]);
        const v = std.mem.span(argv[i + 1]);
        if (std.mem.eql(u8, k, "--mem")) {
            o.mem_mib = std.fmt.parseInt(u64, v, 10) catch return fail("bad --mem", .{});
        } else if (std.mem.eql(u8, k, "--timeout")) {
            o.timeout_s = std.fmt.parseInt(u32, v, 10) catch return fail("bad --timeout", .{});
        } else if (std.mem.eql(u8, k, "--append")) {
            o.append = v;
        } else return fail("unknown option {s}", .{k});
    }
    if (o.mem_mib < 64 or o.mem_mib > 4096) return fail("--mem must be 64..4096", .{});
    return run(o) catch |e| fail("{s} (errno {s})", .{ @errorName(e), @tagName(kvm.last_errno) });
}

fn run(o: Options) !u8 {
    const ram_size: u64 = o.mem_mib << 20;
    const ram_rc = linux.mmap(null, ram_size, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
    if (linux.errno(ram_rc) != .SUCCESS) return error.MmapRam;
    const ram: [*]u8 = @ptrFromInt(ram_rc);

    // The Image at the start of RAM.
    const fd_rc = linux.open(o.image, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0);
    if (linux.errno(fd_rc) != .SUCCESS) return error.OpenImage;
    const img_fd: linux.fd_t = @intCast(fd_rc);
    var loaded: usize = 0;
    const max_image = layout.fdtAddr(ram_size) - layout.dram_start;
    while (true) {
        if (loaded >= max_image) return error.ImageTooLarge;
        const n = linux.read(img_fd, ram + loaded, max_image - loaded);
        if (linux.errno(n) != .SUCCESS) return error.ReadImage;
        if (n == 0) break;
        loaded += n;
    }
    _ = linux.close(img_fd);
    if (loaded < 64 or std.mem.readInt(u32, ram[0x38..0x3c], .little) != 0x644d5241) return error.NotAnArm64Image;

    // The device tree at the end of RAM.
    const vcpus = 1;
    const serial = vmm.devicetree.Device{ .base = layout.slotBase(layout.serial_slot), .size = layout.device_slot_size, .spi = layout.spi_base + layout.serial_slot };
    var fdt: vmm.Fdt = .{};
    const fdt_addr = layout.fdtAddr(ram_size);
    const fdt_off = fdt_addr - layout.dram_start;
    const blob = try vmm.devicetree.write(.{
        .ram_base = layout.dram_start,
        .ram_size = ram_size,
        .vcpus = vcpus,
        .gic_dist_base = layout.gic_dist_base,
        .gic_dist_size = layout.gic_dist_size,
        .gic_redist_base = layout.gicRedistBase(vcpus),
        .gic_redist_size = layout.gic_redist_size_per_cpu * vcpus,
        .serial = serial,
        .cmdline = o.append,
    }, &fdt, ram[fdt_off..][0..layout.fdt_max_size]);

    // VM, memory, vCPU, GIC, boot registers.
    const kvm_rc = linux.open("/dev/kvm", .{ .ACCMODE = .RDWR, .CLOEXEC = true }, 0);
    if (linux.errno(kvm_rc) != .SUCCESS) return error.OpenDevKvm;
    const kvm_fd: linux.fd_t = @intCast(kvm_rc);
    const vm: linux.fd_t = @intCast(try kvm.ioctl(kvm_fd, kvm.KVM_CREATE_VM, 0));
    const region = kvm.MemoryRegion{ .slot = 0, .flags = 0, .guest_phys_addr = layout.dram_start, .memory_size = ram_size, .userspace_addr = ram_rc };
    _ = try kvm.ioctl(vm, kvm.KVM_SET_USER_MEMORY_REGION, @intFromPtr(&region));
    const vcpu: linux.fd_t = @intCast(try kvm.ioctl(vm, kvm.KVM_CREATE_VCPU, 0));
    try kvm.initVcpu(vm, vcpu, true);
    const gic = try kvm.createGicV3(vm, layout.gic_dist_base, layout.gicRedistBase(vcpus), 128);
    try kvm.initGic(gic);
    try kvm.setBootRegs(vcpu, layout.kernel_start, fdt_addr);
    std.debug.print("aarch64-boot: Image {d} bytes at 0x{x}, FDT {d} bytes at 0x{x}, {d} MiB RAM, GICv3, 1 vCPU\n", .{ loaded, layout.kernel_start, blob.len, fdt_addr, o.mem_mib });

    const run_size = try kvm.ioctl(kvm_fd, kvm.KVM_GET_VCPU_MMAP_SIZE, 0);
    const run_rc = linux.mmap(null, run_size, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, vcpu, 0);
    if (linux.errno(run_rc) != .SUCCESS) return error.MmapRun;
    const run_page: [*]u8 = @ptrFromInt(run_rc);
    const exit_reason: *volatile u32 = @ptrCast(@alignCast(run_page + kvm.run_exit_reason_offset));
    const mmio: *volatile kvm.RunMmio = @ptrCast(@alignCast(run_page + kvm.run_union_offset));

    // The time limit: SIGALRM (no SA_RESTART) makes KVM_RUN return EINTR.
    var sa: linux.Sigaction = .{ .handler = .{ .handler = onAlarm }, .mask = std.mem.zeroes(linux.sigset_t), .flags = 0 };
    _ = linux.sigaction(.ALRM, &sa, null);
    const itv = linux.itimerspec{ .it_interval = .{ .sec = 0, .nsec = 0 }, .it_value = .{ .sec = o.timeout_s, .nsec = 0 } };
    _ = linux.setitimer(@backingInt(linux.ITIMER.REAL), &itv, null);

    var uart = Uart{};
    var exits: u64 = 0;
    var t0: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &t0);
    while (true) {
        const rc = linux.ioctl(vcpu, kvm.KVM_RUN, 0);
        if (timed_out.load(.acquire)) {
            uart.flush();
            return fail("no PSCI power-off within {d} s ({d} exits)", .{ o.timeout_s, exits });
        }
        switch (linux.errno(rc)) {
            .SUCCESS => {},
            .INTR, .AGAIN => continue,
            else => |e| return fail("KVM_RUN: {s}", .{@tagName(e)}),
        }
        exits += 1;
        switch (exit_reason.*) {
            kvm.KVM_EXIT_MMIO => {
                const addr = mmio.phys_addr;
                const len = @min(mmio.len, 8);
                if (addr >= serial.base and addr < serial.base + 8) {
                    const reg: u3 = @intCast(addr - serial.base);
                    if (mmio.is_write != 0) uart.write(reg, mmio.data[0]) else {
                        @memset(@volatileCast(mmio.data[0..8]), 0);
                        mmio.data[0] = uart.read(reg);
                    }
                } else if (mmio.is_write == 0) @memset(@volatileCast(mmio.data[0..len]), 0);
            },
            kvm.KVM_EXIT_SYSTEM_EVENT => {
                uart.flush();
                const ev: *volatile kvm.RunSystemEvent = @ptrCast(@alignCast(run_page + kvm.run_union_offset));
                var t1: linux.timespec = undefined;
                _ = linux.clock_gettime(.MONOTONIC, &t1);
                const ms = (t1.sec - t0.sec) * 1000 + @divTrunc(t1.nsec - t0.nsec, 1_000_000);
                const name = switch (ev.type) {
                    kvm.KVM_SYSTEM_EVENT_SHUTDOWN => "shutdown",
                    kvm.KVM_SYSTEM_EVENT_RESET => "reset",
                    else => "other",
                };
                std.debug.print("aarch64-boot: system_event {s} after {d} exits in {d} ms\n", .{ name, exits, ms });
                return 0;
            },
            else => |r| {
                uart.flush();
                const pc = kvm.getReg(vcpu, kvm.reg_pc) catch 0;
                return fail("exit reason {d} at pc 0x{x}", .{ r, pc });
            },
        }
    }
}

/// Just enough 16550 for the kernel's earlycon and 8250 console: THR/DLL, IER/DLM, IIR/FCR, LCR,
/// MCR, LSR, MSR, SCR; DLAB (LCR bit 7) switches offsets 0/1 to the divisor latch.
const Uart = struct {
    regs: [8]u8 = @splat(0),
    dll: u8 = 0,
    dlm: u8 = 0,
    line: [256]u8 = undefined,
    len: usize = 0,

    fn write(u: *Uart, reg: u3, v: u8) void {
        const dlab = u.regs[3] & 0x80 != 0;
        switch (reg) {
            0 => if (dlab) {
                u.dll = v;
            } else {
                u.line[u.len] = v;
                u.len += 1;
                if (v == '\n' or u.len == u.line.len) u.flush();
            },
            1 => if (dlab) {
                u.dlm = v;
            } else {
                u.regs[1] = v;
            },
            else => u.regs[reg] = v,
        }
    }

    fn read(u: *Uart, reg: u3) u8 {
        const dlab = u.regs[3] & 0x80 != 0;
        return switch (reg) {
            0 => if (dlab) u.dll else 0,
            1 => if (dlab) u.dlm else u.regs[1],
            2 => 0xc1, // FIFOs enabled, no interrupt pending
            5 => 0x60, // THR empty, transmitter empty
            6 => 0xb0, // CTS, DSR, DCD
            else => u.regs[reg],
        };
    }

    fn flush(u: *Uart) void {
        out(u.line[0..u.len]);
        u.len = 0;
    }
};
