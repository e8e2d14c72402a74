//! A 16550A UART, transmit side only: enough for Linux's 8250 driver to use a COM port as a
//! console (ttyS0). Bytes written to THR go to `out_fd` (-1: a sink). The THR-empty interrupt
//! is raised through `irq_fd` (an irqfd eventfd, -1: none), so interrupt-driven output works.
//! Several vCPUs may touch the port: a spin lock serialises register access.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys.zig");

const Serial = @This();

pub const com_ports = [4]u16{ 0x3f8, 0x2f8, 0x3e8, 0x2e8 };
pub const com_irqs = [4]u32{ 4, 3, 4, 3 };
pub const port_count: u16 = 8;

const ier_thre: u8 = 0x02;
const iir_none: u8 = 0x01;
const iir_thre: u8 = 0x02;
const iir_fifo: u8 = 0xc0;
const lcr_dlab: u8 = 0x80;
const lsr_thre_temt: u8 = 0x60;
const msr_dcd_dsr_cts: u8 = 0xb0;

base: u16,
out_fd: i32 = -1,
irq_fd: i32 = -1,
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
        5 => lsr_thre_temt,
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
    const dlab = self.lcr & lcr_dlab != 0;
    switch (port - self.base) {
        0 => if (dlab) {
            self.dll = v;
        } else {
            self.emit(v);
            self.thre_pending = true;
            raise = self.ier & ier_thre != 0;
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
    if (raise and self.irq_fd >= 0) sys.eventfdSignal(self.irq_fd);
}

fn emit(self: *Serial, byte: u8) void {
    if (self.out_fd < 0) return;
    while (true) {
        const rc = linux.write(self.out_fd, &[1]u8{byte}, 1);
        switch (linux.errno(rc)) {
            .INTR => continue,
            else => return, // a console that cannot take output drops it, like a real UART
        }
    }
}

test "transmit to the output fd and THRE interrupt bookkeeping" {
    var fds: [2]i32 = undefined;
    try std.testing.expectEqual(@as(usize, 0), linux.pipe2(&fds, .{ .NONBLOCK = true }));
    defer _ = linux.close(fds[0]);
    defer _ = linux.close(fds[1]);
    var s: Serial = .{ .base = 0x3f8, .out_fd = fds[1] };
    var b = [_]u8{0};
    s.read(0x3fd, &b);
    try std.testing.expectEqual(@as(u8, 0x60), b[0]);
    s.write(0x3f8, "h");
    s.write(0x3f8, "i");
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
