//! The guest init (`/init.krun`), PID 1 of every zkrun guest: a static Zig binary without libc,
//! embedded in libkrun.so and served from memory by the virtio-fs server. Boot sequence
//! (libkrun.md §3.3): mount /dev, /proc, /sys, cgroup2, /dev/pts, /dev/shm; make `/` shared;
//! take the console as controlling tty; `lo` up; hostname; with TSI, dummy0 and /etc files (net.zig); with KRUN_DHCP=1, eth0 by DHCP (dhcp.zig); stdio onto the krun-* virtio-console
//! ports; read the exec config (plan.zig); extra virtio-fs mounts (KRUN_MOUNTS), rlimits and
//! workdir; fork the workload (as KRUN_USER's uid:gid if given), reap every child until it exits, and hand its status to the host (exit code, or 128+signal) through the
//! virtio-fs ioctl; then sync and reboot, which ends the VM.
//! Status codes of our own: 125 setup failed, 126 the program cannot run, 127 not found.
const std = @import("std");
const linux = std.os.linux;
const assert = std.debug.assert;
const protocol = @import("init_protocol");
const plan_mod = @import("plan.zig");
const sys = @import("sys.zig");
const net = @import("net.zig");
const dhcp = @import("dhcp.zig");

pub const panic = std.debug.FullPanic(initPanic);
/// No segfault handler: it would pull in the DWARF stack-trace machinery (~180 KB) for a
/// binary that has no debug info to show anyway.
pub const std_options: std.Options = .{ .enable_segfault_handler = false, .signal_stack_size = null };

const status_setup_failed = 125;

/// Everything init allocates (config bytes, decoded strings, exec arrays) comes from here; it
/// lives in .bss, so only the pages touched cost guest memory. Bounded by protocol's limits.
var heap_buf: [24 * 1024 * 1024]u8 = @splat(0);

pub fn main(init: std.process.Init.Minimal) noreturn {
    var fba: std.heap.FixedBufferAllocator = .init(&heap_buf);
    const arena = fba.allocator();
    mountFilesystems();
    ensureConsole();
    mountBlockRoot(init.environ.block.view().slice);
    // As libkrun: mount events propagate (containers in the guest expect a shared `/`).
    sys.mount("none", "/", null, linux.MS.REC | linux.MS.SHARED) catch {};
    sys.setsid() catch {};
    sys.ioctl(0, linux.T.IOCSCTTY, 1) catch {};
    loopbackUp();
    // From here on init's own messages go where the workload's stderr goes (the krun-stderr
    // port when there is one): the caller then sees why a setup step failed, and the workload
    // inherits the redirected stdio.
    sys.redirectStdio() catch finish(status_setup_failed);

    const plan = resolvePlan(arena, init) catch |err| {
        sys.say("exec config: {t}", .{err});
        finish(status_setup_failed);
    };
    applyHostname(plan.hostname);
    // After the hostname (the generated /etc/hosts names it).
    net.setup();
    if (dhcp.wanted(init.environ.block.view().slice)) dhcp.run();
    mountShares(arena, plan.mounts) catch finish(status_setup_failed);
    applyRlimits(plan.rlimits) catch finish(status_setup_failed);
    if (plan.workdir) |dir| changeDir(arena, dir) catch finish(status_setup_failed);
    const exec = ExecArgs.build(arena, plan) catch |err| {
        sys.say("exec arrays: {t}", .{err});
        finish(status_setup_failed);
    };
    if (plan.init_pid1) finish(exec.run());
    finish(runChild(exec));
}

fn resolvePlan(arena: std.mem.Allocator, init: std.process.Init.Minimal) plan_mod.Error!plan_mod.Plan {
    const argv = init.args.vector;
    const envp = init.environ.block.view().slice;
    if (argv.len > protocol.args_max or envp.len > protocol.env_max) return error.TooLarge;
    const args = try arena.alloc([]const u8, if (argv.len > 0) argv.len - 1 else 0);
    for (args, 1..) |*a, i| a.* = std.mem.span(argv[i]);
    const env = try arena.alloc([]const u8, envp.len);
    for (env, envp) |*e, p| e.* = std.mem.span(p);
    return plan_mod.resolve(arena, args, env, GuestFiles{});
}

