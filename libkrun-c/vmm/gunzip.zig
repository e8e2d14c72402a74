//! Gzip-compressed kernels (krun_set_kernel's KRUN_KERNEL_FORMAT_IMAGE_GZ: an arm64 `Image.gz`):
//! one gzip member inflated by std.compress.flate into a caller's buffer, with the checks
//! Zig's decompressor leaves to its caller: the output never passes the buffer (a gzip bomb is
//! `error.TooBig`, not an allocation), and the member's CRC-32 and ISIZE trailer must match what
//! came out (Zig 0.17 reads the trailer but does not compare it). The file is the client's and
//! may be anything: every failure is a named error with a reason (`describe`), never a crash.
//! Bytes after the first member are ignored (as the arm64 boot wrapper and QEMU's loader do).
const std = @import("std");
const flate = std.compress.flate;

pub const Error = error{
    /// Not gzip (no 1f 8b 08 magic) or a bad gzip header.
    NotGzip,
    /// The data ends before the member does.
    Truncated,
    /// Invalid deflate data, or a CRC-32 / size trailer that does not match the output.
    Corrupt,
    /// The output would not fit the buffer.
    TooBig,
};

pub const magic = [_]u8{ 0x1f, 0x8b, 0x08 };

/// The most a gzipped kernel may inflate to, and the most gzip input read: arm64 Images are
/// 20-70 MiB (allyesconfig ~100 MiB). The output buffer is reserved address space (NORESERVE);
/// only what the kernel fills becomes resident.
pub const kernel_bytes_max: usize = 256 << 20;

/// Inflates the gzip member at the start of `input` into `out`; returns the bytes written.
/// The whole member is checked (deflate stream, CRC-32, ISIZE).
pub fn decompress(input: []const u8, out: []u8) Error!usize {
    var d: Decoder = undefined;
    d.init(input, out);
    const n = try d.run(null);
    const trailer = d.inflate.container_metadata.gzip;
    if (trailer.count != @as(u32, @truncate(n)) or trailer.crc != std.hash.Crc32.hash(out[0..n])) return error.Corrupt;
    return n;
}

/// Inflates only the first `out.len` bytes of the member (a header peek: is this an arm64
/// Image?); returns how many came out, fewer only when the whole output is shorter. Checks no
/// trailer: the rest of the stream is not read.
pub fn head(input: []const u8, out: []u8) Error!usize {
    var d: Decoder = undefined;
    d.init(input, out);
    return d.run(out.len);
}

/// The reason text for an error, for a log line or krun_last_error.
pub fn describe(err: Error) []const u8 {
    return switch (err) {
        error.NotGzip => "not gzip data (no 1f 8b 08 header)",
        error.Truncated => "the gzip data ends early (truncated)",
        error.Corrupt => "corrupt gzip data (bad deflate stream or CRC-32/size trailer)",
        error.TooBig => "decompresses to more than the size limit",
    };
}

const Decoder = struct {
    in: std.Io.Reader,
    out: std.Io.Writer,
    inflate: flate.Decompress,

    /// In place: `inflate` keeps a pointer to `in`.
    fn init(d: *Decoder, input: []const u8, out: []u8) void {
        d.in = .fixed(input);
        d.out = .fixed(out);
        // Direct mode (no buffer of its own): the history window is `out` itself, which holds
        // every byte written so far.
        d.inflate = .init(&d.in, .gzip, &.{});
    }

    /// Streams until the member ends or `stop_at` bytes came out.
    fn run(d: *Decoder, stop_at: ?usize) Error!usize {
        const input = d.in.buffer;
        if (input.len < 10 or !std.mem.eql(u8, input[0..3], &magic)) return error.NotGzip;
        while (true) {
            if (stop_at) |limit| if (d.out.end >= limit) return d.out.end;
            const room: std.Io.Limit = if (stop_at) |limit| .limited(limit - d.out.end) else .unlimited;
            _ = d.inflate.reader.stream(&d.out, room) catch |err| switch (err) {
                error.EndOfStream => return d.out.end, // the member ended (trailer read)
                error.WriteFailed => return error.TooBig, // `out` is full and there is more
                error.ReadFailed => return switch (d.inflate.err orelse error.ReadFailed) {
                    error.EndOfStream => error.Truncated,
                    error.BadGzipHeader => error.NotGzip,
                    else => error.Corrupt,
                },
            };
        }
    }
};

