/* What the C VM tests share (23-life-vm.c, 80-vsock-vm.c): the check line, "ok   what" or
 * "FAIL what", one line each, flushed at once, counted in `passed` / `failed` for the final
 * "N passed, N failed"; and file_has. Included after the system headers (_GNU_SOURCE: memmem). */
#ifndef ZKRUN_TESTS_VM_EXPECT_H
#define ZKRUN_TESTS_VM_EXPECT_H
#include <stdarg.h>
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

/* Whether the file (its first MiB) contains `text`. */
static int file_has(const char *path, const char *text) __attribute__((unused));
static int file_has(const char *path, const char *text)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    return memmem(buf, n, text, strlen(text)) != NULL;
}
#endif
