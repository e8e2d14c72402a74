//! zkrun's build: libkrun.so.1 (the VMM behind libkrun's C ABI), libkrunfw.so.5 (our kernel
//! bundled as data), the guest init, examples, unit tests, fuzz targets (tests/fuzz/) and test
//! harnesses (tests/zig/).
//! `zig build -Dkernel=<vmlinux>` is what `make build` runs; the kernel comes from
//! kernelfw/build-kernel.sh, which caches it outside the repo.
const std = @import("std");
const builtin = @import("builtin");

const zig_required = std.SemanticVersion{ .major = 0, .minor = 17, .patch = 1 };
comptime {
    if (builtin.zig_version.order(zig_required) != .eq) @compileError(
        "zkrun needs Zig 0.17.1 exactly, this is " ++ builtin.zig_version_string ++
            ". Run `make setup` (it installs PyPI ziglang==0.17.1 into .tools/zig) and use " ++
            ".tools/zig/bin/zig, or `python3 -m pip install ziglang==0.17.1`.",
    );
}

/// libkrun's soname is libkrun.so.1; the minor/patch follow the libkrun release we match.
pub const libkrun_version = std.SemanticVersion{ .major = 1, .minor = 17, .patch = 0 };
/// libkrunfw's ABI version is 5 (soname libkrunfw.so.5), as libkrun expects.
pub const libkrunfw_version = std.SemanticVersion{ .major = 5, .minor = 4, .patch = 0 };

pub fn build(b: *std.Build) void {
    const steps = .{
        .@"test" = b.step("test", "Run the Zig unit tests (tier 1)"),
        .fmt_check = b.step("fmt-check", "Check that every Zig file is zig-fmt clean"),
        .examples = b.step("examples", "Build the C examples against the installed header/library"),
        .fuzz = b.step("fuzz", "Build the fuzz targets"),
        .harness = b.step("harness", "Build the test harnesses and benches tests/ scripts run"),
        .vmm_driver = b.step("vmm-driver", "Build the VMM test driver (zig-out/vmm-test/vmm_driver)"),
        .aarch64_boot = b.step("aarch64-boot", "Build the aarch64 boot harness (zig-out/aarch64-linux/bin/aarch64-boot)"),
        .test_guests = b.step("test-guests", "Build the static guest programs tests/ scripts boot (zig-out/test-guests/)"),
        .macos_devices = b.step("macos-devices", "Build the virtio devices alone for aarch64-macos (zig-out/obj/macos-devices.o)"),
    };
    // The baseline CPU of the arch, not this machine's: libkrun.so is a library others load on
    // other machines, and the test host (QEMU TCG -cpu max) has no AVX-512, so a native build on an
    // AVX-512 machine died there with SIGILL in every VM test. -Dcpu=native restores it.
    const target = b.standardTargetOptions(.{ .default_target = .{ .cpu_model = .baseline } });
    // Default to an optimized build that keeps safety checks: zig's standard option would give
    // Debug unless --release is passed, and libkrun.so is what users run.
    const optimize = b.option(std.builtin.OptimizeMode, "optimize", "Optimization mode (default: safe)") orelse .safe;
    const kernel_path = b.option([]const u8, "kernel", "vmlinux to bundle into libkrunfw.so");
    const kernel_aarch64 = b.option([]const u8, "kernel-aarch64", "arm64 Image (kernelfw/build-kernel.sh --arch aarch64) to bundle into zig-out/aarch64-linux/lib/libkrunfw.so");
    // Release builds ship stripped; -Dstrip=false keeps the symbols for objdump and gdb.
    const strip = b.option(bool, "strip", "Strip libkrun.so (default: all but Debug)") orelse (optimize != .debug);

    const fmt = b.addFmt(.{
        .paths = &.{ b.path("build.zig"), b.path("libkrun-c"), b.path("kernelfw"), b.path("tests"), b.path("examples") },
        .check = true,
    });
    steps.fmt_check.dependOn(&fmt.step);

    const init_bin = buildInit(b, target, optimize);
    const libkrun = buildLibkrun(b, target, optimize, strip, init_bin);
    buildExamples(b, steps.examples, libkrun);
    buildUnitTests(b, steps.@"test", target, init_bin);
    buildKernelfwTests(b, steps.@"test", target);
    buildFuzzers(b, steps.fuzz, steps.@"test", target);
    buildHarnesses(b, steps.harness, steps.@"test", target);
    buildTestDrivers(b, steps.vmm_driver, steps.aarch64_boot, target);
    buildTestGuests(b, steps.test_guests);
    buildMacosDevices(b, steps.macos_devices);
    steps.harness.dependOn(&b.addInstallBinFile(init_bin, "init.krun").step); // for init-qemu.sh
    // A cross build for aarch64 (-Dtarget=aarch64-linux-gnu) bundles -Dkernel-aarch64 beside
    // its libkrun.so; a native build puts it in zig-out/aarch64-linux/lib.
    // -Dtarget=aarch64-macos bundles it as libkrunfw.5.dylib beside libkrun.1.dylib.
    const cross_aarch64 = target.result.cpu.arch == .aarch64;
    if (kernel_path) |path| if (!cross_aarch64) buildLibkrunfw(b, steps.@"test", target, optimize, path, null);
    if (kernel_aarch64) |path| {
        const t = if (target.result.os.tag == .macos) target else b.resolveTargetQuery(.{ .cpu_arch = .aarch64, .os_tag = .linux, .abi = .gnu });
        buildLibkrunfw(b, steps.@"test", t, optimize, path, if (cross_aarch64) null else "aarch64-linux/lib");
    }
}

