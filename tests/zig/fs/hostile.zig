//! The hostile-driver harness: a malicious guest kernel talks raw FUSE to the real server over
//! real files and tries to leave the share (`share/` next to `outside/secret`) or to crash the
//! server. Every attempt must be refused, no reply may carry the secret, and the outside file
//! must be untouched. Run by tests/native/fs-hostile.sh (and `zig build test`).
const std = @import("std");
const linux = std.os.linux;
const zkrun = @import("zkrun");
const fuse = zkrun.virtio.fs.fuse;
const sys = zkrun.virtio.fs.sys;
const Server = zkrun.virtio.fs.Server;
const Driver = @import("Driver.zig");
const Tmp = zkrun.virtio.fs.testing.Tmp;

const gpa = std.testing.allocator;
const expect = std.testing.expect;
const expectEqual = std.testing.expectEqual;
const bytes = Driver.bytes;

fn errno(e: linux.E) i32 {
    return -@as(i32, @backingInt(e));
}

const secret = "top secret\n";

/// A share with bait: symlinks out of it (absolute, relative, magic), a file and a directory.
const Hostile = struct {
    tmp: Tmp,
    server: *Server,
    d: *Driver,
    secret_ino: u64,

    fn init(read_only: bool) !Hostile {
        var tmp = try Tmp.init();
        errdefer tmp.deinit();
        const outside = try tmp.abs("outside");
        var buf: [4096]u8 = undefined;
        const abs_secret = try std.mem.printSentinel(&buf, "{s}/secret", .{outside}, 0);
        try sys.symlinkat(abs_secret.ptr, tmp.fd, "share/abs_file");
        const outside_z = try tmp.abs("outside");
        try sys.symlinkat(outside_z.ptr, tmp.fd, "share/abs_dir");
        try sys.symlinkat("../outside", tmp.fd, "share/rel_dir");
        try sys.symlinkat("../outside/secret", tmp.fd, "share/rel_file");
        try sys.symlinkat("/etc", tmp.fd, "share/etc_link");
        try sys.symlinkat("/proc/self/root", tmp.fd, "share/proc_root");
        try sys.symlinkat("/proc/self/fd/3", tmp.fd, "share/proc_fd");
        try sys.mkdirat(tmp.fd, "share/dir", 0o755);
        try tmp.file("share/file", "inside\n");
        const server = try tmp.server(.{ .root = null, .read_only = read_only });
        errdefer server.deinit();
        const d = try Driver.create(gpa, server);
        try d.init();
        return .{ .tmp = tmp, .server = server, .d = d, .secret_ino = (try tmp.stat("outside/secret")).ino };
    }

    /// The secret is intact and no reply ever carried it.
    fn deinit(h: *Hostile) void {
        var buf: [64]u8 = undefined;
        const now = h.tmp.read("outside/secret", &buf) catch unreachable;
        std.debug.assert(std.mem.eql(u8, now, secret));
        std.debug.assert(std.mem.indexOf(u8, &h.d.out, "top secret") == null);
        gpa.destroy(h.d);
        h.server.deinit();
        h.tmp.deinit();
    }

    fn call(h: *Hostile, opcode: fuse.Opcode, nodeid: u64, parts: []const []const u8) Driver.Reply {
        const r = h.d.call(opcode, nodeid, parts);
        std.debug.assert(std.mem.indexOf(u8, r.payload, "top secret") == null);
        return r;
    }

    fn id(h: *Hostile, name: [:0]const u8) !u64 {
        return h.d.lookupId(1, name);
    }
};

test "01 LOOKUP of '..' and '.' in the root is refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"..\x00"}).err);
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{".\x00"}).err);
    const dir = try h.id("dir");
    try expectEqual(errno(.INVAL), h.call(.lookup, dir, &.{"..\x00"}).err);
}

test "02 names with '/' (relative and absolute paths) are refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"../outside/secret\x00"}).err);
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"/etc/passwd\x00"}).err);
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"dir/\x00"}).err);
}

