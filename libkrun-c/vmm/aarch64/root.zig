//! The aarch64 pieces of the VMM as one module (vmm_aarch64), for the harnesses that run them in
//! the aarch64 test host before the Machine's arch interface takes them in.
pub const Fdt = @import("Fdt.zig");
pub const devicetree = @import("devicetree.zig");
pub const layout = @import("layout.zig");
pub const kvm_arm = @import("kvm_arm.zig");
