/*
 * libkrunfw must be found no later than krun_create_ctx (libkrun.md §7.2, §12): clients enter
 * a container that has no libkrunfw before they start the VM. Two orders, in two processes:
 *   create   - krun_create_ctx on the host, then chroot, then configure and start (crun now);
 *   loaded   - libkrun.so.1 loaded on the host, chroot, then every call (crun 1.8.1).
 * The chroot directory holds only dev/kvm, proc and an empty root: no library at all.
 * krun_start must build the VM (0), not answer "no kernel" (-ENOENT).
 * Usage: create_chroot create|loaded DIR
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libkrun.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    int early = strcmp(argv[1], "create") == 0;
    krun_set_log_level(KRUN_LOG_LEVEL_WARN);
    int32_t id = early ? krun_create_ctx() : -1;
    CHECK_EQ(chroot(argv[2]), 0);
    CHECK_EQ(chdir("/"), 0);
    CHECK_EQ(access("/usr/lib/x86_64-linux-gnu/libkrunfw.so.5", F_OK), -1);
    if (!early)
        id = krun_create_ctx();
    CHECK(id >= 0);
    uint32_t ctx = (uint32_t)id;
    /* crun 1.8.1's calls after pivot_root (§12). */
    const char *const argv_guest[] = { NULL };
    const char *const envp[] = { NULL };
    CHECK_EQ(krun_set_vm_config(ctx, 1, 256), 0);
    CHECK_EQ(krun_set_root(ctx, "/"), 0);
    CHECK_EQ(krun_set_workdir(ctx, "/"), 0);
    CHECK_EQ(krun_set_exec(ctx, "/bin/true", argv_guest, envp), 0);
    int32_t rc = krun_start(ctx);
    CHECK_EQ(rc, 0);
    if (rc == 0) {
        CHECK_EQ(krun_stop(ctx), 0);
        CHECK(krun_wait(ctx, 60000) >= 0);
    }
    CHECK_EQ(krun_free_ctx(ctx), 0);
    return summary();
}
