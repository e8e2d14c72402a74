//! The guest init's system calls, as small checked wrappers over std.os.linux (no libc): the
//! thin ones its steps (main.zig, net.zig, dhcp.zig) call (files, mounts, sockets and ioctls,
//! processes and signals), then console messages, file reads, the virtio-console stdio ports,
//! PATH lookup + execve, and the exit-code report to the host (libkrun.md §3.4). No other init
//! file calls std.os.linux. The convention is the one of all three syscall layers
//! (libkrun-c/sys/errno.zig, CONTRIBUTING.md "System calls"): a raw call's result goes through
//! `check`, so a wrapper returns `Error!T` with one error per errno, and the init's steps catch
//! it, say it and go on or stop. Console messages, close and sync are best effort and return
//! nothing.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const errno = @import("sys_errno");

pub const Error = errno.Error;

/// A raw call's result, or the error of its errno.
pub const check = errno.check;

// Files and directories.

pub fn open(path: [*:0]const u8, flags: linux.O, mode: linux.mode_t) Error!i32 {
    return @intCast(try check(linux.open(path, flags, mode)));
}

pub fn openAt(dir: i32, path: [*:0]const u8, flags: linux.O, mode: linux.mode_t) Error!i32 {
    return @intCast(try check(linux.openat(dir, path, flags, mode)));
}

/// The result is dropped: the fd is gone either way.
pub fn close(fd: i32) void {
    _ = linux.close(fd);
}

pub fn read(fd: i32, buf: []u8) Error!usize {
    return check(linux.read(fd, buf.ptr, buf.len));
}

pub fn dup2(old: i32, new: i32) Error!void {
    _ = try check(linux.dup2(old, new));
}

pub fn ioctl(fd: i32, request: u32, arg: usize) Error!void {
    _ = try check(linux.ioctl(fd, request, arg));
}

pub fn chdir(path: [*:0]const u8) Error!void {
    _ = try check(linux.chdir(path));
}

pub fn chroot(path: [*:0]const u8) Error!void {
    _ = try check(linux.chroot(path));
}

pub fn symlink(target: [*:0]const u8, link: [*:0]const u8) Error!void {
    _ = try check(linux.symlink(target, link));
}

pub fn chmod(path: [*:0]const u8, mode: linux.mode_t) Error!void {
    _ = try check(linux.chmod(path, mode));
}

/// The `mask` fields of `path` (the symlink itself with AT_SYMLINK_NOFOLLOW in `flags`).
pub fn statx(path: [*:0]const u8, flags: u32, mask: linux.STATX) Error!linux.Statx {
    var stx: linux.Statx = undefined;
    _ = try check(linux.statx(linux.AT.FDCWD, path, flags, mask, &stx));
    return stx;
}

/// mkdir 0755; an existing path is fine.
pub fn mkdir(path: [*:0]const u8) Error!void {
    _ = check(linux.mkdir(path, 0o755)) catch |err| switch (err) {
        error.EXIST => {},
        else => return err,
    };
}

pub fn mount(source: ?[*:0]const u8, target: [*:0]const u8, fstype: ?[*:0]const u8, flags: u32) Error!void {
    return mountData(source, target, fstype, flags, null);
}

/// mount with the filesystem's option string `data` (overlay's dirs, a block root's options).
pub fn mountData(source: ?[*:0]const u8, target: [*:0]const u8, fstype: ?[*:0]const u8, flags: u32, data: ?[*:0]const u8) Error!void {
    _ = try check(linux.mount(source, target, fstype, flags, if (data) |d| @intFromPtr(d) else 0));
}

/// sync(2) never fails.
pub fn sync() void {
    linux.sync();
}

// Sockets.

pub fn socket(domain: u32, sock_type: u32, protocol: u32) Error!i32 {
    return @intCast(try check(linux.socket(domain, sock_type, protocol)));
}

pub fn setsockopt(fd: i32, level: i32, name: u32, value: []const u8) Error!void {
    _ = try check(linux.setsockopt(fd, level, name, value.ptr, @intCast(value.len)));
}

pub fn bind(fd: i32, addr: *const linux.sockaddr, len: linux.socklen_t) Error!void {
    _ = try check(linux.bind(fd, addr, len));
}

pub fn sendto(fd: i32, bytes: []const u8, addr: *const linux.sockaddr, len: linux.socklen_t) Error!usize {
    return check(linux.sendto(fd, bytes.ptr, bytes.len, 0, addr, len));
}

/// recvfrom without the sender's address.
pub fn recv(fd: i32, buf: []u8, flags: u32) Error!usize {
    return check(linux.recvfrom(fd, buf.ptr, buf.len, flags, null, null));
}

