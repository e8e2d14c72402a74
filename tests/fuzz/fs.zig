//! Fuzz target for the FUSE request decoder and server (`zig build fuzz` → zig-out/bin/fuzz-fs).
//! A mutation fuzzer: it starts from well-formed requests of every opcode, mutates them (bit
//! flips, interesting integers in length/offset/id fields, truncation, extension, splicing,
//! random reply room), and feeds them to a real server over a real temporary share next to an
//! "outside" directory. It checks after every request that the reply is well-formed and fits
//! the room given, and periodically that nothing outside the share changed. A crash, a safety
//! panic or a broken invariant fails it.
//!
//! Usage: fuzz-fs [iterations (default 200000)] [seed]
const std = @import("std");
const linux = std.os.linux;
const fuzz_args = @import("args.zig");
const zkrun = @import("zkrun");
const fuse = zkrun.virtio.fs.fuse;
const sys = zkrun.virtio.fs.sys;
const Server = zkrun.virtio.fs.Server;
const Driver = @import("fs_driver");

const secret = "fuzz secret\n";

pub fn main(init: std.process.Init) !u8 {
    const gpa = std.heap.c_allocator;
    var run = try fuzz_args.fromInit(init, 200_000);

    var dir_buf: [64]u8 = undefined;
    const dir = try std.mem.printSentinel(&dir_buf, "/var/tmp/zkrun-fs-fuzz-{d}", .{linux.getpid()}, 0);
    const base = try setup(dir);
    defer sys.close(base);

    var path_buf: [96]u8 = undefined;
    const share = try std.mem.printSentinel(&path_buf, "{s}/share", .{dir}, 0);
    const server = try Server.init(gpa, .{ .root = share, .inodes_max = 4096, .handles_max = 256 });
    defer server.deinit();
    try server.addOverlayFile("init.krun", "INIT", 0o755, true);
    const d = try Driver.create(gpa, server);
    defer gpa.destroy(d);
    try d.init();

    var corpus: Corpus = .{};
    corpus.build(d);
    const rnd = run.prng.random();
    var req: [8192]u8 = undefined;
    var stats: Stats = .{};
    var i: u64 = 0;
    while (i < run.iterations) : (i += 1) {
        const len = mutate(rnd, &corpus, &req);
        const opcode = std.mem.readInt(u32, req[4..8], .little);
        // FALLOCATE could reserve real disk; everything else is bounded by the files' sizes.
        if (len >= 8 and opcode == @backingInt(fuse.Opcode.fallocate)) continue;
        const room = rooms[rnd.uintLessThan(usize, rooms.len)];
        const r = d.raw(req[0..len], room);
        try stats.check(r, room);
        if (i % 5000 == 0) try checkOutside(base);
    }
    try checkOutside(base);
    std.debug.print("fuzz-fs: {d} requests (seed {d}): {d} replies ({d} ok, {d} errors), {d} silent, {d} blocked; outside intact\n", .{ run.iterations, run.seed, stats.replies, stats.ok, stats.errors, stats.silent, stats.blocked });
    // The temp dir stays for the caller to remove (tests/native/fs-fuzz.sh does).
    return 0;
}

const rooms = [_]usize{ 0, 8, 16, 17, 24, 64, 200, 4096, 65536, 1 << 20 };

const Stats = struct {
    replies: u64 = 0,
    ok: u64 = 0,
    errors: u64 = 0,
    silent: u64 = 0,
    blocked: u64 = 0,

    fn check(s: *Stats, r: Driver.Reply, room: usize) !void {
        switch (r.outcome) {
            .reply => |n| {
                s.replies += 1;
                if (n < @sizeOf(fuse.OutHeader) or n > room) return error.ReplyLengthInvalid;
                if (r.err > 0 or r.err < -4095) return error.ReplyErrnoInvalid;
                if (r.err != 0 and r.payload.len != 0) return error.ErrorWithPayload;
                if (r.err == 0) s.ok += 1 else s.errors += 1;
            },
            .none => s.silent += 1,
            .blocked => s.blocked += 1,
        }
    }
};

