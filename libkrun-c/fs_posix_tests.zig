//! The virtio-fs unit tests (the device's, the server's, its tables') built for the posix
//! backend (virtio/fs/sys_posix.zig, macOS's) on Linux: build.zig's fs-posix-unit step runs
//! them under tests/zig/fs/posix_runner.zig, whose `zkrun_fs_posix` selects that backend.
comptime {
    _ = @import("virtio/fs/VirtioFs.zig");
    _ = @import("virtio/fs/Handles.zig");
    _ = @import("virtio/fs/Inodes.zig");
    _ = @import("virtio/fs/Server.zig");
    _ = @import("virtio/fs/Stats.zig");
    _ = @import("virtio/fs/Virtual.zig");
    _ = @import("virtio/fs/fuse.zig");
    _ = @import("virtio/fs/sys_posix.zig");
}