/// The number of `fds` with events.
pub fn poll(fds: []linux.pollfd, timeout_ms: i32) Error!usize {
    return check(linux.poll(fds.ptr, fds.len, timeout_ms));
}

// Processes, identity and signals.

pub fn fork() Error!linux.pid_t {
    return @intCast(try check(linux.fork()));
}

pub fn exit(status: u8) noreturn {
    linux.exit_group(status);
}

pub fn getpid() linux.pid_t {
    return linux.getpid();
}

pub fn setsid() Error!void {
    _ = try check(linux.setsid());
}

pub fn sethostname(name: []const u8) Error!void {
    _ = try check(linux.syscall2(.sethostname, @intFromPtr(name.ptr), name.len));
}

pub fn uname(uts: *linux.utsname) Error!void {
    _ = try check(linux.uname(uts));
}

/// prlimit64 on init itself; `resource` is the RLIMIT_* number (the exec config carries numbers).
pub fn setrlimit(resource: u32, limit: linux.rlimit) Error!void {
    _ = try check(linux.syscall4(.prlimit64, 0, resource, @intFromPtr(&limit), 0));
}

pub fn setgroups(groups: []const linux.gid_t) Error!void {
    _ = try check(linux.setgroups(groups.len, groups.ptr));
}

pub fn setgid(gid: linux.gid_t) Error!void {
    _ = try check(linux.setgid(gid));
}

pub fn setuid(uid: linux.uid_t) Error!void {
    _ = try check(linux.setuid(uid));
}

pub fn getrandom(buf: []u8) Error!usize {
    return check(linux.getrandom(buf.ptr, buf.len, 0));
}

/// The set of `signals`.
pub fn sigset(signals: []const linux.SIG) linux.sigset_t {
    var set = linux.sigemptyset();
    for (signals) |sig| linux.sigaddset(&set, sig);
    return set;
}

pub fn sigprocmask(how: u32, set: *const linux.sigset_t, old: ?*linux.sigset_t) Error!void {
    _ = try check(linux.sigprocmask(how, set, old));
}

/// A new signalfd for `set`.
pub fn signalfd(set: *const linux.sigset_t, flags: u32) Error!i32 {
    return @intCast(try check(linux.signalfd(-1, set, flags)));
}

pub fn kill(pid: linux.pid_t, sig: linux.SIG) Error!void {
    _ = try check(linux.kill(pid, sig));
}

pub const Waited = struct { pid: linux.pid_t, status: u32 };

/// wait4 for any child; pid 0 when WNOHANG found none exited.
pub fn waitAny(flags: u32) Error!Waited {
    var status: u32 = 0;
    const pid = try check(linux.wait4(-1, @ptrCast(&status), flags, null));
    return .{ .pid = @intCast(pid), .status = status };
}

/// Writes all of `bytes` to `fd`, best effort (a console message must never stop init).
pub fn writeAll(fd: i32, bytes: []const u8) void {
    var done: usize = 0;
    while (done < bytes.len) {
        const n = check(linux.write(fd, bytes[done..].ptr, bytes.len - done)) catch |err| switch (err) {
            error.INTR => continue,
            else => return,
        };
        if (n == 0) return;
        done += n;
    }
}

/// `init.krun: <message>` on stderr.
pub fn say(comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const line = std.fmt.bufPrint(&buf, "init.krun: " ++ fmt ++ "\n", args) catch blk: {
        @memcpy(buf[buf.len - 4 ..], "...\n");
        break :blk buf[0..];
    };
    writeAll(2, line);
}

/// A NUL-terminated copy of `s` in `buf` (paths built at runtime).
pub fn pathZ(buf: []u8, parts: []const []const u8) error{NameTooLong}![:0]const u8 {
    var len: usize = 0;
    for (parts) |part| {
        if (len + part.len + 1 > buf.len) return error.NameTooLong;
        @memcpy(buf[len..][0..part.len], part);
        len += part.len;
    }
    buf[len] = 0;
    return buf[0..len :0];
}

/// True when `fd` is open (the kernel may have had no /dev/console to give init).
pub fn fdOpen(fd: i32) bool {
    _ = check(linux.fcntl(fd, linux.F.GETFD, 0)) catch return false;
    return true;
}

/// Open/read failures worth telling apart.
pub const FileError = error{ TooLarge, Unreadable };

/// Reads a whole file of at most `buf.len - 1` bytes; null when it does not exist.
pub fn readFile(path: [*:0]const u8, buf: []u8) FileError!?[]u8 {
    return readFileAt(linux.AT.FDCWD, path, buf);
}

