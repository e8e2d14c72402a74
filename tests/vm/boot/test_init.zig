//! A tiny static /init for the VMM's boot tests (built freestanding, no libc): mounts proc,
//! sysfs and devtmpfs, prints what the guest sees — CPU count, MemTotal, virtio devices, its
//! command line — as `ZKRUN-TEST ...` lines, then reboots (with reboot=k: the i8042 reset
//! that ends the VM). Output goes to hvc0, else the console, else ttyS0, else /dev/kmsg.
const std = @import("std");
const linux = std.os.linux;
const readFile = @import("guest_raw").readFile;

var out_fd: i32 = -1;
var out_is_kmsg = false;

fn writeAll(fd: i32, s: []const u8) void {
    var done: usize = 0;
    while (done < s.len) {
        const rc = linux.write(fd, s[done..].ptr, s.len - done);
        if (linux.errno(rc) != .SUCCESS) return;
        done += rc;
    }
}

fn say(comptime fmt: []const u8, args: anytype) void {
    var buf: [1024]u8 = undefined;
    const prefix: []const u8 = if (out_is_kmsg) "<2>" else "";
    @memcpy(buf[0..prefix.len], prefix);
    const body = std.fmt.bufPrint(buf[prefix.len..], "ZKRUN-TEST " ++ fmt ++ "\n", args) catch return;
    const s = buf[0 .. prefix.len + body.len];
    if (out_fd >= 0) writeAll(out_fd, s);
}

fn openOut() void {
    for ([_][*:0]const u8{ "/dev/hvc0", "/dev/console", "/dev/ttyS0" }) |p| {
        const rc = linux.open(p, .{ .ACCMODE = .WRONLY, .NOCTTY = true }, 0);
        if (linux.errno(rc) == .SUCCESS) {
            out_fd = @intCast(rc);
            return;
        }
    }
    const rc = linux.open("/dev/kmsg", .{ .ACCMODE = .WRONLY }, 0);
    if (linux.errno(rc) == .SUCCESS) {
        out_fd = @intCast(rc);
        out_is_kmsg = true;
    }
}

fn mountFs(source: [*:0]const u8, target: [*:0]const u8, fstype: [*:0]const u8) void {
    _ = linux.mkdir(target, 0o755);
    _ = linux.mount(source, target, fstype, 0, 0);
}

fn reportCpus() void {
    var buf: [16384]u8 = undefined;
    const info = readFile("/proc/cpuinfo", &buf);
    var n: u32 = 0;
    var it = std.mem.splitScalar(u8, info, '\n');
    while (it.next()) |line| {
        if (std.mem.startsWith(u8, line, "processor")) n += 1;
    }
    say("nproc={d}", .{n});
}

fn reportMem() void {
    var buf: [4096]u8 = undefined;
    const info = readFile("/proc/meminfo", &buf);
    const end = std.mem.indexOfScalar(u8, info, '\n') orelse info.len;
    say("{s}", .{info[0..end]});
}

fn reportVirtio() void {
    var list: [256]u8 = undefined;
    var len: usize = 0;
    const rc = linux.open("/sys/bus/virtio/devices", .{ .ACCMODE = .RDONLY, .DIRECTORY = true }, 0);
    if (linux.errno(rc) == .SUCCESS) {
        const dir: i32 = @intCast(rc);
        defer _ = linux.close(dir);
        var dents: [4096]u8 align(8) = undefined;
        while (true) {
            const n = linux.getdents64(dir, &dents, dents.len);
            if (linux.errno(n) != .SUCCESS or n == 0) break;
            var off: usize = 0;
            while (off < n) {
                const d: *align(1) const linux.dirent64 = @ptrCast(&dents[off]);
                const name = std.mem.sliceTo(@as([*:0]const u8, @ptrCast(&dents[off + @offsetOf(linux.dirent64, "name")])), 0);
                off += d.reclen;
                if (name[0] == '.') continue;
                var path: [128]u8 = undefined;
                const p = std.fmt.bufPrint(&path, "/sys/bus/virtio/devices/{s}/device\x00", .{name}) catch continue;
                var idbuf: [16]u8 = undefined;
                const id = std.mem.trimEnd(u8, readFile(@ptrCast(p.ptr), &idbuf), "\n");
                const item = std.fmt.bufPrint(list[len..], "{s}{s}", .{ if (len > 0) "," else "", id }) catch break;
                len += item.len;
            }
        }
    }
    say("virtio={s}", .{list[0..len]});
}

fn reportCmdline() void {
    var buf: [2048]u8 = undefined;
    say("cmdline={s}", .{std.mem.trimEnd(u8, readFile("/proc/cmdline", &buf), "\n")});
}

pub fn main() void {
    mountFs("devtmpfs", "/dev", "devtmpfs");
    mountFs("proc", "/proc", "proc");
    mountFs("sysfs", "/sys", "sysfs");
    openOut();
    say("hello from pid {d}", .{linux.getpid()});
    reportCpus();
    reportMem();
    reportVirtio();
    reportCmdline();
    say("done", .{});
    linux.sync();
    _ = linux.reboot(.MAGIC1, .MAGIC2, .RESTART, null);
    while (true) _ = linux.pause();
}
