//! One running microVM: built from a Config, started in its own threads, waited on, stopped,
//! destroyed. The C API (capi/) drives it; nothing here knows about C.
//!
//! Build order (create): KVM and the VM fd; guest RAM (anonymous, not preallocated) and the
//! kernel (libkrunfw bundle mapped copy-on-write into its own slot, or krun_set_kernel's file);
//! TSS, in-kernel irqchip and PIT; virtio devices on MMIO slots with their irqfds and
//! ioeventfds; the command line, zero page, page tables, GDT and MP table; the vCPUs with
//! CPUID, long-mode state and LINT pins. Everything the VM will ever need is allocated here:
//! start() only spawns threads, and no exit or device path allocates.
//! Several Machines can live in one process; they share nothing but the kick signal handler.
const std = @import("std");
const test_tmp = @import("../test_tmp.zig");
const linux = std.os.linux;
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const Device = @import("../virtio/Device.zig");
const Transport = @import("../virtio/mmio.zig").Transport;
const Balloon = @import("../virtio/balloon.zig").Balloon;
const Rng = @import("../virtio/rng.zig").Rng;
const console = @import("../virtio/console.zig");
const terminal = @import("terminal.zig");
const VirtioFs = @import("../virtio/fs/VirtioFs.zig");
const Blk = @import("../virtio/blk/Blk.zig");
const Image = @import("../virtio/blk/Image.zig");
const vsock = @import("../virtio/vsock/Vsock.zig");
const Net = @import("../virtio/net/Net.zig");
const net_backend = @import("../virtio/net/backend.zig");
const tsi = @import("../tsi/Service.zig");
const protocol = @import("init_protocol");
const abi = @import("kvm_abi.zig");
const kvm = @import("kvm.zig");
const sys = @import("sys.zig");
const layout = @import("x86_64/layout.zig");
const boot = @import("x86_64/boot.zig");
const mptable = @import("x86_64/mptable.zig");
const loader = @import("kernel_loader.zig");
const GuestMemory = @import("guest_memory");
const Vcpu = @import("Vcpu.zig");
const MmioBus = @import("MmioBus.zig");
const EventLoop = @import("EventLoop.zig");
const Pio = @import("legacy/Pio.zig");
const Cmos = @import("legacy/Cmos.zig");
const Serial = @import("legacy/Serial.zig");
const OutputBuffer = @import("OutputBuffer.zig");

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

/// Guest-physical address of the BIOS warm-reset flag. Linux's reboot path writes 0x1234 there
/// when its reboot mode is "warm" and 0 otherwise, just before the i8042 reset. Our command line
/// says `reboot=k,panic_warm`: only the panic path switches to warm mode, so the flag tells a
/// kernel panic from init's own reboot, with no kernel change.
pub const warm_reset_flag_addr: u64 = 0x472;
pub const warm_reset_flag: u16 = 0x1234;

/// The device model behind a slot, owned by the Machine.
pub const Owner = union(enum) {
    none,
    balloon: *Balloon,
    rng: *Rng,
    console: *console.Console,
    fs: *VirtioFs,
    blk: *Blk,
    vsock: *vsock.Vsock,
    net: *Net.Net,
};

pub const Slot = struct {
    device: ?Device = null,
    transport: ?*Transport = null,
    owner: Owner = .none,
    irq_fd: sys.fd_t = -1,
    queue_fds: [Device.queues_max]sys.fd_t = @splat(-1),
    queue_count: u8 = 0,
};

const State = enum { created, running, exited };

gpa: std.mem.Allocator,
kvm_fd: kvm.Kvm,
vm: kvm.Vm,
mem: GuestMemory = .{},
ram: layout.Ram,
/// Host mappings backing `ram.ranges` (the kernel bundle's included), owned.
maps: [layout.ranges_max]?loader.Mapping = @splat(null),
entry: u64 = 0,
/// Allocated for Config.vcpus; `vcpus` is the prefix created so far.
vcpu_buf: []Vcpu = &.{},
vcpus: []Vcpu = &.{},
pio: Pio,
mmio: MmioBus = .{},
slots: [layout.virtio_slots_max]Slot = @splat(.{}),
slot_count: u32 = 0,
loop: EventLoop = undefined,
loop_ready: bool = false,
control: Vcpu.Control,
exit_evt: sys.fd_t,
serial_irq_fd: sys.fd_t = -1,
/// krun_stop was called: the final output flush waits for no reader.
stop_requested: std.atomic.Value(bool) = .init(false),
cmdline: boot.Cmdline = .{},
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
/// The kernel knows the `tsi_hijack` parameter (our libkrunfw has TSI). A kernel without it
/// would hand the parameter to init as an argument (upstream libkrun's trap), so TSI's
/// parameters go on the command line only for a kernel that has them.
kernel_has_tsi: bool = false,

pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    const created_ns = sys.nowNs();
    const self = try gpa.create(Machine);
    self.* = .{
        .gpa = gpa,
        .kvm_fd = .{ .fd = -1 },
        .vm = .{ .fd = -1 },
        .ram = .{},
        .pio = Pio.init(Cmos.init(0, 0)),
        .control = undefined,
        .exit_evt = -1,
        .created_ns = created_ns,
    };
    // From here on `destroyPartial` releases whatever was built so far.
    errdefer self.destroyPartial();
    self.kvm_fd = kvm.Kvm.open() catch |err| return switch (err) {
        error.KvmUnavailable => error.KvmUnavailable,
        error.SystemResources => error.SystemResources,
    };
    const vcpus_max = @min(self.kvm_fd.maxVcpus(), mptable.cpus_max);
    if (cfg.vcpus == 0 or cfg.vcpus > vcpus_max or cfg.ram_mib == 0 or cfg.ram_mib > layout.ram_mib_max) {
        log.warn("invalid VM size: {d} vCPUs (max {d}), {d} MiB", .{ cfg.vcpus, vcpus_max, cfg.ram_mib });
        return error.InvalidConfig;
    }
    self.vm = self.kvm_fd.createVm() catch |err| return kvmFailed("KVM_CREATE_VM", err);
    self.exit_evt = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    self.control = .{ .pio = &self.pio, .mmio = &self.mmio, .exit_evt = self.exit_evt };
    try self.build(cfg);
    return self;
}

fn build(self: *Machine, cfg: *const Config) Error!void {
    const initramfs_end = try self.buildMemory(cfg);
    try self.buildIrqchip();
    self.pio = Pio.init(cmosFor(&self.ram));
    self.loop.init() catch return error.SystemResources;
    self.loop_ready = true;
    self.loop.on_stop = .{ .ctx = self, .call = flushOutputs };
    self.loop.on_failure = .{ .ctx = self, .call = eventLoopFailed };
    try self.buildSerial(cfg);
    try self.buildDevices(cfg);
    try self.buildCmdline(cfg);
    try self.writeBootStructures(cfg.vcpus, initramfs_end);
    try self.buildVcpus(cfg);
}

/// Maps RAM and the kernel; loads the kernel and initramfs. Returns the initramfs range.
fn buildMemory(self: *Machine, cfg: *const Config) Error!?layout.Range {
    var elf_file: ?loader.Mapping = null;
    defer if (elf_file) |f| sys.munmap(f);
    var bundle: ?loader.Mapping = null;
    errdefer if (bundle) |b| sys.munmap(b);
    if (cfg.kernel) |k| switch (k.format) {
        .elf => {
            elf_file = try loader.mapFile(k.path);
            self.kernel_has_tsi = kernelHasTsi(cfg, elf_file.?);
            self.ram = layout.ramPlain(cfg.ram_mib);
        },
        .raw => {
            bundle = try loader.mapFile(k.path);
            self.kernel_has_tsi = kernelHasTsi(cfg, bundle.?);
            self.entry = layout.kernel_load_addr;
            self.ram = layout.ramWithBundle(cfg.ram_mib, layout.kernel_load_addr, bundle.?.len);
        },
        else => {
            log.warn("kernel format {t} is not supported on x86_64", .{k.format});
            return error.KernelInvalid;
        },
    } else {
        const fw = try loader.Firmware.shared(false);
        bundle = try loader.mapBundlePrivate(fw.bundle, fw.backing);
        self.kernel_has_tsi = kernelHasTsi(cfg, bundle.?);
        self.entry = fw.entry;
        self.ram = layout.ramWithBundle(cfg.ram_mib, fw.load_addr, bundle.?.len);
    }
    for (self.ram.slice(), 0..) |r, i| {
        const is_kernel = self.ram.kernel_index != null and self.ram.kernel_index.? == i;
        const host = if (is_kernel) bundle.? else sys.mmap(r.len, .{ .READ = true, .WRITE = true }, .{
            .TYPE = .PRIVATE,
            .ANONYMOUS = true,
            .NORESERVE = true,
        }, -1, 0) catch return error.OutOfMemory;
        self.maps[i] = host;
        if (is_kernel) bundle = null; // owned by maps[] now
        loader.adviseGuestMemory(host);
        self.mem.addRegion(r.start, host) catch unreachable; // tidy: our own ranges, which never overlap
        self.vm.setUserMemoryRegion(@intCast(i), r.start, host) catch |err| return kvmFailed("KVM_SET_USER_MEMORY_REGION", err);
    }
    var kernel_end: u64 = if (self.ram.kernel_index) |k| self.ram.ranges[k].end() else 0;
    if (elf_file) |f| {
        const loaded = try loader.loadElf(&self.mem, &self.ram, f);
        self.entry = loaded.entry;
        kernel_end = loaded.end;
    }
    const k = cfg.kernel orelse return null;
    const path = k.initramfs orelse return null;
    return try loader.loadInitramfs(&self.mem, &self.ram, path, kernel_end);
}

