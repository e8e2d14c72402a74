//! The FUSE wire ABI (include/uapi/linux/fuse.h, protocol 7.x) as the virtio-fs server speaks
//! it: hand-written extern structs with size tests, opcodes and flag bits. Only what the server
//! uses; every struct is read by copying guest bytes into a local (no alignment assumptions).
const std = @import("std");

pub const kernel_version = 7;
/// The minor we speak. Older guests (< 27) get EPROTO: every struct below has its modern size.
pub const kernel_minor_version = 38;
pub const kernel_minor_min = 27;
pub const root_id: u64 = 1;
/// FUSE_NAME_OFFSET: the dirent header before the name.
pub const name_offset = 24;

pub const Opcode = enum(u32) {
    lookup = 1,
    forget = 2,
    getattr = 3,
    setattr = 4,
    readlink = 5,
    symlink = 6,
    mknod = 8,
    mkdir = 9,
    unlink = 10,
    rmdir = 11,
    rename = 12,
    link = 13,
    open = 14,
    read = 15,
    write = 16,
    statfs = 17,
    release = 18,
    fsync = 20,
    setxattr = 21,
    getxattr = 22,
    listxattr = 23,
    removexattr = 24,
    flush = 25,
    init = 26,
    opendir = 27,
    readdir = 28,
    releasedir = 29,
    fsyncdir = 30,
    getlk = 31,
    setlk = 32,
    setlkw = 33,
    access = 34,
    create = 35,
    interrupt = 36,
    bmap = 37,
    destroy = 38,
    ioctl = 39,
    poll = 40,
    notify_reply = 41,
    batch_forget = 42,
    fallocate = 43,
    readdirplus = 44,
    rename2 = 45,
    lseek = 46,
    copy_file_range = 47,
    setupmapping = 48,
    removemapping = 49,
    syncfs = 50,
    _,
};

/// FUSE_INIT flags (the low 32 bits; bits 32.. travel in flags2).
pub const Init = struct {
    pub const async_read: u32 = 1 << 0;
    pub const posix_locks: u32 = 1 << 1;
    pub const atomic_o_trunc: u32 = 1 << 3;
    pub const export_support: u32 = 1 << 4;
    pub const big_writes: u32 = 1 << 5;
    pub const dont_mask: u32 = 1 << 6;
    pub const flock_locks: u32 = 1 << 10;
    pub const has_ioctl_dir: u32 = 1 << 11;
    pub const auto_inval_data: u32 = 1 << 12;
    pub const do_readdirplus: u32 = 1 << 13;
    pub const readdirplus_auto: u32 = 1 << 14;
    pub const async_dio: u32 = 1 << 15;
    pub const writeback_cache: u32 = 1 << 16;
    pub const parallel_dirops: u32 = 1 << 18;
    pub const posix_acl: u32 = 1 << 20;
    pub const max_pages: u32 = 1 << 22;
    pub const submounts: u32 = 1 << 27;
    pub const handle_killpriv_v2: u32 = 1 << 28;
    pub const setxattr_ext: u32 = 1 << 29;
    pub const init_ext: u32 = 1 << 30;
};

pub const Fattr = struct {
    pub const mode: u32 = 1 << 0;
    pub const uid: u32 = 1 << 1;
    pub const gid: u32 = 1 << 2;
    pub const size: u32 = 1 << 3;
    pub const atime: u32 = 1 << 4;
    pub const mtime: u32 = 1 << 5;
    pub const fh: u32 = 1 << 6;
    pub const atime_now: u32 = 1 << 7;
    pub const mtime_now: u32 = 1 << 8;
    pub const lockowner: u32 = 1 << 9;
    pub const ctime: u32 = 1 << 10;
    pub const kill_suidgid: u32 = 1 << 11;
};

pub const getattr_fh: u32 = 1 << 0;
/// OpenIn/CreateIn.open_flags: an O_TRUNC open by a caller without CAP_FSETID (KILLPRIV_V2).
pub const open_kill_suidgid: u32 = 1 << 0;
/// WriteIn.write_flags: a write by a caller without CAP_FSETID (KILLPRIV_V2).
pub const write_kill_suidgid: u32 = 1 << 2;
pub const fsync_fdatasync: u32 = 1 << 0;
pub const lk_flock: u32 = 1 << 0;
pub const ioctl_unrestricted: u32 = 1 << 1;
pub const ioctl_dir: u32 = 1 << 4;
pub const fopen_keep_cache: u32 = 1 << 1;
pub const fopen_cache_dir: u32 = 1 << 3;

