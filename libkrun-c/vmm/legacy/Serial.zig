//! A 16550A UART, transmit side only: enough for Linux's 8250 driver to use a COM port as a
//! console (ttyS0). The THR-empty interrupt is raised through `irq_fd` (an irqfd eventfd, -1:
//! none), so interrupt-driven output works. Several vCPUs may touch the port: a spin lock
//! serialises register access (no syscall under it).
//!
//! Output never does I/O on the vCPU thread: bytes written to THR go into a bounded ring
//! (`ring_size`) that the event loop writes to `out` without blocking (`watch`: an eventfd
//! tells it output is pending, EPOLLOUT while the host is not reading). Back-pressure is a
//! real UART's: while fewer than `fifo_size` bytes are free, LSR reports the transmitter busy
//! and the THRE interrupt is held back until the loop has made room, so a driver that honours
//! LSR/THRE (Linux's, interrupt-driven or polling) waits — the guest blocks, the vCPU does
//! not. A byte written to THR with the ring completely full is dropped (counted in `dropped`),
//! as a real UART overruns; Linux's console write does that after waiting 10 ms per byte.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys.zig");
const OutputBuffer = @import("../OutputBuffer.zig");
const EventLoop = @import("../EventLoop.zig");

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
/// Where the output goes; discarding (a sink) unless the Machine opened one.
out: OutputBuffer.Sink = .{},
ring: OutputBuffer.Ring(ring_size) = .{},
irq_fd: i32 = -1,
/// Set by `watch`: the eventfd that tells the event loop output is pending, and the loop.
notify_fd: i32 = -1,
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
    if (notify) sys.eventfdSignal(self.notify_fd);
    if (raise and self.irq_fd >= 0) sys.eventfdSignal(self.irq_fd);
}

/// Whether THR can take a FIFO's worth (a sink always can).
fn hasRoom(self: *const Serial) bool {
    return self.notify_fd < 0 or self.ring.free() >= fifo_size;
}

/// Queues a byte for the event loop; true when the loop must be told (outside the lock).
fn emit(self: *Serial, byte: u8) bool {
    if (self.notify_fd < 0) return false; // a sink, or nobody drains: dropped
    if (self.ring.push(&.{byte}) == 0) self.dropped += 1;
    return !self.notified.swap(true, .acq_rel);
}

/// Hands the output to `loop`: an eventfd for "pending" and, for an fd that can block, an
/// EPOLLOUT source (idle until the host stops reading). Before the loop starts.
pub fn watch(self: *Serial, loop: *EventLoop) EventLoop.InitError!void {
    if (self.out.mode == .discard) return;
    self.notify_fd = try sys.eventfd(linux.EFD.NONBLOCK);
    self.loop = loop;
    const h: EventLoop.Handler = .{ .ctx = self, .call = drain };
    _ = try loop.addEventfd(self.notify_fd, h);
    if (self.out.pollable()) self.out_id = try loop.add(.{ .fd = self.out.fd, .events = 0, .handler = h });
}

/// Closes our handles (after the loop and the vCPUs stopped).
pub fn deinit(self: *Serial) void {
    self.out.close();
    if (self.notify_fd >= 0) sys.close(self.notify_fd);
    self.notify_fd = -1;
}

/// Event loop: writes the ring out without blocking, watches EPOLLOUT while it cannot, and
/// raises a held-back THRE once there is room again.
pub fn drain(ptr: *anyopaque, _: u32, _: u32) void {
    const self: *Serial = @ptrCast(@alignCast(ptr));
    self.notified.store(false, .release); // bytes pushed from now on notify again
    const blocked = self.ring.flush(&self.out) == .blocked;
    if (self.loop) |loop| if (self.out_id) |id| loop.setEvents(id, if (blocked) linux.EPOLL.OUT else 0);
    if (!self.hasRoom()) return;
    self.acquire();
    const raise = self.thre_held and self.ier & ier_thre != 0;
    if (self.thre_held) self.thre_pending = true;
    self.thre_held = false;
    self.lock.unlock();
    if (raise and self.irq_fd >= 0) sys.eventfdSignal(self.irq_fd);
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
    s.notify_fd = try sys.eventfd(linux.EFD.NONBLOCK); // drained by hand below, no loop
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
    try std.testing.expectEqual(@as(u64, 1), sys.eventfdDrain(s.notify_fd)); // told once
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
