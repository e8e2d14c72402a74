//! The recipe from a context's Config to a runnable Machine (vmm/Machine.zig), in this order:
//! KVM and the VM fd; guest RAM (anonymous, not preallocated) and the kernel (libkrunfw bundle
//! mapped copy-on-write into its own slot, or krun_set_kernel's file); the arch backend's VM
//! setup (x86_64: TSS, in-kernel irqchip, PIT) and legacy bus; the vCPUs and the arch's finishVm
//! (aarch64: the vgic, which irqfds need); the event loop; the serial console; the virtio
//! devices in libkrun's attach order (vmm/DeviceManager.zig puts each on its slot); the command
//! line; the boot structures. Everything the VM will ever need is allocated here:
//! Machine.start only spawns threads, and no exit or device path allocates.
const std = @import("std");
const linux = std.os.linux;
const Config = @import("../Config.zig");
const Balloon = @import("../virtio/balloon.zig").Balloon;
const Rng = @import("../virtio/rng.zig").Rng;
const console = @import("../virtio/console.zig");
const VirtioFs = @import("../virtio/fs/VirtioFs.zig");
const Blk = @import("../virtio/blk/Blk.zig");
const Image = @import("../virtio/blk/Image.zig");
const vsock = @import("../virtio/vsock/Vsock.zig");
const Net = @import("../virtio/net/Net.zig");
const net_backend = @import("../virtio/net/backend.zig");
const tsi = @import("../tsi/Service.zig");
const protocol = @import("init_protocol");
const arch = @import("arch.zig").current;
const kvm = @import("kvm.zig");
const sys = @import("../sys/linux.zig");
const Notifier = @import("Notifier.zig");
const loader = @import("kernel_loader.zig");
const terminal = @import("terminal.zig");
const Vcpu = @import("Vcpu.zig");
const OutputBuffer = @import("OutputBuffer.zig");
const Machine = @import("Machine.zig");

const log = std.log.scoped(.vmm);

const Error = Machine.Error;

/// What the build steps hand each other; only the Machine outlives create().
const Builder = struct {
    m: *Machine,
    cfg: *const Config,
    entry: u64 = 0,
    /// The kernel knows the `tsi_hijack` parameter (our libkrunfw has TSI). A kernel without it
    /// would hand the parameter to init as an argument (upstream libkrun's trap), so TSI's
    /// parameters go on the command line only for a kernel that has them.
    kernel_has_tsi: bool = false,
    cmdline: arch.Cmdline = .{},
};

pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    const created_ns = sys.nowNs();
    const m = try gpa.create(Machine);
    m.* = .{
        .gpa = gpa,
        .kvm_fd = .{ .fd = -1 },
        .vm = .{ .fd = -1 },
        .ram = .{},
        .pio = arch.legacyBus(&arch.Ram{}),
        .control = undefined,
        .created_ns = created_ns,
        .devices = .{ .slots = .{ .gpa = gpa, .mem = &m.mem, .loop = &m.loop, .mmio = &m.mmio }, .vm = .{ .fd = -1 } },
    };
    // From here on `destroyPartial` releases whatever was built so far.
    errdefer m.destroyPartial();
    m.kvm_fd = kvm.Kvm.open() catch |err| return switch (err) {
        error.KvmUnavailable => error.KvmUnavailable,
        error.SystemResources => error.SystemResources,
    };
    const vcpus_max = @min(m.kvm_fd.maxVcpus(), arch.vcpus_max);
    if (cfg.vcpus == 0 or cfg.vcpus > vcpus_max or cfg.ram_mib == 0 or cfg.ram_mib > arch.ram_mib_max) {
        log.warn("invalid VM size: {d} vCPUs (max {d}), {d} MiB", .{ cfg.vcpus, vcpus_max, cfg.ram_mib });
        return error.InvalidConfig;
    }
    m.vm = m.kvm_fd.createVm() catch |err| return kvmFailed("KVM_CREATE_VM", err);
    m.devices.vm = m.vm;
    m.exit_evt = Notifier.init() catch return error.SystemResources;
    m.control = .{ .pio = &m.pio, .mmio = &m.mmio, .exit_evt = m.exit_evt };
    var b: Builder = .{ .m = m, .cfg = cfg };
    try build(&b);
    return m;
}

