//! The macOS Machine: the interface capi/ drives (vmm/backend.zig picks it on macOS), built on
//! Hypervisor.framework (vmm/hvf/). `create` builds a VM from a context's Config through the
//! same code the aarch64 KVM backend runs: kernel_loader.planBundle (the Image, libkrunfw's or
//! krun_set_kernel RAW, checked and laid out at 2 GiB), kernel_loader.placeInitramfs, the
//! aarch64 arch's legacy bus (the ns16550a on the MMIO window) and writeBoot (the FDT); only
//! the host side is macOS's: RAM from mmap mapped with hv_vm_map, the GICv3 through hv_gic
//! (macOS 15+), vCPU threads (Vcpu.zig); the serial port's output goes through the same
//! EventLoop as on Linux (its kqueue backend here); the virtio devices sit on the FDT's
//! virtio-MMIO slots through Devices.zig (the slots shared with KVM's DeviceManager, interrupts
//! pulsed through hv_gic, QueueNotify exits handed to the event loop). Never run on a Mac.
const std = @import("std");
const Config = @import("../../Config.zig");
const GuestMemory = @import("guest_memory");
const terminal = @import("../terminal.zig");
const linux_machine = @import("../Machine.zig");
const arch = @import("../arch.zig").current;
const loader = @import("../kernel_loader.zig");
const builder = @import("../builder.zig");
const MmioBus = @import("../MmioBus.zig");
const OutputBuffer = @import("../OutputBuffer.zig");
const EventLoop = @import("../EventLoop.zig");
const protocol = @import("init_protocol");
const hv = @import("hv.zig");
const Vm = @import("Vm.zig");
const Vcpu = @import("Vcpu.zig");
const exit_step = @import("exit.zig");
const host = @import("host.zig");
const Devices = @import("Devices.zig");

const log = std.log.scoped(.hvf);

const Machine = @This();

pub const Error = linux_machine.Error;
pub const ExitReason = linux_machine.ExitReason;
pub const exit_code_failure = linux_machine.exit_code_failure;
pub const pause_timeout_ns = linux_machine.pause_timeout_ns;
pub const Stats = linux_machine.Stats;
pub const PauseError = linux_machine.PauseError;

gpa: std.mem.Allocator,
vm: Vm = undefined,
vm_made: bool = false,
ram: arch.Ram = .{},
/// Guest RAM: one host mapping for the whole span (Apple silicon maps 16 KiB pages, and the
/// bundle's end is only 4 KiB aligned, so the ranges are not mapped one by one).
host_ram: ?[]align(host.page) u8 = null,
mem: GuestMemory = .{},
mmio: MmioBus = .{},
legacy: arch.LegacyBus = .{},
/// Serves the serial port's output and the virtio devices' queues and backends (kqueue).
loop: EventLoop = undefined,
loop_made: bool = false,
/// The virtio devices on their slots (empty until buildDevices).
devices: Devices,
vcpus: []Vcpu = &.{},
stopping: std.atomic.Value(bool) = .init(false),
/// krun_stop (or a failure) asked the VM down: the final output flush waits for no reader.
stop_requested: std.atomic.Value(bool) = .init(false),
/// exit.End + 1 from the first vCPU that ended the VM; 0: none (stopped by the host).
outcome: std.atomic.Value(u8) = .init(0),
started: bool = false,
exit: linux_machine.Exit = .{ .status = 0, .reason = .none },
cmdline: arch.Cmdline = .{},
/// The workload for init/ (builder.encodeExecConfig): its tokens end the command line; its
/// JSON, when there is one, is for the root virtio-fs (buildFs).
exec: ?protocol.Encoded = null,
/// The workload's exit code, as the root virtio-fs's server reports it (Linux Machine's
/// `guest_exit_code`); unset until the guest's init reports it.
guest_exit_code: std.atomic.Value(i32) = .init(linux_machine.exit_code_unset),

pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    const a = hv.api() catch |err| {
        log.warn("Hypervisor.framework cannot be loaded ({t}); zkrun needs macOS 15+ on Apple silicon", .{err});
        return error.HostUnsupported;
    };
    if (a.gic == null) {
        log.warn("this macOS has no hv_gic (macOS 15+): zkrun has no userspace GIC model", .{});
        return error.HostUnsupported;
    }
    const vcpus_max = try maxVcpus();
    if (cfg.vcpus == 0 or cfg.vcpus > vcpus_max or cfg.ram_mib == 0 or cfg.ram_mib > arch.ram_mib_max) {
        log.warn("invalid VM size: {d} vCPUs (max {d}), {d} MiB", .{ cfg.vcpus, vcpus_max, cfg.ram_mib });
        return error.InvalidConfig;
    }
    const m = try gpa.create(Machine);
    m.* = .{ .gpa = gpa, .devices = .{ .slots = .{ .gpa = gpa, .mem = &m.mem, .loop = &m.loop, .mmio = &m.mmio }, .vm = &m.vm } };
    errdefer m.destroy();
    m.vm = Vm.create() catch return error.HostUnsupported;
    m.vm_made = true;
    const entry, const initramfs = try m.buildMemory(cfg);
    m.vm.createGic(cfg.vcpus) catch |err| {
        log.warn("hv_gic_create: {t}", .{err});
        return error.HostUnsupported;
    };
    m.legacy = arch.legacyBus(&m.ram);
    arch.attachLegacy(&m.legacy, &m.mmio);
    m.loop.init() catch return error.SystemResources;
    m.loop_made = true;
    m.loop.on_stop = .{ .ctx = m, .call = flushOutputs };
    m.loop.on_failure = .{ .ctx = m, .call = loopFailed };
    try m.buildSerial(cfg);
    try m.buildDevices(cfg);
    try builder.appendBaseCmdline(&m.cmdline, cfg);
    m.cmdline.append(cfg.cmdline_extra) catch return error.InvalidConfig;
    // init/'s exec tokens LAST: they may end with `-- args` (the KVM builder's order).
    if (m.exec) |e| m.cmdline.append(e.cmdline_tokens) catch return error.InvalidConfig;
    try arch.writeBoot(&m.mem, &m.ram, .{ .cmdline = &m.cmdline, .vcpus = cfg.vcpus, .initramfs = initramfs, .devices = m.devices.count() });
    try m.buildVcpus(cfg.vcpus, entry);
    return m;
}

/// The kernel (libkrunfw's Image or krun_set_kernel RAW) laid out by kernel_loader.planBundle
/// and copied to the start of RAM, RAM mapped into the VM, the initramfs read where
/// placeInitramfs says. Returns the entry and the initramfs range.
fn buildMemory(m: *Machine, cfg: *const Config) Error!struct { u64, ?arch.Range } {
    var file: ?host.Mapped = null;
    defer if (file) |f| f.unmap();
    const bundle: []const u8, const load: u64, const entry: u64 = if (cfg.kernel) |k| blk: {
        if (k.format != .raw) {
            log.warn("kernel format {t} is not supported on macOS (an arm64 Image, RAW)", .{k.format});
            return error.KernelInvalid;
        }
        file = try host.Mapped.open(k.path);
        break :blk .{ file.?.bytes, arch.kernel_load_addr, arch.kernel_load_addr };
    } else blk: {
        const fw = try loader.Firmware.shared(false);
        break :blk .{ fw.bundle, fw.load_addr, fw.entry };
    };
    const plan = try loader.planBundle(bundle, load, entry, cfg.ram_mib);
    m.ram = plan.ram;
    const base = m.ram.ranges[0].start;
    const span = std.mem.alignForward(u64, m.ram.end() - base, host.page);
    const ram = host.mapAnonymous(span) orelse return error.OutOfMemory;
    m.host_ram = ram;
    for (m.ram.slice()) |r| m.mem.addRegion(r.start, ram[r.start - base ..][0..r.len]) catch return error.InvalidConfig;
    @memcpy(ram[plan.ram.ranges[plan.ram.kernel_index.?].start - base ..][0..bundle.len], bundle);
    m.vm.map(ram, base) catch return error.HostUnsupported;
    const k = cfg.kernel orelse return .{ plan.entry, null };
    const path = k.initramfs orelse return .{ plan.entry, null };
    const rd = try host.Mapped.open(path);
    defer rd.unmap();
    const where = loader.placeInitramfs(&m.ram, rd.bytes.len, plan.kernel_end) orelse {
        log.warn("initramfs of {d} bytes does not fit in guest RAM", .{rd.bytes.len});
        return error.KernelInvalid;
    };
    m.mem.writeBytes(where.start, rd.bytes) catch return error.KernelInvalid;
    return .{ plan.entry, where };
}

