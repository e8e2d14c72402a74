//! Unit tests of virtio-console (console.zig) through the MMIO transport, with the test-side
//! driver playing Linux's virtio_console and real pipes, files and a pty as host backends.
const std = @import("std");
const linux = std.os.linux;
const sys = @import("../sys/linux.zig");
const testing = std.testing;
const console = @import("console.zig");
const terminal = @import("../vmm/terminal.zig");
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");
const Device = @import("Device.zig");
const t = @import("testing.zig");
const OutputBuffer = @import("../vmm/OutputBuffer.zig");
const EventLoop = @import("../vmm/EventLoop.zig");

const base: u64 = 0x10_0000;
const E = console.Event;

const Pipe = struct {
    r: i32,
    w: i32,
    fn init() !Pipe {
        const fds = sys.pipe2(.{ .CLOEXEC = true }) catch return error.SkipZigTest;
        return .{ .r = fds[0], .w = fds[1] };
    }
    fn close(p: Pipe) void {
        if (p.r >= 0) sys.close(p.r);
        if (p.w >= 0) sys.close(p.w);
    }
};

fn writeFd(fd: i32, bytes: []const u8) !void {
    try testing.expectEqual(bytes.len, try sys.write(fd, bytes));
}

fn readFd(fd: i32, buf: []u8) ![]u8 {
    const n = try sys.read(fd, buf);
    return buf[0..n];
}

const Rig = struct {
    backing: [256 * 1024]u8 align(4096) = undefined,
    g: t.Guest = undefined,
    con: console.Console = undefined,
    tr: mmio.Transport = undefined,
    dqs: [16]t.DriverQueue = undefined,
    d: t.MmioDriver = undefined,

    fn init(r: *Rig, ports: []const console.PortConfig, features: u64) !void {
        r.g = t.Guest.init(&r.backing, base);
        try r.con.init(ports);
        r.tr.init(r.con.device(), &r.g.mem);
        r.d = .{ .t = &r.tr };
        try testing.expect(r.d.negotiate(features));
        for (0..r.tr.queue_count) |i| {
            r.dqs[i] = t.DriverQueue.init(&r.g, 16);
            r.d.setupQueue(@intCast(i), &r.dqs[i]);
        }
        r.d.addStatus(mmio.Status.driver_ok);
        try testing.expectEqual(@as(u32, 0xf), r.d.status());
    }

    fn deinit(r: *Rig) void {
        r.tr.shutdown();
        r.con.deinit();
    }

    fn sendControl(r: *Rig, id: u32, event: u16, value: u16) void {
        const msg: console.Control = .{ .id = id, .event = event, .value = value };
        _ = r.dqs[3].post(&.{std.mem.asBytes(&msg)}, &.{});
        r.d.notify(3);
    }

    fn postControlBuffers(r: *Rig, n: usize) void {
        for (0..n) |_| _ = r.dqs[2].post(&.{}, &.{64});
        r.d.notify(2);
    }

    const Msg = struct { id: u32, event: u16, value: u16, payload: []const u8 };

    fn takeControl(r: *Rig) ?Msg {
        const bytes = r.dqs[2].takeUsedBytes() orelse return null;
        std.debug.assert(bytes.len >= 8);
        var h: console.Control = undefined;
        @memcpy(std.mem.asBytes(&h), bytes[0..8]);
        return .{ .id = h.id, .event = h.event, .value = h.value, .payload = bytes[8..] };
    }

    fn expectControl(r: *Rig, id: u32, event: u16, value: u16, payload: []const u8) !void {
        const m = r.takeControl() orelse return error.TestExpectedControlMessage;
        try testing.expectEqual(event, m.event);
        try testing.expectEqual(id, m.id);
        try testing.expectEqual(value, m.value);
        try testing.expectEqualStrings(payload, m.payload);
    }

    /// The handshake Linux's virtio_console performs for every port.
    fn handshake(r: *Rig) !void {
        r.postControlBuffers(12);
        r.sendControl(0, E.device_ready, 1);
        const n = r.con.port_count;
        for (0..n) |i| try r.expectControl(@intCast(i), E.port_add, 0, "");
        for (0..n) |i| r.sendControl(@intCast(i), E.port_ready, 1);
    }

    fn readConfig(r: *Rig, offset: u64, comptime T: type) T {
        var b: [@sizeOf(T)]u8 = undefined;
        r.tr.read(mmio.Reg.config + offset, &b);
        return std.mem.readInt(T, &b, .little);
    }
};

