//! Unit tests of the virtio-fs server: the decoder and each opcode, driven through the server's
//! entry point by a test driver, against real files in a temporary directory.
const std = @import("std");
const linux = std.os.linux;
const zkrun = @import("zkrun");
const fuse = zkrun.virtio.fs.fuse;
const sys = zkrun.virtio.fs.sys;
const Server = zkrun.virtio.fs.Server;
const Driver = @import("Driver.zig");

const gpa = std.testing.allocator;
const expect = std.testing.expect;
const expectEqual = std.testing.expectEqual;
const expectEqualStrings = std.testing.expectEqualStrings;
const bytes = Driver.bytes;
const E = linux.E;

fn errno(e: E) i32 {
    return -@as(i32, @backingInt(e));
}

const Tmp = zkrun.virtio.fs.testing.Tmp;

const Fixture = struct {
    tmp: Tmp,
    server: *Server,
    d: *Driver,

    fn init(options: Server.Options) !Fixture {
        var tmp = try Tmp.init();
        errdefer tmp.deinit();
        const server = try tmp.server(options);
        const d = try Driver.create(gpa, server);
        try d.init();
        return .{ .tmp = tmp, .server = server, .d = d };
    }

    fn deinit(f: *Fixture) void {
        gpa.destroy(f.d);
        f.server.deinit();
        f.tmp.deinit();
    }
};

test "INIT negotiates flags and limits; nothing runs before it" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    const server = try tmp.server(.{ .root = null });
    defer server.deinit();
    const d = try Driver.create(gpa, server);
    defer gpa.destroy(d);
    try expectEqual(errno(.IO), d.getattr(1).err);
    const old: fuse.InitIn = .{ .major = 7, .minor = 20, .max_readahead = 0, .flags = 0 };
    try expectEqual(errno(.PROTO), d.call(.init, 0, &.{bytes(&old)}).err);
    const future: fuse.InitIn = .{ .major = 8, .minor = 0, .max_readahead = 0, .flags = 0 };
    try expectEqual(@as(u32, 7), d.call(.init, 0, &.{bytes(&future)}).as(fuse.InitOut).major);
    const in: fuse.InitIn = .{ .major = 7, .minor = 41, .max_readahead = 4096, .flags = 0xffff_ffff };
    const out = d.call(.init, 0, &.{bytes(&in)}).as(fuse.InitOut);
    try expectEqual(@as(u32, 38), out.minor);
    try expectEqual(Server.init_flags_supported, out.flags);
    try expect(out.flags & fuse.Init.writeback_cache == 0);
    try expectEqual(@as(u32, 1 << 20), out.max_write);
    try expectEqual(@as(u16, 256), out.max_pages);
    try expectEqual(@as(u32, 0), out.flags2);
    try expectEqual(@as(i32, 0), d.getattr(1).err);
}

test "LOOKUP, GETATTR, OPEN, READ, READDIR, READDIRPLUS on host files" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/hello", "hello, guest\n");
    try sys.mkdirat(f.tmp.fd, "share/sub", 0o750);
    const d = f.d;
    const e = d.lookup(1, "hello").as(fuse.EntryOut);
    try expectEqual(@as(u64, 13), e.attr.size);
    try expectEqual(@as(u32, sys.S.IFREG | 0o644), e.attr.mode);
    try expectEqual(e.nodeid, try d.lookupId(1, "hello"));
    // A missing name is a negative entry the guest may cache.
    const neg = d.lookup(1, "nope").as(fuse.EntryOut);
    try expectEqual(@as(u64, 0), neg.nodeid);
    try expectEqual(@as(u64, Server.cache_timeout_s), neg.entry_valid);
    try expectEqual(errno(.NOTDIR), d.lookup(e.nodeid, "x").err);
    try expectEqual(e.attr.ino, d.getattr(e.nodeid).as(fuse.AttrOut).attr.ino);

    const fh = try d.openFh(e.nodeid, sys.O.RDONLY);
    try expectEqualStrings("hello, guest\n", d.read(fh, 0, 4096).payload);
    try expectEqualStrings("guest\n", d.read(fh, 7, 4096).payload);
    try expectEqual(@as(usize, 0), d.read(fh, 100, 4096).payload.len);
    try expectEqual(@as(i32, 0), d.release(fh).err);
    try expectEqual(errno(.BADF), d.release(fh).err);

    const sub = try d.lookupId(1, "sub");
    try expectEqual(errno(.ISDIR), d.open(sub, 0).err);
    const dfh = d.call(.opendir, 1, &.{bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).as(fuse.OpenOut).fh;
    var names: [8][]const u8 = undefined;
    const n = try listDir(d, dfh, false, &names);
    try expectEqual(@as(usize, 4), n);
    try expect(has(names[0..n], "hello") and has(names[0..n], "sub") and has(names[0..n], ".."));
    const np = try listDir(d, dfh, true, &names);
    try expectEqual(@as(usize, 4), np);
    const rel = std.mem.zeroInit(fuse.ReleaseIn, .{ .fh = dfh });
    try expectEqual(@as(i32, 0), d.call(.releasedir, 1, &.{bytes(&rel)}).err);
}

fn has(names: []const []const u8, name: []const u8) bool {
    for (names) |n| if (std.mem.eql(u8, n, name)) return true;
    return false;
}

