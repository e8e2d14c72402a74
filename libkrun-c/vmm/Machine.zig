//! One built microVM and its runtime: started in its own threads (the vCPUs and the event loop),
//! waited on, stopped, destroyed, with the reason it ended. vmm/builder.zig makes it from a
//! Config (`create`), vmm/DeviceManager.zig owns its virtio devices, vmm/arch.zig's backend holds
//! what is architecture-specific. The C API (capi/) drives it; nothing here knows about C.
//! Several Machines can live in one process; they share nothing but the kick signal handler.
const std = @import("std");
const test_tmp = @import("../test_tmp.zig");
const linux = std.os.linux;
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const console = @import("../virtio/console.zig");
const terminal = @import("terminal.zig");
const protocol = @import("init_protocol");
const arch = @import("arch.zig").current;
const kvm = @import("kvm.zig");
const sys = @import("../sys/linux.zig");
const loader = @import("kernel_loader.zig");
const GuestMemory = @import("guest_memory");
const Vcpu = @import("Vcpu.zig");
const MmioBus = @import("MmioBus.zig");
const EventLoop = @import("EventLoop.zig");
const OutputBuffer = @import("OutputBuffer.zig");
const DeviceManager = @import("DeviceManager.zig");
const Notifier = @import("Notifier.zig");
const builder = @import("builder.zig");

const log = std.log.scoped(.vmm);

const Machine = @This();

/// Everything that can go wrong building or starting a VM. capi/ maps each to an errno with an
/// exhaustive switch, so adding an error here forces a decision there.
pub const Error = error{
    /// /dev/kvm missing, not openable, or the KVM API version is wrong.
    KvmUnavailable,
    /// The configuration cannot be built (e.g. more vCPUs than KVM allows, RAM too large).
    InvalidConfig,
    /// The kernel (libkrunfw or krun_set_kernel's file) is missing.
    KernelNotFound,
    /// The kernel file exists but is not a usable image.
    KernelInvalid,
    OutOfMemory,
    /// Another host resource (fd, thread, mapping) could not be obtained.
    SystemResources,
    /// A KVM ioctl failed unexpectedly while building the VM.
    KvmFailed,
    /// This host has no backend that runs the VM yet (macOS: vmm/hvf/Machine.zig, docs/HVF.md).
    HostUnsupported,
};

/// The guest did not report a code (libkrun's `i32::MAX` sentinel).
pub const exit_code_unset: i32 = std.math.maxInt(i32);
/// Exit status when the guest crashed (panic, triple fault) or KVM could not run it.
pub const exit_code_failure: i32 = 1;
/// Exit status of a VM forced down by stop(): 128 + SIGKILL, as a shell reports a killed process.
pub const exit_code_stopped: i32 = 128 + 9;

/// Why a VM ended: krun_get_exit_reason's KRUN_EXIT_REASON_* values (include/libkrun.h).
pub const ExitReason = enum(i32) {
    /// Not ended yet (or not waited on).
    none = 0,
    /// The guest's init reported the workload's exit code (the status).
    exited = 1,
    /// The host forced it down (krun_stop, krun_free_ctx, a timeout).
    stopped = 2,
    /// The guest kernel panicked (it rebooted through its panic path).
    guest_panic = 3,
    /// A vCPU triple-faulted (KVM_EXIT_SHUTDOWN).
    triple_fault = 4,
    /// The VMM could not go on running the guest (KVM failure, dead event loop).
    vmm_error = 5,
    /// The guest rebooted or powered off without reporting a code (an init of its own).
    shutdown = 6,
};

pub const Exit = struct { status: i32, reason: ExitReason };

const State = enum { created, running, exited };

