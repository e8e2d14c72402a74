//! The context table behind every ctx_id: a fixed array of slots under one process-wide lock.
//! Ids come from a counter that only counts up (as libkrun's AtomicI32), so a freed id is never
//! handed out again and a stale id reliably gives -ENOENT. A slot holds its Config (arena and
//! all) in place: the Config never moves, so arena pointers and the Machine's `*const Config`
//! stay valid until krun_free_ctx.
//!
//! The lock guards only the table: building a VM and tearing one down (slow: threads joined,
//! memory unmapped) run without it. A slot in `starting` or `stopping` belongs to the one thread
//! doing that work; every other call sees the state and answers at once (context.zig).
const std = @import("std");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const Machine = @import("../vmm/backend.zig").Machine;
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

/// Contexts alive at once. crun keeps up to three; tests and multi-VM hosts a few dozen.
pub const contexts_max = 64;
/// ids are returned as non-negative int32_t.
pub const id_max: u32 = std.math.maxInt(i32);

pub const State = enum {
    free,
    /// Setters allowed.
    configuring,
    /// A thread builds and starts the VM without the lock (krun_start / krun_start_enter):
    /// the Config is that thread's; setters and krun_free_ctx get -EBUSY.
    starting,
    /// krun_start ran: `machine` is set (the VM may have ended since).
    started,
    /// krun_free_ctx tears it down without the lock: unknown to every call, not reusable yet.
    stopping,
    /// krun_start_enter consumed it: unknown to every call, kept until the process exits
    /// because the running Machine reads the Config.
    entered,
};

pub const Slot = struct {
    state: State = .free,
    id: u32 = 0,
    cfg: Config = undefined,
    machine: ?*Machine = null,
    /// A thread is inside krun_wait without the lock: the Machine must not be destroyed.
    waiting: bool = false,
    /// krun_wait returned the status once: the VM's threads are joined.
    exited: bool = false,
    /// krun_stop came while `starting`: the VM is stopped as soon as it runs.
    stop_requested: bool = false,
    /// Why the VM ended, set when krun_wait returned its status (krun_get_exit_reason).
    exit_reason: Machine.ExitReason = .none,
    /// krun_set_exec / krun_set_env got a NULL envp: the guest gets the host's environment,
    /// copied at start. Never set (libkrun's default): no environment at all.
    env_from_host: bool = false,
};

/// The slot holding a Config that `config` returned.
pub fn slotOf(cfg: *Config) *Slot {
    const slot: *Slot = @fieldParentPtr("cfg", cfg);
    assert(slot.state == .configuring); // tidy: our slot state
    return slot;
}

var slots: [contexts_max]Slot = @splat(.{});
var mutex: std.c.pthread_mutex_t = .{};
/// Guarded by `mutex`.
var id_next: u32 = 0;

pub const gpa = std.heap.c_allocator;

pub fn lock() void {
    const rc = std.c.pthread_mutex_lock(&mutex);
    assert(rc == .SUCCESS); // tidy: a default mutex, never misused
}

pub fn unlock() void {
    const rc = std.c.pthread_mutex_unlock(&mutex);
    assert(rc == .SUCCESS); // tidy: a default mutex, never misused
}

/// A new context with a default Config. Caller holds the lock.
pub fn create(func: []const u8) Error!u32 {
    if (id_next > id_max) return reject(func, error.OutOfMemory, "context ids are exhausted ({d} created)", .{id_next});
    for (&slots) |*slot| {
        if (slot.state != .free) continue;
        slot.* = .{ .state = .configuring, .id = id_next, .cfg = Config.init(gpa) };
        id_next += 1;
        return slot.id;
    }
    return reject(func, error.OutOfMemory, "{d} contexts are alive, the most zkrun holds at once", .{contexts_max});
}

/// The live slot of `id`: configuring, starting or started. Caller holds the lock.
pub fn find(func: []const u8, id: u32) Error!*Slot {
    for (&slots) |*slot| {
        const live = slot.state == .configuring or slot.state == .starting or slot.state == .started;
        if (live and slot.id == id) return slot;
    }
    return reject(func, error.UnknownContext, "context {d} does not exist", .{id});
}

/// The Machine of a context whose VM runs: started by krun_start and not yet waited to its end,
/// or run by krun_start_enter (its id is otherwise gone; krun_vm_pause comes from another
/// thread of that process). Caller holds the lock.
pub fn running(id: u32) ?*Machine {
    for (&slots) |*slot| {
        if (slot.id != id) continue;
        switch (slot.state) {
            .started => if (!slot.exited) return slot.machine.?,
            .entered => return slot.machine,
            else => {},
        }
    }
    return null;
}

/// The Config of a context that has not started, for a setter. Caller holds the lock.
pub fn config(func: []const u8, id: u32) Error!*Config {
    const slot = try find(func, id);
    if (slot.state != .configuring) {
        return reject(func, error.Busy, "context {d} has started (or is starting); its configuration is fixed", .{id});
    }
    return &slot.cfg;
}

/// Releases a slot: its Machine (stopped and joined first) and its Config. Caller holds the
/// lock and has checked nobody waits on it. Only for slots without a running VM (a failed
/// start, tests): krun_free_ctx uses beginRelease / finishRelease to tear down unlocked.
pub fn release(slot: *Slot) void {
    assert(slot.state != .free); // tidy: our slot state
    assert(!slot.waiting); // tidy: our slot state
    if (slot.machine) |m| m.destroy();
    slot.cfg.deinit();
    slot.* = .{};
}

/// Takes a live slot out of every other call's reach (state `stopping`). Caller holds the
/// lock and has checked nobody waits on it and nobody is starting it.
pub fn beginRelease(slot: *Slot) void {
    assert(slot.state == .configuring or slot.state == .started); // tidy: our slot state
    assert(!slot.waiting); // tidy: our slot state
    slot.state = .stopping;
}

/// Tears down a `stopping` slot WITHOUT the lock (joins the VM's threads, unmaps its memory),
/// then frees the slot under it.
pub fn finishRelease(slot: *Slot) void {
    assert(slot.state == .stopping); // tidy: our slot state
    if (slot.machine) |m| m.destroy();
    slot.machine = null;
    slot.cfg.deinit();
    lock();
    defer unlock();
    slot.* = .{};
}

/// Live contexts (for tests and diagnostics). Caller holds the lock.
pub fn countLive() usize {
    var n: usize = 0;
    for (slots) |slot| n += @intFromBool(slot.state != .free);
    return n;
}

test "ids count up and are not reused; unknown ids are rejected" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    lock();
    defer unlock();
    const a = try create("t");
    const b = try create("t");
    try std.testing.expect(b > a);
    release(try find("t", a));
    try std.testing.expectError(error.UnknownContext, find("t", a));
    const c = try create("t");
    try std.testing.expect(c > b);
    release(try find("t", b));
    release(try find("t", c));
}

test "the table is bounded" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    lock();
    defer unlock();
    const live = countLive();
    var ids: [contexts_max]u32 = undefined;
    var n: usize = 0;
    while (n < contexts_max - live) : (n += 1) ids[n] = try create("t");
    try std.testing.expectError(error.OutOfMemory, create("t"));
    for (ids[0..n]) |id| release(try find("t", id));
}
