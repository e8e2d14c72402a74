//! Root of the virtio-fs harness tests (`zig build test`, and tests/native/fs-hostile.sh runs
//! the binary `zig build harness` installs as zig-out/bin/test-fs): the server's request-level
//! tests and the hostile-driver harness, both through the server's entry point on real files.
test {
    _ = @import("server.zig");
    _ = @import("hostile.zig");
}
