//! A tiny static /init for tests/native/kernelfw-qemu-boot.sh: it checks, from inside the booted
//! guest, that the kernel has what zkrun's guests need (filesystems, syscalls, namespaces,
//! seccomp filters, sockets, /dev/net/tun, /dev/kvm for the test host), prints one
//! "check <name> ok|FAIL" line each and a final marker, then reboots (with `reboot=t` and
//! QEMU's -no-reboot, QEMU exits). Raw syscalls only: no libc, no allocation.
const std = @import("std");
const linux = std.os.linux;
const readFile = @import("guest_raw").readFile;

var console: i32 = -1;
var failures: u32 = 0;

fn print(comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const s = std.fmt.bufPrint(&buf, fmt, args) catch buf[0..];
    if (console >= 0) _ = linux.write(console, s.ptr, s.len);
}

/// Records a check: `rc` is a raw syscall result; failure is a negative errno.
fn check(name: []const u8, rc: usize) void {
    const e = linux.errno(rc);
    if (e == .SUCCESS) {
        print("check {s} ok\n", .{name});
    } else {
        failures += 1;
        print("check {s} FAIL errno {t}\n", .{ name, e });
    }
}

fn checkBool(name: []const u8, ok: bool) void {
    if (ok) print("check {s} ok\n", .{name}) else {
        failures += 1;
        print("check {s} FAIL\n", .{name});
    }
}

fn closeIfFd(rc: usize) void {
    if (linux.errno(rc) == .SUCCESS) _ = linux.close(@intCast(rc));
}

fn fdCheck(name: []const u8, rc: usize) void {
    check(name, rc);
    closeIfFd(rc);
}

fn mount(src: [*:0]const u8, dir: [*:0]const u8, fstype: [*:0]const u8, data: ?[*:0]const u8) usize {
    return linux.mount(src, dir, fstype, 0, if (data) |d| @intFromPtr(d) else 0);
}

