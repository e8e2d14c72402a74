//! The macOS host calls the HVF Machine makes (through libSystem, never raw syscalls): guest
//! RAM and read-only file mappings, the console output file, a bounded wait for the VM's end.
//! (The serial port's output goes through EventLoop's kqueue backend.) Compiled for macOS
//! only; never run (docs/HVF.md).
const std = @import("std");

const log = std.log.scoped(.hvf);

pub const page = std.heap.page_size_min;

pub const OpenError = error{ KernelNotFound, KernelInvalid, OutOfMemory };

/// A file mapped read-only and private (a RAW kernel, an initramfs).
pub const Mapped = struct {
    bytes: []align(page) const u8,

    pub fn open(path: []const u8) OpenError!Mapped {
        var z: [std.fs.max_path_bytes + 1]u8 = undefined;
        if (path.len > std.fs.max_path_bytes) return error.KernelNotFound;
        @memcpy(z[0..path.len], path);
        z[path.len] = 0;
        const fd = std.c.open(@ptrCast(&z), .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
        if (fd < 0) {
            log.warn("cannot open {s}: {t}", .{ path, std.c.errno(fd) });
            return error.KernelNotFound;
        }
        defer _ = std.c.close(fd);
        var st: std.c.Stat = undefined;
        if (std.c.fstat(fd, &st) != 0 or st.size <= 0 or st.size > 1 << 36) {
            log.warn("{s}: not a usable file", .{path});
            return error.KernelInvalid;
        }
        const len: usize = @intCast(st.size);
        const p = std.c.mmap(null, len, .{ .READ = true }, .{ .TYPE = .PRIVATE }, fd, 0);
        if (p == std.c.MAP_FAILED) return error.OutOfMemory;
        const base: [*]align(page) const u8 = @ptrCast(@alignCast(p));
        return .{ .bytes = base[0..len] };
    }

    pub fn unmap(self: Mapped) void {
        _ = std.c.munmap(@constCast(self.bytes.ptr), self.bytes.len);
    }
};

/// Anonymous zeroed memory, reserved lazily (guest RAM).
pub fn mapAnonymous(len: usize) ?[]align(page) u8 {
    const p = std.c.mmap(null, len, .{ .READ = true, .WRITE = true }, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
    if (p == std.c.MAP_FAILED) return null;
    const base: [*]align(page) u8 = @ptrCast(@alignCast(p));
    return base[0..len];
}

pub fn unmap(m: []align(page) u8) void {
    _ = std.c.munmap(m.ptr, m.len);
}

/// krun_set_console_output's file, appended to.
pub fn openOutput(path: []const u8) ?i32 {
    var z: [std.fs.max_path_bytes + 1]u8 = undefined;
    if (path.len > std.fs.max_path_bytes) return null;
    @memcpy(z[0..path.len], path);
    z[path.len] = 0;
    const fd = std.c.open(@ptrCast(&z), .{ .ACCMODE = .WRONLY, .CREAT = true, .APPEND = true, .CLOEXEC = true }, @as(std.c.mode_t, 0o644));
    if (fd < 0) {
        log.warn("cannot open console output {s}: {t}", .{ path, std.c.errno(fd) });
        return null;
    }
    return fd;
}

pub fn close(fd: i32) void {
    _ = std.c.close(fd);
}

/// Waits up to `timeout_ms` for `flag` (the vCPUs' stop flag), in 1 ms steps; true once set.
pub fn waitFlag(flag: *const std.atomic.Value(bool), timeout_ms: i32) bool {
    var left = timeout_ms;
    while (!flag.load(.acquire)) : (left -= 1) {
        if (left <= 0) return false;
        var ts: std.c.timespec = .{ .sec = 0, .nsec = 1_000_000 };
        _ = std.c.nanosleep(&ts, null);
    }
    return true;
}
