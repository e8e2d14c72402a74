//! In-memory overlay entries of one virtio-fs device: the one-shot `/init.krun` and the files
//! and directories of krun_fs_add_overlay_file/dir. They form a small tree rooted at the
//! share's root (entry 0). An "anchor" is a path component that names a host directory on the
//! way to an overlay entry (e.g. `etc` for `etc/resolv.conf`): the host directory is served
//! as usual, tagged so that its overlay children shadow host names. Overlays are read-only.
//! The data is not copied (libkrun's contract): the caller keeps it alive while the VM runs.
const std = @import("std");
const assert = std.debug.assert;
const S = std.os.linux.S;

const Virtual = @This();

pub const entries_max = 64;
pub const none: u16 = std.math.maxInt(u16);

pub const Kind = enum(u8) { dir, file, anchor };

pub const Entry = struct {
    parent: u16,
    name: []const u8,
    kind: Kind,
    data: []const u8 = &.{},
    /// Permission bits (the type comes from `kind`).
    mode: u32,
    one_shot: bool = false,
    /// Cleared when a one-shot entry has been looked up once.
    armed: bool = true,
};

entries: [entries_max]Entry = undefined,
count: u16 = 0,

/// Entry 0 is the root: a virtual directory when the device has no host directory (NullFs),
/// else an anchor for the host root.
pub fn init(root_is_virtual: bool) Virtual {
    var v: Virtual = .{};
    v.entries[0] = .{ .parent = none, .name = "", .kind = if (root_is_virtual) .dir else .anchor, .mode = 0o755 };
    v.count = 1;
    return v;
}

pub const AddError = error{ OverlayTableFull, OverlayPathInvalid, OverlayExists };

pub fn addFile(self: *Virtual, path: []const u8, data: []const u8, mode: u32, one_shot: bool) AddError!void {
    const parent, const name = try self.walkParents(path);
    if (self.child(parent, name) != null) return error.OverlayExists;
    _ = try self.append(.{ .parent = parent, .name = name, .kind = .file, .data = data, .mode = mode & 0o7777, .one_shot = one_shot });
}

pub fn addDir(self: *Virtual, path: []const u8, mode: u32) AddError!void {
    const parent, const name = try self.walkParents(path);
    if (self.child(parent, name)) |i| {
        // An anchor created for an earlier nested file becomes a virtual directory.
        if (self.entries[i].kind != .anchor) return error.OverlayExists;
        self.entries[i].kind = .dir;
        self.entries[i].mode = mode & 0o7777;
        return;
    }
    _ = try self.append(.{ .parent = parent, .name = name, .kind = .dir, .mode = mode & 0o7777 });
}

/// Finds or creates every component but the last; returns (parent entry, last name).
fn walkParents(self: *Virtual, path: []const u8) AddError!struct { u16, []const u8 } {
    const trimmed = std.mem.trim(u8, path, "/");
    if (trimmed.len == 0) return error.OverlayPathInvalid;
    var parent: u16 = 0;
    var it = std.mem.splitScalar(u8, trimmed, '/');
    var name = it.next().?;
    while (it.next()) |next| {
        if (!validName(name)) return error.OverlayPathInvalid;
        parent = self.child(parent, name) orelse blk: {
            // Under a virtual directory the path is all virtual; under a host one it is a
            // host directory we only tag.
            const kind: Kind = if (self.entries[parent].kind == .dir) .dir else .anchor;
            break :blk try self.append(.{ .parent = parent, .name = name, .kind = kind, .mode = 0o755 });
        };
        if (self.entries[parent].kind == .file) return error.OverlayPathInvalid;
        name = next;
    }
    if (!validName(name)) return error.OverlayPathInvalid;
    return .{ parent, name };
}

fn append(self: *Virtual, e: Entry) AddError!u16 {
    if (self.count == entries_max) return error.OverlayTableFull;
    self.entries[self.count] = e;
    self.count += 1;
    return self.count - 1;
}

fn validName(name: []const u8) bool {
    if (name.len == 0 or name.len > 255) return false;
    if (std.mem.eql(u8, name, ".") or std.mem.eql(u8, name, "..")) return false;
    return std.mem.indexOfScalar(u8, name, 0) == null;
}

/// The live (armed) child `name` of `parent`, if any.
pub fn child(self: *const Virtual, parent: u16, name: []const u8) ?u16 {
    if (parent == none) return null;
    for (self.entries[1..self.count], 1..) |e, i| {
        if (e.parent == parent and e.armed and std.mem.eql(u8, e.name, name)) return @intCast(i);
    }
    return null;
}

/// Marks a lookup: a one-shot entry disappears from further lookups.
pub fn consume(self: *Virtual, index: u16) void {
    const e = &self.entries[index];
    assert(e.armed); // tidy: index from our own lookup
    if (e.one_shot) e.armed = false;
}

pub fn get(self: *const Virtual, index: u16) *const Entry {
    assert(index < self.count); // tidy: index from our own lookup
    return &self.entries[index];
}

/// The type bits of an entry as served.
pub fn fileType(self: *const Virtual, index: u16) u32 {
    return switch (self.get(index).kind) {
        .file => S.IFREG,
        .dir, .anchor => S.IFDIR,
    };
}

/// The n-th listable child of a virtual directory (one-shot entries are never listed).
pub fn listChild(self: *const Virtual, parent: u16, n: usize) ?u16 {
    var seen: usize = 0;
    for (self.entries[1..self.count], 1..) |e, i| {
        if (e.parent != parent or !e.armed or e.one_shot or e.kind == .anchor) continue;
        if (seen == n) return @intCast(i);
        seen += 1;
    }
    return null;
}

test "overlay tree: nested files, anchors, one-shot" {
    var v = Virtual.init(false);
    try v.addFile("init.krun", "ELF", 0o755, true);
    try v.addFile("/etc/zkrun/config.json", "{}", 0o644, false);
    try v.addDir("/mnt", 0o755);
    try v.addFile("mnt/x", "x", 0o600, false);
    try std.testing.expectError(error.OverlayPathInvalid, v.addFile("a/../b", "", 0, false));
    try std.testing.expectError(error.OverlayPathInvalid, v.addFile("/", "", 0, false));
    try std.testing.expectError(error.OverlayExists, v.addFile("init.krun", "", 0, false));
    const etc = v.child(0, "etc").?;
    try std.testing.expectEqual(Kind.anchor, v.get(etc).kind);
    const zk = v.child(etc, "zkrun").?;
    try std.testing.expectEqual(Kind.anchor, v.get(zk).kind);
    try std.testing.expectEqualStrings("{}", v.get(v.child(zk, "config.json").?).data);
    const mnt = v.child(0, "mnt").?;
    try std.testing.expectEqual(Kind.dir, v.get(mnt).kind);
    try std.testing.expectEqual(v.child(mnt, "x").?, v.listChild(mnt, 0).?);
    const init_krun = v.child(0, "init.krun").?;
    v.consume(init_krun);
    try std.testing.expectEqual(null, v.child(0, "init.krun"));
    try std.testing.expectEqual(null, v.listChild(0, 1));
}
