//! The QEMU side's /init for tests/bench/aarch64.bench.sh: the least a workload can be (the
//! zkrun side runs `/bin/busybox true` through /init.krun): mount devtmpfs, print one marker on
//! the console so the bench knows userspace ran, power off (PSCI SYSTEM_OFF: QEMU exits).
//! Raw syscalls only: no libc, no allocation.
const std = @import("std");
const linux = std.os.linux;

pub fn main() void {
    _ = linux.mkdir("/dev", 0o755);
    _ = linux.mount("devtmpfs", "/dev", "devtmpfs", 0, 0);
    const c = linux.open("/dev/console", .{ .ACCMODE = .WRONLY }, 0);
    const marker = "ZKRUN-BENCH-INIT\n";
    if (linux.errno(c) == .SUCCESS) _ = linux.write(@intCast(c), marker, marker.len);
    _ = linux.reboot(.MAGIC1, .MAGIC2, .POWER_OFF, null);
}
