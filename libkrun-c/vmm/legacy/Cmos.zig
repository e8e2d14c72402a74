//! CMOS/RTC at ports 0x70 (index) and 0x71 (data): the memory-size registers a guest (or its
//! firmware) reads — 0x34/0x35 RAM between 16 MiB and 4 GiB in 64 KiB units, 0x5b-0x5d RAM
//! above 4 GiB in 64 KiB units — and the RTC time registers in BCD, from the host clock.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");

const Cmos = @This();

pub const port_base: u16 = 0x70;
pub const port_count: u16 = 8;

index: u8 = 0,
/// Register file; memory sizes are filled in by `init`, time registers are computed on read.
regs: [128]u8 = @splat(0),

pub fn init(mem_below_4g: u64, mem_above_4g: u64) Cmos {
    var c: Cmos = .{};
    const sixteen_mib: u64 = 16 << 20;
    const mid = if (mem_below_4g > sixteen_mib) @min((mem_below_4g - sixteen_mib) >> 16, 0xffff) else 0;
    c.regs[0x34] = @truncate(mid);
    c.regs[0x35] = @truncate(mid >> 8);
    const high = @min(mem_above_4g >> 16, 0xff_ffff);
    c.regs[0x5b] = @truncate(high);
    c.regs[0x5c] = @truncate(high >> 8);
    c.regs[0x5d] = @truncate(high >> 16);
    c.regs[0x0b] = 0x02; // 24-hour mode, BCD
    c.regs[0x0d] = 0x80; // RTC power good
    return c;
}

pub fn read(self: *Cmos, port: u16, data: []u8) void {
    std.debug.assert(port >= port_base and port < port_base + port_count); // tidy: Pio routes only this device's ports here
    @memset(data, 0);
    if (data.len == 0) return;
    data[0] = if (port == 0x71) self.register(self.index) else 0xff;
}

pub fn write(self: *Cmos, port: u16, data: []const u8) void {
    std.debug.assert(port >= port_base and port < port_base + port_count); // tidy: Pio routes only this device's ports here
    if (data.len == 0) return;
    switch (port) {
        0x70 => self.index = data[0] & 0x7f, // bit 7 is the NMI mask
        0x71 => if (self.index >= 0x0e) {
            self.regs[self.index] = data[0];
        },
        else => {},
    }
}

fn bcd(v: u64) u8 {
    const x: u8 = @intCast(v % 100);
    return (x / 10) << 4 | (x % 10);
}

fn register(self: *const Cmos, index: u8) u8 {
    std.debug.assert(index < 128); // tidy: the index register is masked to 7 bits on write
    if (index > 0x09) return self.regs[index];
    const ts = sys.clock_gettime(.REALTIME) catch return 0;
    const secs: u64 = @intCast(@max(ts.sec, 0));
    const es: std.time.epoch.EpochSeconds = .{ .secs = secs };
    const day = es.getDaySeconds();
    const yd = es.getEpochDay().calculateYearDay();
    const md = yd.calculateMonthDay();
    return switch (index) {
        0x00 => bcd(day.getSecondsIntoMinute()),
        0x02 => bcd(day.getMinutesIntoHour()),
        0x04 => bcd(day.getHoursIntoDay()),
        0x06 => bcd((es.getEpochDay().day + 4) % 7 + 1), // 1970-01-01 was a Thursday
        0x07 => bcd(md.day_index + 1),
        0x08 => bcd(md.month.numeric()),
        0x09 => bcd(yd.year),
        else => 0,
    };
}

test "memory size registers" {
    var c = init(256 << 20, 1 << 32);
    var b = [_]u8{0};
    c.write(0x70, &.{0x34});
    c.read(0x71, &b);
    const mid: u16 = (256 - 16) << 4;
    try std.testing.expectEqual(@as(u8, @truncate(mid)), b[0]);
    c.write(0x70, &.{0x35 | 0x80});
    c.read(0x71, &b);
    try std.testing.expectEqual(@as(u8, @truncate(mid >> 8)), b[0]);
    c.write(0x70, &.{0x5d});
    c.read(0x71, &b);
    try std.testing.expectEqual(@as(u8, 1), b[0]); // 4 GiB = 0x10000 × 64 KiB
    c.write(0x70, &.{0x08});
    c.read(0x71, &b);
    try std.testing.expect(b[0] >= 0x01 and b[0] <= 0x12);
}
