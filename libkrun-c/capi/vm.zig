//! Setters for the VM's shape, kernel and consoles: krun_set_vm_config, krun_set_nested_virt,
//! krun_split_irqchip, krun_set_kernel, krun_set_kernel_console, krun_set_console_output,
//! krun_disable_implicit_console, krun_disable_implicit_vsock, krun_add_virtio_console_default.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const assert = std.debug.assert;
const Config = @import("../Config.zig");
const is_macos = @import("builtin").os.tag == .macos;
const Machine = @import("../vmm/backend.zig").Machine;
const arch = @import("../vmm/arch.zig").current;
const contexts = @import("contexts.zig");
const cstr = @import("cstr.zig");
const errors = @import("errors.zig");
const host = @import("host.zig");
const kernel_image = @import("kernel_image.zig");
const Error = errors.Error;
const reject = errors.reject;

/// x86 COMMAND_LINE_SIZE, NUL included.
pub const cmdline_bytes_max = 2048;
/// A console name such as "hvc0" or "ttyS0,115200".
const console_bytes_max = 64;

pub fn krun_set_vm_config(ctx_id: u32, num_vcpus: u8, ram_mib: u32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setVmConfig(ctx_id, num_vcpus, ram_mib));
}

fn setVmConfig(ctx_id: u32, num_vcpus: u8, ram_mib: u32) Error!void {
    const func = "krun_set_vm_config";
    const cfg = try contexts.config(func, ctx_id);
    const vcpus_max = vcpusMax();
    if (num_vcpus == 0 or num_vcpus > vcpus_max) {
        return reject(func, error.InvalidArgument, "num_vcpus {d} is out of range 1..{d}", .{ num_vcpus, vcpus_max });
    }
    if (ram_mib == 0 or ram_mib > arch.ram_mib_max) {
        return reject(func, error.InvalidArgument, "ram_mib {d} is out of range 1..{d}", .{ ram_mib, arch.ram_mib_max });
    }
    if (!hostCanMap(@as(u64, ram_mib) << 20)) {
        return reject(func, error.InvalidArgument, "ram_mib {d}: the host cannot map that much address space", .{ram_mib});
    }
    cfg.vcpus = num_vcpus;
    cfg.ram_mib = ram_mib;
}

/// KVM's limit, asked once per process (it opens /dev/kvm); without KVM the MP table's bound
/// (not remembered: KVM may appear later), and the start then fails with -ENODEV.
var vcpus_max_kvm: std.atomic.Value(u32) = .init(0);

fn vcpusMax() u32 {
    const known = vcpus_max_kvm.load(.acquire);
    if (known != 0) return known;
    const max = Machine.maxVcpus() catch return arch.vcpus_max;
    assert(max > 0); // tidy: KVM reports at least 1 vCPU
    vcpus_max_kvm.store(max, .release);
    return max;
}

/// Guest RAM is mapped on demand, so the limit is address space, not free memory: reserve
/// (PROT_NONE, NORESERVE) and release at once.
fn hostCanMap(bytes: u64) bool {
    assert(bytes > 0); // tidy: callers pass a size > 0
    if (is_macos) {
        const p = std.c.mmap(null, bytes, .{}, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0);
        if (p == std.c.MAP_FAILED) return false;
        _ = std.c.munmap(@alignCast(p), bytes);
        return true;
    }
    const m = sys.mmap(bytes, .{}, .{ .TYPE = .PRIVATE, .ANONYMOUS = true, .NORESERVE = true }, -1, 0) catch return false;
    sys.munmap(m);
    return true;
}

pub fn krun_set_nested_virt(ctx_id: u32, enabled: bool) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_set_nested_virt", ctx_id) catch |err| return errors.errno(err);
    cfg.nested_virt = enabled;
    return 0;
}

pub fn krun_split_irqchip(ctx_id: u32, enable: bool) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_split_irqchip", ctx_id) catch |err| return errors.errno(err);
    // The VMM has only the in-kernel irqchip so far: accepting `true` and ignoring it would
    // leave the caller believing it got a userspace IOAPIC.
    if (enable) return errors.errno(errors.reject(
        "krun_split_irqchip",
        error.NotSupported,
        "the split irqchip (userspace IOAPIC) is not implemented; the in-kernel irqchip is used",
        .{},
    ));
    cfg.split_irqchip = enable;
    return 0;
}

pub fn krun_set_kernel(
    ctx_id: u32,
    kernel_path: cstr.CString,
    kernel_format: u32,
    initramfs: cstr.CString,
    cmdline: cstr.CString,
) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setKernel(ctx_id, kernel_path, kernel_format, initramfs, cmdline));
}

