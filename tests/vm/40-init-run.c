/*
 * 40-init-run: the guest-init VM tests' runner (tests/vm/4x-init-*.test.sh). A libkrun client
 * that passes the workload the way real clients do:
 *
 *   40-init-run [-w WORKDIR] [-r ID=CUR:MAX]... ROOT_DIR [COMMAND [ARG]...]
 *
 * With COMMAND: krun_set_exec(COMMAND, ARGs, NULL): a NULL envp hands the guest this process's
 * whole environment (libkrun's semantics), so `env -i A=1 ... 40-init-run` sets it exactly.
 * Without COMMAND: no krun_set_exec at all (crun's way): the guest's init finds the workload in
 * ROOT_DIR/.krun_config.json. The process ends with the guest workload's status.
 */
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RLIMITS_MAX 16

static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "40-init-run: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char *argv[])
{
    const char *workdir = NULL;
    const char *rlimits[RLIMITS_MAX + 1] = { 0 };
    int n_rlimits = 0, opt;
    while ((opt = getopt(argc, argv, "+w:r:")) != -1) {
        if (opt == 'w') {
            workdir = optarg;
        } else if (opt == 'r' && n_rlimits < RLIMITS_MAX) {
            rlimits[n_rlimits++] = optarg;
        } else {
            fprintf(stderr, "usage: 40-init-run [-w DIR] [-r ID=CUR:MAX]... ROOT [COMMAND [ARG]...]\n");
            return 2;
        }
    }
    if (optind >= argc)
        return 2;
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, 1, 256), "krun_set_vm_config");
    check(krun_set_root((uint32_t)ctx, argv[optind]), "krun_set_root");
    if (workdir != NULL)
        check(krun_set_workdir((uint32_t)ctx, workdir), "krun_set_workdir");
    if (n_rlimits > 0)
        check(krun_set_rlimits((uint32_t)ctx, rlimits), "krun_set_rlimits");
    if (optind + 1 < argc)
        check(krun_set_exec((uint32_t)ctx, argv[optind + 1], (const char *const *)&argv[optind + 2], NULL),
              "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1;
}