/// Config documents from the guest's filesystem.
const GuestFiles = struct {
    pub fn read(_: GuestFiles, arena: std.mem.Allocator, path: []const u8) plan_mod.Error!?[]const u8 {
        const path_z = try arena.dupeSentinel(u8, path, 0);
        const buf = try arena.alloc(u8, protocol.config_size_max + 1);
        // zkrun's own config file lives on the virtio-fs root, which a block root covers.
        const rel = std.mem.trimStart(u8, path, "/");
        const on_boot_root = sys.boot_root_fd >= 0 and std.mem.eql(u8, rel, protocol.config_overlay_path);
        const got = if (on_boot_root) sys.readFileAt(sys.boot_root_fd, path_z[path.len - rel.len ..].ptr, buf) else sys.readFile(path_z, buf);
        const bytes = got catch |err| switch (err) {
            error.TooLarge => return error.TooLarge,
            error.Unreadable => return error.ConfigUnreadable,
        };
        return bytes;
    }
};

/// Best effort like libkrun where the kernel may lack a filesystem (cgroup2); /dev, /proc and
/// /sys failing are reported but not fatal, so the workload still gets its chance to run.
fn mountFilesystems() void {
    const nodev_noexec_nosuid = linux.MS.NODEV | linux.MS.NOEXEC | linux.MS.NOSUID | linux.MS.RELATIME;
    const mounts = [_]struct { [*:0]const u8, [*:0]const u8, u32, bool }{
        .{ "devtmpfs", "/dev", linux.MS.RELATIME, true },
        .{ "proc", "/proc", nodev_noexec_nosuid, true },
        .{ "sysfs", "/sys", nodev_noexec_nosuid, true },
        .{ "cgroup2", "/sys/fs/cgroup", nodev_noexec_nosuid, false },
        .{ "devpts", "/dev/pts", linux.MS.NOEXEC | linux.MS.NOSUID | linux.MS.RELATIME, true },
        .{ "tmpfs", "/dev/shm", linux.MS.NOEXEC | linux.MS.NOSUID | linux.MS.RELATIME, true },
    };
    for (mounts) |m| {
        const fstype, const target, const flags, const required = m;
        sys.mkdir(target) catch {};
        // EBUSY: already mounted (the kernel's devtmpfs automount, or a second boot stage).
        sys.mount(fstype, target, fstype, flags) catch |e|
            if (e != error.BUSY and required) sys.say("mount {s}: {t}", .{ target, e });
    }
    sys.symlink("/proc/self/fd", "/dev/fd") catch {};
    // For nested virtualization inside the guest (best effort, as libkrun).
    sys.chmod("/dev/kvm", 0o666) catch {};
}

/// krun_set_root_disk_remount: mounts KRUN_BLOCK_ROOT_DEVICE (type KRUN_BLOCK_ROOT_FSTYPE, else
/// each block filesystem the kernel knows; data KRUN_BLOCK_ROOT_OPTIONS) on /newroot, moves it
/// onto `/`, chroots into it and mounts /dev, /proc, /sys there again, as libkrun's init. The
/// virtio-fs root stays open underneath for the exit-code ioctl.
fn mountBlockRoot(envp: []const [*:0]const u8) void {
    const device = envValue(envp, "KRUN_BLOCK_ROOT_DEVICE") orelse return;
    const fstype = envValue(envp, "KRUN_BLOCK_ROOT_FSTYPE");
    const options = envValue(envp, "KRUN_BLOCK_ROOT_OPTIONS");
    if (sys.open("/", .{ .ACCMODE = .RDONLY, .DIRECTORY = true }, 0)) |fd| {
        sys.boot_root_fd = fd;
    } else |_| {}
    sys.mkdir("/newroot") catch {};
    (if (fstype) |f| mountData(device, f, options) else mountAnyType(device, options)) catch |e| {
        sys.say("block root {s}: mount: {t}", .{ device, e });
        finish(status_setup_failed);
    };
    // Each step only after the one before it succeeded.
    sys.chdir("/newroot") catch |e| blockRootFailed(device, "chdir", e);
    sys.mount(".", "/", null, linux.MS.MOVE) catch |e| blockRootFailed(device, "move", e);
    sys.chroot(".") catch |e| blockRootFailed(device, "chroot", e);
    sys.chdir("/") catch |e| blockRootFailed(device, "chdir /", e);
    mountFilesystems();
}

