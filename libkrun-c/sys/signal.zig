//! Process-wide signal setup shared by the VMM and the devices (Linux and macOS): below both, so
//! neither imports the other for it.
const std = @import("std");
const linux = std.os.linux;

const is_macos = @import("builtin").os.tag == .macos;

/// Blocks SIGPIPE on the calling thread: a write to a pipe whose reader left would otherwise
/// raise it and kill the host process; the thread gets EPIPE instead. For the threads that
/// write guest output (the event loop, the console's writer). macOS too (the event loop runs
/// there), through libSystem's pthread_sigmask.
pub fn blockSigpipe() void {
    if (comptime is_macos) {
        var set = std.posix.sigemptyset();
        std.posix.sigaddset(&set, .PIPE);
        var old: std.c.sigset_t = undefined;
        _ = std.c.pthread_sigmask(std.c.SIG.BLOCK, &set, &old);
    } else {
        var set = linux.sigemptyset();
        linux.sigaddset(&set, linux.SIG.PIPE);
        _ = linux.sigprocmask(linux.SIG.BLOCK, &set, null);
    }
}