test "03 empty, unterminated and over-long names are refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"\x00"}).err);
    try expectEqual(errno(.INVAL), h.call(.lookup, 1, &.{"file"}).err);
    const long = @as([256]u8, @splat('a')) ++ [_]u8{0};
    try expectEqual(errno(.NAMETOOLONG), h.call(.lookup, 1, &.{&long}).err);
    // A NUL inside the name ends it: "file\0/../x" is "file", never a path.
    try expectEqual(@as(i32, 0), h.call(.lookup, 1, &.{"file\x00/../outside\x00"}).err);
}

test "04 lookup through an absolute symlink to a directory outside does not leave the share" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const link = h.call(.lookup, 1, &.{"abs_dir\x00"}).as(fuse.EntryOut);
    try expectEqual(@as(u32, sys.S.IFLNK), link.attr.mode & sys.S.IFMT);
    try expectEqual(errno(.NOTDIR), h.call(.lookup, link.nodeid, &.{"secret\x00"}).err);
    try expectEqual(errno(.NOTDIR), h.call(.opendir, link.nodeid, &.{bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).err);
}

test "05 lookup through a relative symlink (../outside) does not leave the share" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const link = try h.id("rel_dir");
    try expectEqual(errno(.NOTDIR), h.call(.lookup, link, &.{"secret\x00"}).err);
    const mk = fuse.MkdirIn{ .mode = 0o755, .umask = 0 };
    try expectEqual(errno(.NOTDIR), h.call(.mkdir, link, &.{ bytes(&mk), "planted\x00" }).err);
    try expect(!h.tmp.exists("outside/planted"));
}

test "06 a symlink to /etc is only text: readlink gives it, lookup through it fails" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const link = try h.id("etc_link");
    try std.testing.expectEqualStrings("/etc", h.call(.readlink, link, &.{}).payload);
    try expectEqual(errno(.NOTDIR), h.call(.lookup, link, &.{"passwd\x00"}).err);
}

test "07 OPEN of a symlink to a file outside does not follow it" {
    var h = try Hostile.init(false);
    defer h.deinit();
    for ([_][:0]const u8{ "abs_file", "rel_file" }) |name| {
        const e = h.d.lookup(1, name).as(fuse.EntryOut);
        try expect(e.attr.ino != h.secret_ino);
        try expectEqual(errno(.NXIO), h.d.open(e.nodeid, sys.O.RDONLY).err);
        try expectEqual(errno(.NXIO), h.d.open(e.nodeid, sys.O.RDWR | sys.O.TRUNC).err);
    }
}

test "08 magic links (/proc/self/root, /proc/self/fd/N) cannot be used to leave" {
    var h = try Hostile.init(false);
    defer h.deinit();
    for ([_][:0]const u8{ "proc_root", "proc_fd" }) |name| {
        const node = try h.id(name);
        try expectEqual(errno(.NOTDIR), h.call(.lookup, node, &.{"etc\x00"}).err);
        try expectEqual(errno(.NXIO), h.d.open(node, sys.O.RDONLY).err);
        try expectEqual(errno(.NOTDIR), h.call(.opendir, node, &.{bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).err);
        const gx = fuse.GetxattrIn{ .size = 64, .padding = 0 };
        try expectEqual(errno(.OPNOTSUPP), h.call(.listxattr, node, &.{bytes(&gx)}).err);
    }
}

test "09 CREATE over a symlink pointing outside neither follows nor truncates it" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const in = fuse.CreateIn{ .flags = sys.O.RDWR | sys.O.TRUNC, .mode = 0o644, .umask = 0, .open_flags = 0 };
    try expectEqual(errno(.NXIO), h.call(.create, 1, &.{ bytes(&in), "abs_file\x00" }).err);
    try expectEqual(errno(.NXIO), h.call(.create, 1, &.{ bytes(&in), "rel_file\x00" }).err);
}

