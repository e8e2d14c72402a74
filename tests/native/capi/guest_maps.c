/*
 * Guest memory in the host process (issue 10 item 7), read from /proc/self/smaps while a VM
 * runs (krun_start): no mapping of the process is both writable and executable, guest RAM
 * and the kernel slot (the copy-on-write mapping of libkrunfw's bundle) are never executable,
 * and all of it is marked MADV_DONTDUMP ("dd") and MADV_DONTFORK ("dc"), so a fork()ed child
 * has none of it. Guest mappings are told apart as the ones marked "dd" that are 1 MiB or
 * more or map libkrunfw.
 */
#define _GNU_SOURCE
#include <libkrun.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"

struct scan {
    unsigned long long dd_bytes; /* in mappings >= 1 MiB marked dd */
    int dd_without_dc, dd_exec, writable_exec, krunfw_dd;
};

static void scan(struct scan *s, int verbose)
{
    memset(s, 0, sizeof(*s));
    FILE *f = fopen("/proc/self/smaps", "r");
    if (f == NULL) {
        s->writable_exec = 1000;
        return;
    }
    char line[4096], head[4096] = "";
    unsigned long long start = 0, end = 0;
    char perms[8] = "";
    while (fgets(line, sizeof(line), f)) {
        unsigned long long a, b;
        char p[8];
        if (sscanf(line, "%llx-%llx %7s", &a, &b, p) == 3 && strchr(line, ':') != NULL &&
            line[0] != 'V') {
            start = a, end = b;
            snprintf(perms, sizeof(perms), "%s", p);
            snprintf(head, sizeof(head), "%s", line);
            if (perms[1] == 'w' && perms[2] == 'x') {
                s->writable_exec++;
                printf("writable and executable: %s", head);
            }
            continue;
        }
        if (strncmp(line, "VmFlags:", 8) != 0 || strstr(line, " dd") == NULL)
            continue;
        /* The kernel slot is libkrunfw's file; other guest memory is big and anonymous. */
        int krunfw = strstr(head, "libkrunfw") != NULL;
        if (!krunfw && end - start < (1ULL << 20))
            continue;
        s->dd_bytes += end - start;
        if (strstr(line, " dc") == NULL)
            s->dd_without_dc++;
        if (perms[2] == 'x')
            s->dd_exec++;
        s->krunfw_dd += krunfw;
        if (verbose)
            printf("guest mapping: %s", head);
    }
    fclose(f);
}

int main(void)
{
    krun_set_log_level(KRUN_LOG_LEVEL_WARN);
    int32_t id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    CHECK_EQ(krun_set_vm_config(ctx, 1, 256), 0);
    int32_t rc = krun_start(ctx);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        return summary();
    struct scan s;
    scan(&s, 1);
    printf("guest mappings: %llu MiB marked dd\n", s.dd_bytes >> 20);
    CHECK(s.dd_bytes >= (200ULL << 20)); /* 256 MiB of RAM plus the kernel slot */
    CHECK_EQ(s.dd_without_dc, 0);
    CHECK_EQ(s.dd_exec, 0);
    CHECK_EQ(s.writable_exec, 0);
    CHECK_EQ(s.krunfw_dd, 1); /* the kernel slot: libkrunfw's file pages, copy-on-write */
    pid_t pid = fork();
    if (pid == 0) {
        struct scan c;
        scan(&c, 0);
        _exit(c.dd_bytes == 0 ? 0 : 1);
    }
    int status = -1;
    CHECK_EQ(waitpid(pid, &status, 0), pid);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0); /* the child has no guest memory */
    CHECK_EQ(krun_stop(ctx), 0);
    CHECK(krun_wait(ctx, 60000) >= 0);
    CHECK_EQ(krun_free_ctx(ctx), 0);
    return summary();
}
