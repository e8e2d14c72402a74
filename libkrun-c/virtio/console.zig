//! virtio-console (device id 3) with MULTIPORT, as libkrun builds it: port 0 is the console
//! (hvc0, CONSOLE_PORT), further ports are named (`krun-stdin`, `krun-stdout`, `krun-stderr`)
//! and show up in the guest as /dev/vportNpM with /sys/class/virtio-ports/*/name, which the
//! guest init dup2s onto fds 0/1/2.
//!
//! Queues: port 0 rx/tx = 0/1, control rx/tx = 2/3, port p ≥ 1 rx/tx = 2+2p / 3+2p.
//! Guest output (tx) goes through a bounded ring per port (vmm/OutputBuffer.zig) to our own
//! non-blocking handle on the port's host output fd. A tx chain is returned to the guest only
//! once all its bytes are in the ring; when the host does not drain, the ring fills, the chain
//! stays in the queue and the guest's writer blocks — the event loop never waits: it watches
//! the fd for `out` (`watch`) while a ring is pending and resumes from there. A
//! device reset discards pending output; the VM's end flushes it within a bounded time
//! (`flushFinal`). Host input is read into the
//! guest's rx buffers only once the guest opened the port (Linux discards data for closed
//! ports), and input EOF on a port without output becomes PORT_OPEN(0), which the guest reads
//! as end of file.
//!
//! Input fds are sources of the VMM's event loop (vmm/EventLoop.zig: epoll on Linux, kqueue on
//! macOS; `watch` registers them): each input is registered `oneshot` and re-armed only when we
//! can take more (the guest has rx buffers), so a full guest or an input at EOF never spins the
//! loop. Regular files and what the poller refuses (/dev/null under epoll) are not pollable:
//! they are read whenever the guest adds rx buffers. Host calls are libc's on macOS.
//!
//! The host terminal itself (raw mode, size, SIGWINCH) belongs to vmm/terminal.zig; the VMM
//! calls `resize` when it changes. Which ports to build is console_ports.zig's.
const std = @import("std");
const linux = std.os.linux;
const posix = std.posix;
const assert = std.debug.assert;
const Device = @import("Device.zig");
const queue = @import("queue.zig");
const mmio = @import("mmio.zig");
const Lock = @import("Lock.zig");
const terminal = @import("../vmm/terminal.zig");
const OutputBuffer = @import("../vmm/OutputBuffer.zig");
const EventLoop = @import("../vmm/EventLoop.zig");
const signal = @import("../sys/signal.zig");
const fd_calls = @import("../sys/fd.zig");
const sys = @import("../sys/linux.zig");
const sys_errno = @import("sys_errno");

const log = std.log.scoped(.virtio);
const is_macos = @import("builtin").os.tag == .macos;

/// libkrun's console queues hold 32 entries each.
pub const queue_size: u16 = 32;
/// Port 0 plus krun-stdin/stdout/stderr need 4; 7 fills Device.queues_max (2 + 2*7 = 16).
pub const ports_max = (Device.queues_max - 2) / 2;
pub const port_name_max = 32;
/// Guest output buffered per port before its tx queue stalls (Linux writes ≤ 32 KiB per chain).
pub const output_ring_size = 64 * 1024;
pub const OutputRing = OutputBuffer.Ring(output_ring_size);

pub const feature_size: u6 = 0;
pub const feature_multiport: u6 = 1;

pub const Event = struct {
    pub const device_ready: u16 = 0;
    pub const port_add: u16 = 1;
    pub const port_remove: u16 = 2;
    pub const port_ready: u16 = 3;
    pub const console_port: u16 = 4;
    pub const resize: u16 = 5;
    pub const port_open: u16 = 6;
    pub const port_name: u16 = 7;
};

/// struct virtio_console_control.
pub const Control = extern struct { id: u32, event: u16, value: u16 };

/// struct virtio_console_config.
const Config = extern struct { cols: u16, rows: u16, max_nr_ports: u32, emerg_wr: u32 };

comptime {
    assert(@sizeOf(Control) == 8);
    assert(@sizeOf(Config) == 12);
}

const console_ports = @import("console_ports.zig");
pub const PortConfig = console_ports.PortConfig;
pub const Ports = console_ports.Ports;
pub const defaultPorts = console_ports.defaultPorts;
pub const signal_port_name = console_ports.signal_port_name;
pub const outputFilePorts = console_ports.outputFilePorts;

