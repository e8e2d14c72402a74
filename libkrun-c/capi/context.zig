//! Context lifecycle and process-wide queries: krun_create_ctx, krun_free_ctx, krun_start_enter,
//! the zkrun extensions krun_start / krun_wait / krun_stop / krun_get_exit_reason /
//! krun_set_console_size / krun_get_stats, krun_has_feature, krun_get_max_vcpus, krun_check_nested_virt, krun_get_shutdown_eventfd, krun_setuid/setgid.
//! Machine errors become errno values here, with an exhaustive switch.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const Machine = @import("../vmm/backend.zig").Machine;
const loader = @import("../vmm/kernel_loader.zig");
const log = @import("../log.zig");
const contexts = @import("contexts.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const Error = errors.Error;
const reject = errors.reject;

pub fn krun_create_ctx() callconv(.c) i32 {
    // libkrun opens libkrunfw here, and clients rely on it: crun creates the context before it
    // enters a container that has no libkrunfw. Outside the lock (dlopen is slow). Not finding
    // it is no error yet: krun_set_kernel needs none, and the start says "no kernel".
    _ = loader.Firmware.shared(true) catch {};
    contexts.lock();
    defer contexts.unlock();
    const id = contexts.create("krun_create_ctx") catch |err| return errors.errno(err);
    log.print(.debug, "krun_create_ctx", "context {d} created", .{id});
    return @intCast(id);
}

pub fn krun_free_ctx(ctx_id: u32) callconv(.c) i32 {
    const slot = claimFree(ctx_id) catch |err| return errors.errno(err);
    // Without the lock: joining a VM's threads must not hold up every other context.
    contexts.finishRelease(slot);
    return 0;
}

fn claimFree(ctx_id: u32) Error!*contexts.Slot {
    const func = "krun_free_ctx";
    contexts.lock();
    defer contexts.unlock();
    const slot = try contexts.find(func, ctx_id);
    if (slot.waiting) return reject(func, error.Busy, "a thread is waiting on context {d} in krun_wait", .{ctx_id});
    if (slot.state == .starting) return reject(func, error.Busy, "context {d} is starting in another thread", .{ctx_id});
    contexts.beginRelease(slot);
    return slot;
}

pub fn krun_setuid(ctx_id: u32, uid: std.c.uid_t) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_setuid", ctx_id) catch |err| return errors.errno(err);
    cfg.uid = uid;
    return 0;
}

pub fn krun_setgid(ctx_id: u32, gid: std.c.gid_t) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_setgid", ctx_id) catch |err| return errors.errno(err);
    cfg.gid = gid;
    return 0;
}

// ---- running -------------------------------------------------------------------------------

pub fn krun_start(ctx_id: u32) callconv(.c) i32 {
    const func = "krun_start";
    const slot = claimStart(func, ctx_id) catch |err| return errors.errno(err);
    const machine = build(func, slot) catch |err| {
        contexts.lock();
        defer contexts.unlock();
        slot.state = .configuring; // as before the call: the context can be fixed and retried
        slot.stop_requested = false;
        return errors.errno(err);
    };
    contexts.lock();
    defer contexts.unlock();
    slot.machine = machine;
    slot.state = .started;
    if (slot.stop_requested) machine.stop();
    return 0;
}

pub fn krun_wait(ctx_id: u32, timeout_ms: i32) callconv(.c) i32 {
    const func = "krun_wait";
    const slot, const machine = blk: {
        contexts.lock();
        defer contexts.unlock();
        const slot = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
        const machine = started(func, slot) catch |err| return errors.errno(err);
        if (slot.waiting) return errors.errno(reject(func, error.Busy, "another thread already waits on context {d}", .{ctx_id}));
        slot.waiting = true;
        break :blk .{ slot, machine };
    };
    // Without the lock: other contexts stay usable, and krun_stop can end this wait.
    const outcome = machine.wait(timeout_ms);
    contexts.lock();
    defer contexts.unlock();
    assert(slot.waiting and slot.machine == machine); // tidy: our slot, held by this waiter
    slot.waiting = false;
    const status = outcome catch |err| switch (err) {
        // Not a failure and not logged: pollers (Bun) call this every few milliseconds.
        error.Timeout => return errors.errno(error.TimedOut),
    };
    slot.exited = true;
    slot.exit_reason = machine.exitReason();
    // Machine.wait gives 0..255; never let another value pass as a status or an errno.
    if (status < 0 or status > 255) return errors.errno(reject(func, error.Io, "context {d}: exit status {d} is out of range", .{ ctx_id, status }));
    return status;
}

