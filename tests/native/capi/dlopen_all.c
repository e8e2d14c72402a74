/*
 * What crun does: dlopen("libkrun.so.1", RTLD_NOW) and dlsym every function it may use; here
 * every function of the header (names on stdin, one per line). Then a call through the
 * resolved pointers, to show they are the real functions.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <string.h>

#include "check.h"

int main(void)
{
    void *lib = dlopen("libkrun.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        printf("FAIL dlopen: %s\n", dlerror());
        return 1;
    }
    char name[128];
    int count = 0;
    while (fgets(name, sizeof name, stdin) != NULL) {
        name[strcspn(name, "\n")] = '\0';
        void *sym = dlsym(lib, name);
        if (sym == NULL)
            printf("FAIL dlsym(%s): %s\n", name, dlerror());
        CHECK(sym != NULL);
        count++;
    }
    /* libkrun 1.x's 74 + zkrun's 7 extensions (krun_start, krun_wait, krun_stop,
     * krun_get_exit_reason, krun_set_console_size, krun_get_stats, krun_last_error) */
    CHECK_EQ(count, 81);
    int32_t (*create)(void) = (int32_t (*)(void))dlsym(lib, "krun_create_ctx");
    int32_t (*free_ctx)(uint32_t) = (int32_t (*)(uint32_t))dlsym(lib, "krun_free_ctx");
    int32_t (*has_feature)(uint64_t) = (int32_t (*)(uint64_t))dlsym(lib, "krun_has_feature");
    if (create && free_ctx && has_feature) {
        int32_t ctx = create();
        CHECK(ctx >= 0);
        CHECK_EQ(free_ctx((uint32_t)ctx), 0);
        CHECK_EQ(has_feature(11), 1);
    }
    /* krun_last_error's thread-local text works in a dlopen()ed library too. */
    int32_t (*last_error)(char *, size_t) = (int32_t (*)(char *, size_t))dlsym(lib, "krun_last_error");
    if (free_ctx && last_error) {
        char why[256] = "";
        CHECK_EQ(free_ctx(1000000), -2);
        CHECK(last_error(why, sizeof why) > 0);
        CHECK(strstr(why, "krun_free_ctx: context 1000000 does not exist") != NULL);
    }
    CHECK_EQ(dlclose(lib), 0);
    return summary();
}
