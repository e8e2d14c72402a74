//! Drives vmm/Machine.zig directly (no C API), for the VMM's native and VM tests and its bench.
//! Built by `zig build vmm-driver` (zig-out/vmm-test/vmm_driver; tests/vm/boot/build-driver.sh
//! runs it); it reaches the Machine and Config through the `zkrun` module.
//!
//!   vmm_driver boot       [opts]  one VM: create, start, wait; prints exit status and stats
//!   vmm_driver concurrent [opts]  two VMs of the same config at once, in two threads
//!   vmm_driver cycles     [opts]  --cycles N create/start/wait/destroy; fd count and RSS
//!   vmm_driver nokvm              create with /dev/kvm hidden: must be KvmUnavailable
//!   vmm_driver create     [opts]  create and destroy only (instruction counts of the setup)
//! opts: --kernel PATH | --tiny   (--tiny: a hand-made long-mode guest, see Machine.tiny_guest)
//!       --format elf|raw|fw  --initramfs PATH  --cmdline STR  --vcpus N  --mem MiB
//!       --console-output PATH  --timeout-ms N  --cycles N
//!       --root DIR (virtio-fs root)  --init FILE (served as /init.krun)  --exec PATH  --arg A...
const std = @import("std");
const linux = std.os.linux;
const zkrun = @import("zkrun");
const Machine = zkrun.vmm.Machine;
const Config = zkrun.Config;

fn say(comptime fmt: []const u8, args: anytype) void {
    var buf: [512]u8 = undefined;
    const s = std.fmt.bufPrint(&buf, fmt ++ "\n", args) catch return;
    _ = linux.write(1, s.ptr, s.len);
}

const Opts = struct {
    mode: []const u8 = "boot",
    kernel: ?[]const u8 = null,
    tiny: bool = false,
    format: []const u8 = "elf",
    initramfs: ?[]const u8 = null,
    cmdline: ?[]const u8 = null,
    vcpus: u8 = 1,
    mem: u32 = 128,
    console_output: ?[]const u8 = null,
    timeout_ms: i32 = 300_000,
    cycles: u32 = 20,
    root: ?[]const u8 = null,
    init: ?[]const u8 = null,
    exec: ?[]const u8 = null,
    args: [16][]const u8 = undefined,
    args_len: usize = 0,
};

fn parse(args: []const [:0]const u8) !Opts {
    var o: Opts = .{};
    if (args.len > 1) o.mode = args[1];
    var i: usize = 2;
    while (i < args.len) : (i += 1) {
        const a = args[i];
        if (std.mem.eql(u8, a, "--tiny")) {
            o.tiny = true;
            continue;
        }
        if (i + 1 >= args.len) return error.MissingValue;
        const v = args[i + 1];
        i += 1;
        if (std.mem.eql(u8, a, "--kernel")) o.kernel = v else if (std.mem.eql(u8, a, "--format")) o.format = v else if (std.mem.eql(u8, a, "--initramfs")) o.initramfs = v else if (std.mem.eql(u8, a, "--cmdline")) o.cmdline = v else if (std.mem.eql(u8, a, "--vcpus")) o.vcpus = try std.fmt.parseInt(u8, v, 10) else if (std.mem.eql(u8, a, "--mem")) o.mem = try std.fmt.parseInt(u32, v, 10) else if (std.mem.eql(u8, a, "--console-output")) o.console_output = v else if (std.mem.eql(u8, a, "--timeout-ms")) o.timeout_ms = try std.fmt.parseInt(i32, v, 10) else if (std.mem.eql(u8, a, "--cycles")) o.cycles = try std.fmt.parseInt(u32, v, 10) else if (std.mem.eql(u8, a, "--root")) o.root = v else if (std.mem.eql(u8, a, "--init")) o.init = v else if (std.mem.eql(u8, a, "--exec")) o.exec = v else if (std.mem.eql(u8, a, "--arg")) {
            if (o.args_len == o.args.len) return error.TooManyArgs;
            o.args[o.args_len] = v;
            o.args_len += 1;
        } else return error.UnknownOption;
    }
    return o;
}