gpa: std.mem.Allocator,
kvm_fd: kvm.Kvm,
vm: kvm.Vm,
mem: GuestMemory = .{},
ram: arch.Ram,
/// Host mappings backing `ram.ranges` (the kernel bundle's included), owned.
maps: [arch.ranges_max]?loader.Mapping = @splat(null),
/// Bytes of the kernel slot KVM mapped before the guest ran (builder.zig preFaultKernel).
kernel_prefaulted_bytes: u64 = 0,
/// Allocated for Config.vcpus; `vcpus` is the prefix created so far.
vcpu_buf: []Vcpu = &.{},
vcpus: []Vcpu = &.{},
/// The arch's port-I/O devices (x86_64: i8042, CMOS, COM1-4).
pio: arch.LegacyBus,
mmio: MmioBus = .{},
devices: DeviceManager,
loop: EventLoop = undefined,
loop_ready: bool = false,
control: Vcpu.Control,
/// Signalled once when the VM's outcome is recorded (Vcpu.Control.finish); `wait` polls it.
/// An eventfd (Notifier on Linux), as krun_get_shutdown_eventfd hands out.
exit_evt: Notifier = .none,
serial_irq_fd: sys.fd_t = -1,
/// Wakes the event loop so that it parks on `control.pause` (krun_vm_pause).
pause_evt: Notifier = .none,
/// The guest clock when the VM was paused (arch.saveClock), for resume.
paused_clock: ?ClockState = null,
/// krun_stop was called: the final output flush waits for no reader.
stop_requested: std.atomic.Value(bool) = .init(false),
/// init/'s encoding of the exec config: cmdline tokens, and the JSON the root fs serves.
exec: ?protocol.Encoded = null,
/// The host terminal a console is attached to: raw while the VM runs, and its size.
tty: ?Tty = null,
state: State = .created,
/// Set by the virtio-fs exit-code ioctl (FUSE ioctl 0x7602); read once the VM is down.
guest_exit_code: std.atomic.Value(i32) = .init(exit_code_unset),
/// Decided once by wait(), when the vCPUs are joined.
exit: Exit = .{ .status = 0, .reason = .none },
created_ns: i128,

const ClockState = if (@hasDecl(arch, "Clock")) arch.Clock else void;

/// Builds a VM from `cfg` (vmm/builder.zig); `cfg` must outlive the Machine.
pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    return builder.create(gpa, cfg);
}

/// The host terminal of the first console that has one (libkrun's behaviour): raw mode while
/// the guest owns it, and SIGWINCH resizes the console. terminal.zig owns the details.
const Tty = struct {
    fd: sys.fd_t,
    raw: ?terminal.RawMode,
    watch: ?terminal.Watch,
    console: *console.Console,
};

/// Builder: console `c` shows on terminal `fd`.
pub fn attachTerminal(self: *Machine, fd: sys.fd_t, c: *console.Console) Error!void {
    self.tty = .{ .fd = fd, .raw = terminal.RawMode.enter(fd), .watch = terminal.watch(), .console = c };
    const w = self.tty.?.watch orelse return;
    _ = self.loop.add(.{ .fd = w.fd, .handler = .{ .ctx = self, .call = onTerminalResized } }) catch
        return error.SystemResources;
}

/// Event loop: SIGWINCH arrived; the console takes the terminal's new size.
fn onTerminalResized(ctx: *anyopaque, _: u32, _: u32) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    const tty = &self.tty.?;
    tty.watch.?.drain();
    const size = terminal.windowSize(tty.fd) orelse return;
    tty.console.resize(size.cols, size.rows);
}

/// krun_set_console_size, from any thread: the console's terminal takes this size and the
/// guest console follows, as after SIGWINCH (the event loop re-reads the size). For a pty the
/// embedder opened, whose size changes reach no SIGWINCH handler of this process.
pub fn resizeConsole(self: *Machine, size: terminal.Size) error{ NoTerminal, Io }!void {
    const tty = self.tty orelse return error.NoTerminal;
    if (!terminal.setWindowSize(tty.fd, size)) return error.Io;
    if (tty.watch) |w| w.notify() else tty.console.resize(size.cols, size.rows);
}

pub fn start(self: *Machine) Error!void {
    assert(self.state == .created); // tidy: capi starts a context once
    Vcpu.installKickHandler();
    self.state = .running;
    self.loop.start() catch return self.startFailed();
    for (self.vcpus) |*v| v.spawn() catch return self.startFailed();
}

fn startFailed(self: *Machine) Error {
    self.stop();
    self.joinAll();
    self.state = .exited;
    return error.SystemResources;
}