test "10 hard links: forged source ids are refused; linking a symlink links the link" {
    var h = try Hostile.init(false);
    defer h.deinit();
    for ([_]u64{ 0, 2, 0xdead_beef, 1 << 40, std.math.maxInt(u64) }) |forged| {
        const li = fuse.LinkIn{ .oldnodeid = forged };
        try expectEqual(errno(.NOENT), h.call(.link, 1, &.{ bytes(&li), "stolen\x00" }).err);
    }
    const li = fuse.LinkIn{ .oldnodeid = try h.id("abs_file") };
    const e = h.call(.link, 1, &.{ bytes(&li), "stolen\x00" });
    if (e.err == 0) try expect(e.as(fuse.EntryOut).attr.ino != h.secret_ino);
    if (h.tmp.exists("share/stolen")) try expect((try h.tmp.stat("share/stolen")).ino != h.secret_ino);
    const dir = fuse.LinkIn{ .oldnodeid = try h.id("dir") };
    try expectEqual(errno(.PERM), h.call(.link, 1, &.{ bytes(&dir), "dirlink\x00" }).err);
}

test "11 RENAME cannot move anything out: names are components, newdir must be ours" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const bad_dir = fuse.RenameIn{ .newdir = 0x1234_0000_0007 };
    try expectEqual(errno(.NOENT), h.call(.rename, 1, &.{ bytes(&bad_dir), "file\x00", "x\x00" }).err);
    const rn = fuse.RenameIn{ .newdir = 1 };
    try expectEqual(errno(.INVAL), h.call(.rename, 1, &.{ bytes(&rn), "file\x00", "../outside/file\x00" }).err);
    try expectEqual(errno(.INVAL), h.call(.rename, 1, &.{ bytes(&rn), "../outside/secret\x00", "got\x00" }).err);
    const via_link = fuse.RenameIn{ .newdir = try h.id("rel_dir") };
    try expectEqual(errno(.NOTDIR), h.call(.rename, 1, &.{ bytes(&via_link), "file\x00", "x\x00" }).err);
    const r2 = fuse.Rename2In{ .newdir = 1, .flags = 0x80, .padding = 0 };
    try expectEqual(errno(.INVAL), h.call(.rename2, 1, &.{ bytes(&r2), "file\x00", "y\x00" }).err);
    try expect(!h.tmp.exists("outside/file") and h.tmp.exists("share/file"));
}

test "12 forged and stale node ids are refused by every kind of op" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const file = try h.id("file");
    h.d.forget(file, 1);
    const gi = std.mem.zeroes(fuse.GetattrIn);
    for ([_]u64{ 0, file, 3, 1 | (1 << 32), 0xffff_ffff, std.math.maxInt(u64) }) |forged| {
        try expectEqual(errno(.NOENT), h.call(.getattr, forged, &.{bytes(&gi)}).err);
        try expectEqual(errno(.NOENT), h.call(.lookup, forged, &.{"file\x00"}).err);
        try expectEqual(errno(.NOENT), h.d.open(forged, 0).err);
        try expectEqual(errno(.NOENT), h.call(.unlink, forged, &.{"file\x00"}).err);
    }
}

test "13 forged, released and wrong-kind file handles are refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const file = try h.id("file");
    const fh = try h.d.openFh(file, sys.O.RDONLY);
    try expectEqual(@as(i32, 0), h.d.release(fh).err);
    const dfh = h.call(.opendir, 1, &.{bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).as(fuse.OpenOut).fh;
    for ([_]u64{ 0, fh, dfh, 77, std.math.maxInt(u64) }) |bad| {
        try expectEqual(errno(.BADF), h.d.read(bad, 0, 10).err);
        try expectEqual(errno(.BADF), h.d.write(bad, 0, "x").err);
    }
    const ro = try h.d.openFh(file, sys.O.RDONLY);
    try expectEqual(errno(.BADF), h.d.write(ro, 0, "x").err);
}