fn build(b: *Builder) Error!void {
    const m = b.m;
    const initramfs = try buildMemory(b);
    try arch.setupVm(m.vm);
    m.pio = arch.legacyBus(&m.ram);
    arch.attachLegacy(&m.pio, &m.mmio);
    // The vCPUs before any irqfd: aarch64's vgic needs every vCPU, and irqfds need the vgic.
    try buildVcpus(b);
    m.loop.init() catch return error.SystemResources;
    m.loop_ready = true;
    m.loop.on_stop = .{ .ctx = m, .call = Machine.flushOutputs };
    m.loop.on_failure = .{ .ctx = m, .call = Machine.eventLoopFailed };
    try m.attachPauseGate();
    try buildSerial(b);
    try buildDevices(b);
    try buildCmdline(b);
    arch.writeBoot(&m.mem, &m.ram, .{
        .cmdline = &b.cmdline,
        .vcpus = b.cfg.vcpus,
        .initramfs = initramfs,
        .devices = m.devices.count(),
    }) catch |err| return err;
}

/// Maps RAM and the kernel; loads the kernel and initramfs. Returns the initramfs range.
fn buildMemory(b: *Builder) Error!?arch.Range {
    const m = b.m;
    const cfg = b.cfg;
    var elf_file: ?loader.Mapping = null;
    defer if (elf_file) |f| sys.munmap(f);
    var bundle: ?loader.Mapping = null;
    errdefer if (bundle) |k| sys.munmap(k);
    if (cfg.kernel) |k| switch (k.format) {
        .elf => {
            elf_file = try loader.mapFile(k.path);
            b.kernel_has_tsi = tsiWanted(cfg) and loader.kernelHasTsi(elf_file.?);
            m.ram = arch.ramPlain(cfg.ram_mib);
        },
        .raw, .image_gz => {
            // IMAGE_GZ is an arm64 Image.gz; x86_64 boots ELF or RAW (capi rejects it at the call).
            if (k.format == .image_gz and @import("builtin").cpu.arch != .aarch64) {
                log.warn("kernel format {t} is not supported on {s}", .{ k.format, arch.name });
                return error.KernelInvalid;
            }
            bundle = if (k.format == .raw) try loader.mapFile(k.path) else try loader.inflateFile(k.path, arch.kernel_load_addr);
            const plan = try loader.planBundle(bundle.?, arch.kernel_load_addr, arch.kernel_load_addr, cfg.ram_mib);
            b.kernel_has_tsi = tsiWanted(cfg) and loader.kernelHasTsi(bundle.?);
            b.entry = plan.entry;
            m.ram = plan.ram;
        },
        else => {
            log.warn("kernel format {t} is not supported on {s}", .{ k.format, arch.name });
            return error.KernelInvalid;
        },
    } else {
        const fw = try loader.Firmware.shared(false);
        const plan = try loader.planBundle(fw.bundle, fw.load_addr, fw.entry, cfg.ram_mib);
        bundle = try loader.mapBundlePrivate(fw.bundle, fw.backing);
        b.kernel_has_tsi = tsiWanted(cfg) and fw.hasTsi();
        b.entry = plan.entry;
        m.ram = plan.ram;
    }
    for (m.ram.slice(), 0..) |r, i| {
        const is_kernel = m.ram.kernel_index != null and m.ram.kernel_index.? == i;
        const host = if (is_kernel) bundle.? else try loader.mapGuestRam(r.len, r.start);
        m.maps[i] = host;
        if (is_kernel) bundle = null; // owned by maps[] now
        loader.adviseGuestMemory(host);
        m.mem.addRegion(r.start, host) catch unreachable; // tidy: our own ranges, which never overlap
        m.vm.setUserMemoryRegion(@intCast(i), r.start, host) catch |err| return kvmFailed("KVM_SET_USER_MEMORY_REGION", err);
    }
    var kernel_end: u64 = if (m.ram.kernel_index) |k| m.ram.ranges[k].end() else 0;
    if (elf_file) |f| {
        const loaded = try loader.loadElf(&m.mem, &m.ram, f);
        b.entry = loaded.entry;
        kernel_end = loaded.end;
    }
    const k = cfg.kernel orelse return null;
    const path = k.initramfs orelse return null;
    return try loader.loadInitramfs(&m.mem, &m.ram, path, kernel_end);
}

