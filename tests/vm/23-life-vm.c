/*
 * The host side of tests/vm/23..25: one process embedding libkrun.so.1 that must survive
 * whatever its guests do, get a status >= 0 with the right exit reason, and keep the context
 * table usable while a VM is slow to build.
 *   life-vm hostile ROOTFS WORK   exit-code ioctls from guest processes that are not init
 *   life-vm reasons ROOTFS WORK   exited / paused, resumed, stopped / guest panic / triple fault
 *   life-vm cycles WORK           200 create/start/stop/free cycles over 4 threads; fds, RSS
 *   life-vm lock WORK             a start stuck in the VMM blocks no other context
 *   life-vm sh ROOTFS WORK SCRIPT one script (debugging): status, reason, console
 * ROOTFS holds busybox and /life-guest (23-life-guest.c). The zkrun extensions (exit reasons)
 * come from the installed header. Prints "ok ..." / "FAIL ..." lines and "N passed, N failed".
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libkrun.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "expect.h"

static const char *rootfs, *work;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int32_t exit_reason(uint32_t ctx)
{
    return krun_get_exit_reason(ctx);
}

static const char *reason_name(int32_t r)
{
    static const char *names[] = { "none", "exited", "stopped", "guest-panic", "triple-fault", "vmm-error", "shutdown" };
    return r >= KRUN_EXIT_REASON_NONE && r <= KRUN_EXIT_REASON_SHUTDOWN ? names[r] : "(bad value)";
}

/* A context running `script` under /bin/sh on ROOTFS, console into WORK/NAME.log. */
static uint32_t sh_vm(const char *name, const char *script, uint32_t mib, char *log, size_t log_size)
{
    const char *const argv[] = { "-c", script, NULL };
    const char *const env[] = { "PATH=/bin:/sbin:/usr/bin", NULL };
    snprintf(log, log_size, "%s/%s.log", work, name);
    int32_t id = krun_create_ctx();
    if (id < 0) {
        expect(0, "%s: krun_create_ctx = %d", name, id);
        exit(1);
    }
    uint32_t ctx = (uint32_t)id;
    int bad = krun_set_vm_config(ctx, 1, mib) != 0 || krun_set_root(ctx, rootfs) != 0 ||
              krun_set_exec(ctx, "/bin/sh", argv, env) != 0 || krun_set_console_output(ctx, log) != 0;
    if (bad) {
        expect(0, "%s: configuring the context", name);
        exit(1);
    }
    return ctx;
}

/* The last "TICK <uptime>" of the console log (-1 when none), and the log's size. */
static double last_tick(const char *path, long *size)
{
    static char buf[1 << 20];
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    *size = (long)n;
    char *at = NULL;
    for (char *p = buf; (p = strstr(p, "TICK ")) != NULL; p++)
        at = p;
    return at == NULL ? -1 : strtod(at + 5, NULL);
}

/* A paused guest prints nothing, and its clock does not count the pause (kvm-clock is saved and
 * restored): the first tick after resume is less than the pause after the last one before. */
static void pause_resume(uint32_t ctx, const char *log)
{
    long size = 0, size2 = 0;
    double t0 = now();
    while (last_tick(log, &size) < 0 && now() - t0 < 60)
        usleep(100 * 1000);
    expect(krun_vm_pause(ctx) == 0, "krun_vm_pause");
    expect(krun_vm_pause(ctx) == 0, "krun_vm_pause again (idempotent)");
    double before = last_tick(log, &size);
    usleep(3000 * 1000);
    last_tick(log, &size2);
    expect(size2 == size, "paused 3 s: the console log stayed at %ld bytes (now %ld)", size, size2);
    expect(krun_vm_resume(ctx) == 0, "krun_vm_resume");
    expect(krun_vm_resume(ctx) == 0, "krun_vm_resume again (idempotent)");
    double after = before;
    t0 = now();
    while ((after = last_tick(log, &size2)) <= before && now() - t0 < 60)
        usleep(100 * 1000);
    expect(after > before, "resumed: the guest ticks on (%.2f after %.2f)", after, before);
    expect(after - before < 2.5, "guest uptime moved %.2f s across a 3 s pause (kvm-clock restored; clocksource: %s)",
           after - before, file_has(log, "kvm-clock") ? "kvm-clock" : "not kvm-clock");
}