const all_features = ~@as(u64, 0);

test "console: libkrun's multiport handshake names the non-terminal ports" {
    const in = try Pipe.init();
    defer in.close();
    const out = try Pipe.init();
    defer out.close();
    const err = try Pipe.init();
    defer err.close();
    const ports = console.defaultPorts(in.r, out.w, err.w);
    try testing.expectEqual(@as(u8, 4), ports.len);
    try testing.expect(ports.items[0].console);
    try testing.expectEqualStrings("krun-stdin", ports.items[1].name);
    try testing.expectEqualStrings("krun-stdout", ports.items[2].name);
    try testing.expectEqualStrings("krun-stderr", ports.items[3].name);

    var rig: Rig = .{};
    try rig.init(ports.slice(), all_features);
    defer rig.deinit();
    try testing.expectEqual(@as(u16, 10), rig.tr.queue_count);
    try testing.expectEqual(@as(u32, 4), rig.readConfig(4, u32)); // max_nr_ports
    try testing.expectEqual(@as(u64, 1 << 32 | 3), rig.tr.driver_features);

    try rig.handshake();
    try rig.expectControl(0, E.console_port, 1, "");
    try rig.expectControl(0, E.port_open, 1, "");
    try rig.expectControl(1, E.port_name, 1, "krun-stdin");
    try rig.expectControl(1, E.port_open, 1, "");
    try rig.expectControl(2, E.port_name, 1, "krun-stdout");
    try rig.expectControl(2, E.port_open, 1, "");
    try rig.expectControl(3, E.port_name, 1, "krun-stderr");
    try rig.expectControl(3, E.port_open, 1, "");
    try testing.expectEqual(@as(?Rig.Msg, null), rig.takeControl());
    try testing.expect(rig.tr.interrupt.status.load(.seq_cst) & Device.Interrupt.vring != 0);

    // Guest output on krun-stdout (port 2: queue 7) and krun-stderr (port 3: queue 9).
    _ = rig.dqs[7].post(&.{ "hello ", "stdout\n" }, &.{});
    rig.d.notify(7);
    _ = rig.dqs[9].postIndirect(&.{"oops\n"}, &.{});
    rig.d.notify(9);
    var buf: [64]u8 = undefined;
    try testing.expectEqualStrings("hello stdout\n", try readFd(out.r, &buf));
    try testing.expectEqualStrings("oops\n", try readFd(err.r, &buf));
    try testing.expectEqual(@as(u32, 0), rig.dqs[7].takeUsed().?.len);
    try testing.expectEqual(@as(u64, 18), rig.con.bytes_out);
    // Output queued but never kicked (the VM ended first) is written out by the final flush.
    _ = rig.dqs[7].post(&.{"last words\n"}, &.{});
    var stop: std.atomic.Value(bool) = .init(false);
    var budget: OutputBuffer.Budget = .{ .stop = &stop, .idle_ms = 1000 };
    rig.con.flushFinal(&budget);
    rig.tr.shutdown();
    try testing.expectEqualStrings("last words\n", try readFd(out.r, &buf));
}