/// readFile relative to directory `dir` (the boot root after a block-root move).
pub fn readFileAt(dir: i32, path: [*:0]const u8, buf: []u8) FileError!?[]u8 {
    assert(buf.len > 1);
    const fd = openAt(dir, path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }, 0) catch |err| switch (err) {
        error.NOENT, error.NOTDIR => return null,
        else => return error.Unreadable,
    };
    defer close(fd);
    var len: usize = 0;
    while (len < buf.len) {
        const n = read(fd, buf[len..]) catch |err| switch (err) {
            error.INTR => continue,
            else => return error.Unreadable,
        };
        if (n == 0) break;
        len += n;
    }
    if (len == buf.len) return error.TooLarge;
    return buf[0..len];
}

/// dup2s the virtio-console ports named `krun-stdin`/`krun-stdout`/`krun-stderr` (found through
/// /sys/class/virtio-ports/*/name) onto 0/1/2. No ports directory means no ports: the console
/// stays (libkrun exits 125 there; a guest without virtio-console is still a usable guest).
/// Unlike libkrun (which redirects in the child), PID 1 redirects itself, so its own messages
/// reach the caller's stderr too.
pub fn redirectStdio() error{PortOpenFailed}!void {
    const ports = "/sys/class/virtio-ports";
    const dir = open(ports, .{ .ACCMODE = .RDONLY, .DIRECTORY = true, .CLOEXEC = true }, 0) catch return;
    defer close(dir);
    var dents: [4096]u8 align(8) = undefined;
    while (true) {
        const n = check(linux.getdents64(dir, &dents, dents.len)) catch return;
        if (n == 0) return;
        var off: usize = 0;
        while (off < n) {
            const d: *align(1) const linux.dirent64 = @ptrCast(&dents[off]);
            const name_ptr: [*:0]const u8 = @ptrCast(&dents[off + @offsetOf(linux.dirent64, "name")]);
            off += d.reclen;
            const name = std.mem.sliceTo(name_ptr, 0);
            if (name.len == 0 or name[0] == '.') continue;
            try redirectPort(name);
        }
    }
}

/// The `krun-signal` port (the host's krun_start_enter sends signal numbers for the workload,
/// one byte each), opened by `redirectStdio` when the host offers it; -1 otherwise.
pub var signal_port_fd: i32 = -1;

fn redirectPort(dev: []const u8) error{PortOpenFailed}!void {
    var path_buf: [128]u8 = undefined;
    const name_path = pathZ(&path_buf, &.{ "/sys/class/virtio-ports/", dev, "/name" }) catch return;
    var name_buf: [64]u8 = undefined;
    const raw = (readFile(name_path, &name_buf) catch return) orelse return;
    const port = std.mem.trimEnd(u8, raw, "\n");
    const target: i32, const access: std.posix.ACCMODE = if (std.mem.eql(u8, port, "krun-stdin"))
        .{ 0, .RDONLY }
    else if (std.mem.eql(u8, port, "krun-stdout"))
        .{ 1, .WRONLY }
    else if (std.mem.eql(u8, port, "krun-stderr"))
        .{ 2, .WRONLY }
    else if (std.mem.eql(u8, port, "krun-signal")) {
        openSignalPort(dev);
        return;
    } else return;
    const dev_path = pathZ(&path_buf, &.{ "/dev/", dev }) catch return error.PortOpenFailed;
    const fd = open(dev_path, .{ .ACCMODE = access }, 0) catch |err| {
        say("cannot open {s} ({s}): {t}", .{ dev_path, port, err });
        return error.PortOpenFailed;
    };
    if (fd != target) {
        dup2(fd, target) catch {};
        close(fd);
    }
}

/// Best effort: without the port, signals to the VMM simply do not reach the workload.
fn openSignalPort(dev: []const u8) void {
    var path_buf: [128]u8 = undefined;
    const dev_path = pathZ(&path_buf, &.{ "/dev/", dev }) catch return;
    signal_port_fd = open(dev_path, .{ .ACCMODE = .RDONLY, .NONBLOCK = true, .CLOEXEC = true }, 0) catch |err|
        return say("cannot open {s} (krun-signal): {t}", .{ dev_path, err });
}