fn blockRootFailed(device: [*:0]const u8, step: []const u8, err: sys.Error) noreturn {
    sys.say("block root {s}: {s}: {t}", .{ device, step, err });
    finish(status_setup_failed);
}

fn envValue(envp: []const [*:0]const u8, comptime key: []const u8) ?[*:0]const u8 {
    for (envp) |p| {
        const entry = std.mem.span(p);
        if (entry.len > key.len and std.mem.startsWith(u8, entry, key) and entry[key.len] == '=') return p + key.len + 1;
    }
    return null;
}

/// A read-only disk (VIRTIO_BLK_F_RO) refuses a writable mount (EACCES/EROFS): mounted
/// read-only then, as mount(8) does.
fn mountData(device: [*:0]const u8, fstype: [*:0]const u8, options: ?[*:0]const u8) sys.Error!void {
    sys.mountData(device, "/newroot", fstype, 0, options) catch |e| switch (e) {
        error.ACCES, error.ROFS => try sys.mountData(device, "/newroot", fstype, linux.MS.RDONLY, options),
        else => return e,
    };
}

/// No type given: each non-"nodev" filesystem of /proc/filesystems in turn (libkrun's way).
fn mountAnyType(device: [*:0]const u8, options: ?[*:0]const u8) sys.Error!void {
    var buf: [4096]u8 = undefined;
    const list = (sys.readFile("/proc/filesystems", &buf) catch return error.NODEV) orelse return error.NODEV;
    var last: sys.Error = error.NODEV;
    var lines = std.mem.tokenizeScalar(u8, list, '\n');
    while (lines.next()) |line| {
        if (std.mem.startsWith(u8, line, "nodev")) continue;
        var name: [64:0]u8 = @splat(0);
        const trimmed = std.mem.trim(u8, line, " \t");
        if (trimmed.len == 0 or trimmed.len >= name.len) continue;
        @memcpy(name[0..trimmed.len], trimmed);
        if (mountData(device, &name, options)) |_| return else |e| last = e;
    }
    return last;
}

/// The kernel opens /dev/console as fds 0-2 only if the root it booted from had one.
fn ensureConsole() void {
    if (sys.fdOpen(0) and sys.fdOpen(1) and sys.fdOpen(2)) return;
    const fd = sys.open("/dev/console", .{ .ACCMODE = .RDWR, .NOCTTY = true }, 0) catch return;
    for ([_]i32{ 0, 1, 2 }) |target| {
        if (!sys.fdOpen(target)) sys.dup2(fd, target) catch {};
    }
    if (fd > 2) sys.close(fd);
}

fn loopbackUp() void {
    const fd = sys.socket(linux.AF.INET, linux.SOCK.DGRAM | linux.SOCK.CLOEXEC, 0) catch return;
    defer sys.close(fd);
    var req = std.mem.zeroes(linux.ifreq);
    @memcpy(req.ifrn.name[0..2], "lo");
    req.ifru.flags = .{ .UP = true, .LOOPBACK = true, .RUNNING = true };
    sys.ioctl(fd, linux.SIOCSIFFLAGS, @intFromPtr(&req)) catch |e| sys.say("lo up: {t}", .{e});
}

fn applyHostname(name: []const u8) void {
    sys.sethostname(name) catch |e| sys.say("sethostname: {t}", .{e});
}

fn applyRlimits(rlimits: []const protocol.Rlimit) error{Rlimit}!void {
    for (rlimits) |r| {
        assert(r.resource < protocol.rlimits_max);
        sys.setrlimit(r.resource, .{ .cur = r.cur, .max = r.max }) catch |e| {
            sys.say("rlimit {d}={d}:{d}: {t}", .{ r.resource, r.cur, r.max, e });
            return error.Rlimit;
        };
    }
}