/* Starts, waits up to `timeout_s` (then stops), returns the status; *reason gets the reason. */
static int32_t run(uint32_t ctx, int timeout_s, int32_t *reason)
{
    int32_t status = start_and_wait(ctx, timeout_s);
    *reason = exit_reason(ctx);
    return status;
}

/* ---- hostile exit-code reports ----------------------------------------------------------- */

struct scenario {
    const char *name, *script;
    int32_t status, reason;
    const char *guest_line; /* what the guest printed, or NULL */
};

static void hostile(void)
{
    const struct scenario cases[] = {
        /* The report: a guest root sends -110, then resets before init reports. */
        { "root sends -110 then resets the VM", "/life-guest ioctl 0 -110; /life-guest reset; sleep 30",
          0, KRUN_EXIT_REASON_SHUTDOWN, "code=-110 rc=-1 errno=1" },
        /* The same from an ordinary user, the root resetting after it. */
        { "uid 1000 sends -110, then a reset", "/life-guest ioctl 1000 -110; /life-guest reset; sleep 30",
          0, KRUN_EXIT_REASON_SHUTDOWN, "code=-110 rc=-1 errno=1" },
        /* A plausible code from a process that is not init is not taken for the workload's. */
        { "uid 1000 sends 42, then a reset", "/life-guest ioctl 1000 42; /life-guest reset; sleep 30",
          0, KRUN_EXIT_REASON_SHUTDOWN, "code=42 rc=-1 errno=1" },
        /* The workload's real code wins over a root process's report. */
        { "root sends -110, the workload exits 5", "/life-guest ioctl 0 -110; exit 5",
          5, KRUN_EXIT_REASON_EXITED, "code=-110 rc=-1 errno=1" },
        /* A uid-1000 process hammering the ioctl in the background while the workload ends. */
        { "uid 1000 hammers the ioctl, the workload exits 7",
          "(while :; do /life-guest ioctl 1000 -110 >/dev/null; done) & sleep 2; exit 7",
          7, KRUN_EXIT_REASON_EXITED, NULL },
        /* init's own report still works: 0 and 255 are codes. */
        { "the workload exits 255", "exit 255", 255, KRUN_EXIT_REASON_EXITED, NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct scenario *c = &cases[i];
        char log[600], name[32];
        snprintf(name, sizeof name, "hostile-%zu", i);
        uint32_t ctx = sh_vm(name, c->script, 128, log, sizeof log);
        int32_t reason = 0;
        int32_t status = run(ctx, 120, &reason);
        expect(status == c->status && reason == c->reason, "%s: status %d (want %d), reason %s (want %s)",
               c->name, status, c->status, reason_name(reason), reason_name(c->reason));
        if (c->guest_line != NULL)
            expect(file_has(log, c->guest_line), "%s: the guest's ioctl was refused (\"%s\" in %s)", c->name,
                   c->guest_line, log);
        krun_free_ctx(ctx);
    }
}

/* ---- exit reasons -------------------------------------------------------------------------- */

/* Raw 64-bit code: lidt from zeroed memory (an empty IDT), then ud2: #UD cannot be delivered,
 * nor the #DF after it: a triple fault (KVM_EXIT_SHUTDOWN). */
static const unsigned char triple_fault_guest[] = {
    0x0f, 0x01, 0x1c, 0x25, 0x00, 0x05, 0x00, 0x00, /* lidt [0x500] */
    0x0f, 0x0b,                                     /* ud2 */
    0xf4,                                           /* hlt */
};

static void write_file(const char *path, const void *bytes, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, bytes, len) != (ssize_t)len) {
        perror(path);
        exit(2);
    }
    close(fd);
}

