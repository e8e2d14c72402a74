//! The guest side of tests/vm/80..84: a static program (no libc) that uses AF_VSOCK directly.
//! Built natively by 80-vsock.prepare.sh (via 80-vsock-build.sh) and put into the test rootfs
//! as /vsock-guest. Every mode prints what it saw and exits 0 only when it saw what it should.
//!   connect PORT MSG          connect(2, PORT), send MSG, half-close, expect "echo:MSG" back
//!   stream PORT BYTES         connect(2, PORT), send BYTES pseudo-random bytes while reading
//!                             the echo; compare checksums (flow control both ways)
//!   serve PORT COUNT          listen on PORT, echo COUNT connections ("echo:" + data)
//!   flood PORT N              open N connections to (2, PORT) at once and hold them; then one
//!                             more echo must still work once they are closed
//!   tsi-* modes               tsi/PROTOCOL.md spoken by hand to (2, 620): see `usage`
const std = @import("std");
const linux = std.os.linux;

const af_vsock = 40;
const cid_host: u32 = 2;
const cid_any: u32 = 0xffff_ffff;

const SockaddrVm = extern struct {
    family: u16 = af_vsock,
    reserved1: u16 = 0,
    port: u32,
    cid: u32,
    flags: u8 = 0,
    zero: [3]u8 = @splat(0),
};

comptime {
    std.debug.assert(@sizeOf(SockaddrVm) == 16);
}

var out_buf: [4096]u8 = undefined;

fn print(comptime fmt: []const u8, args: anytype) void {
    const s = std.fmt.bufPrint(&out_buf, fmt, args) catch return;
    _ = linux.write(1, s.ptr, s.len);
}

fn fail(comptime fmt: []const u8, args: anytype) noreturn {
    print("FAIL " ++ fmt ++ "\n", args);
    linux.exit_group(1);
}

fn check(rc: usize, what: []const u8) usize {
    const e = linux.errno(rc);
    if (e != .SUCCESS) fail("{s}: {t}", .{ what, e });
    return rc;
}

pub fn vsockSocket() i32 {
    return @intCast(check(linux.socket(af_vsock, linux.SOCK.STREAM | linux.SOCK.CLOEXEC, 0), "socket(AF_VSOCK)"));
}

pub fn vsockConnect(port: u32) linux.E {
    const fd = vsockSocket();
    const addr: SockaddrVm = .{ .port = port, .cid = cid_host };
    const rc = linux.connect(fd, @ptrCast(&addr), @sizeOf(SockaddrVm));
    if (linux.errno(rc) != .SUCCESS) {
        _ = linux.close(fd);
        return linux.errno(rc);
    }
    connected_fd = fd;
    return .SUCCESS;
}

pub var connected_fd: i32 = -1;

fn connectOrFail(port: u32) i32 {
    const e = vsockConnect(port);
    if (e != .SUCCESS) fail("connect(2, {d}): {t}", .{ port, e });
    return connected_fd;
}

pub fn writeAll(fd: i32, bytes: []const u8) void {
    var done: usize = 0;
    while (done < bytes.len) done += check(linux.write(fd, bytes[done..].ptr, bytes.len - done), "write");
}

/// Reads until EOF into buf; returns the length.
pub fn readAll(fd: i32, buf: []u8) usize {
    var n: usize = 0;
    while (n < buf.len) {
        const rc = check(linux.read(fd, buf[n..].ptr, buf.len - n), "read");
        if (rc == 0) break;
        n += rc;
    }
    return n;
}

fn parse(s: []const u8) u32 {
    return std.fmt.parseInt(u32, s, 10) catch fail("not a number: {s}", .{s});
}

fn modeConnect(port: u32, msg: []const u8) void {
    const fd = connectOrFail(port);
    writeAll(fd, msg);
    _ = linux.shutdown(fd, linux.SHUT.WR);
    var buf: [4096]u8 = undefined;
    const n = readAll(fd, &buf);
    print("reply={s}\n", .{buf[0..n]});
    if (n != msg.len + 5 or !std.mem.startsWith(u8, buf[0..n], "echo:") or !std.mem.eql(u8, buf[5..n], msg))
        fail("expected echo:{s}", .{msg});
    _ = linux.close(fd);
}