/// The extra virtio-fs shares (KRUN_MOUNTS): each guest path made (with its parents), then
/// mounted; read-only ones with MS_RDONLY (the host side refuses writes to them anyway).
fn mountShares(arena: std.mem.Allocator, mounts: []const protocol.Mount) error{Mount}!void {
    for (mounts) |m| {
        const tag_z = arena.dupeSentinel(u8, m.tag, 0) catch return error.Mount;
        const path_z = arena.dupeSentinel(u8, m.path, 0) catch return error.Mount;
        // mkdir -p: every prefix ending before a '/', then the path itself.
        for (m.path, 0..) |c, i| {
            if (c != '/' or i == 0) continue;
            path_z[i] = 0;
            sys.mkdir(path_z) catch {};
            path_z[i] = '/';
        }
        sys.mkdir(path_z) catch |e| {
            sys.say("mount {s}: mkdir {s}: {t}", .{ m.tag, m.path, e });
            return error.Mount;
        };
        const flags: u32 = if (m.read_only) linux.MS.RDONLY else 0;
        sys.mount(tag_z, path_z, "virtiofs", flags) catch |e| {
            sys.say("mount {s} on {s}: {t}", .{ m.tag, m.path, e });
            return error.Mount;
        };
    }
}

fn changeDir(arena: std.mem.Allocator, dir: []const u8) error{Workdir}!void {
    const dir_z = arena.dupeSentinel(u8, dir, 0) catch return error.Workdir;
    sys.chdir(dir_z) catch |e| {
        sys.say("workdir {s}: {t}", .{ dir, e });
        return error.Workdir;
    };
}

/// The plan as execve wants it: NUL-terminated strings in NULL-terminated arrays.
const ExecArgs = struct {
    argv: [:null]?[*:0]const u8,
    envp: [:null]?[*:0]const u8,
    path_env: ?[]const u8,
    user: ?protocol.User,

    fn build(arena: std.mem.Allocator, plan: plan_mod.Plan) error{OutOfMemory}!ExecArgs {
        assert(plan.argv.len >= 1);
        var path_env: ?[]const u8 = null;
        for (plan.env) |entry| {
            if (std.mem.startsWith(u8, entry, "PATH=")) path_env = entry["PATH=".len..];
        }
        return .{
            .argv = try cStrings(arena, plan.argv),
            .envp = try cStrings(arena, plan.env),
            .path_env = path_env,
            .user = plan.user,
        };
    }

    fn cStrings(arena: std.mem.Allocator, list: []const []const u8) error{OutOfMemory}![:null]?[*:0]const u8 {
        const out = try arena.allocSentinel(?[*:0]const u8, list.len, null);
        for (list, out) |s, *p| p.* = try arena.dupeSentinel(u8, s, 0);
        return out;
    }

    /// Drops to the plan's user (KRUN_USER) first, then execvp; returns only on failure, with
    /// the status to report.
    fn run(exec: ExecArgs) u8 {
        if (exec.user) |user| {
            // Groups first: after setuid the process may no longer change them. Each step only
            // after the one before it succeeded.
            sys.setgroups(&.{}) catch |e| return userFailed(user, "setgroups", e);
            sys.setgid(user.gid) catch |e| return userFailed(user, "setgid", e);
            sys.setuid(user.uid) catch |e| return userFailed(user, "setuid", e);
        }
        const e = sys.execvp(exec.argv[0].?, exec.argv.ptr, exec.envp.ptr, exec.path_env) catch |err| err;
        sys.say("exec {s}: {t}", .{ exec.argv[0].?, e });
        return sys.execFailureStatus(e);
    }

    fn userFailed(user: protocol.User, step: []const u8, err: sys.Error) u8 {
        sys.say("user {d}:{d}: {s}: {t}", .{ user.uid, user.gid, step, err });
        return status_setup_failed;
    }
};

/// Forks the workload and, as PID 1, reaps every child (orphans included) until it exits.
/// With the host's `krun-signal` port, it also relays each signal number read there to the
/// workload (SIGCHLD arrives through a signalfd so one poll waits for both).
fn runChild(exec: ExecArgs) u8 {
    const chld = sys.sigset(&.{linux.SIG.CHLD});
    var saved = sys.sigset(&.{});
    const relay = sys.signal_port_fd >= 0;
    if (relay) sys.sigprocmask(linux.SIG.BLOCK, &chld, &saved) catch {};
    const child = sys.fork() catch |e| {
        sys.say("fork: {t}", .{e});
        return status_setup_failed;
    };
    if (child == 0) {
        if (relay) sys.sigprocmask(linux.SIG.SETMASK, &saved, null) catch {};
        sys.exit(exec.run());
    }
    if (relay) {
        if (sys.signalfd(&chld, linux.SFD.CLOEXEC | linux.SFD.NONBLOCK)) |sfd| {
            return relayUntilExit(child, sfd, sys.signal_port_fd);
        } else |e| sys.say("signalfd: {t}; signals are not relayed", .{e});
        sys.sigprocmask(linux.SIG.SETMASK, &saved, null) catch {};
    }
    return reapUntilExit(child);
}