/// The ns16550a's output (krun_set_console_output's file, else stdout), drained by the event
/// loop (Serial.watch: a Notifier, `out` interest while the host does not read, as on Linux);
/// its interrupt is the serial SPI pulsed through hv_gic. Always attached here: it is the one
/// console a macOS VM has until the virtio console is ported (the kernel uses it when its
/// command line says console=ttyS0 or earlycon).
fn buildSerial(m: *Machine, cfg: *const Config) Error!void {
    const s = &m.legacy.serial[0];
    const fd = if (cfg.console_output) |path| host.openOutput(path) orelse return error.SystemResources else 1;
    defer if (fd != 1) host.close(fd);
    s.out = OutputBuffer.Sink.open(fd) catch return error.SystemResources;
    s.raise = .{ .ctx = m, .call = raiseSerial };
    s.watch(&m.loop) catch return error.SystemResources;
}

/// The virtio devices, in libkrun's attach order as far as they compile for macOS:
/// balloon → rng → console(s). Each gets the next slot; writeBoot lists the slots in the FDT.
fn buildDevices(m: *Machine, cfg: *const Config) Error!void {
    try builder.attachBalloonAndRng(m.gpa, &m.devices);
    if (cfg.implicit_console) try m.buildConsole(cfg, null);
    if (cfg.console_default) |fds| try m.buildConsole(cfg, fds);
    m.exec = try builder.encodeExecConfig(m.gpa, cfg);
    try m.buildFs(cfg);
}

/// virtio-fs: krun_set_root's root and krun_add_virtiofs's shares, after the consoles as in
/// libkrun's order, through the KVM builder's own step (the server on its posix backend,
/// virtio/fs/sys_posix.zig; its worker waits on the queues' Notifier read ends, pipes here,
/// which `Devices` signals on a QueueNotify exit). The root reports the workload's exit code.
fn buildFs(m: *Machine, cfg: *const Config) Error!void {
    try builder.attachVirtioFs(m.gpa, &m.devices, cfg, &m.guest_exit_code, m.exec);
}

/// A virtio console with the KVM builder's ports (builder.consolePorts), its inputs and
/// outputs watched by the event loop. The host terminal is not put in raw mode and its size
/// changes are not followed (terminal.zig's watcher is Linux's): the console takes the size it
/// has at create.
fn buildConsole(m: *Machine, cfg: *const Config, fds: ?Config.ConsoleFds) Error!void {
    var out_fd: i32 = -1;
    defer if (out_fd >= 0) host.close(out_fd); // the console dups what it keeps
    if (fds == null) if (cfg.console_output) |path| {
        out_fd = host.openOutput(path) orelse return error.InvalidConfig;
    };
    const c = try builder.newConsole(m.gpa, builder.consolePorts(cfg, fds, out_fd));
    try m.devices.attachOwned(c);
    c.watch(&m.loop) catch return error.SystemResources;
}

/// Event loop's on_stop (vCPUs joined): the guest's last output (the consoles' queues and
/// rings, the serial ring) written out while readers take it, bounded as on Linux
/// (linux_machine.final_flush_idle_ms; at once after krun_stop).
fn flushOutputs(ctx: *anyopaque) void {
    const m: *Machine = @ptrCast(@alignCast(ctx));
    var budget: OutputBuffer.Budget = .{ .stop = &m.stop_requested, .idle_ms = linux_machine.final_flush_idle_ms };
    m.devices.flushConsoles(&budget);
    m.legacy.serial[0].flushFinal(&budget);
}

/// Event loop's on_failure (kevent failed): nothing serves the console any more, so the VM
/// ends as a VMM failure, like the Linux Machine's.
fn loopFailed(ctx: *anyopaque) void {
    const m: *Machine = @ptrCast(@alignCast(ctx));
    _ = m.outcome.cmpxchgStrong(0, @as(u8, @backingInt(exit_step.End.failure)) + 1, .acq_rel, .acquire);
    m.stop();
}

fn raiseSerial(ctx: *anyopaque) void {
    const m: *Machine = @ptrCast(@alignCast(ctx));
    // Edge-triggered in the FDT: a pulse.
    m.vm.setSpi(arch.console_serial_irq, true);
    m.vm.setSpi(arch.console_serial_irq, false);
}