/// Sends `total` bytes (a xorshift stream) and reads the echo at the same time; both sides'
/// FNV-1a checksums must match.
pub fn streamEcho(fd: i32, total: usize) void {
    var gen: u64 = 0x9e3779b97f4a7c15;
    var sent: usize = 0;
    var got: usize = 0;
    var sum_out: u64 = 0xcbf29ce484222325;
    var sum_in: u64 = 0xcbf29ce484222325;
    var chunk: [16384]u8 = undefined;
    var pending: []u8 = chunk[0..0];
    var in: [16384]u8 = undefined;
    _ = linux.fcntl(fd, linux.F.SETFL, @as(u32, @bitCast(linux.O{ .NONBLOCK = true, .ACCMODE = .RDWR })));
    var shut = false;
    while (got < total) {
        if (pending.len == 0 and sent < total) {
            const n = @min(chunk.len, total - sent);
            for (chunk[0..n]) |*b| {
                gen ^= gen << 13;
                gen ^= gen >> 7;
                gen ^= gen << 17;
                b.* = @truncate(gen);
                sum_out = (sum_out ^ b.*) *% 0x100000001b3;
            }
            pending = chunk[0..n];
        }
        if (pending.len == 0 and !shut) {
            _ = linux.shutdown(fd, linux.SHUT.WR);
            shut = true;
        }
        var pfd = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.IN | (if (pending.len > 0) @as(i16, linux.POLL.OUT) else 0), .revents = 0 }};
        _ = check(linux.poll(&pfd, 1, 60_000), "poll");
        if (pfd[0].revents == 0) fail("stalled: sent {d}, got {d} of {d}", .{ sent, got, total });
        if (pfd[0].revents & linux.POLL.OUT != 0 and pending.len > 0) {
            const rc = linux.write(fd, pending.ptr, pending.len);
            if (linux.errno(rc) == .SUCCESS) {
                sent += rc;
                pending = pending[rc..];
            } else if (linux.errno(rc) != .AGAIN) fail("write: {t}", .{linux.errno(rc)});
        }
        if (pfd[0].revents & (linux.POLL.IN | linux.POLL.HUP | linux.POLL.ERR) != 0) {
            const rc = linux.read(fd, &in, in.len);
            if (linux.errno(rc) == .SUCCESS) {
                if (rc == 0) break;
                for (in[0..rc]) |b| sum_in = (sum_in ^ b) *% 0x100000001b3;
                got += rc;
            } else if (linux.errno(rc) != .AGAIN) fail("read: {t}", .{linux.errno(rc)});
        }
    }
    print("stream sent={d} got={d} sum_out={x} sum_in={x}\n", .{ sent, got, sum_out, sum_in });
    if (sent != total or got != total or sum_out != sum_in) fail("stream mismatch", .{});
}

fn modeStream(port: u32, total: usize) void {
    const fd = connectOrFail(port);
    streamEcho(fd, total);
    _ = linux.close(fd);
}

fn modeServe(port: u32, count: u32) void {
    const fd = vsockSocket();
    const addr: SockaddrVm = .{ .port = port, .cid = cid_any };
    _ = check(linux.bind(fd, @ptrCast(&addr), @sizeOf(SockaddrVm)), "bind");
    _ = check(linux.listen(fd, 16), "listen");
    print("listening on {d}\n", .{port});
    for (0..count) |i| {
        const c: i32 = @intCast(check(linux.accept4(fd, null, null, linux.SOCK.CLOEXEC), "accept"));
        var buf: [4096]u8 = undefined;
        @memcpy(buf[0..5], "echo:");
        const n = readAll(c, buf[5..]);
        writeAll(c, buf[0 .. n + 5]);
        _ = linux.close(c);
        print("served {d}: {s}\n", .{ i, buf[5 .. n + 5] });
    }
}

fn modeFlood(port: u32, n: u32) void {
    var fds: [4096]i32 = undefined;
    var ok: u32 = 0;
    var refused: u32 = 0;
    for (0..@min(n, fds.len)) |_| {
        switch (vsockConnect(port)) {
            .SUCCESS => {
                fds[ok] = connected_fd;
                ok += 1;
            },
            .MFILE, .NFILE => break,
            else => refused += 1,
        }
    }
    print("flood ok={d} refused={d}\n", .{ ok, refused });
    for (fds[0..ok]) |fd| _ = linux.close(fd);
    // The host frees its side when the guest's RSTs/shutdowns arrive: retry a little.
    var ts: linux.timespec = .{ .sec = 0, .nsec = 200_000_000 };
    for (0..50) |_| {
        if (vsockConnect(port) == .SUCCESS) {
            _ = linux.close(connected_fd);
            modeConnect(port, "after-flood");
            return;
        }
        _ = linux.nanosleep(&ts, &ts);
        ts = .{ .sec = 0, .nsec = 200_000_000 };
    }
    fail("no connection after the flood", .{});
}

const tsi_guest = @import("80-vsock-tsi.zig");

pub fn main(init: std.process.Init.Minimal) void {
    var args_buf: [16][]const u8 = undefined;
    var argc: usize = 0;
    var it = std.process.Args.Iterator.init(init.args);
    while (it.next()) |a| : (argc += 1) {
        if (argc == args_buf.len) break;
        args_buf[argc] = a;
    }
    const args = args_buf[0..argc];
    if (args.len < 2) fail("usage: vsock-guest MODE ARGS", .{});
    const mode = args[1];
    if (std.mem.eql(u8, mode, "connect") and args.len == 4) return modeConnect(parse(args[2]), args[3]);
    if (std.mem.eql(u8, mode, "stream") and args.len == 4) return modeStream(parse(args[2]), parse(args[3]));
    if (std.mem.eql(u8, mode, "serve") and args.len == 4) return modeServe(parse(args[2]), parse(args[3]));
    if (std.mem.eql(u8, mode, "flood") and args.len == 4) return modeFlood(parse(args[2]), parse(args[3]));
    if (std.mem.startsWith(u8, mode, "tsi-")) return tsi_guest.run(args);
    fail("unknown mode {s}", .{mode});
}
