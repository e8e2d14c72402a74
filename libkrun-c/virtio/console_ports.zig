//! virtio-console's port configuration, what the VMM asks for (console.zig re-exports it):
//! `PortConfig`, the bounded `Ports` list, and libkrun's autoconfigurations
//! (krun_add_virtio_console_default and the implicit console: `defaultPorts`;
//! krun_set_console_output: `outputFilePorts`).
const std = @import("std");
const assert = std.debug.assert;
const isatty = @import("../vmm/terminal.zig").isatty;
const ports_max = @import("console.zig").ports_max;

/// One port as the VMM describes it. Fds are borrowed: `Console.init` dups what it keeps.
pub const PortConfig = struct {
    /// Empty for the console port; otherwise sent as PORT_NAME.
    name: []const u8 = "",
    console: bool = false,
    /// Host → guest; -1 for none.
    input_fd: i32 = -1,
    /// Guest → host; -1 discards.
    output_fd: i32 = -1,
};

pub const Ports = struct {
    items: [ports_max]PortConfig = undefined,
    len: u8 = 0,

    pub fn slice(p: *const Ports) []const PortConfig {
        return p.items[0..p.len];
    }

    pub fn add(p: *Ports, port: PortConfig) void {
        assert(p.len < ports_max); // tidy: port count from the host configuration
        p.items[p.len] = port;
        p.len += 1;
    }
};

/// libkrun's autoconfiguration (`krun_add_virtio_console_default`, and the implicit console
/// with stdin/stdout/stderr): a console port on the terminal fds, plus a named port for each
/// fd that is not a terminal. Console output that has no terminal is dropped (libkrun sends it
/// to its log at error level, off by default).
pub fn defaultPorts(input_fd: i32, output_fd: i32, err_fd: i32) Ports {
    const in_tty = input_fd >= 0 and isatty(input_fd);
    const out_tty = output_fd >= 0 and isatty(output_fd);
    const err_tty = err_fd >= 0 and isatty(err_fd);
    var ports: Ports = .{};
    ports.add(.{ .console = true, .input_fd = if (in_tty) input_fd else -1, .output_fd = if (out_tty) output_fd else -1 });
    if (input_fd >= 0 and !in_tty) ports.add(.{ .name = "krun-stdin", .input_fd = input_fd });
    if (output_fd >= 0 and !out_tty) ports.add(.{ .name = "krun-stdout", .output_fd = output_fd });
    if (err_fd >= 0 and !err_tty) ports.add(.{ .name = "krun-stderr", .output_fd = err_fd });
    return ports;
}

/// The host → guest port on which krun_start_enter's VMM sends signal numbers (one byte each)
/// for init to deliver to the workload; zkrun's own (libkrun has none).
pub const signal_port_name = "krun-signal";

/// `krun_set_console_output`: one console port, no input, output into the file.
pub fn outputFilePorts(file_fd: i32) Ports {
    var ports: Ports = .{};
    ports.add(.{ .console = true, .output_fd = file_fd });
    return ports;
}
