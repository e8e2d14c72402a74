//! One vCPU: its thread and the KVM_RUN loop that turns exits into bus accesses (PIO → legacy
//! devices on x86_64, MMIO → virtio transports and aarch64's serial) or into the end of the VM
//! (i8042 reset, triple fault, system events such as PSCI SYSTEM_OFF/RESET, entry failures,
//! emulation errors). Its boot state is the arch backend's
//! (vmm/arch.zig: setupVcpu), set by the builder.
//!
//! Stopping: `Control.finish` records the first outcome and wakes the waiter; `kick` sets
//! `immediate_exit` and signals the thread, so a vCPU inside (or about to enter) KVM_RUN leaves
//! it with EINTR and sees `stopping`. Nothing here allocates once the thread runs.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const abi = @import("kvm_abi.zig");
const kvm = @import("kvm.zig");
const sys = @import("../sys/linux.zig");
const Notifier = @import("Notifier.zig");
const Pio = @import("legacy/Pio.zig");
const arch = @import("arch.zig").current;
const MmioBus = @import("MmioBus.zig");
const Pause = @import("Pause.zig");

const log = std.log.scoped(.vmm);

const Vcpu = @This();

pub const Outcome = enum(u8) {
    /// Keep running (internal to the loop; never recorded).
    running = 0,
    /// The guest rebooted (i8042 0xFE with reboot=k, KVM reset event).
    reset,
    /// The guest powered off (KVM shutdown event or HLT with no irqchip to wake it).
    poweroff,
    /// KVM could not run the guest (entry failure, emulation failure, unexpected errno).
    failure,
    /// The host asked the VM to stop.
    stopped,
    /// A vCPU triple-faulted (KVM_EXIT_SHUTDOWN): the guest crashed past its own handlers.
    triple_fault,
    /// The guest's panic path reset it warm (aarch64: PSCI SYSTEM_RESET2, `reboot=panic_warm`).
    panic_reset,
};

/// State the vCPUs of one VM share with the machine.
pub const Control = struct {
    /// The arch's port-I/O bus (vmm/arch.zig: LegacyBus).
    pio: *arch.LegacyBus,
    mmio: *MmioBus,
    /// Signalled once when the first outcome is recorded.
    exit_evt: Notifier,
    stopping: std.atomic.Value(bool) = .init(false),
    outcome: std.atomic.Value(Outcome) = .init(.running),
    /// Monotonic ns of the first KVM_RUN of any vCPU (0 until then), for the setup bench.
    first_run_ns: std.atomic.Value(i64) = .init(0),
    /// krun_vm_pause / krun_vm_resume: the run loop parks here while the VM is paused.
    pause: Pause = .{},

    /// Records `outcome` if none was recorded yet, and wakes whoever waits for the VM.
    pub fn finish(self: *Control, outcome: Outcome) void {
        assert(outcome != .running); // tidy: vCPU state, ours
        if (self.outcome.cmpxchgStrong(.running, outcome, .acq_rel, .acquire) == null) {
            self.exit_evt.signal();
        }
        // seq_cst pairs with the vCPU's tid store / stopping load (store→load ordering).
        self.stopping.store(true, .seq_cst);
    }
};

index: u32,
fd: kvm.VcpuFd,
control: *Control,
thread: ?std.Thread = null,
/// Kernel thread id while the loop runs (0 before/after), the target of `kick`.
tid: std.atomic.Value(i32) = .init(0),
/// KVM exits so far: written by this vCPU's thread only, read live by krun_get_stats.
exits: std.atomic.Value(u64) = .init(0),

// ---- kicking a vCPU out of KVM_RUN --------------------------------------------------------

extern "c" fn __libc_current_sigrtmin() c_int;

var kick_installed: std.atomic.Value(bool) = .init(false);

/// libkrun's choice: the first real-time signal the C library leaves to applications.
pub fn kickSignal() linux.SIG {
    return @fromBackingInt(@as(u32, @intCast(__libc_current_sigrtmin())));
}

fn kickHandler(_: linux.SIG) callconv(.c) void {}

/// Installs the (empty) kick handler once per process. No SA_RESTART: KVM_RUN must see EINTR.
pub fn installKickHandler() void {
    if (kick_installed.swap(true, .acq_rel)) return;
    var act: linux.Sigaction = .{
        .handler = .{ .handler = kickHandler },
        .mask = linux.sigemptyset(),
        .flags = 0,
    };
    const rc = linux.sigaction(kickSignal(), &act, null);
    assert(linux.errno(rc) == .SUCCESS); // tidy: signals to our own threads
}

