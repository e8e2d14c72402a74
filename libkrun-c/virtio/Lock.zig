//! A small futex mutex for the virtio layer (transport registers vs. device work on the event
//! loop). Zig 0.17's std mutex needs an `Io`; this one needs nothing and never allocates.
//! States: 0 unlocked, 1 locked, 2 locked with waiters (Drepper, "Futexes Are Tricky").
//! macOS has no futex: there it is libSystem's os_unfair_lock (also a word, also no
//! allocation; it must be unlocked by the thread that locked it, as every user here does:
//! lock and `defer unlock` in one function). Compiled for macOS, never run there.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const sys = @import("../sys/linux.zig");

const is_macos = @import("builtin").os.tag == .macos;

const Lock = @This();

state: if (is_macos) std.c.os_unfair_lock else std.atomic.Value(u32) = if (is_macos) .{} else .init(unlocked),

const unlocked: u32 = 0;
const locked: u32 = 1;
const contended: u32 = 2;

pub fn lock(self: *Lock) void {
    if (comptime is_macos) return std.c.os_unfair_lock_lock(&self.state);
    if (self.state.cmpxchgStrong(unlocked, locked, .acquire, .monotonic) == null) return;
    while (self.state.swap(contended, .acquire) != unlocked) {
        sys.futexWait(&self.state, contended, null) catch {}; // EINTR/EAGAIN: the loop rechecks
    }
}

pub fn unlock(self: *Lock) void {
    if (comptime is_macos) return std.c.os_unfair_lock_unlock(&self.state);
    const prev = self.state.swap(unlocked, .release);
    assert(prev != unlocked); // tidy: lock state, ours
    if (prev == contended) {
        sys.futexWake(&self.state, 1);
    }
}

test "two threads increment under the lock" {
    const Ctx = struct {
        l: Lock = .{},
        n: u64 = 0,
        fn run(c: *@This()) void {
            for (0..20000) |_| {
                c.l.lock();
                defer c.l.unlock();
                c.n += 1;
            }
        }
    };
    var c: Ctx = .{};
    const t = try std.Thread.spawn(.{}, Ctx.run, .{&c});
    Ctx.run(&c);
    t.join();
    try std.testing.expectEqual(@as(u64, 40000), c.n);
}