test "console: a host that does not read stalls the tx queue, not us; reading resumes; reset discards" {
    const out = try Pipe.init(); // blocking, as an embedder's stdout: we must never wait on it
    defer out.close();
    _ = sys.fcntl(out.w, linux.F.SETPIPE_SZ, 4096) catch 0;
    const flags_before = try sys.fcntl(out.w, linux.F.GETFL, 0);
    const ports = [_]console.PortConfig{ .{ .console = true }, .{ .name = "krun-stdout", .output_fd = out.w } };
    var rig: Rig = .{};
    try rig.init(&ports, all_features);
    defer rig.deinit();
    try rig.handshake();
    while (rig.takeControl()) |_| {}
    // 8 chains of 12 KiB: one page of pipe plus a 64 KiB ring cannot take them all.
    const chunk: [12 * 1024]u8 = @splat('f');
    var posted: usize = 0;
    for (0..8) |_| {
        _ = rig.dqs[5].post(&.{&chunk}, &.{});
        posted += 1;
    }
    rig.d.notify(5); // returns: nothing waits for the reader
    var used: usize = 0;
    while (rig.dqs[5].takeUsed()) |_| used += 1;
    try testing.expect(used >= 1 and used < posted); // stalled: the rest stays in the queue
    // EPOLLOUT would call this; with nothing read, it changes nothing.
    console.Console.outputReady(&rig.con, 1, 0);
    try testing.expect(rig.dqs[5].takeUsed() == null);
    try testing.expectEqual(flags_before, try sys.fcntl(out.w, linux.F.GETFL, 0));

    // The reader drains: each EPOLLOUT moves more; all chains come back, all bytes arrive.
    var buf: [8192]u8 = undefined;
    var got: usize = 0;
    var rounds: usize = 0;
    while (got < posted * chunk.len and rounds < 10_000) : (rounds += 1) {
        got += (try readFd(out.r, &buf)).len;
        console.Console.outputReady(&rig.con, 1, 0);
        while (rig.dqs[5].takeUsed()) |_| used += 1;
    }
    try testing.expectEqual(posted * chunk.len, got);
    try testing.expectEqual(posted, used);

    // Stall again, then reset: the pending output is dropped, not written.
    for (0..2) |_| _ = rig.dqs[5].post(&.{chunk[0..4096]}, &.{});
    rig.d.notify(5);
    try testing.expect(rig.con.ports[1].ring.len() > 0);
    rig.tr.shutdown();
    try testing.expectEqual(@as(usize, 0), rig.con.ports[1].ring.len());
    var drained: usize = 0;
    while (true) {
        var pfd = [1]linux.pollfd{.{ .fd = out.r, .events = linux.POLL.IN, .revents = 0 }};
        if ((sys.poll(&pfd, 0) catch 0) != 1) break;
        drained += (try readFd(out.r, &buf)).len;
    }
    try testing.expect(drained <= 4096); // only what the pipe already held
}

/// A console port plus an input-only port reading `input_fd`, under the test driver, and the
/// real event loop's poll set (epoll here), not started: loopTurn is its thread.
fn initInputRig(rig: *Rig, loop: *EventLoop, input_fd: i32) !void {
    var ports: console.Ports = .{};
    ports.items[0] = .{ .console = true };
    ports.items[1] = .{ .name = "krun-stdin", .input_fd = input_fd };
    ports.len = 2;
    try rig.init(ports.slice(), all_features);
    loop.init() catch |err| {
        rig.deinit();
        return err;
    };
}

test "console: input waits for the guest to open the port, then flows; EOF closes the port" {
    var in = try Pipe.init();
    defer in.close();
    var rig: Rig = .{};
    var loop: EventLoop = undefined;
    try initInputRig(&rig, &loop, in.r);
    defer rig.deinit();
    defer loop.deinit();
    try rig.con.watch(&loop);
    try testing.expect(rig.con.ports[1].in_id != null); // a pipe is pollable
    const epfd = loop.poll_fd;

    try rig.handshake();
    while (rig.takeControl()) |_| {}
    try writeFd(in.w, "early input");
    try testing.expectEqual(@as(usize, 0), loopTurn(&loop)); // port not open yet: input not watched
    for (0..4) |_| _ = rig.dqs[4].post(&.{}, &.{8});
    rig.d.notify(4);
    try testing.expectEqual(@as(?[]u8, null), rig.dqs[4].takeUsedBytes());

    rig.sendControl(1, E.port_open, 1);
    try testing.expectEqualStrings("early in", rig.dqs[4].takeUsedBytes().?);
    try testing.expectEqualStrings("put", rig.dqs[4].takeUsedBytes().?);
    try testing.expectEqual(@as(?[]u8, null), rig.dqs[4].takeUsedBytes());

    // More input arrives: the event loop sees the armed input readable and calls inputReady.
    try writeFd(in.w, "more");
    try testing.expect(pollReadable(epfd));
    try testing.expectEqual(@as(usize, 1), loopTurn(&loop));
    try testing.expectEqualStrings("more", rig.dqs[4].takeUsedBytes().?);

    // The guest runs out of buffers: input stays in the pipe and our fd goes quiet (no spin).
    try writeFd(in.w, "0123456789abcdef-tail");
    try testing.expect(pollReadable(epfd));
    try testing.expectEqual(@as(usize, 1), loopTurn(&loop));
    try testing.expectEqualStrings("01234567", rig.dqs[4].takeUsedBytes().?);
    try testing.expect(!pollReadable(epfd));
    // New buffers resume the flow.
    for (0..4) |_| _ = rig.dqs[4].post(&.{}, &.{8});
    rig.d.notify(4);
    try testing.expectEqualStrings("89abcdef", rig.dqs[4].takeUsedBytes().?);
    try testing.expectEqualStrings("-tail", rig.dqs[4].takeUsedBytes().?);

    // EOF: the host side of an input-only port closes, which the guest reads as end of file.
    sys.close(in.w);
    in.w = -1;
    try testing.expect(pollReadable(epfd));
    try testing.expectEqual(@as(usize, 1), loopTurn(&loop));
    try rig.expectControl(1, E.port_open, 0, "");
    try testing.expect(!pollReadable(epfd));
    try testing.expectEqual(@as(u64, 11 + 4 + 21), rig.con.bytes_in);
}