const testing = std.testing;

/// Written by GNU gzip 1.12 (`gzip -9n`) from `fixture_plain` below: real gzip data, with
/// dynamic Huffman blocks and back references, not our own encoder's output.
const fixture_gz = @embedFile("testdata/fixture.bin.gz");

/// What fixture_gz holds: 20,000 bytes, a 64-byte arm64-Image-like header then a slowly
/// varying pattern (compressible but not trivially).
fn fixturePlain(buf: *[20_000]u8) void {
    @memset(buf, 0);
    std.mem.writeInt(u32, buf[0x38..0x3c], 0x644d5241, .little); // "ARM\x64"
    for (buf[64..], 64..) |*b, i| b.* = @truncate(((i >> 3) * 31) ^ (i >> 9));
}

/// `gzip -9n` of 8 MiB of zeros: 8 KiB that inflate to 8 MiB.
const zeros_gz = @embedFile("testdata/zeros-8MiB.gz");

test "gunzip: real gzip data decompresses exactly, the head alone too" {
    var plain: [20_000]u8 = undefined;
    fixturePlain(&plain);
    var out: [20_000]u8 = undefined;
    try testing.expectEqual(plain.len, try decompress(fixture_gz, &out));
    try testing.expectEqualSlices(u8, &plain, &out);
    // Exactly-fitting output is not TooBig; one byte less is.
    var small: [19_999]u8 = undefined;
    try testing.expectError(error.TooBig, decompress(fixture_gz, &small));
    var h: [64]u8 = undefined;
    try testing.expectEqual(@as(usize, 64), try head(fixture_gz, &h));
    try testing.expectEqualSlices(u8, plain[0..64], &h);
    // Trailing bytes after the member are ignored.
    var padded: [fixture_gz.len + 16]u8 = @splat(0xee);
    @memcpy(padded[0..fixture_gz.len], fixture_gz);
    try testing.expectEqual(plain.len, try decompress(&padded, &out));
}

test "gunzip: hostile input is a named error at every truncation and many corruptions, never a crash" {
    var out: [20_000]u8 = undefined;
    try testing.expectError(error.NotGzip, decompress("", &out));
    try testing.expectError(error.NotGzip, decompress("hello, not gzip at all", &out));
    try testing.expectError(error.NotGzip, decompress(fixture_gz[0..9], &out));
    // Every truncation: Truncated (or Corrupt/NotGzip where the cut makes the rest misread).
    for (0..fixture_gz.len) |len| {
        if (decompress(fixture_gz[0..len], &out)) |_| return error.TestUnexpectedResult else |_| {}
    }
    try testing.expectError(error.Truncated, decompress(fixture_gz[0 .. fixture_gz.len - 1], &out));
    try testing.expectError(error.Truncated, decompress(fixture_gz[0 .. fixture_gz.len / 2], &out));
    // A flipped bit in the CRC-32 or the size trailer.
    var bad: [fixture_gz.len]u8 = fixture_gz.*;
    bad[bad.len - 8] ^= 1;
    try testing.expectError(error.Corrupt, decompress(&bad, &out));
    bad = fixture_gz.*;
    bad[bad.len - 1] ^= 0x80;
    try testing.expectError(error.Corrupt, decompress(&bad, &out));
    // Every single-byte corruption of the body: an error or (rarely) the same-length output
    // whose CRC still must match; never a crash, never past `out`.
    for (10..fixture_gz.len - 8) |i| {
        bad = fixture_gz.*;
        bad[i] ^= 0x5a;
        if (decompress(&bad, &out)) |n| {
            try testing.expect(n <= out.len);
        } else |_| {}
    }
}

test "gunzip: a gzip bomb stops at the buffer" {
    // 8 KiB of gzip that would inflate to 8 MiB, into 1 MiB: TooBig, nothing written past it.
    const out = try testing.allocator.alloc(u8, (1 << 20) + 1);
    defer testing.allocator.free(out);
    out[1 << 20] = 0xa5;
    try testing.expectError(error.TooBig, decompress(zeros_gz, out[0 .. 1 << 20]));
    try testing.expectEqual(@as(u8, 0xa5), out[1 << 20]);
    const all = try testing.allocator.alloc(u8, 8 << 20);
    defer testing.allocator.free(all);
    try testing.expectEqual(@as(usize, 8 << 20), try decompress(zeros_gz, all));
}
