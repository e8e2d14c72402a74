//! Per-vCPU CPUID: KVM_GET_SUPPORTED_CPUID's table, adjusted so each vCPU sees its own APIC id,
//! the VM's CPU count and a hypervisor, and nothing that contradicts another leaf (libkrun's
//! src/cpuid, Firecracker-derived). XSAVE leaf 0xD is passed as KVM computed it, which keeps its
//! sizes consistent with the XCR0 bits KVM supports; KVM recomputes the current-size fields
//! itself when the guest writes XCR0.
const std = @import("std");
const assert = std.debug.assert;
const abi = @import("../kvm_abi.zig");

pub const Topology = struct {
    /// This vCPU's index = its APIC id.
    id: u32,
    count: u32,
    nested_virt: bool = false,
};

pub const leaf1_ecx_vmx: u32 = 1 << 5;
pub const leaf1_ecx_tsc_deadline: u32 = 1 << 24;
pub const leaf1_ecx_hypervisor: u32 = 1 << 31;
pub const leaf1_edx_htt: u32 = 1 << 28;
pub const ext1_ecx_svm: u32 = 1 << 2;
/// CLFLUSH line size in 8-byte units: 64 bytes.
const clflush_line: u32 = 8;

const level_type_smt: u32 = 1;
const level_type_core: u32 = 2;

/// Bits needed to hold `count` distinct ids (ceil(log2(count))).
pub fn idBits(count: u32) u32 {
    assert(count > 0);
    return if (count == 1) 0 else 32 - @clz(count - 1);
}

/// Adjusts `entries` (KVM's supported table, copied per vCPU) in place.
pub fn filter(entries: []abi.kvm_cpuid_entry2, topo: Topology) void {
    assert(topo.count > 0 and topo.id < topo.count and topo.count <= 255);
    for (entries) |*e| switch (e.function) {
        0x1 => leaf1(e, topo),
        0x4 => leaf4(e, topo),
        0xA => e.* = .{ .function = 0xA, .index = e.index, .flags = e.flags }, // no PMU
        0xB, 0x1F => extendedTopology(e, topo),
        0x8000_0001 => if (!topo.nested_virt) {
            e.ecx &= ~ext1_ecx_svm;
        },
        0x8000_0008 => {
            // AMD: NC (cores - 1) and the APIC id size.
            e.ecx = (e.ecx & ~@as(u32, 0xf0ff)) | (topo.count - 1) | (idBits(topo.count) << 12);
        },
        0x8000_001E => {
            e.eax = topo.id; // extended APIC id
            e.ebx = (e.ebx & ~@as(u32, 0xffff)) | topo.id; // one thread per core; core id
            e.ecx = 0; // node 0, one node
        },
        else => {},
    };
}

fn leaf1(e: *abi.kvm_cpuid_entry2, topo: Topology) void {
    e.ebx = (topo.id << 24) | (@as(u32, @min(topo.count, 255)) << 16) | (clflush_line << 8) | (e.ebx & 0xff);
    e.ecx |= leaf1_ecx_hypervisor | leaf1_ecx_tsc_deadline;
    if (!topo.nested_virt) e.ecx &= ~leaf1_ecx_vmx;
    if (topo.count > 1) e.edx |= leaf1_edx_htt else e.edx &= ~leaf1_edx_htt;
}

/// Intel deterministic cache parameters: cores per package and threads sharing each cache.
fn leaf4(e: *abi.kvm_cpuid_entry2, topo: Topology) void {
    const cache_type = e.eax & 0x1f;
    if (cache_type == 0) return;
    const level = (e.eax >> 5) & 0x7;
    const sharing: u32 = if (level >= 3) topo.count - 1 else 0;
    const cores: u32 = @as(u32, @min(topo.count - 1, 63));
    e.eax = (e.eax & 0x3ff) | (@as(u32, @min(sharing, 0xfff)) << 14) | (cores << 26);
}

/// Leaves 0xB/0x1F: one thread per core, `count` cores, x2APIC id = APIC id.
fn extendedTopology(e: *abi.kvm_cpuid_entry2, topo: Topology) void {
    e.edx = topo.id;
    switch (e.index) {
        0 => {
            e.eax = 0;
            e.ebx = 1;
            e.ecx = (level_type_smt << 8) | 0;
        },
        1 => {
            e.eax = idBits(topo.count);
            e.ebx = topo.count;
            e.ecx = (level_type_core << 8) | 1;
        },
        else => {
            e.eax = 0;
            e.ebx = 0;
            e.ecx = e.index & 0xff;
        },
    }
}

