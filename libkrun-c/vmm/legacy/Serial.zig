//! A 16550A UART, transmit side only: enough for Linux's 8250 driver to use a COM port as a
//! console (ttyS0). The THR-empty interrupt is raised through `irq_fd` (an irqfd eventfd, -1:
//! none), so interrupt-driven output works. Several vCPUs may touch the port: a spin lock
//! serialises register access (no syscall under it).
//!
//! Output never does I/O on the vCPU thread: bytes written to THR go into a bounded ring
//! (`ring_size`) that the event loop writes to `out` without blocking (`watch`: a Notifier
//! tells it output is pending, `out` interest while the host is not reading). Back-pressure is a
//! real UART's: while fewer than `fifo_size` bytes are free, LSR reports the transmitter busy
//! and the THRE interrupt is held back until the loop has made room, so a driver that honours
//! LSR/THRE (Linux's, interrupt-driven or polling) waits — the guest blocks, the vCPU does
//! not. A byte written to THR with the ring completely full is dropped (counted in `dropped`),
//! as a real UART overruns; Linux's console write does that after waiting 10 ms per byte.
//! Where there is no irqfd (macOS: vmm/hvf/Machine.zig) the owner sets `raise` instead: a
//! callback that pulses the SPI. The event loop drains the ring on both (epoll, kqueue).
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const OutputBuffer = @import("../OutputBuffer.zig");
const EventLoop = @import("../EventLoop.zig");
const Notifier = @import("../Notifier.zig");

const is_macos = @import("builtin").os.tag == .macos;

const Serial = @This();

