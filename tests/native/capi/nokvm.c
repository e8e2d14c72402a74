/*
 * Without a usable /dev/kvm (the caller runs this in a mount namespace where /dev/kvm is
 * missing or is /dev/null), configuration still works and starting fails cleanly with
 * -ENODEV and a log line that names /dev/kvm; krun_start_enter consumes the context.
 * Usage: nokvm SCRATCH_DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libkrun.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    int fds[2];
    char buf[4096] = { 0 };
    if (pipe2(fds, O_NONBLOCK) != 0)
        return 2;
    CHECK_EQ(krun_init_log(fds[1], KRUN_LOG_LEVEL_ERROR, KRUN_LOG_STYLE_NEVER, KRUN_LOG_OPTION_NO_ENV), 0);
    CHECK_EQ(krun_get_max_vcpus(), -ENODEV);
    const char *const env[] = { "A=1", NULL };
    for (int enter = 0; enter < 2; enter++) {
        int32_t id = krun_create_ctx();
        CHECK(id >= 0);
        uint32_t ctx = (uint32_t)id;
        CHECK_EQ(krun_set_vm_config(ctx, 2, 256), 0);
        CHECK_EQ(krun_set_root(ctx, argv[1]), 0);
        CHECK_EQ(krun_set_exec(ctx, "/bin/true", NULL, env), 0);
        if (enter) {
            CHECK_EQ(krun_start_enter(ctx), -ENODEV);
            CHECK_EQ(krun_free_ctx(ctx), -ENOENT); /* consumed even on failure, as libkrun */
        } else {
            CHECK_EQ(krun_start(ctx), -ENODEV);
            CHECK_EQ(krun_wait(ctx, 0), -EINVAL); /* it never started */
            CHECK_EQ(krun_free_ctx(ctx), 0);
        }
    }
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    CHECK(strstr(buf, "[zkrun] krun_get_max_vcpus: /dev/kvm is missing or unusable") != NULL);
    CHECK(strstr(buf, "[zkrun] krun_start: /dev/kvm is missing or unusable") != NULL);
    CHECK(strstr(buf, "[zkrun] krun_start_enter: /dev/kvm is missing or unusable") != NULL);
    if (failed)
        printf("log was:\n%s", buf);
    return summary();
}