/// COM1 is a console only when the kernel console is ttyS0; all COM ports are sinks otherwise.
/// Its output (Config.console_output, else our stdout) is drained by the event loop.
fn buildSerial(b: *Builder) Error!void {
    const m = b.m;
    if (!std.mem.startsWith(u8, kernelConsole(b.cfg), "ttyS0")) return;
    const com1 = &m.pio.serial[0];
    if (b.cfg.console_output) |path| {
        const fd = openOutput(path) orelse return error.SystemResources;
        defer sys.close(fd);
        com1.out = OutputBuffer.Sink.open(fd) catch return error.SystemResources;
    } else {
        com1.out = OutputBuffer.Sink.open(1) catch return error.SystemResources;
    }
    com1.watch(&m.loop) catch return error.SystemResources;
    m.serial_irq_fd = sys.eventfd(linux.EFD.NONBLOCK) catch return error.SystemResources;
    m.vm.irqfd(m.serial_irq_fd, arch.console_serial_irq) catch |err| return kvmFailed("KVM_IRQFD (serial)", err);
    com1.irq_fd = m.serial_irq_fd;
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
    return sys.openMode(@ptrCast(&z), .{ .ACCMODE = .WRONLY, .CREAT = true, .APPEND = true, .CLOEXEC = true }, 0o644) catch |err| {
        log.warn("cannot open console output {s}: {t}", .{ path, err });
        return null;
    };
}

/// The virtio devices, in libkrun's attach order: balloon → rng → console → fs → block →
/// vsock → net. Each gets a transport on the next slot.
fn buildDevices(b: *Builder) Error!void {
    const m = b.m;
    const cfg = b.cfg;
    try attachBalloonAndRng(m.gpa, &m.devices);
    if (cfg.implicit_console) try buildConsole(b, null);
    if (cfg.console_default) |fds| try buildConsole(b, fds);
    try encodeExec(b);
    try attachVirtioFs(m.gpa, &m.devices, cfg, &m.guest_exit_code, m.exec);
    for (cfg.disks.items) |disk| try buildDisk(b, disk);
    try buildVsock(b);
    var legacy: [1]Config.Nic = undefined;
    for (cfg.allNics(&legacy)) |nic| try buildNic(b, nic);
}

/// The first devices of libkrun's order, balloon and rng, on `devices` (KVM's DeviceManager or
/// the HVF backend's Devices: anything with `attachOwned`). Shared with the HVF backend.
pub fn attachBalloonAndRng(gpa: std.mem.Allocator, devices: anytype) !void {
    const balloon = try gpa.create(Balloon);
    balloon.* = .{};
    try devices.attachOwned(balloon);
    const rng = try gpa.create(Rng);
    rng.* = .{};
    try devices.attachOwned(rng);
}

/// virtio-fs: krun_set_root's root and krun_add_virtiofs's shares, in the context's order, on
/// `devices` (KVM's DeviceManager or the HVF backend's Devices). The root's server reports the
/// workload's exit code into `exit_code` and serves the exec config JSON, if `exec` has one, as
/// an overlay file. Shared with the HVF backend.
pub fn attachVirtioFs(gpa: std.mem.Allocator, devices: anytype, cfg: *const Config, exit_code: *std.atomic.Value(i32), exec: ?protocol.Encoded) Error!void {
    for (cfg.virtiofs.items) |fs| {
        const is_root = std.mem.eql(u8, fs.tag, Config.root_tag);
        const dev = VirtioFs.fromConfig(gpa, cfg, fs, if (is_root) exit_code else null) catch |err| {
            log.warn("virtio-fs {s}: {t}", .{ fs.tag, err });
            return if (err == error.OutOfMemory) error.OutOfMemory else error.InvalidConfig;
        };
        try devices.attachOwned(dev);
        const json = if (exec) |e| e.config_json else null;
        if (is_root and json != null) dev.server.addOverlayFile(protocol.config_overlay_path, json.?, protocol.config_file_mode, false) catch
            return error.InvalidConfig;
    }
}

/// Opens a NIC's backend (virtio/net/backend.zig) and puts a virtio-net device on the next slot.
fn buildNic(b: *Builder, nic: Config.Nic) Error!void {
    const m = b.m;
    const opened = net_backend.open(nic.backend) catch |err| return switch (err) {
        error.InvalidConfig => error.InvalidConfig,
        error.SystemResources => error.SystemResources,
    };
    const dev = m.gpa.create(Net.Net) catch |err| {
        sys.close(opened.fd);
        return err;
    };
    dev.init(m.gpa, .{ .fd = opened.fd, .kind = opened.kind, .mac = nic.mac, .features = nic.features }) catch |err| {
        m.gpa.destroy(dev);
        return if (err == error.OutOfMemory) error.OutOfMemory else error.SystemResources;
    };
    try m.devices.attachOwned(dev);
}

