/* What the C API VM programs share (vm_inproc.c, vm_status.c, vm_flood.c), included after
 * check.h and the system headers (_GNU_SOURCE: memmem): a monotonic clock, a new context with
 * its VM config (counted checks), and file_has. */
#ifndef CAPI_VM_H
#define CAPI_VM_H
#include <libkrun.h>
#include <stdint.h>
#include <time.h>

#include "../../vm/file_has.h"

static double now(void) __attribute__((unused));
static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t new_ctx(uint8_t vcpus, uint32_t ram_mib)
{
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    CHECK_EQ(krun_set_vm_config(ctx, vcpus, ram_mib), 0);
    return ctx;
}
#endif
