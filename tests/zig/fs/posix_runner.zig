//! Test runner of the virtio-fs posix-backend builds (build.zig: test-fs-posix, fs-posix-unit):
//! declaring `zkrun_fs_posix` here, the test root, switches the server's host calls to
//! libkrun-c/virtio/fs/sys_posix.zig (the macOS backend) on Linux, so the server's tests run
//! against it on real files. Prints Zig's default runner's "i/N name...OK|SKIP|FAIL" lines
//! (tests/native/fs-posix.sh counts them) and exits 1 on a failure or a leak.
const std = @import("std");
const builtin = @import("builtin");

pub const zkrun_fs_posix = true;

pub const std_options: std.Options = .{ .logFn = log };

/// Whether the running test logged: its result line is then started again, so that every
/// "i/N name...RESULT" stays on one line for the scripts that count them.
var logged = false;

fn log(comptime level: std.log.Level, comptime scope: @EnumLiteral(), comptime format: []const u8, args: anytype) void {
    if (@backingInt(level) > @backingInt(std.testing.log_level)) return;
    std.debug.print("\n[" ++ @tagName(scope) ++ "] (" ++ @tagName(level) ++ "): " ++ format ++ "\n", args);
    logged = true;
}

pub fn main(init: std.process.Init.Minimal) void {
    const tests = builtin.test_functions;
    var ok: usize = 0;
    var skipped: usize = 0;
    var failed: usize = 0;
    var leaks: usize = 0;
    for (tests, 0..) |t, i| {
        std.testing.allocator_instance = .init(std.heap.page_allocator, .{});
        std.testing.io_instance = .init(std.testing.allocator, .{ .argv0 = .init(init.args), .environ = init.environ });
        std.testing.environ = init.environ;
        std.testing.log_level = .warn;
        std.debug.print("{d}/{d} {s}...", .{ i + 1, tests.len, t.name });
        logged = false;
        const result = t.func();
        if (logged) std.debug.print("{d}/{d} {s}...", .{ i + 1, tests.len, t.name });
        if (result) |_| {
            ok += 1;
            std.debug.print("OK\n", .{});
        } else |err| switch (err) {
            error.SkipZigTest => {
                skipped += 1;
                std.debug.print("SKIP\n", .{});
            },
            else => {
                failed += 1;
                std.debug.print("FAIL ({t})\n", .{err});
                if (@errorReturnTrace()) |trace| std.debug.dumpErrorReturnTrace(trace);
            },
        }
        std.testing.io_instance.deinit();
        if (std.testing.allocator_instance.deinit() != 0) {
            leaks += 1;
            std.debug.print("{s}: memory leaked\n", .{t.name});
        }
    }
    std.debug.print("{d} passed; {d} skipped; {d} failed; {d} leaked.\n", .{ ok, skipped, failed, leaks });
    if (failed != 0 or leaks != 0) std.process.exit(1);
}
