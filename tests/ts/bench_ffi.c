/* The C baseline for tests/bench/ts.bench.sh: ns per call of the functions tests/ts/bench.ts
 * times, linked directly against libkrun.so.1. Usage: bench_ffi [calls] */
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

static double now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
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
    return 0;
}
