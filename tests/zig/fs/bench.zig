//! Micro-benchmark of the FUSE server's per-request cost, measured through its entry point
//! (Server.handle, the same path the device's worker takes after popping a chain): LOOKUP
//! (+FORGET to keep the table steady), GETATTR, READ 4 KiB, WRITE 4 KiB, and READDIRPLUS of a
//! 64-entry directory, next to the bare host syscalls they need. Prints "fs.<op> <ns> ns/op" (and "host.<call>") lines for tests/bench/fs.bench.sh.
//!
//! Usage: bench-fs <dir to create the share in> [iterations]
const std = @import("std");
const linux = std.os.linux;
const zkrun = @import("zkrun");
const fuse = zkrun.virtio.fs.fuse;
const sys = zkrun.virtio.fs.sys;
const Server = zkrun.virtio.fs.Server;
const Driver = @import("Driver.zig");

pub fn main(init: std.process.Init) !u8 {
    const gpa = std.heap.c_allocator;
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    if (args.len < 2) return 2;
    const dir = args[1];
    const n = if (args.len > 2) try std.fmt.parseInt(u64, args[2], 10) else 200_000;

    const base = try sys.openat(sys.AT.FDCWD, dir, sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0);
    defer sys.close(base);
    const fd = try sys.openat(base, "file", sys.O.RDWR | sys.O.CREAT | sys.O.TRUNC | sys.O.CLOEXEC, 0o644);
    var block: [65536]u8 = @splat('z');
    _ = try sys.pwrite(fd, &block, 0);
    sys.close(fd);
    try sys.mkdirat(base, "many", 0o755);
    for (0..64) |i| {
        var name: [32]u8 = undefined;
        const z = try std.mem.printSentinel(&name, "many/entry-{d:0>4}", .{i}, 0);
        sys.close(try sys.openat(base, z, sys.O.WRONLY | sys.O.CREAT | sys.O.CLOEXEC, 0o644));
    }

    const server = try Server.init(gpa, .{ .root = dir });
    defer server.deinit();
    const d = try Driver.create(gpa, server);
    defer gpa.destroy(d);
    try d.init();
    const file = try d.lookupId(1, "file");
    const many = try d.lookupId(1, "many");
    const fh = try d.openFh(file, sys.O.RDWR);

    // The bare host syscalls each request needs, for the server's own overhead by difference.
    var t = Timer.start();
    for (0..n) |_| {
        const f = try sys.openat(base, "file", sys.O.PATH | sys.O.NOFOLLOW | sys.O.CLOEXEC, 0);
        _ = try sys.fstat(f);
        sys.close(f);
    }
    report("host.openat+fstat+close", t.lap(), n);
    const hf = try sys.openat(base, "file", sys.O.RDONLY | sys.O.CLOEXEC, 0);
    t = Timer.start();
    for (0..n) |_| _ = try sys.fstat(hf);
    report("host.fstat", t.lap(), n);
    t = Timer.start();
    for (0..n) |i| _ = try sys.pread(hf, block[0..4096], (i % 16) * 4096);
    report("host.pread_4k", t.lap(), n);
    sys.close(hf);

    t = Timer.start();
    for (0..n) |_| {
        const id = try d.lookupId(1, "file");
        d.forget(id, 1);
    }
    report("fs.lookup+forget", t.lap(), n);

    const gi = std.mem.zeroes(fuse.GetattrIn);
    t = Timer.start();
    for (0..n) |_| if (d.call(.getattr, file, &.{Driver.bytes(&gi)}).err != 0) return error.Getattr;
    report("fs.getattr", t.lap(), n);

    t = Timer.start();
    for (0..n) |i| if (d.read(fh, (i % 16) * 4096, 4096).payload.len != 4096) return error.Read;
    report("fs.read_4k", t.lap(), n);

    t = Timer.start();
    for (0..n) |i| if (d.write(fh, (i % 16) * 4096, block[0..4096]).err != 0) return error.Write;
    report("fs.write_4k", t.lap(), n);

    const dfh = d.call(.opendir, many, &.{Driver.bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).as(fuse.OpenOut).fh;
    const rounds = n / 100 + 1;
    t = Timer.start();
    for (0..rounds) |_| {
        const in = std.mem.zeroInit(fuse.ReadIn, .{ .fh = dfh, .size = @as(u32, 65536) });
        const r = d.call(.readdirplus, many, &.{Driver.bytes(&in)});
        if (r.err != 0 or r.payload.len == 0) return error.Readdir;
        // Give back the 64 lookups READDIRPLUS took, as the guest's inode cache would later.
        forgetAll(d, r.payload);
    }
    report("fs.readdirplus_64", t.lap(), rounds);
    return 0;
}

fn forgetAll(d: *Driver, payload: []const u8) void {
    var pos: usize = 0;
    while (pos < payload.len) {
        var eo: fuse.EntryOut = undefined;
        @memcpy(std.mem.asBytes(&eo), payload[pos..][0..@sizeOf(fuse.EntryOut)]);
        const namelen = std.mem.readInt(u32, payload[pos + @sizeOf(fuse.EntryOut) + 16 ..][0..4], .little);
        if (eo.nodeid != 0) d.forget(eo.nodeid, 1);
        pos += fuse.direntSize(@sizeOf(fuse.EntryOut) + fuse.name_offset, namelen);
    }
}

const Timer = struct {
    t0: u64,
    fn now() u64 {
        var ts: linux.timespec = undefined;
        // Thread CPU time (user+sys): the machine is shared, so wall time would count others' load.
        _ = linux.clock_gettime(.THREAD_CPUTIME_ID, &ts);
        return @as(u64, @intCast(ts.sec)) * std.time.ns_per_s + @as(u64, @intCast(ts.nsec));
    }
    fn start() Timer {
        return .{ .t0 = now() };
    }
    fn lap(t: *Timer) u64 {
        return now() - t.t0;
    }
};

fn report(name: []const u8, ns: u64, n: u64) void {
    std.debug.print("{s} {d} ns/op\n", .{ name, ns / n });
}