pub fn krun_stop(ctx_id: u32) callconv(.c) i32 {
    const func = "krun_stop";
    contexts.lock();
    defer contexts.unlock();
    const slot = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    if (slot.state == .starting) {
        slot.stop_requested = true; // krun_start stops it as soon as it runs
        return 0;
    }
    const machine = started(func, slot) catch |err| return errors.errno(err);
    if (!slot.exited) machine.stop();
    return 0;
}

/// libkrun 1.x (after 1.19): freezes a running VM (vCPUs parked, event loop parked, guest clock
/// saved). Also for a VM krun_start_enter runs, from another thread. The lock is held while
/// the threads park (microseconds; at most Machine.pause_timeout_ns).
pub fn krun_vm_pause(ctx_id: u32) callconv(.c) i32 {
    return pauseOrResume("krun_vm_pause", ctx_id, .pause);
}

/// libkrun 1.x (after 1.19): lets a VM krun_vm_pause froze run on, its clock where it stopped.
pub fn krun_vm_resume(ctx_id: u32) callconv(.c) i32 {
    return pauseOrResume("krun_vm_resume", ctx_id, .unpause);
}

fn pauseOrResume(comptime func: []const u8, ctx_id: u32, comptime op: enum { pause, unpause }) i32 {
    contexts.lock();
    defer contexts.unlock();
    const machine = contexts.running(ctx_id) orelse
        return errors.errno(reject(func, error.NotFound, "context {d} has no running VM", .{ctx_id}));
    (switch (op) {
        .pause => machine.pause(),
        .unpause => machine.unpause(),
    }) catch |err| return errors.errno(switch (err) {
        error.NotRunning => reject(func, error.NotFound, "context {d}: the VM has ended", .{ctx_id}),
        error.Timeout => reject(func, error.Io, "context {d}: the vCPUs did not stop within {d} s; the VM runs on", .{ ctx_id, Machine.pause_timeout_ns / std.time.ns_per_s }),
    });
    return 0;
}

/// zkrun extension: the size of the guest console when it is a terminal (a caller's pty).
pub fn krun_set_console_size(ctx_id: u32, cols: u16, rows: u16) callconv(.c) i32 {
    const func = "krun_set_console_size";
    contexts.lock();
    defer contexts.unlock();
    const slot = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    const machine = started(func, slot) catch |err| return errors.errno(err);
    if (cols == 0 or rows == 0) return errors.errno(reject(func, error.InvalidArgument, "context {d}: a size of {d}x{d} (columns x rows; both must be 1..65535)", .{ ctx_id, cols, rows }));
    if (slot.exited) return errors.errno(reject(func, error.InvalidArgument, "context {d}: the VM has ended", .{ctx_id}));
    machine.resizeConsole(.{ .cols = cols, .rows = rows }) catch |err| return errors.errno(switch (err) {
        error.NoTerminal => reject(func, error.NotTerminal, "context {d}: the VM's console is not a terminal", .{ctx_id}),
        error.Io => reject(func, error.Io, "context {d}: TIOCSWINSZ on the console's terminal failed", .{ctx_id}),
    });
    return 0;
}

/// zkrun extension: cheap counters of a started VM (live while it runs).
pub fn krun_get_stats(ctx_id: u32, exits_out: ?*u64, resident_bytes_out: ?*u64) callconv(.c) i32 {
    const func = "krun_get_stats";
    contexts.lock();
    defer contexts.unlock();
    const slot = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    const machine = started(func, slot) catch |err| return errors.errno(err);
    const exits = exits_out orelse return errors.errno(reject(func, error.InvalidArgument, "exits_out is NULL", .{}));
    const resident = resident_bytes_out orelse return errors.errno(reject(func, error.InvalidArgument, "resident_bytes_out is NULL", .{}));
    const st = machine.stats();
    exits.* = st.exits;
    resident.* = st.guest_resident_bytes;
    return 0;
}

