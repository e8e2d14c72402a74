//! The one errno convention of zkrun's three syscall layers (sys/linux.zig, init/sys.zig,
//! virtio/fs/sys.zig): a raw Linux call's result goes through `check`, which turns a failure
//! into the Zig error named after its errno (`error.NOENT`, `error.INTR`, ...). So every
//! wrapper returns `Error!T`, callers switch on the errnos they handle, and `errnoOf` gives the
//! exact errno back (the virtio-fs server replies it to the guest). Built as the named module
//! `sys_errno` (build.zig): the static init, libkrun.so and the tests all import this one file.
//!
//! The numbers are Linux's (std.os.linux.E): the guest's ABI, so also what a macOS host
//! backend of the fs server hands the guest.
const std = @import("std");

pub const E = std.os.linux.E;

/// One error per errno, named as std.os.linux.E names it. Written out because Zig 0.17 cannot
/// build an error set at compile time (no @Type, no @ErrorSet); the test below checks that it
/// names exactly E's errnos.
pub const Error = error{
    PERM,
    NOENT,
    SRCH,
    INTR,
    IO,
    NXIO,
    @"2BIG",
    NOEXEC,
    BADF,
    CHILD,
    AGAIN,
    NOMEM,
    ACCES,
    FAULT,
    NOTBLK,
    BUSY,
    EXIST,
    XDEV,
    NODEV,
    NOTDIR,
    ISDIR,
    INVAL,
    NFILE,
    MFILE,
    NOTTY,
    TXTBSY,
    FBIG,
    NOSPC,
    SPIPE,
    ROFS,
    MLINK,
    PIPE,
    DOM,
    RANGE,
    DEADLK,
    NAMETOOLONG,
    NOLCK,
    NOSYS,
    NOTEMPTY,
    LOOP,
    NOMSG,
    IDRM,
    CHRNG,
    L2NSYNC,
    L3HLT,
    L3RST,
    LNRNG,
    UNATCH,
    NOCSI,
    L2HLT,
    BADE,
    BADR,
    XFULL,
    NOANO,
    BADRQC,
    BADSLT,
    BFONT,
    NOSTR,
    NODATA,
    TIME,
    NOSR,
    NONET,
    NOPKG,
    REMOTE,
    NOLINK,
    ADV,
    SRMNT,
    COMM,
    PROTO,
    MULTIHOP,
    DOTDOT,
    BADMSG,
    OVERFLOW,
    NOTUNIQ,
    BADFD,
    REMCHG,
    LIBACC,
    LIBBAD,
    LIBSCN,
    LIBMAX,
    LIBEXEC,
    ILSEQ,
    RESTART,
    STRPIPE,
    USERS,
    NOTSOCK,
    DESTADDRREQ,
    MSGSIZE,
    PROTOTYPE,
    NOPROTOOPT,
    PROTONOSUPPORT,
    SOCKTNOSUPPORT,
    OPNOTSUPP,
    PFNOSUPPORT,
    AFNOSUPPORT,
    ADDRINUSE,
    ADDRNOTAVAIL,
    NETDOWN,
    NETUNREACH,
    NETRESET,
    CONNABORTED,
    CONNRESET,
    NOBUFS,
    ISCONN,
    NOTCONN,
    SHUTDOWN,
    TOOMANYREFS,
    TIMEDOUT,
    CONNREFUSED,
    HOSTDOWN,
    HOSTUNREACH,
    ALREADY,
    INPROGRESS,
    STALE,
    UCLEAN,
    NOTNAM,
    NAVAIL,
    ISNAM,
    REMOTEIO,
    DQUOT,
    NOMEDIUM,
    MEDIUMTYPE,
    CANCELED,
    NOKEY,
    KEYEXPIRED,
    KEYREVOKED,
    KEYREJECTED,
    OWNERDEAD,
    NOTRECOVERABLE,
    RFKILL,
    HWPOISON,
    NSRNODATA,
    NSRFORMERR,
    NSRSERVFAIL,
    NSRNOTFOUND,
    NSRNOTIMP,
    NSRREFUSED,
    NSRBADQUERY,
    NSRBADNAME,
    NSRBADFAMILY,
    NSRBADRESP,
    NSRCONNREFUSED,
    NSRTIMEOUT,
    NSROF,
    NSRFILE,
    NSRNOMEM,
    NSRDESTRUCTION,
    NSRQUERYDOMAINTOOLONG,
    NSRCNAMELOOP,
};

/// The kernel's return value, or the error of its errno.
pub fn check(rc: usize) Error!usize {
    const e = std.os.linux.errno(rc);
    if (e == .SUCCESS) return rc;
    return errorOf(e);
}

/// The error of errno `e` (not SUCCESS). An errno outside E (none reaches user space from the
/// kernel) is EIO.
pub fn errorOf(e: E) Error {
    const i = @backingInt(e);
    if (i < by_errno.len) if (by_errno[i]) |err| return err;
    return error.IO;
}

/// The errno of `err`: the exact number the kernel returned.
pub fn errnoOf(err: Error) E {
    return switch (err) {
        inline else => |known| @field(E, @errorName(known)),
    };
}

const by_errno = blk: {
    const info = @typeInfo(E).@"enum";
    var max: usize = 0;
    for (info.field_values) |v| max = @max(max, v);
    var table: [max + 1]?Error = @splat(null);
    for (info.field_names, info.field_values) |name, v| {
        if (v != 0) table[v] = @field(Error, name);
    }
    break :blk table;
};

test "Error names exactly std.os.linux.E's errnos, and both directions agree" {
    const info = @typeInfo(E).@"enum";
    try std.testing.expectEqual(info.field_names.len - 1, @typeInfo(Error).error_set.error_names.?.len);
    inline for (info.field_names) |name| {
        if (comptime std.mem.eql(u8, name, "SUCCESS")) continue;
        const e = @field(E, name);
        try std.testing.expectEqual(e, errnoOf(errorOf(e)));
    }
}

test "check passes results through and turns -errno into its error" {
    try std.testing.expectEqual(@as(usize, 7), try check(7));
    try std.testing.expectError(error.NOENT, check(@bitCast(@as(isize, -2))));
    try std.testing.expectError(error.@"2BIG", check(@bitCast(@as(isize, -7))));
    try std.testing.expectEqual(E.NAMETOOLONG, errnoOf(error.NAMETOOLONG));
}