/// The guest's exit status (0..255), or error.Timeout when timeout_ms (>= 0) elapses first;
/// timeout_ms < 0 waits forever. exitReason() says why it ended.
pub fn wait(self: *Machine, timeout_ms: i32) error{Timeout}!i32 {
    if (self.state == .created) return error.Timeout;
    if (self.state == .running) {
        if (sys.pollReadable(self.exit_evt.fd, timeout_ms) == .timeout) return error.Timeout;
        self.halt();
        self.joinAll();
        // Stop the devices now, not only in destroy: krun_start_enter _exits right after wait.
        // The guest's last output was written out by the event loop's on_stop (flushOutputs).
        self.devices.shutdown();
        self.exit = self.decideExit();
        self.state = .exited;
    }
    return self.exit.status;
}

/// Why the VM ended: `.none` until wait() returned its status.
pub fn exitReason(self: *const Machine) ExitReason {
    return if (self.state == .exited) self.exit.reason else .none;
}

/// The status and reason, from the code init reported and the vCPUs' first outcome. A code
/// reported by init wins (it is the workload's, whatever ended the VM after it).
fn decideExit(self: *const Machine) Exit {
    const code = self.guest_exit_code.load(.acquire);
    // The fs server takes only 0..255; anything else here would be a bug, not a guest value.
    if (code != exit_code_unset and code >= 0 and code <= 255) return .{ .status = code, .reason = .exited };
    return switch (self.control.outcome.load(.acquire)) {
        .stopped, .running => .{ .status = exit_code_stopped, .reason = .stopped },
        .reset => if (arch.resetWasPanic(&self.mem))
            .{ .status = exit_code_failure, .reason = .guest_panic }
        else
            .{ .status = 0, .reason = .shutdown },
        .poweroff => .{ .status = 0, .reason = .shutdown },
        .triple_fault => .{ .status = exit_code_failure, .reason = .triple_fault },
        .panic_reset => .{ .status = exit_code_failure, .reason = .guest_panic },
        .failure => .{ .status = exit_code_failure, .reason = .vmm_error },
    };
}

/// Forces the VM down (vCPUs kicked out of KVM_RUN, threads joined by destroy/wait).
/// The terminal gets its settings back here already: krun_stop's caller finds it as it was.
/// Output still buffered is then written only as far as readers take it at once (`flushOutputs`).
pub fn stop(self: *Machine) void {
    self.stop_requested.store(true, .release);
    self.halt();
}

fn halt(self: *Machine) void {
    self.control.finish(.stopped); // keeps the first outcome if the guest already ended
    self.control.pause.finish(); // after `stopping`, before the kicks (Pause.parkVcpu)
    for (self.vcpus) |*v| v.kick();
    self.restoreTerminal();
}

/// How long the end of a VM waits for a reader that takes no output (after krun_stop: not at all).
/// 10 s, not less: a reader that is alive but busy (a JS runtime in a GC pause or on a loaded,
/// emulated CPU) lost the last 576 KiB of a 64 MiB stream to a 2 s budget (tests/vm/68-ts-spawn
/// under Deno, 2026-12-01). An unread pipe delays the end of the VM by this much at most.
pub const final_flush_idle_ms = 10_000;

/// Event loop's on_stop (its thread, vCPUs joined): the guest's last output — queued in the
/// console's tx queues, often kicked through an ioeventfd the loop never served, and in the
/// rings — is written out while readers take it, bounded by `final_flush_idle_ms` and krun_stop.
pub fn flushOutputs(ctx: *anyopaque) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    var budget: OutputBuffer.Budget = .{ .stop = &self.stop_requested, .idle_ms = final_flush_idle_ms };
    self.devices.flushConsoles(&budget);
    self.pio.serial[0].flushFinal(&budget);
}

/// Event loop's on_failure: epoll_wait failed, so no device is served any more; the VM ends
/// (status `exit_code_failure`). Exit reason "VMM error" attaches here.
pub fn eventLoopFailed(ctx: *anyopaque) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    log.warn("the event loop failed: stopping the VM (exit reason: VMM error)", .{});
    self.control.finish(.failure);
    self.control.pause.finish();
    for (self.vcpus) |*v| v.kick();
}

// ---- pause and resume (krun_vm_pause / krun_vm_resume) ---------------------------------------

/// How long pause waits for every vCPU and the event loop to park. They park within one exit
/// handling (microseconds); only a host that starves the VM's threads comes near this.
pub const pause_timeout_ns = 5 * std.time.ns_per_s;