pub const InHeader = extern struct {
    len: u32,
    opcode: u32,
    unique: u64,
    nodeid: u64,
    uid: u32,
    gid: u32,
    pid: u32,
    /// Length of extensions after the arguments, in units of 8 bytes.
    total_extlen: u16,
    padding: u16,
};

pub const OutHeader = extern struct {
    len: u32,
    @"error": i32,
    unique: u64,
};

pub const InitIn = extern struct {
    major: u32,
    minor: u32,
    max_readahead: u32,
    flags: u32,
};

pub const InitOut = extern struct {
    major: u32,
    minor: u32,
    max_readahead: u32,
    flags: u32,
    max_background: u16,
    congestion_threshold: u16,
    max_write: u32,
    time_gran: u32,
    max_pages: u16,
    map_alignment: u16,
    flags2: u32,
    max_stack_depth: u32,
    unused: [6]u32,
};

pub const Attr = extern struct {
    ino: u64,
    size: u64,
    blocks: u64,
    atime: u64,
    mtime: u64,
    ctime: u64,
    atimensec: u32,
    mtimensec: u32,
    ctimensec: u32,
    mode: u32,
    nlink: u32,
    uid: u32,
    gid: u32,
    rdev: u32,
    blksize: u32,
    flags: u32,
};

pub const EntryOut = extern struct {
    nodeid: u64,
    generation: u64,
    entry_valid: u64,
    attr_valid: u64,
    entry_valid_nsec: u32,
    attr_valid_nsec: u32,
    attr: Attr,
};

pub const ForgetIn = extern struct { nlookup: u64 };
pub const ForgetOne = extern struct { nodeid: u64, nlookup: u64 };
pub const BatchForgetIn = extern struct { count: u32, dummy: u32 };

pub const GetattrIn = extern struct { getattr_flags: u32, dummy: u32, fh: u64 };

pub const AttrOut = extern struct {
    attr_valid: u64,
    attr_valid_nsec: u32,
    dummy: u32,
    attr: Attr,
};

pub const SetattrIn = extern struct {
    valid: u32,
    padding: u32,
    fh: u64,
    size: u64,
    lock_owner: u64,
    atime: u64,
    mtime: u64,
    ctime: u64,
    atimensec: u32,
    mtimensec: u32,
    ctimensec: u32,
    mode: u32,
    unused4: u32,
    uid: u32,
    gid: u32,
    unused5: u32,
};

pub const MknodIn = extern struct { mode: u32, rdev: u32, umask: u32, padding: u32 };
pub const MkdirIn = extern struct { mode: u32, umask: u32 };
pub const RenameIn = extern struct { newdir: u64 };
pub const Rename2In = extern struct { newdir: u64, flags: u32, padding: u32 };
pub const LinkIn = extern struct { oldnodeid: u64 };
pub const OpenIn = extern struct { flags: u32, open_flags: u32 };
pub const CreateIn = extern struct { flags: u32, mode: u32, umask: u32, open_flags: u32 };
pub const OpenOut = extern struct { fh: u64, open_flags: u32, backing_id: i32 };
pub const ReleaseIn = extern struct { fh: u64, flags: u32, release_flags: u32, lock_owner: u64 };
pub const FlushIn = extern struct { fh: u64, unused: u32, padding: u32, lock_owner: u64 };

pub const ReadIn = extern struct {
    fh: u64,
    offset: u64,
    size: u32,
    read_flags: u32,
    lock_owner: u64,
    flags: u32,
    padding: u32,
};

pub const WriteIn = extern struct {
    fh: u64,
    offset: u64,
    size: u32,
    write_flags: u32,
    lock_owner: u64,
    flags: u32,
    padding: u32,
};

pub const WriteOut = extern struct { size: u32, padding: u32 };

pub const Kstatfs = extern struct {
    blocks: u64,
    bfree: u64,
    bavail: u64,
    files: u64,
    ffree: u64,
    bsize: u32,
    namelen: u32,
    frsize: u32,
    padding: u32,
    spare: [6]u32,
};