/// Creates dir/{share,outside}; returns an fd of dir. The share gets bait symlinks.
fn setup(dir: [:0]const u8) !sys.fd_t {
    try sys.mkdirat(sys.AT.FDCWD, dir, 0o755);
    const base = try sys.openat(sys.AT.FDCWD, dir, sys.O.PATH | sys.O.DIRECTORY | sys.O.CLOEXEC, 0);
    try sys.mkdirat(base, "share", 0o755);
    try sys.mkdirat(base, "outside", 0o755);
    try sys.mkdirat(base, "share/dir", 0o755);
    try writeFile(base, "outside/secret", secret);
    try writeFile(base, "share/file", "some file contents\n");
    try sys.symlinkat("../outside", base, "share/out");
    try sys.symlinkat("/proc/self/root", base, "share/proc");
    return base;
}

fn writeFile(dir: sys.fd_t, name: [:0]const u8, data: []const u8) !void {
    const fd = try sys.openat(dir, name, sys.O.WRONLY | sys.O.CREAT | sys.O.TRUNC | sys.O.CLOEXEC, 0o644);
    defer sys.close(fd);
    _ = try sys.pwrite(fd, data, 0);
}

/// outside/ still holds exactly `secret`, unchanged.
fn checkOutside(base: sys.fd_t) !void {
    const fd = try sys.openat(base, "outside", sys.O.RDONLY | sys.O.DIRECTORY | sys.O.CLOEXEC, 0);
    defer sys.close(fd);
    var buf: [4096]u8 = undefined;
    const n = try sys.getdents64(fd, &buf);
    // ".", "..", "secret": three records, nothing else.
    var count: usize = 0;
    var pos: usize = 0;
    while (pos < n) : (count += 1) pos += std.mem.readInt(u16, buf[pos + 16 ..][0..2], .little);
    if (count != 3) return error.OutsideChanged;
    const f = try sys.openat(base, "outside/secret", sys.O.RDONLY | sys.O.CLOEXEC, 0);
    defer sys.close(f);
    const got = try sys.pread(f, &buf, 0);
    if (!std.mem.eql(u8, buf[0..got], secret)) return error.OutsideChanged;
}