pub fn kick(self: *Vcpu) void {
    self.fd.kvmRun().immediate_exit = 1;
    const tid = self.tid.load(.seq_cst);
    if (tid != 0) sys.tgkill(tid, kickSignal());
}

// ---- the run loop -------------------------------------------------------------------------

pub fn spawn(self: *Vcpu) std.Thread.SpawnError!void {
    assert(self.thread == null); // tidy: vCPU state, ours
    self.thread = try std.Thread.spawn(.{ .stack_size = 1024 * 1024 }, threadMain, .{self});
}

pub fn join(self: *Vcpu) void {
    if (self.thread) |t| t.join();
    self.thread = null;
}

fn threadMain(self: *Vcpu) void {
    var set = linux.sigemptyset();
    linux.sigaddset(&set, kickSignal());
    _ = linux.sigprocmask(linux.SIG.UNBLOCK, &set, null);
    self.tid.store(sys.gettid(), .seq_cst);
    defer self.tid.store(0, .seq_cst);
    const outcome = self.runLoop();
    if (outcome != .running) self.control.finish(outcome);
}

fn runLoop(self: *Vcpu) Outcome {
    const run = self.fd.kvmRun();
    if (self.index == 0) {
        _ = self.control.first_run_ns.cmpxchgStrong(0, @intCast(sys.nowNs()), .monotonic, .monotonic);
    }
    while (!self.control.stopping.load(.seq_cst)) {
        self.control.pause.parkVcpu(&run.immediate_exit);
        self.fd.run() catch |err| switch (err) {
            error.INTR, error.AGAIN => continue,
            else => {
                log.err("vCPU {d}: KVM_RUN failed: {t}", .{ self.index, err });
                return .failure;
            },
        };
        self.exits.store(self.exits.load(.monotonic) + 1, .monotonic); // one writer: no RMW
        const outcome = handleExit(run, self.fd.mapping, self.control.pio, self.control.mmio, self.index);
        if (outcome == .triple_fault or outcome == .failure) arch.logCrashState(self.fd, self.index, @tagName(outcome), self.exits.load(.monotonic));
        if (outcome != .running) return outcome;
    }
    return .running;
}

/// Handles one exit. `run_page` is the whole kvm_run mapping (PIO data lives inside it).
/// Generic over the buses so unit tests drive it with a plain buffer.
pub fn handleExit(run: *volatile abi.kvm_run, run_page: []u8, pio: anytype, mmio: anytype, index: u32) Outcome {
    const reason: abi.Exit = @fromBackingInt(run.exit_reason);
    switch (reason) {
        .io => return if (comptime arch.has_pio) handleIo(run, run_page, pio) else .failure,
        .mmio => {
            const m = run.exit.mmio;
            if (m.len == 0 or m.len > 8) return .running;
            if (m.is_write != 0) {
                mmio.write(m.phys_addr, m.data[0..m.len]);
            } else {
                var data: [8]u8 = @splat(0);
                mmio.read(m.phys_addr, data[0..m.len]);
                for (data[0..m.len], 0..) |b, i| run.exit.mmio.data[i] = b;
            }
            return .running;
        },
        .hlt => return .poweroff,
        .shutdown => return .triple_fault,
        .system_event => return switch (run.exit.system_event.type) {
            abi.KVM_SYSTEM_EVENT_SHUTDOWN => .poweroff,
            abi.KVM_SYSTEM_EVENT_RESET => if (warmReset(run.exit.system_event)) .panic_reset else .reset,
            else => .failure,
        },
        .fail_entry => {
            log.err("vCPU {d}: entry failed, hardware reason 0x{x}", .{ index, run.exit.fail_entry.hardware_entry_failure_reason });
            return .failure;
        },
        .internal_error => {
            const e = run.exit.internal;
            log.err("vCPU {d}: KVM internal error, suberror {d}, data {any}", .{ index, e.suberror, e.data[0..@min(e.ndata, 4)] });
            return .failure;
        },
        .intr, .irq_window_open => return .running,
        else => {
            log.err("vCPU {d}: unhandled exit reason {d}", .{ index, run.exit_reason });
            return .failure;
        },
    }
}

/// A reset event whose flags say PSCI SYSTEM_RESET2 (only arm64 KVM sets them).
fn warmReset(ev: abi.ExitSystemEvent) bool {
    return ev.ndata >= 1 and ev.ndata <= ev.data.len and ev.data[0] & arch.reset_flag_psci_reset2 != 0;
}