/// zkrun extension: why the VM of a context ended (a KRUN_EXIT_REASON_* value).
pub fn krun_get_exit_reason(ctx_id: u32) callconv(.c) i32 {
    const func = "krun_get_exit_reason";
    contexts.lock();
    defer contexts.unlock();
    const slot = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    _ = started(func, slot) catch |err| return errors.errno(err);
    return @backingInt(slot.exit_reason);
}

pub fn krun_start_enter(ctx_id: u32) callconv(.c) i32 {
    const func = "krun_start_enter";
    const slot = claimStart(func, ctx_id) catch |err| return errors.errno(err);
    const forward = SignalForward.open();
    if (forward) |f| slot.cfg.signal_fd = f.read_fd;
    const machine = build(func, slot) catch |err| {
        if (forward) |f| f.close();
        // libkrun consumes the context even when the start fails.
        contexts.lock();
        defer contexts.unlock();
        contexts.release(slot);
        return errors.errno(err);
    };
    // Only now, when this process has become the VMM for good (documented in the header).
    if (forward) |f| f.install();
    {
        contexts.lock();
        defer contexts.unlock();
        // Consumed: the id is gone for every other call, the Config stays for the Machine.
        slot.machine = machine;
        slot.state = .entered;
        if (slot.stop_requested) machine.stop();
    }
    // The Machine owns the terminal: wait() gives it its settings back before we exit.
    const status = machine.wait(-1) catch Machine.exit_code_failure;
    log.print(.debug, func, "guest exited with status {d} ({t})", .{ status, machine.exitReason() });
    std.c._exit(@intCast(status & 0xff));
}

/// krun_start_enter's SIGTERM → workload path: the handler writes the signal number into a
/// pipe (async-signal-safe, non-blocking: a full pipe drops it), the console's `krun-signal`
/// port carries it to the guest, and init sends the signal to the workload, whose exit then
/// ends the VM like any other. Without an init that reads the port, SIGTERM does nothing; the
/// caller's SIGKILL still ends the process.
const SignalForward = struct {
    read_fd: i32,
    write_fd: i32,

    var handler_fd: std.atomic.Value(i32) = .init(-1);

    /// null when no pipe can be made (then SIGTERM keeps its default action).
    fn open() ?SignalForward {
        // macOS: a VM has no virtio console there yet (docs/HVF.md), so nothing carries the signal.
        if (@import("builtin").os.tag == .macos) return null;
        const fds = sys.pipe2(.{ .CLOEXEC = true, .NONBLOCK = true }) catch |err| {
            log.print(.warn, "krun_start_enter", "no pipe for SIGTERM forwarding: {t}", .{err});
            return null;
        };
        return .{ .read_fd = fds[0], .write_fd = fds[1] };
    }

    fn close(f: SignalForward) void {
        sys.close(f.read_fd);
        sys.close(f.write_fd);
    }

    fn install(f: SignalForward) void {
        handler_fd.store(f.write_fd, .release);
        var act: linux.Sigaction = .{
            .handler = .{ .handler = handler },
            .mask = sys.sigset(&.{}),
            .flags = linux.SA.RESTART,
        };
        sys.sigaction(linux.SIG.TERM, &act, null) catch {};
    }

    fn handler(sig: linux.SIG) callconv(.c) void {
        const byte: [1]u8 = .{@intCast(@backingInt(sig))};
        _ = sys.write(handler_fd.load(.acquire), &byte) catch {}; // async-signal-safe: no log, no retry
    }
};

/// Marks a configuring context `starting` and prepares what needs the table (the host
/// environment copy). The caller then owns slot.cfg until it sets the next state.
fn claimStart(func: []const u8, ctx_id: u32) Error!*contexts.Slot {
    contexts.lock();
    defer contexts.unlock();
    const slot = try contexts.find(func, ctx_id);
    // A context krun_start already runs is left alone (someone may be waiting on it).
    if (slot.state != .configuring) return reject(func, error.Busy, "context {d} has already started", .{ctx_id});
    const cfg = &slot.cfg;
    if (cfg.envp == null) {
        if (slot.env_from_host) try copyHostEnv(func, cfg) else cfg.envp = &.{};
    }
    slot.state = .starting;
    slot.stop_requested = false;
    return slot;
}