/// The guest init: static, no libc, Linux on the target's architecture (the guest's).
/// Embedded into libkrun.so.
fn buildInit(b: *std.Build, target: std.Build.ResolvedTarget, optimize: std.builtin.OptimizeMode) std.Build.LazyPath {
    const exe = b.addExecutable(.{
        .name = "init.krun",
        .root_module = b.createModule(.{
            .root_source_file = b.path("libkrun-c/init/main.zig"),
            .target = b.resolveTargetQuery(.{ .cpu_arch = target.result.cpu.arch, .os_tag = .linux, .abi = .none }),
            .optimize = if (optimize == .debug) .safe else optimize,
            .strip = true,
            .single_threaded = true,
        }),
    });
    exe.root_module.addImport("init_protocol", initProtocolModule(b));
    exe.root_module.addImport("sys_errno", sysErrnoModule(b));
    b.installArtifact(exe);
    return exe.getEmittedBin();
}

fn buildLibkrun(
    b: *std.Build,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    strip: bool,
    init_bin: std.Build.LazyPath,
) *std.Build.Step.Compile {
    const mod = b.createModule(.{
        .root_source_file = b.path("libkrun-c/root.zig"),
        .target = target,
        .optimize = optimize,
        .link_libc = true,
        .pic = true,
        // Release builds keep their safety checks (the guest is hostile) but ship without
        // debug info: 16 MiB unstripped vs ~3.8 MiB stripped.
        .strip = strip,
    });
    mod.addAnonymousImport("init_bin", .{ .root_source_file = init_bin });
    mod.addImport("guest_memory", guestMemoryModule(b));
    mod.addImport("kernel_elf", kernelElfModule(b));
    mod.addImport("init_protocol", initProtocolModule(b));
    mod.addImport("sys_errno", sysErrnoModule(b));
    const lib = b.addLibrary(.{
        .linkage = .dynamic,
        .name = "krun",
        .root_module = mod,
        .version = libkrun_version,
    });
    // No C is compiled into libkrun.so, so the UBSan runtime would only add __ubsan_* exports
    // (in Debug) beside the krun_* ABI.
    lib.bundle_ubsan_rt = false;
    // macOS: libkrun's install name (clients dlopen "libkrun.1.dylib"; Zig's default would be
    // @rpath/libkrun.dylib).
    if (target.result.os.tag == .macos) lib.install_name = "libkrun.1.dylib";
    b.installArtifact(lib);
    b.installFile("include/libkrun.h", "include/libkrun.h");
    // The install prefix is not known while configuring, so the .pc file locates itself.
    const pc = b.addWriteFiles().add("libkrun.pc", b.fmt(
        \\prefix=${{pcfiledir}}/../..
        \\libdir=${{prefix}}/lib
        \\includedir=${{prefix}}/include
        \\
        \\Name: libkrun
        \\Description: KVM-based process isolation (zkrun, libkrun rebuilt in Zig)
        \\Version: {d}.{d}.{d}
        \\Libs: -L${{libdir}} -lkrun
        \\Cflags: -I${{includedir}}
        \\
    , .{ libkrun_version.major, libkrun_version.minor, libkrun_version.patch }));
    b.getInstallStep().dependOn(&b.addInstallFile(pc, "lib/pkgconfig/libkrun.pc").step);
    return lib;
}

