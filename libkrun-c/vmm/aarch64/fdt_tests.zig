//! The FDT writer and the aarch64 device tree checked against an independent decoder: Debian's
//! device-tree compiler (`dtc -I dtb -O dts`, package device-tree-compiler, which
//! scripts/setup.sh installs) turns our blobs back into source text, compared with the text
//! expected. A missing dtc fails these tests (it is part of the setup), never skips them.
const std = @import("std");
const test_tmp = @import("../../test_tmp.zig");
const linux = std.os.linux;
const sys = @import("../../sys/linux.zig");
const testing = std.testing;
const Fdt = @import("Fdt.zig");
const devicetree = @import("devicetree.zig");
const layout = @import("layout.zig");

const dtc = "/usr/bin/dtc";

/// Decodes `blob` with dtc into `out` and returns the text, each tab as two spaces (Zig's
/// multiline literals cannot hold tabs); dtc's exit status must be 0.
fn decode(blob: []const u8, name: []const u8, out: []u8) ![]const u8 {
    sys.access(dtc, linux.X_OK) catch {
        std.debug.print("fdt tests: {s} is missing (apt-get install device-tree-compiler; scripts/setup.sh does)\n", .{dtc});
        return error.DtcMissing;
    };
    const dir = test_tmp.path("fdt-test");
    sys.mkdir(dir, 0o755) catch {}; // EEXIST: an earlier run's
    var in_buf: [128]u8 = undefined;
    var out_buf: [128]u8 = undefined;
    const in_path = try std.fmt.bufPrintSentinel(&in_buf, "{s}/{s}.{d}.dtb", .{ dir, name, sys.getpid() }, 0);
    const out_path = try std.fmt.bufPrintSentinel(&out_buf, "{s}/{s}.{d}.dts", .{ dir, name, sys.getpid() }, 0);
    defer sys.unlink(in_path) catch {};
    defer sys.unlink(out_path) catch {};
    try writeFile(in_path, blob);
    const argv = [_:null]?[*:0]const u8{ dtc, "-q", "-I", "dtb", "-O", "dts", "-o", out_path, in_path };
    const pid = try sys.fork();
    if (pid == 0) {
        // dtc's complaints about the deliberately broken blobs would read like failures.
        if (sys.open("/dev/null", .{ .ACCMODE = .RDWR })) |devnull| sys.dup2(devnull, 2) catch {} else |_| {}
        const envp = [_:null]?[*:0]const u8{};
        sys.execve(dtc, &argv, &envp) catch {};
        sys.exit_group(127);
    }
    const status = try sys.waitpid(pid, 0);
    if (status != 0) return error.DtcFailed;
    var raw: [16384]u8 = undefined;
    const text = try readFile(out_path, &raw);
    var n: usize = 0;
    for (text) |c| {
        const piece: []const u8 = if (c == '\t') "  " else &.{c};
        if (n + piece.len > out.len) return error.NoSpaceLeft;
        @memcpy(out[n..][0..piece.len], piece);
        n += piece.len;
    }
    return out[0..n];
}

