//! Tier-1 aggregator: every file with tests is pulled in here (`zig build test`).
//! Add one line per file; keep the list sorted by directory.
comptime {
    _ = @import("Config.zig");
    _ = @import("capi/main.zig");
    _ = @import("init/fuzz.zig");
    _ = @import("init/main.zig");
    _ = @import("init/net.zig");
    _ = @import("init/plan.zig");
    _ = @import("init/protocol.zig");
    _ = @import("init/sys.zig");
    _ = @import("log.zig");
    _ = @import("virtio/Device.zig");
    _ = @import("virtio/balloon.zig");
    _ = @import("virtio/blk/Blk.zig");
    _ = @import("virtio/blk/Image.zig");
    _ = @import("virtio/blk/qcow2.zig");
    _ = @import("virtio/blk/request.zig");
    _ = @import("virtio/blk/tests.zig");
    _ = @import("virtio/console.zig");
    _ = @import("virtio/console_tests.zig");
    _ = @import("virtio/fuzz_queue.zig");
    _ = @import("virtio/Lock.zig");
    _ = @import("virtio/mmio.zig");
    _ = @import("virtio/queue.zig");
    _ = @import("virtio/rng.zig");
    _ = @import("virtio/tests.zig");
    _ = @import("virtio/fs/VirtioFs.zig");
    _ = @import("virtio/vsock/packet.zig");
    _ = @import("virtio/vsock/tests.zig");
    _ = @import("vmm/EventLoop.zig");
    _ = @import("vmm/GuestMemory.zig");
    _ = @import("vmm/Machine.zig");
    _ = @import("vmm/Mmio.zig");
    _ = @import("vmm/OutputBuffer.zig");
    _ = @import("vmm/Vcpu.zig");
    _ = @import("vmm/kernel_loader.zig");
    _ = @import("vmm/kvm.zig");
    _ = @import("vmm/kvm_abi.zig");
    _ = @import("vmm/legacy/Pio.zig");
    _ = @import("vmm/sys.zig");
    _ = @import("vmm/terminal.zig");
    _ = @import("vmm/x86_64/boot.zig");
    _ = @import("vmm/x86_64/cpuid.zig");
    _ = @import("vmm/x86_64/layout.zig");
    _ = @import("vmm/x86_64/mptable.zig");
}
