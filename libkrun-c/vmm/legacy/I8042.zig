//! The i8042 keyboard controller, reduced to what a microVM guest uses: the CPU-reset command
//! (0xFE written to port 0x64), which Linux issues with `reboot=k` and which is how a libkrun
//! guest ends. Ports 0x60..0x64; reads say "no data, input buffer empty".
const std = @import("std");

const I8042 = @This();

pub const port_base: u16 = 0x60;
pub const port_count: u16 = 5;
pub const data_port: u16 = 0x60;
pub const command_port: u16 = 0x64;
pub const cmd_reset_cpu: u8 = 0xFE;

pub const Action = enum { none, reset };

pub fn read(_: *I8042, port: u16, data: []u8) void {
    std.debug.assert(port >= port_base and port < port_base + port_count); // tidy: Pio routes only this device's ports here
    @memset(data, 0);
}

pub fn write(_: *I8042, port: u16, data: []const u8) Action {
    std.debug.assert(port >= port_base and port < port_base + port_count); // tidy: Pio routes only this device's ports here
    if (port == command_port and data.len >= 1 and data[0] == cmd_reset_cpu) return .reset;
    return .none;
}

test "0xFE on the command port resets, nothing else does" {
    var dev: I8042 = .{};
    try std.testing.expectEqual(Action.reset, dev.write(0x64, &.{0xfe}));
    try std.testing.expectEqual(Action.none, dev.write(0x64, &.{0xfd}));
    try std.testing.expectEqual(Action.none, dev.write(0x60, &.{0xfe}));
    var b = [_]u8{0xaa};
    dev.read(0x64, &b);
    try std.testing.expectEqual(@as(u8, 0), b[0]);
}