/// Builder: the event loop's wake-up for a pause.
pub fn attachPauseGate(self: *Machine) Error!void {
    self.pause_evt = Notifier.init() catch return error.SystemResources;
    _ = self.loop.addNotifier(self.pause_evt.fd, .{ .ctx = self, .call = onPauseRequested }) catch
        return error.SystemResources;
}

/// Event loop: a pause was requested; the loop (so every device it serves) sleeps until resume.
fn onPauseRequested(ctx: *anyopaque, _: u32, _: u32) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    self.control.pause.park();
}

pub const PauseError = error{
    /// Not started, or ended (or ending).
    NotRunning,
    /// A vCPU or the event loop did not park within `pause_timeout_ns`; the VM runs on.
    Timeout,
};

/// Freezes the guest: every vCPU out of KVM_RUN and parked, the event loop parked (no device
/// starts work), the guest clock saved. Returns once all of them are parked. Idempotent: a
/// paused VM stays paused. Any thread but the VM's own; not concurrently with `unpause`.
pub fn pause(self: *Machine) PauseError!void {
    if (self.state != .running or self.control.stopping.load(.seq_cst)) return error.NotRunning;
    const gate = &self.control.pause;
    if (!gate.request()) return if (gate.state() == .paused) {} else error.NotRunning;
    self.pause_evt.signal();
    for (self.vcpus) |*v| v.kick();
    if (!gate.waitParked(@intCast(self.vcpus.len + 1), pause_timeout_ns)) {
        if (gate.state() != .paused) return error.NotRunning; // ended meanwhile
        _ = gate.release();
        return error.Timeout;
    }
    if (ClockState != void) self.paused_clock = arch.saveClock(self.vm);
}

/// Lets a paused guest run on, its clock where the pause left it. Idempotent: a running VM
/// stays running.
pub fn unpause(self: *Machine) PauseError!void {
    if (self.state != .running or self.control.stopping.load(.seq_cst)) return error.NotRunning;
    const gate = &self.control.pause;
    if (gate.state() != .paused) return;
    if (ClockState != void) if (self.paused_clock) |c| arch.restoreClock(self.vm, c);
    self.paused_clock = null;
    _ = gate.release();
}

/// Idempotent and safe from any thread (RawMode restores once).
fn restoreTerminal(self: *Machine) void {
    if (self.tty) |*t| if (t.raw) |*r| r.restore();
}

fn joinAll(self: *Machine) void {
    for (self.vcpus) |*v| v.join();
    if (self.loop_ready) self.loop.stop();
}

/// Releases every fd, thread and mapping the VM had. Stops it first if it still runs.
pub fn destroy(self: *Machine) void {
    if (self.state == .running) {
        self.stop();
        self.joinAll();
        self.state = .exited;
    }
    self.destroyPartial();
}

/// Releases what the builder made so far (its errdefer) or everything (destroy).
pub fn destroyPartial(self: *Machine) void {
    for (self.vcpus) |*v| v.fd.close();
    if (self.vcpu_buf.len > 0) self.gpa.free(self.vcpu_buf);
    // Resets while the loop exists: a console's reset drops its input and output watches there
    // (a no-op after wait, which shut the devices down already).
    self.devices.shutdown();
    if (self.loop_ready) self.loop.deinit();
    // Devices first (a running fs worker or console stops here), then their fds.
    self.devices.deinit();
    if (self.exec) |*e| e.deinit(self.gpa);
    self.restoreTerminal();
    // After the loop is gone: nothing reads the watch's eventfd any more.
    if (self.tty) |t| if (t.watch) |w| terminal.unwatch(w);
    if (self.vm.fd >= 0) self.vm.close();
    if (self.kvm_fd.fd >= 0) self.kvm_fd.close();
    if (self.serial_irq_fd >= 0) sys.close(self.serial_irq_fd);
    for (&self.pio.serial) |*com| com.deinit();
    self.exit_evt.deinit();
    self.pause_evt.deinit();
    for (self.maps) |m| if (m) |mapping| sys.munmap(mapping);
    self.gpa.destroy(self);
}