fn writeFile(path: [*:0]const u8, data: []const u8) !void {
    const fd = sys.openMode(path, .{ .ACCMODE = .WRONLY, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o644) catch return error.OpenFailed;
    defer sys.close(fd);
    if ((sys.write(fd, data) catch 0) != data.len) return error.WriteFailed;
}

fn readFile(path: [*:0]const u8, out: []u8) ![]const u8 {
    const fd = sys.open(path, .{ .ACCMODE = .RDONLY, .CLOEXEC = true }) catch return error.OpenFailed;
    defer sys.close(fd);
    var n: usize = 0;
    while (n < out.len) {
        const r = sys.read(fd, out[n..]) catch return error.ReadFailed;
        if (r == 0) break;
        n += r;
    }
    return out[0..n];
}

test "fdt: dtc decodes every property type as written" {
    var f: Fdt = .{};
    try f.beginNode("");
    try f.propU32("#address-cells", 2);
    try f.propEmpty("flag");
    try f.propU64("big", 0x1_2345_6789);
    try f.propCells("cells", &.{ 1, 0xdeadbeef, 3 });
    try f.propU64s("reg", &.{ 0x8000_0000, 0x1000_0000 });
    try f.propString("model", "zkrun");
    try f.propStrings("compatible", &.{ "a,b", "c" });
    try f.prop("bytes", &.{ 0xab, 0xcd, 0xef });
    try f.beginNode("child@1000");
    try f.propU32("#address-cells", 1); // a repeated name: one strings entry
    try f.endNode();
    try f.endNode();
    var out: [4096]u8 = undefined;
    const blob = try f.finish(&out);
    try testing.expectEqual(f.totalSize(), blob.len);
    var text: [4096]u8 = undefined;
    // The decoder is real: a blob with a broken magic or a truncated one is refused.
    var broken: [4096]u8 = undefined;
    @memcpy(broken[0..blob.len], blob);
    broken[0] ^= 0xff;
    try testing.expectError(error.DtcFailed, decode(broken[0..blob.len], "badmagic", &text));
    try testing.expectError(error.DtcFailed, decode(blob[0 .. blob.len - 8], "truncated", &text));
    const dts = try decode(blob, "types", &text);
    try testing.expectEqualStrings(
        \\/dts-v1/;
        \\
        \\/ {
        \\  #address-cells = <0x02>;
        \\  flag;
        \\  big = <0x01 0x23456789>;
        \\  cells = <0x01 0xdeadbeef 0x03>;
        \\  reg = <0x00 0x80000000 0x00 0x10000000>;
        \\  model = "zkrun";
        \\  compatible = "a,b\0c";
        \\  bytes = [ab cd ef];
        \\
        \\  child@1000 {
        \\    #address-cells = <0x01>;
        \\  };
        \\};
        \\
    , dts);
}

test "fdt: the aarch64 machine (2 vCPUs, serial, two virtio-mmio devices, initrd) as dtc reads it" {
    const vcpus = 2;
    const ram = 512 << 20;
    const virtio = [_]devicetree.Device{
        .{ .base = layout.slotBase(1), .size = layout.device_slot_size, .spi = 1 },
        .{ .base = layout.slotBase(2), .size = layout.device_slot_size, .spi = 2 },
    };
    var f: Fdt = .{};
    var out: [8192]u8 = undefined;
    const blob = try devicetree.write(.{
        .ram_base = layout.dram_start,
        .ram_size = ram,
        .vcpus = vcpus,
        .gic_dist_base = layout.gic_dist_base,
        .gic_dist_size = layout.gic_dist_size,
        .gic_redist_base = layout.gicRedistBase(vcpus),
        .gic_redist_size = layout.gic_redist_size_per_cpu * vcpus,
        .serial = .{ .base = layout.slotBase(layout.serial_slot), .size = layout.device_slot_size, .spi = 0 },
        .virtio = &virtio,
        .cmdline = "console=hvc0 quiet \"arg with spaces\"",
        .initrd = .{ .start = 0x9000_0000, .size = 0x1234 },
    }, &f, &out);
    var text: [8192]u8 = undefined;
    const dts = try decode(blob, "machine", &text);
    try testing.expectEqualStrings(
        \\/dts-v1/;
        \\
        \\/ {
        \\  compatible = "linux,dummy-virt";
        \\  #address-cells = <0x02>;
        \\  #size-cells = <0x02>;
        \\  interrupt-parent = <0x01>;
        \\
        \\  cpus {
        \\    #address-cells = <0x01>;
        \\    #size-cells = <0x00>;
        \\
        \\    cpu@0 {
        \\      device_type = "cpu";
        \\      compatible = "arm,arm-v8";
        \\      enable-method = "psci";
        \\      reg = <0x00>;
        \\    };
        \\
        \\    cpu@1 {
        \\      device_type = "cpu";
        \\      compatible = "arm,arm-v8";
        \\      enable-method = "psci";
        \\      reg = <0x01>;
        \\    };
        \\  };
        \\
        \\  memory@80000000 {
        \\    device_type = "memory";
        \\    reg = <0x00 0x80000000 0x00 0x20000000>;
        \\  };
        \\
        \\  chosen {
        \\    bootargs = "console=hvc0 quiet \"arg with spaces\"";
        \\    linux,initrd-start = <0x00 0x90000000>;
        \\    linux,initrd-end = <0x00 0x90001234>;
        \\    stdout-path = "/uart@40000000";
        \\  };
        \\
        \\  intc@3fff0000 {
        \\    compatible = "arm,gic-v3";
        \\    #interrupt-cells = <0x03>;
        \\    interrupt-controller;
        \\    reg = <0x00 0x3fff0000 0x00 0x10000 0x00 0x3ffb0000 0x00 0x40000>;
        \\    phandle = <0x01>;
        \\    interrupts = <0x01 0x09 0x04>;
        \\  };
        \\
        \\  timer {
        \\    compatible = "arm,armv8-timer";
        \\    always-on;
        \\    interrupts = <0x01 0x0d 0x04 0x01 0x0e 0x04 0x01 0x0b 0x04 0x01 0x0a 0x04>;
        \\  };
        \\
        \\  psci {
        \\    compatible = "arm,psci-1.0\0arm,psci-0.2";
        \\    method = "hvc";
        \\  };
        \\
        \\  uart@40000000 {
        \\    compatible = "ns16550a";
        \\    reg = <0x00 0x40000000 0x00 0x1000>;
        \\    clock-frequency = <0x1c2000>;
        \\    interrupts = <0x00 0x00 0x01>;
        \\  };
        \\
        \\  virtio_mmio@40001000 {
        \\    compatible = "virtio,mmio";
        \\    reg = <0x00 0x40001000 0x00 0x1000>;
        \\    interrupts = <0x00 0x01 0x01>;
        \\    dma-coherent;
        \\  };
        \\
        \\  virtio_mmio@40002000 {
        \\    compatible = "virtio,mmio";
        \\    reg = <0x00 0x40002000 0x00 0x1000>;
        \\    interrupts = <0x00 0x02 0x01>;
        \\    dma-coherent;
        \\  };
        \\};
        \\
    , dts);
}

test "fdt: 16 vCPUs get KVM's MPIDR affinities; bad descriptions are errors" {
    var f: Fdt = .{};
    var out: [16384]u8 = undefined;
    const d: devicetree.Description = .{
        .ram_base = layout.dram_start,
        .ram_size = 1 << 30,
        .vcpus = 17,
        .gic_dist_base = layout.gic_dist_base,
        .gic_dist_size = layout.gic_dist_size,
        .gic_redist_base = layout.gicRedistBase(17),
        .gic_redist_size = layout.gic_redist_size_per_cpu * 17,
        .cmdline = "",
    };
    const blob = try devicetree.write(d, &f, &out);
    var text: [16384]u8 = undefined;
    const dts = try decode(blob, "cpus", &text);
    // vCPU 16: Aff1 = 1, Aff0 = 0.
    try testing.expect(std.mem.indexOf(u8, dts, "cpu@10 {") != null);
    try testing.expect(std.mem.indexOf(u8, dts, "reg = <0x100>;") != null);
    try testing.expect(std.mem.indexOf(u8, dts, "cpu@f {") != null);

    var bad = d;
    bad.vcpus = 0;
    var f2: Fdt = .{};
    try testing.expectError(error.InvalidDescription, devicetree.write(bad, &f2, &out));
    bad = d;
    bad.cmdline = "a\x00b";
    try testing.expectError(error.InvalidDescription, devicetree.write(bad, &f2, &out));
    bad = d;
    bad.ram_base = std.math.maxInt(u64) - 10;
    try testing.expectError(error.InvalidDescription, devicetree.write(bad, &f2, &out));
    var small: [64]u8 = undefined;
    var f3: Fdt = .{};
    try testing.expectError(error.FdtTooLarge, devicetree.write(d, &f3, &small));
}
