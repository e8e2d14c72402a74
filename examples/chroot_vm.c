/*
 * chroot_vm: run a command inside a microVM whose root filesystem is a host directory.
 *
 *   chroot_vm [-c CPUS] [-m MIB] [-e KEY=VALUE]... [-w WORKDIR] [-r ID=CUR:MAX]... [-v LEVEL]
 *             ROOT_DIR COMMAND [ARG]...
 *
 * The process becomes the VM: krun_start_enter() only returns on a setup error, and on
 * success the process exits with the command's exit status (125/126/127 come from the
 * guest's init: setup failed / cannot execute / not found).
 *
 * Without -e the command gets a small default environment instead of the host's (the host
 * environment can be long, and everything travels on a 2 KiB kernel command line).
 */
#include <errno.h>
#include <libkrun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_LIST 64

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [-c CPUS] [-m MIB] [-e KEY=VALUE]... [-w WORKDIR] [-r ID=CUR:MAX]...\n"
            "          [-v LEVEL] ROOT_DIR COMMAND [ARG]...\n",
            argv0);
    exit(2);
}

static int parse_uint(const char *text, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long value = strtoul(text, &end, 10);
    if (errno != 0 || *text == '\0' || *end != '\0' || value > max)
        return -1;
    *out = value;
    return 0;
}

/* Prints why a krun_* call failed and exits: the library has logged its own reason too. */
static void check(int32_t ret, const char *what)
{
    if (ret < 0) {
        fprintf(stderr, "chroot_vm: %s: %s\n", what, strerror(-ret));
        exit(1);
    }
}

int main(int argc, char *argv[])
{
    unsigned long cpus = 1, ram_mib = 512, level = KRUN_LOG_LEVEL_ERROR;
    const char *workdir = NULL;
    const char *env[MAX_LIST + 1] = { 0 };
    const char *rlimits[MAX_LIST + 1] = { 0 };
    int n_env = 0, n_rlimits = 0, opt;

    /* "+": options end at ROOT_DIR, so COMMAND's own options are left alone. */
    while ((opt = getopt(argc, argv, "+c:m:e:w:r:v:h")) != -1) {
        switch (opt) {
        case 'c':
            if (parse_uint(optarg, 255, &cpus) < 0 || cpus == 0)
                usage(argv[0]);
            break;
        case 'm':
            if (parse_uint(optarg, UINT32_MAX, &ram_mib) < 0 || ram_mib == 0)
                usage(argv[0]);
            break;
        case 'e':
            if (n_env == MAX_LIST)
                usage(argv[0]);
            env[n_env++] = optarg;
            break;
        case 'w':
            workdir = optarg;
            break;
        case 'r':
            if (n_rlimits == MAX_LIST)
                usage(argv[0]);
            rlimits[n_rlimits++] = optarg;
            break;
        case 'v':
            if (parse_uint(optarg, KRUN_LOG_LEVEL_TRACE, &level) < 0)
                usage(argv[0]);
            break;
        default:
            usage(argv[0]);
        }
    }
    if (argc - optind < 2)
        usage(argv[0]);
    const char *root = argv[optind];
    const char *command = argv[optind + 1];
    if (n_env == 0) {
        env[n_env++] = "HOME=/root";
        env[n_env++] = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
        env[n_env++] = "TERM=xterm";
    }

    check(krun_set_log_level((uint32_t)level), "krun_set_log_level");
    int32_t ctx = krun_create_ctx();
    check(ctx, "krun_create_ctx");
    check(krun_set_vm_config((uint32_t)ctx, (uint8_t)cpus, (uint32_t)ram_mib), "krun_set_vm_config");
    check(krun_set_root((uint32_t)ctx, root), "krun_set_root");
    if (workdir != NULL)
        check(krun_set_workdir((uint32_t)ctx, workdir), "krun_set_workdir");
    if (n_rlimits > 0)
        check(krun_set_rlimits((uint32_t)ctx, rlimits), "krun_set_rlimits");
    /* argv of krun_set_exec excludes argv[0]: the guest's init passes COMMAND as argv[0]. */
    check(krun_set_exec((uint32_t)ctx, command, &argv[optind + 2], env), "krun_set_exec");
    check(krun_start_enter((uint32_t)ctx), "krun_start_enter");
    return 1; /* not reached: krun_start_enter returns only on failure */
}
