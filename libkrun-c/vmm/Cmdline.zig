//! The guest kernel's command line in a fixed buffer, for every architecture: tokens joined by
//! single spaces, printable ASCII only (libkrun's rule), at most `size_max - 1` bytes so the NUL
//! fits. An arch gives only what differs (`Arch`): its COMMAND_LINE_SIZE, libkrun's prolog
//! around `console=`, and whether virtio-MMIO slots go on the line (x86_64: the guest's only
//! way to find them) or not (aarch64: the device tree lists them).
const std = @import("std");

pub const CmdlineError = error{ CmdlineTooLong, CmdlineInvalidChar };

/// A virtio-MMIO slot as a `virtio_mmio.device=` token names it.
pub const VirtioMmioSlot = struct { addr: u64, irq: u32 };

pub const Arch = struct {
    /// The guest's COMMAND_LINE_SIZE (NUL included).
    size_max: usize,
    /// libkrun's prolog minus `console=`, which comes from Config.kernel_console in between.
    prolog_head: []const u8,
    prolog_tail: []const u8,
    /// Where slot n is, when the guest learns it from the line; null when the line names none.
    virtio_mmio_slot: ?fn (slot: u32) VirtioMmioSlot = null,
};

pub fn Cmdline(comptime arch: Arch) type {
    return struct {
        const Self = @This();
        pub const size_max = arch.size_max;
        pub const prolog_head = arch.prolog_head;
        pub const prolog_tail = arch.prolog_tail;
        pub const Error = CmdlineError;

        buf: [size_max]u8 = undefined,
        len: usize = 0,

        pub fn bytes(self: *const Self) []const u8 {
            return self.buf[0..self.len];
        }

        /// Appends text verbatim (it may hold several tokens), after a space separator.
        pub fn append(self: *Self, text: []const u8) CmdlineError!void {
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

        pub fn appendPrint(self: *Self, comptime fmt: []const u8, args: anytype) CmdlineError!void {
            var tmp: [256]u8 = undefined;
            const text = std.fmt.bufPrint(&tmp, fmt, args) catch return error.CmdlineTooLong;
            try self.append(text);
        }

        /// `virtio_mmio.device=4K@0x...:IRQ` for slot n, or nothing where the line names no slots.
        pub fn appendVirtioMmio(self: *Self, slot: u32) CmdlineError!void {
            const where = arch.virtio_mmio_slot orelse return;
            const s = where(slot);
            try self.appendPrint("virtio_mmio.device=4K@0x{x}:{d}", .{ s.addr, s.irq });
        }

        /// The prolog with `console=<console>` where libkrun has it.
        pub fn appendProlog(self: *Self, console: []const u8) CmdlineError!void {
            try self.append(prolog_head);
            try self.appendPrint("console={s}", .{console});
            try self.append(prolog_tail);
        }
    };
}

const testing = std.testing;

test "cmdline: joined by spaces, printable only, bounded with room for the NUL" {
    var c: Cmdline(.{ .size_max = 17, .prolog_head = "a", .prolog_tail = "b" }) = .{};
    try c.appendProlog("hvc0");
    try c.appendVirtioMmio(3); // no slots on this line
    try testing.expectEqualStrings("a console=hvc0 b", c.bytes());
    try testing.expectError(error.CmdlineTooLong, c.append("x"));
    var d: Cmdline(.{ .size_max = 16, .prolog_head = "", .prolog_tail = "" }) = .{};
    try testing.expectError(error.CmdlineInvalidChar, d.append("a\tb"));
    try d.append("0123456789abcd");
    try testing.expectEqual(@as(usize, 14), d.len);
    try testing.expectError(error.CmdlineTooLong, d.append("e")); // separator + 1 > 15
}
