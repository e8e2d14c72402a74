/* The C VM tests' check line (23-life-vm.c, 80-vsock-vm.c): "ok   what" or "FAIL what", one
 * line each, flushed at once, counted in `passed` / `failed` for the final "N passed, N failed". */
#ifndef ZKRUN_TESTS_VM_EXPECT_H
#define ZKRUN_TESTS_VM_EXPECT_H
#include <stdarg.h>
#include <stdio.h>

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
#endif