/// Builds and starts the VM of a `starting` slot, without the lock: a slow build (big RAM,
/// a slow disk under libkrunfw) holds up no other context.
fn build(func: []const u8, slot: *contexts.Slot) Error!*Machine {
    assert(slot.state == .starting); // tidy: our slot state
    const cfg = &slot.cfg;
    try switchIds(func, cfg);
    log.clearProblem();
    const machine = Machine.create(contexts.gpa, cfg) catch |err| return machineError(func, err);
    machine.start() catch |err| {
        machine.destroy();
        return machineError(func, err);
    };
    log.print(.info, func, "context {d}: VM running ({d} vCPUs, {d} MiB)", .{ slot.id, cfg.vcpus, cfg.ram_mib });
    return machine;
}

fn started(func: []const u8, slot: *contexts.Slot) Error!*Machine {
    if (slot.state == .starting) return reject(func, error.Busy, "context {d} is starting in another thread", .{slot.id});
    if (slot.state != .started) return reject(func, error.InvalidArgument, "context {d} has not been started (krun_start)", .{slot.id});
    return slot.machine.?;
}

/// The error with its reason; the VMM's last warning on this thread (why a build failed, e.g.
/// "invalid VM size: 0 vCPUs") is added to the text krun_last_error gives.
fn machineError(func: []const u8, err: Machine.Error) Error {
    const detail = log.lastProblem();
    const sep: []const u8 = if (detail.len > 0) ": " else "";
    return switch (err) {
        error.KvmUnavailable => reject(func, error.NoDevice, "/dev/kvm is missing or unusable: KVM is needed to run a VM{s}{s}", .{ sep, detail }),
        error.InvalidConfig => reject(func, error.InvalidArgument, "the VM configuration cannot be built{s}{s}", .{ sep, detail }),
        error.KernelNotFound => reject(func, error.NotFound, "no kernel: libkrunfw.so.5 or the krun_set_kernel file is missing{s}{s}", .{ sep, detail }),
        error.KernelInvalid => reject(func, error.InvalidArgument, "the kernel image is not usable{s}{s}", .{ sep, detail }),
        error.OutOfMemory => reject(func, error.OutOfMemory, "out of memory building the VM{s}{s}", .{ sep, detail }),
        error.SystemResources => reject(func, error.TryAgain, "out of host resources (threads, fds or mappings) building the VM{s}{s}", .{ sep, detail }),
        error.KvmFailed => reject(func, error.Io, "a KVM call failed unexpectedly building the VM{s}{s}", .{ sep, detail }),
        error.HostUnsupported => reject(func, error.NotSupported, "this host cannot run a VM yet{s}{s}", .{ sep, detail }),
    };
}

/// A NULL envp means the host environment (libkrun reads it at the call, zkrun at start; no
/// environment set at all means none). Entries that are not UTF-8 cannot go on a kernel command
/// line and are left out, with a warning.
fn copyHostEnv(func: []const u8, cfg: *Config) Error!void {
    assert(cfg.envp == null); // tidy: only called without an envp
    var count: usize = 0;
    while (std.c.environ[count] != null and count < Config.args_max) count += 1;
    const out = cfg.allocator().alloc([]const u8, count) catch
        return reject(func, error.OutOfMemory, "out of memory copying the host environment", .{});
    var kept: usize = 0;
    for (0..count) |i| {
        const entry = std.mem.span(std.c.environ[i].?);
        if (!std.unicode.utf8ValidateSlice(entry)) {
            log.print(.warn, func, "host environment entry {d} is not UTF-8; left out", .{i});
            continue;
        }
        out[kept] = cfg.allocator().dupeSentinel(u8, entry, 0) catch
            return reject(func, error.OutOfMemory, "out of memory copying the host environment", .{});
        kept += 1;
    }
    cfg.envp = out[0..kept];
}

/// krun_setgid / krun_setuid take effect just before the VM is built (group first: after
/// setuid the process may no longer change its group).
fn switchIds(func: []const u8, cfg: *const Config) Error!void {
    if (cfg.gid) |gid| {
        if (std.c.setgid(gid) != 0) return reject(func, error.PermissionDenied, "setgid({d}) failed", .{gid});
    }
    if (cfg.uid) |uid| {
        if (std.c.setuid(uid) != 0) return reject(func, error.PermissionDenied, "setuid({d}) failed", .{uid});
    }
}

