//! The `zkrun` module: libkrun-c/'s internals as one named module for the code that lives
//! outside the product folder (tests/fuzz/, tests/zig/): fuzzers, harnesses, test guests and
//! benches import `@import("zkrun")` and reach the files they drive through it. Nothing here
//! exports C symbols (root.zig does that for libkrun.so); test-support files are listed as such.
/// The C API's shims, for tests/zig/capi_prototypes.zig (their signatures vs libkrun.h).
pub const capi = @import("capi/main.zig");
/// A VM's configuration, for the VMM driver (tests/vm/boot/vmm_driver.zig).
pub const Config = @import("Config.zig");
pub const vmm = struct {
    /// The VM itself, driven without the C API by tests/vm/boot/vmm_driver.zig.
    pub const Machine = @import("vmm/Machine.zig");
    /// The aarch64 backend's pieces, for the aarch64 boot harness (tests/aarch64/boot-harness.zig).
    pub const aarch64 = struct {
        pub const Fdt = @import("vmm/aarch64/Fdt.zig");
        pub const devicetree = @import("vmm/aarch64/devicetree.zig");
        pub const layout = @import("vmm/aarch64/layout.zig");
        pub const kvm_arm = @import("vmm/aarch64/kvm_arm.zig");
    };
};
pub const init = struct {
    pub const protocol = @import("init_protocol");
};
pub const tsi = struct {
    pub const wire = @import("tsi/wire.zig");
};
pub const virtio = struct {
    pub const Device = @import("virtio/Device.zig");
    /// rng and balloon: for tests/zig/macos_devices.zig (the devices built for macOS).
    pub const rng = @import("virtio/rng.zig");
    pub const balloon = @import("virtio/balloon.zig");
    pub const mmio = @import("virtio/mmio.zig");
    pub const queue = @import("virtio/queue.zig");
    /// Test support: a simulated guest driver over host buffers.
    pub const testing = @import("virtio/testing.zig");
    pub const blk = struct {
        pub const Blk = @import("virtio/blk/Blk.zig");
        pub const Image = @import("virtio/blk/Image.zig");
        pub const qcow2 = @import("virtio/blk/qcow2.zig");
        pub const request = @import("virtio/blk/request.zig");
    };
    pub const fs = struct {
        pub const fuse = @import("virtio/fs/fuse.zig");
        pub const Server = @import("virtio/fs/Server.zig");
        pub const VirtioFs = @import("virtio/fs/VirtioFs.zig");
        pub const sys = @import("virtio/fs/sys.zig").backend;
        /// Test support: temporary shares.
        pub const testing = @import("virtio/fs/testing.zig");
    };
    pub const vsock = struct {
        pub const packet = @import("virtio/vsock/packet.zig");
        pub const Vsock = @import("virtio/vsock/Vsock.zig");
        /// Test support: the vsock test driver and fixture.
        pub const testing = @import("virtio/vsock/testing.zig");
    };
    pub const net = struct {
        pub const frame = @import("virtio/net/frame.zig");
        pub const Net = @import("virtio/net/Net.zig");
    };
};