fn buildUnitTests(
    b: *std.Build,
    test_step: *std.Build.Step,
    target: std.Build.ResolvedTarget,
    init_bin: std.Build.LazyPath,
) void {
    const mod = b.createModule(.{
        .root_source_file = b.path("libkrun-c/unit_tests.zig"),
        .target = target,
        .optimize = .debug,
        .link_libc = true,
    });
    mod.addAnonymousImport("init_bin", .{ .root_source_file = init_bin });
    mod.addImport("guest_memory", guestMemoryModule(b));
    mod.addImport("kernel_elf", kernelElfModule(b));
    mod.addImport("init_protocol", initProtocolModule(b));
    mod.addImport("sys_errno", sysErrnoModule(b));
    const tests = b.addTest(.{ .name = "unit", .root_module = mod });
    test_step.dependOn(&b.addRunArtifact(tests).step);
    // The same virtio-fs unit tests on the posix (macOS) backend: posix_runner.zig selects it.
    const fs_posix = b.addTest(.{ .name = "fs-posix-unit", .root_module = mod.owner.createModule(.{
        .root_source_file = b.path("libkrun-c/fs_posix_tests.zig"),
        .target = target,
        .optimize = .debug,
        .link_libc = true,
    }), .test_runner = .{ .path = b.path("tests/zig/fs/posix_runner.zig"), .mode = .simple } });
    fs_posix.root_module.addAnonymousImport("init_bin", .{ .root_source_file = init_bin });
    fs_posix.root_module.addImport("guest_memory", guestMemoryModule(b));
    fs_posix.root_module.addImport("kernel_elf", kernelElfModule(b));
    fs_posix.root_module.addImport("init_protocol", initProtocolModule(b));
    fs_posix.root_module.addImport("sys_errno", sysErrnoModule(b));
    test_step.dependOn(&b.addRunArtifact(fs_posix).step);
    const memory_tests = b.addTest(.{ .name = "guest-memory", .root_module = b.createModule(.{
        .root_source_file = b.path("libkrun-c/memory/GuestMemory.zig"),
        .target = target,
        .optimize = .debug,
    }) });
    test_step.dependOn(&b.addRunArtifact(memory_tests).step);
    const protocol_tests = b.addTest(.{ .name = "init-protocol", .root_module = b.createModule(.{
        .root_source_file = b.path("libkrun-c/protocol/init.zig"),
        .target = target,
        .optimize = .debug,
    }) });
    test_step.dependOn(&b.addRunArtifact(protocol_tests).step);
    const errno_tests = b.addTest(.{ .name = "sys-errno", .root_module = b.createModule(.{
        .root_source_file = b.path("libkrun-c/sys/errno.zig"),
        .target = target,
        .optimize = .debug,
    }) });
    test_step.dependOn(&b.addRunArtifact(errno_tests).step);
}

/// The exec-config protocol between the VMM and the guest init (libkrun-c/protocol/init.zig) as
/// the module `init_protocol`: one file, imported by both sides (libkrun.so and init.krun).
fn initProtocolModule(b: *std.Build) *std.Build.Module {
    return b.createModule(.{ .root_source_file = b.path("libkrun-c/protocol/init.zig") });
}

/// The errno convention of the three syscall layers (libkrun-c/sys/errno.zig) as the module
/// `sys_errno`: one errno <-> Zig error mapping for the host process's layer
/// (libkrun-c/sys/linux.zig, imported by path), the virtio-fs server and the static init.
fn sysErrnoModule(b: *std.Build) *std.Build.Module {
    return b.createModule(.{ .root_source_file = b.path("libkrun-c/sys/errno.zig") });
}

/// Guest physical memory (libkrun-c/memory/GuestMemory.zig) as the module `guest_memory`: the
/// VMM and the devices both import it, and neither folder owns it. A fresh module per user: it
/// inherits that compilation's target and optimize mode.
fn guestMemoryModule(b: *std.Build) *std.Build.Module {
    return b.createModule(.{ .root_source_file = b.path("libkrun-c/memory/GuestMemory.zig") });
}