pub const com_ports = [4]u16{ 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
pub const com_irqs = [4]u32{ 4, 3, 4, 3 };
pub const port_count: u16 = 8;
pub const ring_size = 4096;
/// The 16550A's transmit FIFO: Linux's interrupt-driven tx writes this many bytes per THRE.
pub const fifo_size = 16;

const ier_thre: u8 = 0x02;
const iir_none: u8 = 0x01;
const iir_thre: u8 = 0x02;
const iir_fifo: u8 = 0xc0;
const lcr_dlab: u8 = 0x80;
const lsr_thre_temt: u8 = 0x60;
const msr_dcd_dsr_cts: u8 = 0xb0;

base: u16,
/// Where the output goes; discarding (a sink) unless the builder opened one.
out: OutputBuffer.Sink = .{},
ring: OutputBuffer.Ring(ring_size) = .{},
irq_fd: i32 = -1,
/// Set by `watch`: what tells the event loop output is pending, and the loop.
notify: ?Notifier = null,
loop: ?*EventLoop = null,
out_id: ?EventLoop.Id = null,
/// The loop has been told about pending output and not served it yet.
notified: std.atomic.Value(bool) = .init(false),
/// A THRE interrupt withheld while the ring was (nearly) full; the drain raises it.
thre_held: bool = false,
/// Bytes written to THR while the ring was full.
dropped: u64 = 0,
lock: std.atomic.Mutex = .unlocked,
ier: u8 = 0,
lcr: u8 = 0,
mcr: u8 = 0,
scr: u8 = 0,
fcr: u8 = 0,
dll: u8 = 0x0c, // 9600 baud until the guest programs it
dlm: u8 = 0,
thre_pending: bool = false,
/// Instead of `irq_fd` (macOS): called outside the lock, from a vCPU or the event loop.
raise: ?Signal = null,

pub const Signal = struct {
    ctx: *anyopaque,
    call: *const fn (ctx: *anyopaque) void,
};

fn acquire(self: *Serial) void {
    while (!self.lock.tryLock()) std.atomic.spinLoopHint();
}

pub fn read(self: *Serial, port: u16, data: []u8) void {
    std.debug.assert(port >= self.base and port < self.base + port_count); // tidy: Pio routes only this device's ports here
    @memset(data, 0);
    if (data.len == 0) return;
    self.acquire();
    defer self.lock.unlock();
    const dlab = self.lcr & lcr_dlab != 0;
    data[0] = switch (port - self.base) {
        0 => if (dlab) self.dll else 0,
        1 => if (dlab) self.dlm else self.ier,
        2 => blk: {
            const fifo: u8 = if (self.fcr & 1 != 0) iir_fifo else 0;
            if (self.thre_pending and self.ier & ier_thre != 0) {
                self.thre_pending = false; // reading IIR acknowledges THRE
                break :blk iir_thre | fifo;
            }
            break :blk iir_none | fifo;
        },
        3 => self.lcr,
        4 => self.mcr,
        5 => if (self.hasRoom()) lsr_thre_temt else 0,
        6 => msr_dcd_dsr_cts,
        7 => self.scr,
        else => unreachable, // tidy: offset 0..7 from the port range
    };
}

pub fn write(self: *Serial, port: u16, data: []const u8) void {
    std.debug.assert(port >= self.base and port < self.base + port_count); // tidy: Pio routes only this device's ports here
    if (data.len == 0) return;
    const v = data[0];
    self.acquire();
    var raise = false;
    var notify = false;
    const dlab = self.lcr & lcr_dlab != 0;
    switch (port - self.base) {
        0 => if (dlab) {
            self.dll = v;
        } else {
            notify = self.emit(v);
            if (self.hasRoom()) {
                self.thre_pending = true;
                raise = self.ier & ier_thre != 0;
            } else {
                self.thre_held = true; // the drain raises THRE once there is room
            }
        },
        1 => if (dlab) {
            self.dlm = v;
        } else {
            // Enabling THRE with an empty transmitter raises the interrupt at once.
            raise = v & ier_thre != 0 and self.ier & ier_thre == 0;
            if (raise) self.thre_pending = true;
            self.ier = v & 0x0f;
        },
        2 => self.fcr = v,
        3 => self.lcr = v,
        4 => self.mcr = v,
        7 => self.scr = v,
        else => {},
    }
    self.lock.unlock();
    if (notify) self.signalDrain();
    if (raise) self.raiseIrq();
}

fn signalDrain(self: *Serial) void {
    if (self.notify) |n| n.signal();
}

fn raiseIrq(self: *Serial) void {
    if (self.raise) |r| return r.call(r.ctx);
    if (comptime !is_macos) if (self.irq_fd >= 0) sys.eventfdSignal(self.irq_fd);
}

/// Whether something drains the ring (otherwise output is dropped and THR is always empty).
fn drained(self: *const Serial) bool {
    return self.notify != null;
}

/// Whether THR can take a FIFO's worth (a sink always can).
fn hasRoom(self: *const Serial) bool {
    return !self.drained() or self.ring.free() >= fifo_size;
}

/// Queues a byte for the event loop; true when the loop must be told (outside the lock).
fn emit(self: *Serial, byte: u8) bool {
    if (!self.drained()) return false; // a sink, or nobody drains: dropped
    if (self.ring.push(&.{byte}) == 0) self.dropped += 1;
    return !self.notified.swap(true, .acq_rel);
}

/// Hands the output to `loop`: a Notifier for "pending" and, for an fd that can block, an
/// `out` source (idle until the host stops reading). Before the loop starts.
pub fn watch(self: *Serial, loop: *EventLoop) EventLoop.InitError!void {
    if (self.out.mode == .discard) return;
    self.notify = try Notifier.init();
    self.loop = loop;
    const h: EventLoop.Handler = .{ .ctx = self, .call = drain };
    _ = try loop.addNotifier(self.notify.?.fd, h);
    if (self.out.pollable()) self.out_id = try loop.add(.{ .fd = self.out.fd, .events = 0, .handler = h });
}

/// Closes our handles (after the loop and the vCPUs stopped).
pub fn deinit(self: *Serial) void {
    self.out.close();
    if (self.notify) |*n| n.deinit();
    self.notify = null;
}

/// Event loop: writes the ring out without blocking, watches `out` while it cannot, and
/// raises a held-back THRE once there is room again.
pub fn drain(ptr: *anyopaque, _: u32, _: u32) void {
    const self: *Serial = @ptrCast(@alignCast(ptr));
    // Under the lock, as `emit` sets it: a byte pushed before this is seen by the flush below,
    // one pushed after notifies again (a plain store could pass the flush's load of the tail).
    self.acquire();
    self.notified.store(false, .monotonic);
    self.lock.unlock();
    const blocked = self.ring.flush(&self.out) == .blocked;
    if (self.loop) |loop| if (self.out_id) |id| loop.setEvents(id, if (blocked) EventLoop.out else 0);
    // Room and the held THRE are judged together under the lock: the guest may have filled the
    // ring again since the flush (printk's console path writes without waiting for THRE), and
    // a THRE released then would be acknowledged against a busy LSR and never raised again.
    self.acquire();
    const release = self.thre_held and self.hasRoom();
    if (release) {
        self.thre_pending = true;
        self.thre_held = false;
    }
    const raise = release and self.ier & ier_thre != 0;
    self.lock.unlock();
    if (raise) self.raiseIrq();
}

/// The VM ended (vCPUs joined): writes out the ring while `budget` allows, drops the rest.
pub fn flushFinal(self: *Serial, budget: *OutputBuffer.Budget) void {
    while (self.ring.flush(&self.out) == .blocked) {
        if (!budget.wait(self.out.fd, self.ring.head.load(.monotonic))) break;
    }
    self.ring.discard();
}

fn testSerial(s: *Serial, out_fd: i32) !void {
    s.* = .{ .base = 0x3f8, .out = try OutputBuffer.Sink.open(out_fd) };
    s.notify = try Notifier.init(); // drained by hand below, no loop
}

test "transmit through the ring to the output fd and THRE interrupt bookkeeping" {
    var fds: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, .{ .NONBLOCK = true }));
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var s: Serial = undefined;
    try testSerial(&s, fds[1]);
    defer s.deinit();
    var b = [_]u8{0};
    s.read(0x3fd, &b);
    try std.testing.expectEqual(@as(u8, 0x60), b[0]);
    s.write(0x3f8, "h");
    s.write(0x3f8, "i");
    try std.testing.expectEqual(@as(u64, 1), Notifier.drain(s.notify.?.fd)); // told once
    drain(&s, 0, 0);
    var got: [4]u8 = undefined;
    try std.testing.expectEqual(@as(usize, 2), linux.read(fds[0], &got, 4));
    try std.testing.expectEqualStrings("hi", got[0..2]);
    s.read(0x3fa, &b);
    try std.testing.expectEqual(@as(u8, 0x01), b[0]); // IER off: no interrupt
    s.write(0x3f9, &.{0x02});
    s.read(0x3fa, &b);
    try std.testing.expectEqual(@as(u8, 0x02), b[0]);
    s.read(0x3fa, &b);
    try std.testing.expectEqual(@as(u8, 0x01), b[0]);
    s.write(0x3fb, &.{0x80}); // DLAB
    s.write(0x3f8, &.{0x01});
    s.read(0x3f8, &b);
    try std.testing.expectEqual(@as(u8, 0x01), b[0]);
    try std.testing.expectEqual(@as(usize, @bitCast(@as(isize, -11))), linux.read(fds[0], &got, 4)); // EAGAIN: divisor latch is no output
}

