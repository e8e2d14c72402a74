//! kvm-smoke-aarch64: the smallest honest check that an arm64 /dev/kvm runs guest code (the
//! aarch64 test host's KVM), with numbers. One VM, one vCPU (KVM_ARM_PREFERRED_TARGET +
//! KVM_ARM_VCPU_INIT with PSCI 0.2), 64 KiB of guest RAM at 0x8000_0000 (libkrun's DRAM base)
//! holding the guest code below, PC/X0/X5/X6 set with KVM_SET_ONE_REG. The guest:
//!   stores 42 to MMIO +0 (a write exit), loads MMIO +4 (a read exit: the host supplies the value),
//!   stores that value + 1 to +8, sums 1..N in a loop and stores the 64-bit sum to +16, makes M
//!   one-byte stores to +24 (timed: the exit round trip), then calls PSCI SYSTEM_OFF with HVC,
//!   which KVM handles in the kernel and reports as a SYSTEM_EVENT exit.
//! Every value is checked by what the host sees. Usage: kvm-smoke-aarch64 [--loop N] [--exits M]
//! Prints "ok ..."/"FAIL ..." lines and "N passed, N failed"; exit status 0 only if all passed.
//! Built by `zig build test-guests` (aarch64-linux, static), which tests/host/build-kvm-smoke-aarch64.sh runs.
const std = @import("std");
const linux = std.os.linux;

const ram_base: u64 = 0x8000_0000;
const ram_size: usize = 64 * 1024;
const mmio_base: u64 = 0x1000_0000; // unmapped: every access to it exits to us
const read_value: u32 = 0x1234;

// KVM ABI (include/uapi/linux/kvm.h, arch/arm64/include/uapi/asm/kvm.h).
const KVM_GET_API_VERSION = 0xAE00;
const KVM_CREATE_VM = 0xAE01;
const KVM_GET_VCPU_MMAP_SIZE = 0xAE04;
const KVM_CREATE_VCPU = 0xAE41;
const KVM_SET_USER_MEMORY_REGION = 0x4020AE46;
const KVM_RUN = 0xAE80;
const KVM_SET_ONE_REG = 0x4010AEAC;
const KVM_ARM_VCPU_INIT = 0x4020AEAE;
const KVM_ARM_PREFERRED_TARGET = 0x8020AEAF;
const KVM_ARM_VCPU_PSCI_0_2 = 2;
const KVM_EXIT_MMIO = 6;
const KVM_EXIT_SYSTEM_EVENT = 24;
const KVM_SYSTEM_EVENT_SHUTDOWN = 1;
// KVM_REG_ARM64 | KVM_REG_SIZE_U64 | KVM_REG_ARM_CORE | (offset in struct kvm_regs / 4).
fn coreReg(offset_bytes: u64) u64 {
    return 0x6030_0000_0010_0000 | (offset_bytes / 4);
}
fn xReg(n: u64) u64 {
    return coreReg(n * 8);
}
const reg_pc = coreReg(32 * 8); // user_pt_regs: regs[31], sp, pc, pstate

const VcpuInit = extern struct { target: u32, features: [7]u32 };
const OneReg = extern struct { id: u64, addr: u64 };
const MemoryRegion = extern struct { slot: u32, flags: u32, guest_phys_addr: u64, memory_size: u64, userspace_addr: u64 };
const RunMmio = extern struct { phys_addr: u64, data: [8]u8, len: u32, is_write: u8 };
const RunSystemEvent = extern struct { type: u32, ndata: u32, data: [16]u64 };
// struct kvm_run: the exit union starts at byte 32.
const run_exit_reason_offset = 8;
const run_union_offset = 32;

comptime {
    std.debug.assert(@sizeOf(VcpuInit) == 32);
    std.debug.assert(@sizeOf(MemoryRegion) == 32);
    std.debug.assert(@offsetOf(RunMmio, "is_write") == 20);
}