test "14 header length beyond the bytes supplied, or below the header, is refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    var hdr = std.mem.zeroInit(fuse.InHeader, .{ .len = 4096, .opcode = @backingInt(fuse.Opcode.getattr), .unique = 9, .nodeid = 1 });
    var req: [@sizeOf(fuse.InHeader) + 16]u8 = @splat(0);
    @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
    try expectEqual(errno(.INVAL), h.d.raw(&req, 256).err);
    hdr.len = 8;
    @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
    try expectEqual(errno(.INVAL), h.d.raw(&req, 256).err);
    hdr.len = std.math.maxInt(u32);
    @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
    try expectEqual(errno(.INVAL), h.d.raw(&req, 256).err);
}

test "15 truncated requests: short header, short fixed struct, short WRITE payload" {
    var h = try Hostile.init(false);
    defer h.deinit();
    for (0..@sizeOf(fuse.InHeader)) |n| {
        const junk: [@sizeOf(fuse.InHeader)]u8 = @splat(0xff);
        try expectEqual(errno(.INVAL), h.d.raw(junk[0..n], 64).err);
    }
    try expectEqual(errno(.INVAL), h.call(.read, 0, &.{"short"}).err);
    try expectEqual(errno(.INVAL), h.call(.setattr, 1, &.{"short"}).err);
    const fh = try h.d.openFh(try h.id("file"), sys.O.RDWR);
    const in = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .size = @as(u32, 1000) });
    try expectEqual(errno(.INVAL), h.call(.write, 0, &.{ bytes(&in), "only 10 b" }).err);
}

test "16 extension length beyond the request is refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    var req: [@sizeOf(fuse.InHeader) + 16]u8 = @splat(0);
    const hdr = std.mem.zeroInit(fuse.InHeader, .{ .len = @as(u32, req.len), .opcode = @backingInt(fuse.Opcode.getattr), .nodeid = 1, .total_extlen = @as(u16, 3) });
    @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
    try expectEqual(errno(.INVAL), h.d.raw(&req, 256).err);
}

test "17 negative and overflowing offsets are refused" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const fh = try h.d.openFh(try h.id("file"), sys.O.RDWR);
    for ([_]u64{ 1 << 63, std.math.maxInt(u64), std.math.maxInt(u64) - 4095 }) |off| {
        try expectEqual(errno(.INVAL), h.d.read(fh, off, 10).err);
        try expectEqual(errno(.INVAL), h.d.write(fh, off, "x").err);
        const ls = fuse.LseekIn{ .fh = fh, .offset = off, .whence = 0, .padding = 0 };
        try expectEqual(errno(.INVAL), h.call(.lseek, 0, &.{bytes(&ls)}).err);
        const fa = std.mem.zeroInit(fuse.FallocateIn, .{ .fh = fh, .offset = off, .length = 1 });
        try expectEqual(errno(.INVAL), h.call(.fallocate, 0, &.{bytes(&fa)}).err);
    }
    // In range but past what the host allows: the host's error comes back, nothing crashes.
    const fa = std.mem.zeroInit(fuse.FallocateIn, .{ .fh = fh, .offset = (1 << 63) - 10, .length = 100 });
    try expect(h.call(.fallocate, 0, &.{bytes(&fa)}).err < 0);
    try expect(h.d.write(fh, (1 << 63) - 1, "xy").err < 0);
}

