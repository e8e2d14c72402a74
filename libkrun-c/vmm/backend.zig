//! Which Machine the C API drives: vmm/Machine.zig (KVM) on Linux, vmm/hvf/Machine.zig
//! (Hypervisor.framework) on macOS. Chosen at compile time, so a macOS build never compiles the
//! KVM runtime (epoll, eventfd, irqfd) and a Linux build never the HVF one.
const builtin = @import("builtin");

pub const Machine = if (builtin.os.tag == .macos) @import("hvf/Machine.zig") else @import("Machine.zig");