/// KVM_CAP_MAX_VCPUS of this host (capped by what the arch's boot structures can describe).
pub fn maxVcpus() Error!u32 {
    var k = kvm.Kvm.open() catch |err| return switch (err) {
        error.KvmUnavailable => error.KvmUnavailable,
        error.SystemResources => error.SystemResources,
    };
    defer k.close();
    return @min(k.maxVcpus(), arch.vcpus_max);
}

/// For krun_get_stats, tests and benches: monotonic ns from create() to the first KVM_RUN (0
/// if it never ran), KVM exits of all vCPUs so far (live), the bytes of guest RAM (kernel
/// slot included) resident in this process, and the bytes of the kernel slot KVM mapped
/// before the guest ran (0 where KVM_PRE_FAULT_MEMORY is missing). Any thread; mincore over
/// guest RAM, no lock.
pub const Stats = struct { setup_ns: i64, exits: u64, guest_resident_bytes: u64, kernel_prefaulted_bytes: u64 };

pub fn stats(self: *const Machine) Stats {
    const first = self.control.first_run_ns.load(.acquire);
    var resident: u64 = 0;
    for (self.maps) |m| if (m) |mapping| {
        resident += residentBytes(mapping);
    };
    return .{
        .setup_ns = if (first == 0) 0 else @intCast(@as(i128, first) - self.created_ns),
        .exits = exits: {
            var n: u64 = 0;
            for (self.vcpus) |*v| n += v.exits.load(.monotonic);
            break :exits n;
        },
        .guest_resident_bytes = resident,
        .kernel_prefaulted_bytes = self.kernel_prefaulted_bytes,
    };
}

fn residentBytes(mapping: loader.Mapping) u64 {
    const page = std.heap.page_size_min;
    var vec: [4096]u8 = undefined;
    var total: u64 = 0;
    var off: usize = 0;
    while (off < mapping.len) {
        const len = @min(mapping.len - off, vec.len * page);
        sys.mincore(@alignCast(mapping[off..][0..len]), &vec) catch return 0;
        for (vec[0 .. (len + page - 1) / page]) |v| total += (v & 1) * page;
        off += len;
    }
    return total;
}

// ---- tests on real KVM with a hand-made guest --------------------------------------------

/// 64-bit code run at the kernel entry: "OK\n" out of COM1, then the i8042 reset.
pub const tiny_guest = [_]u8{
    0x66, 0xBA, 0xF8, 0x03, // mov dx, 0x3f8
    0xB0, 'O', 0xEE, // mov al, 'O'; out dx, al
    0xB0, 'K', 0xEE, // mov al, 'K'; out dx, al
    0xB0, '\n', 0xEE, // mov al, '\n'; out dx, al
    0xB0, 0xFE, 0xE6, 0x64, // mov al, 0xfe; out 0x64, al
    0xF4, // hlt
};

const testing = std.testing;

fn writeTestFile(path: [:0]const u8, bytes: []const u8) !void {
    const fd = try sys.open(path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true });
    defer sys.close(fd);
    try testing.expectEqual(bytes.len, try sys.write(fd, bytes));
}

fn tinyConfig(cfg: *Config, kernel: []const u8, out: []const u8, vcpus: u8) void {
    cfg.vcpus = vcpus;
    cfg.ram_mib = 32;
    cfg.kernel = .{ .path = kernel, .format = .raw, .cmdline = "console=ttyS0" };
    cfg.console_output = out;
}

test "a tiny guest runs on real KVM, prints through COM1 and exits through the i8042" {
    var probe = kvm.Kvm.open() catch return error.SkipZigTest; // no /dev/kvm here: nothing to run
    probe.close();
    const kernel = test_tmp.path("vmm-tiny-guest.bin");
    const out = test_tmp.path("vmm-tiny-guest.out");
    try writeTestFile(kernel, &tiny_guest);
    try writeTestFile(out, "");
    var cfg = Config.init(testing.allocator);
    defer cfg.deinit();
    tinyConfig(&cfg, kernel, out, 2);
    const m = try Machine.create(testing.allocator, &cfg);
    defer m.destroy();
    try testing.expectError(error.Timeout, m.wait(0));
    try m.start();
    try testing.expectEqual(@as(i32, 0), try m.wait(120_000));
    try testing.expect(m.stats().exits >= 4);
    var buf: [16]u8 = undefined;
    const fd = try sys.open(out, .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    defer sys.close(fd);
    const n = try sys.read(fd, &buf);
    try testing.expectEqualStrings("OK\n", buf[0..n]);
}

test "a bad kernel file and a bad size are errors, not crashes" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the warnings are the point of this test
    defer testing.log_level = saved_level;
    var probe = kvm.Kvm.open() catch return error.SkipZigTest;
    probe.close();
    var cfg = Config.init(testing.allocator);
    defer cfg.deinit();
    tinyConfig(&cfg, "/nonexistent/zkrun-kernel", "/dev/null", 1);
    try testing.expectError(error.KernelNotFound, Machine.create(testing.allocator, &cfg));
    cfg.vcpus = 0;
    try testing.expectError(error.InvalidConfig, Machine.create(testing.allocator, &cfg));
    cfg.vcpus = 1;
    cfg.kernel.?.format = .elf;
    cfg.kernel.?.path = "/dev/null";
    try testing.expectError(error.KernelInvalid, Machine.create(testing.allocator, &cfg));
}

