/*
 * krun_start + krun_wait on a real root filesystem (libkrunfw kernel, virtio-fs root, our init):
 * krun_wait returns the workload's exit status, and several VMs run side by side.
 * Usage: vm_status ROOTFS OUTDIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vm.h"

static uint32_t vm(const char *rootfs, const char *script, const char *out)
{
    const char *const argv[] = { "-c", script, NULL };
    const char *const env[] = { "PATH=/bin:/sbin:/usr/bin", NULL };
    uint32_t ctx = new_ctx(1, 256);
    CHECK_EQ(krun_set_root(ctx, rootfs), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", argv, env), 0);
    CHECK_EQ(krun_set_console_output(ctx, out), 0);
    return ctx;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    char out_a[512], out_b[512];
    snprintf(out_a, sizeof out_a, "%s/status-a.log", argv[2]);
    snprintf(out_b, sizeof out_b, "%s/status-b.log", argv[2]);
    uint32_t a = vm(argv[1], "echo from-a; exit 9", out_a);
    uint32_t b = vm(argv[1], "echo from-b; sleep 1; exit 0", out_b);
    CHECK_EQ(krun_start(a), 0);
    CHECK_EQ(krun_start(b), 0);
    CHECK_EQ(krun_wait(a, -1), 9);
    CHECK_EQ(krun_wait(b, -1), 0);
    CHECK(file_has(out_a, "from-a"));
    CHECK(file_has(out_b, "from-b"));
    CHECK_EQ(krun_free_ctx(a), 0);
    CHECK_EQ(krun_free_ctx(b), 0);
    return summary();
}
