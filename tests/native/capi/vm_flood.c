/*
 * Back-pressure: guests that flood their output while the host never reads it cannot hang the
 * host process. A: a busybox guest printing in a loop to its krun-stdout port (virtio-console),
 * the port's host fd a pipe nobody reads. C: a kernel printing its boot log on COM1 (ttyS0), our
 * stdout a pipe nobody reads while it starts. Both pipes are shrunk to one page so they fill at
 * once. Then krun_stop → krun_wait → krun_free_ctx must return within 10 s for both, while
 * another context (B, in its own thread) keeps starting and finishing VMs the whole time.
 * Usage: vm_flood KERNEL INITRD CMDLINE ROOTFS OUTDIR
 *   CMDLINE boots the test init (prints "ZKRUN-TEST ..." lines and reboots).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libkrun.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "vm.h"

static const char *kernel, *initrd, *cmdline, *rootfs, *outdir;

static void sleep_s(double s)
{
    struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
    nanosleep(&ts, NULL);
}

/* ---- B: VMs started and finished in a loop, timing every call that takes the global lock -- */

static atomic_int b_stop, b_done, b_failed;
static double b_slowest_call; /* slowest krun_create_ctx/krun_start/krun_free_ctx, seconds */
static double b_finish_times[4096];

static void b_timed(double t0)
{
    double d = now() - t0;
    if (d > b_slowest_call)
        b_slowest_call = d;
}

static void *b_loop(void *arg)
{
    (void)arg;
    const char *const no_env[] = { NULL };
    char path[600];
    while (!atomic_load(&b_stop)) {
        int n = atomic_load(&b_done);
        snprintf(path, sizeof path, "%s/b-%d.log", outdir, n);
        double t = now();
        int32_t id = krun_create_ctx();
        b_timed(t);
        if (id < 0) {
            atomic_fetch_add(&b_failed, 1);
            sleep_s(1);
            continue;
        }
        uint32_t ctx = (uint32_t)id;
        krun_set_vm_config(ctx, 1, 128);
        krun_set_kernel(ctx, kernel, KRUN_KERNEL_FORMAT_ELF, initrd, cmdline);
        krun_set_console_output(ctx, path);
        krun_set_env(ctx, no_env);
        t = now();
        int32_t rc = krun_start(ctx);
        b_timed(t);
        int32_t status = rc == 0 ? krun_wait(ctx, 180000) : rc;
        int32_t reason = status >= 0 ? krun_get_exit_reason(ctx) : -1;
        if (status == -ETIMEDOUT)
            krun_stop(ctx); /* a stuck guest: stop it so free does not wait on it */
        t = now();
        krun_free_ctx(ctx);
        b_timed(t);
        if (status != 0) {
            char msg[256] = "";
            if (status < 0)
                krun_last_error(msg, sizeof msg);
            fprintf(stderr, "B: VM %d ended with %d (exit reason %d) %s; its console's last lines:\n", n, status, reason, msg);
            char cmd[700];
            snprintf(cmd, sizeof cmd, "tail -c 600 '%s' | tr -d '\\r' >&2", path);
            if (system(cmd) != 0)
                fprintf(stderr, "B: (no console log)\n");
            atomic_fetch_add(&b_failed, 1);
            continue;
        }
        if (n < 4096)
            b_finish_times[n] = now();
        atomic_fetch_add(&b_done, 1);
    }
    return NULL;
}

static int b_done_since(double t)
{
    int n = atomic_load(&b_done), k = 0;
    for (int i = 0; i < n && i < 4096; i++)
        if (b_finish_times[i] >= t)
            k++;
    return k;
}

/* ---- the flooding contexts ---------------------------------------------------------------- */

static void small_pipe(int fds[2])
{
    CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
    fcntl(fds[1], F_SETPIPE_SZ, 4096); /* one page: full at once */
}

static int pipe_bytes(int fd)
{
    int n = 0;
    ioctl(fd, FIONREAD, &n);
    return n;
}

