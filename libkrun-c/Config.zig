//! What one context (ctx_id) asks for: the plain-data VM description that the krun_* setters
//! fill in and the VMM builder reads. It knows nothing of C: strings are Zig slices copied into
//! the context's arena when a setter runs (so callers' buffers may die right after the call).
//! Owner: capi/ writes it, vmm/ (builder), virtio/fs and the cmdline encoder read it.
const std = @import("std");

const Config = @This();

pub const vcpus_default = 1;
pub const ram_mib_default = 128;
/// libkrun reads NULL-terminated string arrays up to this many entries.
pub const args_max = 4096;
/// x86 virtio-MMIO slots: IRQ 5..15.
pub const virtio_devices_max = 11;
/// virtio-fs tags are a 36-byte field in the device's config space (virtio spec 5.11.4).
pub const fs_tag_max = 36;
/// Overlay entries (krun_fs_add_overlay_file/_dir) per context.
pub const overlay_entries_max = 256;
/// One overlay file's data (copied into the arena by capi).
pub const overlay_file_bytes_max = 64 << 20;
/// All of one context's arena: setters called again keep their old copies until
/// krun_free_ctx, so a client looping over setters is stopped here (-ENOMEM).
pub const arena_bytes_max = 1 << 30;

pub const KernelFormat = enum(u32) { raw = 0, elf = 1, pe_gz = 2, image_bz2 = 3, image_gz = 4, image_zstd = 5 };

pub const ExternalKernel = struct {
    path: []const u8,
    format: KernelFormat,
    initramfs: ?[]const u8 = null,
    /// Replaces libkrun's cmdline prolog when set.
    cmdline: ?[]const u8 = null,
};

pub const VirtioFs = struct {
    tag: []const u8,
    /// null: a virtual-only (null) filesystem.
    path: ?[]const u8,
    shm_size: u64 = 0,
    read_only: bool = false,
};

/// A virtio-blk disk (krun_add_disk*, krun_set_root_disk, krun_set_data_disk), in call order.
pub const Disk = struct {
    /// The guest's serial (GET_ID; /sys/block/vdX/serial), at most 20 bytes used.
    block_id: []const u8,
    path: []const u8,
    format: DiskFormat = .raw,
    read_only: bool = false,
    direct_io: bool = false,
    sync: SyncMode = .full,
};

/// KRUN_DISK_FORMAT_*.
pub const DiskFormat = enum(u32) { raw = 0, qcow2 = 1, vmdk = 2 };
/// KRUN_SYNC_*.
pub const SyncMode = enum(u32) { none = 0, relaxed = 1, full = 2 };

/// krun_set_root_disk_remount: init mounts `device` and makes it the root.
pub const BlockRoot = struct {
    device: []const u8,
    fstype: ?[]const u8 = null,
    options: ?[]const u8 = null,
};

/// The host vsock port of the TSI service (tsi/PROTOCOL.md); no vsock port may use it.
pub const tsi_port: u32 = 620;
/// KRUN_TSI_HIJACK_INET / KRUN_TSI_HIJACK_UNIX.
pub const tsi_hijack_inet: u32 = 1 << 0;
pub const tsi_hijack_unix: u32 = 1 << 1;

pub const VsockPort = struct { port: u32, path: []const u8, listen: bool };

pub const PortMapEntry = struct { host: u16, guest: u16 };

/// What vsock device the VM gets: none, or one with these TSI hijack bits (0: no TSI).
pub fn vsockDevice(self: *const Config) ?u32 {
    if (self.vsock_explicit) |bits| return bits;
    if (!self.implicit_vsock) return null;
    // libkrun: TSI (INET) iff no NIC; with a NIC the device exists only for vsock ports.
    if (self.nicCount() == 0) return tsi_hijack_inet;
    return if (self.vsock_ports.items.len > 0) 0 else null;
}

/// A NIC's host side. Paths are connected, fds duplicated, taps opened when the VM is built.
pub const NicBackend = union(enum) {
    /// passt/QEMU framing (4-byte big-endian length + frame).
    unixstream_path: []const u8,
    unixstream_fd: i32,
    /// One frame per datagram; `vfkit`: send gvproxy's "VFKT" magic after connecting.
    unixgram_path: struct { path: []const u8, vfkit: bool },
    unixgram_fd: i32,
    tap: []const u8,
};

pub const Nic = struct {
    backend: NicBackend,
    mac: [6]u8,
    /// NET_FEATURE_* bits (virtio-net feature numbers).
    features: u32,
    /// NET_FLAG_DHCP_CLIENT: init brings the interface up and runs its DHCP client.
    dhcp: bool,
};

/// libkrun's legacy NIC MAC and features (COMPAT_NET_FEATURES).
pub const legacy_mac_default = [6]u8{ 0x5a, 0x94, 0xef, 0xe4, 0x0c, 0xee };
pub const compat_net_features: u32 = (1 << 0) | (1 << 1) | (1 << 7) | (1 << 10) | (1 << 11) | (1 << 14);

/// NICs the VM gets (krun_add_net_* plus the legacy one).
pub fn nicCount(self: *const Config) usize {
    return self.nics.items.len + @intFromBool(self.legacy_nic != null);
}

/// Every NIC in eth order: the legacy one is the only one when set.
pub fn allNics(self: *const Config, buf: *[1]Nic) []const Nic {
    if (self.legacy_nic) |b| {
        buf[0] = .{ .backend = b, .mac = self.legacy_mac, .features = compat_net_features, .dhcp = false };
        return buf[0..1];
    }
    return self.nics.items;
}