fn setKernel(ctx_id: u32, kernel_path: cstr.CString, format_raw: u32, initramfs: cstr.CString, cmdline: cstr.CString) Error!void {
    const func = "krun_set_kernel";
    const cfg = try contexts.config(func, ctx_id);
    const path = try cstr.required(func, "kernel_path", kernel_path, cstr.path_bytes_max);
    const format = std.enums.fromInt(Config.KernelFormat, format_raw) orelse
        return reject(func, error.InvalidArgument, "kernel_format {d} is unknown (0..5)", .{format_raw});
    const initrd = try cstr.optional(func, "initramfs", initramfs, cstr.path_bytes_max);
    const line = try cstr.optional(func, "cmdline", cmdline, cmdline_bytes_max - 1);
    try kernel_image.check(func, path, format);
    if (initrd) |p| {
        var file = try host.File.open(func, "initramfs", p);
        file.close();
    }
    cfg.kernel = .{
        .path = try cstr.dupe(func, cfg, path),
        .format = format,
        .initramfs = if (initrd) |p| try cstr.dupe(func, cfg, p) else null,
        .cmdline = if (line) |l| try cstr.dupe(func, cfg, l) else null,
    };
}

pub fn krun_append_kernel_cmdline(ctx_id: u32, arg: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(appendKernelCmdline(ctx_id, arg));
}

fn appendKernelCmdline(ctx_id: u32, arg_ptr: cstr.CString) Error!void {
    const func = "krun_append_kernel_cmdline";
    const cfg = try contexts.config(func, ctx_id);
    const arg = try cstr.required(func, "arg", arg_ptr, cmdline_bytes_max - 1);
    // One printable argument: a control character cannot go on a kernel command line, and
    // "--" would hand everything after it (the workload's tokens) to init as arguments.
    if (arg.len == 0 or std.mem.eql(u8, arg, "--")) return reject(func, error.InvalidArgument, "arg \"{s}\" is empty or \"--\"", .{arg});
    for (arg) |c| if (c < ' ' or c > '~') return reject(func, error.InvalidArgument, "arg has a byte 0x{x:0>2} that cannot go on a kernel command line", .{c});
    const sep: usize = @intFromBool(cfg.cmdline_extra.len > 0);
    const len = cfg.cmdline_extra.len + sep + arg.len;
    if (len > cmdline_bytes_max - 1) return reject(func, error.InvalidArgument, "appended arguments would take {d} bytes; the whole command line holds {d}", .{ len, cmdline_bytes_max - 1 });
    try cstr.room(func, cfg, len);
    const joined = cfg.allocator().alloc(u8, len) catch return reject(func, error.OutOfMemory, "out of memory", .{});
    @memcpy(joined[0..cfg.cmdline_extra.len], cfg.cmdline_extra);
    if (sep == 1) joined[cfg.cmdline_extra.len] = ' ';
    @memcpy(joined[cfg.cmdline_extra.len + sep ..], arg);
    cfg.cmdline_extra = joined;
}

pub fn krun_set_kernel_console(ctx_id: u32, console_id: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setKernelConsole(ctx_id, console_id));
}

fn setKernelConsole(ctx_id: u32, console_id: cstr.CString) Error!void {
    const func = "krun_set_kernel_console";
    const cfg = try contexts.config(func, ctx_id);
    const name = try cstr.required(func, "console_id", console_id, console_bytes_max);
    // It becomes one "console=" token: a space or quote would split or break the cmdline.
    if (name.len == 0 or std.mem.indexOfAny(u8, name, " \t\n\"") != null) {
        return reject(func, error.InvalidArgument, "console_id \"{s}\" is empty or has blanks/quotes", .{name});
    }
    cfg.kernel_console = try cstr.dupe(func, cfg, name);
}

pub fn krun_set_console_output(ctx_id: u32, c_filepath: cstr.CString) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(setConsoleOutput(ctx_id, c_filepath));
}

fn setConsoleOutput(ctx_id: u32, c_filepath: cstr.CString) Error!void {
    const func = "krun_set_console_output";
    const cfg = try contexts.config(func, ctx_id);
    const path = try cstr.required(func, "c_filepath", c_filepath, cstr.path_bytes_max);
    if (cfg.console_output) |old| {
        return reject(func, error.AlreadyExists, "console output is already \"{s}\" (one call per context)", .{old});
    }
    if (path.len == 0) return reject(func, error.InvalidArgument, "c_filepath is empty", .{});
    cfg.console_output = try cstr.dupe(func, cfg, path);
}