/// Reads a whole directory in small READDIR(PLUS) replies, following the offsets.
fn listDir(d: *Driver, fh: u64, plus: bool, names: [][]const u8) !usize {
    const store = struct {
        var buf: [4096]u8 = undefined;
    };
    var used: usize = 0;
    var count: usize = 0;
    var offset: u64 = 0;
    while (true) {
        const in = std.mem.zeroInit(fuse.ReadIn, .{ .fh = fh, .offset = offset, .size = 200 });
        const r = d.call(if (plus) .readdirplus else .readdir, 1, &.{bytes(&in)});
        if (r.err != 0) return error.ReaddirFailed;
        if (r.payload.len == 0) return count;
        var pos: usize = 0;
        while (pos < r.payload.len) {
            const head: usize = if (plus) @sizeOf(fuse.EntryOut) else 0;
            var de: fuse.Dirent = undefined;
            @memcpy(std.mem.asBytes(&de), r.payload[pos + head ..][0..@sizeOf(fuse.Dirent)]);
            const name = r.payload[pos + head + fuse.name_offset ..][0..de.namelen];
            if (plus and !std.mem.eql(u8, name, ".") and !std.mem.eql(u8, name, "..")) {
                var eo: fuse.EntryOut = undefined;
                @memcpy(std.mem.asBytes(&eo), r.payload[pos..][0..@sizeOf(fuse.EntryOut)]);
                if (eo.nodeid == 0) return error.NoNodeId;
            }
            @memcpy(store.buf[used..][0..name.len], name);
            names[count] = store.buf[used..][0..name.len];
            used += name.len;
            count += 1;
            offset = de.off;
            pos += fuse.direntSize(head + fuse.name_offset, de.namelen);
        }
    }
}

test "CREATE, WRITE, SETATTR, RENAME, LINK, SYMLINK, READLINK, MKNOD, UNLINK, RMDIR show on the host" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    const d = f.d;
    var buf: [256]u8 = undefined;
    d.uid = 1234;
    d.gid = 4321;
    const c = d.createFile(1, "new", sys.O.RDWR, sys.S.IFREG | 0o664);
    try expectEqual(@as(i32, 0), c.err);
    const entry = c.as(fuse.EntryOut);
    var oo: fuse.OpenOut = undefined;
    @memcpy(std.mem.asBytes(&oo), c.payload[@sizeOf(fuse.EntryOut)..][0..@sizeOf(fuse.OpenOut)]);
    try expectEqual(@as(u32, 5), d.write(oo.fh, 0, "abcde").as(fuse.WriteOut).size);
    try expectEqual(@as(u32, 3), d.write(oo.fh, 5, "fgh").as(fuse.WriteOut).size);
    try expectEqualStrings("abcdefgh", try f.tmp.read("share/new", &buf));
    var st = try f.tmp.stat("share/new");
    try expectEqual(@as(u32, sys.S.IFREG | 0o664), st.mode);
    try expectEqual(@as(u32, 1234), st.uid);
    try expectEqual(@as(u32, 4321), st.gid);
    try expectEqual(errno(.EXIST), d.createFile(1, "new", sys.O.RDWR | sys.O.EXCL, 0o644).err);

    var sa = std.mem.zeroes(fuse.SetattrIn);
    sa.valid = fuse.Fattr.mode | fuse.Fattr.size;
    sa.mode = 0o600;
    sa.size = 3;
    const attr = d.call(.setattr, entry.nodeid, &.{bytes(&sa)}).as(fuse.AttrOut).attr;
    try expectEqual(@as(u64, 3), attr.size);
    try expectEqualStrings("abc", try f.tmp.read("share/new", &buf));
    try expectEqual(@as(u32, sys.S.IFREG | 0o600), (try f.tmp.stat("share/new")).mode);
    sa.valid = fuse.Fattr.mtime;
    sa.mtime = 1_000_000;
    sa.mtimensec = 5;
    _ = d.call(.setattr, entry.nodeid, &.{bytes(&sa)}).as(fuse.AttrOut);
    try expectEqual(@as(i64, 1_000_000), (try f.tmp.stat("share/new")).mtime);
    _ = d.release(oo.fh);

    const dir = d.mkdir(1, "dir", 0o750).as(fuse.EntryOut);
    try expectEqual(@as(u32, sys.S.IFDIR | 0o750), (try f.tmp.stat("share/dir")).mode);
    const rn = fuse.RenameIn{ .newdir = dir.nodeid };
    try expectEqual(@as(i32, 0), d.call(.rename, 1, &.{ bytes(&rn), "new\x00", "moved\x00" }).err);
    try expect(f.tmp.exists("share/dir/moved") and !f.tmp.exists("share/new"));

    const li = fuse.LinkIn{ .oldnodeid = entry.nodeid };
    const le = d.call(.link, 1, &.{ bytes(&li), "hard\x00" }).as(fuse.EntryOut);
    try expectEqual(entry.nodeid, le.nodeid);
    try expectEqual(@as(u32, 2), le.attr.nlink);
    try expectEqual((try f.tmp.stat("share/hard")).ino, (try f.tmp.stat("share/dir/moved")).ino);

    const sl = d.call(.symlink, 1, &.{ "link\x00", "dir/moved\x00" }).as(fuse.EntryOut);
    try expectEqual(@as(u32, sys.S.IFLNK), sl.attr.mode & sys.S.IFMT);
    try expectEqualStrings("dir/moved", d.call(.readlink, sl.nodeid, &.{}).payload);
    try expectEqual(errno(.INVAL), d.call(.readlink, entry.nodeid, &.{}).err);

    const mk = fuse.MknodIn{ .mode = sys.S.IFIFO | 0o600, .rdev = 0, .umask = 0, .padding = 0 };
    const fifo = d.call(.mknod, 1, &.{ bytes(&mk), "fifo\x00" }).as(fuse.EntryOut);
    try expectEqual(@as(u32, sys.S.IFIFO), (try f.tmp.stat("share/fifo")).mode & sys.S.IFMT);
    try expectEqual(errno(.NXIO), d.open(fifo.nodeid, 0).err);

    try expectEqual(@as(i32, 0), d.call(.unlink, 1, &.{"hard\x00"}).err);
    try expectEqual(@as(i32, 0), d.call(.unlink, dir.nodeid, &.{"moved\x00"}).err);
    try expectEqual(@as(i32, 0), d.call(.rmdir, 1, &.{"dir\x00"}).err);
    try expect(!f.tmp.exists("share/dir"));
    const r2 = fuse.Rename2In{ .newdir = 1, .flags = 1, .padding = 0 };
    try f.tmp.file("share/a", "a");
    try f.tmp.file("share/b", "b");
    try expectEqual(errno(.EXIST), d.call(.rename2, 1, &.{ bytes(&r2), "a\x00", "b\x00" }).err);
    const ex = fuse.Rename2In{ .newdir = 1, .flags = 2, .padding = 0 };
    try expectEqual(@as(i32, 0), d.call(.rename2, 1, &.{ bytes(&ex), "a\x00", "b\x00" }).err);
    try expectEqualStrings("b", try f.tmp.read("share/a", &buf));
    st = try f.tmp.stat("share/b");
    try expectEqual(@as(i64, 1), st.size);
}

