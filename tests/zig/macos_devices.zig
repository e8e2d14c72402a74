//! The virtio parts that compile for macOS today, gathered for tests/native/cross-macos.sh:
//! `zig build macos-devices` builds this file alone as an aarch64-macos object, and the script checks that no raw Linux syscall and no
//! Linux-only libc call is in it (the dylib cannot show that: no VMM attaches a virtio device on
//! macOS yet, so the optimizer drops them). Not part of the library; docs/HVF.md lists what
//! else blocks the devices.
const virtio = @import("zkrun").virtio;
const Device = virtio.Device;
const mmio = virtio.mmio;
const rng = virtio.rng;
const balloon = virtio.balloon;

/// Every function of the rng and balloon devices (their vtables) and of the MMIO transport
/// (register access, activation, reset) is reachable from here, so all of it is compiled.
export fn zkrun_macos_devices(r: *rng.Rng, b: *balloon.Balloon, out: *[2]Device, t: *mmio.Transport, offset: u64, data: [*]u8, len: usize) void {
    out[0] = r.device();
    out[1] = b.device();
    t.read(offset, data[0..len]);
    t.write(offset, data[0..len]);
    t.shutdown();
}