fn buildIrqchip(self: *Machine) Error!void {
    self.vm.setTssAddr(layout.tss_addr) catch |err| return kvmFailed("KVM_SET_TSS_ADDR", err);
    self.vm.createIrqchip() catch |err| return kvmFailed("KVM_CREATE_IRQCHIP", err);
    self.vm.createPit2() catch |err| return kvmFailed("KVM_CREATE_PIT2", err);
}

fn cmosFor(ram: *const layout.Ram) Cmos {
    var below: u64 = 0;
    var above: u64 = 0;
    for (ram.slice()) |r| {
        if (r.start >= layout.mmio_gap_end) above += r.len else below += r.len;
    }
    return Cmos.init(below, above);
}

/// COM1 is a console only when the kernel console is ttyS0; all COM ports are sinks otherwise.
/// Its output (Config.console_output, else our stdout) is drained by the event loop.
fn buildSerial(self: *Machine, cfg: *const Config) Error!void {
    if (!std.mem.startsWith(u8, kernelConsole(cfg), "ttyS0")) return;
    const com1 = &self.pio.serial[0];
    if (cfg.console_output) |path| {
        const fd = openOutput(path) orelse return error.SystemResources;
        defer sys.close(fd);
        com1.out = OutputBuffer.Sink.open(fd) catch return error.SystemResources;
    } else {
        com1.out = OutputBuffer.Sink.open(1) catch return error.SystemResources;
    }
    com1.watch(&self.loop) catch return error.SystemResources;
    self.serial_irq_fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    self.vm.irqfd(self.serial_irq_fd, Serial.com_irqs[0]) catch |err| return kvmFailed("KVM_IRQFD (COM1)", err);
    com1.irq_fd = self.serial_irq_fd;
}

fn kernelConsole(cfg: *const Config) []const u8 {
    // With krun_set_kernel's own cmdline the console is whatever that line says.
    if (cfg.kernel) |k| if (k.cmdline) |line| {
        var it = std.mem.tokenizeScalar(u8, line, ' ');
        var last: []const u8 = "";
        while (it.next()) |tok| if (std.mem.startsWith(u8, tok, "console=")) {
            last = tok["console=".len..];
        };
        return last;
    };
    return cfg.kernel_console;
}

fn openOutput(path: []const u8) ?sys.fd_t {
    var z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (path.len > std.fs.max_path_bytes) return null;
    @memcpy(z[0..path.len], path);
    z[path.len] = 0;
    const rc = linux.open(@ptrCast(&z), .{ .ACCMODE = .WRONLY, .CREAT = true, .APPEND = true, .CLOEXEC = true }, 0o644);
    if (linux.errno(rc) != .SUCCESS) {
        log.warn("cannot open console output {s}: {t}", .{ path, linux.errno(rc) });
        return null;
    }
    return @intCast(rc);
}

/// The virtio devices, in libkrun's attach order: balloon → rng → console → fs → block →
/// vsock → net. Each gets a transport on the next slot.
fn buildDevices(self: *Machine, cfg: *const Config) Error!void {
    const balloon = try self.gpa.create(Balloon);
    balloon.* = .{};
    try self.attachOwned(.{ .balloon = balloon }, balloon.device());
    const rng = try self.gpa.create(Rng);
    rng.* = .{};
    try self.attachOwned(.{ .rng = rng }, rng.device());
    if (cfg.implicit_console) try self.buildConsole(cfg, null);
    if (cfg.console_default) |fds| try self.buildConsole(cfg, fds);
    try self.encodeExec(cfg);
    for (cfg.virtiofs.items) |fs| {
        const is_root = std.mem.eql(u8, fs.tag, Config.root_tag);
        const dev = VirtioFs.fromConfig(self.gpa, cfg, fs, if (is_root) &self.guest_exit_code else null) catch |err| {
            log.warn("virtio-fs {s}: {t}", .{ fs.tag, err });
            return if (err == error.OutOfMemory) error.OutOfMemory else error.InvalidConfig;
        };
        try self.attachOwned(.{ .fs = dev }, dev.device());
        const json = if (self.exec) |e| e.config_json else null;
        if (is_root and json != null) dev.server.addOverlayFile(protocol.config_overlay_path, json.?, protocol.config_file_mode, false) catch
            return error.InvalidConfig;
    }
    for (cfg.disks.items) |disk| try self.buildDisk(disk);
    try self.buildVsock(cfg);
    var legacy: [1]Config.Nic = undefined;
    for (cfg.allNics(&legacy)) |nic| try self.buildNic(nic);
}

