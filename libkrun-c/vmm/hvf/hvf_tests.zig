//! The Hypervisor.framework backend's files, for the unit tests (`zig build test` runs them on
//! Linux: the decoders and layouts are pure; the framework itself is only loaded on macOS).
test {
    _ = @import("hv.zig");
    _ = @import("esr.zig");
    _ = @import("psci.zig");
    _ = @import("Vm.zig");
    _ = @import("exit.zig");
    _ = @import("Vcpu.zig");
    _ = @import("Devices.zig");
}