/// Blocks in wait4 until `child` exits, reaping every other child on the way.
fn reapUntilExit(child: linux.pid_t) u8 {
    while (true) {
        const w = sys.waitAny(0) catch |e| switch (e) {
            error.INTR => continue,
            else => {
                sys.say("wait: {t}", .{e});
                return status_setup_failed;
            },
        };
        if (w.pid == child) return statusCode(w.status);
    }
}

/// Polls SIGCHLD (`sfd`) and the signal port until `child` exits; each port byte that is a
/// signal number (1..64) is sent to `child`. A port at EOF or hung up is dropped from the poll.
fn relayUntilExit(child: linux.pid_t, sfd: i32, port_fd: i32) u8 {
    var fds = [2]linux.pollfd{
        .{ .fd = sfd, .events = linux.POLL.IN, .revents = 0 },
        .{ .fd = port_fd, .events = linux.POLL.IN, .revents = 0 },
    };
    while (true) {
        // Reap first: the workload may have exited before the signalfd existed.
        while (true) {
            const w = sys.waitAny(linux.W.NOHANG) catch |e| switch (e) {
                error.INTR => continue,
                else => {
                    sys.say("wait: {t}", .{e});
                    return status_setup_failed;
                },
            };
            if (w.pid == 0) break;
            if (w.pid == child) return statusCode(w.status);
        }
        _ = sys.poll(&fds, -1) catch continue; // EINTR
        if (fds[0].revents != 0) {
            var info: [8]linux.signalfd_siginfo = undefined;
            _ = sys.read(sfd, std.mem.asBytes(&info)) catch 0;
        }
        if (fds[1].revents != 0) relaySignals(child, &fds[1]);
    }
}

fn relaySignals(child: linux.pid_t, port: *linux.pollfd) void {
    var buf: [16]u8 = undefined;
    const n = sys.read(port.fd, &buf) catch |e| switch (e) {
        error.AGAIN, error.INTR => return,
        else => {
            port.fd = -1;
            return;
        },
    };
    if (n == 0) {
        port.fd = -1; // EOF: the host closed the port
        return;
    }
    for (buf[0..n]) |b| {
        if (b == 0 or b > 64) continue; // not a signal number
        sys.kill(child, @fromBackingInt(b)) catch {};
    }
}

/// The shell's convention: the exit code, or 128 + the signal that killed the workload.
fn statusCode(status: u32) u8 {
    if (linux.W.IFEXITED(status)) return linux.W.EXITSTATUS(status);
    if (linux.W.IFSIGNALED(status)) return 128 +% @as(u8, @intCast(@backingInt(linux.W.TERMSIG(status))));
    return status_setup_failed;
}

fn finish(status: u8) noreturn {
    sys.reportExitCode(status);
    // A block root is left clean when it can be (nothing holds a file open for writing):
    // remounting it read-only writes the journal out and clears ext4's needs_recovery, so the
    // image mounts again even from a read-only disk. Best effort; sync follows anyway.
    if (sys.boot_root_fd >= 0) {
        sys.sync();
        sys.mount(null, "/", null, linux.MS.REMOUNT | linux.MS.RDONLY) catch {};
    }
    sys.rebootNow();
}

fn initPanic(msg: []const u8, _: ?usize) noreturn {
    sys.say("panic: {s}", .{msg});
    if (sys.getpid() != 1) sys.exit(status_setup_failed);
    finish(status_setup_failed);
}

test statusCode {
    try std.testing.expectEqual(@as(u8, 7), statusCode(7 << 8));
    try std.testing.expectEqual(@as(u8, 0), statusCode(0));
    try std.testing.expectEqual(@as(u8, 137), statusCode(9));
    try std.testing.expectEqual(@as(u8, 143), statusCode(15 | 0x80)); // core dumped bit
}
