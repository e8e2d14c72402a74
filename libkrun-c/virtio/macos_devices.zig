//! The virtio parts that compile for macOS today, gathered for tests/native/cross-macos.sh: it
//! builds this file alone as an aarch64-macos object and checks that no raw Linux syscall and no
//! Linux-only libc call is in it, and that the macOS calls replacing the Linux ones are (by name:
//! in the dylib, where the HVF Machine attaches rng and balloon, they are among many imports).
//! Not part of the library; docs/HVF.md lists what compiles and what still blocks the rest.
const Device = @import("Device.zig");
const mmio = @import("mmio.zig");
const rng = @import("rng.zig");
const balloon = @import("balloon.zig");

/// Every function of the rng and balloon devices (their vtables) and of the MMIO transport
/// (register access, activation, reset) is reachable from here, so all of it is compiled.
export fn zkrun_macos_devices(r: *rng.Rng, b: *balloon.Balloon, out: *[2]Device, t: *mmio.Transport, offset: u64, data: [*]u8, len: usize) void {
    out[0] = r.device();
    out[1] = b.device();
    t.read(offset, data[0..len]);
    t.write(offset, data[0..len]);
    t.shutdown();
}