test "the one-shot /init.krun, overlay files and a virtual-only share" {
    var tmp = try Tmp.init();
    defer tmp.deinit();
    const server = try Server.init(gpa, .{ .root = null });
    defer server.deinit();
    try server.addOverlayFile("init.krun", "\x7fELF-init", 0o755, true);
    try server.addOverlayDir("dev", 0o755);
    try server.addOverlayFile("etc/zkrun.json", "{\"a\":1}", 0o644, false);
    const d = try Driver.create(gpa, server);
    defer gpa.destroy(d);
    try d.init();
    const e = d.lookup(1, "init.krun").as(fuse.EntryOut);
    try expectEqual(@as(u32, sys.S.IFREG | 0o755), e.attr.mode);
    try expectEqual(@as(u64, 9), e.attr.size);
    try expectEqual(errno(.NOENT), d.lookup(1, "init.krun").err);
    const fh = try d.openFh(e.nodeid, sys.O.RDONLY);
    try expectEqualStrings("ELF-init", d.read(fh, 1, 100).payload);
    try expectEqual(errno(.ROFS), d.open(e.nodeid, sys.O.WRONLY).err);
    try expectEqual(errno(.BADF), d.write(fh, 0, "x").err);
    const etc = try d.lookupId(1, "etc");
    const cfg = d.lookup(etc, "zkrun.json").as(fuse.EntryOut);
    try expectEqual(@as(u64, 7), cfg.attr.size);
    try expectEqual(errno(.ROFS), d.mkdir(1, "x", 0o755).err);
    const dfh = d.call(.opendir, 1, &.{bytes(&fuse.OpenIn{ .flags = 0, .open_flags = 0 })}).as(fuse.OpenOut).fh;
    var names: [8][]const u8 = undefined;
    const n = try listDir(d, dfh, false, &names);
    // ".", "..", "dev", "etc" (virtual, since the root is): init.krun is never listed.
    try expectEqual(@as(usize, 4), n);
    try expect(has(names[0..n], "dev") and has(names[0..n], "etc") and !has(names[0..n], "init.krun"));
}

test "init.krun on a host root shadows nothing else and stays out of readdir" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.server.addOverlayFile("init.krun", "INIT", 0o755, true);
    try f.tmp.file("share/file", "x");
    try expectEqual(@as(u64, 4), f.d.lookup(1, "init.krun").as(fuse.EntryOut).attr.size);
    try expectEqual(@as(u64, 0), f.d.lookup(1, "init.krun").as(fuse.EntryOut).nodeid);
    try expectEqual(@as(u64, 1), f.d.lookup(1, "file").as(fuse.EntryOut).attr.size);
}

test "the exit-code ioctl on the root is stored; other ioctls are refused" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/file", "x");
    const node = try f.d.lookupId(1, "file");
    var in = std.mem.zeroes(fuse.IoctlIn);
    in.cmd = Server.ioctl_exit_code;
    in.arg = 42;
    try expectEqual(@as(?i32, null), f.server.exitCode());
    try expectEqual(errno(.NOTTY), f.d.call(.ioctl, node, &.{bytes(&in)}).err);
    try expectEqual(@as(?i32, null), f.server.exitCode());
    in.flags = fuse.ioctl_dir;
    try expectEqual(@as(i32, 0), f.d.call(.ioctl, 1, &.{bytes(&in)}).as(fuse.IoctlOut).result);
    try expectEqual(@as(?i32, 42), f.server.exitCode());
    in.cmd = 0x5401;
    try expectEqual(errno(.NOTTY), f.d.call(.ioctl, 1, &.{bytes(&in)}).err);
}