/// Opens a NIC's backend (virtio/net/backend.zig) and puts a virtio-net device on the next slot.
fn buildNic(self: *Machine, nic: Config.Nic) Error!void {
    const opened = net_backend.open(nic.backend) catch |err| return switch (err) {
        error.InvalidConfig => error.InvalidConfig,
        error.SystemResources => error.SystemResources,
    };
    const dev = self.gpa.create(Net.Net) catch |err| {
        _ = linux.close(opened.fd);
        return err;
    };
    dev.init(self.gpa, .{ .fd = opened.fd, .kind = opened.kind, .mac = nic.mac, .features = nic.features }) catch |err| {
        self.gpa.destroy(dev);
        return if (err == error.OutOfMemory) error.OutOfMemory else error.SystemResources;
    };
    try self.attachOwned(.{ .net = dev }, dev.device());
}

/// Opens (and locks) a disk image and puts a virtio-blk device for it on the next slot.
fn buildDisk(self: *Machine, disk: Config.Disk) Error!void {
    var z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (disk.path.len > std.fs.max_path_bytes) return error.InvalidConfig;
    @memcpy(z[0..disk.path.len], disk.path);
    z[disk.path.len] = 0;
    const image = Image.open(self.gpa, @ptrCast(&z), .{
        .format = @fromBackingInt(@backingInt(disk.format)),
        .read_only = disk.read_only,
        .direct_io = disk.direct_io,
        .sync = @fromBackingInt(@backingInt(disk.sync)),
    }) catch |err| {
        log.warn("disk {s} ({s}): {t}", .{ disk.block_id, disk.path, err });
        return switch (err) {
            error.OutOfMemory => error.OutOfMemory,
            error.SystemResources => error.SystemResources,
            else => error.InvalidConfig,
        };
    };
    const blk = self.gpa.create(Blk) catch |err| {
        image.close();
        return err;
    };
    blk.init(image, disk.block_id) catch {
        image.close();
        self.gpa.destroy(blk);
        return error.SystemResources;
    };
    try self.attachOwned(.{ .blk = blk }, blk.device());
}

/// The vsock device (Config.vsockDevice decides whether there is one and with which TSI
/// families) with the context's vsock ports; listen ports are bound here.
fn buildVsock(self: *Machine, cfg: *const Config) Error!void {
    const tsi_bits = cfg.vsockDevice() orelse return;
    const policy: ?tsi.Policy = if (tsi_bits == 0) null else .{
        .port_map = cfg.port_map,
        .inet = tsi_bits & Config.tsi_hijack_inet != 0,
        .unix = tsi_bits & Config.tsi_hijack_unix != 0,
    };
    var ports: [vsock.ports_max]vsock.PortConfig = undefined;
    if (cfg.vsock_ports.items.len > ports.len) return error.InvalidConfig;
    for (cfg.vsock_ports.items, 0..) |p, i| ports[i] = .{ .port = p.port, .path = p.path, .listen = p.listen };
    const dev = try self.gpa.create(vsock.Vsock);
    dev.init(self.gpa, .{ .ports = ports[0..cfg.vsock_ports.items.len], .tsi = policy }) catch |err| {
        self.gpa.destroy(dev);
        return switch (err) {
            error.OutOfMemory => error.OutOfMemory,
            error.SystemResources => error.SystemResources,
            error.AddressInUse => {
                log.warn("vsock: a listen port's path exists (it must not)", .{});
                return error.InvalidConfig;
            },
            error.InvalidConfig => error.InvalidConfig,
        };
    };
    try self.attachOwned(.{ .vsock = dev }, dev.device());
}

fn buildConsole(self: *Machine, cfg: *const Config, fds: ?Config.ConsoleFds) Error!void {
    var out_fd: sys.fd_t = -1;
    defer if (out_fd >= 0) sys.close(out_fd); // the console dups what it keeps
    var ports = if (fds) |f| console.defaultPorts(f.input, f.output, f.err) else if (cfg.console_output) |path| blk: {
        out_fd = openOutput(path) orelse return error.InvalidConfig;
        break :blk console.outputFilePorts(out_fd);
    } else console.defaultPorts(0, 1, 2);
    if (fds == null and cfg.signal_fd >= 0 and ports.len < console.ports_max)
        ports.add(.{ .name = console.signal_port_name, .input_fd = cfg.signal_fd });
    const c = try self.gpa.create(console.Console);
    c.init(ports.slice()) catch |err| {
        self.gpa.destroy(c);
        return if (err == error.SystemResources) error.SystemResources else error.InvalidConfig;
    };
    try self.attachOwned(.{ .console = c }, c.device());
    c.watchOutputs(&self.loop) catch return error.SystemResources;
    const term = if (fds) |f| terminal.terminalFd(&.{ f.input, f.output }) else if (cfg.console_output == null) terminal.terminalFd(&.{ 0, 1 }) else null;
    if (self.tty == null) if (term) |fd| try self.attachTerminal(fd, c);
}

