/* The C baseline for tests/bench/ts.bench.sh: ns per call of the functions tests/ts/bench.ts
 * times, linked directly against libkrun.so.1; with a guest file, also the median wall time
 * of create+configure+krun_start+krun_wait+free of that raw guest (as bench-run.ts --tiny).
 * Usage: bench_ffi [calls [raw-guest runs]] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

int32_t krun_create_ctx(void);
int32_t krun_free_ctx(uint32_t ctx_id);
int32_t krun_has_feature(uint64_t feature);
int32_t krun_set_nested_virt(uint32_t ctx_id, bool enabled);
int32_t krun_set_vm_config(uint32_t ctx_id, uint8_t num_vcpus, uint32_t ram_mib);
int32_t krun_set_kernel(uint32_t ctx_id, const char *kernel_path, uint32_t kernel_format,
                        const char *initramfs, const char *cmdline);
int32_t krun_set_console_output(uint32_t ctx_id, const char *c_filepath);
int32_t krun_start(uint32_t ctx_id);
int32_t krun_wait(uint32_t ctx_id, int32_t timeout_ms);

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Median ms of `runs` full runs of the raw guest at `path`; < 0 on a failure. */
static double run_tiny(const char *path, int runs) {
    double ms[64];
    if (runs > 64) runs = 64;
    for (int i = 0; i < runs; i++) {
        double t0 = now_ns();
        int32_t ctx = krun_create_ctx();
        if (ctx < 0 || krun_set_vm_config((uint32_t)ctx, 1, 32) != 0 ||
            krun_set_kernel((uint32_t)ctx, path, 0, 0, "console=ttyS0") != 0 ||
            krun_set_console_output((uint32_t)ctx, "/dev/null") != 0 || krun_start((uint32_t)ctx) != 0 ||
            krun_wait((uint32_t)ctx, -1) != 0 || krun_free_ctx((uint32_t)ctx) != 0)
            return -1;
        ms[i] = (now_ns() - t0) / 1e6;
    }
    qsort(ms, (size_t)runs, sizeof ms[0], cmp);
    return ms[runs / 2];
}

#define TIME(what, calls, call)                                                  \
    do {                                                                         \
        for (long i = 0; i < (calls); i++) (void)(call); /* warm up */           \
        double t0 = now_ns();                                                    \
        for (long i = 0; i < (calls); i++) (void)(call);                         \
        printf("c %s %.1f\n", what, (now_ns() - t0) / (double)(calls));         \
    } while (0)

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    long slow = n / 100 > 0 ? n / 100 : 1;
    int32_t ctx = krun_create_ctx();
    if (ctx < 0) return 1;
    TIME("krun_has_feature", n, krun_has_feature(11));
    TIME("krun_set_nested_virt", n, krun_set_nested_virt((uint32_t)ctx, false));
    TIME("krun_set_vm_config", slow, krun_set_vm_config((uint32_t)ctx, 1, 128));
    krun_free_ctx((uint32_t)ctx);
    if (argc > 3) {
        double ms = run_tiny(argv[2], atoi(argv[3]));
        if (ms < 0) return 1;
        printf("c run(tiny) %.2f\n", ms);
    }
    return 0;
}