test "only the guest's init reports an exit code, and only 0..255; the first report wins" {
    const saved_level = std.testing.log_level;
    std.testing.log_level = .err; // the refusal warning is the point
    defer std.testing.log_level = saved_level;
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    var in = std.mem.zeroes(fuse.IoctlIn);
    in.cmd = Server.ioctl_exit_code;
    in.flags = fuse.ioctl_dir;
    // A uid-1000 process and a guest root that is not pid 1: refused, nothing stored.
    f.d.pid = 700;
    f.d.uid = 1000;
    in.arg = 7;
    try expectEqual(errno(.PERM), f.d.call(.ioctl, 1, &.{bytes(&in)}).err);
    f.d.uid = 0;
    in.arg = @as(u64, @as(u32, @bitCast(@as(i32, -110))));
    try expectEqual(errno(.PERM), f.d.call(.ioctl, 1, &.{bytes(&in)}).err);
    try expectEqual(@as(?i32, null), f.server.exitCode());
    // init itself with a value that is no exit status: -110 as the guest's int, 256, 2^63.
    f.d.pid = 1;
    for ([_]u64{ in.arg, 256, 0xffff_ffff_ffff_ff92, 1 << 63 }) |arg| {
        in.arg = arg;
        try expectEqual(errno(.INVAL), f.d.call(.ioctl, 1, &.{bytes(&in)}).err);
    }
    try expectEqual(@as(?i32, null), f.server.exitCode());
    in.arg = 255;
    try expectEqual(@as(i32, 0), f.d.call(.ioctl, 1, &.{bytes(&in)}).as(fuse.IoctlOut).result);
    in.arg = 3;
    try expectEqual(@as(i32, 0), f.d.call(.ioctl, 1, &.{bytes(&in)}).as(fuse.IoctlOut).result);
    try expectEqual(@as(?i32, 255), f.server.exitCode());
}

test "a read-only share refuses every mutating op with EROFS" {
    var f = try Fixture.init(.{ .root = null, .read_only = true });
    defer f.deinit();
    try f.tmp.file("share/file", "data");
    const d = f.d;
    const node = try d.lookupId(1, "file");
    try expectEqual(errno(.ROFS), d.open(node, sys.O.WRONLY).err);
    try expectEqual(errno(.ROFS), d.open(node, sys.O.RDONLY | sys.O.TRUNC).err);
    const fh = try d.openFh(node, sys.O.RDONLY);
    try expectEqualStrings("data", d.read(fh, 0, 10).payload);
    const mk = fuse.MknodIn{ .mode = sys.S.IFREG | 0o600, .rdev = 0, .umask = 0, .padding = 0 };
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.mode, .mode = 0o777 });
    const li = fuse.LinkIn{ .oldnodeid = node };
    const rn = fuse.RenameIn{ .newdir = 1 };
    const sx = fuse.SetxattrIn{ .size = 1, .flags = 0 };
    const fa = std.mem.zeroInit(fuse.FallocateIn, .{ .fh = fh, .length = 10 });
    const cases = [_]struct { fuse.Opcode, u64, []const []const u8 }{
        .{ .setattr, node, &.{bytes(&sa)} },
        .{ .symlink, 1, &.{ "l\x00", "t\x00" } },
        .{ .mknod, 1, &.{ bytes(&mk), "n\x00" } },
        .{ .mkdir, 1, &.{ bytes(&fuse.MkdirIn{ .mode = 0o755, .umask = 0 }), "d\x00" } },
        .{ .unlink, 1, &.{"file\x00"} },
        .{ .rmdir, 1, &.{"file\x00"} },
        .{ .rename, 1, &.{ bytes(&rn), "file\x00", "g\x00" } },
        .{ .link, 1, &.{ bytes(&li), "h\x00" } },
        .{ .setxattr, node, &.{ bytes(&sx), "user.x\x00", "v" } },
        .{ .removexattr, node, &.{"user.x\x00"} },
        .{ .fallocate, node, &.{bytes(&fa)} },
        .{ .create, 1, &.{ bytes(&fuse.CreateIn{ .flags = 1, .mode = 0o644, .umask = 0, .open_flags = 0 }), "c\x00" } },
    };
    for (cases) |case| try expectEqual(errno(.ROFS), d.call(case[0], case[1], case[2]).err);
    try expectEqual(errno(.ROFS), d.write(fh, 0, "x").err);
    var buf: [16]u8 = undefined;
    try expectEqualStrings("data", try f.tmp.read("share/file", &buf));
    try expectEqual(@as(u32, sys.S.IFREG | 0o644), (try f.tmp.stat("share/file")).mode);
}