pub fn main() void {
    _ = linux.mkdir("/dev", 0o755);
    _ = mount("devtmpfs", "/dev", "devtmpfs", null);
    const c = linux.open("/dev/console", .{ .ACCMODE = .RDWR }, 0);
    if (linux.errno(c) == .SUCCESS) console = @intCast(c);
    print("zkrun kernelfw boot test init running\n", .{});

    _ = linux.mkdir("/proc", 0o555);
    _ = linux.mkdir("/sys", 0o555);
    _ = linux.mkdir("/tmp", 0o1777);
    check("mount-proc", mount("proc", "/proc", "proc", null));
    check("mount-sysfs", mount("sysfs", "/sys", "sysfs", null));
    check("mount-tmpfs", mount("tmpfs", "/tmp", "tmpfs", null));
    check("mount-cgroup2", mount("cgroup2", "/sys/fs/cgroup", "cgroup2", null));
    var cg_buf: [256]u8 = undefined;
    const controllers = readFile("/sys/fs/cgroup/cgroup.controllers", &cg_buf);
    inline for (.{ "memory", "pids", "cpuset", "cpu" }) |ctl| {
        checkBool("cgroup-" ++ ctl, std.mem.indexOf(u8, controllers, ctl) != null);
    }
    for ([_][*:0]const u8{ "/tmp/l", "/tmp/u", "/tmp/w", "/tmp/m" }) |d| _ = linux.mkdir(d, 0o755);
    check("mount-overlay-on-tmpfs", mount("overlay", "/tmp/m", "overlay", "lowerdir=/tmp/l,upperdir=/tmp/u,workdir=/tmp/w"));

    var fs_buf: [4096]u8 = undefined;
    const filesystems = readFile("/proc/filesystems", &fs_buf);
    inline for (.{ "ext4", "tmpfs", "devtmpfs", "overlay", "fuse", "virtiofs", "9p", "cgroup2" }) |fs| {
        checkBool("fs-" ++ fs, std.mem.indexOf(u8, filesystems, "\t" ++ fs ++ "\n") != null);
    }

    fdCheck("epoll_create1", linux.epoll_create1(0));
    fdCheck("eventfd", linux.eventfd(0, 0));
    var mask = std.mem.zeroes(linux.sigset_t);
    fdCheck("signalfd", linux.signalfd(-1, &mask, 0));
    fdCheck("timerfd_create", linux.syscall2(.timerfd_create, 1, 0)); // CLOCK_MONOTONIC
    fdCheck("memfd_create", linux.memfd_create("t", 0));
    fdCheck("inotify_init1", linux.inotify_init1(0));
    fdCheck("socket-unix", linux.socket(1, 1, 0)); // AF_UNIX, SOCK_STREAM
    fdCheck("socket-inet", linux.socket(2, 1, 0));
    fdCheck("socket-inet6", linux.socket(10, 1, 0));
    fdCheck("socket-vsock", linux.socket(40, 1, 0)); // AF_VSOCK
    // CONFIG_TUN (both arches): passt, slirp or a VPN inside the VM, tap tests in the test hosts.
    fdCheck("dev-net-tun", linux.open("/dev/net/tun", .{ .ACCMODE = .RDWR }, 0));
    var shm_buf: [64]u8 = undefined;
    check("futex-wake", linux.syscall3(.futex, @intFromPtr(&shm_buf), 1, 1)); // FUTEX_WAKE
    check("io_setup(aio)", blk: {
        var ctx: usize = 0;
        const rc = linux.syscall2(.io_setup, 1, @intFromPtr(&ctx));
        if (linux.errno(rc) == .SUCCESS) _ = linux.syscall1(.io_destroy, ctx);
        break :blk rc;
    });
    check("membarrier-query", linux.syscall3(.membarrier, 0, 0, 0));
    check("flock", blk: {
        const fd = linux.open("/tmp/lockfile", .{ .ACCMODE = .RDWR, .CREAT = true }, 0o600);
        if (linux.errno(fd) != .SUCCESS) break :blk fd;
        defer _ = linux.close(@intCast(fd));
        break :blk linux.syscall2(.flock, fd, 2); // LOCK_EX
    });
    // SECCOMP_GET_ACTION_AVAIL(SECCOMP_RET_ALLOW) succeeds only with SECCOMP_FILTER.
    const ret_allow: u32 = 0x7fff0000;
    check("seccomp-filter", linux.syscall3(.seccomp, 2, 0, @intFromPtr(&ret_allow)));
    // CLONE_NEWNS | NEWUTS | NEWIPC | NEWNET | NEWPID | NEWUSER | NEWCGROUP, in a child: in a
    // new user namespace this process would lose CAP_SYS_BOOT and could not reboot.
    check("unshare-namespaces", blk: {
        const pid = linux.fork();
        if (linux.errno(pid) != .SUCCESS) break :blk pid;
        if (pid == 0) {
            const rc = linux.syscall1(.unshare, 0x00020000 | 0x04000000 | 0x08000000 |
                0x40000000 | 0x20000000 | 0x10000000 | 0x02000000);
            linux.exit_group(@intCast(@backingInt(linux.errno(rc))));
        }
        var raw_status: i32 = 0;
        const w = linux.wait4(@intCast(pid), &raw_status, 0, null);
        const status: u32 = @bitCast(raw_status);
        if (linux.errno(w) != .SUCCESS) break :blk w;
        // The child's exit status is its errno (0 = success).
        const code = (status >> 8) & 0xff;
        break :blk if (status & 0x7f == 0) @as(usize, 0) -% code else @as(usize, 0) -% 4; // EINTR: killed
    });

    // The wall clock comes from the CMOS RTC (or kvm-clock): a 1970 clock breaks builds and TLS.
    var ts: linux.timespec = undefined;
    check("clock_gettime", linux.clock_gettime(.REALTIME, &ts));
    print("info realtime {d}\n", .{ts.sec});
    checkBool("wall-clock-after-2024", ts.sec > 1704067200);

    var cpuinfo_buf: [16384]u8 = undefined;
    const cpuinfo = readFile("/proc/cpuinfo", &cpuinfo_buf);
    var cpus: usize = 0;
    var it = std.mem.splitScalar(u8, cpuinfo, '\n');
    while (it.next()) |line| {
        if (std.mem.startsWith(u8, line, "processor")) cpus += 1;
    }
    print("info cpus {d}\n", .{cpus});
    // The test host runs KVM guests: with an SVM or VMX CPU, /dev/kvm must exist.
    if (std.mem.indexOf(u8, cpuinfo, " svm") != null or std.mem.indexOf(u8, cpuinfo, " vmx") != null) {
        fdCheck("dev-kvm", linux.open("/dev/kvm", .{ .ACCMODE = .RDWR }, 0));
    } else print("info no svm/vmx in the guest CPU: /dev/kvm not checked\n", .{});

    var version_buf: [256]u8 = undefined;
    print("info {s}", .{readFile("/proc/version", &version_buf)});
    if (failures == 0) print("ZKRUN-KERNELFW-BOOT-OK\n", .{}) else print("ZKRUN-KERNELFW-BOOT-FAIL {d} checks failed\n", .{failures});
    linux.sync();
    const rc = linux.reboot(.MAGIC1, .MAGIC2, .RESTART, null);
    print("reboot failed: {t}\n", .{linux.errno(rc)});
    linux.exit_group(1);
}