static uint32_t start_virtio_flood(int out_fd)
{
    const char *const argv[] = { "-c", "while :; do echo zkrun-flood-line-0123456789abcdef; done", NULL };
    const char *const env[] = { "PATH=/bin:/usr/bin", NULL };
    int devnull = open("/dev/null", O_RDONLY | O_CLOEXEC);
    uint32_t ctx = new_ctx(1, 256);
    CHECK_EQ(krun_set_root(ctx, rootfs), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/sh", argv, env), 0);
    CHECK_EQ(krun_disable_implicit_console(ctx), 0);
    CHECK_EQ(krun_add_virtio_console_default(ctx, devnull, out_fd, out_fd), 0);
    CHECK_EQ(krun_start(ctx), 0);
    close(devnull);
    return ctx;
}

/* COM1 writes to our stdout when no console output file is set: stdout is the pipe while the
 * VM is built (zkrun takes its own handle then), and ours again right after. */
static uint32_t start_serial_flood(int out_fd)
{
    char line[512];
    const char *const no_env[] = { NULL };
    /* No init, panic=0: the kernel logs its whole boot at ignore_loglevel, panics, stays up. */
    snprintf(line, sizeof line,
             "console=ttyS0 earlyprintk=serial,ttyS0,115200 ignore_loglevel initcall_debug panic=0 "
             "rdinit=/zkrun-no-such-init root=/dev/zkrun-none");
    uint32_t ctx = new_ctx(1, 128);
    CHECK_EQ(krun_set_kernel(ctx, kernel, KRUN_KERNEL_FORMAT_ELF, initrd, line), 0);
    CHECK_EQ(krun_disable_implicit_console(ctx), 0);
    CHECK_EQ(krun_set_env(ctx, no_env), 0);
    fflush(stdout);
    int saved = dup(1);
    dup2(out_fd, 1);
    CHECK_EQ(krun_start(ctx), 0);
    dup2(saved, 1);
    close(saved);
    return ctx;
}

struct ender {
    uint32_t a, c;
    int32_t wait_a, wait_c, free_a, free_c;
    atomic_int done;
};

static void *end_both(void *arg)
{
    struct ender *e = arg;
    krun_stop(e->a);
    krun_stop(e->c);
    e->wait_a = krun_wait(e->a, 10000);
    e->wait_c = krun_wait(e->c, 10000);
    e->free_a = krun_free_ctx(e->a);
    e->free_c = krun_free_ctx(e->c);
    atomic_store(&e->done, 1);
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 6)
        return 2;
    kernel = argv[1];
    initrd = argv[2];
    cmdline = argv[3];
    rootfs = argv[4];
    outdir = argv[5];
    setvbuf(stdout, NULL, _IOLBF, 0);
    krun_set_log_level(1);

    pthread_t b;
    CHECK_EQ(pthread_create(&b, NULL, b_loop, NULL), 0);

    int pa[2], pc[2];
    small_pipe(pa);
    small_pipe(pc);
    double started = now();
    struct ender e = { .a = start_virtio_flood(pa[1]), .c = start_serial_flood(pc[1]) };
    close(pa[1]);
    close(pc[1]);

    /* Both pipes full, and B finished a VM while they were (it keeps going meanwhile). */
    double full_at = 0;
    while (now() - started < 240) {
        /* A one-page pipe holds a little less than 4096 bytes of whole lines. */
        if (full_at == 0 && pipe_bytes(pa[0]) >= 3072 && pipe_bytes(pc[0]) >= 3072)
            full_at = now();
        if (full_at != 0 && now() - full_at > 3 && b_done_since(full_at) >= 1)
            break;
        sleep_s(0.2);
    }
    printf("pipes: virtio %d bytes, COM1 %d bytes (full after %.1f s); B finished %d VMs so far\n",
           pipe_bytes(pa[0]), pipe_bytes(pc[0]), full_at == 0 ? -1.0 : full_at - started,
           atomic_load(&b_done));
    CHECK(full_at != 0);
    CHECK(full_at != 0 && b_done_since(full_at) >= 1);

    /* The point: stop, wait and free return within 10 s although nobody reads. */
    pthread_t ender;
    double t0 = now();
    CHECK_EQ(pthread_create(&ender, NULL, end_both, &e), 0);
    while (!atomic_load(&e.done) && now() - t0 < 10)
        sleep_s(0.05);
    double took = now() - t0;
    if (!atomic_load(&e.done)) {
        printf("FAIL krun_stop/krun_wait/krun_free_ctx of the flooding VMs did not return within 10 s\n");
        failed++;
        summary();
        fflush(stdout);
        _exit(1);
    }
    pthread_join(ender, NULL);
    printf("stop → wait → free of both flooding VMs: %.2f s (wait %d/%d, free %d/%d)\n", took, e.wait_a,
           e.wait_c, e.free_a, e.free_c);
    CHECK(e.wait_a >= 0);
    CHECK(e.wait_c >= 0);
    CHECK_EQ(e.free_a, 0);
    CHECK_EQ(e.free_c, 0);

    /* B goes on after them, and no call of B's waited long on the global lock. */
    double t1 = now();
    while (b_done_since(t0) < 2 && now() - t1 < 300)
        sleep_s(0.2);
    atomic_store(&b_stop, 1);
    pthread_join(b, NULL);
    printf("B: %d VMs in all, %d since the stop, %d failed; slowest create/start/free call %.2f s\n",
           atomic_load(&b_done), b_done_since(t0), atomic_load(&b_failed), b_slowest_call);
    CHECK(b_done_since(t0) >= 2);
    CHECK_EQ(atomic_load(&b_failed), 0);
    /* A call stuck behind a frozen global lock never returns; under emulation, with three VMs
     * running, a krun_start alone takes seconds (9.5 s measured): the bound is generous. */
    CHECK(b_slowest_call < 60);

    char buf[4096];
    ssize_t n = read(pa[0], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    CHECK(strstr(buf, "zkrun-flood-line-0123456789abcdef") != NULL);
    n = read(pc[0], buf, sizeof buf - 1);
    CHECK(n > 0);
    return summary();
}