/// Well-formed requests of every opcode (headers included), the fuzzer's starting points.
const Corpus = struct {
    bufs: [64][512]u8 = undefined,
    lens: [64]usize = undefined,
    count: usize = 0,

    fn add(c: *Corpus, opcode: fuse.Opcode, nodeid: u64, parts: []const []const u8) void {
        var len: usize = @sizeOf(fuse.InHeader);
        const buf = &c.bufs[c.count];
        for (parts) |p| {
            @memcpy(buf[len..][0..p.len], p);
            len += p.len;
        }
        const h = std.mem.zeroInit(fuse.InHeader, .{ .len = @as(u32, @intCast(len)), .opcode = @backingInt(opcode), .unique = c.count, .nodeid = nodeid });
        @memcpy(buf[0..@sizeOf(fuse.InHeader)], std.mem.asBytes(&h));
        c.lens[c.count] = len;
        c.count += 1;
    }

    fn build(c: *Corpus, d: *Driver) void {
        const b = Driver.bytes;
        const file = d.lookupId(1, "file") catch 2;
        const dir = d.lookupId(1, "dir") catch 3;
        const fh = d.openFh(file, sys.O.RDWR) catch 1;
        c.add(.init, 0, &.{b(&fuse.InitIn{ .major = 7, .minor = 41, .max_readahead = 0, .flags = 0xffff })});
        c.add(.lookup, 1, &.{"file\x00"});
        c.add(.lookup, 1, &.{"out\x00"});
        c.add(.lookup, 1, &.{"init.krun\x00"});
        c.add(.forget, file, &.{b(&fuse.ForgetIn{ .nlookup = 1 })});
        c.add(.batch_forget, 0, &.{ b(&fuse.BatchForgetIn{ .count = 1, .dummy = 0 }), b(&fuse.ForgetOne{ .nodeid = file, .nlookup = 1 }) });
        c.add(.getattr, file, &.{b(&std.mem.zeroes(fuse.GetattrIn))});
        c.add(.setattr, file, &.{b(&std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.mode | fuse.Fattr.size, .mode = @as(u32, 0o644), .size = @as(u64, 10) }))});
        c.add(.readlink, 1, &.{});
        c.add(.symlink, 1, &.{ "sl\x00", "../outside/secret\x00" });
        c.add(.mknod, 1, &.{ b(&fuse.MknodIn{ .mode = sys.S.IFIFO | 0o644, .rdev = 0, .umask = 0, .padding = 0 }), "nod\x00" });
        c.add(.mkdir, 1, &.{ b(&fuse.MkdirIn{ .mode = 0o755, .umask = 0 }), "md\x00" });
        c.add(.unlink, 1, &.{"sl\x00"});
        c.add(.rmdir, 1, &.{"md\x00"});
        c.add(.rename, 1, &.{ b(&fuse.RenameIn{ .newdir = dir }), "file\x00", "file2\x00" });
        c.add(.rename2, dir, &.{ b(&fuse.Rename2In{ .newdir = 1, .flags = 2, .padding = 0 }), "file2\x00", "file\x00" });
        c.add(.link, 1, &.{ b(&fuse.LinkIn{ .oldnodeid = file }), "hl\x00" });
        c.add(.open, file, &.{b(&fuse.OpenIn{ .flags = 2, .open_flags = 0 })});
        c.add(.read, file, &.{b(&std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .size = @as(u32, 4096) }))});
        c.add(.write, file, &.{ b(&std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .offset = @as(u64, 3), .size = @as(u32, 5) })), "hello" });
        c.add(.statfs, 1, &.{});
        c.add(.release, file, &.{b(&std.mem.zeroInit(fuse.ReleaseIn, .{ .fh = fh }))});
        c.add(.fsync, file, &.{b(&fuse.FsyncIn{ .fh = fh, .fsync_flags = 0, .padding = 0 })});
        c.add(.setxattr, file, &.{ b(&fuse.SetxattrIn{ .size = 2, .flags = 0 }), "user.a\x00", "vv" });
        c.add(.getxattr, file, &.{ b(&fuse.GetxattrIn{ .size = 64, .padding = 0 }), "user.a\x00" });
        c.add(.listxattr, file, &.{b(&fuse.GetxattrIn{ .size = 0, .padding = 0 })});
        c.add(.removexattr, file, &.{"user.a\x00"});
        c.add(.flush, file, &.{b(&std.mem.zeroInit(fuse.FlushIn, .{ .fh = fh }))});
        c.add(.opendir, 1, &.{b(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })});
        c.add(.readdir, 1, &.{b(&std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh + 1, .size = @as(u32, 4096) }))});
        c.add(.readdirplus, 1, &.{b(&std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh + 1, .size = @as(u32, 4096) }))});
        c.add(.releasedir, 1, &.{b(&std.mem.zeroInit(fuse.ReleaseIn, .{ .fh = fh + 1 }))});
        c.add(.getlk, file, &.{b(&std.mem.zeroInit(fuse.LkIn, .{ .fh = fh, .lk = fuse.FileLock{ .start = 0, .end = 10, .type = 1, .pid = 1 } }))});
        c.add(.setlk, file, &.{b(&std.mem.zeroInit(fuse.LkIn, .{ .fh = fh, .lk = fuse.FileLock{ .start = 0, .end = 10, .type = 1, .pid = 1 } }))});
        c.add(.setlkw, file, &.{b(&std.mem.zeroInit(fuse.LkIn, .{ .fh = fh, .lk = fuse.FileLock{ .start = 0, .end = 10, .type = 2, .pid = 1 } }))});
        c.add(.access, file, &.{b(&fuse.AccessIn{ .mask = 4, .padding = 0 })});
        c.add(.create, 1, &.{ b(&fuse.CreateIn{ .flags = 0o102, .mode = 0o644, .umask = 0, .open_flags = 0 }), "new\x00" });
        c.add(.interrupt, 0, &.{b(&fuse.InterruptIn{ .unique = 3 })});
        c.add(.ioctl, 1, &.{b(&std.mem.zeroInit(fuse.IoctlIn, .{ .fh = fh, .cmd = @as(u32, 0x7602), .arg = @as(u64, 3) }))});
        c.add(.lseek, file, &.{b(&fuse.LseekIn{ .fh = fh, .offset = 0, .whence = 3, .padding = 0 })});
        c.add(.copy_file_range, file, &.{b(&fuse.CopyFileRangeIn{ .fh_in = fh, .off_in = 0, .nodeid_out = file, .fh_out = fh, .off_out = 100, .len = 10, .flags = 0 })});
        c.add(.syncfs, 1, &.{b(&@as(u64, 0))});
        c.add(.destroy, 0, &.{});
        c.add(.bmap, file, &.{b(&[2]u64{ 0, 4096 })});
    }
};