pub const ConsoleFds = struct { input: i32, output: i32, err: i32 };

pub const OverlayFile = struct {
    fs_tag: []const u8,
    path: []const u8,
    data: []const u8,
    mode: u32,
    one_shot: bool,
};

arena: std.heap.ArenaAllocator,

vcpus: u8 = vcpus_default,
ram_mib: u32 = ram_mib_default,
nested_virt: bool = false,
split_irqchip: bool = false,

kernel: ?ExternalKernel = null,
/// krun_append_kernel_cmdline's arguments, space-separated, in call order ("" if none).
cmdline_extra: []const u8 = "",
/// The `console=` token of the cmdline.
kernel_console: []const u8 = "hvc0",

implicit_console: bool = true,
/// krun_disable_implicit_vsock clears it: no vsock (and so no TSI) device at all, unless
/// krun_add_vsock adds one explicitly.
implicit_vsock: bool = true,
/// krun_add_vsock's KRUN_TSI_HIJACK_* bits: an explicit vsock device (after
/// krun_disable_implicit_vsock), with TSI when any bit is set.
vsock_explicit: ?u32 = null,
/// krun_add_vsock_port / krun_add_vsock_port2, in call order (ports unique, never 620).
vsock_ports: std.ArrayList(VsockPort) = .empty,
/// krun_set_port_map: null when never called (TSI then exposes guest listeners on the host's
/// loopback only); an empty slice exposes nothing.
port_map: ?[]const PortMapEntry = null,
/// krun_add_net_* NICs in call order (eth0, eth1, ...). libkrun's implicit vsock has TSI only
/// when there is no NIC (nicCount).
nics: std.ArrayList(Nic) = .empty,
/// krun_set_passt_fd / krun_set_gvproxy_path: the legacy single NIC (never with `nics`).
legacy_nic: ?NicBackend = null,
/// krun_set_net_mac: the legacy NIC's MAC.
legacy_mac: [6]u8 = legacy_mac_default,
/// krun_set_console_output: the implicit console ignores stdin and writes here.
console_output: ?[]const u8 = null,
/// krun_add_virtio_console_default.
console_default: ?ConsoleFds = null,
/// krun_start_enter only: the read end of the pipe its SIGTERM handler writes signal numbers
/// to; the implicit console serves it to the guest as the `krun-signal` port (init signals the
/// workload). Borrowed (capi owns it); -1 for none.
signal_fd: i32 = -1,

/// Read by capi only: when true at the moment the root filesystem is added, capi appends the
/// one-shot overlay file "init.krun" (the embedded init) for it. Devices serve
/// `overlay_files` and need not look at this flag.
implicit_init: bool = true,
virtiofs: std.ArrayList(VirtioFs) = .empty,
/// krun_fs_add_overlay_file and krun_fs_add_overlay_dir entries, in call order. An entry whose
/// `mode` has the S_IFDIR type is an empty read-only directory (no data); every other entry is a
/// regular file (S_IFREG). `path` is relative to the fs root ("etc/hostname": no leading '/', no
/// empty, "." or ".." component), and every parent directory is an earlier entry (capi checks).
overlay_files: std.ArrayList(OverlayFile) = .empty,

disks: std.ArrayList(Disk) = .empty,
/// krun_set_root_disk / krun_set_data_disk were used (libkrun: not mixable with krun_add_disk*).
legacy_disks: bool = false,
block_root: ?BlockRoot = null,

/// KRUN_INIT: the workload path; argv excludes argv[0] (libkrun's convention).
exec_path: ?[]const u8 = null,
argv: []const []const u8 = &.{},
/// null: the host environment is copied at start (libkrun's NULL envp semantics). capi's
/// krun_start resolves it before Machine.create (the host environment after a NULL envp, empty
/// when no environment was ever set, as libkrun), so the VMM always sees it non-null.
envp: ?[]const []const u8 = null,
workdir: ?[]const u8 = null,
/// "RESOURCE=CUR:MAX" entries with numeric resource ids.
rlimits: []const []const u8 = &.{},

uid: ?u32 = null,
gid: ?u32 = null,

pub fn init(gpa: std.mem.Allocator) Config {
    return .{ .arena = .init(gpa) };
}

pub fn deinit(self: *Config) void {
    self.arena.deinit();
    self.* = undefined;
}

pub fn allocator(self: *Config) std.mem.Allocator {
    return self.arena.allocator();
}

pub fn dupe(self: *Config, s: []const u8) error{OutOfMemory}![]const u8 {
    return self.allocator().dupe(u8, s);
}

/// The root filesystem (tag "/dev/root"), if one was configured.
pub fn rootFs(self: *const Config) ?VirtioFs {
    for (self.virtiofs.items) |fs| {
        if (std.mem.eql(u8, fs.tag, root_tag)) return fs;
    }
    return null;
}

pub const root_tag = "/dev/root";

test "config records copies and finds the root" {
    var cfg = Config.init(std.testing.allocator);
    defer cfg.deinit();
    var buf = "rootfs".*;
    const path = try cfg.dupe(&buf);
    buf[0] = 'X';
    try cfg.virtiofs.append(cfg.allocator(), .{ .tag = root_tag, .path = path, .shm_size = 1 << 29 });
    try std.testing.expectEqualStrings("rootfs", cfg.rootFs().?.path.?);
}
