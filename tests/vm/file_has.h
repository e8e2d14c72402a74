/* file_has, shared by the C VM test programs (tests/vm/expect.h's users, and the C API VM
 * programs through tests/native/capi/vm.h). Included after the system headers, with
 * _GNU_SOURCE defined (memmem). */
#ifndef ZKRUN_TESTS_VM_FILE_HAS_H
#define ZKRUN_TESTS_VM_FILE_HAS_H
#include <stdio.h>
#include <string.h>

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
