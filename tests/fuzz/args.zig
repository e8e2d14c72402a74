//! The `[iterations] [seed]` arguments every fuzz target takes: the seed defaults to the
//! process id, and each target prints the seed it used, so a failing run can be repeated.
const std = @import("std");
const linux = std.os.linux;

pub const Args = struct {
    iterations: u64,
    seed: u64,
    prng: std.Random.DefaultPrng,
};

/// `nums` is what follows the target's own arguments (argv[1..] for most).
pub fn parse(nums: []const [:0]const u8, iterations_default: u64) !Args {
    const iterations = if (nums.len > 0) try std.fmt.parseInt(u64, nums[0], 10) else iterations_default;
    const seed = if (nums.len > 1) try std.fmt.parseInt(u64, nums[1], 10) else @as(u64, @intCast(linux.getpid()));
    return .{ .iterations = iterations, .seed = seed, .prng = .init(seed) };
}

/// `parse` of the command line after argv[0].
pub fn fromInit(init: std.process.Init, iterations_default: u64) !Args {
    const args = try init.minimal.args.toSlice(init.arena.allocator());
    return parse(args[1..], iterations_default);
}