test "POSIX locks: GETLK/SETLK as OFD locks, SETLKW waits without blocking the worker" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/file", "0123456789");
    const d = f.d;
    const node = try d.lookupId(1, "file");
    const a = try d.openFh(node, sys.O.RDWR);
    const b = try d.openFh(node, sys.O.RDWR);
    var lk = std.mem.zeroes(fuse.LkIn);
    lk.fh = a;
    lk.lk = .{ .start = 0, .end = 4, .type = linux.F.WRLCK, .pid = 7 };
    if (sys.posix) {
        // The posix (macOS) backend: no OFD locks there, ENOSYS, and the guest locks locally.
        for ([_]fuse.Opcode{ .getlk, .setlk, .setlkw }) |op| try expectEqual(errno(.NOSYS), d.call(op, node, &.{bytes(&lk)}).err);
        return;
    }
    try expectEqual(@as(i32, 0), d.call(.setlk, node, &.{bytes(&lk)}).err);
    lk.fh = b;
    try expectEqual(errno(.AGAIN), d.call(.setlk, node, &.{bytes(&lk)}).err);
    const got = d.call(.getlk, node, &.{bytes(&lk)}).as(fuse.LkOut).lk;
    try expectEqual(@as(u32, linux.F.WRLCK), got.type);
    try expectEqual(@as(u64, 4), got.end);
    try expectEqual(Server.Outcome.blocked, d.call(.setlkw, node, &.{bytes(&lk)}).outcome);
    lk.lk.start = 5;
    lk.lk.end = std.math.maxInt(i64);
    try expectEqual(@as(i32, 0), d.call(.setlk, node, &.{bytes(&lk)}).err);
    _ = d.release(a);
    lk.lk = .{ .start = 0, .end = 4, .type = linux.F.WRLCK, .pid = 7 };
    try expectEqual(@as(i32, 0), d.call(.setlkw, node, &.{bytes(&lk)}).err);
    lk.lk.start = 9;
    lk.lk.end = 3;
    try expectEqual(errno(.INVAL), d.call(.setlk, node, &.{bytes(&lk)}).err);
}

test "xattrs, STATFS, FSYNC, FLUSH, LSEEK, FALLOCATE, COPY_FILE_RANGE, ACCESS, SYNCFS" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/file", "0123456789");
    const d = f.d;
    const node = try d.lookupId(1, "file");
    const fh = try d.openFh(node, sys.O.RDWR);

    const sx = fuse.SetxattrIn{ .size = 3, .flags = 0 };
    const set = d.call(.setxattr, node, &.{ bytes(&sx), "user.zkrun\x00", "abc" });
    if (set.err == errno(.OPNOTSUPP)) {
        std.debug.print("xattr part skipped: the test directory's filesystem has no user xattrs\n", .{});
    } else {
        try expectEqual(@as(i32, 0), set.err);
        const gx0 = fuse.GetxattrIn{ .size = 0, .padding = 0 };
        try expectEqual(@as(u32, 3), d.call(.getxattr, node, &.{ bytes(&gx0), "user.zkrun\x00" }).as(fuse.GetxattrOut).size);
        const gx = fuse.GetxattrIn{ .size = 64, .padding = 0 };
        try expectEqualStrings("abc", d.call(.getxattr, node, &.{ bytes(&gx), "user.zkrun\x00" }).payload);
        const gx1 = fuse.GetxattrIn{ .size = 1, .padding = 0 };
        try expectEqual(errno(.RANGE), d.call(.getxattr, node, &.{ bytes(&gx1), "user.zkrun\x00" }).err);
        try expect(std.mem.indexOf(u8, d.call(.listxattr, node, &.{bytes(&gx)}).payload, "user.zkrun\x00") != null);
        try expectEqual(@as(i32, 0), d.call(.removexattr, node, &.{"user.zkrun\x00"}).err);
        try expectEqual(errno(.NODATA), d.call(.getxattr, node, &.{ bytes(&gx), "user.zkrun\x00" }).err);
    }

    const sf = d.call(.statfs, 1, &.{}).as(fuse.Kstatfs);
    try expect(sf.bsize > 0 and sf.namelen > 0);
    const fs = fuse.FsyncIn{ .fh = fh, .fsync_flags = 1, .padding = 0 };
    try expectEqual(@as(i32, 0), d.call(.fsync, node, &.{bytes(&fs)}).err);
    const fl = std.mem.zeroInit(fuse.FlushIn, .{ .fh = fh });
    try expectEqual(@as(i32, 0), d.call(.flush, node, &.{bytes(&fl)}).err);
    const ls = fuse.LseekIn{ .fh = fh, .offset = 0, .whence = 4, .padding = 0 };
    try expectEqual(@as(u64, 10), d.call(.lseek, node, &.{bytes(&ls)}).as(fuse.LseekOut).offset);
    const fa = std.mem.zeroInit(fuse.FallocateIn, .{ .fh = fh, .offset = 0, .length = 100 });
    try expectEqual(@as(i32, 0), d.call(.fallocate, node, &.{bytes(&fa)}).err);
    try expectEqual(@as(i64, 100), (try f.tmp.stat("share/file")).size);

    const c = d.createFile(1, "copy", sys.O.RDWR, 0o644);
    var oo: fuse.OpenOut = undefined;
    @memcpy(std.mem.asBytes(&oo), c.payload[@sizeOf(fuse.EntryOut)..][0..@sizeOf(fuse.OpenOut)]);
    const cp = fuse.CopyFileRangeIn{ .fh_in = fh, .off_in = 2, .nodeid_out = c.as(fuse.EntryOut).nodeid, .fh_out = oo.fh, .off_out = 0, .len = 5, .flags = 0 };
    if (sys.posix) {
        // The posix (macOS) backend has no copy_file_range: ENOSYS, the guest copies itself.
        try expectEqual(errno(.NOSYS), d.call(.copy_file_range, node, &.{bytes(&cp)}).err);
    } else {
        try expectEqual(@as(u32, 5), d.call(.copy_file_range, node, &.{bytes(&cp)}).as(fuse.WriteOut).size);
        var buf: [16]u8 = undefined;
        try expectEqualStrings("23456", try f.tmp.read("share/copy", &buf));
    }

    const ac = fuse.AccessIn{ .mask = 4, .padding = 0 };
    try expectEqual(@as(i32, 0), d.call(.access, node, &.{bytes(&ac)}).err);
    // No syncfs on macOS: the posix backend replies ENOSYS.
    try expectEqual(if (sys.posix) errno(.NOSYS) else 0, d.call(.syncfs, 1, &.{bytes(&@as(u64, 0))}).err);
}