test "18 huge READ sizes are refused; small reply buffers are respected" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const fh = try h.d.openFh(try h.id("file"), sys.O.RDONLY);
    try expectEqual(errno(.INVAL), h.d.read(fh, 0, std.math.maxInt(u32)).err);
    try expectEqual(errno(.INVAL), h.d.read(fh, 0, (1 << 20) + 1).err);
    // 20 bytes of reply room: the data is cut to what fits.
    const in = std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .size = 4096 });
    var req: [@sizeOf(fuse.InHeader) + @sizeOf(fuse.ReadIn)]u8 = undefined;
    const hdr = std.mem.zeroInit(fuse.InHeader, .{ .len = @as(u32, req.len), .opcode = @backingInt(fuse.Opcode.read), .unique = 5 });
    @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
    @memcpy(req[@sizeOf(fuse.InHeader)..], bytes(&in));
    try expectEqualStrings("insi", h.d.raw(&req, 20).payload);
    try expectEqual(Server.Outcome.none, h.d.raw(&req, 15).outcome);
    const gx = fuse.GetxattrIn{ .size = std.math.maxInt(u32), .padding = 0 };
    try expectEqual(errno(.INVAL), h.call(.getxattr, 1, &.{ bytes(&gx), "user.x\x00" }).err);
}

const expectEqualStrings = std.testing.expectEqualStrings;

test "19 BATCH_FORGET with a count beyond its entries only forgets what is there" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const file = try h.id("file");
    const bf = fuse.BatchForgetIn{ .count = std.math.maxInt(u32), .dummy = 0 };
    const one = fuse.ForgetOne{ .nodeid = 0xdead, .nlookup = 1 };
    try expectEqual(Server.Outcome.none, h.call(.batch_forget, 0, &.{ bytes(&bf), bytes(&one), "xyz" }).outcome);
    try expectEqual(@as(i32, 0), h.d.getattr(file).err);
    h.d.forget(1, std.math.maxInt(u64));
    try expectEqual(@as(i32, 0), h.d.getattr(1).err);
}

test "20 device nodes cannot be created (they would be host devices); whiteouts can" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const blk = fuse.MknodIn{ .mode = sys.S.IFBLK | 0o666, .rdev = (8 << 8) | 0, .umask = 0, .padding = 0 };
    try expectEqual(errno(.PERM), h.call(.mknod, 1, &.{ bytes(&blk), "sda\x00" }).err);
    const mem = fuse.MknodIn{ .mode = sys.S.IFCHR | 0o666, .rdev = (1 << 8) | 1, .umask = 0, .padding = 0 };
    try expectEqual(errno(.PERM), h.call(.mknod, 1, &.{ bytes(&mem), "mem\x00" }).err);
    const wh = fuse.MknodIn{ .mode = sys.S.IFCHR | 0o000, .rdev = 0, .umask = 0, .padding = 0 };
    const e = h.call(.mknod, 1, &.{ bytes(&wh), "whiteout\x00" });
    try expectEqual(@as(i32, 0), e.err);
    try expectEqual(errno(.NXIO), h.d.open(e.as(fuse.EntryOut).nodeid, 0).err);
}

test "21 SYMLINK and MKDIR names with '/' or '..' are refused; targets stay text" {
    var h = try Hostile.init(false);
    defer h.deinit();
    try expectEqual(errno(.INVAL), h.call(.symlink, 1, &.{ "../outside/l\x00", "x\x00" }).err);
    const mk = fuse.MkdirIn{ .mode = 0o755, .umask = 0 };
    try expectEqual(errno(.INVAL), h.call(.mkdir, 1, &.{ bytes(&mk), "..\x00" }).err);
    try expectEqual(errno(.INVAL), h.call(.mkdir, 1, &.{ bytes(&mk), "a/b\x00" }).err);
    const l = h.call(.symlink, 1, &.{ "pw\x00", "/etc/passwd\x00" }).as(fuse.EntryOut);
    try expectEqual(errno(.NXIO), h.d.open(l.nodeid, 0).err);
    try expect(!h.tmp.exists("outside/l"));
}

