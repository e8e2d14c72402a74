//! One running microVM: built from a Config, started in its own threads, waited on, stopped,
//! destroyed. The C API (capi/) drives it; nothing here knows about C.
//! (Skeleton with the agreed signatures; the VMM engineer implements it.)
const std = @import("std");
const Config = @import("../Config.zig");

const Machine = @This();

/// Everything that can go wrong building or starting a VM. capi/ maps each to an errno with an
/// exhaustive switch, so adding an error here forces a decision there.
pub const Error = error{
    /// /dev/kvm missing, not openable, or the KVM API version is wrong.
    KvmUnavailable,
    /// The configuration cannot be built (e.g. more vCPUs than KVM allows, RAM too large).
    InvalidConfig,
    /// The kernel (libkrunfw or krun_set_kernel's file) is missing.
    KernelNotFound,
    /// The kernel file exists but is not a usable image.
    KernelInvalid,
    OutOfMemory,
    /// Another host resource (fd, thread, mapping) could not be obtained.
    SystemResources,
    /// A KVM ioctl failed unexpectedly while building the VM.
    KvmFailed,
};

gpa: std.mem.Allocator,

pub fn create(gpa: std.mem.Allocator, cfg: *const Config) Error!*Machine {
    _ = cfg;
    _ = gpa;
    return error.KvmUnavailable;
}

pub fn start(self: *Machine) Error!void {
    _ = self;
}

/// The guest's exit status (>= 0), or error.Timeout when timeout_ms (>= 0) elapses first;
/// timeout_ms < 0 waits forever.
pub fn wait(self: *Machine, timeout_ms: i32) error{Timeout}!i32 {
    _ = self;
    _ = timeout_ms;
    return error.Timeout;
}

/// Forces the VM down (vCPUs kicked out of KVM_RUN, threads joined by destroy/wait).
pub fn stop(self: *Machine) void {
    _ = self;
}

/// Releases every fd, thread and mapping the VM had. Stops it first if it still runs.
pub fn destroy(self: *Machine) void {
    self.gpa.destroy(self);
}

/// KVM_CAP_MAX_VCPUS of this host.
pub fn maxVcpus() Error!u32 {
    return error.KvmUnavailable;
}
