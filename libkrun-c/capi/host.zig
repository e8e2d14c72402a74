//! Host file checks the setters make at call time (does a root directory or kernel exist, what
//! is it), with raw syscalls so that no std.Io instance is needed inside a C library. Each
//! rejection names the path and the reason on the log.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const errors = @import("errors.zig");
const Error = errors.Error;
const reject = errors.reject;

pub const Kind = enum { directory, regular, other };

pub const Info = struct { kind: Kind, size: u64 };

/// statx(path), following symlinks. Missing → NotFound; unreadable → PermissionDenied.
pub fn stat(func: []const u8, what: []const u8, path: [:0]const u8) Error!Info {
    var buf: linux.Statx = undefined;
    const rc = linux.statx(linux.AT.FDCWD, path.ptr, 0, .{ .TYPE = true, .SIZE = true }, &buf);
    switch (linux.errno(rc)) {
        .SUCCESS => {},
        .NOENT => return reject(func, error.NotFound, "{s} \"{s}\" does not exist", .{ what, path }),
        .NOTDIR => return reject(func, error.NotFound, "{s} \"{s}\": a parent is not a directory", .{ what, path }),
        .ACCES, .PERM => return reject(func, error.PermissionDenied, "{s} \"{s}\": permission denied", .{ what, path }),
        .NAMETOOLONG, .LOOP => return reject(func, error.InvalidArgument, "{s} \"{s}\" cannot be resolved", .{ what, path }),
        else => |e| return reject(func, error.Io, "{s} \"{s}\": statx failed ({t})", .{ what, path, e }),
    }
    const mode: u32 = buf.mode;
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
        const rc = linux.open(path.ptr, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0);
        return switch (linux.errno(rc)) {
            .SUCCESS => .{ .fd = @intCast(rc), .size = info.size },
            .NOENT => reject(func, error.NotFound, "{s} \"{s}\" does not exist", .{ what, path }),
            .ACCES, .PERM => reject(func, error.PermissionDenied, "{s} \"{s}\": permission denied", .{ what, path }),
            .MFILE, .NFILE => reject(func, error.TryAgain, "{s} \"{s}\": out of file descriptors", .{ what, path }),
            else => |e| reject(func, error.Io, "{s} \"{s}\": open failed ({t})", .{ what, path, e }),
        };
    }

    pub fn close(self: *File) void {
        assert(self.fd >= 0); // tidy: open files only
        _ = linux.close(self.fd);
        self.fd = -1;
    }

    /// Fills `buf` from `offset`; false when the file ends first (or cannot be read).
    pub fn readExact(self: File, buf: []u8, offset: u64) bool {
        if (offset > self.size or buf.len > self.size - offset) return false;
        var done: usize = 0;
        var attempts: u32 = 0;
        while (done < buf.len and attempts < 64) : (attempts += 1) {
            const rc = linux.pread(self.fd, buf[done..].ptr, buf.len - done, @intCast(offset + done));
            switch (linux.errno(rc)) {
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
    const rc = linux.open(path.ptr, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0);
    if (linux.errno(rc) != .SUCCESS) return null;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const n = linux.read(fd, buf.ptr, buf.len);
    if (linux.errno(n) != .SUCCESS) return null;
    return buf[0..n];
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