pub const FsyncIn = extern struct { fh: u64, fsync_flags: u32, padding: u32 };
/// The 8-byte form: we never offer FUSE_SETXATTR_EXT.
pub const SetxattrIn = extern struct { size: u32, flags: u32 };
pub const GetxattrIn = extern struct { size: u32, padding: u32 };
pub const GetxattrOut = extern struct { size: u32, padding: u32 };

pub const FileLock = extern struct {
    start: u64,
    /// Inclusive; offset_max means "to the end of file".
    end: u64,
    type: u32,
    pid: u32,
};

pub const LkIn = extern struct { fh: u64, owner: u64, lk: FileLock, lk_flags: u32, padding: u32 };
pub const LkOut = extern struct { lk: FileLock };
pub const AccessIn = extern struct { mask: u32, padding: u32 };
pub const InterruptIn = extern struct { unique: u64 };

pub const IoctlIn = extern struct {
    fh: u64,
    flags: u32,
    cmd: u32,
    arg: u64,
    in_size: u32,
    out_size: u32,
};

pub const IoctlOut = extern struct { result: i32, flags: u32, in_iovs: u32, out_iovs: u32 };

pub const FallocateIn = extern struct { fh: u64, offset: u64, length: u64, mode: u32, padding: u32 };
pub const LseekIn = extern struct { fh: u64, offset: u64, whence: u32, padding: u32 };
pub const LseekOut = extern struct { offset: u64 };

pub const CopyFileRangeIn = extern struct {
    fh_in: u64,
    off_in: u64,
    nodeid_out: u64,
    fh_out: u64,
    off_out: u64,
    len: u64,
    flags: u64,
};

pub const Dirent = extern struct {
    ino: u64,
    off: u64,
    namelen: u32,
    type: u32,
};

/// FUSE_REC_ALIGN: dirents are padded to 8 bytes.
pub fn direntSize(header: usize, name_len: usize) usize {
    return std.mem.alignForward(usize, header + name_len, 8);
}

test "FUSE structs have the kernel's sizes" {
    const sizes = .{
        .{ InHeader, 40 },        .{ OutHeader, 16 },       .{ InitIn, 16 },     .{ InitOut, 64 },
        .{ Attr, 88 },            .{ EntryOut, 128 },       .{ ForgetIn, 8 },    .{ ForgetOne, 16 },
        .{ BatchForgetIn, 8 },    .{ GetattrIn, 16 },       .{ AttrOut, 104 },   .{ SetattrIn, 88 },
        .{ MknodIn, 16 },         .{ MkdirIn, 8 },          .{ RenameIn, 8 },    .{ Rename2In, 16 },
        .{ LinkIn, 8 },           .{ OpenIn, 8 },           .{ CreateIn, 16 },   .{ OpenOut, 16 },
        .{ ReleaseIn, 24 },       .{ FlushIn, 24 },         .{ ReadIn, 40 },     .{ WriteIn, 40 },
        .{ WriteOut, 8 },         .{ Kstatfs, 80 },         .{ FsyncIn, 16 },    .{ SetxattrIn, 8 },
        .{ GetxattrIn, 8 },       .{ GetxattrOut, 8 },      .{ FileLock, 24 },   .{ LkIn, 48 },
        .{ LkOut, 24 },           .{ AccessIn, 8 },         .{ InterruptIn, 8 }, .{ IoctlIn, 32 },
        .{ IoctlOut, 16 },        .{ FallocateIn, 32 },     .{ LseekIn, 24 },    .{ LseekOut, 8 },
        .{ CopyFileRangeIn, 56 }, .{ Dirent, name_offset },
    };
    inline for (sizes) |pair| try std.testing.expectEqual(pair[1], @sizeOf(pair[0]));
    try std.testing.expectEqual(40, @offsetOf(EntryOut, "attr"));
    try std.testing.expectEqual(60, @offsetOf(Attr, "mode"));
    try std.testing.expectEqual(8, @offsetOf(LkIn, "owner") - @offsetOf(LkIn, "fh"));
    try std.testing.expectEqual(28, @offsetOf(InitOut, "max_pages"));
    try std.testing.expectEqual(24, @offsetOf(IoctlIn, "in_size"));
}
