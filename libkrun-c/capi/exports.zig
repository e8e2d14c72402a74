//! The exported krun_* symbols (placeholder until the C API lands).
export fn krun_get_max_vcpus() callconv(.c) i32 {
    return -95;
}