static void reasons(void)
{
    char log[600];
    int32_t reason = 0, status;

    uint32_t ctx = sh_vm("exit3", "echo LIFE-UP; exit 3", 128, log, sizeof log);
    status = run(ctx, 120, &reason);
    expect(status == 3 && reason == KRUN_EXIT_REASON_EXITED, "exit 3: status %d, reason %s", status, reason_name(reason));
    krun_free_ctx(ctx);

    /* krun_vm_pause / krun_vm_resume on a guest that prints its uptime, then krun_stop on the
     * paused VM: the status says killed (128 + SIGKILL), the reason "stopped". */
    ctx = sh_vm("stop",
                "cat /sys/devices/system/clocksource/clocksource0/current_clocksource; echo LIFE-UP; "
                "while :; do read u _ </proc/uptime; echo TICK $u; sleep 0.2; done",
                128, log, sizeof log);
    if (krun_start(ctx) == 0) {
        double t0 = now();
        while (!file_has(log, "LIFE-UP") && now() - t0 < 120)
            usleep(100 * 1000);
        expect(file_has(log, "LIFE-UP"), "stop: the guest is up");
        pause_resume(ctx, log);
        expect(krun_vm_pause(ctx) == 0, "pause before krun_stop");
        krun_stop(ctx);
        status = krun_wait(ctx, 30 * 1000);
        reason = exit_reason(ctx);
        expect(status == 137 && reason == KRUN_EXIT_REASON_STOPPED, "krun_stop: status %d (want 137), reason %s", status,
               reason_name(reason));
    } else {
        expect(0, "stop: krun_start failed");
    }
    krun_free_ctx(ctx);

    /* A guest kernel panic, from a guest root: panic_on_oom=2 panics on a memory cgroup's OOM
     * too, and a 16 MiB cgroup runs out at once (a whole-guest OOM thrashes for minutes). */
    ctx = sh_vm("panic",
                "grep -q ' /sys/fs/cgroup cgroup2 ' /proc/mounts || mount -t cgroup2 none /sys/fs/cgroup; "
                "echo +memory > /sys/fs/cgroup/cgroup.subtree_control && "
                "mkdir /sys/fs/cgroup/oom && echo 16M > /sys/fs/cgroup/oom/memory.max && "
                "echo 2 > /proc/sys/vm/panic_on_oom && echo $$ > /sys/fs/cgroup/oom/cgroup.procs && "
                "echo LIFE-OOM && /life-guest oom; sleep 600",
                128, log, sizeof log);
    status = run(ctx, 120, &reason);
    expect(status == 1 && reason == KRUN_EXIT_REASON_GUEST_PANIC, "guest kernel panic: status %d (want 1), reason %s",
           status, reason_name(reason));
    expect(file_has(log, "LIFE-OOM"), "guest kernel panic: panic_on_oom was set (%s)", log);
    krun_free_ctx(ctx);

    /* A triple fault: a raw guest with an empty IDT. */
    char kernel[600];
    snprintf(kernel, sizeof kernel, "%s/triple-fault.bin", work);
    write_file(kernel, triple_fault_guest, sizeof triple_fault_guest);
    snprintf(log, sizeof log, "%s/triple.log", work);
    int32_t id = krun_create_ctx();
    ctx = (uint32_t)id;
    int bad = id < 0 || krun_set_vm_config(ctx, 1, 32) != 0 ||
              krun_set_kernel(ctx, kernel, KRUN_KERNEL_FORMAT_RAW, NULL, "console=ttyS0") != 0 ||
              krun_set_console_output(ctx, log) != 0;
    expect(!bad, "triple fault: context configured");
    status = run(ctx, 60, &reason);
    expect(status == 1 && reason == KRUN_EXIT_REASON_TRIPLE_FAULT, "triple fault: status %d (want 1), reason %s",
           status, reason_name(reason));
    krun_free_ctx(ctx);
}

/* ---- cycles -------------------------------------------------------------------------------- */

/* Raw 64-bit code that spins for ever: only krun_stop ends it. */
static const unsigned char spin_guest[] = { 0xeb, 0xfe };
static char spin_kernel[600];

static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return -1;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the DIR's own fd */
}