test "a host that does not read: LSR busy and THRE held, nothing blocks; reading resumes" {
    var fds: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, .{ .CLOEXEC = true })); // blocking, as stdout
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var s: Serial = undefined;
    try testSerial(&s, fds[1]);
    defer s.deinit();
    s.write(0x3f9, &.{0x02}); // IER: THRE interrupt on
    var b = [_]u8{0};
    s.read(0x3fa, &b); // acknowledge the initial THRE
    // Fill the pipe (64 KiB) and then the ring: a driver honouring LSR stops at "busy".
    var written: usize = 0;
    var busy = false;
    while (written < 256 * 1024) : (written += 1) {
        s.read(0x3fd, &b);
        if (b[0] & 0x20 == 0) {
            busy = true;
            break;
        }
        s.write(0x3f8, "z");
        if (written % 1024 == 0) drain(&s, 0, 0); // the event loop, never blocking
    }
    try std.testing.expect(busy);
    try std.testing.expect(s.thre_held);
    s.read(0x3fa, &b); // acknowledges the THRE of the last byte that still had room
    s.read(0x3fa, &b);
    try std.testing.expectEqual(@as(u8, 0x01), b[0] & 0x0f); // no new THRE while busy
    try std.testing.expectEqual(@as(u64, 0), s.dropped);
    // A driver that ignores LSR loses bytes once the ring is full; the vCPU never waits.
    for (0..fifo_size) |_| s.write(0x3f8, "!");
    try std.testing.expect(s.dropped > 0);
    // The host reads: the drain empties the ring and raises the held THRE.
    var buf: [64 * 1024]u8 = undefined;
    var total: usize = 0;
    _ = linux.fcntl(fds[0], linux.F.SETFL, @as(u32, @bitCast(linux.O{ .NONBLOCK = true }))); // the reader's side
    var rounds: usize = 0;
    while (s.ring.len() > 0 and rounds < 10_000) : (rounds += 1) {
        const rc = linux.read(fds[0], &buf, buf.len);
        if (linux.errno(rc) == .SUCCESS) total += rc;
        drain(&s, 0, 0);
    }
    try std.testing.expect(!s.thre_held);
    s.read(0x3fd, &b);
    try std.testing.expectEqual(@as(u8, 0x60), b[0]);
    s.read(0x3fa, &b);
    try std.testing.expectEqual(@as(u8, 0x02), b[0] & 0x0f);
    try std.testing.expect(total > 0);
}

