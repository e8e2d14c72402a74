//! The virtio devices this layer builds for one VM from its Config, each with its MMIO
//! transport, in libkrun's attach order: balloon → rng → implicit console (hvc0) → the
//! `krun_add_virtio_console_default` console. (virtio-fs and vsock come after these and are
//! built by their own owners.) It also owns the host terminal's raw mode while the VM runs.
//!
//! VMM usage (Machine.buildDevices):
//!     self.devices = try Devices.create(gpa, cfg, &self.mem);
//!     for (self.devices.slots()) |s| try self.attachDevice(s.device(), s.handler(), s.interrupt());
//! and on every exit path: `devices.restoreTerminal()` (idempotent); `devices.destroy()` once
//! the vCPUs and the event loop are stopped.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const GuestMemory = @import("../vmm/GuestMemory.zig");
const Mmio = @import("../vmm/Mmio.zig");
const Device = @import("Device.zig");
const mmio = @import("mmio.zig");
const console = @import("console.zig");
const Balloon = @import("balloon.zig").Balloon;
const Rng = @import("rng.zig").Rng;

const log = std.log.scoped(.virtio);

const Devices = @This();

/// balloon, rng, implicit console, default console.
pub const slots_max = 4;

/// One device and its transport. Heap-allocated together: neither may move.
pub const Slot = struct {
    transport: mmio.Transport = undefined,
    kind: union(enum) { balloon: Balloon, rng: Rng, console: console.Console },

    pub fn device(s: *Slot) Device {
        return s.transport.device;
    }

    /// What the MMIO bus calls on exits in this device's window.
    pub fn handler(s: *Slot) Mmio.Handler {
        return Mmio.Handler.of(mmio.Transport, &s.transport);
    }

    pub fn interrupt(s: *Slot) *Device.Interrupt {
        return &s.transport.interrupt;
    }
};

gpa: std.mem.Allocator,
list: [slots_max]*Slot = undefined,
count: u8 = 0,
raw_mode: ?console.RawMode = null,

pub const CreateError = error{ OutOfMemory, SystemResources, InvalidConfig };

pub fn create(gpa: std.mem.Allocator, cfg: *const Config, mem: *const GuestMemory) CreateError!*Devices {
    const self = try gpa.create(Devices);
    self.* = .{ .gpa = gpa };
    errdefer self.destroy();
    // libkrun always has balloon and rng (free page reporting, host entropy).
    const balloon = try self.add(.{ .balloon = .{} });
    balloon.transport.init(balloon.kind.balloon.device(), mem);
    const rng = try self.add(.{ .rng = .{} });
    rng.transport.init(rng.kind.rng.device(), mem);
    if (cfg.implicit_console) try self.addImplicitConsole(mem, cfg);
    if (cfg.console_default) |fds| try self.addConsole(mem, console.defaultPorts(fds.input, fds.output, fds.err));
    return self;
}

/// Host side teardown: the devices stop, fds close, the terminal is restored.
pub fn destroy(self: *Devices) void {
    self.restoreTerminal();
    for (self.list[0..self.count]) |s| {
        // Every slot past `add` has an initialized transport (add is followed by init).
        s.transport.shutdown();
        switch (s.kind) {
            .console => |*c| c.deinit(),
            else => {},
        }
        self.gpa.destroy(s);
    }
    self.gpa.destroy(self);
}

pub fn slots(self: *Devices) []*Slot {
    return self.list[0..self.count];
}

/// Puts the host terminal back the way we found it; safe to call more than once.
pub fn restoreTerminal(self: *Devices) void {
    const raw = self.raw_mode orelse return;
    raw.restore();
    self.raw_mode = null;
}

fn add(self: *Devices, kind: @FieldType(Slot, "kind")) CreateError!*Slot {
    assert(self.count < slots_max);
    const s = try self.gpa.create(Slot);
    s.* = .{ .kind = kind };
    self.list[self.count] = s;
    self.count += 1;
    return s;
}

fn addConsole(self: *Devices, mem: *const GuestMemory, ports: console.Ports) CreateError!void {
    const s = try self.add(.{ .console = undefined });
    s.kind.console.init(ports.slice()) catch |err| {
        // Not a console yet: take the slot back so destroy does not deinit it.
        self.count -= 1;
        self.gpa.destroy(s);
        return err;
    };
    s.transport.init(s.kind.console.device(), mem);
    // libkrun puts the terminal of a console port in raw mode (the guest's tty does the work).
    if (self.raw_mode == null) for (ports.slice()) |p| if (p.console) {
        const fd = console.terminalFd(&.{ p.input_fd, p.output_fd }) orelse continue;
        self.raw_mode = console.RawMode.enter(fd);
    };
}

/// The implicit console: into the `krun_set_console_output` file (no input) when the kernel
/// console is hvc0, else on the process's stdin/stdout/stderr.
fn addImplicitConsole(self: *Devices, mem: *const GuestMemory, cfg: *const Config) CreateError!void {
    const to_file = cfg.console_output != null and !std.mem.startsWith(u8, cfg.kernel_console, "ttyS");
    if (!to_file) return self.addConsole(mem, console.defaultPorts(0, 1, 2));
    const path = cfg.console_output.?;
    var buf: [linux.PATH_MAX]u8 = undefined;
    if (path.len >= buf.len) return error.InvalidConfig;
    @memcpy(buf[0..path.len], path);
    buf[path.len] = 0;
    const rc = linux.open(buf[0..path.len :0], .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644);
    if (linux.errno(rc) != .SUCCESS) {
        log.warn("cannot open console output {s}: {t}", .{ path, linux.errno(rc) });
        return error.SystemResources;
    }
    // The console keeps a dup of it.
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    try self.addConsole(mem, console.outputFilePorts(fd));
}

const testing = std.testing;

test "the device set follows libkrun's order and Config; console output goes to the file" {
    var cfg = Config.init(testing.allocator);
    defer cfg.deinit();
    var path_buf: [64]u8 = undefined;
    const path = try std.fmt.bufPrintSentinel(&path_buf, "/tmp/zkrun-devices-{d}.out", .{linux.getpid()}, 0);
    defer _ = linux.unlink(path);
    cfg.console_output = path;
    var ram: [64 * 1024]u8 align(4096) = undefined;
    var mem: GuestMemory = .{};
    try mem.addRegion(0x10_0000, &ram);
    const devs = try Devices.create(testing.allocator, &cfg, &mem);
    defer devs.destroy();
    try testing.expectEqual(@as(usize, 3), devs.slots().len);
    const ids = [_]u32{ 5, 4, 3 };
    for (devs.slots(), ids) |s, id| {
        try testing.expectEqual(id, s.device().deviceId());
        var b: [4]u8 = undefined;
        s.handler().read(s.handler().ctx, mmio.Reg.device_id, &b);
        try testing.expectEqual(id, std.mem.readInt(u32, &b, .little));
    }
    try testing.expectEqual(@as(usize, 4), devs.slots()[2].device().vtable.queue_sizes_max.len);
    try testing.expectEqual(linux.E.SUCCESS, linux.errno(linux.access(path, linux.F_OK)));

    cfg.implicit_console = false;
    cfg.console_default = .{ .input = -1, .output = -1, .err = -1 };
    cfg.console_output = null;
    const devs2 = try Devices.create(testing.allocator, &cfg, &mem);
    defer devs2.destroy();
    try testing.expectEqual(@as(usize, 3), devs2.slots().len);
    try testing.expect(devs2.raw_mode == null);
}