static long rss_kib(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

static uint32_t spin_ctx(void)
{
    int32_t id = krun_create_ctx();
    if (id < 0)
        return UINT32_MAX;
    uint32_t ctx = (uint32_t)id;
    if (krun_set_vm_config(ctx, 1, 32) != 0 ||
        krun_set_kernel(ctx, spin_kernel, KRUN_KERNEL_FORMAT_RAW, NULL, "console=ttyS0") != 0 ||
        krun_set_console_output(ctx, "/dev/null") != 0) {
        krun_free_ctx(ctx);
        return UINT32_MAX;
    }
    return ctx;
}

#define cycle_threads 4
#define cycles_total 200

struct worker {
    int cycles, errors, not_stopped;
    int32_t last_bad;
};

static void *cycle_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < w->cycles; i++) {
        uint32_t ctx = spin_ctx();
        if (ctx == UINT32_MAX) {
            w->errors++;
            continue;
        }
        int32_t rc = krun_start(ctx);
        if (rc == 0) {
            if (krun_stop(ctx) != 0)
                w->errors++;
            int32_t st = krun_wait(ctx, 30 * 1000);
            int32_t why = exit_reason(ctx);
            if (st < 0) {
                w->errors++;
                w->last_bad = st;
            } else if (st != 137 || why != KRUN_EXIT_REASON_STOPPED) {
                w->not_stopped++; /* a stopped spinning guest reads as stopped, never as success */
                w->last_bad = st;
            }
        } else {
            w->errors++;
            w->last_bad = rc;
        }
        if (krun_free_ctx(ctx) != 0)
            w->errors++;
    }
    return NULL;
}

static void run_cycles(int per_thread, int *errors, int *not_stopped)
{
    pthread_t t[cycle_threads];
    struct worker w[cycle_threads];
    for (int i = 0; i < cycle_threads; i++) {
        w[i] = (struct worker){ .cycles = per_thread };
        pthread_create(&t[i], NULL, cycle_worker, &w[i]);
    }
    for (int i = 0; i < cycle_threads; i++) {
        pthread_join(t[i], NULL);
        *errors += w[i].errors;
        *not_stopped += w[i].not_stopped;
        if (w[i].errors || w[i].not_stopped)
            printf("     thread %d: %d errors, %d not read as stopped (last status %d)\n", i, w[i].errors,
                   w[i].not_stopped, w[i].last_bad);
    }
}

static void cycles(void)
{
    snprintf(spin_kernel, sizeof spin_kernel, "%s/spin.bin", work);
    write_file(spin_kernel, spin_guest, sizeof spin_guest);
    int errors = 0, not_stopped = 0;
    /* Warm-up: the C library's thread caches and arenas, the kick signal handler. */
    run_cycles(5, &errors, &not_stopped);
    int fds0 = count_fds();
    long rss0 = rss_kib();
    double t0 = now();
    run_cycles(cycles_total / cycle_threads, &errors, &not_stopped);
    int fds1 = count_fds();
    long rss1 = rss_kib();
    printf("cycles: %d create/start/stop/wait/free over %d threads in %.1f s; fds %d -> %d; RSS %ld -> %ld KiB (%+ld)\n",
           cycles_total, cycle_threads, now() - t0, fds0, fds1, rss0, rss1, rss1 - rss0);
    expect(errors == 0, "cycles: no call failed (%d errors)", errors);
    expect(not_stopped == 0, "cycles: every wait gave 137 and reason stopped (%d did not)", not_stopped);
    expect(fds1 == fds0, "cycles: fds flat (%d -> %d)", fds0, fds1);
    /* Guest RAM is unmapped at free; what may stay is allocator slack, well under one VM. */
    expect(rss1 - rss0 < 8 * 1024, "cycles: RSS flat (%+ld KiB, bound 8 MiB)", rss1 - rss0);
}

/* ---- the global lock ------------------------------------------------------------------------- */

struct starter {
    uint32_t ctx;
    int32_t rc;
    volatile int done;
};

static void *start_thread(void *arg)
{
    struct starter *s = arg;
    s->rc = krun_start(s->ctx);
    s->done = 1;
    return NULL;
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "FAIL lock: a call on another context blocked for 60 s behind a stuck start\n0 passed, 1 failed\n";
    (void)!write(1, msg, sizeof msg - 1);
    _exit(1);
}

