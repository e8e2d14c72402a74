//! Host file checks the setters make at call time (does a root directory or kernel exist, what
//! is it), with raw syscalls (the syscall layer sys/linux.zig; libc on macOS) so that no std.Io
//! instance is needed inside a C library. Each rejection names the path and the reason on the log.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const fd_calls = @import("../sys/fd.zig");
const assert = std.debug.assert;
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

pub const Kind = enum { directory, regular, other };

pub const Info = struct { kind: Kind, size: u64 };

/// statx(path), following symlinks. Missing → NotFound; unreadable → PermissionDenied.
pub fn stat(func: []const u8, what: []const u8, path: [:0]const u8) Error!Info {
    var buf: linux.Statx = undefined;
    var mac: if (is_macos) std.c.Stat else void = undefined;
    const e = if (is_macos) macErrno(std.c.stat(path.ptr, &mac)) else sys.resultErrno(sys.statx(linux.AT.FDCWD, path.ptr, 0, .{ .TYPE = true, .SIZE = true }, &buf));
    if (is_macos and e == .SUCCESS) {
        buf.mode = @intCast(mac.mode);
        buf.size = @intCast(mac.size);
    }
    switch (e) {
        .SUCCESS => {},
        .NOENT => return reject(func, error.NotFound, "{s} \"{s}\" does not exist", .{ what, path }),
        .NOTDIR => return reject(func, error.NotFound, "{s} \"{s}\": a parent is not a directory", .{ what, path }),
        .ACCES, .PERM => return reject(func, error.PermissionDenied, "{s} \"{s}\": permission denied", .{ what, path }),
        .NAMETOOLONG, .LOOP => return reject(func, error.InvalidArgument, "{s} \"{s}\" cannot be resolved", .{ what, path }),
        else => return reject(func, error.Io, "{s} \"{s}\": stat failed ({t})", .{ what, path, e }),
    }
    const mode: u32 = buf.mode;
    // S_IFMT, S_IFDIR and S_IFREG are the same numbers on Linux and macOS.
    const kind: Kind = if (linux.S.ISDIR(mode)) .directory else if (linux.S.ISREG(mode)) .regular else .other;
    return .{ .kind = kind, .size = buf.size };
}

/// `stat` + "must be a directory".
pub fn directory(func: []const u8, what: []const u8, path: [:0]const u8) Error!void {
    const info = try stat(func, what, path);
    if (info.kind != .directory) {
        return reject(func, error.NotDirectory, "{s} \"{s}\" is not a directory", .{ what, path });
    }
}

/// An open regular file, read with pread. Closed by `close`.
pub const File = struct {
    fd: i32,
    size: u64,

    pub fn open(func: []const u8, what: []const u8, path: [:0]const u8) Error!File {
        const info = try stat(func, what, path);
        if (info.kind != .regular) {
            return reject(func, error.InvalidArgument, "{s} \"{s}\" is not a regular file", .{ what, path });
        }
        const fd, const e = openRead(path);
        return if (e == .SUCCESS) .{ .fd = fd, .size = info.size } else switch (e) {
            .NOENT => reject(func, error.NotFound, "{s} \"{s}\" does not exist", .{ what, path }),
            .ACCES, .PERM => reject(func, error.PermissionDenied, "{s} \"{s}\": permission denied", .{ what, path }),
            .MFILE, .NFILE => reject(func, error.TryAgain, "{s} \"{s}\": out of file descriptors", .{ what, path }),
            else => reject(func, error.Io, "{s} \"{s}\": open failed ({t})", .{ what, path, e }),
        };
    }

    pub fn close(self: *File) void {
        assert(self.fd >= 0); // tidy: open files only
        fd_calls.close(self.fd);
        self.fd = -1;
    }

    /// Fills `buf` from `offset`; false when the file ends first (or cannot be read).
    pub fn readExact(self: File, buf: []u8, offset: u64) bool {
        if (offset > self.size or buf.len > self.size - offset) return false;
        var done: usize = 0;
        var attempts: u32 = 0;
        while (done < buf.len and attempts < 64) : (attempts += 1) {
            const rc, const e = if (is_macos) macResult(std.c.pread(self.fd, buf[done..].ptr, buf.len - done, @intCast(offset + done))) else rc: {
                const r = sys.pread(self.fd, buf[done..], offset + done);
                break :rc .{ r catch 0, sys.resultErrno(r) };
            };
            switch (e) {
                .SUCCESS => {
                    if (rc == 0) return false;
                    done += rc;
                },
                .INTR, .AGAIN => continue,
                else => return false,
            }
        }
        return done == buf.len;
    }
};

/// The whole small file (e.g. a /sys parameter) into `buf`; null if it cannot be read.
pub fn readSmall(path: [:0]const u8, buf: []u8) ?[]const u8 {
    const fd, const open_e = openRead(path);
    if (open_e != .SUCCESS) return null;
    defer fd_calls.close(fd);
    const n, const e = if (is_macos) macResult(std.c.read(fd, buf.ptr, buf.len)) else rc: {
        const r = sys.read(fd, buf);
        break :rc .{ r catch 0, sys.resultErrno(r) };
    };
    if (e != .SUCCESS) return null;
    return buf[0..n];
}

// ---- the few host calls above: the syscall layer on Linux, libc on macOS -------------------
const is_macos = @import("builtin").os.tag == .macos;
/// The host's errno enum (Linux's or Darwin's: the names used here exist in both).
const E = if (is_macos) std.c.E else linux.E;

/// The fd (read-only, close-on-exec) and SUCCESS, or -1 and why.
fn openRead(path: [:0]const u8) struct { i32, E } {
    if (is_macos) {
        const fd = std.c.open(path.ptr, .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
        return if (fd >= 0) .{ fd, .SUCCESS } else .{ -1, macErrno(fd) };
    }
    const fd = sys.open(path.ptr, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }) catch |err| return .{ -1, sys.errnoOf(err) };
    return .{ fd, .SUCCESS };
}

/// libc's -1 + errno as the errno (SUCCESS for any other value).
fn macErrno(rc: c_int) E {
    return if (rc == -1) std.c.errno(rc) else .SUCCESS;
}

fn macResult(n: isize) struct { usize, E } {
    return if (n < 0) .{ 0, std.c.errno(n) } else .{ @intCast(n), .SUCCESS };
}

test "stat tells directories, files and missing paths apart" {
    const log = @import("../log.zig");
    try log.init(log.target_default, @backingInt(log.Level.off), 2, log.option_no_env);
    defer log.init(log.target_default, @backingInt(log.Level.err), 2, log.option_no_env) catch unreachable;
    try std.testing.expectEqual(Kind.directory, (try stat("t", "dir", "/")).kind);
    try std.testing.expectEqual(Kind.regular, (try stat("t", "file", "/proc/self/status")).kind);
    try std.testing.expectError(error.NotFound, stat("t", "x", "/nonexistent/zkrun"));
    try std.testing.expectError(error.NotDirectory, directory("t", "x", "/proc/self/status"));
    var f = try File.open("t", "f", "/proc/self/exe");
    defer f.close();
    var magic: [4]u8 = undefined;
    try std.testing.expect(f.readExact(&magic, 0));
    try std.testing.expectEqualStrings("\x7fELF", &magic);
}