/// ELF64 kernel files (libkrun-c/elf.zig) as the module `kernel_elf`: the one parser, for the
/// VMM's loader, krun_set_kernel's check and the kernel bundler (kernelfw/ is its own root).
fn kernelElfModule(b: *std.Build) *std.Build.Module {
    return b.createModule(.{ .root_source_file = b.path("libkrun-c/elf.zig") });
}

// ---- C examples (examples/*.c) -------------------------------------------------------------
/// Each example is compiled by the system C compiler against the *installed* header and
/// library, as a user would (`cc x.c -I<prefix>/include -L<prefix>/lib -lkrun`), with -Werror
/// so a header that makes C warn fails the build. The rpath lets zig-out/bin/x find
/// zig-out/lib/libkrun.so.1 and libkrunfw.so.5.
fn buildExamples(b: *std.Build, step: *std.Build.Step, libkrun: *std.Build.Step.Compile) void {
    const names = [_][]const u8{ "minimal", "chroot_vm" };
    for (names) |name| {
        const cc = b.addSystemCommand(&.{ "cc", "-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o" });
        const exe = cc.addOutputFileArg(name);
        cc.addFileArg(b.path(b.fmt("examples/{s}.c", .{name})));
        cc.addPrefixedDirectoryArg("-I", .{ .relative = .{ .base = .install_include } });
        cc.addPrefixedDirectoryArg("-L", .{ .relative = .{ .base = .install_lib } });
        // DT_RPATH rather than RUNPATH: it also covers libkrun.so's dlopen("libkrunfw.so.5").
        cc.addArgs(&.{ "-lkrun", "-Wl,--disable-new-dtags,-rpath,$ORIGIN/../lib" });
        // Rebuild when the header or the library changes (the install dirs are not hashed).
        cc.addFileInput(b.path("include/libkrun.h"));
        cc.addFileInput(libkrun.getEmittedBin());
        cc.step.dependOn(b.getInstallStep());
        step.dependOn(&b.addInstallBinFile(exe, name).step);
    }
}

// ---- libkrunfw (kernelfw/) ----------------------------------------------------------------
/// The bundler's unit tests (kernelfw/ is its own module root): they build their ELF files
/// themselves, so they run with or without -Dkernel.
fn buildKernelfwTests(b: *std.Build, test_step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const tests = b.addTest(.{ .name = "kernelfw", .root_module = b.createModule(.{
        .root_source_file = b.path("kernelfw/bundler.zig"),
        .target = target,
        .optimize = .debug,
    }) });
    tests.root_module.addImport("kernel_elf", kernelElfModule(b));
    const elf_tests = b.addTest(.{ .name = "kernel-elf", .root_module = b.createModule(.{
        .root_source_file = b.path("libkrun-c/elf.zig"),
        .target = target,
        .optimize = .debug,
    }) });
    test_step.dependOn(&b.addRunArtifact(elf_tests).step);
    test_step.dependOn(&b.addRunArtifact(tests).step);
}

/// libkrunfw.so.5.4.0 (soname libkrunfw.so.5): the bundler turns the vmlinux into the bundle at
/// build time, and kernelfw/libkrunfw.zig embeds it as a 64 KiB-aligned exported array.
/// `install_dir` (relative to zig-out) puts a cross-built one beside the native one.
fn buildLibkrunfw(
    b: *std.Build,
    test_step: *std.Build.Step,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    kernel_path: []const u8,
    install_dir: ?[]const u8,
) void {
    _ = test_step; // the bundler tests hang on it in buildKernelfwTests, -Dkernel or not
    const bundler = b.addExecutable(.{ .name = "kernelfw-bundler", .root_module = b.createModule(.{
        .root_source_file = b.path("kernelfw/bundler.zig"),
        .target = b.graph.host,
        .optimize = .safe,
    }) });
    bundler.root_module.addImport("kernel_elf", kernelElfModule(b));
    const run = b.addRunArtifact(bundler);
    run.addFileArg(.{ .cwd_relative = kernel_path });
    const bundle = run.addOutputFileArg("kernel.bundle");
    const meta = run.addOutputFileArg("kernel_meta.zig");

    const mod = b.createModule(.{
        .root_source_file = b.path("kernelfw/libkrunfw.zig"),
        .target = target,
        .optimize = if (optimize == .debug) .safe else optimize,
        .strip = true,
        .pic = true,
    });
    mod.addAnonymousImport("kernel_bundle", .{ .root_source_file = bundle });
    mod.addAnonymousImport("kernel_meta", .{ .root_source_file = meta });
    const lib = b.addLibrary(.{
        .linkage = .dynamic,
        .name = "krunfw",
        .root_module = mod,
        .version = libkrunfw_version,
    });
    if (target.result.os.tag == .macos) lib.install_name = "libkrunfw.5.dylib";
    if (install_dir) |dir| {
        b.getInstallStep().dependOn(&b.addInstallArtifact(lib, .{ .dest_dir = .{ .override = .{ .custom = dir } } }).step);
    } else b.installArtifact(lib);
}