test "FORGET and BATCH_FORGET retire node ids; unknown opcodes get ENOSYS" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/a", "a");
    try f.tmp.file("share/b", "b");
    const d = f.d;
    const a = try d.lookupId(1, "a");
    _ = try d.lookupId(1, "a");
    const b = try d.lookupId(1, "b");
    const live = f.server.inodes.live;
    d.forget(a, 1);
    try expectEqual(@as(i32, 0), d.getattr(a).err);
    d.forget(a, 1);
    try expectEqual(errno(.NOENT), d.getattr(a).err);
    const bf = fuse.BatchForgetIn{ .count = 1, .dummy = 0 };
    const one = fuse.ForgetOne{ .nodeid = b, .nlookup = 1 };
    try expectEqual(Server.Outcome.none, d.call(.batch_forget, 0, &.{ bytes(&bf), bytes(&one) }).outcome);
    try expectEqual(errno(.NOENT), d.getattr(b).err);
    try expectEqual(live - 2, f.server.inodes.live);
    d.forget(1, 1000);
    try expectEqual(@as(i32, 0), d.getattr(1).err);
    try expectEqual(errno(.NOSYS), d.call(.bmap, 1, &.{bytes(&[_]u64{ 0, 0 })}).err);
    try expectEqual(errno(.NOSYS), d.call(@fromBackingInt(@intCast(9999)), 1, &.{}).err);
    try expectEqual(errno(.NOSYS), d.call(.setupmapping, 1, &.{bytes(&[_]u64{ 0, 0, 0, 0, 0 })}).err);
    try expectEqual(Server.Outcome.none, d.call(.interrupt, 0, &.{bytes(&@as(u64, 3))}).outcome);
    try expectEqual(@as(i32, 0), d.call(.destroy, 0, &.{}).err);
}

test "a device reset ends the session: handles and inodes are dropped, INIT is needed again" {
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    try f.tmp.file("share/a", "a");
    const node = try f.d.lookupId(1, "a");
    const fh = try f.d.openFh(node, sys.O.RDONLY);
    try expectEqual(@as(u32, 2), f.server.inodes.live);
    f.server.endSession();
    try expectEqual(@as(u32, 1), f.server.inodes.live);
    try expectEqual(errno(.IO), f.d.getattr(1).err);
    try f.d.init();
    try expectEqual(errno(.NOENT), f.d.getattr(node).err);
    try expectEqual(errno(.BADF), f.d.read(fh, 0, 1).err);
    try expectEqual(@as(i32, 0), f.d.getattr(1).err);
}

fn chmodHost(tmp: *Tmp, sub: [:0]const u8, mode: u32) !void {
    const fd = try sys.openat(tmp.fd, sub, sys.O.RDONLY | sys.O.CLOEXEC, 0);
    defer sys.close(fd);
    if (linux.errno(linux.fchmod(fd, mode)) != .SUCCESS) return error.ChmodFailed;
}

fn setMode(d: *Driver, nodeid: u64, mode: u32) i32 {
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.mode, .mode = mode });
    return d.call(.setattr, nodeid, &.{bytes(&sa)}).err;
}