fn handleIo(run: *volatile abi.kvm_run, run_page: []u8, pio: anytype) Outcome {
    const io = run.exit.io;
    const size: usize = io.size;
    if (size != 1 and size != 2 and size != 4) return .running;
    const total = std.math.mul(usize, size, io.count) catch return .failure;
    if (io.data_offset > run_page.len or total > run_page.len - io.data_offset) return .failure;
    const data = run_page[@intCast(io.data_offset)..][0..total];
    var i: usize = 0;
    while (i < total) : (i += size) {
        const unit = data[i..][0..size];
        if (io.direction == abi.KVM_EXIT_IO_OUT) {
            if (pio.write(io.port, unit) == .reset) return .reset;
        } else {
            pio.read(io.port, unit);
        }
    }
    return .running;
}

const testing = std.testing;

const FakePio = struct {
    last_port: u16 = 0,
    written: [16]u8 = @splat(0),
    n: usize = 0,
    pub fn read(_: *FakePio, port: u16, data: []u8) void {
        @memset(data, @truncate(port));
    }
    pub fn write(self: *FakePio, port: u16, data: []const u8) Pio.Action {
        self.last_port = port;
        for (data) |b| {
            self.written[self.n] = b;
            self.n += 1;
        }
        return if (port == 0x64 and data[0] == 0xfe) .reset else .none;
    }
};

test "exit handling: PIO in/out/string, i8042 reset, MMIO read/write, terminal exits" {
    var page: [4096]u8 align(4096) = @splat(0);
    const run: *volatile abi.kvm_run = @ptrCast(&page);
    var pio: FakePio = .{};
    var bus: MmioBus = .{};

    run.exit_reason = @backingInt(abi.Exit.io);
    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_OUT, .size = 1, .port = 0x3f8, .count = 3, .data_offset = 1024 };
    @memcpy(page[1024..1027], "abc");
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));
    try testing.expectEqualStrings("abc", pio.written[0..3]);

    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_IN, .size = 2, .port = 0x71, .count = 1, .data_offset = 2000 };
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));
    try testing.expectEqual([2]u8{ 0x71, 0x71 }, page[2000..2002].*);

    page[1024] = 0xfe;
    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_OUT, .size = 1, .port = 0x64, .count = 1, .data_offset = 1024 };
    try testing.expectEqual(Outcome.reset, handleExit(run, &page, &pio, &bus, 0));

    // Hostile/corrupt offsets and sizes never index outside the page.
    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_OUT, .size = 4, .port = 0x80, .count = 2, .data_offset = 4090 };
    try testing.expectEqual(Outcome.failure, handleExit(run, &page, &pio, &bus, 0));
    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_OUT, .size = 4, .port = 0x80, .count = 0xffffffff, .data_offset = 0 };
    try testing.expectEqual(Outcome.failure, handleExit(run, &page, &pio, &bus, 0));
    run.exit.io = .{ .direction = abi.KVM_EXIT_IO_OUT, .size = 3, .port = 0x80, .count = 1, .data_offset = 0 };
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));

    run.exit_reason = @backingInt(abi.Exit.mmio);
    run.exit.mmio = .{ .phys_addr = 0x1234, .data = @splat(0xee), .len = 4, .is_write = 0 };
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));
    try testing.expectEqual([8]u8{ 0, 0, 0, 0, 0xee, 0xee, 0xee, 0xee }, run.exit.mmio.data);
    run.exit.mmio.is_write = 1;
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));
    try testing.expectEqual(@as(u64, 2), bus.unclaimed.load(.monotonic));

    run.exit_reason = @backingInt(abi.Exit.system_event);
    run.exit.system_event.type = abi.KVM_SYSTEM_EVENT_SHUTDOWN;
    try testing.expectEqual(Outcome.poweroff, handleExit(run, &page, &pio, &bus, 0));
    run.exit.system_event.type = abi.KVM_SYSTEM_EVENT_RESET;
    run.exit.system_event.ndata = 0;
    try testing.expectEqual(Outcome.reset, handleExit(run, &page, &pio, &bus, 0));
    run.exit.system_event.ndata = 1;
    run.exit.system_event.data[0] = 1;
    try testing.expectEqual(Outcome.panic_reset, handleExit(run, &page, &pio, &bus, 0));
    run.exit_reason = @backingInt(abi.Exit.shutdown);
    try testing.expectEqual(Outcome.triple_fault, handleExit(run, &page, &pio, &bus, 0));
    run.exit_reason = @backingInt(abi.Exit.intr);
    try testing.expectEqual(Outcome.running, handleExit(run, &page, &pio, &bus, 0));
}