/// The host terminal of the first console that has one (libkrun's behaviour): raw mode while
/// the guest owns it, and SIGWINCH resizes the console. terminal.zig owns the details.
const Tty = struct {
    fd: sys.fd_t,
    raw: ?terminal.RawMode,
    watch: ?terminal.Watch,
    console: *console.Console,
};

fn attachTerminal(self: *Machine, fd: sys.fd_t, c: *console.Console) Error!void {
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

/// init/'s encoder decides how the exec config travels (cmdline tokens or JSON on the root fs).
fn encodeExec(self: *Machine, cfg: *const Config) Error!void {
    if (cfg.exec_path == null and cfg.argv.len == 0 and cfg.workdir == null and cfg.rlimits.len == 0 and
        (cfg.envp == null or cfg.envp.?.len == 0)) return;
    self.exec = protocol.encode(self.gpa, .{
        .exec_path = cfg.exec_path,
        .args = cfg.argv,
        .env = cfg.envp orelse &.{},
        .workdir = cfg.workdir,
        .rlimits = cfg.rlimits,
    }) catch |err| {
        log.warn("exec config: {t}", .{err});
        return if (err == error.OutOfMemory) error.OutOfMemory else error.InvalidConfig;
    };
    if (self.exec.?.config_json != null and cfg.rootFs() == null) {
        log.warn("exec config needs the root virtio-fs to carry it", .{});
        return error.InvalidConfig;
    }
}

/// A transport for `device` on the next slot. Takes ownership of `owner` whatever happens:
/// on error it is released here or (once its slot is counted) by destroyPartial.
fn attachOwned(self: *Machine, owner: Owner, device: Device) Error!void {
    if (self.slot_count == layout.virtio_slots_max) {
        releaseOwner(self.gpa, owner);
        log.warn("more than {d} virtio devices", .{layout.virtio_slots_max});
        return error.InvalidConfig;
    }
    const t = self.gpa.create(Transport) catch |err| {
        releaseOwner(self.gpa, owner);
        return err;
    };
    t.init(device, &self.mem);
    const slot = &self.slots[self.slot_count];
    slot.transport = t;
    slot.owner = owner;
    try self.attachDevice(device, MmioBus.Handler.of(Transport, t), &t.interrupt);
}

/// The vsock device, if the VM has one.
fn vsockDev(self: *const Machine) ?*vsock.Vsock {
    for (self.slots[0..self.slot_count]) |s| switch (s.owner) {
        .vsock => |v| return v,
        else => {},
    };
    return null;
}

fn releaseOwner(gpa: std.mem.Allocator, owner: Owner) void {
    switch (owner) {
        .none => {},
        .balloon => |b| gpa.destroy(b),
        .rng => |r| gpa.destroy(r),
        .console => |c| {
            c.deinit();
            gpa.destroy(c);
        },
        .fs => |f| f.destroy(),
        .blk => |b| {
            b.deinit();
            gpa.destroy(b);
        },
        .vsock => |v| {
            v.deinit(gpa);
            gpa.destroy(v);
        },
        .net => |n| {
            n.deinit(gpa);
            gpa.destroy(n);
        },
    }
}

/// Puts a device on the next MMIO slot: its transport answers the slot's MMIO exits, an irqfd
/// on GSI 5+n carries its interrupts, one ioeventfd per queue (base+0x50, datamatch = queue
/// index) carries the guest's notifications to the event loop, and its backend fds are watched.
pub fn attachDevice(self: *Machine, device: Device, handler: MmioBus.Handler, interrupt: *Device.Interrupt) Error!void {
    assert(self.state == .created and self.loop_ready); // tidy: build order, ours
    assert(self.slot_count < layout.virtio_slots_max); // tidy: attachOwned checked the slot count
    const n = self.slot_count;
    const slot = &self.slots[n];
    slot.device = device;
    self.slot_count += 1; // from here destroy releases the slot's fds
    const base = layout.virtioSlotAddr(n);
    slot.irq_fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    self.vm.irqfd(slot.irq_fd, layout.virtioSlotIrq(n)) catch |err| return kvmFailed("KVM_IRQFD", err);
    interrupt.irqfd = slot.irq_fd;
    const queues = device.vtable.queue_sizes_max.len;
    assert(queues <= Device.queues_max); // tidy: device tables, compiled in
    for (0..queues) |q| {
        const fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
        slot.queue_fds[q] = fd;
        slot.queue_count += 1;
        self.vm.ioeventfd(fd, base + notify_offset, q) catch |err| return kvmFailed("KVM_IOEVENTFD", err);
        _ = self.loop.addEventfd(fd, .{ .ctx = slot, .call = slotQueueNotify, .arg = @intCast(q) }) catch return error.SystemResources;
    }
    if (device.vtable.pollFds) |pollFds| if (device.vtable.backendReady != null) {
        var fds: [8]i32 = undefined;
        const count = pollFds(device.ptr, &fds);
        assert(count <= fds.len); // tidy: a device reports at most 8 fds
        for (fds[0..count]) |fd| {
            _ = self.loop.add(.{ .fd = fd, .handler = .{ .ctx = slot, .call = slotBackendReady, .arg = @bitCast(fd) } }) catch return error.SystemResources;
        }
    };
    self.mmio.attach(n, handler);
}

/// Event-loop handlers: the loop knows fds and handlers, the slot knows its device.
fn slotQueueNotify(ctx: *anyopaque, queue_index: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    const d = slot.device.?;
    d.vtable.queueNotify(d.ptr, @intCast(queue_index));
}

fn slotBackendReady(ctx: *anyopaque, fd: u32, _: u32) void {
    const slot: *Slot = @ptrCast(@alignCast(ctx));
    const d = slot.device.?;
    d.vtable.backendReady.?(d.ptr, @bitCast(fd));
}

/// virtio-MMIO QueueNotify register.
pub const notify_offset: u64 = 0x50;

/// libkrun's prolog (or krun_set_kernel's line), one virtio_mmio.device per slot, then init/'s
/// exec tokens LAST: they may end with `-- args`, after which the kernel passes everything to
/// init as argv.
fn buildCmdline(self: *Machine, cfg: *const Config) Error!void {
    const c = &self.cmdline;
    const custom = if (cfg.kernel) |k| k.cmdline else null;
    if (custom) |line| {
        c.append(line) catch |err| return cmdlineError(err);
    } else {
        c.appendProlog(cfg.kernel_console) catch |err| return cmdlineError(err);
    }
    for (0..self.slot_count) |n| c.appendVirtioMmio(@intCast(n)) catch |err| return cmdlineError(err);
    c.append(cfg.cmdline_extra) catch |err| return cmdlineError(err);
    // TSI on: the guest kernel hijacks the workload's sockets (tsi/PROTOCOL.md).
    const tsi_bits = if (self.vsockDev() != null) cfg.vsockDevice() orelse 0 else 0;
    if (tsi_bits != 0 and !self.kernel_has_tsi) log.info("the kernel has no TSI: tsi_hijack is not passed", .{});
    if (!self.kernel_has_tsi) return self.appendExecTokens(cfg);
    if (tsi_bits & Config.tsi_hijack_inet != 0) c.append("tsi_hijack") catch |err| return cmdlineError(err);
    if (tsi_bits & Config.tsi_hijack_unix != 0) c.append("tsi_hijack_unix") catch |err| return cmdlineError(err);
    try self.appendExecTokens(cfg);
}

/// The block root and init/'s exec tokens, last (they may end with `-- args`).
fn appendExecTokens(self: *Machine, cfg: *const Config) Error!void {
    const c = &self.cmdline;
    // NET_FLAG_DHCP_CLIENT on the first NIC (eth0): libkrun's init runs DHCP there.
    if (cfg.nics.items.len > 0 and cfg.nics.items[0].dhcp) c.append("KRUN_DHCP=1") catch |err| return cmdlineError(err);
    if (cfg.block_root) |root| try appendBlockRoot(c, root);
    if (self.exec) |e| c.append(e.cmdline_tokens) catch |err| return cmdlineError(err);
}

/// Whether the kernel image mentions `tsi_hijack` (its __setup name), when TSI is asked for.
fn kernelHasTsi(cfg: *const Config, image: []const u8) bool {
    const bits = cfg.vsockDevice() orelse return false;
    if (bits == 0) return false;
    return std.mem.indexOf(u8, image, "tsi_hijack\x00") != null;
}

/// krun_set_root_disk_remount's settings, as environment tokens for init (libkrun's names).
/// capi refused values with spaces or quotes, so each stays one token.
fn appendBlockRoot(c: *boot.Cmdline, root: Config.BlockRoot) Error!void {
    var buf: [768]u8 = undefined;
    var w: std.Io.Writer = .fixed(&buf);
    w.print("KRUN_BLOCK_ROOT_DEVICE={s}", .{root.device}) catch return error.InvalidConfig;
    if (root.fstype) |f| w.print(" KRUN_BLOCK_ROOT_FSTYPE={s}", .{f}) catch return error.InvalidConfig;
    if (root.options) |o| w.print(" KRUN_BLOCK_ROOT_OPTIONS={s}", .{o}) catch return error.InvalidConfig;
    c.append(w.buffered()) catch |err| return cmdlineError(err);
}

fn cmdlineError(err: boot.Cmdline.Error) Error {
    log.warn("kernel command line: {t}", .{err});
    return error.InvalidConfig;
}

fn writeBootStructures(self: *Machine, vcpus: u32, initramfs: ?layout.Range) Error!void {
    const mem = &self.mem;
    self.cmdline.store(mem, layout.cmdline_addr) catch unreachable; // tidy: low RAM always exists
    boot.writePageTables(mem) catch unreachable; // tidy: low RAM always exists
    boot.writeGdtIdt(mem) catch unreachable; // tidy: low RAM always exists
    mptable.write(mem, vcpus) catch unreachable; // tidy: vcpus <= cpus_max was checked
    var e820: [layout.ranges_max + 1]boot.E820Entry = undefined;
    const n = boot.e820FromRam(&self.ram, &e820);
    const page = mem.slice(layout.zero_page_addr, boot.bp.size) catch unreachable; // tidy: low RAM always exists
    boot.buildZeroPage(page[0..boot.bp.size], .{
        .cmdline_addr = layout.cmdline_addr,
        .cmdline_len = @intCast(self.cmdline.len),
        .initramfs = initramfs,
        .e820 = e820[0..n],
    });
}

fn buildVcpus(self: *Machine, cfg: *const Config) Error!void {
    var supported: abi.kvm_cpuid2 = undefined;
    self.kvm_fd.supportedCpuid(&supported) catch |err| return kvmFailed("KVM_GET_SUPPORTED_CPUID", err);
    const mmap_size = self.kvm_fd.vcpuMmapSize() catch |err| return kvmFailed("KVM_GET_VCPU_MMAP_SIZE", err);
    self.vcpu_buf = try self.gpa.alloc(Vcpu, cfg.vcpus);
    self.vcpus = self.vcpu_buf[0..0]; // grows as each vCPU is created, so destroy closes exactly those
    for (0..cfg.vcpus) |i| {
        const fd = self.vm.createVcpu(@intCast(i), mmap_size) catch |err| return kvmFailed("KVM_CREATE_VCPU", err);
        self.vcpus.len += 1;
        const v = &self.vcpus[i];
        v.* = .{ .index = @intCast(i), .fd = fd, .control = &self.control };
        v.setup(&supported, cfg.vcpus, self.entry, cfg.nested_virt) catch |err| return kvmFailed("vCPU setup", err);
    }
}

fn kvmFailed(what: []const u8, err: anyerror) Error {
    log.err("{s}: {t}", .{ what, err });
    return switch (err) {
        error.OutOfMemory => error.OutOfMemory,
        error.SystemResources => error.SystemResources,
        else => error.KvmFailed,
    };
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
        if (sys.pollReadable(self.exit_evt, timeout_ms) == .timeout) return error.Timeout;
        self.halt();
        self.joinAll();
        // Stop the devices now, not only in destroy: krun_start_enter _exits right after wait.
        // The guest's last output was written out by the event loop's on_stop (flushOutputs).
        self.shutdownDevices();
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
        .reset => if (self.panicFlagSet())
            .{ .status = exit_code_failure, .reason = .guest_panic }
        else
            .{ .status = 0, .reason = .shutdown },
        .poweroff => .{ .status = 0, .reason = .shutdown },
        .triple_fault => .{ .status = exit_code_failure, .reason = .triple_fault },
        .failure => .{ .status = exit_code_failure, .reason = .vmm_error },
    };
}