const InputKind = enum { none, pollable, file };

const Port = struct {
    name_buf: [port_name_max]u8 = undefined,
    name_len: u8 = 0,
    console: bool = false,
    input: i32 = -1,
    input_kind: InputKind = .none,
    /// Our handle on the host output (discarding when there is none or it died).
    out: OutputBuffer.Sink = .{},
    ring: OutputRing = .{},
    /// Bytes of the tx chain at the head of the queue already in the ring (the chain is
    /// returned once all of it is).
    partial: u32 = 0,
    /// The output fd's source in the event loop (`out` while the ring waits), if watched.
    out_id: ?EventLoop.Id = null,
    /// The input fd's source in the event loop (`in` | `oneshot` while armed), if watched.
    in_id: ?EventLoop.Id = null,
    input_eof: bool = false,
    /// The guest sent PORT_OPEN(1) (or, without MULTIPORT, the device is active).
    guest_open: bool = false,

    fn name(p: *const Port) []const u8 {
        return p.name_buf[0..p.name_len];
    }
};

/// A control message waiting for a buffer on the control rx queue.
const Pending = struct { header: Control, payload: [port_name_max]u8 = undefined, payload_len: u8 = 0 };

/// Enough for the whole handshake of every port (PORT_ADD, CONSOLE_PORT/NAME, OPEN, RESIZE)
/// even if the driver posts control buffers late.
const pending_max = 4 * ports_max + 8;

