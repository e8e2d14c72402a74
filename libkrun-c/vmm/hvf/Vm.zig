//! One Hypervisor.framework VM: hv_vm_create (one per process: the framework's rule), the
//! stage-2 mappings of guest RAM (hv_vm_map), and the in-kernel GICv3 (hv_gic_create, macOS
//! 15+) at the addresses the FDT describes (vmm/aarch64/layout.zig, the same as on KVM).
//! Compiled for macOS and Linux; on Linux `create` fails with FrameworkMissing.
const std = @import("std");
const hv = @import("hv.zig");
const layout = @import("../aarch64/layout.zig");
const devicetree = @import("../aarch64/devicetree.zig");

const log = std.log.scoped(.hvf);

const Vm = @This();

api: *const hv.Api,
/// Guest-physical ranges mapped so far (unmapped by destroy).
maps: [max_maps]Map = undefined,
maps_len: u32 = 0,
has_gic: bool = false,

pub const max_maps = 8;
pub const Map = struct { ipa: u64, len: usize };

pub const Error = error{ FrameworkMissing, SymbolMissing, HvFailed, TooManyMaps, NoGic };

/// Only one VM per process can exist (hv_vm_create's contract), so this is process-wide.
var vm_exists = std.atomic.Value(bool).init(false);

pub fn create() Error!Vm {
    const a = try hv.api();
    if (vm_exists.swap(true, .acq_rel)) {
        log.warn("Hypervisor.framework allows one VM per process; one is running", .{});
        return error.HvFailed;
    }
    errdefer vm_exists.store(false, .release);
    const r = a.vm_create(null);
    if (r != hv.success) {
        log.warn("hv_vm_create failed: 0x{x} (is the process signed with com.apple.security.hypervisor?)", .{@as(u32, @bitCast(r))});
        return error.HvFailed;
    }
    return .{ .api = a };
}

/// Maps `host` at guest-physical `ipa`, read/write/exec (guest RAM and the kernel image).
pub fn map(self: *Vm, host: []u8, ipa: u64) Error!void {
    if (self.maps_len == max_maps) return error.TooManyMaps;
    const r = self.api.vm_map(host.ptr, ipa, host.len, hv.memory_read | hv.memory_write | hv.memory_exec);
    if (r != hv.success) {
        log.warn("hv_vm_map(0x{x}, {d} bytes) failed: 0x{x}", .{ ipa, host.len, @as(u32, @bitCast(r)) });
        return error.HvFailed;
    }
    self.maps[self.maps_len] = .{ .ipa = ipa, .len = host.len };
    self.maps_len += 1;
}

/// The GICv3 through hv_gic (macOS 15+): distributor and redistributors where the FDT says.
/// Without it the guest has no interrupt controller: error.NoGic (no userspace GIC model yet).
pub fn createGic(self: *Vm, vcpus: u32) Error!void {
    const g = self.api.gic orelse return error.NoGic;
    const cfg = g.config_create() orelse return error.HvFailed;
    try hv.check(g.config_set_distributor_base(cfg, layout.gic_dist_base));
    try hv.check(g.config_set_redistributor_base(cfg, layout.gicRedistBase(vcpus)));
    try hv.check(g.create(cfg));
    self.has_gic = true;
}

/// Raises or lowers an SPI (the virtio devices' and the serial port's lines). `spi` counts
/// from 0 as layout.zig's slots; the GIC's INTID is 32 + spi.
pub fn setSpi(self: *const Vm, spi: u32, level: bool) void {
    const g = self.api.gic orelse return;
    _ = g.set_spi(32 + spi, level);
}

pub fn destroy(self: *Vm) void {
    for (self.maps[0..self.maps_len]) |m| _ = self.api.vm_unmap(m.ipa, m.len);
    self.maps_len = 0;
    _ = self.api.vm_destroy();
    vm_exists.store(false, .release);
}

/// hv_vm_get_max_vcpu_count (macOS 15+), capped by the FDT's cpu nodes; 1 without it.
pub fn maxVcpus() error{HostUnsupported}!u32 {
    const a = hv.api() catch return error.HostUnsupported;
    const get = a.vm_get_max_vcpu_count orelse return 1;
    var n: u32 = 0;
    if (get(&n) != hv.success or n == 0) return 1;
    return @min(n, devicetree.max_vcpus);
}

test "without Hypervisor.framework, create fails cleanly and maxVcpus says unsupported" {
    if (@import("builtin").os.tag == .macos) return error.SkipZigTest;
    try std.testing.expectError(error.FrameworkMissing, create());
    try std.testing.expectError(error.HostUnsupported, maxVcpus());
}