const interesting_u32 = [_]u32{ 0, 1, 2, 7, 8, 16, 39, 40, 41, 4095, 4096, 65535, 65536, 1 << 20, (1 << 20) + 1, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, 0xffff_ffff };
const interesting_u64 = [_]u64{ 0, 1, 2, 3, 0x1_0000_0001, 0xffff_ffff, 1 << 32, (1 << 63) - 1, 1 << 63, std.math.maxInt(u64), std.math.maxInt(u64) - 4095 };

/// One mutated request in `out`; returns its length.
fn mutate(rnd: std.Random, c: *const Corpus, out: []u8) usize {
    const pick = rnd.uintLessThan(usize, c.count);
    var len = c.lens[pick];
    @memcpy(out[0..len], c.bufs[pick][0..len]);
    // Few mutations per request, so many stay close to valid and reach deep paths.
    const rounds = rnd.uintLessThan(u32, 4);
    for (0..rounds) |_| {
        switch (rnd.uintLessThan(u8, 8)) {
            0 => if (len > 0) {
                const at = rnd.uintLessThan(usize, len);
                out[at] ^= @as(u8, 1) << rnd.int(u3);
            },
            1 => if (len > 0) {
                out[rnd.uintLessThan(usize, len)] = rnd.int(u8);
            },
            2 => if (len >= 4) {
                const at = rnd.uintLessThan(usize, len - 3) & ~@as(usize, 3);
                std.mem.writeInt(u32, out[at..][0..4], interesting_u32[rnd.uintLessThan(usize, interesting_u32.len)], .little);
            },
            3 => if (len >= 8) {
                const at = rnd.uintLessThan(usize, len - 7) & ~@as(usize, 7);
                std.mem.writeInt(u64, out[at..][0..8], interesting_u64[rnd.uintLessThan(usize, interesting_u64.len)], .little);
            },
            4 => len = rnd.uintAtMost(usize, len),
            5 => {
                const extra = rnd.uintAtMost(usize, @min(256, out.len - len));
                rnd.bytes(out[len..][0..extra]);
                len += extra;
            },
            6 => {
                // Splice another seed's arguments behind this header.
                const other = rnd.uintLessThan(usize, c.count);
                const olen = c.lens[other];
                const n = @min(olen - @sizeOf(fuse.InHeader), out.len - @sizeOf(fuse.InHeader));
                @memcpy(out[@sizeOf(fuse.InHeader)..][0..n], c.bufs[other][@sizeOf(fuse.InHeader)..][0..n]);
                len = @max(len, @sizeOf(fuse.InHeader) + n);
            },
            7 => if (len >= 8) {
                // Another opcode, known or not.
                std.mem.writeInt(u32, out[4..8], rnd.uintAtMost(u32, 60), .little);
            },
            else => unreachable,
        }
    }
    // Mostly keep the header's length honest so mutations reach the opcode decoders.
    if (len >= 4 and rnd.uintLessThan(u8, 10) < 7) std.mem.writeInt(u32, out[0..4], @intCast(len), .little);
    if (len >= @sizeOf(fuse.InHeader) and rnd.uintLessThan(u8, 10) < 8) std.mem.writeInt(u16, out[36..38], 0, .little);
    return len;
}