/// One turn of the event loop on the test's thread: what epoll reports now, dispatched to the
/// sources' handlers as EventLoop's own thread does. Returns the events dispatched.
fn loopTurn(loop: *EventLoop) usize {
    var events: [8]linux.epoll_event = undefined;
    const n = sys.epoll_wait(loop.poll_fd, &events, 0) catch return 0;
    for (events[0..n]) |ev| {
        const h = loop.sources[@intCast(ev.data.u64)].handler.?;
        h.call(h.ctx, h.arg, ev.events);
    }
    return n;
}

fn pollReadable(fd: i32) bool {
    var pfd = [1]linux.pollfd{.{ .fd = fd, .events = linux.POLL.IN, .revents = 0 }};
    return (sys.poll(&pfd, 0) catch 0) == 1;
}

test "console: krun_set_console_output writes hvc0 output to a file (driver without MULTIPORT)" {
    var path_buf: [64]u8 = undefined;
    const path = try std.fmt.bufPrintSentinel(&path_buf, "/tmp/zkrun-console-{d}.out", .{sys.getpid()}, 0);
    const fd = try sys.openMode(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o600);
    defer sys.close(fd);
    defer sys.unlink(path) catch {};
    const ports = console.outputFilePorts(fd);
    var rig: Rig = .{};
    try rig.init(ports.slice(), 1 << 32 | 1 << console.feature_size);
    defer rig.deinit();
    _ = rig.dqs[1].post(&.{"Linux version 6.12 (zkrun)\n"}, &.{});
    rig.d.notify(1);
    var buf: [64]u8 = undefined;
    const n = try sys.pread(fd, &buf, 0);
    try testing.expectEqualStrings("Linux version 6.12 (zkrun)\n", buf[0..n]);
}

test "console: a regular file as krun-stdin is delivered whole, then EOF" {
    var path_buf: [64]u8 = undefined;
    const path = try std.fmt.bufPrintSentinel(&path_buf, "/tmp/zkrun-console-{d}.in", .{sys.getpid()}, 0);
    const fd = try sys.openMode(path, .{ .ACCMODE = .RDWR, .CREAT = true, .TRUNC = true, .CLOEXEC = true }, 0o600);
    defer sys.close(fd);
    defer sys.unlink(path) catch {};
    try sys.pwriteAll(fd, "file contents\n", 0); // the fd's offset stays at the start
    const ports = console.defaultPorts(fd, -1, -1);
    try testing.expectEqual(@as(u8, 2), ports.len);
    var rig: Rig = .{};
    try rig.init(ports.slice(), all_features);
    defer rig.deinit();
    try rig.handshake();
    while (rig.takeControl()) |_| {}
    for (0..4) |_| _ = rig.dqs[4].post(&.{}, &.{32});
    rig.d.notify(4);
    rig.sendControl(1, E.port_open, 1);
    try testing.expectEqualStrings("file contents\n", rig.dqs[4].takeUsedBytes().?);
    try rig.expectControl(1, E.port_open, 0, "");
}

