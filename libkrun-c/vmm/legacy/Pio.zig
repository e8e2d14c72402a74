//! The port-I/O bus of a VM: dispatches a KVM_EXIT_IO access to the legacy device that owns the
//! port. Ports nobody owns read as all-ones (an ISA bus with nothing on it) and ignore writes,
//! which covers the POST port 0x80 and every probe of absent hardware.
const std = @import("std");
const I8042 = @import("I8042.zig");
const Cmos = @import("Cmos.zig");
const Serial = @import("Serial.zig");

const Pio = @This();

i8042: I8042 = .{},
cmos: Cmos,
serial: [4]Serial,

pub const Action = I8042.Action;

pub fn init(cmos: Cmos) Pio {
    var p: Pio = .{ .cmos = cmos, .serial = undefined };
    for (&p.serial, Serial.com_ports) |*s, base| s.* = .{ .base = base };
    return p;
}

fn inRange(port: u16, base: u16, count: u16) bool {
    return port >= base and port - base < count;
}

fn serialFor(self: *Pio, port: u16) ?*Serial {
    for (&self.serial) |*s| if (inRange(port, s.base, Serial.port_count)) return s;
    return null;
}

pub fn read(self: *Pio, port: u16, data: []u8) void {
    std.debug.assert(data.len <= 4); // tidy: KVM bounds a port access to 4 bytes
    if (inRange(port, I8042.port_base, I8042.port_count)) return self.i8042.read(port, data);
    if (inRange(port, Cmos.port_base, Cmos.port_count)) return self.cmos.read(port, data);
    if (self.serialFor(port)) |s| return s.read(port, data);
    @memset(data, 0xff);
}

pub fn write(self: *Pio, port: u16, data: []const u8) Action {
    std.debug.assert(data.len <= 4); // tidy: KVM bounds a port access to 4 bytes
    if (inRange(port, I8042.port_base, I8042.port_count)) return self.i8042.write(port, data);
    if (inRange(port, Cmos.port_base, Cmos.port_count)) {
        self.cmos.write(port, data);
    } else if (self.serialFor(port)) |s| {
        s.write(port, data);
    }
    return .none;
}

test "dispatch by port" {
    var p = init(Cmos.init(128 << 20, 0));
    var b = [_]u8{ 0, 0 };
    p.read(0x80, &b);
    try std.testing.expectEqual([2]u8{ 0xff, 0xff }, b);
    try std.testing.expectEqual(Action.none, p.write(0x80, &.{0x12}));
    try std.testing.expectEqual(Action.reset, p.write(0x64, &.{0xfe}));
    p.read(0x2fd, b[0..1]);
    try std.testing.expectEqual(@as(u8, 0x60), b[0]);
    try std.testing.expectEqual(Action.none, p.write(0x3f8, "x")); // sink
}
