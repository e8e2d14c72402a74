/* Tiny test harness shared by the C API tests: CHECK_EQ counts and reports, main prints the
 * "N passed, N failed" line that tests/run.sh adds up. */
#ifndef CAPI_CHECK_H
#define CAPI_CHECK_H
#include <stdio.h>

static int passed, failed;

#define CHECK_EQ(expr, expected)                                                              \
    do {                                                                                      \
        long long got_ = (long long)(expr);                                                   \
        long long want_ = (long long)(expected);                                              \
        if (got_ == want_) {                                                                  \
            passed++;                                                                         \
        } else {                                                                              \
            failed++;                                                                         \
            printf("FAIL %s:%d: %s = %lld, expected %lld\n", __FILE__, __LINE__, #expr, got_, \
                   want_);                                                                    \
        }                                                                                     \
    } while (0)

#define CHECK(cond) CHECK_EQ(!!(cond), 1)

static int summary(void)
{
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
#endif
