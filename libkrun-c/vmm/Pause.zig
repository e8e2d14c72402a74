//! The pause gate of one VM (krun_vm_pause / krun_vm_resume): the vCPU threads and the event
//! loop park on it while the VM is paused, and leave it on resume or for good when the VM ends.
//! One futex word says which; `parked` counts the threads inside, so `pause` can return once the
//! guest is really frozen (every vCPU out of KVM_RUN at an instruction boundary, no device
//! work started by the event loop). Device work already in flight on a device's own worker
//! (a virtio-fs or virtio-blk request the guest queued before) finishes; nothing new starts,
//! because only the parked vCPUs and the parked loop would start it.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");

const Pause = @This();

pub const State = enum(u32) { running = 0, paused = 1, finished = 2 };

/// The futex word: a `State`.
word: std.atomic.Value(u32) = .init(@backingInt(State.running)),
/// Threads parked right now (futex word too: `waitParked` sleeps on it).
parked: std.atomic.Value(u32) = .init(0),

pub fn state(self: *const Pause) State {
    return @fromBackingInt(@intCast(self.word.load(.acquire)));
}

/// running → paused; false when the VM was not running (already paused, or ended).
pub fn request(self: *Pause) bool {
    return self.word.cmpxchgStrong(@backingInt(State.running), @backingInt(State.paused), .seq_cst, .seq_cst) == null;
}

/// paused → running, waking every parked thread; false when it was not paused.
pub fn release(self: *Pause) bool {
    if (self.word.cmpxchgStrong(@backingInt(State.paused), @backingInt(State.running), .seq_cst, .seq_cst) != null) return false;
    wakeAll(&self.word);
    return true;
}

/// For good (the VM ends): parked threads leave and nobody parks again. Call it after the
/// vCPUs' `stopping` flag is set and before they are kicked (see `parkVcpu`).
pub fn finish(self: *Pause) void {
    self.word.store(@backingInt(State.finished), .seq_cst);
    wakeAll(&self.word);
    wakeAll(&self.parked);
}

/// A vCPU thread, at the top of its run loop: parks while paused. `immediate_exit` is the
/// vCPU's kvm_run field: the pause's kick left it set, so it is cleared before the guest runs
/// again; it is set again when the VM ended meanwhile, because that kick may have been the one
/// cleared. The fence orders the clear before the re-check against `request`/`finish`, whose
/// kicks write it after their store of the word.
pub fn parkVcpu(self: *Pause, immediate_exit: *volatile u8) void {
    if (self.word.load(.acquire) == @backingInt(State.running)) return; // the hot path: one load
    while (true) {
        self.park();
        immediate_exit.* = 0;
        _ = self.word.fetchAdd(0, .seq_cst); // full fence: store above, load below
        switch (self.state()) {
            .running => return,
            .paused => continue,
            .finished => {
                immediate_exit.* = 1;
                return;
            },
        }
    }
}

/// Any thread: sleeps while paused (counted in `parked`).
pub fn park(self: *Pause) void {
    if (self.state() != .paused) return;
    _ = self.parked.fetchAdd(1, .seq_cst);
    wakeAll(&self.parked);
    while (self.word.load(.seq_cst) == @backingInt(State.paused)) {
        sys.futexWait(&self.word, @backingInt(State.paused), null) catch {}; // rechecked above
    }
    _ = self.parked.fetchSub(1, .seq_cst);
}

/// The pausing thread: waits until `count` threads are parked, at most `timeout_ns`. False on
/// timeout, or when the gate is no longer paused (resumed, or the VM ended).
pub fn waitParked(self: *Pause, count: u32, timeout_ns: u64) bool {
    const deadline = now() + timeout_ns;
    while (true) {
        if (self.state() != .paused) return false;
        const seen = self.parked.load(.seq_cst);
        if (seen >= count) return true;
        const t = now();
        if (t >= deadline) return false;
        const left = deadline - t;
        const ts: linux.timespec = .{ .sec = @intCast(left / std.time.ns_per_s), .nsec = @intCast(left % std.time.ns_per_s) };
        sys.futexWait(&self.parked, seen, &ts) catch {}; // rechecked above
    }
}

fn wakeAll(word: *std.atomic.Value(u32)) void {
    sys.futexWake(word, std.math.maxInt(i32));
}

fn now() u64 {
    return @intCast(sys.nowNs());
}

const testing = std.testing;

test "pause parks threads until release; finish lets them go for good" {
    var gate: Pause = .{};
    try testing.expect(!gate.release()); // not paused
    try testing.expect(gate.request());
    try testing.expect(!gate.request()); // idempotent at the API: already paused
    var exits: [2]u8 = .{ 1, 1 };
    const Worker = struct {
        fn run(g: *Pause, ie: *u8) void {
            g.parkVcpu(ie);
        }
    };
    var threads: [2]std.Thread = undefined;
    for (&threads, &exits) |*t, *e| t.* = try std.Thread.spawn(.{}, Worker.run, .{ &gate, e });
    try testing.expect(gate.waitParked(2, 10 * std.time.ns_per_s));
    try testing.expect(gate.release());
    for (threads) |t| t.join();
    try testing.expectEqual([2]u8{ 0, 0 }, exits); // the pause's kick is cleared on resume

    try testing.expect(gate.request());
    exits = .{ 0, 0 };
    for (&threads, &exits) |*t, *e| t.* = try std.Thread.spawn(.{}, Worker.run, .{ &gate, e });
    try testing.expect(gate.waitParked(2, 10 * std.time.ns_per_s));
    gate.finish();
    for (threads) |t| t.join();
    try testing.expectEqual([2]u8{ 1, 1 }, exits); // ended while parked: KVM_RUN must not run on
    try testing.expect(!gate.request());
    try testing.expect(!gate.waitParked(1, 1000)); // not paused: no wait
}