pub const Console = struct {
    lock: Lock = .{},
    vtable: Device.VTable,
    queue_sizes: [Device.queues_max]u16 = @splat(queue_size),
    ports: [ports_max]Port = @splat(.{}),
    port_count: u8,
    cols: u16 = 0,
    rows: u16 = 0,
    act: ?Device.Activation = null,
    multiport: bool = false,
    pending: [pending_max]Pending = undefined,
    pending_head: u8 = 0,
    pending_len: u8 = 0,
    /// Set by `watch`: where input and output interest goes.
    loop: ?*EventLoop = null,
    /// Bytes moved, for tests and benchmarks.
    bytes_out: u64 = 0,
    bytes_in: u64 = 0,

    pub const device_id: u32 = 3;
    pub const features: u64 = 1 << mmio.feature_version_1 | 1 << feature_size | 1 << feature_multiport;

    pub const InitError = error{ SystemResources, InvalidConfig };

    /// Builds the device in place (it must not move: the vtable and fds point into it).
    /// Every fd in `ports` is duplicated; the caller keeps its own.
    pub fn init(self: *Console, ports: []const PortConfig) InitError!void {
        if (ports.len == 0 or ports.len > ports_max or !ports[0].console) return error.InvalidConfig;
        self.* = .{ .vtable = undefined, .port_count = @intCast(ports.len) };
        self.vtable = Device.vtableOf(Console, self.queue_sizes[0 .. 2 + 2 * ports.len]);
        errdefer self.deinit();
        for (ports, 0..) |cfg, i| try self.initPort(i, cfg);
        for (ports) |cfg| if (cfg.console) {
            const size = terminal.windowSize(cfg.input_fd) orelse terminal.windowSize(cfg.output_fd) orelse continue;
            self.cols = size.cols;
            self.rows = size.rows;
            break;
        };
    }

    fn initPort(self: *Console, i: usize, cfg: PortConfig) InitError!void {
        if (cfg.name.len > port_name_max) return error.InvalidConfig;
        const p = &self.ports[i];
        p.console = cfg.console;
        @memcpy(p.name_buf[0..cfg.name.len], cfg.name);
        p.name_len = @intCast(cfg.name.len);
        p.out = try OutputBuffer.Sink.open(cfg.output_fd);
        if (cfg.input_fd < 0) return;
        p.input = try fd_calls.dupCloexec(cfg.input_fd);
        // Regular files and disks never block; `watch` finds what else the poller refuses.
        p.input_kind = if (isFile(p.input)) .file else .pollable;
    }

    /// Closes our fds. The device must be reset (or never activated) first.
    pub fn deinit(self: *Console) void {
        assert(self.act == null); // tidy: activation state, ours
        for (self.ports[0..self.port_count]) |*p| {
            if (p.input >= 0) fd_calls.close(p.input);
            p.input = -1;
            p.out.close();
        }
    }

    pub fn device(self: *Console) Device {
        return .{ .ptr = self, .vtable = &self.vtable };
    }

    /// Registers each port's pollable input (disarmed: armed once the guest can take input)
    /// and pollable output fd (not watched until a ring waits for it) with the event loop.
    /// An input the poller refuses (epoll: /dev/null) is read like a file. Before the loop starts.
    pub fn watch(self: *Console, loop: *EventLoop) EventLoop.InitError!void {
        self.loop = loop;
        for (self.ports[0..self.port_count], 0..) |*p, i| {
            if (p.input_kind == .pollable) {
                const in: EventLoop.Source = .{ .fd = p.input, .events = EventLoop.oneshot, .handler = .{ .ctx = self, .call = inputReady, .arg = @intCast(i) } };
                if (loop.add(in)) |id| {
                    p.in_id = id;
                } else |err| switch (err) {
                    error.NotPollable => p.input_kind = .file,
                    else => return err,
                }
            }
            if (!p.out.pollable()) continue;
            p.out_id = try loop.add(.{ .fd = p.out.fd, .events = 0, .handler = .{ .ctx = self, .call = outputReady, .arg = @intCast(i) } });
        }
    }

    /// A port's input is readable (or at its end): the event loop disarmed it (`oneshot`);
    /// pumpInput reads what the guest has room for and re-arms it when it can take more.
    pub fn inputReady(ptr: *anyopaque, port: u32, _: u32) void {
        const self: *Console = @ptrCast(@alignCast(ptr));
        self.lock.lock();
        defer self.lock.unlock();
        if (port >= self.port_count) return;
        const a = self.act orelse return; // stays disarmed until activation
        self.run(a, rxQueue(@intCast(port)), pumpInput);
    }

    /// A port's output fd can take more (`out`), or a test says so: write out the ring,
    /// then take the chains that stalled.
    pub fn outputReady(ptr: *anyopaque, port: u32, _: u32) void {
        const self: *Console = @ptrCast(@alignCast(ptr));
        self.lock.lock();
        defer self.lock.unlock();
        if (port >= self.port_count) return;
        const i: u8 = @intCast(port);
        if (self.act) |a| return self.run(a, rxQueue(i) + 1, drainOutput);
        self.setWatch(i, self.ports[i].ring.flush(&self.ports[i].out) == .blocked);
    }

    /// The VM ended: write out what the guest queued and the rings hold, waiting for readers
    /// while `budget` allows (it ends the wait on krun_stop, or when a reader makes no progress).
    pub fn flushFinal(self: *Console, budget: *OutputBuffer.Budget) void {
        self.lock.lock();
        defer self.lock.unlock();
        for (self.ports[0..self.port_count], 0..) |*p, i| {
            while (true) {
                _ = p.ring.flush(&p.out);
                if (self.act) |a| self.run(a, rxQueue(@intCast(i)) + 1, drainOutput);
                // drainOutput leaves chains queued only when the ring is blocked.
                if (p.ring.len() == 0) break;
                if (!budget.wait(p.out.fd, p.ring.head.load(.monotonic))) break;
            }
            p.ring.discard(); // what the reader did not take in time is dropped
        }
    }

    /// The host terminal was resized (SIGWINCH): new config, and a RESIZE for the console port.
    pub fn resize(self: *Console, cols: u16, rows: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        self.cols = cols;
        self.rows = rows;
        const a = self.act orelse return;
        a.interrupt.configChanged();
        if (!self.multiport) return;
        self.queueResize(0);
        self.run(a, 2, flushControl);
    }

    pub fn readConfig(self: *Console, offset: u32, data: []u8) void {
        const cfg: Config = .{ .cols = self.cols, .rows = self.rows, .max_nr_ports = self.port_count, .emerg_wr = 0 };
        mmio.readConfigBytes(std.mem.asBytes(&cfg), offset, data);
    }

    pub fn writeConfig(_: *Console, offset: u32, data: []const u8) void {
        // emerg_wr is only writable with EMERG_WRITE, which we do not offer.
        log.debug("console: config write at {d} ({d} bytes) ignored", .{ offset, data.len });
    }

    pub fn activate(self: *Console, a: Device.Activation) Device.ActivateError!void {
        self.lock.lock();
        defer self.lock.unlock();
        self.multiport = a.acked_features & (1 << feature_multiport) != 0;
        if (self.multiport and (!a.queues[2].ready or !a.queues[3].ready)) return error.DeviceBroken;
        self.act = a;
        self.pending_len = 0;
        for (self.ports[0..self.port_count]) |*p| p.guest_open = false;
        // Without MULTIPORT the driver only knows port 0, and it is open from the start.
        if (!self.multiport) self.ports[0].guest_open = true;
    }

    pub fn reset(self: *Console) void {
        self.lock.lock();
        defer self.lock.unlock();
        // A reset discards pending output (no I/O here: this runs on a vCPU thread); the VM's
        // end flushes before it resets (Machine → flushFinal on the event-loop thread).
        self.act = null;
        for (self.ports[0..self.port_count], 0..) |*p, i| {
            p.ring.discard();
            p.partial = 0;
            self.setWatch(@intCast(i), false);
            p.guest_open = false;
            if (p.input_kind == .pollable and !p.input_eof) self.setArmed(i, false);
        }
    }

    pub fn queueNotify(self: *Console, index: u16) void {
        self.lock.lock();
        defer self.lock.unlock();
        const a = self.act orelse return;
        if (index >= a.queues.len or !a.queues[index].ready) return;
        switch (index) {
            2 => if (self.multiport) self.run(a, 2, flushControl),
            3 => if (self.multiport) self.run(a, 3, processControl),
            else => if (index % 2 == 0) self.run(a, index, pumpInput) else self.run(a, index, drainOutput),
        }
    }

    /// Runs one queue's work; a protocol error breaks that queue and asks for a reset.
    fn run(self: *Console, a: Device.Activation, index: u16, comptime work: fn (*Console, Device.Activation, u16) queue.Error!void) void {
        if (index >= a.queues.len or !a.queues[index].ready) return;
        work(self, a, index) catch |err| {
            log.warn("console: queue {d}: {t}", .{ index, err });
            a.queues[index].markBroken();
            a.interrupt.fail();
        };
    }

    fn rxQueue(port: u8) u16 {
        return if (port == 0) 0 else 2 + 2 * @as(u16, port);
    }

    /// The port a data queue belongs to (queues 2 and 3 are control).
    fn portOf(index: u16) u8 {
        assert(index != 2 and index != 3); // tidy: callers pass data-queue indices checked against the queue table
        return if (index < 2) 0 else @intCast((index - 2) / 2);
    }

    fn notifyIfNeeded(q: *queue.Queue, a: Device.Activation) queue.Error!void {
        if (try q.needsNotification(a.mem)) a.interrupt.signal(Device.Interrupt.vring);
    }

    /// Guest → host: tx chains' readable bytes go into the port's ring, which is written out
    /// without waiting. A chain goes back to the guest once all of it is in the ring; when the
    /// host does not take more, the chain stays queued (the guest blocks) and `out` resumes.
    fn drainOutput(self: *Console, a: Device.Activation, index: u16) queue.Error!void {
        const i = portOf(index);
        if (i >= self.port_count) return;
        const p = &self.ports[i];
        const q = &a.queues[index];
        var used = false;
        blockSigpipe();
        var blocked = p.ring.flush(&p.out) == .blocked;
        while (!blocked) {
            const chain = (try q.pop(a.mem)) orelse break;
            var r = chain.reader();
            _ = try r.skip(p.partial);
            while (try r.peek()) |piece| {
                const n = p.ring.push(piece);
                r.consume(n);
                p.partial += @intCast(n);
                self.bytes_out += n;
                if (n < piece.len and p.ring.flush(&p.out) == .blocked) {
                    blocked = true;
                    break;
                }
            }
            if (blocked) {
                q.undoPop(); // the rest waits for the host (p.partial remembers the offset)
                break;
            }
            p.partial = 0;
            try q.addUsed(a.mem, chain.head, 0);
            used = true;
        }
        if (!blocked) blocked = p.ring.flush(&p.out) == .blocked;
        self.setWatch(i, blocked);
        if (used) try notifyIfNeeded(q, a);
    }

    /// `out` interest for a port's output while its ring waits for the host.
    fn setWatch(self: *Console, i: u8, want: bool) void {
        const loop = self.loop orelse return;
        const id = self.ports[i].out_id orelse return;
        loop.setEvents(id, if (want) EventLoop.out else 0);
    }

    /// Host → guest: fills the port's rx buffers from its input while there is input, the
    /// guest has buffers and has opened the port.
    fn pumpInput(self: *Console, a: Device.Activation, index: u16) queue.Error!void {
        const i = portOf(index);
        if (i >= self.port_count) return;
        const p = &self.ports[i];
        if (p.input < 0 or p.input_eof or !p.guest_open) return;
        const q = &a.queues[index];
        var used = false;
        while (true) {
            if (p.input_kind == .pollable and !readable(p.input)) {
                self.setArmed(i, true); // wake us when input arrives
                break;
            }
            const chain = (try q.pop(a.mem)) orelse break; // the guest's rx kick resumes us
            var w = chain.writer();
            var iov: [8]std.posix.iovec = undefined;
            const n = try w.iovecs(&iov, 64 * 1024);
            if (n == 0) {
                try q.addUsed(a.mem, chain.head, 0); // no writable bytes: nothing to give
                used = true;
                continue;
            }
            const rc, const errno = readv(p.input, iov[0..n]);
            switch (errno) {
                .SUCCESS => if (rc == 0) {
                    q.undoPop();
                    self.inputEof(i);
                    break;
                } else {
                    try w.skipWritten(rc);
                    try q.addUsed(a.mem, chain.head, w.written);
                    self.bytes_in += rc;
                    used = true;
                },
                .INTR => q.undoPop(),
                .AGAIN => {
                    q.undoPop();
                    self.setArmed(i, true);
                    break;
                },
                else => |e| {
                    q.undoPop();
                    log.warn("console: port input: {t}; treating as end of input", .{e});
                    self.inputEof(i);
                    break;
                },
            }
        }
        if (used) try notifyIfNeeded(q, a);
    }

    /// End of a port's input: stop watching it; a port with no output tells the guest the
    /// host side closed (PORT_OPEN 0), so readers in the guest see end of file.
    fn inputEof(self: *Console, i: u8) void {
        const p = &self.ports[i];
        p.input_eof = true;
        if (p.input_kind == .pollable) if (self.loop) |loop| if (p.in_id) |id| loop.setEvents(id, 0);
        if (self.multiport and !p.console and p.out.fd < 0) {
            self.queueControl(.{ .id = i, .event = Event.port_open, .value = 0 }, "");
            if (self.act) |a| self.run(a, 2, flushControl);
        }
    }

    fn setArmed(self: *Console, i: usize, armed: bool) void {
        const p = &self.ports[i];
        assert(p.input_kind == .pollable); // tidy: port kind from the host configuration
        const loop = self.loop orelse return;
        const id = p.in_id orelse return;
        loop.setEvents(id, if (armed) EventLoop.in | EventLoop.oneshot else EventLoop.oneshot);
    }

    /// Driver → device control messages.
    fn processControl(self: *Console, a: Device.Activation, index: u16) queue.Error!void {
        const q = &a.queues[index];
        var used = false;
        while (try q.pop(a.mem)) |chain| {
            var r = chain.reader();
            var msg: Control = undefined;
            const n = try r.read(std.mem.asBytes(&msg));
            try q.addUsed(a.mem, chain.head, 0);
            used = true;
            if (n == @sizeOf(Control)) self.handleControl(a, msg) else log.warn("console: short control message ({d} bytes)", .{n});
        }
        if (used) try notifyIfNeeded(q, a);
        self.run(a, 2, flushControl);
    }

    fn handleControl(self: *Console, a: Device.Activation, msg: Control) void {
        if (msg.event == Event.device_ready) {
            if (msg.value != 1) return log.warn("console: driver failed to initialize", .{});
            for (0..self.port_count) |i| self.queueControl(.{ .id = @intCast(i), .event = Event.port_add, .value = 0 }, "");
            return;
        }
        if (msg.id >= self.port_count) return log.warn("console: control event {d} for port {d}", .{ msg.event, msg.id });
        const i: u8 = @intCast(msg.id);
        const p = &self.ports[i];
        switch (msg.event) {
            Event.port_ready => {
                if (msg.value != 1) return log.warn("console: port {d} failed to initialize", .{i});
                if (p.console) {
                    self.queueControl(.{ .id = i, .event = Event.console_port, .value = 1 }, "");
                } else if (p.name_len > 0) {
                    self.queueControl(.{ .id = i, .event = Event.port_name, .value = 1 }, p.name());
                }
                // Host side open: Linux blocks guest writes to a port whose host is closed.
                self.queueControl(.{ .id = i, .event = Event.port_open, .value = 1 }, "");
                if (p.console) self.queueResize(i);
            },
            Event.port_open => {
                p.guest_open = msg.value == 1;
                if (p.guest_open) self.run(a, rxQueue(i), pumpInput);
            },
            else => log.debug("console: control event {d} ignored", .{msg.event}),
        }
    }

    fn queueResize(self: *Console, i: u8) void {
        if (self.cols == 0 and self.rows == 0) return;
        // struct virtio_console_resize { le16 cols; le16 rows; } after the header: the spec's
        // order, which Linux reads since 5.8 (before, it read rows first).
        var size: [4]u8 = undefined;
        std.mem.writeInt(u16, size[0..2], self.cols, .little);
        std.mem.writeInt(u16, size[2..4], self.rows, .little);
        self.queueControl(.{ .id = i, .event = Event.resize, .value = 0 }, &size);
    }

    fn queueControl(self: *Console, header: Control, payload: []const u8) void {
        assert(payload.len <= port_name_max); // tidy: payloads are host names and sizes
        if (self.pending_len == pending_max) return log.warn("console: control queue full, dropping event {d}", .{header.event});
        const slot = &self.pending[(self.pending_head + self.pending_len) % pending_max];
        slot.* = .{ .header = header, .payload_len = @intCast(payload.len) };
        @memcpy(slot.payload[0..payload.len], payload);
        self.pending_len += 1;
    }

    /// Device → driver control messages, as far as the driver posted buffers.
    fn flushControl(self: *Console, a: Device.Activation, index: u16) queue.Error!void {
        const q = &a.queues[index];
        var used = false;
        while (self.pending_len > 0) {
            const chain = (try q.pop(a.mem)) orelse break;
            const m = &self.pending[self.pending_head];
            var w = chain.writer();
            _ = try w.write(std.mem.asBytes(&m.header));
            _ = try w.write(m.payload[0..m.payload_len]);
            try q.addUsed(a.mem, chain.head, w.written);
            used = true;
            self.pending_head = (self.pending_head + 1) % pending_max;
            self.pending_len -= 1;
        }
        if (used) try notifyIfNeeded(q, a);
    }
};

