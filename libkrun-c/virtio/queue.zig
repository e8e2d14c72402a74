//! Split virtqueues (virtio 1.x §2.7): the driver-owned rings in guest memory, walked with
//! every guest value checked. (Skeleton: the virtio engineer fills in the walker.)
const std = @import("std");

/// Transport-side queue state: what the driver configured through the MMIO registers, plus the
/// device's private ring positions.
pub const Queue = struct {
    size_max: u16,
    size: u16 = 0,
    ready: bool = false,
    desc_addr: u64 = 0,
    avail_addr: u64 = 0,
    used_addr: u64 = 0,
    next_avail: u16 = 0,
    next_used: u16 = 0,
    event_idx: bool = false,
    /// Set when the driver handed us an invalid chain; the device stops using the queue.
    broken: bool = false,
};
