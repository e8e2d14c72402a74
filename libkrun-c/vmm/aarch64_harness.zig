//! The aarch64 pieces of the VMM as one module (vmm_aarch64), for the harnesses that run them in
//! the aarch64 test host (tests/aarch64/boot-harness.zig) apart from the Machine. It sits in
//! vmm/, not aarch64/, so the module's root covers ram.zig, which aarch64/layout.zig shares with
//! x86_64.
pub const Fdt = @import("aarch64/Fdt.zig");
pub const devicetree = @import("aarch64/devicetree.zig");
pub const layout = @import("aarch64/layout.zig");
pub const kvm_arm = @import("aarch64/kvm_arm.zig");