// ---- host calls: raw Linux syscalls on Linux, libc on macOS --------------------------------

/// A regular file or a block device: reads never block, and no poller reports them.
fn isFile(fd: i32) bool {
    if (comptime is_macos) {
        var st: std.c.Stat = undefined;
        if (std.c.fstat(fd, &st) != 0) return false;
        return std.c.S.ISREG(st.mode) or std.c.S.ISBLK(st.mode);
    }
    const st = sys.fstatx(fd, .{ .TYPE = true }) catch return false;
    return linux.S.ISREG(st.mode) or linux.S.ISBLK(st.mode);
}

/// readv(2): the byte count and the errno (SUCCESS, or why nothing was read).
fn readv(fd: i32, iov: []const posix.iovec) struct { usize, posix.E } {
    if (comptime is_macos) {
        const rc = std.c.readv(fd, iov.ptr, @intCast(iov.len));
        return if (rc >= 0) .{ @intCast(rc), .SUCCESS } else .{ 0, std.c.errno(rc) };
    }
    const n = sys.readv(fd, iov) catch |err| return .{ 0, sys_errno.errnoOf(err) };
    return .{ n, .SUCCESS };
}

fn readable(fd: i32) bool {
    var pfd = [1]posix.pollfd{.{ .fd = fd, .events = posix.POLL.IN, .revents = 0 }};
    // HUP/ERR count as readable: the read then reports EOF or the error.
    if (comptime is_macos) return std.c.poll(&pfd, 1, 0) == 1;
    return (sys.poll(&pfd, 0) catch 0) == 1;
}

threadlocal var sigpipe_blocked = false;

/// Output to a pipe whose reader left raises SIGPIPE, which would kill the host process; the
/// thread that writes console output blocks it once and gets EPIPE instead. On macOS every
/// console write runs on the event-loop thread (hvf/Devices.zig hands QueueNotify exits to it),
/// which blocks SIGPIPE itself (EventLoop.run).
fn blockSigpipe() void {
    if (comptime is_macos) return;
    if (sigpipe_blocked) return;
    signal.blockSigpipe();
    sigpipe_blocked = true;
}