/// Most bytes of a PATH entry + "/" + name the lookup builds.
const path_max = 4096;
pub const default_path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// execvp: `file` with a `/` runs as is, otherwise each PATH directory is tried (the env's
/// PATH, else `default_path`). Returns only on failure, with the errno that matters: EACCES if
/// any candidate had it, else the last one (ENOENT when nothing was found).
pub fn execvp(
    file: [*:0]const u8,
    argv: [*:null]const ?[*:0]const u8,
    envp: [*:null]const ?[*:0]const u8,
    path_env: ?[]const u8,
) Error!noreturn {
    const name = std.mem.span(file);
    if (name.len == 0) return error.NOENT;
    if (std.mem.indexOfScalar(u8, name, '/') != null) return execve(file, argv, envp);
    var seen_eacces = false;
    var last: Error = error.NOENT;
    var dirs = std.mem.splitScalar(u8, path_env orelse default_path, ':');
    while (dirs.next()) |dir| {
        var buf: [path_max]u8 = undefined;
        const full = pathZ(&buf, &.{ if (dir.len == 0) "." else dir, "/", name }) catch continue;
        execve(full, argv, envp) catch |err| switch (err) {
            error.ACCES => seen_eacces = true,
            error.NOENT, error.NOTDIR => {},
            else => last = err,
        };
    }
    return if (seen_eacces) error.ACCES else last;
}

fn execve(path: [*:0]const u8, argv: [*:null]const ?[*:0]const u8, envp: [*:null]const ?[*:0]const u8) Error!noreturn {
    _ = try check(linux.execve(path, argv, envp));
    unreachable; // tidy: execve returns only on failure
}

/// The status code for an exec failure: 127 when nothing was found, 126 otherwise (shells' and
/// libkrun's convention).
pub fn execFailureStatus(err: Error) u8 {
    return if (err == error.NOENT or err == error.NOTDIR) 127 else 126;
}

/// virtiofs's superblock magic (statfs f_type).
pub const virtiofs_magic: u64 = 0x65735546;
/// libkrun's `_IO('v', 2)` on `/`: the FUSE server keeps `arg` as the guest's exit code.
pub const exit_code_ioctl: u32 = 0x7602;

/// Hands the workload's status to the host, when `/` is virtio-fs (libkrun.md §3.4).
/// The virtio-fs root init booted from, kept open when init moved to a block-device root
/// (krun_set_root_disk_remount): the exit code still reaches the host through it.
pub var boot_root_fd: i32 = -1;

pub fn reportExitCode(status: u8) void {
    if (boot_root_fd >= 0) {
        ioctl(boot_root_fd, exit_code_ioctl, status) catch |err|
            say("exit-code ioctl failed: {t}", .{err});
        return;
    }
    var buf: [120]u8 align(8) = @splat(0); // struct statfs is 120 bytes on x86_64
    const statfs_ok = if (check(linux.syscall2(.statfs, @intFromPtr("/"), @intFromPtr(&buf)))) |_| true else |_| false;
    const f_type = std.mem.readInt(u64, buf[0..8], .little);
    if (!statfs_ok or f_type != virtiofs_magic) {
        // No way to hand it over (block or initramfs root): the console is the only witness.
        say("exit status {d} (root is not virtio-fs: not reported to the host)", .{status});
        return;
    }
    const fd = open("/", .{ .ACCMODE = .RDONLY, .DIRECTORY = true, .CLOEXEC = true }, 0) catch return;
    defer close(fd);
    ioctl(fd, exit_code_ioctl, status) catch |err|
        say("exit-code ioctl failed: {t}", .{err});
}

/// sync + reboot: with `reboot=k` the kernel's reset is the i8042 write that ends the VM.
pub fn rebootNow() noreturn {
    sync();
    _ = linux.reboot(.MAGIC1, .MAGIC2, .RESTART, null);
    // PID 1 must not return; wait for the reset to land.
    while (true) _ = linux.pause();
}

test pathZ {
    var buf: [8]u8 = undefined;
    try std.testing.expectEqualStrings("/a/b", try pathZ(&buf, &.{ "/a", "/", "b" }));
    try std.testing.expectError(error.NameTooLong, pathZ(&buf, &.{ "/1234567", "8" }));
}

test "execvp: PATH lookup errors map to 127 (not found) and 126 (cannot run)" {
    const argv = [_:null]?[*:0]const u8{"zkrun-no-such-program"};
    const envp = [_:null]?[*:0]const u8{};
    const missing = execvp("zkrun-no-such-program", &argv, &envp, "/nonexistent:/also/not") catch |err| err;
    try std.testing.expectEqual(error.NOENT, missing);
    try std.testing.expectEqual(@as(u8, 127), execFailureStatus(missing));
    // A directory is found but cannot be executed: EACCES, 126.
    const dir = execvp("tmp", &argv, &envp, "/") catch |err| err;
    try std.testing.expectEqual(error.ACCES, dir);
    try std.testing.expectEqual(@as(u8, 126), execFailureStatus(dir));
    try std.testing.expectError(error.NOENT, execvp("/nonexistent/x", &argv, &envp, null));
}