// ---- fuzzers, harnesses, test guests and benches (tests/fuzz/, tests/zig/) ----------------
/// libkrun-c/'s internals as the named module `zkrun` (root libkrun-c/zkrun.zig), for code
/// outside the product folder. A fresh module per artifact: it inherits that artifact's target,
/// optimize mode and libc.
fn zkrunModule(b: *std.Build) *std.Build.Module {
    const mod = b.createModule(.{ .root_source_file = b.path("libkrun-c/zkrun.zig") });
    mod.addImport("guest_memory", guestMemoryModule(b));
    mod.addImport("kernel_elf", kernelElfModule(b));
    mod.addImport("init_protocol", initProtocolModule(b));
    mod.addImport("sys_errno", sysErrnoModule(b));
    return mod;
}

/// The test-side FUSE driver (tests/zig/fs/Driver.zig) as `fs_driver`, for the fs fuzzer.
fn fsDriverModule(b: *std.Build, zkrun: *std.Build.Module) *std.Build.Module {
    const mod = b.createModule(.{ .root_source_file = b.path("tests/zig/fs/Driver.zig") });
    mod.addImport("zkrun", zkrun);
    return mod;
}

/// A module rooted at `path` (under tests/) that imports `zkrun`.
fn harnessModule(
    b: *std.Build,
    path: []const u8,
    target: std.Build.ResolvedTarget,
    optimize: std.builtin.OptimizeMode,
    link_libc: bool,
) *std.Build.Module {
    const mod = b.createModule(.{
        .root_source_file = b.path(path),
        .target = target,
        .optimize = optimize,
        .link_libc = link_libc,
    });
    const zkrun = zkrunModule(b);
    mod.addImport("zkrun", zkrun);
    mod.addImport("fs_driver", fsDriverModule(b, zkrun));
    return mod;
}

/// The fuzz targets (`zig build fuzz` → zig-out/bin/fuzz-NAME, ReleaseSafe: a bounds, overflow
/// or assertion failure is a crash; smoke runs: tests/native/*fuzz*.sh). Their inline tests run
/// in `zig build test`.
fn buildFuzzers(b: *std.Build, fuzz_step: *std.Build.Step, test_step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const fuzzers = [_]struct { name: []const u8, libc: bool }{
        .{ .name = "blk", .libc = true }, // request decoder, device, qcow2 reader
        .{ .name = "fs", .libc = true }, // FUSE decoder and server on real files
        .{ .name = "init", .libc = false }, // init configuration decoders
        .{ .name = "queue", .libc = false }, // virtqueue walker
        .{ .name = "vsock", .libc = false }, // vsock packets, TSI decoders
        .{ .name = "net", .libc = false }, // virtio-net frames, both directions
    };
    for (fuzzers) |f| {
        const path = b.fmt("tests/fuzz/{s}.zig", .{f.name});
        const exe = b.addExecutable(.{
            .name = b.fmt("fuzz-{s}", .{f.name}),
            .root_module = harnessModule(b, path, target, .safe, f.libc),
        });
        fuzz_step.dependOn(&b.addInstallArtifact(exe, .{}).step);
        const tests = b.addTest(.{
            .name = b.fmt("fuzz-{s}-test", .{f.name}),
            .root_module = harnessModule(b, path, target, .debug, f.libc),
        });
        test_step.dependOn(&b.addRunArtifact(tests).step);
    }
}