/// Opens (and locks) a disk image and puts a virtio-blk device for it on the next slot.
fn buildDisk(b: *Builder, disk: Config.Disk) Error!void {
    const m = b.m;
    var z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (disk.path.len > std.fs.max_path_bytes) return error.InvalidConfig;
    @memcpy(z[0..disk.path.len], disk.path);
    z[disk.path.len] = 0;
    const image = Image.open(m.gpa, @ptrCast(&z), .{
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
    const blk = m.gpa.create(Blk) catch |err| {
        image.close();
        return err;
    };
    blk.init(image, disk.block_id) catch {
        image.close();
        m.gpa.destroy(blk);
        return error.SystemResources;
    };
    try m.devices.attachOwned(blk);
}

/// The vsock device (Config.vsockDevice decides whether there is one and with which TSI
/// families) with the context's vsock ports; listen ports are bound here.
fn buildVsock(b: *Builder) Error!void {
    const m = b.m;
    const cfg = b.cfg;
    const tsi_bits = cfg.vsockDevice() orelse return;
    const policy: ?tsi.Policy = if (tsi_bits == 0) null else .{
        .port_map = cfg.port_map,
        .inet = tsi_bits & Config.tsi_hijack_inet != 0,
        .unix = tsi_bits & Config.tsi_hijack_unix != 0,
    };
    var ports: [vsock.ports_max]vsock.PortConfig = undefined;
    if (cfg.vsock_ports.items.len > ports.len) return error.InvalidConfig;
    for (cfg.vsock_ports.items, 0..) |p, i| ports[i] = .{ .port = p.port, .path = p.path, .listen = p.listen };
    const dev = try m.gpa.create(vsock.Vsock);
    dev.init(m.gpa, .{ .ports = ports[0..cfg.vsock_ports.items.len], .tsi = policy }) catch |err| {
        m.gpa.destroy(dev);
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
    try m.devices.attachOwned(dev);
}

fn buildConsole(b: *Builder, fds: ?Config.ConsoleFds) Error!void {
    const m = b.m;
    const cfg = b.cfg;
    var out_fd: sys.fd_t = -1;
    defer if (out_fd >= 0) sys.close(out_fd); // the console dups what it keeps
    if (fds == null) if (cfg.console_output) |path| {
        out_fd = openOutput(path) orelse return error.InvalidConfig;
    };
    const c = try newConsole(m.gpa, consolePorts(cfg, fds, out_fd));
    try m.devices.attachOwned(c);
    c.watch(&m.loop) catch return error.SystemResources;
    const term = if (fds) |f| terminal.terminalFd(&.{ f.input, f.output }) else if (cfg.console_output == null) terminal.terminalFd(&.{ 0, 1 }) else null;
    if (m.tty == null) if (term) |fd| try m.attachTerminal(fd, c);
}

/// A console's ports, libkrun's way: krun_add_virtio_console_default's fds, else
/// krun_set_console_output's file (`output_fd`, opened by the caller), else stdin/stdout/stderr;
/// the implicit console also carries the signal port. Shared with the HVF backend.
pub fn consolePorts(cfg: *const Config, fds: ?Config.ConsoleFds, output_fd: i32) console.Ports {
    var ports = if (fds) |f| console.defaultPorts(f.input, f.output, f.err) else if (cfg.console_output != null)
        console.outputFilePorts(output_fd)
    else
        console.defaultPorts(0, 1, 2);
    if (fds == null and cfg.signal_fd >= 0 and ports.len < console.ports_max)
        ports.add(.{ .name = console.signal_port_name, .input_fd = cfg.signal_fd });
    return ports;
}

/// A console device (allocated with `gpa`) over `ports`. Shared with the HVF backend.
pub fn newConsole(gpa: std.mem.Allocator, ports: console.Ports) Error!*console.Console {
    const c = try gpa.create(console.Console);
    c.init(ports.slice()) catch |err| {
        gpa.destroy(c);
        return if (err == error.SystemResources) error.SystemResources else error.InvalidConfig;
    };
    return c;
}

/// init/'s encoder decides how the exec config travels (cmdline tokens or JSON on the root fs).
fn encodeExec(b: *Builder) Error!void {
    b.m.exec = try encodeExecConfig(b.m.gpa, b.cfg);
}

/// The workload (krun_set_exec, krun_set_env, krun_set_workdir, krun_set_rlimits) encoded for
/// init/ (protocol/init.zig): command-line tokens, plus a JSON document for the root virtio-fs
/// when the line cannot carry it faithfully; null when nothing is configured. A config that
/// needs the JSON without a root to carry it is refused. Shared with the HVF backend.
pub fn encodeExecConfig(gpa: std.mem.Allocator, cfg: *const Config) Error!?protocol.Encoded {
    if (cfg.exec_path == null and cfg.argv.len == 0 and cfg.workdir == null and cfg.rlimits.len == 0 and
        (cfg.envp == null or cfg.envp.?.len == 0)) return null;
    var enc = protocol.encode(gpa, .{
        .exec_path = cfg.exec_path,
        .args = cfg.argv,
        .env = cfg.envp orelse &.{},
        .workdir = cfg.workdir,
        .rlimits = cfg.rlimits,
    }) catch |err| {
        log.warn("exec config: {t}", .{err});
        return if (err == error.OutOfMemory) error.OutOfMemory else error.InvalidConfig;
    };
    if (enc.config_json != null and cfg.rootFs() == null) {
        enc.deinit(gpa);
        log.warn("exec config needs the root virtio-fs to carry it", .{});
        return error.InvalidConfig;
    }
    return enc;
}

/// libkrun's prolog (or krun_set_kernel's line), one virtio_mmio.device per slot, then init/'s
/// exec tokens LAST: they may end with `-- args`, after which the kernel passes everything to
/// init as argv.
fn buildCmdline(b: *Builder) Error!void {
    const c = &b.cmdline;
    const cfg = b.cfg;
    try appendBaseCmdline(c, cfg);
    for (0..b.m.devices.count()) |n| c.appendVirtioMmio(@intCast(n)) catch |err| return cmdlineError(err);
    c.append(cfg.cmdline_extra) catch |err| return cmdlineError(err);
    // TSI on: the guest kernel hijacks the workload's sockets (tsi/PROTOCOL.md).
    const tsi_bits = if (b.m.devices.vsockDevice() != null) cfg.vsockDevice() orelse 0 else 0;
    if (tsi_bits != 0 and !b.kernel_has_tsi) log.info("the kernel has no TSI: tsi_hijack is not passed", .{});
    if (!b.kernel_has_tsi) return appendExecTokens(b);
    if (tsi_bits & Config.tsi_hijack_inet != 0) c.append("tsi_hijack") catch |err| return cmdlineError(err);
    if (tsi_bits & Config.tsi_hijack_unix != 0) c.append("tsi_hijack_unix") catch |err| return cmdlineError(err);
    try appendExecTokens(b);
}

/// The start of every command line: krun_set_kernel's own line, or libkrun's prolog with the
/// context's console. Shared with the HVF backend (hvf/Machine.zig).
pub fn appendBaseCmdline(c: *arch.Cmdline, cfg: *const Config) Error!void {
    const custom = if (cfg.kernel) |k| k.cmdline else null;
    if (custom) |line| {
        c.append(line) catch |err| return cmdlineError(err);
    } else {
        c.appendProlog(cfg.kernel_console) catch |err| return cmdlineError(err);
    }
}

/// The block root and init/'s exec tokens, last (they may end with `-- args`).
fn appendExecTokens(b: *Builder) Error!void {
    const c = &b.cmdline;
    const cfg = b.cfg;
    // NET_FLAG_DHCP_CLIENT on the first NIC (eth0): libkrun's init runs DHCP there.
    if (cfg.nics.items.len > 0 and cfg.nics.items[0].dhcp) c.append("KRUN_DHCP=1") catch |err| return cmdlineError(err);
    if (cfg.block_root) |root| try appendBlockRoot(c, root);
    if (b.m.exec) |e| c.append(e.cmdline_tokens) catch |err| return cmdlineError(err);
}

/// Whether the VM's vsock carries TSI (only then is the kernel asked whether it knows
/// `tsi_hijack`, its __setup name: loader.kernelHasTsi).
fn tsiWanted(cfg: *const Config) bool {
    const bits = cfg.vsockDevice() orelse return false;
    return bits != 0;
}

/// krun_set_root_disk_remount's settings, as environment tokens for init (libkrun's names).
/// capi refused values with spaces or quotes, so each stays one token.
fn appendBlockRoot(c: *arch.Cmdline, root: Config.BlockRoot) Error!void {
    var buf: [768]u8 = undefined;
    var w: std.Io.Writer = .fixed(&buf);
    w.print("KRUN_BLOCK_ROOT_DEVICE={s}", .{root.device}) catch return error.InvalidConfig;
    if (root.fstype) |f| w.print(" KRUN_BLOCK_ROOT_FSTYPE={s}", .{f}) catch return error.InvalidConfig;
    if (root.options) |o| w.print(" KRUN_BLOCK_ROOT_OPTIONS={s}", .{o}) catch return error.InvalidConfig;
    c.append(w.buffered()) catch |err| return cmdlineError(err);
}

fn cmdlineError(err: arch.Cmdline.Error) Error {
    log.warn("kernel command line: {t}", .{err});
    return error.InvalidConfig;
}

fn buildVcpus(b: *Builder) Error!void {
    const m = b.m;
    const count = b.cfg.vcpus;
    var template: arch.VcpuTemplate = undefined;
    try arch.vcpuTemplate(m.kvm_fd, m.vm, &template);
    const mmap_size = m.kvm_fd.vcpuMmapSize() catch |err| return kvmFailed("KVM_GET_VCPU_MMAP_SIZE", err);
    m.vcpu_buf = try m.gpa.alloc(Vcpu, count);
    m.vcpus = m.vcpu_buf[0..0]; // grows as each vCPU is created, so destroy closes exactly those
    for (0..count) |i| {
        const fd = m.vm.createVcpu(@intCast(i), mmap_size) catch |err| return kvmFailed("KVM_CREATE_VCPU", err);
        m.vcpus.len += 1;
        const v = &m.vcpus[i];
        v.* = .{ .index = @intCast(i), .fd = fd, .control = &m.control };
        arch.setupVcpu(fd, &template, .{
            .index = @intCast(i),
            .count = count,
            .entry = b.entry,
            .nested_virt = b.cfg.nested_virt,
            .ram = &m.ram,
        }) catch |err| return kvmFailed("vCPU setup", err);
    }
    try arch.finishVm(m.vm, count);
    if (count > 0) preFaultKernel(m, m.vcpus[0].fd);
}

/// The kernel slot's pages in KVM's nested page tables in one call before the guest runs,
/// instead of one exit per page as the guest first executes or reads them (~1,900 pages of
/// libkrunfw's kernel). The slot is a private file mapping: the pages map read-only from the
/// page cache (VmRSS counts them as shared file pages, RssAnon does not grow), and a page the
/// guest writes still faults once, for its copy. Best effort: KVM before Linux 6.10, arm64 KVM
/// and a VM without nested paging answer no, and the guest faults its pages in as before.
fn preFaultKernel(m: *Machine, vcpu: kvm.VcpuFd) void {
    const k = m.ram.kernel_index orelse return;
    if (m.kvm_fd.checkExtension(.pre_fault_memory) == 0) return;
    const r = m.ram.ranges[k];
    vcpu.preFaultMemory(r.start, r.len) catch |err| {
        log.debug("KVM_PRE_FAULT_MEMORY of the kernel: {t}", .{err});
        return;
    };
    m.kernel_prefaulted_bytes = r.len;
}

fn kvmFailed(what: []const u8, err: anyerror) Error {
    log.err("{s}: {t}", .{ what, err });
    return switch (err) {
        error.OutOfMemory => error.OutOfMemory,
        error.SystemResources => error.SystemResources,
        else => error.KvmFailed,
    };
}

test "encodeExecConfig: nothing set is null; plain args are tokens; JSON without a root is refused and freed, with one it is kept" {
    const gpa = std.testing.allocator;
    var cfg = Config.init(gpa);
    defer cfg.deinit();
    try std.testing.expectEqual(@as(?protocol.Encoded, null), try encodeExecConfig(gpa, &cfg));
    cfg.exec_path = "/bin/echo";
    cfg.argv = &.{"hi"};
    var plain = (try encodeExecConfig(gpa, &cfg)).?;
    defer plain.deinit(gpa);
    try std.testing.expect(plain.config_json == null);
    try std.testing.expect(std.mem.indexOf(u8, plain.cmdline_tokens, "hi") != null);
    // A `"` cannot travel on the kernel command line: the whole config goes to JSON.
    cfg.argv = &.{"say \"hi\""};
    try std.testing.expectError(error.InvalidConfig, encodeExecConfig(gpa, &cfg)); // and freed: the testing allocator reports leaks
    try cfg.virtiofs.append(cfg.allocator(), .{ .tag = Config.root_tag, .path = "/" });
    var json = (try encodeExecConfig(gpa, &cfg)).?;
    defer json.deinit(gpa);
    try std.testing.expect(json.config_json != null);
}