// ---- process-wide queries ------------------------------------------------------------------

/// KRUN_FEATURE_* numbers known to libkrun (3 and 5 existed in 1.19 only).
const features_known_max = 11;
const feature_init_blob = 11;
const feature_blk = 1;
const feature_net = 0;

pub fn krun_has_feature(feature: u64) callconv(.c) i32 {
    if (feature > features_known_max) {
        return errors.errno(reject("krun_has_feature", error.InvalidArgument, "feature {d} is unknown (known: 0..{d})", .{ feature, features_known_max }));
    }
    return @intFromBool(feature == feature_init_blob or feature == feature_blk or feature == feature_net);
}

pub fn krun_get_max_vcpus() callconv(.c) i32 {
    log.clearProblem();
    const max = Machine.maxVcpus() catch |err| return errors.errno(machineError("krun_get_max_vcpus", err));
    assert(max > 0); // tidy: KVM reports at least 1 vCPU
    return @intCast(@min(max, std.math.maxInt(i32)));
}

pub fn krun_check_nested_virt() callconv(.c) i32 {
    const paths = [_][:0]const u8{ "/sys/module/kvm_amd/parameters/nested", "/sys/module/kvm_intel/parameters/nested" };
    for (paths) |path| {
        var buf: [16]u8 = undefined;
        const text = host.readSmall(path, &buf) orelse continue;
        const value = std.mem.trim(u8, text, " \n");
        return @intFromBool(std.mem.eql(u8, value, "1") or std.mem.eql(u8, value, "Y"));
    }
    return 0;
}

pub fn krun_get_shutdown_eventfd(ctx_id: u32) callconv(.c) i32 {
    const func = "krun_get_shutdown_eventfd";
    contexts.lock();
    defer contexts.unlock();
    _ = contexts.find(func, ctx_id) catch |err| return errors.errno(err);
    return errors.errno(reject(func, error.InvalidArgument, "the shutdown eventfd exists only on macOS and aarch64 (as in libkrun)", .{}));
}

/// For the C API's unit tests: logging off (they provoke rejections on purpose) and a fresh
/// context; `deinit` frees the context and sets logging back to errors.
pub const TestContext = struct {
    id: u32,

    pub fn init() !TestContext {
        try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
        return .{ .id = @intCast(krun_create_ctx()) };
    }

    pub fn deinit(t: TestContext) void {
        _ = krun_free_ctx(t.id);
        log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable; // tidy: test helper, constant valid arguments
    }
};

test "create, free and free again" {
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    const a = krun_create_ctx();
    const b = krun_create_ctx();
    try std.testing.expect(a >= 0 and b > a);
    try std.testing.expectEqual(@as(i32, 0), krun_free_ctx(@intCast(a)));
    try std.testing.expectEqual(@as(i32, -2), krun_free_ctx(@intCast(a)));
    try std.testing.expectEqual(@as(i32, -22), krun_wait(@intCast(b), 0));
    try std.testing.expectEqual(@as(i32, -22), krun_stop(@intCast(b)));
    try std.testing.expectEqual(@as(i32, -22), krun_set_console_size(@intCast(b), 80, 24));
    var exits: u64 = 0;
    var resident: u64 = 0;
    try std.testing.expectEqual(@as(i32, -22), krun_get_stats(@intCast(b), &exits, &resident));
    try std.testing.expectEqual(@as(i32, 0), krun_free_ctx(@intCast(b)));
    try std.testing.expectEqual(@as(i32, -2), krun_set_console_size(@intCast(b), 80, 24));
    try std.testing.expectEqual(@as(i32, -2), krun_wait(@intCast(b), 0));
    try std.testing.expectEqual(@as(i32, 1), krun_has_feature(feature_init_blob));
    try std.testing.expectEqual(@as(i32, 1), krun_has_feature(feature_net));
    try std.testing.expectEqual(@as(i32, 1), krun_has_feature(feature_blk));
    try std.testing.expectEqual(@as(i32, -22), krun_has_feature(12));
}
