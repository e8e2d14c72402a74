/*
 * The zkrun extensions in one process: krun_start returns with the VM running in its own
 * threads, krun_wait gives its status (or -ETIMEDOUT), krun_stop forces it down, several VMs
 * run at once, and a started context refuses setters and a second start.
 * Usage: vm_inproc KERNEL INITRD CMDLINE HANG_CMDLINE OUTDIR
 *   CMDLINE boots the test init, which prints "ZKRUN-TEST ..." lines and reboots;
 *   HANG_CMDLINE boots a guest that never ends by itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libkrun.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "vm.h"

static const char *kernel, *initrd, *outdir;

static uint32_t configured(const char *cmdline, const char *log_name)
{
    char path[600];
    const char *const no_env[] = { NULL };
    uint32_t ctx = new_ctx(1, 256);
    snprintf(path, sizeof path, "%s/%s", outdir, log_name);
    CHECK_EQ(krun_set_kernel(ctx, kernel, KRUN_KERNEL_FORMAT_ELF, initrd, cmdline), 0);
    CHECK_EQ(krun_set_console_output(ctx, path), 0);
    CHECK_EQ(krun_set_env(ctx, no_env), 0);
    return ctx;
}

static int log_has(const char *log_name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", outdir, log_name);
    return file_has(path, text);
}

struct waiter {
    uint32_t ctx;
    int32_t status;
    double returned_at;
};

static void *wait_forever(void *arg)
{
    struct waiter *w = arg;
    w->status = krun_wait(w->ctx, -1);
    w->returned_at = now();
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    kernel = argv[1];
    initrd = argv[2];
    outdir = argv[5];

    /* 1. One VM to its end. */
    printf("== start, wait, status\n");
    uint32_t a = configured(argv[3], "a.log");
    CHECK_EQ(krun_start(a), 0);
    CHECK_EQ(krun_set_vm_config(a, 1, 128), -EBUSY);
    CHECK_EQ(krun_set_workdir(a, "/"), -EBUSY);
    CHECK_EQ(krun_start(a), -EBUSY);
    CHECK_EQ(krun_start_enter(a), -EBUSY); /* leaves the running VM alone */
    CHECK_EQ(krun_wait(a, -1), 0);
    CHECK_EQ(krun_wait(a, 0), 0); /* the status again */
    CHECK_EQ(krun_stop(a), 0);    /* already ended: nothing to do */
    CHECK_EQ(krun_free_ctx(a), 0);
    CHECK(log_has("a.log", "ZKRUN-TEST hello from pid 1"));

    /* 2. Two VMs at once. */
    printf("== two VMs at once\n");
    uint32_t b = configured(argv[3], "b.log"), c = configured(argv[3], "c.log");
    CHECK_EQ(krun_start(b), 0);
    CHECK_EQ(krun_start(c), 0);
    CHECK_EQ(krun_wait(c, -1), 0);
    CHECK_EQ(krun_wait(b, -1), 0);
    CHECK(log_has("b.log", "ZKRUN-TEST hello from pid 1"));
    CHECK(log_has("c.log", "ZKRUN-TEST hello from pid 1"));
    CHECK_EQ(krun_free_ctx(b), 0);
    CHECK_EQ(krun_free_ctx(c), 0);

    /* 3. A guest that never ends: timeout, a busy second waiter, then krun_stop. */
    printf("== timeout and stop\n");
    uint32_t d = configured(argv[4], "d.log");
    CHECK_EQ(krun_start(d), 0);
    double t0 = now();
    CHECK_EQ(krun_wait(d, 1000), -ETIMEDOUT);
    CHECK(now() - t0 >= 0.9);
    struct waiter w = { .ctx = d, .status = -1 };
    pthread_t thread;
    CHECK_EQ(pthread_create(&thread, NULL, wait_forever, &w), 0);
    usleep(300 * 1000);
    CHECK_EQ(krun_wait(d, 0), -EBUSY);    /* one waiter at a time */
    CHECK_EQ(krun_free_ctx(d), -EBUSY);   /* not while someone waits on it */
    double stopped_at = now();
    CHECK_EQ(krun_stop(d), 0);
    CHECK_EQ(pthread_join(thread, NULL), 0);
    CHECK(w.status >= 0);
    printf("wait returned %.3f s after krun_stop\n", w.returned_at - stopped_at);
    CHECK(w.returned_at - stopped_at < 5.0);
    CHECK_EQ(krun_free_ctx(d), 0);

    /* 4. krun_free_ctx on a running VM stops and releases it. */
    printf("== free while running\n");
    uint32_t e = configured(argv[4], "e.log");
    CHECK_EQ(krun_start(e), 0);
    CHECK_EQ(krun_free_ctx(e), 0);
    CHECK_EQ(krun_wait(e, 0), -ENOENT);
    return summary();
}