/// Harnesses, test guests and benches that tests/ scripts run (`zig build harness`):
/// encode-cli (the VMM's exec-config encoder as a CLI, tests/native/init-qemu.sh), bench-fs
/// (ReleaseFast, tests/bench/fs.bench.sh), bench-blk (ReleaseFast, tests/bench/blk.bench.sh) and test-fs (the virtio-fs server tests and hostile
/// harness, tests/native/fs-hostile.sh; also run by `zig build test`).
fn buildHarnesses(b: *std.Build, harness_step: *std.Build.Step, test_step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const encode_cli = b.addExecutable(.{
        .name = "encode-cli",
        .root_module = harnessModule(b, "tests/zig/encode_cli.zig", target, .safe, false),
    });
    harness_step.dependOn(&b.addInstallArtifact(encode_cli, .{}).step);
    const bench_fs = b.addExecutable(.{
        .name = "bench-fs",
        .root_module = harnessModule(b, "tests/zig/fs/bench.zig", target, .fast, true),
    });
    harness_step.dependOn(&b.addInstallArtifact(bench_fs, .{}).step);
    const bench_blk = b.addExecutable(.{
        .name = "bench-blk",
        .root_module = harnessModule(b, "tests/zig/blk/bench.zig", target, .fast, true),
    });
    harness_step.dependOn(&b.addInstallArtifact(bench_blk, .{}).step);
    const test_fs = b.addTest(.{
        .name = "test-fs",
        .root_module = harnessModule(b, "tests/zig/fs/tests.zig", target, .debug, true),
    });
    harness_step.dependOn(&b.addInstallArtifact(test_fs, .{}).step);
    test_step.dependOn(&b.addRunArtifact(test_fs).step);
    // The same harness on the posix (macOS) backend (tests/native/fs-posix.sh).
    const test_fs_posix = b.addTest(.{
        .name = "test-fs-posix",
        .root_module = harnessModule(b, "tests/zig/fs/tests.zig", target, .debug, true),
        .test_runner = .{ .path = b.path("tests/zig/fs/posix_runner.zig"), .mode = .simple },
    });
    harness_step.dependOn(&b.addInstallArtifact(test_fs_posix, .{}).step);
    test_step.dependOn(&b.addRunArtifact(test_fs_posix).step);
    checkCapiPrototypes(b, test_step, target);
}

/// The programs that drive the VMM's pieces without the C API, run in the test hosts (both
/// steps are kept out of `harness`: a ReleaseSafe VMM compile that only VM tests need).
/// vmm-driver: the Machine (tests/vm/boot/vmm_driver.zig, for tests/vm/1x-vmm-*, tests/native/
/// vmm-kvm.sh; built by tests/vm/boot/build-driver.sh) for the build's target, whose default CPU
/// is the baseline (the x86_64 test host's TCG CPU has no AVX-512).
/// aarch64-boot: the aarch64 backend's boot path (tests/aarch64/boot-harness.zig, for
/// tests/aarch64/10-boot.test.sh; built by its prepare script), cross-built for aarch64-linux.
fn buildTestDrivers(b: *std.Build, driver_step: *std.Build.Step, aarch64_step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const driver = b.addExecutable(.{
        .name = "vmm_driver",
        .root_module = harnessModule(b, "tests/vm/boot/vmm_driver.zig", target, .safe, true),
    });
    driver_step.dependOn(&b.addInstallArtifact(driver, .{ .dest_dir = .{ .override = .{ .custom = "vmm-test" } } }).step);
    const aarch64 = b.resolveTargetQuery(.{ .cpu_arch = .aarch64, .os_tag = .linux });
    const boot = b.addExecutable(.{
        .name = "aarch64-boot",
        .root_module = harnessModule(b, "tests/aarch64/boot-harness.zig", aarch64, .safe, false),
    });
    boot.root_module.strip = true;
    aarch64_step.dependOn(&b.addInstallArtifact(boot, .{ .dest_dir = .{ .override = .{ .custom = "aarch64-linux/bin" } } }).step);
}