const tiny_path = "/tmp/zkrun-vmm-driver-tiny.bin";

fn writeTiny() !void {
    const rc = linux.open(tiny_path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true }, 0o644);
    if (linux.errno(rc) != .SUCCESS) return error.CannotWrite;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    _ = linux.write(fd, &Machine.tiny_guest, Machine.tiny_guest.len);
}

fn readAll(gpa: std.mem.Allocator, path: []const u8) ![]u8 {
    var z: [4096]u8 = undefined;
    @memcpy(z[0..path.len], path);
    z[path.len] = 0;
    const rc = linux.open(@ptrCast(&z), .{ .ACCMODE = .RDONLY }, 0);
    if (linux.errno(rc) != .SUCCESS) return error.CannotOpen;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    const size = linux.lseek(fd, 0, linux.SEEK.END);
    const buf = try gpa.alloc(u8, size);
    if (linux.pread(fd, buf.ptr, size, 0) != size) return error.ShortRead;
    return buf;
}

fn configure(cfg: *Config, o: Opts) !void {
    if (o.root) |dir| try cfg.virtiofs.append(cfg.allocator(), .{ .tag = Config.root_tag, .path = dir });
    if (o.init) |path| try cfg.overlay_files.append(cfg.allocator(), .{
        .fs_tag = Config.root_tag,
        .path = "init.krun",
        .data = try readAll(cfg.allocator(), path),
        .mode = 0o100755,
        .one_shot = true,
    });
    cfg.exec_path = o.exec;
    cfg.argv = try cfg.allocator().dupe([]const u8, o.args[0..o.args_len]);
    cfg.vcpus = o.vcpus;
    cfg.ram_mib = o.mem;
    cfg.console_output = o.console_output;
    if (o.tiny) {
        cfg.kernel = .{ .path = tiny_path, .format = .raw, .cmdline = "console=ttyS0" };
        return;
    }
    if (std.mem.eql(u8, o.format, "fw")) {
        if (o.cmdline != null) return error.CmdlineNeedsKernel;
        return; // libkrunfw.so.5 through dlopen
    }
    const format: Config.KernelFormat = if (std.mem.eql(u8, o.format, "elf")) .elf else if (std.mem.eql(u8, o.format, "raw")) .raw else return error.BadFormat;
    cfg.kernel = .{
        .path = o.kernel orelse return error.NoKernel,
        .format = format,
        .initramfs = o.initramfs,
        .cmdline = o.cmdline,
    };
}

fn bootOnce(gpa: std.mem.Allocator, o: Opts, quiet: bool) !i32 {
    var cfg = Config.init(gpa);
    defer cfg.deinit();
    try configure(&cfg, o);
    const t0 = nowUs();
    const m = try Machine.create(gpa, &cfg);
    defer m.destroy();
    const t1 = nowUs();
    try m.start();
    if (!quiet) say("boot: create_us={d} start_us={d}", .{ t1 - t0, nowUs() - t1 });
    const code = m.wait(o.timeout_ms) catch {
        say("boot: TIMEOUT after {d} ms (setup_us={d})", .{ o.timeout_ms, @divTrunc(m.stats().setup_ns, 1000) });
        m.stop();
        return error.Timeout;
    };
    const s = m.stats();
    const rss = rssKb();
    const guest_kb = s.guest_resident_bytes / 1024;
    if (!quiet) say("boot: exit={d} setup_us={d} exits={d} rss_kb={d} guest_rss_kb={d} vmm_rss_kb={d} kernel_prefaulted_kb={d}", .{
        code, @divTrunc(s.setup_ns, 1000), s.exits, rss, guest_kb, rss -| guest_kb, s.kernel_prefaulted_bytes / 1024,
    });
    return code;
}

fn nowUs() i64 {
    var ts: linux.timespec = undefined;
    _ = linux.clock_gettime(.MONOTONIC, &ts);
    return @as(i64, ts.sec) * 1_000_000 + @divTrunc(ts.nsec, 1000);
}