/// The guest side of the concurrent test below: Linux's 8250 as it drives the port, on its own
/// thread (a vCPU), while a real event loop drains the ring into a pipe a reader empties.
const TestGuest = struct {
    s: *Serial,
    irq_fd: i32,
    /// Bytes to send: the first `early` by earlyprintk's polling, the rest interrupt-driven.
    total: usize,
    early: usize,
    sent: usize = 0,
    /// The longest wait for a THRE interrupt, and whether one never came (a lost wakeup).
    longest_wait_ms: i64 = 0,
    stalled: bool = false,

    fn inb(self: *TestGuest, port: u16) u8 {
        var b = [_]u8{0};
        self.s.read(0x3f8 + port, &b);
        return b[0];
    }

    fn outb(self: *TestGuest, port: u16, v: u8) void {
        self.s.write(0x3f8 + port, &.{v});
    }

    fn byte(self: *TestGuest) u8 {
        return @truncate(self.sent * 7 + 1);
    }

    fn run(self: *TestGuest) void {
        // earlyprintk's early_serial_putc: poll LSR for THRE (bounded), then write anyway.
        while (self.sent < self.early) : (self.sent += 1) {
            var timeout: u32 = 0xffff;
            while (self.inb(5) & 0x20 == 0 and timeout > 0) timeout -= 1;
            self.outb(0, self.byte());
        }
        // serial8250_start_tx: IER THRI on; then each interrupt: IIR, LSR, up to 16 bytes.
        self.outb(1, 0x02);
        while (self.sent < self.total) {
            const t0 = sys.nowNs();
            if (sys.pollReadable(self.irq_fd, 10_000) == .timeout) {
                self.stalled = true; // no THRE for 10 s with the host reading: lost
                return;
            }
            _ = sys.eventfdDrain(self.irq_fd);
            self.longest_wait_ms = @max(self.longest_wait_ms, @as(i64, @intCast(@divTrunc(sys.nowNs() - t0, std.time.ns_per_ms))));
            while (self.inb(2) & 0x01 == 0) { // an interrupt is pending
                if (self.inb(5) & 0x20 == 0) continue; // THRE not set: wait for the next one
                var count: usize = fifo_size;
                while (count > 0 and self.sent < self.total) : (count -= 1) {
                    self.outb(0, self.byte());
                    self.sent += 1;
                }
                if (self.sent == self.total) self.outb(1, 0); // __stop_tx
            }
        }
    }
};

const TestReader = struct {
    fd: i32,
    want: usize,
    got: usize = 0,
    wrong: usize = 0,
    fn run(self: *TestReader) void {
        var buf: [4096]u8 = undefined;
        var empty_poll: [0]linux.pollfd = .{};
        const deadline = sys.nowNs() + 60 * std.time.ns_per_s;
        while (self.got < self.want and sys.nowNs() < deadline) {
            if (sys.pollReadable(self.fd, 100) == .timeout) continue;
            const rc = linux.read(self.fd, &buf, buf.len);
            if (linux.errno(rc) != .SUCCESS or rc == 0) continue;
            for (buf[0..rc], self.got..) |b, i| {
                if (b != @as(u8, @truncate(i * 7 + 1))) self.wrong += 1;
            }
            self.got += rc;
            // A slow reader now and then: the pipe fills, LSR turns busy, THRE is held back.
            if (self.got % 5 == 0) _ = linux.poll(&empty_poll, 0, 1);
        }
    }
};

test "a guest driving the port as Linux does (earlyprintk, then interrupts) against a real event loop: every byte, in order, no lost THRE" {
    var fds: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, .{ .CLOEXEC = true, .NONBLOCK = true }));
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var s: Serial = .{ .base = 0x3f8, .out = try OutputBuffer.Sink.open(fds[1]) };
    defer s.deinit();
    var loop: EventLoop = undefined;
    try loop.init();
    defer loop.deinit();
    try s.watch(&loop);
    const irq = try sys.eventfd(linux.EFD.NONBLOCK);
    defer sys.close(irq);
    s.irq_fd = irq;
    try loop.start();
    const total = 400 * 1024; // several times the ring and the pipe
    var guest: TestGuest = .{ .s = &s, .irq_fd = irq, .total = total, .early = 2048 };
    var reader: TestReader = .{ .fd = fds[0], .want = total };
    const rt = try std.Thread.spawn(.{}, TestReader.run, .{&reader});
    const gt = try std.Thread.spawn(.{}, TestGuest.run, .{&guest});
    gt.join();
    rt.join();
    if (guest.stalled) std.debug.print("STALL sent={d} got={d} ring={d} held={} pending={} ier={x} notified={} lsr={x} ev={x}/{} longest={d}\n", .{
        guest.sent,                      reader.got,                          s.ring.len(),          s.thre_held, s.thre_pending, s.ier, s.notified.load(.seq_cst), guest.inb(5),
        loop.sources[s.out_id.?].events, loop.sources[s.out_id.?].registered, guest.longest_wait_ms,
    });
    loop.stop();
    try std.testing.expect(!guest.stalled);
    try std.testing.expectEqual(@as(usize, total), guest.sent);
    try std.testing.expectEqual(@as(u64, 0), s.dropped);
    try std.testing.expectEqual(@as(usize, total), reader.got);
    try std.testing.expectEqual(@as(usize, 0), reader.wrong);
}