const testing = std.testing;

fn sample() [9]abi.kvm_cpuid_entry2 {
    return .{
        .{ .function = 0, .eax = 0x1f, .ebx = 0x756e6547 },
        .{ .function = 1, .eax = 0x806f8, .ebx = 0x00010800 | 0x77, .ecx = 0x7ffafbff | leaf1_ecx_vmx, .edx = 0x0f8bfbff },
        .{ .function = 4, .index = 0, .eax = 0x1c004121 }, // L1d
        .{ .function = 4, .index = 3, .eax = 0x1c03c163 }, // L3
        .{ .function = 0xA, .eax = 0x07300805, .ebx = 0x7, .edx = 0x603 },
        .{ .function = 0xB, .index = 0, .flags = 1, .eax = 1, .ebx = 2, .ecx = 0x100, .edx = 9 },
        .{ .function = 0xB, .index = 1, .flags = 1, .eax = 7, .ebx = 64, .ecx = 0x201, .edx = 9 },
        .{ .function = 0xB, .index = 2, .flags = 1, .eax = 0, .ebx = 0, .ecx = 0x2, .edx = 9 },
        .{ .function = 0xD, .index = 0, .eax = 0x7, .ebx = 0x340, .ecx = 0x340 },
    };
}

test "leaf 1: APIC id, logical count, CLFLUSH, hypervisor, HTT, no VMX" {
    var t = sample();
    filter(&t, .{ .id = 2, .count = 3 });
    try testing.expectEqual(@as(u32, 0x02030877), t[1].ebx);
    try testing.expect(t[1].ecx & leaf1_ecx_hypervisor != 0);
    try testing.expect(t[1].ecx & leaf1_ecx_tsc_deadline != 0);
    try testing.expect(t[1].ecx & leaf1_ecx_vmx == 0);
    try testing.expect(t[1].edx & leaf1_edx_htt != 0);
    try testing.expectEqual(@as(u32, 0x806f8), t[1].eax);

    var one = sample();
    filter(&one, .{ .id = 0, .count = 1, .nested_virt = true });
    try testing.expect(one[1].edx & leaf1_edx_htt == 0);
    try testing.expect(one[1].ecx & leaf1_ecx_vmx != 0);
    try testing.expectEqual(@as(u32, 0x00010877), one[1].ebx);
}

test "leaves 4, 0xA, 0xB: topology of `count` single-thread cores, no PMU, 0xD untouched" {
    var t = sample();
    filter(&t, .{ .id = 1, .count = 4 });
    try testing.expectEqual(@as(u32, 3), t[2].eax >> 26);
    try testing.expectEqual(@as(u32, 0), (t[2].eax >> 14) & 0xfff);
    try testing.expectEqual(@as(u32, 0x121), t[2].eax & 0x3ff);
    try testing.expectEqual(@as(u32, 3), (t[3].eax >> 14) & 0xfff);
    try testing.expectEqual(@as(u32, 0), t[4].eax | t[4].ebx | t[4].ecx | t[4].edx);
    try testing.expectEqual(@as(u32, 0xA), t[4].function);
    // SMT level: 1 thread, shift 0; core level: 4 cores, shift 2; x2APIC id everywhere.
    try testing.expectEqual(@as(u32, 0), t[5].eax);
    try testing.expectEqual(@as(u32, 1), t[5].ebx);
    try testing.expectEqual(@as(u32, 0x100), t[5].ecx);
    try testing.expectEqual(@as(u32, 2), t[6].eax);
    try testing.expectEqual(@as(u32, 4), t[6].ebx);
    try testing.expectEqual(@as(u32, 0x201), t[6].ecx);
    try testing.expectEqual(@as(u32, 1), t[6].edx);
    try testing.expectEqual(@as(u32, 2), t[7].ecx);
    try testing.expectEqual(@as(u32, 0), t[7].ebx);
    try testing.expectEqual(sample()[8], t[8]);
}

test "id bits" {
    try testing.expectEqual(@as(u32, 0), idBits(1));
    try testing.expectEqual(@as(u32, 1), idBits(2));
    try testing.expectEqual(@as(u32, 2), idBits(3));
    try testing.expectEqual(@as(u32, 2), idBits(4));
    try testing.expectEqual(@as(u32, 4), idBits(16));
}