test "a root VMM strips set-id bits from what a guest creates, chmods or writes as another uid" {
    if (sys.geteuid() != 0) return error.SkipZigTest; // needs root: chown to guest uids
    var f = try Fixture.init(.{ .root = null });
    defer f.deinit();
    const d = f.d;
    try expect(f.server.strip_setid); // the default as root
    // A guest root creates setuid/setgid files and chmods them: none keeps the bits.
    const c = d.createFile(1, "suid", sys.O.RDWR, sys.S.IFREG | 0o6755);
    try expectEqual(@as(i32, 0), c.err);
    const node = c.as(fuse.EntryOut).nodeid;
    try expectEqual(@as(u32, sys.S.IFREG | 0o755), (try f.tmp.stat("share/suid")).mode);
    try expectEqual(@as(i32, 0), setMode(d, node, 0o4755));
    try expectEqual(@as(u32, sys.S.IFREG | 0o755), (try f.tmp.stat("share/suid")).mode);
    try expectEqual(@as(i32, 0), setMode(d, node, 0o2711));
    try expectEqual(@as(u32, sys.S.IFREG | 0o711), (try f.tmp.stat("share/suid")).mode);
    // The sticky bit and a directory's setgid (group inheritance) are not privileges.
    try expectEqual(@as(i32, 0), setMode(d, node, 0o1755));
    try expectEqual(@as(u32, sys.S.IFREG | 0o1755), (try f.tmp.stat("share/suid")).mode);
    const dir = d.mkdir(1, "shared", 0o775).as(fuse.EntryOut).nodeid;
    try expectEqual(@as(i32, 0), setMode(d, dir, 0o2770));
    try expectEqual(@as(u32, sys.S.IFDIR | 0o2770), (try f.tmp.stat("share/shared")).mode);
    const mk = fuse.MknodIn{ .mode = sys.S.IFREG | 0o4700, .rdev = 0, .umask = 0, .padding = 0 };
    try expectEqual(@as(i32, 0), d.call(.mknod, 1, &.{ bytes(&mk), "node\x00" }).err);
    try expectEqual(@as(u32, sys.S.IFREG | 0o700), (try f.tmp.stat("share/node")).mode);

    // A setuid file of the host's (owned by root): a write by uid 1000 clears the bits, a
    // write by its owner keeps them (as on Linux for an owner with CAP_FSETID).
    try f.tmp.file("share/hostsuid", "x");
    try chmodHost(&f.tmp, "share/hostsuid", 0o6755);
    const host_node = try d.lookupId(1, "hostsuid");
    const fh = try d.openFh(host_node, sys.O.RDWR);
    try expectEqual(@as(u32, 1), d.write(fh, 0, "y").as(fuse.WriteOut).size);
    try expectEqual(@as(u32, sys.S.IFREG | 0o6755), (try f.tmp.stat("share/hostsuid")).mode);
    d.uid = 1000;
    try expectEqual(@as(u32, 1), d.write(fh, 1, "z").as(fuse.WriteOut).size);
    try expectEqual(@as(u32, sys.S.IFREG | 0o755), (try f.tmp.stat("share/hostsuid")).mode);
    _ = d.release(fh);
    // A truncate by another uid is a write too.
    try chmodHost(&f.tmp, "share/hostsuid", 0o4755);
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.size, .size = 1 });
    try expectEqual(@as(i32, 0), d.call(.setattr, host_node, &.{bytes(&sa)}).err);
    try expectEqual(@as(u32, sys.S.IFREG | 0o755), (try f.tmp.stat("share/hostsuid")).mode);
}

test "a server told not to strip keeps the guest's set-id bits" {
    var f = try Fixture.init(.{ .root = null, .strip_setid = false });
    defer f.deinit();
    const c = f.d.createFile(1, "suid", sys.O.RDWR, sys.S.IFREG | 0o755);
    try expectEqual(@as(i32, 0), c.err);
    try expectEqual(@as(i32, 0), setMode(f.d, c.as(fuse.EntryOut).nodeid, 0o4755));
    try expectEqual(@as(u32, sys.S.IFREG | 0o4755), (try f.tmp.stat("share/suid")).mode);
}

fn modeOf(tmp: *Tmp, sub: [:0]const u8) !u32 {
    return (try tmp.stat(sub)).mode & 0o7777;
}

fn writeFlagged(d: *Driver, fh: u64, offset: u64, data: []const u8, flags: u32) i32 {
    const in = std.mem.zeroInit(fuse.WriteIn, .{ .fh = fh, .offset = offset, .size = @as(u32, @intCast(data.len)), .write_flags = flags });
    return d.call(.write, 0, &.{ bytes(&in), data }).err;
}

fn setattrFlagged(d: *Driver, nodeid: u64, valid: u32) i32 {
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = valid, .size = 1 });
    return d.call(.setattr, nodeid, &.{bytes(&sa)}).err;
}