/// Static programs the tests run inside guests or the aarch64 test host (`zig build test-guests`
/// → zig-out/test-guests/NAME; no libc, so each fits in a tiny initramfs or rootfs). Targets name
/// an architecture, so their CPU is its baseline (the test hosts are emulated without AVX-512).
fn buildTestGuests(b: *std.Build, step: *std.Build.Step) void {
    const Guest = struct { name: []const u8, path: []const u8, arch: std.Target.Cpu.Arch, optimize: std.builtin.OptimizeMode, single_threaded: bool = false };
    const guests = [_]Guest{
        // /init of the VMM boot tests' initramfs (tests/vm/boot/make-initramfs.sh).
        .{ .name = "vmm-test-init", .path = "tests/vm/boot/test_init.zig", .arch = .x86_64, .optimize = .small, .single_threaded = true },
        // The vsock and TSI guest of tests/vm/8x (tests/vm/80-vsock-build.sh).
        .{ .name = "vsock-guest", .path = "tests/vm/80-vsock-guest.zig", .arch = .x86_64, .optimize = .safe },
        // /init that checks our kernel under plain QEMU (tests/native/kernelfw-qemu-boot.sh).
        .{ .name = "kernelfw-boot-init-x86_64", .path = "tests/native/kernelfw/boot_init.zig", .arch = .x86_64, .optimize = .small, .single_threaded = true },
        .{ .name = "kernelfw-boot-init-aarch64", .path = "tests/native/kernelfw/boot_init.zig", .arch = .aarch64, .optimize = .small, .single_threaded = true },
        // /init of the aarch64 bench guest (tests/bench/aarch64.bench.sh).
        .{ .name = "aarch64-bench-init", .path = "tests/bench/aarch64-init.zig", .arch = .aarch64, .optimize = .small, .single_threaded = true },
        // The arm64 KVM smoke test, run in the aarch64 test host (tests/host/build-kvm-smoke-aarch64.sh).
        .{ .name = "kvm-smoke-aarch64", .path = "tests/host/kvm-smoke-aarch64.zig", .arch = .aarch64, .optimize = .safe },
    };
    // What they share (readFile), for each guest's own target.
    const guest_raw = b.createModule(.{ .root_source_file = b.path("tests/zig/guest_raw.zig") });
    for (guests) |g| {
        const exe = b.addExecutable(.{ .name = g.name, .root_module = b.createModule(.{
            .root_source_file = b.path(g.path),
            .target = b.resolveTargetQuery(.{ .cpu_arch = g.arch, .os_tag = .linux, .abi = .none }),
            .optimize = g.optimize,
            .strip = true,
            .single_threaded = g.single_threaded,
        }) });
        exe.root_module.addImport("guest_raw", guest_raw);
        step.dependOn(&b.addInstallArtifact(exe, .{ .dest_dir = .{ .override = .{ .custom = "test-guests" } } }).step);
    }
}

/// The virtio devices that compile for macOS, as one aarch64-macos object (tests/zig/
/// macos_devices.zig reaches all their code), for tests/native/cross-macos.sh: no VMM attaches
/// them on macOS yet, so the dylib alone cannot show they hold no Linux-only call.
fn buildMacosDevices(b: *std.Build, step: *std.Build.Step) void {
    const macos = b.resolveTargetQuery(.{ .cpu_arch = .aarch64, .os_tag = .macos });
    const obj = b.addObject(.{
        .name = "macos-devices",
        .root_module = harnessModule(b, "tests/zig/macos_devices.zig", macos, .safe, true),
    });
    step.dependOn(&b.addInstallFileWithDir(obj.getEmittedBin(), .{ .custom = "obj" }, "macos-devices.o").step);
}

/// The C shims' parameter and return types against include/libkrun.h's prototypes: a generator
/// prints the shims' signatures as C next to the header (tests/zig/capi_prototypes.zig), and
/// compiling that file is the check (a mismatch is a _Static_assert naming the function).
fn checkCapiPrototypes(b: *std.Build, test_step: *std.Build.Step, target: std.Build.ResolvedTarget) void {
    const gen = b.addExecutable(.{
        .name = "capi-prototypes",
        .root_module = harnessModule(b, "tests/zig/capi_prototypes.zig", b.graph.host, .debug, false),
    });
    const source = b.addRunArtifact(gen).captureStdOut(.{ .basename = "capi_prototypes.c" });
    const check = b.addObject(.{ .name = "capi-prototypes", .root_module = b.createModule(.{
        .target = target,
        .optimize = .debug,
        .link_libc = true,
    }) });
    check.root_module.addCSourceFile(.{ .file = source, .flags = &.{"-std=c23"} });
    check.root_module.addIncludePath(b.path("include"));
    test_step.dependOn(&check.step);
}
