//! libkrun.so root: the only file that exports C symbols. Each `krun_*` is a thin shim in
//! capi/ that validates, calls the Zig core, and maps errors to -errno.
const std = @import("std");

comptime {
    _ = @import("capi/exports.zig");
}