test "HANDLE_KILLPRIV_V2: a WRITE, truncate, O_TRUNC open or chown that asks clears set-id bits" {
    // As root the host keeps set-id bits on our writes (CAP_FSETID): only the server can clear them.
    if (sys.geteuid() != 0) return error.SkipZigTest;
    // Not stripping: only what the guest kernel asks for counts here.
    var f = try Fixture.init(.{ .root = null, .strip_setid = false });
    defer f.deinit();
    const d = f.d;
    try expect(f.server.killpriv_v2);
    try f.tmp.file("share/w", "x");
    try chmodHost(&f.tmp, "share/w", 0o6755);
    const node = try d.lookupId(1, "w");
    const fh = try d.openFh(node, sys.O.RDWR);
    // A write without the flag (a caller with CAP_FSETID) keeps the bits; with it they go.
    try expectEqual(@as(i32, 0), writeFlagged(d, fh, 0, "y", 0));
    try expectEqual(@as(u32, 0o6755), try modeOf(&f.tmp, "share/w"));
    try expectEqual(@as(i32, 0), writeFlagged(d, fh, 1, "z", fuse.write_kill_suidgid));
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/w"));
    // S_ISGID without group execute stays for a caller in the file's group (gid 0 here), and
    // goes for one outside it, as Linux decides.
    try chmodHost(&f.tmp, "share/w", 0o2745);
    try expectEqual(@as(i32, 0), writeFlagged(d, fh, 2, "z", fuse.write_kill_suidgid));
    try expectEqual(@as(u32, 0o2745), try modeOf(&f.tmp, "share/w"));
    d.gid = 1000;
    try expectEqual(@as(i32, 0), writeFlagged(d, fh, 3, "z", fuse.write_kill_suidgid));
    try expectEqual(@as(u32, 0o745), try modeOf(&f.tmp, "share/w"));
    d.gid = 0;
    _ = d.release(fh);
    // A truncate (SETATTR size), with and without the flag.
    try chmodHost(&f.tmp, "share/w", 0o4755);
    try expectEqual(@as(i32, 0), setattrFlagged(d, node, fuse.Fattr.size));
    try expectEqual(@as(u32, 0o4755), try modeOf(&f.tmp, "share/w"));
    try expectEqual(@as(i32, 0), setattrFlagged(d, node, fuse.Fattr.size | fuse.Fattr.kill_suidgid));
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/w"));
    // An O_TRUNC open that asks; an OPEN without O_TRUNC never truncates, so never kills.
    try chmodHost(&f.tmp, "share/w", 0o4755);
    const keep: fuse.OpenIn = .{ .flags = sys.O.WRONLY, .open_flags = fuse.open_kill_suidgid };
    _ = d.release(d.call(.open, node, &.{bytes(&keep)}).as(fuse.OpenOut).fh);
    try expectEqual(@as(u32, 0o4755), try modeOf(&f.tmp, "share/w"));
    const trunc: fuse.OpenIn = .{ .flags = sys.O.WRONLY | sys.O.TRUNC, .open_flags = fuse.open_kill_suidgid };
    _ = d.release(d.call(.open, node, &.{bytes(&trunc)}).as(fuse.OpenOut).fh);
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/w"));
    // CREATE of an existing name with O_TRUNC is that open too.
    try chmodHost(&f.tmp, "share/w", 0o4755);
    const cr: fuse.CreateIn = .{ .flags = sys.O.WRONLY | sys.O.TRUNC, .mode = 0o644, .umask = 0, .open_flags = fuse.open_kill_suidgid };
    const c = d.call(.create, 1, &.{ bytes(&cr), "w\x00" });
    try expectEqual(@as(i32, 0), c.err);
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/w"));
    // A chown that asks (the guest kernel flags every chown of a non-directory).
    try chmodHost(&f.tmp, "share/w", 0o4755);
    const sa = std.mem.zeroInit(fuse.SetattrIn, .{ .valid = fuse.Fattr.uid | fuse.Fattr.gid | fuse.Fattr.kill_suidgid, .uid = 0, .gid = 0 });
    try expectEqual(@as(i32, 0), d.call(.setattr, node, &.{bytes(&sa)}).err);
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/w"));
    // A directory's set-group-ID bit (group inheritance) is never a privilege to kill.
    const dir = d.mkdir(1, "gdir", 0o775).as(fuse.EntryOut).nodeid;
    try expectEqual(@as(i32, 0), setMode(d, dir, 0o2775));
    try expectEqual(@as(i32, 0), d.call(.setattr, dir, &.{bytes(&sa)}).err);
    try expectEqual(@as(u32, 0o2775), try modeOf(&f.tmp, "share/gdir"));
}

test "HANDLE_KILLPRIV_V2: COPY_FILE_RANGE and FALLOCATE by a non-root caller clear set-id bits" {
    if (sys.geteuid() != 0) return error.SkipZigTest; // as above
    var f = try Fixture.init(.{ .root = null, .strip_setid = false });
    defer f.deinit();
    const d = f.d;
    try f.tmp.file("share/src", "hello");
    try f.tmp.file("share/dst", "x");
    try chmodHost(&f.tmp, "share/dst", 0o4755);
    const src = try d.openFh(try d.lookupId(1, "src"), sys.O.RDONLY);
    const dst_node = try d.lookupId(1, "dst");
    const dst = try d.openFh(dst_node, sys.O.RDWR);
    const fa = fuse.FallocateIn{ .fh = dst, .offset = 0, .length = 8, .mode = 0, .padding = 0 };
    // Root (taken to hold CAP_FSETID) keeps the bits; another uid does not.
    try expectEqual(@as(i32, 0), d.call(.fallocate, dst_node, &.{bytes(&fa)}).err);
    try expectEqual(@as(u32, 0o4755), try modeOf(&f.tmp, "share/dst"));
    d.uid = 1000;
    try expectEqual(@as(i32, 0), d.call(.fallocate, dst_node, &.{bytes(&fa)}).err);
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/dst"));
    try chmodHost(&f.tmp, "share/dst", 0o4755);
    const cp = fuse.CopyFileRangeIn{ .fh_in = src, .off_in = 0, .nodeid_out = dst_node, .fh_out = dst, .off_out = 0, .len = 5, .flags = 0 };
    const r = d.call(.copy_file_range, dst_node, &.{bytes(&cp)});
    if (r.err == errno(.NOSYS)) return; // the posix (macOS) backend has no copy_file_range
    try expectEqual(@as(i32, 0), r.err);
    try expectEqual(@as(u32, 0o755), try modeOf(&f.tmp, "share/dst"));
}