test "an event loop that fails ends the VM with status 1 and reason vmm_error" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the event loop's failure is logged (warn) on purpose
    defer testing.log_level = saved_level;
    var probe = kvm.Kvm.open() catch return error.SkipZigTest;
    probe.close();
    const kernel = test_tmp.path("vmm-spin-guest.bin");
    try writeTestFile(kernel, &.{ 0xEB, 0xFE }); // jmp $: never ends by itself
    var cfg = Config.init(testing.allocator);
    defer cfg.deinit();
    tinyConfig(&cfg, kernel, "/dev/null", 1);
    const m = try Machine.create(testing.allocator, &cfg);
    defer m.destroy();
    // Break the epoll fd under the loop (as EventLoop's own test does): epoll_wait fails at once.
    const dup = try sys.fcntl(m.loop.poll_fd, linux.F.DUPFD_CLOEXEC, 0);
    sys.close(m.loop.poll_fd);
    m.loop.poll_fd = -1;
    defer m.loop.poll_fd = @intCast(dup); // closed by destroy
    try m.start();
    try testing.expectEqual(exit_code_failure, try m.wait(60_000));
    try testing.expectEqual(ExitReason.vmm_error, m.exitReason());
}

/// 64-bit code that counts in the qword right after it, forever (the pause test's guest).
const counting_guest = [_]u8{
    0x48, 0xFF, 0x05, 0x09, 0x00, 0x00, 0x00, // inc qword [rip + 9] (offset 16)
    0xEB, 0xF7, // jmp back to the inc
} ++ @as([15]u8, @splat(0)); // pad to 16, then the counter

fn guestCount(m: *const Machine) !u64 {
    return m.mem.read(u64, arch.kernel_load_addr + 16);
}

fn sleepMs(ms: u64) void {
    sys.nanosleep(ms * std.time.ns_per_ms) catch {};
}

test "pause freezes the vCPUs and resume lets them run on; both idempotent; stop ends a paused VM" {
    var probe = kvm.Kvm.open() catch return error.SkipZigTest;
    probe.close();
    const kernel = test_tmp.path("vmm-count-guest.bin");
    try writeTestFile(kernel, &counting_guest);
    var cfg = Config.init(testing.allocator);
    defer cfg.deinit();
    tinyConfig(&cfg, kernel, "/dev/null", 2);
    const m = try Machine.create(testing.allocator, &cfg);
    defer m.destroy();
    try testing.expectError(error.NotRunning, m.pause());
    try m.start();
    var tries: u32 = 0;
    while (try guestCount(m) == 0 and tries < 2000) : (tries += 1) sleepMs(5);
    try testing.expect(try guestCount(m) > 0);
    try m.pause();
    try m.pause();
    const frozen = try guestCount(m);
    sleepMs(50);
    try testing.expectEqual(frozen, try guestCount(m));
    try m.unpause();
    try m.unpause();
    tries = 0;
    while (try guestCount(m) == frozen and tries < 2000) : (tries += 1) sleepMs(5);
    try testing.expect(try guestCount(m) > frozen);
    try m.pause();
    m.stop();
    try testing.expectEqual(exit_code_stopped, try m.wait(60_000));
    try testing.expectEqual(ExitReason.stopped, m.exitReason());
    try testing.expectError(error.NotRunning, m.unpause());
}
