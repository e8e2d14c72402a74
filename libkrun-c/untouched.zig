//! Allocations whose pages cost nothing until they are used: large tables and buffers a VM may
//! never fill (virtio-fs's inode and handle tables, its 1 MiB request buffers). The reason:
//! std.mem.Allocator's alloc writes 0xAA over every new allocation in safe builds (ReleaseSafe
//! is what we ship) and again on free, so each such table used to cost its full size in
//! resident memory and page faults at every VM start (about 6 MiB per VM). These go to the
//! same allocator's raw calls, which skip that fill: malloc hands out large blocks as fresh
//! anonymous mappings, faulted page by page on first use. The memory is undefined, as with
//! alloc: callers initialize what they use. `allocZeroed` is the exception: whole pages from
//! the OS, zero until written.
const std = @import("std");
const Allocator = std.mem.Allocator;

pub fn alloc(gpa: Allocator, comptime T: type, n: usize) Allocator.Error![]T {
    if (n == 0 or @sizeOf(T) == 0) return &.{};
    const bytes = std.math.mul(usize, @sizeOf(T), n) catch return error.OutOfMemory;
    const p = gpa.rawAlloc(bytes, .of(T), @returnAddress()) orelse return error.OutOfMemory;
    const items: [*]T = @ptrCast(@alignCast(p));
    return items[0..n];
}

/// Frees what `alloc` returned (same allocator), without touching its pages first.
pub fn free(gpa: Allocator, slice: anytype) void {
    const T = @typeInfo(@TypeOf(slice)).pointer.child;
    const bytes = std.mem.sliceAsBytes(slice);
    if (bytes.len == 0) return;
    gpa.rawFree(@constCast(bytes), .of(T), @returnAddress());
}

/// Zero-filled, for tables whose empty entries are zero (virtio-fs's inode index): fresh
/// anonymous mappings from std.heap.page_allocator's raw calls, which the OS zero-fills page by
/// page on first touch. Not from the caller's allocator: its blocks may be reused, not zero.
pub fn allocZeroed(comptime T: type, n: usize) Allocator.Error![]T {
    return alloc(std.heap.page_allocator, T, n);
}

/// Frees what `allocZeroed` returned.
pub fn freeZeroed(slice: anytype) void {
    free(std.heap.page_allocator, slice);
}

test "alloc/free: sizes and alignment the allocator checks, empty slices" {
    const gpa = std.testing.allocator;
    const a = try alloc(gpa, u64, 1000);
    a[0] = 1;
    a[999] = 2;
    free(gpa, a);
    const e = try alloc(gpa, u32, 0);
    try std.testing.expectEqual(0, e.len);
    free(gpa, e);
    try std.testing.expectError(error.OutOfMemory, alloc(gpa, u64, std.math.maxInt(usize) / 4));
}

test "allocZeroed: zero, writable, freed without a touch" {
    const a = try allocZeroed(u32, 100_000);
    defer freeZeroed(a);
    for (a) |v| try std.testing.expectEqual(0, v);
    a[99_999] = 7;
    try std.testing.expectEqual(7, a[99_999]);
    try std.testing.expectEqual(0, (try allocZeroed(u32, 0)).len);
}
