//! Guest init (placeholder until the init lands).
pub fn main() void {}
