//! The TSI service on host vsock port 620 (tsi/PROTOCOL.md): each guest connection starts
//! with a request header and becomes a host socket's proxy. Not built yet: a connection to 620
//! is reset.
const std = @import("std");
const vsock = @import("../virtio/vsock/Vsock.zig");
const Vsock = vsock.Vsock;
const Conn = vsock.Conn;

pub const port: u32 = 620;

pub const PortMapEntry = struct { host: u16, guest: u16 };

/// What the host exposes (krun_set_port_map).
pub const Policy = struct {
    /// null: krun_set_port_map was never called (listeners on the host's loopback only).
    port_map: ?[]const PortMapEntry = null,
};

pub const Phase = enum { none, request };

pub const ConnState = struct { phase: Phase = .none };

pub const Service = struct {
    policy: Policy,

    pub fn deinit(_: *Service) void {}

    pub fn open(_: *Service, _: *Vsock, c: *Conn) void {
        c.tsi.phase = .request;
        c.hold_reads = true;
    }

    pub fn consume(_: *Service, v: *Vsock, c: *Conn) void {
        v.abort(c, "TSI is not built");
    }

    pub fn release(_: *Service, _: *Vsock, _: *Conn) void {}

    pub fn interest(_: *Service, _: *Conn, want: u32) u32 {
        return want;
    }

    pub fn hostEvent(_: *Service, v: *Vsock, c: *Conn, events: u32) void {
        v.connEvent(c, events);
    }

    pub fn hostEof(_: *Service, _: *Vsock, c: *Conn) void {
        c.send_shutdown |= 2;
    }

    pub fn stagedSent(_: *Service, _: *Vsock, _: *Conn) void {}
};