pub fn krun_disable_implicit_console(ctx_id: u32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_disable_implicit_console", ctx_id) catch |err| return errors.errno(err);
    cfg.implicit_console = false;
    return 0;
}

pub fn krun_disable_implicit_vsock(ctx_id: u32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    const cfg = contexts.config("krun_disable_implicit_vsock", ctx_id) catch |err| return errors.errno(err);
    cfg.implicit_vsock = false;
    return 0;
}

pub fn krun_add_virtio_console_default(ctx_id: u32, input_fd: i32, output_fd: i32, err_fd: i32) callconv(.c) i32 {
    contexts.lock();
    defer contexts.unlock();
    return errors.result(addConsoleDefault(ctx_id, input_fd, output_fd, err_fd));
}

fn addConsoleDefault(ctx_id: u32, input_fd: i32, output_fd: i32, err_fd: i32) Error!void {
    const func = "krun_add_virtio_console_default";
    const cfg = try contexts.config(func, ctx_id);
    const fds = [_]struct { []const u8, i32 }{ .{ "input_fd", input_fd }, .{ "output_fd", output_fd }, .{ "err_fd", err_fd } };
    for (fds) |entry| {
        const name, const fd = entry;
        const open = fd >= 0 and if (is_macos) std.c.fcntl(fd, std.c.F.GETFD) >= 0 else sys.resultErrno(sys.fcntl(fd, linux.F.GETFD, 0)) == .SUCCESS;
        if (!open) return reject(func, error.BadFd, "{s} {d} is not an open file descriptor", .{ name, fd });
    }
    if (cfg.console_default != null) {
        return reject(func, error.AlreadyExists, "context {d} already has a default console (zkrun supports one)", .{ctx_id});
    }
    cfg.console_default = .{ .input = input_fd, .output = output_fd, .err = err_fd };
}

test "vm config bounds" {
    const tc = try @import("context.zig").TestContext.init();
    defer tc.deinit();
    const id = tc.id;
    try std.testing.expectEqual(@as(i32, -22), krun_set_vm_config(id, 0, 512));
    try std.testing.expectEqual(@as(i32, -22), krun_set_vm_config(id, 255, 512));
    try std.testing.expectEqual(@as(i32, -22), krun_set_vm_config(id, 1, 0));
    try std.testing.expectEqual(@as(i32, -22), krun_set_vm_config(id, 1, std.math.maxInt(u32)));
    try std.testing.expectEqual(@as(i32, 0), krun_set_vm_config(id, 1, 512));
    try std.testing.expectEqual(@as(i32, -2), krun_set_vm_config(id + 1000, 1, 512));
    try std.testing.expectEqual(@as(i32, -9), krun_add_virtio_console_default(id, -1, 1, 2));
    try std.testing.expectEqual(@as(i32, 0), krun_add_virtio_console_default(id, 0, 1, 2));
    try std.testing.expectEqual(@as(i32, -17), krun_add_virtio_console_default(id, 0, 1, 2));
    try std.testing.expectEqual(@as(i32, -22), krun_set_kernel_console(id, "hvc0 x"));
    try std.testing.expectEqual(@as(i32, 0), krun_append_kernel_cmdline(id, "loglevel=3"));
    try std.testing.expectEqual(@as(i32, 0), krun_append_kernel_cmdline(id, "foo=\"a b\""));
    {
        contexts.lock();
        defer contexts.unlock();
        try std.testing.expectEqualStrings("loglevel=3 foo=\"a b\"", (try contexts.config("t", id)).cmdline_extra);
    }
    try std.testing.expectEqual(@as(i32, -22), krun_append_kernel_cmdline(id, "--"));
    try std.testing.expectEqual(@as(i32, -22), krun_append_kernel_cmdline(id, "a\nb"));
    try std.testing.expectEqual(@as(i32, -22), krun_append_kernel_cmdline(id, null));
    try std.testing.expectEqual(@as(i32, -22), krun_set_kernel(id, null, 1, null, null));
    try std.testing.expectEqual(@as(i32, -22), krun_set_kernel(id, "/proc/self/exe", 9, null, null));
    try std.testing.expectEqual(@as(i32, -2), krun_set_kernel(id, "/nonexistent", 1, null, null));
    try std.testing.expectEqual(@as(i32, 0), krun_set_kernel(id, "/proc/self/exe", 1, null, "console=hvc0"));
    try std.testing.expectEqual(@as(i32, -2), krun_set_kernel(id, "/proc/self/exe", 1, "/nonexistent/initrd", null));
}