test "console: hostile control messages are ignored, hostile chains break the queue" {
    const saved_level = testing.log_level;
    testing.log_level = .err; // the warnings are the point of this test
    defer testing.log_level = saved_level;
    var ports: console.Ports = .{};
    ports.items[0] = .{ .console = true };
    ports.len = 1;
    var rig: Rig = .{};
    try rig.init(ports.slice(), all_features);
    defer rig.deinit();
    rig.postControlBuffers(8);
    rig.sendControl(99, E.port_ready, 1); // no such port
    rig.sendControl(0xffff_ffff, E.port_open, 1);
    _ = rig.dqs[3].post(&.{"abc"}, &.{}); // short message
    rig.d.notify(3);
    rig.sendControl(0, 0x1234, 7); // unknown event
    try testing.expectEqual(@as(?Rig.Msg, null), rig.takeControl());
    try testing.expectEqual(@as(u32, 0), rig.d.status() & mmio.Status.device_needs_reset);

    // A descriptor loop on the console's tx queue.
    rig.dqs[1].setDesc(0, .{ .addr = base, .len = 1, .flags = queue.desc_f_next, .next = 0 });
    rig.dqs[1].pushAvail(0);
    rig.d.notify(1);
    try testing.expect(rig.d.status() & mmio.Status.device_needs_reset != 0);
    // The driver resets the device; everything returns to the start.
    rig.d.write32(mmio.Reg.status, 0);
    try testing.expectEqual(@as(u32, 0), rig.d.status());
    try testing.expect(rig.con.act == null);
}

test "console: a terminal gives one console port, sized in config and by RESIZE" {
    const pty = try terminal.TestPty.open();
    defer pty.close();
    const master = pty.master;
    const slave = pty.slave;
    try pty.setSize(120, 40);

    // A terminal gives one console port, sized from the terminal.
    const ports = console.defaultPorts(slave, slave, slave);
    try testing.expectEqual(@as(u8, 1), ports.len);
    var rig: Rig = .{};
    try rig.init(ports.slice(), all_features);
    defer rig.deinit();
    try testing.expectEqual(@as(u16, 120), rig.readConfig(0, u16));
    try testing.expectEqual(@as(u16, 40), rig.readConfig(2, u16));
    try rig.handshake();
    try rig.expectControl(0, E.console_port, 1, "");
    try rig.expectControl(0, E.port_open, 1, "");
    // cols then rows, as Linux 6.12 reads them.
    try rig.expectControl(0, E.resize, 0, &.{ 120, 0, 40, 0 });
    rig.con.resize(100, 30);
    try testing.expectEqual(@as(u32, 1), rig.d.read32(mmio.Reg.config_generation));
    try rig.expectControl(0, E.resize, 0, &.{ 100, 0, 30, 0 });
    // Guest output reaches the terminal.
    _ = rig.dqs[1].post(&.{"tty out"}, &.{});
    rig.d.notify(1);
    var buf: [32]u8 = undefined;
    try testing.expectEqualStrings("tty out", try readFd(master, &buf));
}

test "console: an input the event loop cannot poll (/dev/null, a regular file) is read as a file, not watched" {
    const null_fd = try sys.open("/dev/null", .{ .ACCMODE = .RDONLY, .CLOEXEC = true });
    defer sys.close(null_fd);
    var rig: Rig = .{};
    var loop: EventLoop = undefined;
    try initInputRig(&rig, &loop, @intCast(null_fd));
    defer rig.deinit();
    defer loop.deinit();
    const sources = loop.count;
    try rig.con.watch(&loop); // epoll refuses /dev/null (EPERM): no error, no source
    try testing.expectEqual(sources, loop.count);
    try testing.expectEqual(@as(?EventLoop.Id, null), rig.con.ports[1].in_id);
    try rig.handshake();
    while (rig.takeControl()) |_| {}
    for (0..2) |_| _ = rig.dqs[4].post(&.{}, &.{8});
    rig.d.notify(4);
    rig.sendControl(1, E.port_open, 1);
    // Read at once: end of file, which an input-only port reports as the host side closing.
    try rig.expectControl(1, E.port_open, 0, "");
    try testing.expectEqual(@as(u64, 0), rig.con.bytes_in);
}