static void lock(void)
{
    snprintf(spin_kernel, sizeof spin_kernel, "%s/spin.bin", work);
    write_file(spin_kernel, spin_guest, sizeof spin_guest);
    /* The kernel file checked at krun_set_kernel becomes a FIFO before krun_start: the VMM's
     * open() of it blocks until a writer comes, a start stuck in the VMM. */
    char fifo[600];
    snprintf(fifo, sizeof fifo, "%s/stuck-kernel", work);
    write_file(fifo, spin_guest, sizeof spin_guest);
    int32_t id = krun_create_ctx();
    uint32_t stuck = (uint32_t)id;
    int bad = id < 0 || krun_set_vm_config(stuck, 1, 32) != 0 ||
              krun_set_kernel(stuck, fifo, KRUN_KERNEL_FORMAT_RAW, NULL, "console=ttyS0") != 0;
    expect(!bad, "lock: stuck context configured");
    unlink(fifo);
    if (mkfifo(fifo, 0600) != 0) {
        perror("mkfifo");
        exit(2);
    }
    struct starter s = { .ctx = stuck };
    pthread_t t;
    pthread_create(&t, NULL, start_thread, &s);
    usleep(500 * 1000);
    expect(!s.done, "lock: krun_start is stuck opening the FIFO kernel");

    signal(SIGALRM, on_alarm);
    alarm(60);
    double t0 = now();
    uint32_t other = spin_ctx();
    expect(other != UINT32_MAX, "lock: another context is created meanwhile");
    expect(krun_start(other) == 0, "lock: and started");
    expect(krun_wait(other, 200) == -ETIMEDOUT, "lock: and runs");
    expect(krun_stop(other) == 0, "lock: and stopped");
    int32_t st = krun_wait(other, 30 * 1000);
    expect(st == 137, "lock: its wait gives 137 (%d)", st);
    expect(krun_free_ctx(other) == 0, "lock: and freed, in %.2f s while the other start is stuck", now() - t0);
    /* The stuck context itself answers at once. */
    expect(krun_free_ctx(stuck) == -EBUSY, "lock: krun_free_ctx of the starting context is -EBUSY");
    expect(krun_wait(stuck, 0) == -EBUSY, "lock: krun_wait of the starting context is -EBUSY");
    expect(krun_set_vm_config(stuck, 1, 64) == -EBUSY, "lock: a setter on the starting context is -EBUSY");
    expect(krun_stop(stuck) == 0, "lock: krun_stop of the starting context is recorded (0)");
    alarm(0);

    /* Release the start: a writer that closes at once gives an empty FIFO, not a kernel. */
    int w = open(fifo, O_WRONLY | O_CLOEXEC);
    if (w >= 0)
        close(w);
    pthread_join(t, NULL);
    expect(s.rc < 0, "lock: the stuck start then fails cleanly (%d)", s.rc);
    expect(krun_free_ctx(stuck) == 0, "lock: and its context frees");
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);
    if (argc == 4 && strcmp(argv[1], "hostile") == 0) {
        rootfs = argv[2], work = argv[3];
        hostile();
    } else if (argc == 4 && strcmp(argv[1], "reasons") == 0) {
        rootfs = argv[2], work = argv[3];
        reasons();
    } else if (argc == 5 && strcmp(argv[1], "sh") == 0) {
        /* For debugging a scenario by hand: one script, its status, reason and console. */
        rootfs = argv[2], work = argv[3];
        char log[600], cmd[700];
        int32_t reason = 0;
        uint32_t ctx = sh_vm("sh", argv[4], 128, log, sizeof log);
        int32_t status = run(ctx, 120, &reason);
        printf("status %d, reason %s\n", status, reason_name(reason));
        snprintf(cmd, sizeof cmd, "cat %s", log);
        return system(cmd) == 0 ? 0 : 1;
    } else if (argc == 3 && strcmp(argv[1], "cycles") == 0) {
        work = argv[2];
        cycles();
    } else if (argc == 3 && strcmp(argv[1], "lock") == 0) {
        work = argv[2];
        lock();
    } else {
        fprintf(stderr, "usage: life-vm hostile|reasons ROOTFS WORK | cycles|lock WORK\n");
        return 2;
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
