/* What the C VM tests share (23-life-vm.c, 80-vsock-vm.c): the check line, "ok   what" or
 * "FAIL what", one line each, flushed at once, counted in `passed` / `failed` for the final
 * "N passed, N failed"; start_and_wait; and file_has (file_has.h). Included after the system
 * headers and libkrun.h (_GNU_SOURCE: memmem). */
#ifndef ZKRUN_TESTS_VM_EXPECT_H
#define ZKRUN_TESTS_VM_EXPECT_H
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static int passed, failed;

static void expect(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void expect(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

/* krun_start, then krun_wait up to `timeout_s`: the VM's status, or -ETIMEDOUT when it was still
 * running (it is stopped then, and waited for); krun_start's error when it did not start. */
static int32_t start_and_wait(uint32_t ctx, int timeout_s)
{
    int32_t rc = krun_start(ctx);
    if (rc != 0)
        return rc;
    int32_t status = krun_wait(ctx, timeout_s * 1000);
    if (status == -ETIMEDOUT) {
        printf("     (still running after %d s: stopping it)\n", timeout_s);
        krun_stop(ctx);
        krun_wait(ctx, -1);
    }
    return status;
}

#include "file_has.h"
#endif
