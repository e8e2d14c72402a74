//! Test support for virtio-fs (test code only): `Tmp`, a temporary directory with a served
//! `share/` and an `outside/` that must stay unreachable. Used by VirtioFs.zig's tests and by
//! the server tests, hostile harness and fuzzer under tests/zig/fs/ and tests/fuzz/.
const std = @import("std");
const sys = @import("sys.zig").backend;
const Server = @import("Server.zig");

const gpa = std.testing.allocator;

/// A temporary directory with `share/` (served) and `outside/` (must stay unreachable).
pub const Tmp = struct {
    t: std.testing.TmpDir,
    buf: [4096]u8 = undefined,
    path: [:0]const u8 = "",
    fd: sys.fd_t,

    pub fn init() !Tmp {
        var self: Tmp = .{ .t = std.testing.tmpDir(.{}), .fd = -1 };
        self.fd = self.t.dir.handle;
        try sys.mkdirat(self.fd, "share", 0o755);
        try sys.mkdirat(self.fd, "outside", 0o755);
        try self.file("outside/secret", "top secret\n");
        return self;
    }

    pub fn deinit(self: *Tmp) void {
        self.t.cleanup();
    }

    /// Absolute path of `sub` inside the temp dir (into self.buf).
    pub fn abs(self: *Tmp, sub: []const u8) ![:0]const u8 {
        var base: [4096]u8 = undefined;
        const n = try self.t.dir.realPath(std.testing.io, &base);
        return std.mem.printSentinel(&self.buf, "{s}/{s}", .{ base[0..n], sub }, 0);
    }

    pub fn file(self: *Tmp, sub: [:0]const u8, data: []const u8) !void {
        const fd = try sys.openat(self.fd, sub, sys.O.WRONLY | sys.O.CREAT | sys.O.TRUNC | sys.O.CLOEXEC, 0o644);
        defer sys.close(fd);
        _ = try sys.pwrite(fd, data, 0);
    }

    pub fn read(self: *Tmp, sub: [:0]const u8, buf: []u8) ![]u8 {
        const fd = try sys.openat(self.fd, sub, sys.O.RDONLY | sys.O.CLOEXEC, 0);
        defer sys.close(fd);
        return buf[0..try sys.pread(fd, buf, 0)];
    }

    pub fn stat(self: *Tmp, sub: [:0]const u8) !sys.Stat {
        return sys.fstatat(self.fd, sub, sys.AT.SYMLINK_NOFOLLOW);
    }

    pub fn exists(self: *Tmp, sub: [:0]const u8) bool {
        _ = self.stat(sub) catch return false;
        return true;
    }

    pub fn server(self: *Tmp, options: Server.Options) !*Server {
        var o = options;
        o.root = try self.abs("share");
        return Server.init(gpa, o);
    }
};