fn panicFlagSet(self: *const Machine) bool {
    const flag = self.mem.read(u16, warm_reset_flag_addr) catch return false;
    return std.mem.littleToNative(u16, flag) == warm_reset_flag;
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
    for (self.vcpus) |*v| v.kick();
    self.restoreTerminal();
}

/// How long the end of a VM waits for a reader that takes no output (after krun_stop: not at all).
pub const final_flush_idle_ms = 2000;

/// Event loop's on_stop (its thread, vCPUs joined): the guest's last output — queued in the
/// console's tx queues, often kicked through an ioeventfd the loop never served, and in the
/// rings — is written out while readers take it, bounded by `final_flush_idle_ms` and krun_stop.
fn flushOutputs(ctx: *anyopaque) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    var budget: OutputBuffer.Budget = .{ .stop = &self.stop_requested, .idle_ms = final_flush_idle_ms };
    for (self.slots[0..self.slot_count]) |*s| switch (s.owner) {
        .console => |c| c.flushFinal(&budget),
        else => {},
    };
    self.pio.serial[0].flushFinal(&budget);
}

/// Event loop's on_failure: epoll_wait failed, so no device is served any more; the VM ends
/// (status `exit_code_failure`). Exit reason "VMM error" attaches here.
fn eventLoopFailed(ctx: *anyopaque) void {
    const self: *Machine = @ptrCast(@alignCast(ctx));
    log.warn("the event loop failed: stopping the VM (exit reason: VMM error)", .{});
    self.control.finish(.failure);
    for (self.vcpus) |*v| v.kick();
}