test "22 OPEN flags cannot smuggle O_CREAT, O_PATH or O_DIRECTORY semantics" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const file = try h.id("file");
    const r = h.d.open(file, sys.O.RDONLY | sys.O.PATH | sys.O.CREAT | sys.O.DIRECTORY | sys.O.NOFOLLOW);
    try expectEqual(@as(i32, 0), r.err);
    try std.testing.expectEqualStrings("inside\n", h.d.read(r.as(fuse.OpenOut).fh, 0, 64).payload);
    try expectEqual(errno(.INVAL), h.d.open(file, 3).err);
}

test "23 xattr calls on symlinks never reach the link target" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const link = try h.id("rel_file");
    const sx = fuse.SetxattrIn{ .size = 1, .flags = 0 };
    try expectEqual(errno(.OPNOTSUPP), h.call(.setxattr, link, &.{ bytes(&sx), "user.x\x00", "v" }).err);
    const gx = fuse.GetxattrIn{ .size = 64, .padding = 0 };
    try expectEqual(errno(.OPNOTSUPP), h.call(.getxattr, link, &.{ bytes(&gx), "user.x\x00" }).err);
}

test "24 SETATTR on a symlink changes the link, never the target outside" {
    var h = try Hostile.init(false);
    defer h.deinit();
    const before = try h.tmp.stat("outside/secret");
    const link = try h.id("rel_file");
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.size, .size = @as(u64, 0) });
    try expectEqual(errno(.INVAL), h.call(.setattr, link, &.{bytes(&sa)}).err);
    const ch = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.mode, .mode = @as(u32, 0o777) });
    try expectEqual(errno(.OPNOTSUPP), h.call(.setattr, link, &.{bytes(&ch)}).err);
    const own = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.uid, .uid = @as(u32, 4242) });
    _ = h.call(.setattr, link, &.{bytes(&own)});
    const after = try h.tmp.stat("outside/secret");
    try expectEqual(before.mode, after.mode);
    try expectEqual(before.uid, after.uid);
    try expectEqual(before.size, after.size);
}

test "25 a read-only share refuses writes even through hostile flags" {
    var h = try Hostile.init(true);
    defer h.deinit();
    const file = try h.id("file");
    try expectEqual(errno(.ROFS), h.d.open(file, sys.O.WRONLY | sys.O.APPEND).err);
    const fh = try h.d.openFh(file, sys.O.RDONLY);
    try expectEqual(errno(.ROFS), h.d.write(fh, 0, "x").err);
    const cp = std.mem.zeroInit(fuse.CopyFileRangeIn, .{ .fh_in = fh, .fh_out = fh, .nodeid_out = file, .len = @as(u64, 1) });
    try expectEqual(errno(.ROFS), h.call(.copy_file_range, 0, &.{bytes(&cp)}).err);
}

test "26 random garbage never crashes the server" {
    var h = try Hostile.init(false);
    defer h.deinit();
    var prng = std.Random.DefaultPrng.init(0x5eed);
    const rnd = prng.random();
    var req: [512]u8 = undefined;
    for (0..5000) |_| {
        rnd.bytes(&req);
        const len = rnd.uintAtMost(usize, req.len);
        const hdr: fuse.InHeader = .{
            .len = @intCast(if (rnd.boolean()) len else rnd.int(u32)),
            .opcode = rnd.uintAtMost(u32, 52),
            .unique = rnd.int(u64),
            .nodeid = if (rnd.boolean()) rnd.uintAtMost(u64, 12) else rnd.int(u64),
            .uid = 0,
            .gid = 0,
            .pid = 0,
            .total_extlen = if (rnd.uintAtMost(u8, 8) == 0) rnd.int(u16) else 0,
            .padding = 0,
        };
        // Never let garbage create device nodes or huge files; the ops themselves are tested.
        if (hdr.opcode == @backingInt(fuse.Opcode.ioctl)) continue;
        @memcpy(req[0..@sizeOf(fuse.InHeader)], bytes(&hdr));
        _ = h.d.raw(req[0..@max(len, @sizeOf(fuse.InHeader))], rnd.uintAtMost(usize, 8192));
    }
}