// The guest, assembled with this program (it is aarch64 code too) and copied into guest RAM.
// X0 = MMIO base, X5 = N, X6 = M on entry. Position independent.
comptime {
    asm (
        \\ .section .rodata.zk_guest,"a"
        \\ .p2align 2
        \\ .global zk_guest_start
        \\ .global zk_guest_end
        \\ zk_guest_start:
        \\   mov w1, #42
        \\   str w1, [x0]
        \\   ldr w2, [x0, #4]
        \\   add w2, w2, #1
        \\   str w2, [x0, #8]
        \\   mov x3, #0
        \\   mov x4, #1
        \\ 1:
        \\   add x3, x3, x4
        \\   add x4, x4, #1
        \\   cmp x4, x5
        \\   b.ls 1b
        \\   str x3, [x0, #16]
        \\ 2:
        \\   cbz x6, 3f
        \\   strb w1, [x0, #24]
        \\   sub x6, x6, #1
        \\   b 2b
        \\ 3:
        \\   movz x0, #0x0008
        \\   movk x0, #0x8400, lsl #16
        \\   hvc #0
        \\   b .
        \\ zk_guest_end:
        \\ .text
    );
}
extern const zk_guest_start: u8;
extern const zk_guest_end: u8;

var passed: u32 = 0;
var failed: u32 = 0;

fn check(ok: bool, comptime fmt: []const u8, args: anytype) void {
    std.debug.print("{s}", .{if (ok) "ok   " else "FAIL "});
    std.debug.print(fmt ++ "\n", args);
    if (ok) passed += 1 else failed += 1;
}

fn sysErr(rc: usize) ?linux.E {
    const e = linux.errno(rc);
    return if (e == .SUCCESS) null else e;
}

fn ioctl(fd: i32, req: u32, arg: usize) !usize {
    while (true) {
        const rc = linux.ioctl(fd, req, arg);
        if (sysErr(rc)) |e| {
            if (e == .INTR) continue;
            std.debug.print("ioctl 0x{x} failed: {s}\n", .{ req, @tagName(e) });
            return error.Ioctl;
        }
        return rc;
    }
}

fn setReg(vcpu: i32, id: u64, value: u64) !void {
    var v = value;
    const r = OneReg{ .id = id, .addr = @intFromPtr(&v) };
    _ = try ioctl(vcpu, KVM_SET_ONE_REG, @intFromPtr(&r));
}

fn nowNs() u64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
}

const Options = struct { loop: u64 = 10_000_000, exits: u64 = 2000 };

fn parseArgs(args: std.process.Args) !Options {
    var o = Options{};
    var it = args.iterate();
    _ = it.next();
    while (it.next()) |a| {
        const v = it.next() orelse return error.Usage;
        const n = std.fmt.parseInt(u64, v, 10) catch return error.Usage;
        if (std.mem.eql(u8, a, "--loop") and n >= 1 and n <= 1 << 40) {
            o.loop = n;
        } else if (std.mem.eql(u8, a, "--exits") and n <= 10_000_000) {
            o.exits = n;
        } else return error.Usage;
    }
    return o;
}

pub fn main(init: std.process.Init.Minimal) u8 {
    const o = parseArgs(init.args) catch {
        std.debug.print("usage: kvm-smoke-aarch64 [--loop N>=1] [--exits M]\n", .{});
        return 2;
    };
    run(o) catch |e| check(false, "setup: {s}", .{@errorName(e)});
    std.debug.print("{d} passed, {d} failed\n", .{ passed, failed });
    return if (failed == 0 and passed > 0) 0 else 1;
}

fn run(o: Options) !void {
    const kvm_rc = linux.open("/dev/kvm", .{ .ACCMODE = .RDWR, .CLOEXEC = true }, 0);
    if (sysErr(kvm_rc)) |e| {
        check(false, "open /dev/kvm: {s}", .{@tagName(e)});
        return;
    }
    const kvm: i32 = @intCast(kvm_rc);
    check(try ioctl(kvm, KVM_GET_API_VERSION, 0) == 12, "KVM API version 12", .{});
    const vm: i32 = @intCast(try ioctl(kvm, KVM_CREATE_VM, 0));

    const mem_rc = linux.mmap(null, ram_size, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true }, -1, 0);
    if (sysErr(mem_rc) != null) return error.Mmap;
    const mem: [*]u8 = @ptrFromInt(mem_rc);
    const code_start: [*]const u8 = @ptrCast(&zk_guest_start);
    const code_len = @intFromPtr(&zk_guest_end) - @intFromPtr(&zk_guest_start);
    @memcpy(mem[0..code_len], code_start[0..code_len]);
    const region = MemoryRegion{ .slot = 0, .flags = 0, .guest_phys_addr = ram_base, .memory_size = ram_size, .userspace_addr = mem_rc };
    _ = try ioctl(vm, KVM_SET_USER_MEMORY_REGION, @intFromPtr(&region));

    const vcpu: i32 = @intCast(try ioctl(vm, KVM_CREATE_VCPU, 0));
    var vinit: VcpuInit = std.mem.zeroes(VcpuInit);
    _ = try ioctl(vm, KVM_ARM_PREFERRED_TARGET, @intFromPtr(&vinit));
    vinit.features[0] |= 1 << KVM_ARM_VCPU_PSCI_0_2;
    _ = try ioctl(vcpu, KVM_ARM_VCPU_INIT, @intFromPtr(&vinit));
    check(true, "VM and vCPU created (preferred target {d}, PSCI 0.2), {d} bytes of guest code at 0x{x}", .{ vinit.target, code_len, ram_base });

    try setReg(vcpu, reg_pc, ram_base);
    try setReg(vcpu, xReg(0), mmio_base);
    try setReg(vcpu, xReg(5), o.loop);
    try setReg(vcpu, xReg(6), o.exits);

    const run_size = try ioctl(kvm, KVM_GET_VCPU_MMAP_SIZE, 0);
    const run_rc = linux.mmap(null, run_size, .{ .READ = true, .WRITE = true }, .{ .TYPE = .SHARED }, vcpu, 0);
    if (sysErr(run_rc) != null) return error.Mmap;
    const run_page: [*]u8 = @ptrFromInt(run_rc);
    const exit_reason: *volatile u32 = @ptrCast(@alignCast(run_page + run_exit_reason_offset));
    const mmio: *volatile RunMmio = @ptrCast(@alignCast(run_page + run_union_offset));

    var writes: [4]?u64 = .{ null, null, null, null };
    var reads: u32 = 0;
    var byte_exits: u64 = 0;
    var first_byte_ns: u64 = 0;
    var last_byte_ns: u64 = 0;
    var loop_start_ns: u64 = 0;
    var loop_ns: u64 = 0;
    var exits: u64 = 0;
    const limit = o.exits + 100;
    while (exits < limit) : (exits += 1) {
        _ = try ioctl(vcpu, KVM_RUN, 0);
        const now = nowNs();
        switch (exit_reason.*) {
            KVM_EXIT_MMIO => {
                const off = mmio.phys_addr -% mmio_base;
                if (mmio.is_write == 0) {
                    reads += 1;
                    std.mem.writeInt(u32, @volatileCast(mmio.data[0..4]), read_value, .little);
                    continue;
                }
                const len = @min(mmio.len, 8);
                var buf: [8]u8 = @splat(0);
                @memcpy(buf[0..len], @volatileCast(mmio.data[0..len]));
                const value = std.mem.readInt(u64, &buf, .little);
                switch (off) {
                    0, 8, 16 => writes[off / 8] = value,
                    24 => {
                        if (byte_exits == 0) first_byte_ns = now;
                        last_byte_ns = now;
                        byte_exits += 1;
                    },
                    else => check(false, "unexpected MMIO write at +0x{x}", .{off}),
                }
                if (off == 8) loop_start_ns = now;
                if (off == 16) loop_ns = now - loop_start_ns;
            },
            KVM_EXIT_SYSTEM_EVENT => {
                const ev: *volatile RunSystemEvent = @ptrCast(@alignCast(run_page + run_union_offset));
                check(ev.type == KVM_SYSTEM_EVENT_SHUTDOWN, "PSCI SYSTEM_OFF came out as a SYSTEM_EVENT exit of type SHUTDOWN (type {d})", .{ev.type});
                break;
            },
            else => |r| {
                check(false, "unexpected exit reason {d}", .{r});
                return;
            },
        }
    } else check(false, "the guest did not power off within {d} exits", .{limit});

    check(writes[0] == 42, "MMIO write of 42 at +0 (got {?d})", .{writes[0]});
    check(reads == 1, "one MMIO read at +4 (got {d})", .{reads});
    check(writes[1] == read_value + 1, "the guest echoed the read value + 1 (got {?x})", .{writes[1]});
    const want = o.loop * (o.loop + 1) / 2;
    check(writes[2] == want, "sum 1..{d} = {d} in a 64-bit MMIO write (got {?d}); loop took {d} ms", .{ o.loop, want, writes[2], loop_ns / std.time.ns_per_ms });
    check(byte_exits == o.exits, "{d} byte-write exits (got {d})", .{ o.exits, byte_exits });
    if (byte_exits > 1) {
        const per = (last_byte_ns - first_byte_ns) / (byte_exits - 1);
        std.debug.print("bench mmio_exit_round_trip_us {d}.{d:0>3}\n", .{ per / 1000, per % 1000 });
    }
}