fn countFds() u32 {
    var n: u32 = 0;
    var fd: i32 = 0;
    while (fd < 4096) : (fd += 1) {
        if (linux.errno(linux.fcntl(fd, linux.F.GETFD, 0)) == .SUCCESS) n += 1;
    }
    return n;
}

fn rssKb() u64 {
    const rc = linux.open("/proc/self/statm", .{ .ACCMODE = .RDONLY }, 0);
    if (linux.errno(rc) != .SUCCESS) return 0;
    const fd: i32 = @intCast(rc);
    defer _ = linux.close(fd);
    var buf: [128]u8 = undefined;
    const n = linux.read(fd, &buf, buf.len);
    if (linux.errno(n) != .SUCCESS) return 0;
    var it = std.mem.tokenizeScalar(u8, buf[0..n], ' ');
    _ = it.next();
    const pages = std.fmt.parseInt(u64, it.next() orelse return 0, 10) catch return 0;
    return pages * 4;
}

const Concurrent = struct {
    gpa: std.mem.Allocator,
    o: Opts,
    code: i32 = -1,
    fn run(self: *Concurrent) void {
        self.code = bootOnce(self.gpa, self.o, false) catch |err| blk: {
            say("concurrent: {t}", .{err});
            break :blk -1;
        };
    }
};

pub fn main(init: std.process.Init) !u8 {
    const gpa = std.heap.c_allocator;
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    const o = parse(args) catch |err| {
        say("usage error: {t}", .{err});
        return 2;
    };
    if (o.tiny) try writeTiny();
    if (std.mem.eql(u8, o.mode, "boot")) {
        const code = bootOnce(gpa, o, false) catch |err| {
            say("boot: error {t}", .{err});
            return 1;
        };
        return @intCast(@min(@max(code, 0), 255));
    } else if (std.mem.eql(u8, o.mode, "concurrent")) {
        var a: Concurrent = .{ .gpa = gpa, .o = o };
        var b: Concurrent = .{ .gpa = gpa, .o = o };
        const ta = try std.Thread.spawn(.{}, Concurrent.run, .{&a});
        const tb = try std.Thread.spawn(.{}, Concurrent.run, .{&b});
        ta.join();
        tb.join();
        say("concurrent: a={d} b={d}", .{ a.code, b.code });
        return if (a.code == 0 and b.code == 0) 0 else 1;
    } else if (std.mem.eql(u8, o.mode, "cycles")) {
        // One warm-up cycle first: the first VM loads libraries and the kick handler for good.
        _ = try bootOnce(gpa, o, true);
        const fds0 = countFds();
        const rss0 = rssKb();
        var i: u32 = 0;
        while (i < o.cycles) : (i += 1) {
            const code = try bootOnce(gpa, o, true);
            if (code != 0) {
                say("cycles: cycle {d} exit={d}", .{ i, code });
                return 1;
            }
        }
        const fds1 = countFds();
        const rss1 = rssKb();
        say("cycles: n={d} fds_before={d} fds_after={d} rss_kb_before={d} rss_kb_after={d}", .{ o.cycles, fds0, fds1, rss0, rss1 });
        return 0;
    } else if (std.mem.eql(u8, o.mode, "create")) {
        var cfg = Config.init(gpa);
        defer cfg.deinit();
        try configure(&cfg, o);
        const m = try Machine.create(gpa, &cfg);
        m.destroy();
        say("create: ok", .{});
        return 0;
    } else if (std.mem.eql(u8, o.mode, "nokvm")) {
        var cfg = Config.init(gpa);
        defer cfg.deinit();
        try configure(&cfg, o);
        if (Machine.create(gpa, &cfg)) |m| {
            m.destroy();
            say("nokvm: create succeeded without /dev/kvm?", .{});
            return 1;
        } else |err| {
            say("nokvm: create -> {t}", .{err});
            return if (err == error.KvmUnavailable) 0 else 1;
        }
    }
    say("unknown mode {s}", .{o.mode});
    return 2;
}
