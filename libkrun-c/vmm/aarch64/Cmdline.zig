//! The aarch64 guest's kernel command line, carried in the device tree's /chosen/bootargs: the
//! same rules as x86_64's (tokens joined by single spaces, printable ASCII only, at most
//! COMMAND_LINE_SIZE - 1 bytes) but its own prolog: libkrun's minus the x86 tokens (`reboot=k`,
//! `no-kvmapf`), with `reboot=panic_warm` so a panic resets warm (PSCI SYSTEM_RESET2) and init's
//! reboot cold (arch.zig: how the VM tells them apart). No `virtio_mmio.device=` tokens: the
//! device tree names every slot.
const std = @import("std");

const Cmdline = @This();

/// arm64's COMMAND_LINE_SIZE.
pub const size_max = 2048;
pub const prolog_head = "reboot=panic_warm panic=-1 panic_print=0 nomodule";
pub const prolog_tail = "rootfstype=virtiofs rw quiet init=/init.krun";

buf: [size_max]u8 = undefined,
len: usize = 0,

pub const Error = error{ CmdlineTooLong, CmdlineInvalidChar };

pub fn bytes(self: *const Cmdline) []const u8 {
    return self.buf[0..self.len];
}

/// Appends text verbatim (it may hold several tokens), after a space separator.
pub fn append(self: *Cmdline, text: []const u8) Error!void {
    if (text.len == 0) return;
    for (text) |c| if (c < ' ' or c > '~') return error.CmdlineInvalidChar;
    const sep: usize = @intFromBool(self.len > 0);
    if (self.len + sep + text.len > self.buf.len - 1) return error.CmdlineTooLong;
    if (sep == 1) {
        self.buf[self.len] = ' ';
        self.len += 1;
    }
    @memcpy(self.buf[self.len..][0..text.len], text);
    self.len += text.len;
}

pub fn appendPrint(self: *Cmdline, comptime fmt: []const u8, args: anytype) Error!void {
    var tmp: [256]u8 = undefined;
    const text = std.fmt.bufPrint(&tmp, fmt, args) catch return error.CmdlineTooLong;
    try self.append(text);
}

/// Nothing: the device tree lists the slot.
pub fn appendVirtioMmio(self: *Cmdline, slot: u32) Error!void {
    _ = self;
    _ = slot;
}

/// The prolog with `console=<console>` where libkrun has it.
pub fn appendProlog(self: *Cmdline, console: []const u8) Error!void {
    try self.append(prolog_head);
    try self.appendPrint("console={s}", .{console});
    try self.append(prolog_tail);
}

test "aarch64 cmdline: prolog without x86 tokens, bounded, printable" {
    var c: Cmdline = .{};
    try c.appendProlog("hvc0");
    try c.appendVirtioMmio(0);
    try std.testing.expectEqualStrings("reboot=panic_warm panic=-1 panic_print=0 nomodule console=hvc0 " ++
        "rootfstype=virtiofs rw quiet init=/init.krun", c.bytes());
    try std.testing.expectError(error.CmdlineInvalidChar, c.append("a\nb"));
    var long: [size_max]u8 = @splat('x');
    try std.testing.expectError(error.CmdlineTooLong, c.append(&long));
}
