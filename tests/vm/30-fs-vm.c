/*
 * The guest side of the virtio-fs VM tests (tests/vm/3x-fs-*.test.sh): runs COMMAND in a microVM
 * whose root is ROOT_DIR, optionally with a second, read-only virtio-fs share (tag TAG, host
 * directory DIR) for the workload to mount. Exits with the guest command's status.
 *
 *   fs-vm ROOT_DIR [-ro TAG DIR] COMMAND [ARG]...
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "fs-vm: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char *argv[])
{
    if (argc < 3) {
        fprintf(stderr, "usage: fs-vm ROOT_DIR [-ro TAG DIR] COMMAND [ARG]...\n");
        return 2;
    }
    int at = 2;
    const char *ro_tag = NULL, *ro_dir = NULL;
    if (strcmp(argv[at], "-ro") == 0 && argc > at + 3) {
        ro_tag = argv[at + 1];
        ro_dir = argv[at + 2];
        at += 3;
    }
    const char *env[] = { "HOME=/root", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm", NULL };
    check(krun_set_log_level(KRUN_LOG_LEVEL_WARN), "krun_set_log_level");
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
    check(krun_set_root((uint32_t)ctx, argv[1]), "krun_set_root");
    if (ro_tag != NULL)
        check(krun_add_virtiofs3((uint32_t)ctx, ro_tag, ro_dir, 0, true), "krun_add_virtiofs3");
    check(krun_set_exec((uint32_t)ctx, argv[at], (const char *const *)&argv[at + 1], env), "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1;
}