/// Idempotent and safe from any thread (RawMode restores once).
fn restoreTerminal(self: *Machine) void {
    if (self.tty) |*t| if (t.raw) |*r| r.restore();
}

/// Resets every started device (the console discards what is left, the fs worker stops).
/// Idempotent: destroy resets them again, which is then a no-op.
fn shutdownDevices(self: *Machine) void {
    for (self.slots[0..self.slot_count]) |*s| {
        if (s.transport) |t| t.shutdown();
    }
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

fn destroyPartial(self: *Machine) void {
    for (self.vcpus) |*v| v.fd.close();
    if (self.vcpu_buf.len > 0) self.gpa.free(self.vcpu_buf);
    if (self.loop_ready) self.loop.deinit();
    // Devices first (a running fs worker or console stops here), then their fds.
    self.shutdownDevices();
    for (self.slots[0..self.slot_count]) |*s| {
        releaseOwner(self.gpa, s.owner);
        if (s.transport) |t| self.gpa.destroy(t);
        for (s.queue_fds[0..s.queue_count]) |fd| sys.close(fd);
        if (s.irq_fd >= 0) sys.close(s.irq_fd);
    }
    if (self.exec) |*e| e.deinit(self.gpa);
    self.restoreTerminal();
    // After the loop is gone: nothing reads the watch's eventfd any more.
    if (self.tty) |t| if (t.watch) |w| terminal.unwatch(w);
    if (self.vm.fd >= 0) self.vm.close();
    if (self.kvm_fd.fd >= 0) self.kvm_fd.close();
    if (self.serial_irq_fd >= 0) sys.close(self.serial_irq_fd);
    for (&self.pio.serial) |*com| com.deinit();
    if (self.exit_evt >= 0) sys.close(self.exit_evt);
    for (self.maps) |m| if (m) |mapping| sys.munmap(mapping);
    self.gpa.destroy(self);
}

/// KVM_CAP_MAX_VCPUS of this host (capped by what our MP table can describe).
pub fn maxVcpus() Error!u32 {
    var k = kvm.Kvm.open() catch |err| return switch (err) {
        error.KvmUnavailable => error.KvmUnavailable,
        error.SystemResources => error.SystemResources,
    };
    defer k.close();
    return @min(k.maxVcpus(), mptable.cpus_max);
}

/// For krun_get_stats, tests and benches: monotonic ns from create() to the first KVM_RUN (0
/// if it never ran), KVM exits of all vCPUs so far (live), and the bytes of guest RAM (kernel
/// slot included) resident in this process. Any thread; mincore over guest RAM, no lock.
pub const Stats = struct { setup_ns: i64, exits: u64, guest_resident_bytes: u64 };

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
    };
}

fn residentBytes(mapping: loader.Mapping) u64 {
    const page = std.heap.page_size_min;
    var vec: [4096]u8 = undefined;
    var total: u64 = 0;
    var off: usize = 0;
    while (off < mapping.len) {
        const len = @min(mapping.len - off, vec.len * page);
        if (linux.errno(linux.mincore(mapping[off..].ptr, len, &vec)) != .SUCCESS) return 0;
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
    try testing.expectEqual(bytes.len, linux.write(fd, bytes.ptr, bytes.len));
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
    const n = linux.read(fd, &buf, buf.len);
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
    const dup = linux.fcntl(m.loop.epfd, linux.F.DUPFD_CLOEXEC, 0);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(dup));
    sys.close(m.loop.epfd);
    m.loop.epfd = -1;
    defer m.loop.epfd = @intCast(dup); // closed by destroy
    try m.start();
    try testing.expectEqual(exit_code_failure, try m.wait(60_000));
    try testing.expectEqual(ExitReason.vmm_error, m.exitReason());
}
