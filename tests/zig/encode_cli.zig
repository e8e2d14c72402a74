//! A command-line front end to `protocol.encode`, for tests that boot a real kernel with what
//! the VMM would produce (tests/native/init-qemu.sh):
//!   encode_cli JSON_OUT [--exec PATH] [--workdir DIR] [--env K=V]... [--rlimit R=C:M]...
//!              [--room BYTES] [-- ARG...]
//! prints the cmdline tokens on stdout and, when the config went by JSON, writes the document
//! to JSON_OUT (else removes JSON_OUT). Exit status 2 on usage errors, 1 on encode errors.
const std = @import("std");
const linux = std.os.linux;
const protocol = @import("zkrun").init.protocol;

const list_max = protocol.args_max;

pub fn main(init: std.process.Init.Minimal) u8 {
    const argv = init.args.vector;
    if (argv.len < 2) return usage();
    const gpa = std.heap.page_allocator;
    var args: std.ArrayList([]const u8) = .empty;
    var env: std.ArrayList([]const u8) = .empty;
    var rlimits: std.ArrayList([]const u8) = .empty;
    var exec: protocol.ExecConfig = .{};
    var i: usize = 2;
    while (i < argv.len) : (i += 1) {
        const opt = std.mem.span(argv[i]);
        if (std.mem.eql(u8, opt, "--")) {
            for (argv[i + 1 ..]) |a| args.append(gpa, std.mem.span(a)) catch return 1;
            break;
        }
        if (i + 1 >= argv.len) return usage();
        const value = std.mem.span(argv[i + 1]);
        i += 1;
        if (std.mem.eql(u8, opt, "--exec")) {
            exec.exec_path = value;
        } else if (std.mem.eql(u8, opt, "--workdir")) {
            exec.workdir = value;
        } else if (std.mem.eql(u8, opt, "--env")) {
            env.append(gpa, value) catch return 1;
        } else if (std.mem.eql(u8, opt, "--rlimit")) {
            rlimits.append(gpa, value) catch return 1;
        } else if (std.mem.eql(u8, opt, "--room")) {
            exec.cmdline_room = std.fmt.parseUnsigned(usize, value, 10) catch return usage();
        } else return usage();
    }
    exec.args = args.items;
    exec.env = env.items;
    exec.rlimits = rlimits.items;
    var encoded = protocol.encode(gpa, exec) catch |err| {
        print(2, "encode_cli: {t}\n", .{err});
        return 1;
    };
    defer encoded.deinit(gpa);
    print(1, "{s}\n", .{encoded.cmdline_tokens});
    const json_path = argv[1];
    _ = linux.unlink(json_path);
    const json = encoded.config_json orelse return 0;
    const rc = linux.open(json_path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true }, 0o644);
    if (linux.errno(rc) != .SUCCESS) return 1;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    writeAll(fd, json);
    return 0;
}

fn usage() u8 {
    print(2, "usage: encode_cli JSON_OUT [--exec P] [--workdir D] [--env K=V]... [--rlimit R=C:M]... [--room N] [-- ARG...]\n", .{});
    return 2;
}

fn print(fd: i32, comptime fmt: []const u8, args: anytype) void {
    const text = std.fmt.allocPrint(std.heap.page_allocator, fmt, args) catch return;
    writeAll(fd, text);
}

fn writeAll(fd: i32, bytes: []const u8) void {
    var done: usize = 0;
    while (done < bytes.len) {
        const rc = linux.write(fd, bytes[done..].ptr, bytes.len - done);
        if (linux.errno(rc) != .SUCCESS or rc == 0) return;
        done += rc;
    }
}