fn buildVcpus(m: *Machine, count: u32, entry: u64) Error!void {
    const a = hv.loaded();
    m.vcpus = try m.gpa.alloc(Vcpu, count);
    for (m.vcpus, 0..) |*v, i| v.* = .{ .index = @intCast(i), .api = a, .bus = &m.mmio, .peers = m.vcpus, .stopping = &m.stopping, .outcome = &m.outcome };
    m.vcpus[0].bootPrimary(entry, arch.fdtAddr(&m.ram));
}

pub fn start(self: *Machine) Error!void {
    self.loop.start() catch return error.SystemResources;
    self.started = true;
    for (self.vcpus) |*v| v.spawn() catch {
        self.stop();
        for (self.vcpus) |*w| w.join();
        return error.SystemResources;
    };
}

/// Waits for the vCPUs to end (timeout_ms < 0: for ever), then decides the status.
pub fn wait(self: *Machine, timeout_ms: i32) error{Timeout}!i32 {
    if (!self.started) return error.Timeout;
    if (self.exit.reason == .none) {
        if (timeout_ms >= 0 and !host.waitFlag(&self.stopping, timeout_ms)) return error.Timeout;
        for (self.vcpus) |*v| v.join();
        self.loop.stop();
        // Stop the devices now, not only in destroy (krun_start_enter _exits after wait).
        self.devices.shutdown();
        self.exit = self.decide();
    }
    return self.exit.status;
}

fn decide(self: *const Machine) linux_machine.Exit {
    // A code reported by init (over the root virtio-fs) wins, as on Linux.
    const code = self.guest_exit_code.load(.acquire);
    if (code != linux_machine.exit_code_unset and code >= 0 and code <= 255) return .{ .status = code, .reason = .exited };
    const o = self.outcome.load(.acquire);
    if (o == 0) return .{ .status = linux_machine.exit_code_stopped, .reason = .stopped };
    return switch (@as(exit_step.End, @fromBackingInt(@intCast(o - 1)))) {
        .poweroff, .reset => .{ .status = 0, .reason = .shutdown },
        .panic_reset => .{ .status = exit_code_failure, .reason = .guest_panic },
        .failure => .{ .status = exit_code_failure, .reason = .vmm_error },
    };
}

pub fn exitReason(self: *const Machine) ExitReason {
    return self.exit.reason;
}

pub fn stop(self: *Machine) void {
    self.stop_requested.store(true, .release);
    self.stopping.store(true, .release);
    for (self.vcpus) |*v| v.kick();
}

pub fn pause(self: *Machine) PauseError!void {
    _ = self;
    return error.NotRunning;
}

pub fn unpause(self: *Machine) PauseError!void {
    _ = self;
    return error.NotRunning;
}

pub fn resizeConsole(self: *Machine, size: terminal.Size) error{ NoTerminal, Io }!void {
    _ = self;
    _ = size;
    return error.NoTerminal;
}

pub fn stats(self: *const Machine) Stats {
    var exits: u64 = 0;
    for (self.vcpus) |*v| exits += v.exits.load(.monotonic);
    return .{ .setup_ns = 0, .exits = exits, .guest_resident_bytes = 0, .kernel_prefaulted_bytes = 0 };
}

/// Also releases a partly built Machine (create's errdefer).
pub fn destroy(self: *Machine) void {
    self.stop();
    for (self.vcpus) |*v| v.join();
    if (self.loop_made) {
        self.loop.stop();
        // Resets change the loop's interest (the console's watches): while it still exists.
        self.devices.shutdown();
        self.loop.deinit();
    }
    self.devices.deinit(); // after the loop: nothing watches their Notifiers any more
    if (self.exec) |*e| e.deinit(self.gpa);
    self.legacy.serial[0].deinit();
    if (self.vm_made) self.vm.destroy();
    if (self.host_ram) |r| host.unmap(r);
    if (self.vcpus.len > 0) self.gpa.free(self.vcpus);
    self.gpa.destroy(self);
}

/// hv_vm_get_max_vcpu_count (macOS 15+), capped by what the FDT describes; 1 when the
/// call is missing.
pub fn maxVcpus() Error!u32 {
    return Vm.maxVcpus();
}
